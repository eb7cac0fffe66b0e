//! The collector registry (pure) — the Domogik "manager" role: each collector's status
//! (`starting`, `alive`, `busy`, `critical`, `stopped`, `dead`, `unknown`), last-seen time, host label,
//! host facts and the time of its latest sample, from presence, stats items and silence. The
//! values themselves are not kept: they go on as events (a collector's `status` command gives
//! its current values).
//!
//! Replays are not fresh data: a stats item whose timestamp is not newer than the last one
//! seen, or older than [`STALE_AFTER`] seconds, updates nothing (servers notify one item to
//! both bare and full JID, and replay the last item to a new `+notify` subscriber — a dead
//! collector's replayed item must not make it alive).

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};

use xmpp_parsers::jid::BareJid;

pub use jabmon_shared::payload::CollectorState;

/// Items older than this (seconds) are replays, not news.
pub const STALE_AFTER: f64 = 60.0;
/// Publish interval assumed until two items show the real one.
pub const DEFAULT_INTERVAL: f64 = 10.0;

/// What a presence said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Available; `starting` when the status text is `Starting up`.
    Available {
        away: bool,
        dnd: bool,
        starting: bool,
    },
    /// Unavailable; `planned` when the status text is `Stopping`.
    Unavailable { planned: bool },
}

/// One collector.
#[derive(Debug, Clone)]
pub struct Collector {
    pub jid: BareJid,
    pub host: String,
    pub status: CollectorState,
    pub last_seen: Option<f64>,
    pub last_sample: Option<f64>,
    /// When the hub received the latest fresh stats item (its own clock: the silence backstop
    /// counts from here, so a server that delivers items late does not make them silent).
    pub stats_arrived: Option<f64>,
    pub facts: Vec<(String, String)>,
    pub interval: f64,
}

/// A status change, to publish and to inject as events.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub jid: BareJid,
    pub host: String,
    pub from: CollectorState,
    pub to: CollectorState,
}

/// Every known collector, by bare JID, with the silence deadlines in time order.
#[derive(Debug)]
pub struct Registry {
    map: BTreeMap<BareJid, Collector>,
    /// Publish intervals of silence after which a collector believed alive is `dead`.
    silence_intervals: u32,
    /// Each collector's silence deadline as of every change to it, soonest first. Entries
    /// superseded by a later change stay until they come due and are then dropped, so a tick
    /// looks only at deadlines that have passed, not at every collector.
    deadlines: BinaryHeap<Reverse<Deadline>>,
}

/// When `jid` is silent too long, unless something newer arrived since.
#[derive(Debug, PartialEq)]
struct Deadline {
    at: f64,
    jid: BareJid,
}

impl Eq for Deadline {}

impl Ord for Deadline {
    fn cmp(&self, other: &Self) -> Ordering {
        self.at
            .total_cmp(&other.at)
            .then_with(|| self.jid.cmp(&other.jid))
    }
}

impl PartialOrd for Deadline {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new(3)
    }
}

impl Collector {
    /// When this collector counts as silent: `intervals` publish intervals after its latest
    /// stats item arrived (before any, after its latest presence).
    fn silent_at(&self, intervals: u32) -> Option<f64> {
        let since = self.stats_arrived.or(self.last_seen)?;
        Some(since + self.interval * f64::from(intervals))
    }
}

impl Registry {
    /// An empty registry; collectors go `dead` after `silence_intervals` silent intervals.
    pub fn new(silence_intervals: u32) -> Self {
        Self {
            map: BTreeMap::new(),
            silence_intervals,
            deadlines: BinaryHeap::new(),
        }
    }

    /// Queues `jid`'s silence deadline as it stands now.
    fn reschedule(&mut self, jid: &BareJid) {
        if let Some(at) = self
            .map
            .get(jid)
            .and_then(|c| c.silent_at(self.silence_intervals))
        {
            self.deadlines.push(Reverse(Deadline {
                at,
                jid: jid.clone(),
            }));
        }
    }

