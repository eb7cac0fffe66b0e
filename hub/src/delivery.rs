//! Per-user delivery of event messages (pure): a token bucket at
//! `max_events_per_second_per_user`, a bounded queue, pausing while the user has no available
//! resource, and drop counting reported once per registration when the user has caught up.
//! One user's backlog never delays another's: every user has their own bucket and queue.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

struct Pending {
    key: Arc<str>,
    body: String,
}

struct UserQueue {
    tokens: f64,
    last_refill: f64,
    online: bool,
    queue: VecDeque<Pending>,
    dropped: BTreeMap<Arc<str>, u64>,
}

/// All users' queues.
pub struct Delivery {
    rate: f64,
    cap: usize,
    users: HashMap<Arc<str>, UserQueue>,
    /// Total dropped since start (for metrics and logs).
    pub dropped_total: u64,
}

impl Delivery {
    /// `rate` messages per second per user (burst: one second's worth), `cap` queued per user.
    pub fn new(rate: u32, cap: usize) -> Self {
        Self {
            rate: rate.max(1) as f64,
            cap: cap.max(1),
            users: HashMap::new(),
            dropped_total: 0,
        }
    }

    fn user(&mut self, user: &Arc<str>, now: f64) -> &mut UserQueue {
        let rate = self.rate;
        self.users.entry(user.clone()).or_insert_with(|| UserQueue {
            tokens: rate,
            last_refill: now,
            online: true,
            queue: VecDeque::new(),
            dropped: BTreeMap::new(),
        })
    }

    /// Queues one event message for `user` (the bare JID); a full queue drops it and counts.
    pub fn push(&mut self, user: &Arc<str>, key: &Arc<str>, body: String, now: f64) {
        let cap = self.cap;
        let q = self.user(user, now);
        if q.queue.len() >= cap {
            *q.dropped.entry(key.clone()).or_insert(0) += 1;
            self.dropped_total += 1;
            return;
        }
        q.queue.push_back(Pending {
            key: key.clone(),
            body,
        });
    }

    /// Marks a user online (an available resource) or offline (none).
    pub fn set_online(&mut self, user: &Arc<str>, online: bool, now: f64) {
        let q = self.user(user, now);
        q.online = online;
        if online {
            q.last_refill = q.last_refill.max(now - 1.0);
        }
    }

    /// Whether a user is online (not paused); a user never seen is.
    pub fn is_online(&self, user: &str) -> bool {
        self.users.get(user).is_none_or(|q| q.online)
    }

    /// Forgets a user's pending messages for `key` (registration deleted).
    pub fn forget_key(&mut self, user: &str, key: &str) {
        if let Some(q) = self.users.get_mut(user) {
            q.queue.retain(|p| &*p.key != key);
            q.dropped.remove(key);
        }
    }

    /// Takes the messages to send now: `(user, key, body)`. When a user has caught up (empty queue)
    /// each registration that dropped events gets one `dropped` report.
    pub fn drain_ready(
        &mut self,
        now: f64,
        mut dropped_body: impl FnMut(&str, &str, u64) -> String,
    ) -> Vec<(Arc<str>, Arc<str>, String)> {
        let mut out = Vec::new();
        let rate = self.rate;
        for (user, q) in self.users.iter_mut() {
            if !q.online {
                continue;
            }
            q.tokens = (q.tokens + (now - q.last_refill).max(0.0) * rate).min(rate);
            q.last_refill = now;
            while q.tokens >= 1.0 {
                let Some(p) = q.queue.pop_front() else { break };
                q.tokens -= 1.0;
                out.push((user.clone(), p.key, p.body));
            }
            if q.queue.is_empty() && !q.dropped.is_empty() {
                for (key, n) in std::mem::take(&mut q.dropped) {
                    let body = dropped_body(user, &key, n);
                    out.push((user.clone(), key, body));
                }
            }
        }
        out
    }

    /// Messages waiting for `user`.
    pub fn queued(&self, user: &str) -> usize {
        self.users.get(user).map(|q| q.queue.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    fn report(_user: &str, key: &str, n: u64) -> String {
        format!("dropped {key} {n}")
    }

    #[test]
    fn token_bucket_limits_rate() {
        let mut d = Delivery::new(5, 100);
        let (u, k) = (a("u@x"), a("k"));
        for i in 0..20 {
            d.push(&u, &k, format!("e{i}"), 0.0);
        }
        assert_eq!(d.drain_ready(0.0, report).len(), 5, "burst of one second");
        assert_eq!(
            d.drain_ready(0.5, report).len(),
            2,
            "2.5 tokens in half a second"
        );
        assert_eq!(d.drain_ready(1.5, report).len(), 5);
        assert_eq!(d.queued("u@x"), 8);
    }

    #[test]
    fn full_queue_drops_and_reports_once_per_key_after_catching_up() {
        let mut d = Delivery::new(100, 3);
        let (u, k1, k2) = (a("u@x"), a("k1"), a("k2"));
        d.set_online(&u, false, 0.0);
        for i in 0..5 {
            d.push(&u, &k1, format!("a{i}"), 0.0);
        }
        d.push(&u, &k2, "b".into(), 0.0);
        assert!(
            d.drain_ready(1.0, report).is_empty(),
            "paused while offline"
        );
        d.set_online(&u, true, 2.0);
        let out: Vec<String> = d
            .drain_ready(2.0, report)
            .into_iter()
            .map(|o| o.2)
            .collect();
        assert_eq!(out, vec!["a0", "a1", "a2", "dropped k1 2", "dropped k2 1"]);
        assert!(d.drain_ready(3.0, report).is_empty(), "reported once");
        assert_eq!(d.dropped_total, 3);
    }

    #[test]
    fn users_are_independent() {
        let mut d = Delivery::new(2, 10);
        let (slow, fast, k) = (a("slow@x"), a("fast@x"), a("k"));
        d.set_online(&slow, false, 0.0);
        for _ in 0..10 {
            d.push(&slow, &k, "s".into(), 0.0);
        }
        d.push(&fast, &k, "f".into(), 0.0);
        let out = d.drain_ready(0.0, report);
        assert_eq!(out.len(), 1);
        assert_eq!(&*out[0].0, "fast@x");
    }
}
