//! Publishing over PEP (XEP-0163): stats to `urn:jabmon:stats:0` (item `current`) and events
//! to `urn:jabmon:events:0` (a fresh item id each), with publish-options. This is the policy
//! part — what to send, and what to do when the server says no — kept apart from the session
//! so it can be tested on its own.
//!
//! A refusal is logged once with the server's reason, then retried with backoff (1 s doubling
//! to 60 s); events wait in a bounded queue meanwhile. ejabberd refuses `pubsub#max_items` as
//! a publish-option: after such a refusal the publisher drops to the other options (never
//! retrying the identical request).
//!
//! Stats are published with `pubsub#persist_items=false`: the server keeps no stored copy of
//! a value that is replaced every interval (on Prosody that is a disk write per publish), and
//! nothing reads a stored stats item back — subscribers take the next publish. A stats node
//! created persistent by an earlier version is refused with `precondition-not-met`; the
//! publisher then reconfigures the node once (`pubsub#owner` configure) and publishes again.
//! If the server refuses that too, stats are published persistent, as before.

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

/// The stats node's `pubsub#persist_items`, as asked and as the node is configured.
const NOT_PERSISTED: (&str, &str) = ("pubsub#persist_items", "false");

/// What a request carried.
#[derive(Debug, Clone, PartialEq)]
pub enum Published {
    Stats,
    Event(Box<Event>),
    /// The reconfiguration of the stats node to `pubsub#persist_items=false`.
    StatsNodeConfig,
}

/// Where the stats node stands with [`NOT_PERSISTED`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatsNode {
    /// Stats are published asking for it.
    Asking,
    /// The server said the node is configured otherwise: reconfigure it (sent by `drain`).
    ConfigureDue,
    /// The reconfiguration is on its way.
    Configuring,
    /// Asking again after a reconfiguration (a second refusal gives up).
    Reconfigured,
    /// The server would not have it: stats are published persistent.
    Persisted,
}

/// Publisher state.
#[derive(Debug)]
pub struct Publisher {
    options: pep::OptionsFallback,
    stats_node: StatsNode,
    /// Publish stats again at once (after a refusal that changed the request).
    stats_again: bool,
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
            stats_node: StatsNode::Asking,
            stats_again: false,
            failing: false,
            retry_at: 0.0,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
            queue: VecDeque::new(),
            counter: 0,
        }
    }
}

impl Publisher {
    fn options(
        &self,
        extra: &[(&'static str, &'static str)],
        max_items: &'static str,
    ) -> Vec<(&'static str, &'static str)> {
        let mut base = vec![("pubsub#access_model", "presence")];
        base.extend_from_slice(extra);
        self.options.options(&base, max_items)
    }

    /// Whether publishing is allowed at `now` (not backing off).
    pub fn ready(&self, now: f64) -> bool {
        now >= self.retry_at
    }

    /// Whether stats should go out at once rather than at the next interval: the last request
    /// was refused in a way that changed what the next one asks.
    pub fn stats_again(&self) -> bool {
        self.stats_again && self.stats_node != StatsNode::Configuring
    }

    /// The stats publish request.
    pub fn stats_request(&mut self, payload: Element) -> Element {
        self.stats_again = false;
        let extra: &[_] = match self.stats_node {
            StatsNode::Persisted => &[],
            _ => &[NOT_PERSISTED],
        };
        pep::publish(ns::STATS, "current", payload, &self.options(extra, "1"))
    }

    /// Queues an event.
    pub fn push(&mut self, event: Event) {
        if self.queue.len() >= QUEUE_CAP {
            self.queue.pop_front();
            tracing::warn!("Event queue full: dropped the oldest event.");
        }
        self.queue.push_back(event);
    }

    /// The requests to send now (none while backing off): the stats node's reconfiguration
    /// when due, then the queued events.
    pub fn drain(&mut self, now: f64) -> Vec<(Published, Element)> {
        if !self.ready(now) {
            return vec![];
        }
        let mut out = Vec::new();
        if self.stats_node == StatsNode::ConfigureDue {
            self.stats_node = StatsNode::Configuring;
            let request = pep::configure(ns::STATS, &[NOT_PERSISTED]);
            out.push((Published::StatsNodeConfig, request));
        }
        while let Some(event) = self.queue.pop_front() {
            self.counter += 1;
            let id = format!("{}-{}", (event.timestamp * 1000.0) as u64, self.counter);
            let req = pep::publish(
                ns::EVENTS,
                &id,
                event.clone().into(),
                &self.options(&[], "100"),
            );
            out.push((Published::Event(Box::new(event)), req));
        }
        out
    }

