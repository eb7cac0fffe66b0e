//! The hub's memory at fleet size without a server: synthetic collectors go through the hub's
//! own state machine ([`HubState`]) as its session hands stanzas over — an available presence
//! with caps, the caps lookup's answer (the collector's disco#info with its host form, one
//! `ver` per host), then two stats items of M metrics each — while one user holds the probe
//! query and a fleet-wide threshold. The fleet comes in two halves; the process's resident
//! memory is read before, after the first half and after the second: what the second half
//! added is what a collector costs the hub (allocator slack included), apart from the fixed
//! part (compiled regexes, tables' first allocations).
//! Left out: the session layer (its buffers, and the roster it keeps of every contact).

use jabmon_collector::disco::Profile;
use jabmon_hub::state::{Action, Awaiting, HubState};
use jabmon_hub::Config;
use jabmon_shared::config::RawConfig;
use jabmon_shared::payload::{Stat, Stats};
use jabmon_shared::{forms, ns, unix_now};
use minidom::Element;
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::presence::Presence;
use xmpp_parsers::pubsub::event::{Event as PubSubEvent, Item, Payload};
use xmpp_parsers::pubsub::{ItemId, NodeName};

use super::figures::{host, metric_names, parse_proc};
use super::fleet::facts;
use super::users::PROBE;

/// Resident memory of the hub's state for a fleet.
#[derive(Debug, Clone, Copy)]
pub struct HubMemory {
    pub collectors: usize,
    /// VmRSS before the hub's state was made, KiB.
    pub before_kib: u64,
    /// VmRSS once the first half of the fleet was in, KiB.
    pub half_kib: u64,
    /// VmRSS once every collector was alive and had sent two stats items, KiB.
    pub after_kib: u64,
    /// Caps lookups the hub made (one per collector: every host has its own `ver`).
    pub caps_lookups: u64,
    /// Events the hub ingested.
    pub events_in: u64,
}

impl HubMemory {
    /// Bytes per collector: what the second half of the fleet added.
    pub fn per_collector(&self) -> f64 {
        let second_half = self.collectors - self.collectors / 2;
        (self.after_kib.saturating_sub(self.half_kib) * 1024) as f64 / second_half as f64
    }
}

impl std::fmt::Display for HubMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} collectors ({} caps lookups, {} events): RSS {:.1} → {:.1} (half) → {:.1} MiB, {:.0} bytes per collector",
            self.collectors,
            self.caps_lookups,
            self.events_in,
            self.before_kib as f64 / 1024.0,
            self.half_kib as f64 / 1024.0,
            self.after_kib as f64 / 1024.0,
            self.per_collector()
        )
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    parse_proc(&status, "").rss_kib
}

const INTERVAL: f64 = 10.0;

/// Runs `collectors` synthetic collectors of `metrics` stats each through a [`HubState`].
pub fn hub_memory(collectors: usize, metrics: usize) -> HubMemory {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hub.toml");
    let toml = format!(
        "[xmpp]\njid = \"hub@localhost\"\npassword = \"p\"\n[access]\ncollectors = [\"@localhost\"]\nusers = [\"ops@example.org\"]\n[hub]\nstorage = \"file\"\nstate_path = {:?}\n",
        dir.path().join("hub.json")
    );
    std::fs::write(&path, toml).expect("write hub.toml");
    let raw = RawConfig::load_with_env(Some(&path), Some(Default::default())).expect("config");
    let cfg = Config::from_raw(raw).expect("valid config");
    let names = metric_names(metrics);
    let before_kib = rss_kib();
    let mut hub = HubState::new(cfg.clone(), HubState::engine_for(&cfg), true);
    let now = unix_now();
    hub.on_online(false);
    for query in [PROBE, "SELECT [> 99] FROM ^.*\\.cpu\\.cpu\\.user$;"] {
        let mut m = Message::new(Some(Jid::new("hub@localhost").expect("jid")));
        m.from = Some(Jid::new("ops@example.org/desk").expect("jid"));
        m.type_ = MessageType::Chat;
        m.bodies.insert(Default::default(), query.into());
        hub.on_message(m, now);
    }
    let mut half_kib = before_kib;
    for half in [0..collectors / 2, collectors / 2..collectors] {
        for i in half.clone() {
            let profile = Profile::new(&host(i), INTERVAL, &facts(&host(i)));
            let mut p = Presence::available().with_payload(profile.caps.clone());
            p.from = Some(Jid::new(&format!("{}@localhost/jabmon", host(i))).expect("jid"));
            let actions = hub.on_presence(p, true, now);
            answer(&mut hub, actions, now);
        }
        for round in 0..2 {
            for i in half.clone() {
                let t = now + f64::from(round) * INTERVAL + i as f64 * 1e-6;
                let actions = hub.on_message(stats_item(i, &names, t), t);
                answer(&mut hub, actions, t);
            }
        }
        if half.start == 0 {
            half_kib = rss_kib();
        }
    }
    HubMemory {
        collectors,
        before_kib,
        half_kib,
        after_kib: rss_kib(),
        caps_lookups: hub.counters.caps_lookups,
        events_in: hub.counters.events_in,
    }
}

/// Answers the hub's caps lookups (as the collector would) and subscriptions (accepted),
/// and what those answers ask next, until nothing is asked.
fn answer(hub: &mut HubState, actions: Vec<Action>, now: f64) {
    let mut pending = actions;
    while let Some(action) = pending.pop() {
        let Action::Request { then, .. } = action else {
            continue;
        };
        let outcome = match &then {
            Awaiting::CapsInfo { from, .. } => {
                let host = from.node().map(|n| n.to_string()).unwrap_or_default();
                let profile = Profile::new(&host, INTERVAL, &facts(&host));
                Ok(Some(forms::to_element(profile.root)))
            }
            Awaiting::Subscription { .. } => Ok(None),
            _ => continue,
        };
        pending.extend(hub.on_answer(then, outcome, now));
    }
}

/// Collector `i`'s stats item as the server notifies it (from the collector's bare JID).
fn stats_item(i: usize, names: &[String], timestamp: f64) -> Message {
    let stats = Stats {
        host: host(i),
        timestamp,
        stats: names
            .iter()
            .enumerate()
            .map(|(k, name)| Stat {
                name: name.clone(),
                value: (k % 100) as f64,
                unit: None,
            })
            .collect(),
    };
    let event = PubSubEvent {
        payload: Payload::Items {
            node: NodeName(ns::STATS.to_string()),
            published: vec![Item {
                id: Some(ItemId("current".to_string())),
                publisher: None,
                payload: Some(Element::from(stats)),
            }],
            retracted: vec![],
        },
    };
    let mut m = Message::new(Some(Jid::new("hub@localhost").expect("jid"))).with_payload(event);
    m.from = Some(Jid::from(
        BareJid::new(&format!("{}@localhost", host(i))).expect("jid"),
    ));
    m.type_ = MessageType::Headline;
    m
}
