//! XEP-0163 personal eventing: the publish and fetch requests jabmon sends to its own account,
//! with publish-options, and how to read a server's refusal of them.

use minidom::Element;
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType};
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::pubsub::pubsub::{Item, Items, Publish, PublishOptions};
use xmpp_parsers::pubsub::{ItemId, NodeName, Owner, PubSub};
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

const PUBLISH_OPTIONS: &str = "http://jabber.org/protocol/pubsub#publish-options";

/// `<pubsub><publish node><item id>payload</item></publish><publish-options/></pubsub>`.
/// `options` are `pubsub#…` fields; empty means no publish-options at all.
pub fn publish(node: &str, item_id: &str, payload: Element, options: &[(&str, &str)]) -> Element {
    let publish_options = (!options.is_empty()).then(|| {
        let mut fields =
            vec![Field::new("FORM_TYPE", FieldType::Hidden).with_value(PUBLISH_OPTIONS)];
        fields.extend(
            options
                .iter()
                .map(|(var, value)| Field::text_single(var, value)),
        );
        PublishOptions {
            form: Some(DataForm {
                type_: DataFormType::Submit,
                title: None,
                instructions: None,
                fields,
            }),
        }
    });
    PubSub::Publish {
        publish: Publish {
            node: NodeName(node.to_string()),
            items: vec![Item {
                id: Some(ItemId(item_id.to_string())),
                publisher: None,
                payload: Some(payload),
            }],
        },
        publish_options,
    }
    .into()
}

/// `<pubsub><subscribe node jid/></pubsub>`: an explicit XEP-0060 subscription of `jid` to
/// `node` (sent to the node owner's bare JID). Unlike `+notify` interest, it is stored with the
/// node, so it holds across the nodes of an ejabberd cluster (docs/operations.md).
pub fn subscribe(node: &str, jid: &BareJid) -> Element {
    PubSub::Subscribe {
        subscribe: Some(xmpp_parsers::pubsub::pubsub::Subscribe {
            jid: Jid::from(jid.clone()),
            node: Some(NodeName(node.to_string())),
        }),
        options: None,
    }
    .into()
}

/// `<pubsub><items node max_items/></pubsub>`: the latest `max` items of `node`.
pub fn latest_items(node: &str, max: u32) -> Element {
    let mut items = Items::new(node);
    items.max_items = Some(max);
    PubSub::Items(items).into()
}

/// The payloads of an items result, newest last as the server sends them. Only the `<items/>`
/// child is read: ejabberd puts an XEP-0059 `<set/>` beside it, which `PubSub` parsing
/// refuses as a whole.
pub fn item_payloads(result: Element) -> Vec<Element> {
    if !result.is("pubsub", xmpp_parsers::ns::PUBSUB) {
        return vec![];
    }
    result
        .get_child("items", xmpp_parsers::ns::PUBSUB)
        .and_then(|items| Items::try_from(items.clone()).ok())
        .map(|items| items.items.into_iter().filter_map(|i| i.payload).collect())
        .unwrap_or_default()
}

/// `<pubsub#owner><configure node><x type='submit'/></configure>`: sets `fields`
/// (`pubsub#…`) of our own `node`; fields left out keep their values on both servers.
pub fn configure(node: &str, fields: &[(&str, &str)]) -> Element {
    let form = DataForm::new(
        DataFormType::Submit,
        xmpp_parsers::ns::PUBSUB_CONFIGURE,
        fields
            .iter()
            .map(|(var, value)| Field::text_single(var, value))
            .collect(),
    );
    Owner {
        payload: xmpp_parsers::pubsub::owner::Payload::Configure {
            node: Some(NodeName(node.to_string())),
            form: Some(form),
        },
    }
    .into()
}

/// The server's `<conflict/>` with `<precondition-not-met/>` (XEP-0060 §7.1.5): the node
/// exists with a configuration other than the publish-options ask for. Both servers answer so
/// when, say, `pubsub#persist_items=false` is asked of a node created persistent.
pub fn precondition_not_met(err: &StanzaError) -> bool {
    err.defined_condition == DefinedCondition::Conflict
        && err
            .other
            .as_ref()
            .is_some_and(|o| o.is("precondition-not-met", xmpp_parsers::ns::PUBSUB_ERRORS))
}

/// ejabberd refuses publish-options it does not know (`pubsub#max_items`) with
/// `resource-constraint` of type `wait`: then publish with `pubsub#access_model` alone.
pub fn refuses_options(err: &StanzaError) -> bool {
    matches!(
        err.defined_condition,
        DefinedCondition::ResourceConstraint
            | DefinedCondition::Conflict
            | DefinedCondition::NotAcceptable
    ) || err
        .texts
        .values()
        .any(|t| t.contains("Unknown field") || t.contains("publish-options"))
}

/// The publish-options one publisher sends, with the one fallback jabmon knows: ejabberd
/// refuses `pubsub#max_items` as a publish-option (see [`refuses_options`]); after that
/// refusal the publisher leaves it out for as long as it runs, and never sends the identical
/// request again.
#[derive(Debug, Clone)]
pub struct OptionsFallback {
    with_max_items: bool,
}

impl Default for OptionsFallback {
    fn default() -> Self {
        Self {
            with_max_items: true,
        }
    }
}

impl OptionsFallback {
    /// `base`, preceded by `pubsub#max_items = max_items` unless the server refused it.
    pub fn options(
        &self,
        base: &[(&'static str, &'static str)],
        max_items: &'static str,
    ) -> Vec<(&'static str, &'static str)> {
        let max = self
            .with_max_items
            .then_some(("pubsub#max_items", max_items));
        max.into_iter().chain(base.iter().copied()).collect()
    }

