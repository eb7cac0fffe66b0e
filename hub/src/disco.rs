//! The hub's XEP-0030 views (pure): its root info (with the XEP-0115 caps derived from it),
//! the caps node, its command nodes, and — for users only — the collectors as items, each
//! with an info form of its status and host facts.

use jabmon_shared::adhoc;
use jabmon_shared::disco::{caps_node_info, command_items, command_list_info, command_node_info};
use jabmon_shared::{caps, forms, ns};
use xmpp_parsers::caps::Caps;
use xmpp_parsers::data_forms::{DataFormType, FieldType};
use xmpp_parsers::disco::{DiscoInfoResult, DiscoItemsResult, Identity, Item};
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::stanza_error::DefinedCondition;

use crate::collectors::{Collector, Registry};
use crate::commands;

/// The hub's disco identity and its caps.
#[derive(Debug)]
pub struct Disco {
    info: DiscoInfoResult,
    caps: Caps,
    caps_node: String,
}

impl Default for Disco {
    fn default() -> Self {
        let info = root_info();
        Self {
            caps: caps::caps(ns::CAPS_NODE, &info),
            caps_node: format!("{}#{}", ns::CAPS_NODE, caps::ver(&info)),
            info,
        }
    }
}

fn root_info() -> DiscoInfoResult {
    let features = [
        "http://jabber.org/protocol/caps",
        adhoc::NS,
        "http://jabber.org/protocol/disco#info",
        "http://jabber.org/protocol/disco#items",
        "jabber:iq:version",
        "urn:xmpp:ping",
        ns::COLLECTORS,
        "urn:jabmon:stats:0+notify",
        "urn:jabmon:events:0+notify",
    ];
    DiscoInfoResult {
        node: None,
        identities: vec![Identity::new("client", "bot", "en", "jabmon hub")],
        features: features.iter().map(|s| s.to_string()).collect(),
        extensions: vec![],
    }
}

impl Disco {
    /// The `<c/>` of every available presence.
    pub fn caps(&self) -> &Caps {
        &self.caps
    }

    /// disco#info at `node`; collectors' nodes (their bare JIDs) only for users.
    pub fn info(
        &self,
        node: Option<&str>,
        is_user: bool,
        registry: &Registry,
    ) -> Result<DiscoInfoResult, DefinedCondition> {
        let Some(n) = node else {
            return Ok(self.info.clone());
        };
        if n == self.caps_node {
            return Ok(caps_node_info(&self.info, n));
        }
        if n == adhoc::NS {
            return Ok(command_list_info());
        }
        if let Some((node, title)) = commands::NODES.iter().find(|(c, _)| *c == n) {
            return Ok(command_node_info(node, title));
        }
        match BareJid::new(n).ok().and_then(|j| registry.get(&j)) {
            Some(c) if is_user => Ok(collector_info(c)),
            Some(_) => Err(DefinedCondition::Forbidden),
            None => Err(DefinedCondition::ItemNotFound),
        }
    }

    /// disco#items at `node`: the collectors at the root and the commands under the
    /// commands node, both empty for anyone but a user.
    pub fn items(
        &self,
        node: Option<&str>,
        me: &Jid,
        is_user: bool,
        registry: &Registry,
    ) -> Result<DiscoItemsResult, DefinedCondition> {
        match node {
            None => Ok(DiscoItemsResult {
                node: None,
                items: if is_user {
                    registry.iter().map(collector_item).collect()
                } else {
                    vec![]
                },
                rsm: None,
            }),
            Some(adhoc::NS) => {
                let listed = if is_user { &commands::NODES[..] } else { &[] };
                Ok(command_items(me, listed.iter().copied()))
            }
            Some(_) => Err(DefinedCondition::ItemNotFound),
        }
    }
}

fn collector_item(c: &Collector) -> Item {
    Item {
        jid: Jid::from(c.jid.clone()),
        node: Some(c.jid.to_string()),
        name: Some(c.host.clone()),
    }
}

fn collector_info(c: &Collector) -> DiscoInfoResult {
    let text = |var: &str, label: &str, v: String| {
        forms::field(var, FieldType::TextSingle, label, vec![v])
    };
    let time = |t: Option<f64>| t.map(|t| format!("{t:.3}")).unwrap_or_default();
    let mut fields = vec![
        text("host", "Host", c.host.clone()),
        text("status", "Status", c.status.to_string()),
        text("last_seen", "Last seen (epoch s)", time(c.last_seen)),
        text("last_sample", "Last sample (epoch s)", time(c.last_sample)),
    ];
    for (k, v) in &c.facts {
        fields.push(text(k, k, v.clone()));
    }
    DiscoInfoResult {
        node: Some(c.jid.to_string()),
        identities: vec![Identity::new(
            "client",
            "bot",
            "en",
            format!("collector {}", c.host),
        )],
        features: ["http://jabber.org/protocol/disco#info".to_string()]
            .into_iter()
            .collect(),
        extensions: vec![forms::form(DataFormType::Result_, ns::COLLECTORS, fields)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::Seen;

    fn registry() -> Registry {
        let mut r = Registry::default();
        let up = Seen::Available {
            away: false,
            dnd: false,
            starting: false,
        };
        r.presence(&BareJid::new("web1@x").unwrap(), up, 5.0);
        r
    }

    #[test]
    fn root_caps_and_command_nodes() {
        let d = Disco::default();
        let r = Registry::default();
        let root = d.info(None, false, &r).unwrap();
        assert!(root.features.contains(ns::COLLECTORS));
        assert_eq!(d.caps().node, ns::CAPS_NODE);
        let at_caps = d.info(Some(&d.caps_node), false, &r).unwrap();
        assert_eq!(at_caps.node.as_deref(), Some(d.caps_node.as_str()));
        assert_eq!(caps::ver(&root), d.caps_node.split('#').nth(1).unwrap());
        let cmd = d.info(Some("queries"), false, &r).unwrap();
        assert_eq!(cmd.identities[0].type_, "command-node");
        assert_eq!(cmd.identities[0].name.as_deref(), Some("List my queries"));
        let list = d.info(Some(adhoc::NS), false, &r).unwrap();
        assert_eq!(list.identities[0].type_, "command-list");
        assert!(matches!(
            d.info(Some("nope"), true, &r),
            Err(DefinedCondition::ItemNotFound)
        ));
    }

    #[test]
    fn collectors_are_shown_to_users_only() {
        let d = Disco::default();
        let r = registry();
        let me = Jid::new("hub@x/r").unwrap();
        let info = d.info(Some("web1@x"), true, &r).unwrap();
        assert_eq!(info.identities[0].name.as_deref(), Some("collector web1"));
        let status = info.extensions[0]
            .fields
            .iter()
            .find(|f| f.var.as_deref() == Some("status"));
        assert_eq!(status.unwrap().values, ["alive"]);
        assert!(matches!(
            d.info(Some("web1@x"), false, &r),
            Err(DefinedCondition::Forbidden)
        ));
        let items = d.items(None, &me, true, &r).unwrap();
        assert_eq!(items.items.len(), 1);
        assert_eq!(items.items[0].node.as_deref(), Some("web1@x"));
        assert!(d.items(None, &me, false, &r).unwrap().items.is_empty());
        let cmds = d.items(Some(adhoc::NS), &me, true, &r).unwrap();
        assert_eq!(cmds.items.len(), commands::NODES.len());
        assert!(d
            .items(Some(adhoc::NS), &me, false, &r)
            .unwrap()
            .items
            .is_empty());
        assert!(d.items(Some("x"), &me, true, &r).is_err());
    }
}
