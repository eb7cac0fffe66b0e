//! Publishing over PEP (XEP-0163): stats to `urn:jabmon:stats:0` (item `current`) and events
//! to `urn:jabmon:events:0` (a fresh item id each), with publish-options. This is the policy
//! part — what to send, and what to do when the server says no — kept apart from the session
//! so it can be tested on its own.
//!
//! A refusal is logged once with the server's reason, then retried with backoff (1 s doubling
//! to 60 s); events wait in a bounded queue meanwhile. ejabberd refuses `pubsub#max_items` as
//! a publish-option: after such a refusal the publisher drops to `pubsub#access_model` alone
//! (never retrying the identical request).

use std::collections::VecDeque;
use std::time::Duration;

use jabmon_shared::ns;
use jabmon_shared::payload::Event;
use jabmon_shared::pep;
use jabmon_shared::session::backoff::{random_unit, Backoff};
use minidom::Element;
use xmpp_parsers::stanza_error::StanzaError;

/// Events kept while publishing fails; the oldest are dropped beyond this.
pub const QUEUE_CAP: usize = 256;

/// What a publish request carried.
#[derive(Debug, Clone, PartialEq)]
pub enum Published {
    Stats,
    Event(Box<Event>),
}

/// Publisher state.
#[derive(Debug)]
pub struct Publisher {
    options: pep::OptionsFallback,
    failing: bool,
    retry_at: f64,
    backoff: Backoff,
    queue: VecDeque<Event>,
    counter: u64,
}

impl Default for Publisher {
    fn default() -> Self {
        Self {
            options: pep::OptionsFallback::default(),
            failing: false,
            retry_at: 0.0,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
            queue: VecDeque::new(),
            counter: 0,
        }
    }
}

impl Publisher {
    fn options(&self, max_items: &'static str) -> Vec<(&'static str, &'static str)> {
        self.options
            .options(&[("pubsub#access_model", "presence")], max_items)
    }

    /// Whether publishing is allowed at `now` (not backing off).
    pub fn ready(&self, now: f64) -> bool {
        now >= self.retry_at
    }

    /// The stats publish request.
    pub fn stats_request(&self, payload: Element) -> Element {
        pep::publish(ns::STATS, "current", payload, &self.options("1"))
    }

    /// Queues an event.
    pub fn push(&mut self, event: Event) {
        if self.queue.len() >= QUEUE_CAP {
            self.queue.pop_front();
            tracing::warn!("Event queue full: dropped the oldest event.");
        }
        self.queue.push_back(event);
    }

    /// Takes the queued events to publish now, with their requests (none while backing off).
    pub fn drain(&mut self, now: f64) -> Vec<(Event, Element)> {
        if !self.ready(now) {
            return vec![];
        }
        let mut out = Vec::new();
        while let Some(event) = self.queue.pop_front() {
            self.counter += 1;
            let id = format!("{}-{}", (event.timestamp * 1000.0) as u64, self.counter);
            let req = pep::publish(ns::EVENTS, &id, event.clone().into(), &self.options("100"));
            out.push((event, req));
        }
        out
    }

    /// Records the server's answer to a publish.
    pub fn answered(
        &mut self,
        what: Published,
        outcome: Result<(), Option<StanzaError>>,
        now: f64,
    ) {
        match outcome {
            Ok(()) => {
                if self.failing {
                    tracing::info!("Publishing works again.");
                }
                self.failing = false;
                self.backoff.reset();
            }
            Err(error) => {
                if let Some(e) = &error {
                    if self.options.refused(e) {
                        if let Published::Event(ev) = what {
                            self.queue.push_front(*ev);
                        }
                        return;
                    }
                }
                let delay = self.backoff.next_delay(random_unit());
                if !self.failing {
                    let reason = error
                        .as_ref()
                        .map(pep::describe)
                        .unwrap_or_else(|| "connection lost".into());
                    tracing::warn!(%reason, retry_in = ?delay, "PEP publish failed; retrying with backoff.");
                }
                self.failing = true;
                self.retry_at = now + delay.as_secs_f64();
                if let Published::Event(ev) = what {
                    self.queue.push_front(*ev);
                }
            }
        }
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jabmon_shared::payload::EventKind;
    use jabmon_shared::session::stanza_error;
    use xmpp_parsers::stanza_error::DefinedCondition;

    fn ev(t: f64) -> Event {
        Event {
            host: "h".into(),
            timestamp: t,
            kind: EventKind::Started,
            severity: None,
            boot: None,
            metric: None,
            command: None,
            text: None,
        }
    }

    #[test]
    fn refusal_backs_off_and_requeues() {
        let mut p = Publisher::default();
        p.push(ev(1.0));
        let sent = p.drain(0.0);
        assert_eq!(sent.len(), 1);
        let forbidden = stanza_error(DefinedCondition::Forbidden, Some("nope"));
        p.answered(
            Published::Event(Box::new(sent[0].0.clone())),
            Err(Some(forbidden.clone())),
            10.0,
        );
        assert_eq!(p.queued(), 1);
        assert!(!p.ready(10.5), "no tight loop");
        assert!(p.drain(10.5).is_empty());
        let again = p.drain(12.5);
        assert_eq!(again.len(), 1);
        p.answered(
            Published::Event(Box::new(again[0].0.clone())),
            Err(Some(forbidden)),
            12.5,
        );
        // Delays are 1 s then 2 s, each ±20 %: at 1.25 s the first would be over.
        assert!(!p.ready(12.5 + 1.25), "second delay is longer (≈2 s)");
        assert!(p.ready(12.5 + 2.5));
        assert_eq!(p.queued(), 1, "the refused event waits again");
        // A success starts the backoff again from 1 s (a third delay would be ≈4 s).
        p.answered(Published::Stats, Ok(()), 20.0);
        assert!(p.ready(20.0));
        assert_eq!(p.queued(), 1, "a stats answer leaves the queue alone");
        let again = p.drain(20.0);
        assert_eq!(again.len(), 1);
        let refused = Err(Some(stanza_error(DefinedCondition::Forbidden, None)));
        p.answered(
            Published::Event(Box::new(again[0].0.clone())),
            refused,
            20.0,
        );
        assert!(!p.ready(20.0 + 0.75));
        assert!(p.ready(20.0 + 1.25), "back to the first delay");
    }

    #[test]
    fn ejabberd_options_refusal_drops_max_items() {
        let mut p = Publisher::default();
        let req = p.stats_request(Element::builder("stats", ns::STATS).build());
        assert!(String::from(&req).contains("pubsub#max_items"));
        let e = stanza_error(
            DefinedCondition::ResourceConstraint,
            Some("Unknown field 'pubsub#max_items'"),
        );
        p.answered(Published::Stats, Err(Some(e)), 0.0);
        let req = p.stats_request(Element::builder("stats", ns::STATS).build());
        let text = String::from(&req);
        assert!(!text.contains("pubsub#max_items") && text.contains("pubsub#access_model"));
        assert!(p.ready(0.0), "a different request, sent at once");
    }
}