    fn entry(&mut self, jid: &BareJid) -> &mut Collector {
        self.map.entry(jid.clone()).or_insert_with(|| Collector {
            jid: jid.clone(),
            host: jid
                .node()
                .map_or_else(|| jid.domain().to_string(), |n| n.to_string()),
            status: CollectorState::Unknown,
            last_seen: None,
            last_sample: None,
            stats_arrived: None,
            facts: vec![],
            interval: DEFAULT_INTERVAL,
        })
    }

    fn set(&mut self, jid: &BareJid, to: CollectorState) -> Option<Change> {
        let c = self.entry(jid);
        if c.status == to {
            return None;
        }
        let change = Change {
            jid: jid.clone(),
            host: c.host.clone(),
            from: c.status,
            to,
        };
        c.status = to;
        Some(change)
    }

    /// Records host facts from the collector's disco#info form (with its `host` label and
    /// `publish_interval`, which set the silence deadline before any stats arrive).
    pub fn facts(&mut self, jid: &BareJid, facts: Vec<(String, String)>) {
        let c = self.entry(jid);
        let get = |k: &str| {
            facts
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        if let Some(h) = get("host").or(get("hostname")) {
            if c.last_sample.is_none() {
                c.host = jabmon_shared::metric::host_label(h);
            }
        }
        if let Some(i) = get("publish_interval")
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|i| *i > 0.0)
        {
            c.interval = i;
        }
        c.facts = facts;
        self.reschedule(jid);
    }

    /// A presence from the collector.
    pub fn presence(&mut self, jid: &BareJid, seen: Seen, now: f64) -> Option<Change> {
        self.entry(jid).last_seen = Some(now);
        self.reschedule(jid);
        let to = match seen {
            Seen::Unavailable { planned: true } => CollectorState::Stopped,
            Seen::Unavailable { planned: false } => CollectorState::Dead,
            Seen::Available { starting: true, .. } => CollectorState::Starting,
            Seen::Available { dnd: true, .. } => CollectorState::Critical,
            Seen::Available { away: true, .. } => CollectorState::Busy,
            Seen::Available { .. } => CollectorState::Alive,
        };
        self.set(jid, to)
    }

    /// Records a stats item if it is fresh; returns whether it was (a fresh item is fed as
    /// events, a replay or duplicate is not).
    pub fn record_stats(&mut self, jid: &BareJid, host: &str, timestamp: f64, now: f64) -> bool {
        let c = self.entry(jid);
        if now - timestamp > STALE_AFTER || c.last_sample.is_some_and(|t| timestamp <= t) {
            return false;
        }
        if let Some(prev) = c.last_sample {
            let gap = timestamp - prev;
            if gap > 0.05 {
                // The smallest recent gap is the publish interval (a late item only widens one).
                c.interval = c.interval.min(gap);
            }
        }
        c.host = jabmon_shared::metric::host_label(host);
        c.last_sample = Some(timestamp);
        c.stats_arrived = Some(now);
        c.last_seen = Some(now);
        self.reschedule(jid);
        true
    }

    /// Collectors believed alive whose stats stayed silent for the registry's silence
    /// intervals: the backstop when a stream dies without an unavailable presence (a `stopped`
    /// one is silent by plan and stays `stopped`). Costs O(log n) per deadline that has
    /// passed since the last call, whatever the fleet's size.
    pub fn silence(&mut self, now: f64) -> Vec<Change> {
        let mut changes = Vec::new();
        while self.deadlines.peek().is_some_and(|Reverse(d)| d.at < now) {
            let Some(Reverse(due)) = self.deadlines.pop() else {
                break;
            };
            let Some(c) = self.map.get(&due.jid) else {
                continue;
            };
            // A superseded deadline: the collector's own is later (and queued).
            let silent = c
                .silent_at(self.silence_intervals)
                .is_some_and(|at| at < now);
            if silent && c.status.is_alive() {
                changes.extend(self.set(&due.jid, CollectorState::Dead));
            }
        }
        changes
    }

