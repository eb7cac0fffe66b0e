//! What the hub counts about its own work (pure), read through the `stats` command: items and
//! events in, outputs and messages out, drops, caps lookups, and two latency samples — how old
//! a collector's item is when the hub receives it (its timestamp to arrival, the collector's
//! clock against the hub's) and how long the hub takes from arrival to having queued what the
//! item caused. Counters only grow; a reader takes differences between two reads for rates.

use std::collections::VecDeque;

/// Values kept per latency sample (the newest win).
pub const RECENT: usize = 8_192;

/// The newest [`RECENT`] values of a latency, in milliseconds.
#[derive(Debug, Clone)]
pub struct Recent {
    cap: usize,
    values: VecDeque<f64>,
}

impl Default for Recent {
    fn default() -> Self {
        Self::new(RECENT)
    }
}

/// Percentiles of a [`Recent`] sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Recent {
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            values: VecDeque::new(),
        }
    }

    /// Records one value (ms); NaN is ignored.
    pub fn push(&mut self, ms: f64) {
        if ms.is_nan() {
            return;
        }
        if self.values.len() == self.cap {
            self.values.pop_front();
        }
        self.values.push_back(ms);
    }

    /// p50, p99 and max of what is kept (all zero when empty).
    pub fn summary(&self) -> Summary {
        let mut v: Vec<f64> = self.values.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        let at = |p: f64| {
            let i = ((v.len().saturating_sub(1)) as f64 * p).round() as usize;
            v.get(i).copied().unwrap_or(0.0)
        };
        Summary {
            count: v.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: v.last().copied().unwrap_or(0.0),
        }
    }

    /// Forgets every value.
    pub fn clear(&mut self) {
        self.values.clear();
    }
}

/// The hub's counters since it started.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// PEP notifications from collectors (stats and events nodes).
    pub notifications: u64,
    /// Metric events fed to the engine (every stat of a fresh item, every collector event,
    /// every status change).
    pub events_in: u64,
    /// Engine outputs (event messages queued for users, before the rate limits).
    pub outputs: u64,
    /// Event messages sent to users.
    pub messages_out: u64,
    /// Caps lookups (disco#info) sent.
    pub caps_lookups: u64,
    /// Item timestamp → arrival at the hub, ms.
    pub lag: Recent,
    /// Arrival → everything the item caused is queued for sending, ms.
    pub work: Recent,
}

impl Counters {
    /// A notification whose events carried `timestamp`, received at `now` (seconds).
    pub fn item(&mut self, timestamp: Option<f64>, now: f64) {
        self.notifications += 1;
        if let Some(t) = timestamp {
            self.lag.push((now - t) * 1000.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_keeps_the_newest_and_summarises_them() {
        let mut r = Recent::new(100);
        assert_eq!(
            r.summary(),
            Summary {
                count: 0,
                p50: 0.0,
                p99: 0.0,
                max: 0.0
            }
        );
        for i in 0..200 {
            r.push(i as f64);
        }
        r.push(f64::NAN);
        let s = r.summary();
        assert_eq!(s.count, 100, "only the newest 100");
        assert_eq!(s.max, 199.0);
        assert_eq!(s.p50, 150.0);
        assert_eq!(s.p99, 198.0);
        r.clear();
        assert_eq!(r.summary().count, 0);
    }

    #[test]
    fn an_item_counts_and_records_its_age_in_ms() {
        let mut c = Counters::default();
        c.item(Some(10.0), 10.004);
        c.item(None, 11.0);
        assert_eq!(c.notifications, 2);
        let s = c.lag.summary();
        assert_eq!(s.count, 1);
        assert!((s.max - 4.0).abs() < 1e-6, "{s:?}");
    }
}
