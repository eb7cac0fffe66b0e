//! Per-user delivery of event messages (pure): a token bucket at
//! `max_events_per_second_per_user`, a bounded queue, pausing while the user has no available
//! resource, and drop counting reported once per registration when the user has caught up.
//! One user's backlog never delays another's: every user has their own bucket and queue.

use std::collections::{BTreeMap, VecDeque};
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
    users: BTreeMap<Arc<str>, UserQueue>,
    /// Where the next [`Delivery::drain_ready`] starts when the last one ran out of budget.
    next_user: Option<Arc<str>>,
    /// Total dropped since start (for metrics and logs).
    pub dropped_total: u64,
}

impl Delivery {
    /// `rate` messages per second per user (burst: one second's worth), `cap` queued per user.
    pub fn new(rate: u32, cap: usize) -> Self {
        Self {
            rate: rate.max(1) as f64,
            cap: cap.max(1),
            users: BTreeMap::new(),
            next_user: None,
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

    /// Takes the messages to send now, at most `budget` of them: `(user, key, body)`. When a
    /// user has caught up (empty queue) each registration that dropped events gets one
    /// `dropped` report. A budget smaller than what is ready is shared one message per user in
    /// turn, and the next call starts after the last user served, so no user waits on another.
    pub fn drain_ready(
        &mut self,
        now: f64,
        mut budget: usize,
        mut dropped_body: impl FnMut(&str, &str, u64) -> String,
    ) -> Vec<(Arc<str>, Arc<str>, String)> {
        let rate = self.rate;
        for q in self.users.values_mut().filter(|q| q.online) {
            q.tokens = (q.tokens + (now - q.last_refill).max(0.0) * rate).min(rate);
            q.last_refill = now;
        }
        let mut out = Vec::new();
        let mut order: Vec<Arc<str>> = match &self.next_user {
            Some(first) => self
                .users
                .range::<Arc<str>, _>(first..)
                .chain(self.users.range::<Arc<str>, _>(..first))
                .map(|(u, _)| u.clone())
                .collect(),
            None => self.users.keys().cloned().collect(),
        };
        while budget > 0 && !order.is_empty() {
            let mut still_ready = Vec::with_capacity(order.len());
            for user in order {
                if budget == 0 {
                    self.next_user = Some(user);
                    return out;
                }
                let q = self.users.get_mut(&user).expect("listed");
                if !q.online {
                    continue;
                }
                if q.tokens >= 1.0 {
                    if let Some(p) = q.queue.pop_front() {
                        q.tokens -= 1.0;
                        budget -= 1;
                        out.push((user.clone(), p.key, p.body));
                    }
                }
                if q.queue.is_empty() {
                    while budget > 0 {
                        let Some((key, n)) = q.dropped.pop_first() else {
                            break;
                        };
                        budget -= 1;
                        out.push((user.clone(), key.clone(), dropped_body(&user, &key, n)));
                    }
                }
                // Dropped reports wait until the queue is empty.
                let more = if q.queue.is_empty() {
                    !q.dropped.is_empty()
                } else {
                    q.tokens >= 1.0
                };
                if more {
                    still_ready.push(user);
                }
            }
            order = still_ready;
        }
        self.next_user = order.into_iter().next();
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
        assert_eq!(
            d.drain_ready(0.0, usize::MAX, report).len(),
            5,
            "burst of one second"
        );
        assert_eq!(
            d.drain_ready(0.5, usize::MAX, report).len(),
            2,
            "2.5 tokens in half a second"
        );
        assert_eq!(d.drain_ready(1.5, usize::MAX, report).len(), 5);
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
            d.drain_ready(1.0, usize::MAX, report).is_empty(),
            "paused while offline"
        );
        d.set_online(&u, true, 2.0);
        let out: Vec<String> = d
            .drain_ready(2.0, usize::MAX, report)
            .into_iter()
            .map(|o| o.2)
            .collect();
        assert_eq!(out, vec!["a0", "a1", "a2", "dropped k1 2", "dropped k2 1"]);
        assert!(
            d.drain_ready(3.0, usize::MAX, report).is_empty(),
            "reported once"
        );
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
        let out = d.drain_ready(0.0, usize::MAX, report);
        assert_eq!(out.len(), 1);
        assert_eq!(&*out[0].0, "fast@x");
    }

    #[test]
    fn out_of_tokens_with_drops_pending_ends_the_round() {
        let mut d = Delivery::new(2, 3);
        let (u, k) = (a("u@x"), a("k"));
        for i in 0..6 {
            d.push(&u, &k, format!("e{i}"), 0.0);
        }
        let out = d.drain_ready(0.0, usize::MAX, report);
        assert_eq!(
            out.len(),
            2,
            "two tokens; the drops wait for an empty queue"
        );
    }

    #[test]
    fn a_small_budget_is_shared_in_turn() {
        let mut d = Delivery::new(100, 100);
        let k = a("k");
        for u in ["a@x", "b@x", "c@x"] {
            for i in 0..3 {
                d.push(&a(u), &k, format!("{u}{i}"), 0.0);
            }
        }
        let users = |out: Vec<(Arc<str>, Arc<str>, String)>| {
            out.into_iter().map(|o| o.2).collect::<Vec<_>>()
        };
        assert_eq!(users(d.drain_ready(0.0, 2, report)), ["a@x0", "b@x0"]);
        assert_eq!(
            users(d.drain_ready(0.0, 2, report)),
            ["c@x0", "a@x1"],
            "the next call starts after the last user served"
        );
        assert_eq!(
            users(d.drain_ready(0.0, 10, report)),
            ["b@x1", "c@x1", "a@x2", "b@x2", "c@x2"]
        );
        assert!(d.drain_ready(0.0, 10, report).is_empty());
    }
}