    pub fn get(&self, jid: &BareJid) -> Option<&Collector> {
        self.map.get(jid)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Collector> {
        self.map.values()
    }

    pub fn is_known(&self, jid: &BareJid) -> bool {
        self.map.contains_key(jid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web1() -> BareJid {
        BareJid::new("web1@x").unwrap()
    }

    const UP: Seen = Seen::Available {
        away: false,
        dnd: false,
        starting: false,
    };

    #[test]
    fn presence_drives_status_idempotently() {
        let mut r = Registry::default();
        let c = r
            .presence(
                &web1(),
                Seen::Available {
                    away: false,
                    dnd: false,
                    starting: true,
                },
                0.0,
            )
            .unwrap();
        assert_eq!(
            (c.from, c.to),
            (CollectorState::Unknown, CollectorState::Starting)
        );
        assert_eq!(
            r.presence(&web1(), UP, 1.0).unwrap().to,
            CollectorState::Alive
        );
        assert!(
            r.presence(&web1(), UP, 2.0).is_none(),
            "repeated presence: no change"
        );
        assert_eq!(
            r.presence(
                &web1(),
                Seen::Available {
                    away: true,
                    dnd: false,
                    starting: false
                },
                3.0
            )
            .unwrap()
            .to,
            CollectorState::Busy
        );
        assert_eq!(
            r.presence(
                &web1(),
                Seen::Available {
                    away: false,
                    dnd: true,
                    starting: false
                },
                3.0
            )
            .unwrap()
            .to,
            CollectorState::Critical
        );
        assert_eq!(
            r.presence(&web1(), Seen::Unavailable { planned: false }, 4.0)
                .unwrap()
                .to,
            CollectorState::Dead
        );
        assert!(r
            .presence(&web1(), Seen::Unavailable { planned: false }, 4.0)
            .is_none());
    }

    #[test]
    fn replays_are_not_fresh() {
        let mut r = Registry::default();
        r.presence(&web1(), Seen::Unavailable { planned: false }, 100.0);
        assert!(
            !r.record_stats(&web1(), "web1", 10.0, 100.0),
            "older than a minute"
        );
        assert_eq!(
            r.get(&web1()).unwrap().status,
            CollectorState::Dead,
            "a replay does not revive"
        );
        assert!(r.record_stats(&web1(), "web1", 95.0, 100.0));
        assert!(
            !r.record_stats(&web1(), "web1", 95.0, 100.5),
            "same item twice"
        );
        assert!(!r.record_stats(&web1(), "web1", 94.0, 100.5));
    }

    #[test]
    fn silence_marks_dead() {
        let mut r = Registry::default();
        r.presence(&web1(), UP, 0.0);
        r.facts(
            &web1(),
            vec![
                ("host".into(), "web1".into()),
                ("publish_interval".into(), "2".into()),
            ],
        );
        assert_eq!(r.get(&web1()).unwrap().interval, 2.0);
        assert!(r.record_stats(&web1(), "web1", 0.0, 0.0));
        assert!(r.record_stats(&web1(), "web1", 2.0, 2.0));
        assert!(r.silence(7.9).is_empty());
        let changes = r.silence(8.1);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].to, CollectorState::Dead);
        assert_eq!(changes[0].host, "web1");
        assert!(r.silence(20.0).is_empty(), "once");
    }

    #[test]
    fn silence_counts_from_arrival_not_from_the_item_timestamp() {
        let mut r = Registry::default();
        r.presence(&web1(), UP, 0.0);
        // A busy server delivers items 5 s after they were published (interval 2 s).
        assert!(r.record_stats(&web1(), "web1", 0.0, 5.0));
        assert!(r.record_stats(&web1(), "web1", 2.0, 7.0));
        assert!(
            r.silence(12.9).is_empty(),
            "6 s after the last arrival, not 10.9"
        );
        assert_eq!(r.silence(13.1).len(), 1);
    }

    #[test]
    fn the_deadline_queue_finds_what_a_scan_of_every_collector_finds() {
        // A small linear congruential generator: the same sequence on every run.
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        let jids: Vec<BareJid> = (0..20)
            .map(|i| BareJid::new(&format!("c{i}@x")).unwrap())
            .collect();
        let mut r = Registry::new(3);
        let mut now = 0.0;
        let mut deaths = 0;
        for _ in 0..20_000 {
            now += next(1000) as f64 / 1000.0;
            let j = &jids[next(20) as usize];
            match next(8) {
                0 => {
                    r.presence(j, UP, now);
                }
                1 => {
                    let planned = next(2) == 0;
                    r.presence(j, Seen::Unavailable { planned }, now);
                }
                2 => {
                    let interval = (1 + next(4)).to_string();
                    r.facts(j, vec![("publish_interval".into(), interval)]);
                }
                3..=5 => {
                    r.record_stats(j, "h", now, now);
                }
                _ => {
                    let mut scan: Vec<BareJid> = r
                        .iter()
                        .filter(|c| c.status.is_alive())
                        .filter(|c| c.silent_at(3).is_some_and(|at| at < now))
                        .map(|c| c.jid.clone())
                        .collect();
                    let mut queued: Vec<BareJid> =
                        r.silence(now).into_iter().map(|c| c.jid).collect();
                    scan.sort();
                    queued.sort();
                    assert_eq!(queued, scan, "at {now}");
                    deaths += queued.len();
                }
            }
        }
        assert!(
            deaths > 100,
            "the sequence exercises the backstop: {deaths}"
        );
    }

    #[test]
    fn superseded_deadlines_do_not_pile_up() {
        let mut r = Registry::new(3);
        let jids: Vec<BareJid> = (0..10_000)
            .map(|i| BareJid::new(&format!("c{i}@x")).unwrap())
            .collect();
        for j in &jids {
            r.presence(j, UP, 0.0);
        }
        // Ten rounds of items 10 s apart, a tick every second.
        for round in 0..10 {
            for second in 0..10 {
                let now = f64::from(round * 10 + second);
                for j in jids.iter().skip(second as usize * 1000).take(1000) {
                    assert!(r.record_stats(j, "h", now, now));
                }
                assert!(r.silence(now + 0.5).is_empty(), "none is silent");
            }
        }
        // Items arrive every 10 s and a deadline comes due 30 s after: at most four per
        // collector are queued, however long the hub runs.
        assert!(r.deadlines.len() <= 4 * jids.len(), "{}", r.deadlines.len());
    }

    #[test]
    fn a_planned_stop_is_stopped_through_silence_until_the_collector_returns() {
        let mut r = Registry::default();
        r.presence(&web1(), UP, 0.0);
        assert!(r.record_stats(&web1(), "web1", 0.0, 0.0));
        let stop = r.presence(&web1(), Seen::Unavailable { planned: true }, 1.0);
        assert_eq!(stop.unwrap().to, CollectorState::Stopped);
        assert!(!CollectorState::Stopped.is_alive());
        assert!(r.silence(1000.0).is_empty(), "silence keeps it stopped");
        assert_eq!(r.get(&web1()).unwrap().status, CollectorState::Stopped);
        let back = r.presence(&web1(), UP, 1001.0).unwrap();
        assert_eq!(
            (back.from, back.to),
            (CollectorState::Stopped, CollectorState::Alive)
        );
        let crash = r.presence(&web1(), Seen::Unavailable { planned: false }, 1002.0);
        assert_eq!(crash.unwrap().to, CollectorState::Dead);
    }
}
