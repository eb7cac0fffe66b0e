//! The bot's own roster as the server keeps it (RFC 6121 §2): each contact's subscription
//! state, from the roster result and the pushes after it (pure). The bots read it to leave out
//! subscription requests that are already granted: a restart of a bot whose contacts are
//! subscribed both ways then sends no `subscribe`/`subscribed` at all, which matters on
//! servers that count them (ejabberd's stock `mod_pres_counter` allows 5 per minute).

use std::collections::HashMap;

use xmpp_parsers::jid::BareJid;
use xmpp_parsers::roster::{Item, Roster, Subscription};

/// Subscription state per contact.
#[derive(Debug, Default)]
pub struct Contacts {
    items: HashMap<BareJid, Subscription>,
    loaded: bool,
}

impl Contacts {
    /// The roster result: replaces what was known.
    pub fn load(&mut self, roster: Roster) {
        self.items.clear();
        for item in roster.items {
            self.apply(item);
        }
        self.loaded = true;
    }

    /// A roster push: one or more items changed (`remove` deletes).
    pub fn push(&mut self, roster: Roster) {
        for item in roster.items {
            self.apply(item);
        }
    }

    /// A new stream: what was known may be stale until the next result.
    pub fn forget(&mut self) {
        self.items.clear();
        self.loaded = false;
    }

    fn apply(&mut self, item: Item) {
        match item.subscription {
            Subscription::Remove => {
                self.items.remove(&item.jid);
            }
            s => {
                self.items.insert(item.jid, s);
            }
        }
    }

    /// Whether the roster result has come in since the stream began.
    pub fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// Whether `jid` and we receive each other's presence (subscription `both`).
    pub fn mutual(&self, jid: &BareJid) -> bool {
        matches!(self.items.get(jid), Some(Subscription::Both))
    }

    /// Whether we receive `jid`'s presence (subscription `to` or `both`).
    pub fn subscribed_to(&self, jid: &BareJid) -> bool {
        matches!(
            self.items.get(jid),
            Some(Subscription::To | Subscription::Both)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_parsers::roster::Ask;

    fn item(jid: &str, subscription: Subscription) -> Item {
        Item {
            jid: BareJid::new(jid).unwrap(),
            name: None,
            subscription,
            ask: Ask::None,
            groups: vec![],
            approved: None,
        }
    }

    fn roster(items: Vec<Item>) -> Roster {
        Roster { ver: None, items }
    }

    #[test]
    fn the_result_and_pushes_give_each_contacts_state() {
        let (hub, web1) = (
            BareJid::new("hub@x").unwrap(),
            BareJid::new("web1@x").unwrap(),
        );
        let mut c = Contacts::default();
        assert!(!c.is_loaded() && !c.subscribed_to(&hub));
        c.load(roster(vec![
            item("hub@x", Subscription::Both),
            item("web1@x", Subscription::From),
        ]));
        assert!(c.is_loaded());
        assert!(c.subscribed_to(&hub) && c.mutual(&hub));
        assert!(
            !c.subscribed_to(&web1),
            "`from` only: they see us, we do not see them"
        );
        assert!(!c.mutual(&web1));
        c.push(roster(vec![item("web1@x", Subscription::To)]));
        assert!(c.subscribed_to(&web1));
        c.push(roster(vec![item("hub@x", Subscription::Remove)]));
        assert!(!c.subscribed_to(&hub));
        c.forget();
        assert!(!c.is_loaded() && !c.subscribed_to(&web1));
    }
}
