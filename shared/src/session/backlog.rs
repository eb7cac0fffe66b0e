//! How many of our stanzas the server has not taken yet: queued to be written, or written but
//! not yet acknowledged (XEP-0198). A server that rate-limits a client reads its socket slowly,
//! so this number grows; a bot reads it to notice throttling and to stop adding what can wait.

use std::collections::VecDeque;

use tokio_xmpp::stanzastream::{StanzaStage, StanzaToken};

/// Anything whose transmission stage can be read without waiting.
pub trait Staged {
    fn stage(&self) -> StanzaStage;
}

impl Staged for StanzaToken {
    fn stage(&self) -> StanzaStage {
        StanzaStage::from(&self.state())
    }
}

/// The stanzas sent and not yet settled, oldest first. With stream management a stanza is
/// settled once acked; without it, once written. Failed and dropped ones are settled too.
#[derive(Debug)]
pub struct Backlog<T> {
    waiting: VecDeque<T>,
    acks: bool,
}

impl<T: Staged> Default for Backlog<T> {
    fn default() -> Self {
        Self {
            waiting: VecDeque::new(),
            acks: false,
        }
    }
}

impl<T: Staged> Backlog<T> {
    /// A new stream: forget what was waiting; `acks` says whether XEP-0198 acks will come.
    pub fn reset(&mut self, acks: bool) {
        self.waiting.clear();
        self.acks = acks;
    }

    /// Records a stanza just queued.
    pub fn push(&mut self, token: T) {
        self.prune();
        self.waiting.push_back(token);
    }

    /// Stanzas not settled yet. Stanzas settle in order, so counting stops at the oldest
    /// unsettled one.
    pub fn len(&mut self) -> usize {
        self.prune();
        self.waiting.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    fn prune(&mut self) {
        let settled_from = if self.acks {
            StanzaStage::Acked
        } else {
            StanzaStage::Sent
        };
        while self
            .waiting
            .front()
            .is_some_and(|t| t.stage() >= settled_from)
        {
            self.waiting.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    #[derive(Clone)]
    struct Fake(Rc<Cell<StanzaStage>>);

    impl Staged for Fake {
        fn stage(&self) -> StanzaStage {
            self.0.get()
        }
    }

    fn fake() -> Fake {
        Fake(Rc::new(Cell::new(StanzaStage::Queued)))
    }

    #[test]
    fn with_acks_a_stanza_waits_until_acked() {
        let mut b = Backlog::default();
        b.reset(true);
        let (s1, s2) = (fake(), fake());
        b.push(s1.clone());
        b.push(s2.clone());
        assert_eq!(b.len(), 2);
        s1.0.set(StanzaStage::Sent);
        assert_eq!(b.len(), 2, "written is not enough when acks come");
        s1.0.set(StanzaStage::Acked);
        assert_eq!(b.len(), 1);
        s2.0.set(StanzaStage::Failed);
        assert!(b.is_empty(), "a failed stanza does not wait forever");
    }

    #[test]
    fn without_acks_written_is_settled_and_reset_forgets() {
        let mut b = Backlog::default();
        b.reset(false);
        let s = fake();
        b.push(s.clone());
        b.push(fake());
        s.0.set(StanzaStage::Sent);
        assert_eq!(b.len(), 1);
        b.reset(true);
        assert_eq!(b.len(), 0);
    }
}
