//! Presence (pure): the busy/critical state machine on load with hysteresis, the status
//! summary, the rate limit (re-send at once when `<show/>` changes, otherwise at most once
//! every 60 s — a roster broadcast is not free), and the answers to subscription requests.

use jabmon_shared::acl::Acl;
use jabmon_shared::metric;
use jabmon_shared::presence::{answer_subscription, RecentAsks};
use xmpp_parsers::caps::Caps;
use xmpp_parsers::jid::BareJid;
use xmpp_parsers::presence::{Presence, Show, Type as PresenceType};

use crate::config::Thresholds;
use crate::metrics::MetricTable;

/// What the presence shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Connected, no sample yet: status `Starting up`.
    Starting,
    Normal,
    /// `<show>away</show>`.
    Busy,
    /// `<show>dnd</show>`.
    Critical,
}

/// Hysteresis on the per-core 1-minute load.
///
/// Busy is entered at `load_busy` and left below `load_busy_clear`. Critical is entered at
/// `load_critical` and left below `load_critical − (load_busy − load_busy_clear)` — the same
/// band width — going to Busy or Normal according to the load.
pub fn next_level(current: Level, per_core_load: f64, t: &Thresholds) -> Level {
    let band = t.load_busy - t.load_busy_clear;
    let critical_clear = (t.load_critical - band).max(t.load_busy_clear);
    let l = per_core_load;
    if l >= t.load_critical || (current == Level::Critical && l >= critical_clear) {
        return Level::Critical;
    }
    if l >= t.load_busy
        || (matches!(current, Level::Busy | Level::Critical) && l >= t.load_busy_clear)
    {
        return Level::Busy;
    }
    Level::Normal
}

/// The status line: `load 0.42 · cpu 12% · mem 41%` — the 1-min load, CPU busy and memory used
/// within 30 characters, as Gajim's roster tooltip cuts the status there (the 5- and 15-min
/// loads are in the `status` command and the `load` node).
pub fn summary(load_1min: f64, cpu_busy: f64, mem_used: f64) -> String {
    format!("load {load_1min:.2} · cpu {cpu_busy:.0}% · mem {mem_used:.0}%")
}

/// The status line of the current values in `table` (0 for a metric not sampled yet).
pub fn summary_of(table: &MetricTable) -> String {
    let v = |n: &str| table.value(n).unwrap_or(0.0);
    summary(
        v(metric::LOAD_SHORTTERM),
        100.0 - v(metric::CPU_IDLE),
        v(metric::MEMORY_PERCENT_USED),
    )
}

/// Our available presence: `<show/>` from the level, the status text, our caps.
pub fn stanza(level: Level, summary: &str, caps: Caps) -> Presence {
    let mut p = Presence::available().with_payload(caps);
    match level {
        Level::Busy => p = p.with_show(Show::Away),
        Level::Critical => p = p.with_show(Show::Dnd),
        Level::Starting | Level::Normal => {}
    }
    p.set_status("", status(level, summary));
    p
}

/// What to send when `from` asks to subscribe (approved when one of `acls` — the bot's
/// `access.subscribers` and `access.admins` — allows it) or approves our request. Approval is
/// mutual: `subscribed` and a `subscribe` back. After `from` approves us we send it our presence (`current`, when
/// online) — ejabberd records the +notify interest behind PEP only from presence sent after the
/// approval. `subscribed_to`: we already receive `from`'s presence (the roster says so), so
/// no `subscribe` goes back. `asks` and `now`: a `subscribe` from a JID we asked lately (the hub, whose
/// request crosses ours at start-up) is approved without asking back.
pub fn subscription_replies(
    type_: &PresenceType,
    from: &BareJid,
    acls: &[&Acl],
    subscribed_to: bool,
    current: Option<Presence>,
    asks: &mut RecentAsks,
    now: f64,
) -> Vec<Presence> {
    match type_ {
        PresenceType::Subscribe => {
            let answer = answer_subscription(from, acls, subscribed_to, asks, now);
            match answer.approved {
                true => tracing::info!(%from, "Subscription approved."),
                false => tracing::warn!(%from, "Subscription refused: not in access.subscribers."),
            }
            answer.presences
        }
        PresenceType::Subscribed => current
            .into_iter()
            .map(|p| p.with_to(from.clone()))
            .collect(),
        _ => vec![],
    }
}

/// The status text for a level.
pub fn status(level: Level, summary: &str) -> String {
    match level {
        Level::Starting => "Starting up".to_string(),
        Level::Normal => summary.to_string(),
        // U+2019, not an ASCII apostrophe: Gajim's roster tooltip shows `&apos;` for that.
        Level::Busy => format!("Overloaded. Can’t take more jobs. {summary}"),
        Level::Critical => format!("Critical: {summary}"),
    }
}

/// Decides when to re-send presence.
#[derive(Debug, Default)]
pub struct Pacer {
    last: Option<(Level, f64)>,
}

/// Minimum seconds between two presences that do not change `<show/>`.
pub const MIN_INTERVAL: f64 = 60.0;

impl Pacer {
    /// Whether to send now; records the send when it says yes.
    pub fn should_send(&mut self, level: Level, now: f64) -> bool {
        let send = match self.last {
            None => true,
            Some((last, at)) => last != level || now - at >= MIN_INTERVAL,
        };
        if send {
            self.last = Some((level, now));
        }
        send
    }

