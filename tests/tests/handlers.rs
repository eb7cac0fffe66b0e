//! Property tests of the bots' pure stanza handlers with arbitrary input: disco queries,
//! XEP-0050 command stages with arbitrary forms, PEP notifications, presence and chat bodies.
//! Whatever comes in, nothing panics, every get/set gets an answer, and the state stays
//! bounded. `PROPTEST_CASES=N` makes a longer run (docs/performance.md, "Fuzzing the stanza
//! handlers").
// Test code: an unwrap that fails is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use jabmon_collector::commands::Rights;
use jabmon_collector::config::{ShellCommand, Thresholds};
use jabmon_collector::disco::{self, HostFacts, Profile};
use jabmon_collector::metrics::Unit;
use jabmon_collector::monitor::Monitor;
use jabmon_hub::state::HubState;
use jabmon_hub::Config as HubConfig;
use jabmon_shared::adhoc::Command;
use jabmon_shared::config::RawConfig;
use jabmon_shared::session::IqRequest;
use minidom::Element;
use proptest::prelude::*;
use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::presence::Presence;

const NAMESPACES: &[&str] = &[
    "http://jabber.org/protocol/disco#info",
    "http://jabber.org/protocol/disco#items",
    "http://jabber.org/protocol/commands",
    "jabber:x:data",
    "http://jabber.org/protocol/pubsub",
    "http://jabber.org/protocol/pubsub#event",
    "http://jabber.org/protocol/caps",
    "urn:jabmon:stats:0",
    "urn:jabmon:events:0",
    "urn:jabmon:collectors:0",
    "urn:jabmon:hub:registrations:0",
    "jabber:client",
    "urn:xmpp:ping",
    "urn:x:unknown",
];

const NAMES: &[&str] = &[
    "query",
    "command",
    "x",
    "field",
    "value",
    "item",
    "items",
    "event",
    "stats",
    "stat",
    "pubsub",
    "publish",
    "c",
    "status",
    "reported",
    "option",
    "note",
    "retract",
    "delete",
    "registrations",
    "registration",
    "actions",
    "next",
    "complete",
    "set",
    "body",
];

const ATTRS: &[&str] = &[
    "node",
    "action",
    "sessionid",
    "var",
    "type",
    "name",
    "value",
    "host",
    "timestamp",
    "id",
    "ver",
    "hash",
    "jid",
    "unit",
    "boot",
    "kind",
    "status",
];

const VALUES: &[&str] = &[
    "status",
    "thresholds",
    "shell",
    "reboot",
    "stats-reset",
    "collectors",
    "queries",
    "delete-queries",
    "execute",
    "next",
    "prev",
    "complete",
    "cancel",
    "submit",
    "result",
    "form",
    "cpu",
    "cpu/cpu.cpu.idle",
    "http://jabber.org/protocol/commands",
    "urn:jabmon#abc",
    "urn:jabmon:stats:0",
    "urn:jabmon:events:0",
    "current",
    "web1",
    "web1@x",
    "web1@x/a",
    "load_busy",
    "FORM_TYPE",
    "NaN",
    "inf",
    "-1",
    "1e309",
    "0",
    "85",
    "",
    "sha-1",
    "list-single",
    "text-multi",
];

fn word(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(pool).prop_map(str::to_string),
        1 => ".{0,12}",
    ]
}

/// Arbitrary XML trees over the vocabulary the bots read, with some noise.
fn element() -> impl Strategy<Value = Element> {
    let leaf = (
        word(NAMES),
        proptest::sample::select(NAMESPACES),
        proptest::collection::vec((proptest::sample::select(ATTRS), word(VALUES)), 0..4),
        proptest::option::of(word(VALUES)),
    )
        .prop_map(|(name, ns, attrs, text)| build(&name, ns, attrs, text, vec![]));
    leaf.prop_recursive(4, 48, 6, |inner| {
        (
            word(NAMES),
            proptest::sample::select(NAMESPACES),
            proptest::collection::vec((proptest::sample::select(ATTRS), word(VALUES)), 0..4),
            proptest::collection::vec(inner, 0..6),
        )
            .prop_map(|(name, ns, attrs, children)| build(&name, ns, attrs, None, children))
    })
}

fn build(
    name: &str,
    ns: &str,
    attrs: Vec<(&str, String)>,
    text: Option<String>,
    children: Vec<Element>,
) -> Element {
    let name = if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphabetic()) {
        "x"
    } else {
        name
    };
    let mut b = Element::builder(name, ns);
    for (k, v) in attrs {
        b = b.attr(minidom::rxml::NcName::try_from(k).unwrap(), v);
    }
    if let Some(t) = text {
        b = b.append(t);
    }
    b.append_all(children).build()
}

/// Who sends: a user, a collector, a stranger, the hub's own account, or nobody.
fn sender() -> impl Strategy<Value = Option<Jid>> {
    proptest::sample::select(vec![
        Some("ops@x/r"),
        Some("web1@x/a"),
        Some("eve@x/r"),
        Some("hub@x"),
        Some("x"),
        None,
    ])
    .prop_map(|s| s.map(|s| Jid::new(s).unwrap()))
}

