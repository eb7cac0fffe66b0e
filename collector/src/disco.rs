//! XEP-0030 service discovery as others see the collector (docs/protocol.md §5): the root info with
//! its host form (the caps hash is computed from it), one item per stats group, per-group
//! info with live values in an XEP-0128 form, and the XEP-0050 command nodes — with who may see
//! what: anyone the root and the caps node; subscribers the groups and the commands they may
//! run; admins every command.

use std::collections::BTreeSet;

use jabmon_shared::disco::{caps_node_info, command_items, command_list_info, command_node_info};
use jabmon_shared::{adhoc, caps, forms, ns};
use minidom::Element;
use xmpp_parsers::caps::Caps;
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType};
use xmpp_parsers::disco::{
    DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery, DiscoItemsResult, Identity, Item,
};
use xmpp_parsers::jid::{FullJid, Jid};
use xmpp_parsers::stanza_error::DefinedCondition;

use crate::commands::{Node, Rights};

use crate::metrics::{line, title, Figure, MetricTable, Series, GROUPS};

/// Static facts about the host; nothing here changes while the collector runs.
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub hostname: String,
    pub os: String,
    pub kernel: String,
    pub cores: usize,
    pub memory_total: u64,
    pub version: String,
}

impl HostFacts {
    /// Reads the facts of this machine.
    pub fn read() -> Self {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Self {
            hostname: jabmon_shared::config::hostname(),
            os: sysinfo::System::long_os_version().unwrap_or_else(|| std::env::consts::OS.into()),
            kernel: sysinfo::System::kernel_version().unwrap_or_default(),
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            memory_total: crate::sample::procfs::parse_meminfo(&meminfo).total,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// Features of the collector's root node.
pub const FEATURES: [&str; 7] = [
    "http://jabber.org/protocol/caps",
    "http://jabber.org/protocol/commands",
    "http://jabber.org/protocol/disco#info",
    "http://jabber.org/protocol/disco#items",
    "jabber:iq:version",
    "urn:xmpp:ping",
    ns::STATS,
];

/// Root disco#info: identity `client/bot`, features, host form. Besides the host facts the
/// form carries the collector's `host` label and `publish_interval` (seconds), so that a hub
/// knows both before the first stats item (and can tell silence from a slow schedule).
pub fn root_info(host: &str, publish_interval: f64, facts: &HostFacts) -> DiscoInfoResult {
    let text = |var: &str, label: &str, v: String| {
        forms::field(var, FieldType::TextSingle, label, vec![v])
    };
    let form = forms::form(
        DataFormType::Result_,
        ns::HOST,
        vec![
            text("hostname", "Host name", facts.hostname.clone()),
            text("os", "Operating system", facts.os.clone()),
            text("kernel", "Kernel", facts.kernel.clone()),
            text("cores", "CPU cores", facts.cores.to_string()),
            text(
                "memory_total",
                "Memory (bytes)",
                facts.memory_total.to_string(),
            ),
            text("version", "jabmon version", facts.version.clone()),
            text("host", "Host label in metric names", host.to_string()),
            text(
                "publish_interval",
                "Stats publish interval (s)",
                publish_interval.to_string(),
            ),
        ],
    );
    DiscoInfoResult {
        node: None,
        identities: vec![Identity::new(
            "client",
            "bot",
            "en",
            format!("jabmon collector on {host}"),
        )],
        features: FEATURES
            .iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>(),
        extensions: vec![form],
    }
}

/// Root disco#items: one item per stats group.
pub fn group_items(jid: &FullJid) -> DiscoItemsResult {
    DiscoItemsResult {
        node: None,
        items: GROUPS
            .iter()
            .map(|(node, title)| Item {
                jid: Jid::from(jid.clone()),
                node: Some(node.to_string()),
                name: Some(title.to_string()),
            })
            .collect(),
        rsm: None,
    }
}

/// The form of live values of `group`: each metric, then its windowed figures.
pub fn group_form(group: &str, table: &MetricTable) -> DataForm {
    forms::form(DataFormType::Result_, ns::STATS, group_fields(group, table))
}

/// The fields of `group` (without FORM_TYPE).
pub fn group_fields(group: &str, table: &MetricTable) -> Vec<Field> {
    let mut fields = Vec::new();
    for (name, s) in table.group(group) {
        let l = title(name);
        fields.push(forms::field(
            name,
            FieldType::TextSingle,
            &l,
            vec![s.unit.show(s.value)],
        ));
        for f in Figure::ALL {
            fields.push(forms::field(
                &format!("{name}#{}", f.suffix()),
                FieldType::TextSingle,
                &format!("{l}, {}", f.describe()),
                vec![s.unit.show(s.figure(f))],
            ));
        }
    }
    fields
}

/// disco#info of a group node; `None` for an unknown node.
pub fn group_info(group: &str, table: &MetricTable) -> Option<DiscoInfoResult> {
    let (node, title) = GROUPS.iter().find(|(n, _)| *n == group)?;
    Some(DiscoInfoResult {
        node: Some(node.to_string()),
        identities: vec![Identity::new("client", "bot", "en", title.to_string())],
        // disco#items: a service browser offers to open only nodes that advertise it (Gajim).
        features: [
            "http://jabber.org/protocol/disco#info".to_string(),
            "http://jabber.org/protocol/disco#items".to_string(),
        ]
        .into_iter()
        .collect(),
        extensions: vec![group_form(group, table)],
    })
}

/// The node of one metric of a group: `cpu/cpu.cpu.idle`.
pub fn metric_node(group: &str, name: &str) -> String {
    format!("{group}/{name}")
}

/// The metric behind a `GROUP/METRIC` node, when it is one of that group's current metrics.
fn metric_of<'a>(node: &'a str, table: &'a MetricTable) -> Option<(&'a str, &'a Series)> {
    let (group, name) = node.split_once('/')?;
    let series = table.get(name)?;
    (crate::metrics::group_of(name) == group).then_some((name, series))
}

/// disco#items of a group node: one item per metric, named by its label and current value
/// (`CPU idle: 97.5 %`), so that a service browser that shows only item names shows values.
pub fn metric_items(jid: &FullJid, group: &str, table: &MetricTable) -> DiscoItemsResult {
    DiscoItemsResult {
        node: Some(group.to_string()),
        items: table
            .group(group)
            .map(|(name, s)| Item {
                jid: Jid::from(jid.clone()),
                node: Some(metric_node(group, name)),
                name: Some(line(name, s.unit, s.value)),
            })
            .collect(),
        rsm: None,
    }
}

/// disco#info of a metric node: named like its item, with a form of that metric's figures.
fn metric_info(node: &str, name: &str, s: &Series) -> DiscoInfoResult {
    let group = crate::metrics::group_of(name);
    let fields = group_fields(group, &MetricTable::single(name, s));
    DiscoInfoResult {
        node: Some(node.to_string()),
        identities: vec![Identity::new(
            "client",
            "bot",
            "en",
            line(name, s.unit, s.value),
        )],
        features: ["http://jabber.org/protocol/disco#info".to_string()]
            .into_iter()
            .collect(),
        extensions: vec![forms::form(DataFormType::Result_, ns::STATS, fields)],
    }
}

/// What the collector says about itself: the root info and the XEP-0115 caps computed from it.
#[derive(Debug, Clone)]
pub struct Profile {
    /// [`root_info`].
    pub root: DiscoInfoResult,
    /// The caps element our presence carries.
    pub caps: Caps,
    /// `node#ver` of our caps: its info is the root's.
    pub caps_node: String,
}

impl Profile {
    pub fn new(host: &str, publish_interval: f64, facts: &HostFacts) -> Self {
        let root = root_info(host, publish_interval, facts);
        Profile {
            caps: caps::caps(ns::CAPS_NODE, &root),
            caps_node: format!("{}#{}", ns::CAPS_NODE, caps::ver(&root)),
            root,
        }
    }

    /// disco#info of `node` as `rights` may see it; groups show the values in `table`.
    pub fn info(
        &self,
        node: Option<&str>,
        rights: Rights,
        table: &MetricTable,
    ) -> Result<DiscoInfoResult, DefinedCondition> {
        let Some(n) = node else {
            return Ok(self.root.clone());
        };
        if n == self.caps_node {
            return Ok(caps_node_info(&self.root, n));
        }
        if n == adhoc::NS {
            return Ok(command_list_info());
        }
        if let Some((name, series)) = metric_of(n, table) {
            return match rights {
                Rights::None => Err(DefinedCondition::Forbidden),
                _ => Ok(metric_info(n, name, series)),
            };
        }
        match (Node::parse(n), group_info(n, table)) {
            (Some(cmd), _) if rights.may_run(cmd) => Ok(command_node_info(cmd.name(), cmd.title())),
            (Some(_), _) => Err(DefinedCondition::Forbidden),
            (None, Some(_)) if rights == Rights::None => Err(DefinedCondition::Forbidden),
            (None, Some(info)) => Ok(info),
            (None, None) => Err(DefinedCondition::ItemNotFound),
        }
    }
}

/// disco#items of `node` as `rights` may see it: the groups at the root, a group's metrics
/// with their values under the group's node (nothing under a metric's), the commands
/// `rights` may run under the XEP-0050 node.
pub fn items(
    jid: &FullJid,
    node: Option<&str>,
    rights: Rights,
    table: &MetricTable,
) -> Result<DiscoItemsResult, DefinedCondition> {
    let is_group = |n: &str| GROUPS.iter().any(|(g, _)| *g == n);
    let is_metric = |n: &str| metric_of(n, table).is_some();
    match node {
        Some(n) if rights == Rights::None && (is_group(n) || is_metric(n)) => {
            Err(DefinedCondition::Forbidden)
        }
        None => Ok(group_items(jid)),
        Some(g) if is_group(g) => Ok(metric_items(jid, g, table)),
        Some(m) if is_metric(m) => Ok(DiscoItemsResult {
            node: Some(m.to_string()),
            items: vec![],
            rsm: None,
        }),
        Some(adhoc::NS) => Ok(command_items(
            &Jid::from(jid.clone()),
            Node::ALL
                .into_iter()
                .filter(|n| rights.may_run(*n))
                .map(|n| (n.name(), n.title())),
        )),
        Some(_) => Err(DefinedCondition::ItemNotFound),
    }
}

/// The answer to a disco get: `None` when `payload` is not a disco#info or disco#items query.
pub fn answer(
    profile: &Profile,
    me: &FullJid,
    payload: &Element,
    rights: Rights,
    table: &MetricTable,
) -> Option<Result<Element, DefinedCondition>> {
    if let Ok(q) = DiscoInfoQuery::try_from(payload.clone()) {
        let info = profile.info(q.node.as_deref(), rights, table);
        Some(info.map(forms::to_element))
    } else if let Ok(q) = DiscoItemsQuery::try_from(payload.clone()) {
        Some(items(me, q.node.as_deref(), rights, table).map(Element::from))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Unit;

    fn facts() -> HostFacts {
        HostFacts {
            hostname: "web1".into(),
            os: "Debian".into(),
            kernel: "6.1".into(),
            cores: 2,
            memory_total: 1024,
            version: "0.1.0".into(),
        }
    }

    #[test]
    fn root_info_is_stable_and_complete() {
        let a = root_info("web1", 10.0, &facts());
        let b = root_info("web1", 10.0, &facts());
        assert_eq!(jabmon_shared::caps::ver(&a), jabmon_shared::caps::ver(&b));
        // The hash covers the form: a hub sees a changed schedule as new caps.
        let slower = root_info("web1", 20.0, &facts());
        assert_ne!(
            jabmon_shared::caps::ver(&a),
            jabmon_shared::caps::ver(&slower)
        );
        assert!(a.features.contains(ns::STATS));
        let el = forms::to_element(a);
        let form = el.get_child("x", xmpp_parsers::ns::DATA_FORMS).unwrap();
        for f in form.children() {
            assert!(
                f.attr("type").is_some() && f.attr("label").is_some(),
                "{f:?}"
            );
        }
    }

    #[test]
    fn group_form_has_windows() {
        let mut t = MetricTable::default();
        t.record(
            0.0,
            vec![
                ("cpu.cpu.idle".into(), Unit::Percent, 80.0),
                ("load.load.shortterm".into(), Unit::Load, 0.1),
            ],
        );
        let form = group_form("cpu", &t);
        let vars: Vec<_> = form.fields.iter().filter_map(|f| f.var.clone()).collect();
        assert_eq!(
            vars,
            vec![
                "FORM_TYPE",
                "cpu.cpu.idle",
                "cpu.cpu.idle#1-min",
                "cpu.cpu.idle#5-min",
                "cpu.cpu.idle#15-min",
                "cpu.cpu.idle#min",
                "cpu.cpu.idle#max"
            ]
        );
        assert!(group_info("nope", &t).is_none());
        assert_eq!(group_items(&FullJid::new("c@x/r").unwrap()).items.len(), 8);
    }

    fn table() -> MetricTable {
        let mut t = MetricTable::default();
        t.record(0.0, vec![("cpu.cpu.idle".into(), Unit::Percent, 80.0)]);
        t
    }

    fn identity(info: &DiscoInfoResult) -> (String, String) {
        let i = &info.identities[0];
        (i.category.clone(), i.type_.clone())
    }

    #[test]
    fn info_access_rules() {
        let p = Profile::new("web1", 10.0, &facts());
        let (root, caps_node) = (&p.root, p.caps_node.as_str());
        let t = table();
        let info = |node: Option<&str>, r: Rights| p.info(node, r, &t);
        let (nobody, subscriber, admin) = (Rights::None, Rights::Subscriber, Rights::Admin);
        let refused = |node: &str, r: Rights| info(Some(node), r).err();
        // Root and caps node: anyone, the caps node named in the answer.
        assert_eq!(
            info(None, nobody).map(Element::from),
            Ok(Element::from(root.clone()))
        );
        assert!(caps_node.starts_with(ns::CAPS_NODE) && caps_node.contains('#'));
        assert_eq!(p.caps.node, ns::CAPS_NODE);
        let caps = info(Some(caps_node), nobody).unwrap();
        assert_eq!(caps.node.as_deref(), Some(caps_node));
        assert_eq!(caps.features, root.features);
        let list = info(Some(adhoc::NS), nobody).unwrap();
        assert_eq!(
            identity(&list),
            ("automation".into(), "command-list".into())
        );
        // Groups: subscribers and admins.
        assert_eq!(refused("cpu", nobody), Some(DefinedCondition::Forbidden));
        for r in [subscriber, admin] {
            let cpu = info(Some("cpu"), r).unwrap();
            assert_eq!(cpu.node.as_deref(), Some("cpu"));
            assert_eq!(cpu.extensions.len(), 1, "the live values form");
            assert!(
                cpu.features
                    .contains("http://jabber.org/protocol/disco#items"),
                "it opens"
            );
        }
        // Commands: whoever may run them.
        let status = info(Some("status"), subscriber).unwrap();
        assert_eq!(
            identity(&status),
            ("automation".into(), "command-node".into())
        );
        assert_eq!(
            status.identities[0].name.as_deref(),
            Some(Node::Status.title())
        );
        assert_eq!(refused("status", nobody), Some(DefinedCondition::Forbidden));
        assert_eq!(
            refused("reboot", subscriber),
            Some(DefinedCondition::Forbidden)
        );
        assert_eq!(refused("reboot", admin), None);
        assert_eq!(refused("nope", admin), Some(DefinedCondition::ItemNotFound));
    }

    #[test]
    fn items_list_what_the_asker_may_run() {
        let me = FullJid::new("web1@x/collector").unwrap();
        let t = table();
        let names = |r: Rights| -> Vec<String> {
            items(&me, Some(adhoc::NS), r, &t)
                .unwrap()
                .items
                .into_iter()
                .map(|i| i.node.unwrap())
                .collect()
        };
        assert_eq!(names(Rights::Admin), Node::ALL.map(|n| n.name()));
        let list = items(&me, Some(adhoc::NS), Rights::Admin, &t).unwrap();
        assert_eq!(
            list.items[0].name.as_deref(),
            Some(Node::Status.title()),
            "named by title"
        );
        assert_eq!(names(Rights::Subscriber), ["status"]);
        assert!(names(Rights::None).is_empty());
        assert_eq!(
            items(&me, None, Rights::None, &t).unwrap(),
            group_items(&me)
        );
        assert_eq!(
            items(&me, Some("nope"), Rights::Admin, &t),
            Err(DefinedCondition::ItemNotFound)
        );
    }

    #[test]
    fn group_items_carry_each_metric_with_its_value() {
        let me = FullJid::new("web1@x/collector").unwrap();
        let mut t = MetricTable::default();
        t.record(
            0.0,
            vec![
                ("cpu.cpu.idle".into(), Unit::Percent, 97.54),
                (
                    "memory.memory.available".into(),
                    Unit::Bytes,
                    24_638_754_816.0,
                ),
            ],
        );
        let cpu = items(&me, Some("cpu"), Rights::Subscriber, &t).unwrap();
        let el = Element::from(cpu);
        let expected: Element = "<query xmlns='http://jabber.org/protocol/disco#items' node='cpu'><item jid='web1@x/collector' node='cpu/cpu.cpu.idle' name='CPU idle: 97.5 %'/></query>".parse().unwrap();
        assert_eq!(el, expected);
        let memory = items(&me, Some("memory"), Rights::Admin, &t).unwrap();
        assert_eq!(
            memory.items[0].name.as_deref(),
            Some("Memory available: 22.9 GiB")
        );
        assert!(items(&me, Some("swap"), Rights::Admin, &t)
            .unwrap()
            .items
            .is_empty());
        assert_eq!(
            items(&me, Some("cpu"), Rights::None, &t),
            Err(DefinedCondition::Forbidden)
        );
        // A metric node: no children; its info names it with the value and has its figures.
        let leaf = items(&me, Some("cpu/cpu.cpu.idle"), Rights::Subscriber, &t).unwrap();
        assert!(leaf.items.is_empty());
        assert_eq!(
            items(&me, Some("cpu/memory.memory.available"), Rights::Admin, &t),
            Err(DefinedCondition::ItemNotFound),
            "a metric under another group's node"
        );
        let p = Profile::new("web1", 10.0, &facts());
        let info = p
            .info(Some("cpu/cpu.cpu.idle"), Rights::Subscriber, &t)
            .unwrap();
        assert_eq!(info.identities[0].name.as_deref(), Some("CPU idle: 97.5 %"));
        assert!(
            !info
                .features
                .contains("http://jabber.org/protocol/disco#items"),
            "a leaf: nothing to open"
        );
        let vars: Vec<_> = info.extensions[0]
            .fields
            .iter()
            .filter_map(|f| f.var.as_deref())
            .collect();
        assert_eq!(
            vars.len(),
            7,
            "FORM_TYPE, the value and five figures: {vars:?}"
        );
        assert_eq!(
            p.info(Some("cpu/cpu.cpu.idle"), Rights::None, &t).err(),
            Some(DefinedCondition::Forbidden)
        );
        assert_eq!(
            p.info(Some("cpu/cpu.cpu.nope"), Rights::Admin, &t).err(),
            Some(DefinedCondition::ItemNotFound)
        );
    }
}
