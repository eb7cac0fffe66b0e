//! The hub's XEP-0030 views (pure): its root info (with the XEP-0115 caps derived from it),
//! the caps node, its command nodes, and — for users only — the collectors as items, each
//! with an info form of its status and host facts.

use jabmon_shared::adhoc;
use jabmon_shared::disco::{caps_node_info, command_items, command_list_info, command_node_info};
use jabmon_shared::{caps, forms, human, ns};
use xmpp_parsers::caps::Caps;
use xmpp_parsers::data_forms::{DataFormType, FieldType};
use xmpp_parsers::disco::{DiscoInfoResult, DiscoItemsResult, Identity, Item};
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::stanza_error::DefinedCondition;

use crate::collectors::{Collector, Registry};
use crate::commands;
use crate::roster::Roster;

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

/// What a disco answer looks at: who asks, the collectors, their resources, the clock.
pub struct View<'a> {
    /// The asker is one of the hub's users (only users see collectors).
    pub is_user: bool,
    pub registry: &'a Registry,
    pub roster: &'a Roster,
    pub now: f64,
}

impl Disco {
    /// The `<c/>` of every available presence.
    pub fn caps(&self) -> &Caps {
        &self.caps
    }

    /// disco#info at `node`; collectors' nodes (their bare JIDs, and `BARE/FIELD` below them)
    /// only for users.
    pub fn info(
        &self,
        node: Option<&str>,
        v: &View<'_>,
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
        let (c, row) = collector_node(n, v)?;
        Ok(match row {
            None => collector_info(c, v.now),
            Some((_, label, value)) => DiscoInfoResult {
                node: Some(n.to_string()),
                identities: vec![Identity::new(
                    "client",
                    "bot",
                    "en",
                    format!("{label}: {value}"),
                )],
                features: ["http://jabber.org/protocol/disco#info".to_string()]
                    .into_iter()
                    .collect(),
                extensions: vec![],
            },
        })
    }

    /// disco#items at `node`: the collectors at the root (each item's `jid` is the hub itself,
    /// which answers the node), under a collector's node one item per fact (`Status: alive`,
    /// …) and one per available resource of the collector (to browse its groups), and the
    /// commands under the commands node; empty for anyone but a user.
    pub fn items(
        &self,
        node: Option<&str>,
        me: &Jid,
        v: &View<'_>,
    ) -> Result<DiscoItemsResult, DefinedCondition> {
        let result = |node: Option<&str>, items| DiscoItemsResult {
            node: node.map(str::to_string),
            items,
            rsm: None,
        };
        match node {
            None if v.is_user => Ok(result(
                None,
                v.registry.iter().map(|c| collector_item(c, me)).collect(),
            )),
            None => Ok(result(None, vec![])),
            Some(adhoc::NS) => {
                let listed = if v.is_user { &commands::NODES[..] } else { &[] };
                Ok(command_items(me, listed.iter().copied()))
            }
            Some(n) => match collector_node(n, v)? {
                (c, None) => Ok(result(Some(n), collector_items(c, me, v))),
                (_, Some(_)) => Ok(result(Some(n), vec![])),
            },
        }
    }
}

/// One fact of a collector as people read it: (var, label, value).
type Row = (String, String, String);

/// The collector behind `BARE` or `BARE/FIELD` (with that row), for a user.
fn collector_node<'a>(
    node: &str,
    v: &View<'a>,
) -> Result<(&'a Collector, Option<Row>), DefinedCondition> {
    let (bare, field) = match node.split_once('/') {
        Some((b, f)) => (b, Some(f)),
        None => (node, None),
    };
    let c = BareJid::new(bare)
        .ok()
        .and_then(|j| v.registry.get(&j))
        .ok_or(DefinedCondition::ItemNotFound)?;
    if !v.is_user {
        return Err(DefinedCondition::Forbidden);
    }
    match field {
        None => Ok((c, None)),
        Some(f) => rows(c, v.now)
            .into_iter()
            .find(|(var, _, _)| var == f)
            .map(|row| (c, Some(row)))
            .ok_or(DefinedCondition::ItemNotFound),
    }
}

fn collector_item(c: &Collector, me: &Jid) -> Item {
    Item {
        jid: me.clone(),
        node: Some(c.jid.to_string()),
        name: Some(c.host.clone()),
    }
}

