//! The collector registry (pure) — the Domogik "manager" role: each collector's status
//! (`starting`, `alive`, `busy`, `critical`, `dead`, `unknown`), last-seen time, host label,
//! host facts and latest sample, from presence, stats items and silence.
//!
//! Replays are not fresh data: a stats item whose timestamp is not newer than the last one
//! seen, or older than [`STALE_AFTER`] seconds, updates nothing (servers notify one item to
//! both bare and full JID, and replay the last item to a new `+notify` subscriber — a dead
//! collector's replayed item must not make it alive).

use std::collections::BTreeMap;
use std::fmt;

/// Items older than this (seconds) are replays, not news.
pub const STALE_AFTER: f64 = 60.0;
/// Publish interval assumed until two items show the real one.
pub const DEFAULT_INTERVAL: f64 = 10.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Starting,
    Alive,
    Busy,
    Critical,
    Dead,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Alive => "alive",
            Status::Busy => "busy",
            Status::Critical => "critical",
            Status::Dead => "dead",
            Status::Unknown => "unknown",
        }
    }

    /// Value of `HOST.jabmon.status.alive`.
    pub fn alive(self) -> f64 {
        matches!(
            self,
            Status::Starting | Status::Alive | Status::Busy | Status::Critical
        ) as u8 as f64
    }

    /// Value of `HOST.jabmon.status.busy`.
    pub fn busy(self) -> f64 {
        matches!(self, Status::Busy | Status::Critical) as u8 as f64
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a presence said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Available; `starting` when the status text is `Starting up`.
    Available {
        away: bool,
        dnd: bool,
        starting: bool,
    },
    Unavailable,
}

/// One collector.
#[derive(Debug, Clone)]
pub struct Collector {
    pub jid: String,
    pub host: String,
    pub status: Status,
    pub last_seen: Option<f64>,
    pub last_sample: Option<f64>,
    pub facts: Vec<(String, String)>,
    pub interval: f64,
    pub stats: Vec<(String, f64)>,
}

/// A status change, to publish and to inject as events.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub jid: String,
    pub host: String,
    pub from: Status,
    pub to: Status,
}

/// Every known collector, by bare JID.
#[derive(Debug, Default)]
pub struct Registry {
    map: BTreeMap<String, Collector>,
}

impl Registry {
    fn entry(&mut self, jid: &str) -> &mut Collector {
        self.map
            .entry(jid.to_string())
            .or_insert_with(|| Collector {
                jid: jid.to_string(),
                host: jid.split('@').next().unwrap_or(jid).to_string(),
                status: Status::Unknown,
                last_seen: None,
                last_sample: None,
                facts: vec![],
                interval: DEFAULT_INTERVAL,
                stats: vec![],
            })
    }

    fn set(&mut self, jid: &str, to: Status) -> Option<Change> {
        let c = self.entry(jid);
        if c.status == to {
            return None;
        }
        let change = Change {
            jid: jid.to_string(),
            host: c.host.clone(),
            from: c.status,
            to,
        };
        c.status = to;
        Some(change)
    }

    /// Records host facts from the collector's disco#info form (with its `host` label and
    /// `publish_interval`, which set the silence deadline before any stats arrive).
    pub fn facts(&mut self, jid: &str, facts: Vec<(String, String)>) {
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
    }

    /// A presence from the collector.
    pub fn presence(&mut self, jid: &str, seen: Seen, now: f64) -> Option<Change> {
        self.entry(jid).last_seen = Some(now);
        let to = match seen {
            Seen::Unavailable => Status::Dead,
            Seen::Available { starting: true, .. } => Status::Starting,
            Seen::Available { dnd: true, .. } => Status::Critical,
            Seen::Available { away: true, .. } => Status::Busy,
            Seen::Available { .. } => Status::Alive,
        };
        self.set(jid, to)
    }

    /// A stats item; returns whether it is fresh (to be fed as events).
    pub fn stats(
        &mut self,
        jid: &str,
        host: &str,
        timestamp: f64,
        stats: Vec<(String, f64)>,
        now: f64,
    ) -> bool {
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
        c.last_seen = Some(now);
        c.stats = stats;
        true
    }

