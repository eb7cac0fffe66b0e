//! A fleet across a two-node ejabberd cluster, as docs/operations.md describes it: the hub and
//! a user on node A, collectors web1 and web2 on node B and web3 on node A. Registry, presence,
//! PEP stats and query events cross the nodes; node B going down makes its collectors dead at
//! the hub, and its return brings them back with no bot restarted; the hub moved to node B
//! keeps its registrations (PEP storage lives in the cluster's database).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use jabmon_shared::session::Incoming;
use jabmon_tests::bots::{collector_toml, hub_toml, InProcess};
use jabmon_tests::chat::{
    body_of, collector_status, hub_online, is_event, query, user_of_hub, HUB,
};
use jabmon_tests::client::WAIT;
use jabmon_tests::ejabberd::Cluster;
use jabmon_tests::{Server, TestClient};
use xmpp_parsers::presence::Type as PresenceType;

const COLLECTORS: [&str; 3] = ["web1", "web2", "web3"];

fn collector(server: &Server, name: &str) -> InProcess {
    InProcess::collector(&collector_toml(
        server,
        name,
        &format!("pw-{name}"),
        &format!(
            "[access]\nsubscribers = [\"u1@localhost\"]\n[collector]\nhost = \"{name}\"\nhub = \"{HUB}\"\nsample_interval = \"500ms\"\npublish_interval = \"1s\"\n"
        ),
    ))
}

fn hub_on(server: &Server) -> InProcess {
    InProcess::hub(&hub_toml(
        server,
        "[access]\ncollectors = [\"web1@localhost\", \"web2@localhost\", \"web3@localhost\"]\nusers = [\"u1@localhost\"]\n[hub]\nstorage = \"pep\"\nmax_events_per_second_per_user = 200\n",
    ))
}

