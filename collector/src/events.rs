//! What the collector says on its events node (pure): each event as a [`Notice`] — the event
//! without host, time and boot, which the bot stamps when it queues it — and reboot detection
//! at start (docs/protocol.md §5).

use jabmon_shared::payload::{CommandRun, CommandState, Event, EventKind, EventMetric, Severity};
use minidom::Element;
use xmpp_parsers::jid::BareJid;

use crate::alerts::Alert;

/// Boot times read a second apart may differ by a second or two (the kernel derives them
/// from the uptime); a larger difference is a reboot.
pub const BOOT_TOLERANCE_SECS: u64 = 2;

/// One event to publish, before [`Notice::into_event`] stamps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub kind: EventKind,
    pub severity: Option<Severity>,
    pub metric: Option<EventMetric>,
    pub command: Option<CommandRun>,
    pub text: String,
}

impl Notice {
    fn plain(kind: EventKind, severity: Option<Severity>, text: String) -> Self {
        Notice {
            kind,
            severity,
            metric: None,
            command: None,
            text,
        }
    }

    pub fn started() -> Self {
        Self::plain(EventKind::Started, None, "collector started".into())
    }

    pub fn stopping() -> Self {
        Self::plain(EventKind::Stopping, None, "collector stopping".into())
    }

    /// The host booted since this account last published: `was` and `now` are boot times.
    pub fn rebooted(was: u64, now: u64) -> Self {
        let text = format!("host rebooted (boot time was {was}, now {now})");
        Self::plain(EventKind::Rebooted, Some(Severity::Warning), text)
    }

    pub fn stats_reset(asker: &BareJid, groups: &[String]) -> Self {
        let text = format!("statistics reset by {asker}: {}", groups.join(", "));
        Self::plain(EventKind::StatsReset, None, text)
    }

    /// A threshold crossing; the value keeps three decimals.
    pub fn threshold(a: Alert) -> Self {
        Notice {
            kind: EventKind::Threshold,
            severity: Some(a.severity),
            metric: Some(EventMetric {
                name: a.metric,
                value: (a.value * 1000.0).round() / 1000.0,
            }),
            command: None,
            text: a.text,
        }
    }

    /// One state of a command run.
    pub fn command(
        name: &str,
        state: CommandState,
        asker: &BareJid,
        exit_code: Option<i32>,
    ) -> Self {
        Notice {
            kind: EventKind::Command,
            severity: None,
            metric: None,
            command: Some(CommandRun {
                name: name.to_string(),
                state,
                asker: asker.to_string(),
                exit_code,
            }),
            text: format!("{name} {state} for {asker}"),
        }
    }

    pub fn into_event(self, host: &str, timestamp: f64, boot: u64) -> Event {
        Event {
            host: host.to_string(),
            timestamp,
            kind: self.kind,
            severity: self.severity,
            boot: Some(boot),
            metric: self.metric,
            command: self.command,
            text: Some(self.text),
        }
    }
}

/// What to publish once the newest items of our own events node are read at start
/// (`published`, oldest first): `rebooted` when the newest boot time there differs from `boot`,
/// then `started`. No earlier event (a first start, or the read failed) is no reboot.
pub fn after_boot_check(published: Vec<Element>, boot: u64) -> Vec<Notice> {
    let last_boot = published
        .into_iter()
        .filter_map(|p| Event::try_from(p).ok())
        .filter_map(|e| e.boot)
        .next_back();
    let rebooted = last_boot
        .filter(|b| b.abs_diff(boot) > BOOT_TOLERANCE_SECS)
        .map(|was| Notice::rebooted(was, boot));
    rebooted.into_iter().chain([Notice::started()]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(boot: Option<u64>) -> Element {
        let mut e = Notice::started().into_event("web1", 1.0, 0);
        e.boot = boot;
        e.into()
    }

    fn kinds(n: &[Notice]) -> Vec<EventKind> {
        n.iter().map(|n| n.kind).collect()
    }

    #[test]
    fn a_new_boot_time_is_a_reboot() {
        let n = after_boot_check(vec![published(Some(1000))], 1003);
        assert_eq!(kinds(&n), [EventKind::Rebooted, EventKind::Started]);
        assert_eq!(n[0].text, "host rebooted (boot time was 1000, now 1003)");
        assert_eq!(n[0].severity, Some(Severity::Warning));
        // An earlier boot time counts the same as a later one.
        let n = after_boot_check(vec![published(Some(1006))], 1003);
        assert_eq!(kinds(&n), [EventKind::Rebooted, EventKind::Started]);
    }

    #[test]
    fn a_restart_is_not_a_reboot() {
        for was in [1001, 1003, 1005] {
            let n = after_boot_check(vec![published(Some(was))], 1003);
            assert_eq!(kinds(&n), [EventKind::Started], "boot was {was}");
        }
        assert_eq!(kinds(&after_boot_check(vec![], 1003)), [EventKind::Started]);
        let no_boot = after_boot_check(vec![published(None)], 1003);
        assert_eq!(kinds(&no_boot), [EventKind::Started]);
        let not_an_event = Element::builder("x", "urn:other").build();
        assert_eq!(
            kinds(&after_boot_check(vec![not_an_event], 1003)),
            [EventKind::Started]
        );
    }

    #[test]
    fn the_newest_event_decides() {
        let n = after_boot_check(vec![published(Some(1)), published(Some(1003))], 1003);
        assert_eq!(kinds(&n), [EventKind::Started]);
        let n = after_boot_check(vec![published(Some(1003)), published(Some(1))], 1003);
        assert_eq!(kinds(&n), [EventKind::Rebooted, EventKind::Started]);
    }

    #[test]
    fn notices_are_stamped_and_rounded() {
        let a = Alert {
            metric: "cpu.cpu.idle".into(),
            value: 12.34567,
            severity: Severity::Warning,
            text: "cpu busy above 85% (87.7%)".into(),
        };
        let e = Notice::threshold(a).into_event("web1", 5.0, 99);
        assert_eq!(
            (e.host.as_str(), e.timestamp, e.boot),
            ("web1", 5.0, Some(99))
        );
        assert_eq!(e.metric.unwrap().value, 12.346);
        let ops = BareJid::new("ops@x").unwrap();
        let c = Notice::command("shell", CommandState::Running, &ops, None);
        assert_eq!(c.text, "shell running for ops@x");
        assert_eq!(c.command.unwrap().asker, "ops@x");
    }
}