    /// Records the server's answer to a request.
    pub fn answered(
        &mut self,
        what: Published,
        outcome: Result<(), Option<StanzaError>>,
        now: f64,
    ) {
        let error = match outcome {
            Ok(()) => {
                if what == Published::StatsNodeConfig {
                    tracing::info!(
                        "Stats node reconfigured: the server no longer stores stats items."
                    );
                    self.stats_node = StatsNode::Reconfigured;
                    self.stats_again = true;
                }
                if self.failing {
                    tracing::info!("Publishing works again.");
                }
                self.failing = false;
                self.backoff.reset();
                return;
            }
            Err(error) => error,
        };
        match (&what, &error) {
            (Published::StatsNodeConfig, _) => {
                let reason = error
                    .as_ref()
                    .map(pep::describe)
                    .unwrap_or_else(|| "connection lost".into());
                tracing::warn!(%reason, "Could not reconfigure the stats node; publishing stats persistent.");
                self.stats_node = StatsNode::Persisted;
                self.stats_again = true;
                return;
            }
            (Published::Stats, Some(e)) if pep::precondition_not_met(e) => match self.stats_node {
                StatsNode::Asking => {
                    tracing::info!("The stats node stores items; reconfiguring it not to.");
                    self.stats_node = StatsNode::ConfigureDue;
                    return;
                }
                StatsNode::Reconfigured => {
                    tracing::warn!(reason = %pep::describe(e), "Stats node still refuses pubsub#persist_items=false; publishing stats persistent.");
                    self.stats_node = StatsNode::Persisted;
                    self.stats_again = true;
                    return;
                }
                _ => {}
            },
            _ => {}
        }
        if let Some(e) = &error {
            if self.options.refused(e) {
                match what {
                    Published::Event(ev) => self.queue.push_front(*ev),
                    _ => self.stats_again = true,
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
        p.answered(sent[0].0.clone(), Err(Some(forbidden.clone())), 10.0);
        assert_eq!(p.queued(), 1);
        assert!(!p.ready(10.5), "no tight loop");
        assert!(p.drain(10.5).is_empty());
        let again = p.drain(12.5);
        assert_eq!(again.len(), 1);
        p.answered(again[0].0.clone(), Err(Some(forbidden)), 12.5);
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
        p.answered(again[0].0.clone(), refused, 20.0);
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
        assert!(
            p.ready(0.0) && p.stats_again(),
            "a different request, sent at once"
        );
        let req = p.stats_request(Element::builder("stats", ns::STATS).build());
        let text = String::from(&req);
        assert!(!text.contains("pubsub#max_items") && text.contains("pubsub#access_model"));
        assert!(text.contains("pubsub#persist_items"));
        assert!(!p.stats_again());
    }

    fn precondition_not_met() -> StanzaError {
        let mut e = stanza_error(DefinedCondition::Conflict, None);
        e.other =
            Some(Element::builder("precondition-not-met", xmpp_parsers::ns::PUBSUB_ERRORS).build());
        e
    }

    fn stats(p: &mut Publisher) -> String {
        String::from(&p.stats_request(Element::builder("stats", ns::STATS).build()))
    }

    #[test]
    fn a_persistent_stats_node_is_reconfigured_once() {
        let mut p = Publisher::default();
        let first = stats(&mut p);
        assert!(first.contains("pubsub#persist_items") && first.contains("<value>false</value>"));
        p.answered(Published::Stats, Err(Some(precondition_not_met())), 0.0);
        assert!(p.ready(0.0), "no backoff: the node is reconfigured first");
        assert!(!p.stats_again(), "not before the node is reconfigured");
        let sent = p.drain(0.0);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, Published::StatsNodeConfig);
        let config = String::from(&sent[0].1);
        assert!(config.contains("pubsub#owner") && config.contains("pubsub#persist_items"));
        assert!(p.drain(0.0).is_empty(), "sent once");
        p.answered(Published::StatsNodeConfig, Ok(()), 0.1);
        assert!(p.stats_again(), "stats go out again at once");
        assert!(stats(&mut p).contains("pubsub#persist_items"));
        // Refused again after the reconfiguration: persistent from then on, no loop.
        p.answered(Published::Stats, Err(Some(precondition_not_met())), 0.2);
        assert!(p.stats_again());
        assert!(!stats(&mut p).contains("pubsub#persist_items"));
        // Then without pubsub#max_items (the publish-options fallback), then backoff.
        p.answered(Published::Stats, Err(Some(precondition_not_met())), 0.3);
        assert!(p.stats_again() && !stats(&mut p).contains("pubsub#max_items"));
        p.answered(Published::Stats, Err(Some(precondition_not_met())), 0.4);
        assert!(!p.ready(0.4), "a fourth refusal backs off");
    }

    #[test]
    fn a_refused_reconfiguration_publishes_stats_persistent() {
        let mut p = Publisher::default();
        p.answered(Published::Stats, Err(Some(precondition_not_met())), 0.0);
        let sent = p.drain(0.0);
        let forbidden = stanza_error(DefinedCondition::Forbidden, None);
        p.answered(sent[0].0.clone(), Err(Some(forbidden)), 0.1);
        assert!(p.stats_again() && p.ready(0.1));
        assert!(!stats(&mut p).contains("pubsub#persist_items"));
    }

    #[test]
    fn events_stay_persistent() {
        let mut p = Publisher::default();
        p.push(ev(1.0));
        let sent = p.drain(0.0);
        assert!(
            !String::from(&sent[0].1).contains("persist_items"),
            "the boot check reads the newest event back"
        );
    }
}
