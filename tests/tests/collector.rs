//! The collector as a subscriber sees it, against a real Prosody.
// Test code: an unwrap that fails is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use jabmon_shared::session::{Incoming, IqFailure};
use jabmon_tests::bots::{collector_toml, InProcess};
use jabmon_tests::client::WAIT;
use jabmon_tests::{server_matrix, Kind, Server, TestClient};
use minidom::Element;
use xmpp_parsers::caps::Caps;
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery, DiscoItemsResult};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza_error::DefinedCondition;

const COLLECTOR: &str = "web1@localhost/jabmon";

fn collector_jid() -> Jid {
    Jid::new(COLLECTOR).unwrap()
}

fn presence_from<'a>(e: &'a Incoming, who: &str) -> Option<&'a Presence> {
    match e {
        Incoming::Presence(p)
            if p.from.as_ref().map(|f| f.to_bare().to_string()).as_deref() == Some(who) =>
        {
            Some(p)
        }
        _ => None,
    }
}

/// Subscribes `client` to the collector and approves its subscription back; returns the
/// first available presence of the collector.
async fn subscribe(client: &mut TestClient) -> Presence {
    client.available().await;
    client
        .session
        .send(Presence::subscribe().with_to(Jid::new("web1@localhost").unwrap()))
        .await;
    client
        .next_matching(WAIT, "subscribed from the collector", |e| {
            presence_from(e, "web1@localhost")
                .filter(|p| p.type_ == PresenceType::Subscribed)
                .map(|_| ())
        })
        .await;
    client
        .next_matching(WAIT, "subscribe back from the collector", |e| {
            presence_from(e, "web1@localhost")
                .filter(|p| p.type_ == PresenceType::Subscribe)
                .map(|_| ())
        })
        .await;
    client
        .session
        .send(Presence::subscribed().with_to(Jid::new("web1@localhost").unwrap()))
        .await;
    client
        .next_matching(WAIT, "available presence of the collector", |e| {
            presence_from(e, "web1@localhost")
                .filter(|p| p.type_ == PresenceType::None)
                .cloned()
        })
        .await
}

async fn info(client: &mut TestClient, node: Option<&str>) -> Result<DiscoInfoResult, IqFailure> {
    let q = DiscoInfoQuery {
        node: node.map(str::to_string),
    };
    client
        .iq(collector_jid(), false, q.into())
        .await
        .map(|el| DiscoInfoResult::try_from(el.expect("a payload")).expect("a disco#info result"))
}

fn condition(f: IqFailure) -> DefinedCondition {
    match f {
        IqFailure::Error(e) => e.defined_condition,
        IqFailure::Lost => panic!("stream lost"),
    }
}

fn field<'a>(info: &'a DiscoInfoResult, var: &str) -> Option<&'a str> {
    info.extensions
        .iter()
        .flat_map(|f| &f.fields)
        .find(|f| f.var.as_deref() == Some(var))
        .and_then(|f| f.values.first())
        .map(String::as_str)
}

