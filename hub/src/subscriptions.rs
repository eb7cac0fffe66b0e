//! The hub's explicit XEP-0060 subscriptions to its collectors' stats and events nodes
//! (pure): `+notify` alone does not cross the nodes of an ejabberd cluster
//! (docs/operations.md), so the hub also subscribes, once per stream and collector.
//!
//! - **Paced.** At most [`MAX_IN_FLIGHT`] requests are out at once; the rest wait in order.
//!   ejabberd works through one client's requests one at a time, and a subscription (a
//!   database transaction) is slow beside a caps lookup, which it only routes: a fleet's
//!   subscriptions sent at once would hold every caps lookup of the start-up behind them.
//! - **A refusal is asked again, alone.** A collector's node exists only from its first
//!   publish. A refused node is asked again [`RETRY`] seconds later, the wait doubling up to
//!   [`RETRY_MAX`] (one that never publishes events must not cost a request every few
//!   seconds). Only the refused node: asking for an accepted one again adds a second
//!   subscription on ejabberd, and with it a second copy of every item.
//! - **Per stream.** A fresh stream (not resumed) asks for everything again; the requests of
//!   the lost one fail after it is up, and those failures are not refusals.

use std::collections::{HashMap, HashSet, VecDeque};

use xmpp_parsers::jid::BareJid;

/// Subscription requests out at once, at most.
pub const MAX_IN_FLIGHT: usize = 8;
/// Seconds before the first new try of a refused subscription.
pub const RETRY: f64 = 2.0;
/// The longest wait between two tries of a refused subscription, seconds.
pub const RETRY_MAX: f64 = 300.0;

/// One subscription to ask for: a collector and one of its nodes.
pub type Request = (BareJid, &'static str);

/// What an answer changed, to be said in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// Accepted after one or more refusals.
    AcceptedAfterRefusal,
    /// Refused for the first time.
    FirstRefusal,
    /// Accepted at once, or refused again.
    Quiet,
}

#[derive(Debug, Clone, Copy)]
struct Retry {
    /// Infinite while the request is out (its answer sets the next try).
    at: f64,
    wait: f64,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Subscriptions {
    /// Collectors subscribed to on this stream (or being subscribed to).
    subscribed: HashSet<BareJid>,
    refused: HashMap<Request, Retry>,
    queue: VecDeque<Request>,
    /// Requests sent on this stream and not answered yet.
    out: HashSet<Request>,
}

impl Subscriptions {
    /// A new stream: nothing is subscribed, nothing is out.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Subscriptions queued or out.
    pub fn pending(&self) -> usize {
        self.queue.len() + self.out.len()
    }