    /// Whether `err` is the server refusing our publish-options in a way leaving out
    /// `pubsub#max_items` answers: then it is dropped (logged once, with the server's reason)
    /// and the caller publishes again at once. A later refusal naming `pubsub#max_items` is
    /// one for a request sent before the first answer came (true again, quietly); any other
    /// error, or a refusal of the options without it, is the caller's to handle.
    pub fn refused(&mut self, err: &StanzaError) -> bool {
        if !refuses_options(err) {
            return false;
        }
        if !self.with_max_items {
            return err.texts.values().any(|t| t.contains("pubsub#max_items"));
        }
        self.with_max_items = false;
        tracing::warn!(
            reason = %describe(err),
            "Server refused publish-options; publishing without pubsub#max_items from now on."
        );
        true
    }
}

/// The server's words for an error, for one log line.
pub fn describe(err: &StanzaError) -> String {
    let text = err.texts.values().next().cloned().unwrap_or_default();
    format!(
        "{:?}{}{}",
        err.defined_condition,
        if text.is_empty() { "" } else { ": " },
        text
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_request() {
        let jid = BareJid::new("hub@x").unwrap();
        let expected: Element = "<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe jid='hub@x' node='urn:jabmon:stats:0'/></pubsub>".parse().unwrap();
        assert_eq!(subscribe("urn:jabmon:stats:0", &jid), expected);
    }

    #[test]
    fn publish_with_options() {
        let payload: Element = "<stats xmlns='urn:jabmon:stats:0' host='h' timestamp='1'/>"
            .parse()
            .unwrap();
        let el = publish(
            "urn:jabmon:stats:0",
            "current",
            payload,
            &[
                ("pubsub#max_items", "1"),
                ("pubsub#access_model", "presence"),
            ],
        );
        let expected: Element = "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:jabmon:stats:0'><item id='current'><stats xmlns='urn:jabmon:stats:0' host='h' timestamp='1'/></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='pubsub#max_items'><value>1</value></field><field var='pubsub#access_model'><value>presence</value></field></x></publish-options></pubsub>".parse().unwrap();
        assert_eq!(el, expected);
    }

    #[test]
    fn item_payloads_beside_an_rsm_set() {
        // ejabberd 23.01's answer to `latest_items`, verbatim.
        let ejabberd: Element = "<pubsub xmlns='http://jabber.org/protocol/pubsub'><set xmlns='http://jabber.org/protocol/rsm'><count>1</count><first index='0'>2026-12-02T00:03:54.925480Z</first><last>2026-12-02T00:03:54.925480Z</last></set><items node='n'><item id='current'><p xmlns='urn:x'/></item></items></pubsub>".parse().unwrap();
        let want: Element = "<p xmlns='urn:x'/>".parse().unwrap();
        assert_eq!(item_payloads(ejabberd), vec![want.clone()]);
        let prosody: Element = "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'><item id='current'><p xmlns='urn:x'/></item></items></pubsub>".parse().unwrap();
        assert_eq!(item_payloads(prosody), vec![want]);
        let other: Element = "<query xmlns='jabber:iq:version'/>".parse().unwrap();
        assert!(item_payloads(other).is_empty());
    }

    #[test]
    fn ejabberd_refusal_is_recognised() {
        let mut e = crate::session::stanza_error(
            DefinedCondition::ResourceConstraint,
            Some("Unknown field 'pubsub#max_items'"),
        );
        assert!(refuses_options(&e));
        e.defined_condition = DefinedCondition::Forbidden;
        e.texts.clear();
        assert!(!refuses_options(&e));
    }

    #[test]
    fn configure_request_and_precondition_refusal() {
        let expected: Element = "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='n'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field><field var='pubsub#persist_items'><value>false</value></field></x></configure></pubsub>".parse().unwrap();
        assert_eq!(
            configure("n", &[("pubsub#persist_items", "false")]),
            expected
        );
        // Prosody's answer to publish-options a persistent node does not match, verbatim.
        let error: Element = "<error xmlns='jabber:client' type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><precondition-not-met xmlns='http://jabber.org/protocol/pubsub#errors'/></error>".parse().unwrap();
        let e = StanzaError::try_from(error).unwrap();
        assert!(precondition_not_met(&e));
        let plain = crate::session::stanza_error(DefinedCondition::Conflict, None);
        assert!(!precondition_not_met(&plain));
    }

    #[test]
    fn fallback_drops_max_items_once() {
        let base = [("pubsub#access_model", "presence")];
        let mut f = OptionsFallback::default();
        assert_eq!(
            f.options(&base, "1"),
            vec![
                ("pubsub#max_items", "1"),
                ("pubsub#access_model", "presence")
            ]
        );
        let forbidden = crate::session::stanza_error(DefinedCondition::Forbidden, None);
        assert!(!f.refused(&forbidden), "not a refusal of options");
        assert_eq!(f.options(&base, "1").len(), 2);
        let refusal = crate::session::stanza_error(
            DefinedCondition::ResourceConstraint,
            Some("Unknown field 'pubsub#max_items'"),
        );
        assert!(f.refused(&refusal));
        assert_eq!(f.options(&base, "1"), base.to_vec());
        assert!(
            f.refused(&refusal),
            "a request sent before the first refusal came: publish it again"
        );
        assert_eq!(f.options(&base, "1"), base.to_vec(), "dropped once");
        let other = crate::session::stanza_error(
            DefinedCondition::NotAcceptable,
            Some("Unknown field 'pubsub#access_model'"),
        );
        assert!(
            !f.refused(&other),
            "nothing left to drop: the caller's to handle"
        );
    }
}