fn collector_items(c: &Collector, me: &Jid, v: &View<'_>) -> Vec<Item> {
    let mut items: Vec<Item> = rows(c, v.now)
        .into_iter()
        .map(|(var, label, value)| Item {
            jid: me.clone(),
            node: Some(format!("{}/{var}", c.jid)),
            name: Some(format!("{label}: {value}")),
        })
        .collect();
    items.extend(
        v.roster
            .collector_resources(&c.jid)
            .into_iter()
            .map(|full| Item {
                name: Some(format!("{full}: the collector itself (its stats groups)")),
                jid: Jid::from(full),
                node: None,
            }),
    );
    items
}

/// A host fact's label (the hub keeps only the `var`s of the collector's host form).
fn fact_label(var: &str) -> String {
    match var {
        "hostname" => "Host name",
        "os" => "Operating system",
        "kernel" => "Kernel",
        "cores" => "CPU cores",
        "memory_total" => "Memory",
        "version" => "jabmon version",
        "host" => "Host label in metric names",
        "publish_interval" => "Stats publish interval",
        other => other,
    }
    .to_string()
}

/// A host fact's value as people read it: memory in binary units, the interval with its unit.
fn fact_value(var: &str, value: &str) -> String {
    match (var, value.parse::<f64>()) {
        ("memory_total", Ok(b)) => human::bytes(b),
        ("publish_interval", Ok(s)) => format!("{} s", human::trimmed(s, 3)),
        _ => value.to_string(),
    }
}

/// What the hub knows of a collector, in order: host, status, last seen, last sample, facts.
fn rows(c: &Collector, now: f64) -> Vec<Row> {
    let time = |t: Option<f64>| match t {
        Some(t) => format!("{} UTC, {}", human::utc_time(t), human::ago(now, Some(t))),
        None => "never".to_string(),
    };
    let mut rows = vec![
        ("host".to_string(), "Host".to_string(), c.host.clone()),
        (
            "status".to_string(),
            "Status".to_string(),
            c.status.to_string(),
        ),
        (
            "last_seen".to_string(),
            "Last seen".to_string(),
            time(c.last_seen),
        ),
        (
            "last_sample".to_string(),
            "Last sample".to_string(),
            time(c.last_sample),
        ),
    ];
    for (k, v) in &c.facts {
        if k != "host" {
            rows.push((k.clone(), fact_label(k), fact_value(k, v)));
        }
    }
    rows
}

