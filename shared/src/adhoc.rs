//! XEP-0050 ad-hoc commands: the `<command/>` element and its parts, as typed structs
//! (xmpp-parsers 0.23 has none).

use xmpp_parsers::data_forms::DataForm;
use xso::{AsXml, FromXml};

/// `http://jabber.org/protocol/commands`.
pub const NS: &str = "http://jabber.org/protocol/commands";

/// `<command xmlns='http://jabber.org/protocol/commands'/>`, request or response.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS, name = "command")]
pub struct Command {
    #[xml(attribute)]
    pub node: String,
    #[xml(attribute(default))]
    pub sessionid: Option<String>,
    /// `execute` | `next` | `prev` | `complete` | `cancel` (requests).
    #[xml(attribute(default))]
    pub action: Option<String>,
    /// `executing` | `completed` | `canceled` (responses).
    #[xml(attribute(default))]
    pub status: Option<String>,
    #[xml(child(default))]
    pub actions: Option<Actions>,
    #[xml(child(n = ..))]
    pub notes: Vec<Note>,
    #[xml(child(default))]
    pub form: Option<DataForm>,
}

/// The actions a client may take next.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq, Default)]
#[xml(namespace = NS, name = "actions")]
pub struct Actions {
    #[xml(attribute(default))]
    pub execute: Option<String>,
    #[xml(flag)]
    pub prev: bool,
    #[xml(flag)]
    pub next: bool,
    #[xml(flag)]
    pub complete: bool,
}

/// `<note type='info'>…</note>`.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS, name = "note")]
pub struct Note {
    /// `info` | `warn` | `error`.
    #[xml(attribute(name = "type", default))]
    pub type_: Option<String>,
    #[xml(text)]
    pub text: String,
}

impl Note {
    /// An `info` note.
    pub fn info(text: impl Into<String>) -> Self {
        Self {
            type_: Some("info".into()),
            text: text.into(),
        }
    }
}

/// XEP-0050 §4.6 application errors, children of `<error/>` in this namespace.
pub mod errors {
    /// The session id is unknown or expired.
    pub const BAD_SESSIONID: &str = "bad-sessionid";
    /// The submitted form is malformed or invalid.
    pub const BAD_PAYLOAD: &str = "bad-payload";
    /// The action is not allowed at this stage.
    pub const BAD_ACTION: &str = "bad-action";
}

impl Command {
    /// A response for `node` with `status`.
    pub fn response(node: &str, sessionid: Option<String>, status: &str) -> Self {
        Self {
            node: node.to_string(),
            sessionid,
            action: None,
            status: Some(status.to_string()),
            actions: None,
            notes: vec![],
            form: None,
        }
    }

    /// Serialises with every form field's `type` spelled out (see [`crate::forms`]).
    pub fn to_element(self) -> minidom::Element {
        crate::forms::to_element(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minidom::Element;

    const EXECUTING: &str = "<command xmlns='http://jabber.org/protocol/commands' node='reboot' sessionid='s1' status='executing'><actions execute='complete'><complete/></actions><note type='info'>Confirm.</note></command>";

    #[test]
    fn parse_literal() {
        let el: Element = EXECUTING.parse().unwrap();
        let c = Command::try_from(el).unwrap();
        assert_eq!(c.node, "reboot");
        assert_eq!(c.sessionid.as_deref(), Some("s1"));
        assert_eq!(c.status.as_deref(), Some("executing"));
        let a = c.actions.unwrap();
        assert_eq!(a.execute.as_deref(), Some("complete"));
        assert!(a.complete && !a.next && !a.prev);
        assert_eq!(c.notes, vec![Note::info("Confirm.")]);
    }

    #[test]
    fn serialise_and_compare() {
        let mut c = Command::response("reboot", Some("s1".into()), "executing");
        c.actions = Some(Actions {
            execute: Some("complete".into()),
            complete: true,
            ..Default::default()
        });
        c.notes.push(Note::info("Confirm."));
        let expected: Element = EXECUTING.parse().unwrap();
        assert_eq!(c.to_element(), expected);
    }

    #[test]
    fn broken_is_an_exact_error() {
        let el: Element = "<command xmlns='http://jabber.org/protocol/commands'/>"
            .parse()
            .unwrap();
        let err = Command::try_from(el).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Required attribute field 'node' on Command element missing."
        );
        let other: Element = "<ping xmlns='urn:xmpp:ping'/>".parse().unwrap();
        assert!(matches!(
            Command::try_from(other),
            Err(xso::error::FromElementError::Mismatch(_))
        ));
    }

    #[test]
    fn round_trip() {
        let el: Element = EXECUTING.parse().unwrap();
        let c = Command::try_from(el.clone()).unwrap();
        assert_eq!(Command::try_from(c.clone().to_element()).unwrap(), c);
    }
}
