//! Presence both bots send the same way: the answer to a subscription request under an
//! access list, and the goodbye before closing the stream.

use std::collections::HashMap;

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

/// How long a `subscribe` we sent counts as pending: a `subscribe` from the same JID within
/// this time is approved without asking back.
pub const ASK_MEMORY_SECS: f64 = 60.0;

/// The JIDs we asked for a subscription lately. Two bots that each answer a `subscribe` with a
/// `subscribe` back would otherwise ask each other again and again (each answer is a new
/// request), until the server cuts them off: ejabberd's stock `mod_pres_counter` ignores a
/// user's subscription requests after 5 in a minute.
#[derive(Debug, Default)]
pub struct RecentAsks {
    asked: HashMap<BareJid, f64>,
}

impl RecentAsks {
    /// Records a `subscribe` sent to `to` at `now` (seconds).
    pub fn record(&mut self, to: &BareJid, now: f64) {
        if self.asked.len() >= 1024 {
            self.asked.retain(|_, at| now - *at < ASK_MEMORY_SECS);
        }
        self.asked.insert(to.clone(), now);
    }

    /// Whether we asked `jid` within [`ASK_MEMORY_SECS`] before `now`.
    pub fn asked_lately(&self, jid: &BareJid, now: f64) -> bool {
        self.asked
            .get(jid)
            .is_some_and(|at| now - *at < ASK_MEMORY_SECS)
    }
}

/// Answers a `subscribe` from `from` at `now`: approved when any of `acls` allows it, with a
/// `subscribe` back unless we already receive `from`'s presence (`subscribed_to`, from the
/// roster) or `asks` says we asked `from` lately (then recorded in `asks`).
pub fn answer_subscription(
    from: &BareJid,
    acls: &[&Acl],
    subscribed_to: bool,
    asks: &mut RecentAsks,
    now: f64,
) -> SubscriptionAnswer {
    let approved = acls.iter().any(|acl| acl.allows(from));
    let presences = if approved {
        let mut p = vec![Presence::subscribed().with_to(from.clone())];
        if !subscribed_to && !asks.asked_lately(from, now) {
            asks.record(from, now);
            p.push(Presence::subscribe().with_to(from.clone()));
        }
        p
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
        let mut asks = RecentAsks::default();
        let yes = answer_subscription(&ops, &[&none, &users], false, &mut asks, 100.0);
        assert!(yes.approved);
        let types: Vec<PresenceType> = yes.presences.iter().map(|p| p.type_.clone()).collect();
        assert_eq!(types, [PresenceType::Subscribed, PresenceType::Subscribe]);
        assert!(yes
            .presences
            .iter()
            .all(|p| p.to == Some(ops.clone().into())));
        let eve = BareJid::new("eve@x").unwrap();
        let no = answer_subscription(&eve, &[&none, &users], false, &mut asks, 100.0);
        assert!(!no.approved);
        assert_eq!(no.presences.len(), 1);
        assert_eq!(no.presences[0].type_, PresenceType::Unsubscribed);
        assert!(!asks.asked_lately(&eve, 100.0), "a refusal asks nothing");
    }

    #[test]
    fn a_subscribe_crossing_ours_is_approved_without_asking_again() {
        let hub = BareJid::new("hub@x").unwrap();
        let allows = Acl::parse(&["hub@x".into()]).unwrap();
        let mut asks = RecentAsks::default();
        asks.record(&hub, 10.0); // our own request at start-up
        let types = |a: SubscriptionAnswer| -> Vec<PresenceType> {
            a.presences.into_iter().map(|p| p.type_).collect()
        };
        let answer = answer_subscription(&hub, &[&allows], false, &mut asks, 11.0);
        assert_eq!(types(answer), [PresenceType::Subscribed]);
        // Long after: a new request is asked back again.
        let later = answer_subscription(&hub, &[&allows], false, &mut asks, 10.0 + ASK_MEMORY_SECS);
        assert_eq!(
            types(later),
            [PresenceType::Subscribed, PresenceType::Subscribe]
        );
        assert!(asks.asked_lately(&hub, 71.0));
    }

    #[test]
    fn a_contact_we_already_see_is_not_asked_back() {
        let web1 = BareJid::new("web1@x").unwrap();
        let allows = Acl::parse(&["web1@x".into()]).unwrap();
        let mut asks = RecentAsks::default();
        let answer = answer_subscription(&web1, &[&allows], true, &mut asks, 1.0);
        let types: Vec<PresenceType> = answer.presences.into_iter().map(|p| p.type_).collect();
        assert_eq!(types, [PresenceType::Subscribed]);
        assert!(!asks.asked_lately(&web1, 1.0));
    }
}