/// Chat bodies: the query language, its mistakes, and noise.
fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "SELECT id FROM ^web1\\.;",
            "SELECT * FROM leela.xmpp;",
            "DELETE FROM leela.xmpp;",
            "SELECT [> 1] | stable 5m FROM ^web.*$;",
            "SELECT (((( FROM x;",
            "SELECT id FROM [;",
            "help",
            "",
        ])
        .prop_map(str::to_string),
        "(SELECT|DELETE)? ?[a-z*\\[\\]()|<>=0-9 .^$;-]{0,60}",
        ".{0,200}",
    ]
}

#[derive(Debug, Clone)]
enum Input {
    Iq(Option<Jid>, bool, Element),
    Chat(Option<Jid>, String),
    Notification(Option<Jid>, Element),
    Presence(Option<Jid>, Vec<Element>),
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        (sender(), any::<bool>(), element()).prop_map(|(f, s, e)| Input::Iq(f, s, e)),
        (sender(), body()).prop_map(|(f, b)| Input::Chat(f, b)),
        (sender(), element()).prop_map(|(f, e)| Input::Notification(f, e)),
        (sender(), proptest::collection::vec(element(), 0..3))
            .prop_map(|(f, e)| Input::Presence(f, e)),
    ]
}

fn hub_config() -> HubConfig {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.toml");
    let toml = format!(
        "[xmpp]\njid = \"hub@x\"\npassword = \"p\"\n[access]\ncollectors = [\"web1@x\"]\nusers = [\"ops@x\"]\n[hub]\nstorage = \"file\"\nstate_path = {:?}\nmax_queries_per_user = 20\n",
        dir.path().join("hub.json")
    );
    std::fs::write(&path, toml).unwrap();
    let raw = RawConfig::load_with_env(Some(&path), Some(HashMap::new())).unwrap();
    HubConfig::from_raw(raw).unwrap()
}

fn message(from: Option<Jid>) -> Message {
    let mut m = Message::new(Some(Jid::new("hub@x/jabmon").unwrap()));
    m.from = from;
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(200)
    ))]

    /// The hub, online, fed a sequence of arbitrary stanzas and ticks.
    #[test]
    fn hub_handlers_take_anything(inputs in proptest::collection::vec(input(), 1..24)) {
        let cfg = hub_config();
        let mut hub = HubState::new(cfg.clone(), HubState::engine_for(&cfg), true);
        hub.on_online(false);
        let me = Jid::new("hub@x/jabmon").unwrap();
        let mut now = 1_000.0;
        for input in inputs {
            now += 0.3;
            let actions = match input {
                Input::Iq(from, set, payload) => {
                    let req = IqRequest { from, id: "q1".into(), set, payload };
                    // An answer (result or error) is part of the return value: always there.
                    let (_answer, actions) = hub.on_iq(&req, &me, now);
                    actions
                }
                Input::Chat(from, body) => {
                    let mut m = message(from);
                    m.type_ = MessageType::Chat;
                    m.bodies.insert(Default::default(), body);
                    hub.on_message(m, now)
                }
                Input::Notification(from, payload) => {
                    let mut m = message(from);
                    m.payloads.push(payload);
                    hub.on_message(m, now)
                }
                Input::Presence(from, payloads) => {
                    let mut p = Presence::available();
                    p.from = from;
                    p.payloads = payloads;
                    hub.on_presence(p, false, now)
                }
            };
            prop_assert!(actions.len() <= 64, "{} actions for one stanza", actions.len());
            hub.on_tick(now);
        }
        prop_assert!(hub.engine.len() <= 20, "registrations beyond the per-user limit");
    }

    /// The collector's disco answers and command stages with arbitrary payloads and forms.
    #[test]
    fn collector_handlers_take_anything(
        payloads in proptest::collection::vec((element(), 0usize..3), 1..24)
    ) {
        let facts = HostFacts {
            hostname: "web1".into(),
            os: "Debian".into(),
            kernel: "6.1".into(),
            cores: 2,
            memory_total: 1 << 30,
            version: "0.1.0".into(),
        };
        let profile = Profile::new("web1", 10.0, &facts);
        let mut monitor = Monitor::new("web1", 1, 2, 10.0, Thresholds::default());
        monitor.record(1.0, vec![("cpu.cpu.idle".into(), Unit::Percent, 85.0)]);
        let me = FullJid::new("web1@x/collector").unwrap();
        let asker = BareJid::new("ops@x").unwrap();
        let shell = [ShellCommand {
            name: "true".into(),
            argv: vec!["/bin/true".into()],
            timeout: std::time::Duration::from_secs(1),
        }];
        for (i, (payload, r)) in payloads.into_iter().enumerate() {
            let rights = [Rights::None, Rights::Subscriber, Rights::Admin][r];
            // Every get is a disco query or gets service-unavailable from the bot.
            let _ = disco::answer(&profile, &me, &payload, rights, &monitor.table);
            if let Ok(cmd) = Command::try_from(payload) {
                // Accepted (an answer) or refused (the stanza error answered).
                let _ = monitor.command(cmd, Some(&asker), rights, &shell, 2.0 + i as f64);
            }
        }
    }
}
