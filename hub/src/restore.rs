//! The start-up restore of registrations from PEP (pure): queries that arrive before the
//! saved registrations are back are buffered (up to a bound), then answered in order.
//!
//! Pending → (online) → Restoring → (items read) → Restored; a failed read goes back to
//! Pending and is retried at the next connection. With `storage = "file"` the hub starts
//! Restored.

use std::collections::VecDeque;

use jabmon_shared::pep;
use jabmon_shared::session::{IqFailure, IqOutcome};
use minidom::Element;
use xmpp_parsers::disco::DiscoInfoResult;
use xmpp_parsers::stanza_error::DefinedCondition;

use crate::query::{Engine, Saved};
use crate::storage::{self, Snapshot};

/// Queries kept while registrations are being restored.
pub const MAX_BUFFERED: usize = 256;

/// Where the restore stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not asked yet (or the last attempt failed).
    Pending,
    /// Asked; waiting for the server.
    Restoring,
    /// Registrations are back; queries are answered.
    Restored,
}

/// The restore state and the queries waiting for it.
#[derive(Debug)]
pub struct Restore<Q> {
    phase: Phase,
    buffered: VecDeque<Q>,
    cap: usize,
}

impl<Q> Restore<Q> {
    /// `restored`: registrations are already loaded (from the state file).
    pub fn new(restored: bool, cap: usize) -> Self {
        Self {
            phase: if restored {
                Phase::Restored
            } else {
                Phase::Pending
            },
            buffered: VecDeque::new(),
            cap,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn is_restored(&self) -> bool {
        self.phase == Phase::Restored
    }

    /// A fresh stream: returns whether to start restoring now.
    pub fn start(&mut self) -> bool {
        if self.phase != Phase::Pending {
            return false;
        }
        self.phase = Phase::Restoring;
        true
    }

    /// Keeps a query for later; gives it back when the buffer is full.
    pub fn buffer(&mut self, query: Q) -> Result<(), Q> {
        if self.buffered.len() >= self.cap {
            return Err(query);
        }
        self.buffered.push_back(query);
        Ok(())
    }

    /// The read failed: try again at the next connection.
    pub fn failed(&mut self) {
        self.phase = Phase::Pending;
    }

    /// Registrations are back: the buffered queries, oldest first.
    pub fn finish(&mut self) -> Vec<Q> {
        self.phase = Phase::Restored;
        self.buffered.drain(..).collect()
    }
}

/// Whether the server's disco#info offers PEP with publish-options (XEP-0223), which
/// `storage = "pep"` needs.
pub fn server_offers_pep_storage(outcome: IqOutcome) -> bool {
    outcome
        .ok()
        .flatten()
        .and_then(|el| DiscoInfoResult::try_from(el).ok())
        .is_some_and(|info| {
            info.identities
                .iter()
                .any(|i| i.category == "pubsub" && i.type_ == "pep")
                && info
                    .features
                    .contains("http://jabber.org/protocol/pubsub#publish-options")
        })
}

/// The saved state in the answer to the latest-item request: empty when the node does not
/// exist (`item-not-found`) or is empty; the failure otherwise.
pub fn saved_snapshot(outcome: IqOutcome) -> Result<Snapshot, IqFailure> {
    match outcome {
        Ok(Some(result)) => Ok(latest(result)),
        Ok(None) => Ok(Snapshot::default()),
        Err(IqFailure::Error(e)) if e.defined_condition == DefinedCondition::ItemNotFound => {
            Ok(Snapshot::default())
        }
        Err(e) => Err(e),
    }
}

/// Loads saved registrations into the engine; one no longer valid is dropped with an error.
pub fn load_into(engine: &mut Engine, saved: &[Saved]) {
    let mut ok = 0;
    for s in saved {
        match engine.restore(s) {
            Ok(_) => ok += 1,
            Err(e) => {
                tracing::error!(user = %s.user, cmd = %s.cmd, "Saved registration no longer valid, dropped: {e}")
            }
        }
    }
    tracing::info!(restored = ok, "Registrations restored.");
}

fn latest(result: Element) -> Snapshot {
    let Some(item) = pep::item_payloads(result)
        .into_iter()
        .filter_map(|p| storage::PepRegistrations::try_from(p).ok())
        .next_back()
    else {
        return Snapshot::default();
    };
    let (snapshot, problem) = item.into_snapshot();
    if let Some(problem) = problem {
        tracing::error!("Saved alert state unreadable, alerting starts empty: {problem}");
    }
    snapshot
}

#[cfg(test)]
mod tests {
    use super::*;
    use jabmon_shared::session::stanza_error;

    #[test]
    fn buffers_until_restored_then_hands_back_in_order() {
        let mut r = Restore::new(false, 2);
        assert!(!r.is_restored());
        assert!(r.start());
        assert!(!r.start(), "asked once");
        assert_eq!(r.phase(), Phase::Restoring);
        assert_eq!(r.buffer("a"), Ok(()));
        assert_eq!(r.buffer("b"), Ok(()));
        assert_eq!(r.buffer("c"), Err("c"), "full");
        assert_eq!(r.finish(), ["a", "b"]);
        assert!(r.is_restored());
        assert!(!r.start(), "never again once restored");
    }

    #[test]
    fn a_failed_read_is_retried_at_the_next_connection() {
        let mut r: Restore<()> = Restore::new(false, 1);
        assert!(r.start());
        r.failed();
        assert_eq!(r.phase(), Phase::Pending);
        assert!(r.start());
    }

    #[test]
    fn file_storage_starts_restored() {
        let mut r: Restore<()> = Restore::new(true, 1);
        assert!(r.is_restored());
        assert!(!r.start());
    }

    #[test]
    fn server_features_need_pep_and_publish_options() {
        let info = |extra: &str| {
            format!("<query xmlns='http://jabber.org/protocol/disco#info'><identity category='pubsub' type='pep'/>{extra}</query>")
                .parse::<Element>()
                .unwrap()
        };
        let options = "<feature var='http://jabber.org/protocol/pubsub#publish-options'/>";
        assert!(server_offers_pep_storage(Ok(Some(info(options)))));
        assert!(!server_offers_pep_storage(Ok(Some(info("")))));
        assert!(!server_offers_pep_storage(Ok(None)));
        assert!(!server_offers_pep_storage(Err(IqFailure::Error(Box::new(
            stanza_error(DefinedCondition::ServiceUnavailable, None)
        )))));
    }

    #[test]
    fn saved_snapshot_from_items_missing_node_or_failure() {
        let items: Element = "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:jabmon:hub:registrations:0'><item id='current'><registrations xmlns='urn:jabmon:hub:registrations:0'><registration user='u@x' cmd='SELECT id FROM a;' key='k'/></registrations></item></items></pubsub>".parse().unwrap();
        let saved = saved_snapshot(Ok(Some(items))).unwrap().registrations;
        assert_eq!(saved.len(), 1);
        assert_eq!(saved[0].key, "k");
        let missing =
            IqFailure::Error(Box::new(stanza_error(DefinedCondition::ItemNotFound, None)));
        assert_eq!(saved_snapshot(Err(missing)).unwrap(), Snapshot::default());
        assert!(saved_snapshot(Err(IqFailure::Lost)).is_err());
    }
}