server_matrix!(
    #[tokio::test]
    subscription_caps_and_disco
);
async fn subscription_caps_and_disco(kind: Kind) {
    let server = Server::start(kind);
    server.register("web1", "pw-web1");
    let sub = server.register("alice", "pw-alice");
    let stranger = server.register("mallory", "pw-mallory");
    let cfg = collector_toml(
        &server,
        "web1",
        "pw-web1",
        "[access]\nsubscribers = [\"alice@localhost\"]\n[collector]\nhost = \"web1\"\n",
    );
    let bot = InProcess::collector(&cfg);

    let mut alice = TestClient::connect(&server, &sub, "pw-alice").await;
    let presence = subscribe(&mut alice).await;
    let caps = presence
        .payloads
        .iter()
        .find_map(|p| Caps::try_from(p.clone()).ok())
        .expect("caps in presence");
    assert_eq!(caps.node, "urn:jabmon");

    // The caps hash is the hash of the root disco#info.
    let root = info(&mut alice, None).await.expect("root info");
    assert_eq!(
        jabmon_shared::caps::ver(&root).as_bytes(),
        base64_of(&caps.ver).as_bytes()
    );
    assert_eq!(root.identities[0].category, "client");
    assert_eq!(root.identities[0].type_, "bot");
    assert_eq!(
        root.identities[0].name.as_deref(),
        Some("jabmon collector on web1")
    );
    for f in [
        "http://jabber.org/protocol/disco#info",
        "http://jabber.org/protocol/disco#items",
        "http://jabber.org/protocol/commands",
        "urn:xmpp:ping",
        "jabber:iq:version",
        "urn:jabmon:stats:0",
    ] {
        assert!(root.features.contains(f), "feature {f}");
    }
    assert_eq!(root.extensions[0].form_type(), Some("urn:jabmon:host:0"));
    for var in [
        "hostname",
        "os",
        "kernel",
        "cores",
        "memory_total",
        "version",
    ] {
        assert!(field(&root, var).is_some(), "host form field {var}");
    }

    // disco#items: the eight groups.
    let items = alice
        .iq(
            collector_jid(),
            false,
            DiscoItemsQuery {
                node: None,
                rsm: None,
            }
            .into(),
        )
        .await
        .expect("items")
        .expect("payload");
    let items = DiscoItemsResult::try_from(items).unwrap();
    let nodes: Vec<_> = items.items.iter().filter_map(|i| i.node.clone()).collect();
    assert_eq!(
        nodes,
        [
            "cpu",
            "load",
            "memory",
            "swap",
            "disk",
            "network",
            "processes",
            "uptime"
        ]
    );
    assert!(items
        .items
        .iter()
        .all(|i| i.jid.to_string() == COLLECTOR && i.name.is_some()));

    // disco#info node=cpu: live values with windows (cpu needs two samples: wait for it).
    let deadline = tokio::time::Instant::now() + WAIT;
    let cpu = loop {
        let i = info(&mut alice, Some("cpu")).await.expect("cpu node");
        if field(&i, "cpu.cpu.idle").is_some() {
            break i;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "cpu.cpu.idle never appeared"
        );
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval, not a wait-long-enough
    };
    // Values as people read them: `97.5 %`.
    let percent = |v: &str| -> f64 {
        v.strip_suffix(" %")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{v}"))
    };
    let idle = percent(field(&cpu, "cpu.cpu.idle").unwrap());
    assert!((0.0..=100.0).contains(&idle), "idle {idle}");
    for suffix in ["1-min", "5-min", "15-min", "min", "max"] {
        let v =
            field(&cpu, &format!("cpu.cpu.idle#{suffix}")).unwrap_or_else(|| panic!("#{suffix}"));
        assert!((0.0..=100.0).contains(&percent(v)), "{v}");
    }
    assert_eq!(cpu.extensions[0].form_type(), Some("urn:jabmon:stats:0"));

    // Chatting with it gets a line about what it offers.
    let mut hello = xmpp_parsers::message::Message::chat(Some(collector_jid()));
    hello.bodies.insert(Default::default(), "hello?".into());
    alice.session.send(hello).await;
    let answer = alice
        .next_matching(WAIT, "the collector's chat answer", |e| match e {
            Incoming::Message(m) => m.bodies.values().next().cloned(),
            _ => None,
        })
        .await;
    assert!(
        answer.starts_with("I am the jabmon collector of web1")
            && answer.contains("/cmd exec status"),
        "{answer}"
    );

    // Errors: unknown node, unknown IQ; ping answers.
    let err = info(&mut alice, Some("no-such-node")).await.unwrap_err();
    assert_eq!(condition(err), DefinedCondition::ItemNotFound);
    let odd = Element::builder("query", "urn:example:nothing").build();
    let err = alice.iq(collector_jid(), false, odd).await.unwrap_err();
    assert_eq!(condition(err), DefinedCondition::ServiceUnavailable);
    let ping = Element::builder("ping", "urn:xmpp:ping").build();
    assert!(alice.iq(collector_jid(), false, ping).await.is_ok());

    // A stranger's subscription is refused.
    let mut mallory = TestClient::connect(&server, &stranger, "pw-mallory").await;
    mallory.available().await;
    mallory
        .session
        .send(Presence::subscribe().with_to(Jid::new("web1@localhost").unwrap()))
        .await;
    mallory
        .next_matching(WAIT, "unsubscribed for the stranger", |e| {
            presence_from(e, "web1@localhost")
                .filter(|p| p.type_ == PresenceType::Unsubscribed)
                .map(|_| ())
        })
        .await;
    // ... and it may not read live stats.
    let q = DiscoInfoQuery {
        node: Some("cpu".into()),
    };
    let err = mallory
        .iq(collector_jid(), false, q.into())
        .await
        .unwrap_err();
    assert_eq!(condition(err), DefinedCondition::Forbidden);

    bot.stop().await;
}

fn base64_of(bytes: &[u8]) -> String {
    xmpp_parsers::hashes::Hash::new(xmpp_parsers::hashes::Algo::Sha_1, bytes.to_vec()).to_base64()
}

server_matrix!(
    #[tokio::test]
    presence_shows_busy_and_critical_load
);
/// Presence follows load: thresholds set below this machine's load give away, then dnd.
async fn presence_shows_busy_and_critical_load(kind: Kind) {
    use xmpp_parsers::presence::Show;
    let _burn = jabmon_tests::Burner::start();
    let server = Server::start(kind);
    server.register("web1", "pw-web1");
    let sub = server.register("alice", "pw-alice");
    let mut alice = TestClient::connect(&server, &sub, "pw-alice").await;

    for (thresholds, show, prefix) in [
        (
            "load_busy = 0.0002\nload_busy_clear = 0.0001\nload_critical = 1000.0\n",
            Show::Away,
            "Overloaded. Can’t take more jobs.",
        ),
        (
            "load_busy = 0.0002\nload_busy_clear = 0.0001\nload_critical = 0.0003\n",
            Show::Dnd,
            "Critical:",
        ),
    ] {
        let cfg = collector_toml(
            &server,
            "web1",
            "pw-web1",
            &format!("[access]\nsubscribers = [\"alice@localhost\"]\n[thresholds]\n{thresholds}"),
        );
        let bot = InProcess::collector(&cfg);
        if show == Show::Away {
            subscribe(&mut alice).await;
        }
        let p = alice
            .next_matching(WAIT, "a loaded presence", |e| {
                presence_from(e, "web1@localhost")
                    .filter(|p| p.show == Some(show.clone()))
                    .cloned()
            })
            .await;
        let status = p
            .statuses
            .values()
            .next()
            .map(|s| s.to_string())
            .unwrap_or_default();
        assert!(status.starts_with(prefix), "{status}");
        assert!(!status.contains('\''), "no ASCII apostrophe: {status}");
        assert!(
            status.contains("load ") && status.contains("cpu ") && status.contains("mem "),
            "{status}"
        );
        assert!(p
            .payloads
            .iter()
            .any(|e| e.is("c", "http://jabber.org/protocol/caps")));
        bot.stop().await;
        alice.clear();
    }
}