    /// Collectors believed alive whose stats stayed silent `intervals` publish intervals:
    /// the backstop when a stream dies without an unavailable presence.
    pub fn silence(&mut self, now: f64, intervals: u32) -> Vec<Change> {
        let silent: Vec<String> = self
            .map
            .values()
            .filter(|c| c.status.alive() == 1.0)
            .filter(|c| {
                let since = c.last_sample.or(c.last_seen).unwrap_or(now);
                now - since > c.interval * intervals as f64
            })
            .map(|c| c.jid.clone())
            .collect();
        silent
            .into_iter()
            .filter_map(|j| self.set(&j, Status::Dead))
            .collect()
    }

    pub fn get(&self, jid: &str) -> Option<&Collector> {
        self.map.get(jid)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Collector> {
        self.map.values()
    }

    pub fn is_known(&self, jid: &str) -> bool {
        self.map.contains_key(jid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                "web1@x",
                Seen::Available {
                    away: false,
                    dnd: false,
                    starting: true,
                },
                0.0,
            )
            .unwrap();
        assert_eq!((c.from, c.to), (Status::Unknown, Status::Starting));
        assert_eq!(r.presence("web1@x", UP, 1.0).unwrap().to, Status::Alive);
        assert!(
            r.presence("web1@x", UP, 2.0).is_none(),
            "repeated presence: no change"
        );
        assert_eq!(
            r.presence(
                "web1@x",
                Seen::Available {
                    away: true,
                    dnd: false,
                    starting: false
                },
                3.0
            )
            .unwrap()
            .to,
            Status::Busy
        );
        assert_eq!(
            r.presence(
                "web1@x",
                Seen::Available {
                    away: false,
                    dnd: true,
                    starting: false
                },
                3.0
            )
            .unwrap()
            .to,
            Status::Critical
        );
        assert_eq!(
            r.presence("web1@x", Seen::Unavailable, 4.0).unwrap().to,
            Status::Dead
        );
        assert!(r.presence("web1@x", Seen::Unavailable, 4.0).is_none());
    }

    #[test]
    fn replays_are_not_fresh() {
        let mut r = Registry::default();
        r.presence("web1@x", Seen::Unavailable, 100.0);
        assert!(
            !r.stats("web1@x", "web1", 10.0, vec![], 100.0),
            "older than a minute"
        );
        assert_eq!(
            r.get("web1@x").unwrap().status,
            Status::Dead,
            "a replay does not revive"
        );
        assert!(r.stats("web1@x", "web1", 95.0, vec![], 100.0));
        assert!(
            !r.stats("web1@x", "web1", 95.0, vec![], 100.5),
            "same item twice"
        );
        assert!(!r.stats("web1@x", "web1", 94.0, vec![], 100.5));
    }

    #[test]
    fn silence_marks_dead() {
        let mut r = Registry::default();
        r.presence("web1@x", UP, 0.0);
        r.facts(
            "web1@x",
            vec![
                ("host".into(), "web1".into()),
                ("publish_interval".into(), "2".into()),
            ],
        );
        assert_eq!(r.get("web1@x").unwrap().interval, 2.0);
        assert!(r.stats("web1@x", "web1", 0.0, vec![], 0.0));
        assert!(r.stats("web1@x", "web1", 2.0, vec![], 2.0));
        assert!(r.silence(7.9, 3).is_empty());
        let changes = r.silence(8.1, 3);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].to, Status::Dead);
        assert_eq!(changes[0].host, "web1");
        assert!(r.silence(20.0, 3).is_empty(), "once");
    }

    #[test]
    fn status_values() {
        assert_eq!((Status::Alive.alive(), Status::Alive.busy()), (1.0, 0.0));
        assert_eq!(
            (Status::Critical.alive(), Status::Critical.busy()),
            (1.0, 1.0)
        );
        assert_eq!((Status::Dead.alive(), Status::Dead.busy()), (0.0, 0.0));
    }
}
