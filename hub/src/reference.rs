//! Which earlier message a chat message refers to: a reply (XEP-0461, `<reply
//! xmlns='urn:xmpp:reply:0' id='…'/>`) or reactions (XEP-0444, the `reactions` payload of
//! xmpp-parsers). The hub acks the alerts a referred-to alert message told (docs/alerts.md).
//!
//! In a 1:1 chat the id is the `id` attribute of the message referred to; in a room it is the
//! room's stanza id (XEP-0359), which the hub learns from the reflection of its own message.

use minidom::Element;
use xmpp_parsers::message::Message;
use xmpp_parsers::reactions::Reactions;
use xso::{AsXml, FromXml};

/// XEP-0461's namespace.
pub const NS_REPLY: &str = "urn:xmpp:reply:0";

/// `<reply/>`: the message this one answers.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS_REPLY, name = "reply")]
pub struct ReplyTo {
    /// Who wrote the message replied to (optional in the XEP).
    #[xml(attribute(default))]
    pub to: Option<String>,
    #[xml(attribute)]
    pub id: String,
}

/// What a message refers to.
#[derive(Debug, Clone, PartialEq)]
pub enum Reference {
    /// A reply to message `id`.
    Reply(String),
    /// The sender's reactions to message `id` now (empty: withdrawn).
    Reactions { id: String, emojis: Vec<String> },
}

/// The message's reference, if it carries a well-formed one.
pub fn of(m: &Message) -> Option<Reference> {
    m.payloads.iter().find_map(reference)
}

fn reference(payload: &Element) -> Option<Reference> {
    if payload.is("reactions", xmpp_parsers::ns::REACTIONS) {
        let r = Reactions::try_from(payload.clone()).ok()?;
        let emojis = r.reactions.into_iter().map(|r| r.emoji).collect();
        return Some(Reference::Reactions { id: r.id, emojis });
    }
    if payload.is("reply", NS_REPLY) {
        let r = ReplyTo::try_from(payload.clone()).ok()?;
        return Some(Reference::Reply(r.id));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(xml: &str) -> Message {
        Message::try_from(xml.parse::<Element>().unwrap()).unwrap()
    }

    #[test]
    fn replies_and_reactions_are_found_and_broken_ones_ignored() {
        let reply = message("<message xmlns='jabber:client' type='chat' from='a@x/r' id='m2'><body>&gt; 🔥 web1\nack</body><reply xmlns='urn:xmpp:reply:0' to='hub@x/jabmon' id='alert-7'/></message>");
        assert_eq!(of(&reply), Some(Reference::Reply("alert-7".into())));
        let reacted = message("<message xmlns='jabber:client' type='chat' from='a@x/r'><reactions xmlns='urn:xmpp:reactions:0' id='alert-7'><reaction>👍</reaction><reaction>👀</reaction></reactions></message>");
        assert_eq!(
            of(&reacted),
            Some(Reference::Reactions {
                id: "alert-7".into(),
                emojis: vec!["👍".into(), "👀".into()]
            })
        );
        let withdrawn = message("<message xmlns='jabber:client' type='chat'><reactions xmlns='urn:xmpp:reactions:0' id='alert-7'/></message>");
        assert_eq!(
            of(&withdrawn),
            Some(Reference::Reactions {
                id: "alert-7".into(),
                emojis: vec![]
            })
        );
        let no_id = message("<message xmlns='jabber:client' type='chat'><body>x</body><reply xmlns='urn:xmpp:reply:0' to='hub@x'/></message>");
        assert_eq!(of(&no_id), None, "a reply without an id refers to nothing");
        let plain =
            message("<message xmlns='jabber:client' type='chat'><body>alerts</body></message>");
        assert_eq!(of(&plain), None);
    }
}