    /// A collector is available: its nodes are asked for unless they already were on this
    /// stream. Returns the requests to send now.
    pub fn collector_seen(
        &mut self,
        collector: &BareJid,
        nodes: [&'static str; 2],
    ) -> Vec<Request> {
        if self.subscribed.insert(collector.clone()) {
            self.queue
                .extend(nodes.into_iter().map(|n| (collector.clone(), n)));
        }
        self.next()
    }

    /// The answer to a request; returns what to log and the requests to send now. The answer
    /// to a request of an earlier stream (failed when that stream was lost) changes nothing.
    pub fn answered(
        &mut self,
        request: Request,
        accepted: bool,
        now: f64,
    ) -> (Answered, Vec<Request>) {
        if !self.out.remove(&request) {
            return (Answered::Quiet, vec![]);
        }
        let said = if accepted {
            match self.refused.remove(&request) {
                Some(_) => Answered::AcceptedAfterRefusal,
                None => Answered::Quiet,
            }
        } else {
            let wait = self
                .refused
                .get(&request)
                .map_or(RETRY, |r| (r.wait * 2.0).min(RETRY_MAX));
            match self.refused.insert(
                request,
                Retry {
                    at: now + wait,
                    wait,
                },
            ) {
                None => Answered::FirstRefusal,
                Some(_) => Answered::Quiet,
            }
        };
        (said, self.next())
    }

    /// Refused subscriptions whose wait is over, of collectors `online` says are there, are
    /// queued again; returns the requests to send now.
    pub fn tick(&mut self, now: f64, online: impl Fn(&BareJid) -> bool) -> Vec<Request> {
        let mut due: Vec<Request> = self
            .refused
            .iter()
            .filter(|((c, _), r)| r.at <= now && online(c))
            .map(|(request, _)| request.clone())
            .collect();
        due.sort();
        for request in due {
            if let Some(r) = self.refused.get_mut(&request) {
                r.at = f64::INFINITY;
            }
            self.queue.push_back(request);
        }
        self.next()
    }

    fn next(&mut self) -> Vec<Request> {
        let mut out = Vec::new();
        while self.out.len() < MAX_IN_FLIGHT {
            let Some(request) = self.queue.pop_front() else {
                break;
            };
            self.out.insert(request.clone());
            out.push(request);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: [&str; 2] = ["stats", "events"];

    fn jid(i: usize) -> BareJid {
        BareJid::new(&format!("c{i}@x")).unwrap()
    }

    #[test]
    fn a_fleet_is_subscribed_to_a_few_requests_at_a_time_and_each_once() {
        let mut s = Subscriptions::default();
        let mut out: Vec<Request> = Vec::new();
        for i in 0..100 {
            out.extend(s.collector_seen(&jid(i), NODES));
            out.extend(s.collector_seen(&jid(i), NODES));
        }
        assert_eq!(out.len(), MAX_IN_FLIGHT, "the rest wait");
        let mut sent = out.clone();
        while let Some(request) = out.pop() {
            let (_, next) = s.answered(request, true, 0.0);
            assert!(s.out.len() <= MAX_IN_FLIGHT);
            sent.extend(next.iter().cloned());
            out.extend(next);
        }
        let distinct: HashSet<&Request> = sent.iter().collect();
        assert_eq!((sent.len(), distinct.len(), s.pending()), (200, 200, 0));
        s.reset();
        assert_eq!(
            s.collector_seen(&jid(1), NODES).len(),
            2,
            "a new stream asks again"
        );
    }

    #[test]
    fn answers_to_a_lost_stream_change_nothing_on_the_next() {
        let mut s = Subscriptions::default();
        for i in 0..10 {
            s.collector_seen(&jid(i), NODES);
        }
        s.reset();
        // The old stream's requests fail once the new one is up.
        for i in 0..10 {
            for node in NODES {
                let (said, next) = s.answered((jid(i), node), false, 1.0);
                assert_eq!((said, next.len()), (Answered::Quiet, 0));
            }
        }
        assert!(
            s.tick(1_000.0, |_| true).is_empty(),
            "nothing refused on this stream"
        );
        assert_eq!(s.collector_seen(&jid(1), NODES).len(), 2);
        assert_eq!(s.pending(), 2);
    }

    #[test]
    fn only_the_refused_node_is_asked_again_with_a_doubling_wait() {
        let mut s = Subscriptions::default();
        let sent = s.collector_seen(&jid(1), NODES);
        assert_eq!(sent, [(jid(1), "stats"), (jid(1), "events")]);
        let (said, _) = s.answered((jid(1), "stats"), false, 10.0);
        assert_eq!(said, Answered::FirstRefusal);
        s.answered((jid(1), "events"), true, 10.0);
        assert!(s.tick(10.0 + RETRY / 2.0, |_| true).is_empty());
        assert!(
            s.tick(10.0 + RETRY, |_| false).is_empty(),
            "not while offline"
        );
        assert_eq!(s.tick(10.0 + RETRY, |_| true), [(jid(1), "stats")]);
        assert!(s.tick(20.0, |_| true).is_empty(), "nothing while it is out");
        let mut at = 20.0;
        let mut waits = Vec::new();
        for _ in 0..10 {
            let (said, _) = s.answered((jid(1), "stats"), false, at);
            assert_eq!(said, Answered::Quiet);
            let mut next = at + 1.0;
            while s.tick(next, |_| true).is_empty() {
                next += 1.0;
            }
            waits.push((next - at).round() as u64);
            at = next;
        }
        assert_eq!(waits, [4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        let (said, _) = s.answered((jid(1), "stats"), true, at);
        assert_eq!((said, s.pending()), (Answered::AcceptedAfterRefusal, 0));
    }
}