/// Polls the hub's word for `collector` until `want` accepts it.
async fn wait_status(c: &mut TestClient, collector: &str, limit: Duration, want: fn(&str) -> bool) {
    let deadline = Instant::now() + limit;
    let jid = format!("{collector}@localhost");
    loop {
        let status = collector_status(c, &jid).await;
        if status.as_deref().is_some_and(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{collector} still {status:?} at the hub after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await; // polling interval
    }
}

fn up(s: &str) -> bool {
    matches!(s, "alive" | "busy" | "critical")
}

/// Waits for an event of `key` from each of `hosts`, within `limit` in all.
async fn events_from(c: &mut TestClient, key: &str, hosts: &[&str], limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut missing: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    while !missing.is_empty() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let key = key.to_string();
        let Some(ev) = c
            .try_next_matching(left, move |e| {
                body_of(e, true).filter(|v| is_event(v, &key))
            })
            .await
        else {
            panic!("no event from {missing:?} within {limit:?}");
        };
        let name = ev["results"]["event"]["name"].as_str().unwrap_or_default();
        missing.retain(|h| !name.starts_with(&format!("{h}.")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_across_two_ejabberd_nodes() {
    let mut cluster = Cluster::start();
    // Accounts created on A exist on B: one database.
    cluster.a.register("hub", "pw-hub");
    cluster.a.register("u1", "pw-u1");
    for name in COLLECTORS {
        cluster.a.register(name, &format!("pw-{name}"));
    }
    let _web1 = collector(&cluster.b, "web1");
    let _web2 = collector(&cluster.b, "web2");
    let _web3 = collector(&cluster.a, "web3");
    let hub = hub_on(&cluster.a);
    let mut u1 = user_of_hub(&cluster.a, "u1").await;

    // Registry and presence cross nodes; stats from B become events at a user on A.
    for name in COLLECTORS {
        wait_status(&mut u1, name, Duration::from_secs(20), up).await;
    }
    let r = query(&mut u1, r"SELECT id FROM ^web[123]\.cpu\.cpu\.idle$;").await;
    assert_eq!(r["status"], 200, "{r}");
    let key = r["results"]["key"].as_str().unwrap().to_string();
    events_from(&mut u1, &key, &COLLECTORS, Duration::from_secs(15)).await;
    let alive = query(&mut u1, r"SELECT id FROM ^web[12]\.jabmon\.status\.alive$;").await;
    let alive_key = alive["results"]["key"].as_str().unwrap().to_string();

    // Node B goes down: its collectors are dead at the hub within 30 s (no bot is told), web3
    // on A stays up.
    cluster.b.stop();
    let down = Instant::now();
    for name in ["web1", "web2"] {
        wait_status(&mut u1, name, Duration::from_secs(30), |s| s == "dead").await;
    }
    let k = alive_key.clone();
    u1.next_matching(WAIT, "status.alive = 0 for a collector on B", move |e| {
        body_of(e, true).filter(|v| is_event(v, &k) && v["results"]["event"]["value"] == 0.0)
    })
    .await;
    eprintln!(
        "web1 and web2 dead {:?} after node B stopped",
        down.elapsed()
    );
    assert!(down.elapsed() < Duration::from_secs(30));
    assert!(collector_status(&mut u1, "web3@localhost")
        .await
        .as_deref()
        .is_some_and(up));

    // B comes back: the same collector processes log in again (their backoff is at most a
    // minute) and the hub sees them up, with events flowing.
    cluster.b.restart();
    let back = Instant::now();
    for name in ["web1", "web2"] {
        wait_status(&mut u1, name, Duration::from_secs(90), up).await;
    }
    eprintln!(
        "web1 and web2 up again {:?} after node B restarted",
        back.elapsed()
    );
    u1.clear();
    events_from(&mut u1, &key, &["web1", "web2"], Duration::from_secs(15)).await;

    // The hub moves to node B: its registrations are there, and the user on A gets events.
    hub.stop().await;
    u1.next_matching(WAIT, "the hub's unavailable presence", |e| match e {
        Incoming::Presence(p)
            if p.type_ == PresenceType::Unavailable
                && p.from.as_ref().map(|f| f.to_bare().to_string()).as_deref() == Some(HUB) =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
    u1.clear();
    let hub = hub_on(&cluster.b);
    hub_online(&mut u1).await;
    let list = query(&mut u1, "SELECT * FROM leela.xmpp;").await;
    let mut keys: Vec<&str> = list["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{list}"))
        .iter()
        .filter_map(|v| v["key"].as_str())
        .collect();
    keys.sort();
    let mut want = vec![key.as_str(), alive_key.as_str()];
    want.sort();
    assert_eq!(keys, want, "{list}");
    events_from(&mut u1, &key, &COLLECTORS, Duration::from_secs(15)).await;
    hub.stop().await;
}

/// The way across nodes docs/operations.md proposes for the hub: a user on node A that does not
/// advertise `+notify` (no caps at all) subscribes explicitly (XEP-0060) to the stats node of a
/// collector on node B, and gets its items.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_pubsub_subscription_crosses_nodes() {
    use xmpp_parsers::pubsub::pubsub::{PubSub, Subscribe};
    use xmpp_parsers::pubsub::NodeName;

    let cluster = Cluster::start();
    cluster.a.register("web1", "pw-web1");
    cluster.a.register("u1", "pw-u1");
    let _web1 = collector(&cluster.b, "web1");
    let mut u1 = TestClient::connect(&cluster.a, "u1@localhost", "pw-u1").await;
    u1.available().await;
    let web1 = xmpp_parsers::jid::Jid::new("web1@localhost").unwrap();
    u1.session
        .send(xmpp_parsers::presence::Presence::subscribe().with_to(web1.clone()))
        .await;
    let from_web1 = |e: &Incoming, t: PresenceType| {
        matches!(e, Incoming::Presence(p)
            if p.type_ == t && p.from.as_ref().map(|f| f.to_bare().to_string()).as_deref() == Some("web1@localhost"))
    };
    u1.next_matching(WAIT, "subscribe back", |e| {
        from_web1(e, PresenceType::Subscribe).then_some(())
    })
    .await;
    u1.session
        .send(xmpp_parsers::presence::Presence::subscribed().with_to(web1.clone()))
        .await;
    let subscribe: minidom::Element = PubSub::Subscribe {
        subscribe: Some(Subscribe {
            jid: xmpp_parsers::jid::Jid::new("u1@localhost").unwrap(),
            node: Some(NodeName(jabmon_shared::ns::STATS.to_string())),
        }),
        options: None,
    }
    .into();
    // The node exists from web1's first publish on.
    let deadline = Instant::now() + Duration::from_secs(15);
    while let Err(e) = u1.iq(web1.clone(), true, subscribe.clone()).await {
        assert!(Instant::now() < deadline, "subscribe refused: {e:?}");
        tokio::time::sleep(Duration::from_millis(200)).await; // polling interval
    }
    // Two items with different timestamps: at least one is a fresh publish, not the last item
    // the server replays on subscribing.
    let subscribed = Instant::now();
    let mut stamps: Vec<u64> = Vec::new();
    while stamps.len() < 2 {
        let left = Duration::from_secs(10).saturating_sub(subscribed.elapsed());
        let stamp = u1
            .next_matching(left, "stats items from web1 on node B", |e| match e {
                Incoming::Message(m)
                    if m.from.as_ref().map(|f| f.to_bare().to_string()).as_deref()
                        == Some("web1@localhost") =>
                {
                    m.payloads
                        .iter()
                        .filter(|p| p.is("event", "http://jabber.org/protocol/pubsub#event"))
                        .flat_map(|ev| ev.children())
                        .flat_map(|items| items.children())
                        .flat_map(|item| item.children())
                        .find_map(|p| jabmon_shared::payload::Stats::try_from(p.clone()).ok())
                        .map(|s| s.timestamp.to_bits())
                }
                _ => None,
            })
            .await;
        if !stamps.contains(&stamp) {
            stamps.push(stamp);
        }
    }
    eprintln!(
        "two stats items {:?} after subscribing",
        subscribed.elapsed()
    );
}
