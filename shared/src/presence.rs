//! Presence both bots send the same way: the answer to a subscription request under an
//! access list, and the goodbye before closing the stream.

use xmpp_parsers::jid::BareJid;
use xmpp_parsers::presence::{Presence, Type as PresenceType};

use crate::acl::Acl;

/// The status text of the goodbye presence.
pub const GOODBYE_STATUS: &str = "Stopping";

/// The unavailable presence a bot sends before closing: status `Stopping`.
pub fn goodbye() -> Presence {
    let mut bye = Presence::unavailable();
    bye.set_status("", GOODBYE_STATUS);
    bye
}

/// How a subscription request is answered.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionAnswer {
    /// Whether one of the access lists allows the requester.
    pub approved: bool,
    /// What to send: `subscribed` and a `subscribe` back when approved (mutual subscription),
    /// `unsubscribed` when refused.
    pub presences: Vec<Presence>,
}

/// Answers a `subscribe` from `from`: approved when any of `acls` allows it.
pub fn answer_subscription(from: &BareJid, acls: &[&Acl]) -> SubscriptionAnswer {
    let approved = acls.iter().any(|acl| acl.allows(from));
    let presences = if approved {
        vec![
            Presence::subscribed().with_to(from.clone()),
            Presence::subscribe().with_to(from.clone()),
        ]
    } else {
        vec![Presence::new(PresenceType::Unsubscribed).with_to(from.clone())]
    };
    SubscriptionAnswer {
        approved,
        presences,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goodbye_is_unavailable_with_status_stopping() {
        let bye = goodbye();
        assert_eq!(bye.type_, PresenceType::Unavailable);
        let statuses: Vec<&str> = bye.statuses.values().map(String::as_str).collect();
        assert_eq!(statuses, ["Stopping"]);
    }

    #[test]
    fn subscription_is_mutual_when_allowed_and_refused_otherwise() {
        let ops = BareJid::new("ops@x").unwrap();
        let users = Acl::parse(&["ops@x".into()]).unwrap();
        let none = Acl::default();
        let yes = answer_subscription(&ops, &[&none, &users]);
        assert!(yes.approved);
        let types: Vec<PresenceType> = yes.presences.iter().map(|p| p.type_.clone()).collect();
        assert_eq!(types, [PresenceType::Subscribed, PresenceType::Subscribe]);
        assert!(yes
            .presences
            .iter()
            .all(|p| p.to == Some(ops.clone().into())));
        let no = answer_subscription(&BareJid::new("eve@x").unwrap(), &[&none, &users]);
        assert!(!no.approved);
        assert_eq!(no.presences.len(), 1);
        assert_eq!(no.presences[0].type_, PresenceType::Unsubscribed);
    }
}