fn collector_info(c: &Collector, now: f64) -> DiscoInfoResult {
    let fields = rows(c, now)
        .into_iter()
        .map(|(var, label, value)| forms::field(&var, FieldType::TextSingle, &label, vec![value]))
        .collect();
    DiscoInfoResult {
        node: Some(c.jid.to_string()),
        identities: vec![Identity::new(
            "client",
            "bot",
            "en",
            format!("collector {}", c.host),
        )],
        // disco#items: a service browser offers to open only nodes that advertise it (Gajim).
        features: [
            "http://jabber.org/protocol/disco#info".to_string(),
            "http://jabber.org/protocol/disco#items".to_string(),
        ]
        .into_iter()
        .collect(),
        extensions: vec![forms::form(DataFormType::Result_, ns::COLLECTORS, fields)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::Seen;
    use xmpp_parsers::jid::FullJid;

    fn registry() -> Registry {
        let mut r = Registry::default();
        let up = Seen::Available {
            away: false,
            dnd: false,
            starting: false,
        };
        r.presence(&BareJid::new("web1@x").unwrap(), up, 5.0);
        r.facts(
            &BareJid::new("web1@x").unwrap(),
            vec![("memory_total".into(), "17179869184".into())],
        );
        r
    }

    fn view<'a>(is_user: bool, registry: &'a Registry, roster: &'a Roster) -> View<'a> {
        View {
            is_user,
            registry,
            roster,
            now: 8.0,
        }
    }

    #[test]
    fn root_caps_and_command_nodes() {
        let d = Disco::default();
        let (r, roster) = (Registry::default(), Roster::default());
        let v = view(false, &r, &roster);
        let root = d.info(None, &v).unwrap();
        assert!(root.features.contains(ns::COLLECTORS));
        assert_eq!(d.caps().node, ns::CAPS_NODE);
        let at_caps = d.info(Some(&d.caps_node), &v).unwrap();
        assert_eq!(at_caps.node.as_deref(), Some(d.caps_node.as_str()));
        assert_eq!(caps::ver(&root), d.caps_node.split('#').nth(1).unwrap());
        let cmd = d.info(Some("queries"), &v).unwrap();
        assert_eq!(cmd.identities[0].type_, "command-node");
        assert_eq!(cmd.identities[0].name.as_deref(), Some("List my queries"));
        let list = d.info(Some(adhoc::NS), &v).unwrap();
        assert_eq!(list.identities[0].type_, "command-list");
        assert!(matches!(
            d.info(Some("nope"), &view(true, &r, &roster)),
            Err(DefinedCondition::ItemNotFound)
        ));
    }

    #[test]
    fn collectors_are_shown_to_users_only() {
        let d = Disco::default();
        let (r, roster) = (registry(), Roster::default());
        let (user, other) = (view(true, &r, &roster), view(false, &r, &roster));
        let me = Jid::new("hub@x/r").unwrap();
        let info = d.info(Some("web1@x"), &user).unwrap();
        assert_eq!(info.identities[0].name.as_deref(), Some("collector web1"));
        assert!(info
            .features
            .contains("http://jabber.org/protocol/disco#items"));
        let value = |var: &str| {
            info.extensions[0]
                .fields
                .iter()
                .find(|f| f.var.as_deref() == Some(var))
                .map(|f| f.values.clone())
        };
        assert_eq!(value("status").unwrap(), ["alive"]);
        assert_eq!(value("last_seen").unwrap(), ["00:00:05 UTC, 3 s ago"]);
        assert_eq!(value("memory_total").unwrap(), ["16.0 GiB"]);
        assert!(matches!(
            d.info(Some("web1@x"), &other),
            Err(DefinedCondition::Forbidden)
        ));
        let items = d.items(None, &me, &user).unwrap();
        assert_eq!(items.items.len(), 1);
        let item = &items.items[0];
        assert_eq!(item.node.as_deref(), Some("web1@x"));
        assert_eq!(
            item.jid, me,
            "the hub answers the node, not the collector's server"
        );
        assert!(d.items(None, &me, &other).unwrap().items.is_empty());
        let cmds = d.items(Some(adhoc::NS), &me, &user).unwrap();
        assert_eq!(cmds.items.len(), commands::NODES.len());
        assert!(d
            .items(Some(adhoc::NS), &me, &other)
            .unwrap()
            .items
            .is_empty());
        assert!(d.items(Some("x"), &me, &user).is_err());
    }

    #[test]
    fn a_collector_node_opens_on_its_facts_and_its_resources() {
        let d = Disco::default();
        let r = registry();
        let mut roster = Roster::default();
        roster.collector_seen(&FullJid::new("web1@x/jabmon").unwrap());
        let (user, other) = (view(true, &r, &roster), view(false, &r, &roster));
        let me = Jid::new("hub@x/r").unwrap();
        let items = d.items(Some("web1@x"), &me, &user).unwrap();
        let names: Vec<_> = items
            .items
            .iter()
            .filter_map(|i| i.name.as_deref())
            .collect();
        assert_eq!(
            names,
            [
                "Host: web1",
                "Status: alive",
                "Last seen: 00:00:05 UTC, 3 s ago",
                "Last sample: never",
                "Memory: 16.0 GiB",
                "web1@x/jabmon: the collector itself (its stats groups)",
            ]
        );
        assert_eq!(items.items[1].node.as_deref(), Some("web1@x/status"));
        assert_eq!(items.items[1].jid, me);
        let last = items.items.last().unwrap();
        assert_eq!(
            (last.jid.to_string(), last.node.clone()),
            ("web1@x/jabmon".into(), None)
        );
        // A fact's node: named by the line, no children.
        let status = d.info(Some("web1@x/status"), &user).unwrap();
        assert_eq!(status.identities[0].name.as_deref(), Some("Status: alive"));
        assert!(!status
            .features
            .contains("http://jabber.org/protocol/disco#items"));
        assert!(d
            .items(Some("web1@x/status"), &me, &user)
            .unwrap()
            .items
            .is_empty());
        assert_eq!(
            d.info(Some("web1@x/nope"), &user).err(),
            Some(DefinedCondition::ItemNotFound)
        );
        assert_eq!(
            d.items(Some("web1@x"), &me, &other).err(),
            Some(DefinedCondition::Forbidden)
        );
    }
}
