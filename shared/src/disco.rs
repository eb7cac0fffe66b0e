//! XEP-0030 answers both bots give the same way: the XEP-0115 caps node (the root info under
//! `node#ver`) and XEP-0050 command nodes and lists.

use xmpp_parsers::disco::{DiscoInfoResult, DiscoItemsResult, Identity, Item};
use xmpp_parsers::jid::Jid;

use crate::adhoc;

/// The root info answered under the caps node `node` (XEP-0115 §6.2: same identities,
/// features and forms, with `node` echoed).
pub fn caps_node_info(root: &DiscoInfoResult, node: &str) -> DiscoInfoResult {
    let mut info = root.clone();
    info.node = Some(node.to_string());
    info
}

/// The info of the command list node (XEP-0050 §2.2): identity `automation/command-list`,
/// feature commands.
pub fn command_list_info() -> DiscoInfoResult {
    DiscoInfoResult {
        node: Some(adhoc::NS.to_string()),
        identities: vec![Identity::new(
            "automation",
            "command-list",
            "en",
            "Commands",
        )],
        features: [adhoc::NS.to_string()].into_iter().collect(),
        extensions: vec![],
    }
}

/// The info of one command node (XEP-0050 §2.3): identity `automation/command-node` named
/// `name`, features commands and data forms.
pub fn command_node_info(node: &str, name: &str) -> DiscoInfoResult {
    DiscoInfoResult {
        node: Some(node.to_string()),
        identities: vec![Identity::new("automation", "command-node", "en", name)],
        features: [adhoc::NS.to_string(), "jabber:x:data".to_string()]
            .into_iter()
            .collect(),
        extensions: vec![],
    }
}

/// The command list (XEP-0050 §2.2): one item per `(node, name)` on `me`.
pub fn command_items<'a>(
    me: &Jid,
    commands: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> DiscoItemsResult {
    DiscoItemsResult {
        node: Some(adhoc::NS.to_string()),
        items: commands
            .into_iter()
            .map(|(node, name)| Item {
                jid: me.clone(),
                node: Some(node.to_string()),
                name: Some(name.to_string()),
            })
            .collect(),
        rsm: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minidom::Element;

    #[test]
    fn caps_node_echoes_the_node_and_keeps_the_rest() {
        let root = DiscoInfoResult {
            node: None,
            identities: vec![Identity::new("client", "bot", "en", "x")],
            features: ["urn:xmpp:ping".to_string()].into_iter().collect(),
            extensions: vec![],
        };
        let info = caps_node_info(&root, "urn:jabmon#abc=");
        assert_eq!(info.node.as_deref(), Some("urn:jabmon#abc="));
        assert_eq!(
            (info.identities, info.features),
            (root.identities, root.features)
        );
    }

    #[test]
    fn command_nodes_and_lists_serialise_as_expected() {
        let el = Element::from(command_node_info("queries", "queries"));
        let expected: Element = "<query xmlns='http://jabber.org/protocol/disco#info' node='queries'><identity category='automation' type='command-node' xml:lang='en' name='queries'/><feature var='http://jabber.org/protocol/commands'/><feature var='jabber:x:data'/></query>".parse().unwrap();
        assert_eq!(el, expected);
        let el = Element::from(command_list_info());
        let expected: Element = "<query xmlns='http://jabber.org/protocol/disco#info' node='http://jabber.org/protocol/commands'><identity category='automation' type='command-list' xml:lang='en' name='Commands'/><feature var='http://jabber.org/protocol/commands'/></query>".parse().unwrap();
        assert_eq!(el, expected);
        let me = Jid::new("hub@x/r").unwrap();
        let el = Element::from(command_items(&me, [("a", "A"), ("b", "B")]));
        let expected: Element = "<query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'><item jid='hub@x/r' node='a' name='A'/><item jid='hub@x/r' node='b' name='B'/></query>".parse().unwrap();
        assert_eq!(el, expected);
    }
}