    /// Forget what was sent (the server lost our presence: send at the next chance).
    pub fn forget(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> Caps {
        use xmpp_parsers::hashes::{Algo, Hash};
        Caps::new("n", Hash::new(Algo::Sha_1, vec![0; 20]))
    }

    fn t() -> Thresholds {
        Thresholds::default()
    }

    #[test]
    fn hysteresis_with_fake_loads() {
        let th = t(); // busy 1.0 / clear 0.8, critical 2.0 (clears below 1.8)
        let loads = [0.5, 0.9, 1.0, 0.9, 0.81, 0.79, 2.5, 1.9, 1.7, 0.85, 0.7];
        let mut level = Level::Starting;
        let mut seen = vec![];
        for l in loads {
            level = next_level(level, l, &th);
            seen.push(level);
        }
        use Level::*;
        assert_eq!(
            seen,
            vec![Normal, Normal, Busy, Busy, Busy, Normal, Critical, Critical, Busy, Busy, Normal]
        );
    }

    #[test]
    fn pacing() {
        let mut p = Pacer::default();
        assert!(p.should_send(Level::Starting, 0.0));
        assert!(p.should_send(Level::Normal, 1.0), "show changed");
        assert!(!p.should_send(Level::Normal, 30.0));
        assert!(!p.should_send(Level::Normal, 60.9));
        assert!(p.should_send(Level::Normal, 61.0));
        assert!(p.should_send(Level::Busy, 62.0), "show changed: at once");
        p.forget();
        assert!(p.should_send(Level::Busy, 63.0));
    }

    #[test]
    fn subscriptions() {
        let from = BareJid::new("hub@x").unwrap();
        let allows = Acl::parse(&["hub@x".into()]).unwrap();
        let (yes, no) = (&[&allows][..], &[][..]);
        let kinds = |ps: Vec<Presence>| -> Vec<(PresenceType, Option<String>)> {
            ps.into_iter()
                .map(|p| (p.type_, p.to.map(|t| t.to_string())))
                .collect()
        };
        let hub = Some("hub@x".to_string());
        assert_eq!(
            kinds(subscription_replies(
                &PresenceType::Subscribe,
                &from,
                yes,
                false,
                None,
                &mut RecentAsks::default(),
                0.0
            )),
            [
                (PresenceType::Subscribed, hub.clone()),
                (PresenceType::Subscribe, hub.clone())
            ]
        );
        assert_eq!(
            kinds(subscription_replies(
                &PresenceType::Subscribe,
                &from,
                no,
                false,
                None,
                &mut RecentAsks::default(),
                0.0
            )),
            [(PresenceType::Unsubscribed, hub.clone())]
        );
        let ours = stanza(Level::Normal, "s", caps());
        assert_eq!(
            kinds(subscription_replies(
                &PresenceType::Subscribed,
                &from,
                no,
                false,
                Some(ours),
                &mut RecentAsks::default(),
                0.0
            )),
            [(PresenceType::None, hub)]
        );
        assert!(subscription_replies(
            &PresenceType::Subscribed,
            &from,
            yes,
            false,
            None,
            &mut RecentAsks::default(),
            0.0
        )
        .is_empty());
        assert!(subscription_replies(
            &PresenceType::Unsubscribe,
            &from,
            yes,
            false,
            None,
            &mut RecentAsks::default(),
            0.0
        )
        .is_empty());
    }

    #[test]
    fn stanza_shows_the_level() {
        let show = |l: Level| stanza(l, "load 1", caps()).show;
        assert_eq!(show(Level::Busy), Some(Show::Away));
        assert_eq!(show(Level::Critical), Some(Show::Dnd));
        assert_eq!(show(Level::Normal), None);
        assert_eq!(show(Level::Starting), None);
        let p = stanza(Level::Busy, "load 1", caps());
        assert_eq!(
            p.statuses.values().next().unwrap(),
            "Overloaded. Can’t take more jobs. load 1"
        );
        assert!(p
            .payloads
            .iter()
            .any(|e| e.is("c", "http://jabber.org/protocol/caps")));
    }

    #[test]
    fn summary_reads_the_table() {
        let mut t = MetricTable::default();
        assert_eq!(summary_of(&t), "load 0.00 · cpu 100% · mem 0%");
        t.record(
            0.0,
            vec![
                (
                    metric::LOAD_SHORTTERM.into(),
                    crate::metrics::Unit::Load,
                    0.5,
                ),
                (
                    metric::LOAD_LONGTERM.into(),
                    crate::metrics::Unit::Load,
                    0.25,
                ),
                (metric::CPU_IDLE.into(), crate::metrics::Unit::Percent, 90.0),
                (
                    metric::MEMORY_PERCENT_USED.into(),
                    crate::metrics::Unit::Percent,
                    41.0,
                ),
            ],
        );
        assert_eq!(summary_of(&t), "load 0.50 · cpu 10% · mem 41%");
    }

    #[test]
    fn texts() {
        let s = summary(0.42, 12.2, 41.0);
        assert_eq!(s, "load 0.42 · cpu 12% · mem 41%");
        assert!(s.chars().count() <= 30, "all within Gajim's tooltip");
        let busy = status(Level::Busy, &s);
        assert!(busy.starts_with("Overloaded. Can’t take more jobs."));
        assert!(!busy.contains('\''), "no ASCII apostrophe: {busy}");
        assert!(status(Level::Critical, &s).starts_with("Critical:"));
        assert_eq!(status(Level::Starting, &s), "Starting up");
    }
}
