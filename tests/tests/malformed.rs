//! Odd stanzas from a contact — an unknown `<show/>` value, two bodies in one language — must not
//! cost the bot its session: it keeps serving everyone else on the same stream. (xmpp-parsers
//! 0.23 lets both through; a stanza it refused outright would make tokio-xmpp send a stream
//! error and reconnect, which this test would catch as an unavailable presence.)

use std::time::Duration;

use jabmon_shared::session::Incoming;
use jabmon_tests::bots::{collector_toml, InProcess};
use jabmon_tests::client::WAIT;
use jabmon_tests::{server_matrix, Kind, Server, TestClient};
use minidom::Element;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Message, MessageType};

server_matrix!(
    #[tokio::test]
    odd_stanzas_do_not_disconnect_the_collector
);
async fn odd_stanzas_do_not_disconnect_the_collector(kind: Kind) {
    let server = Server::start(kind);
    server.register("web1", "pw-web1");
    server.register("alice", "pw-alice");
    let cfg = collector_toml(
        &server,
        "web1",
        "pw-web1",
        "[access]\nsubscribers = [\"alice@localhost\"]\n",
    );
    let bot = InProcess::collector(&cfg);
    let mut alice = TestClient::connect(&server, "alice@localhost", "pw-alice").await;
    let full = Jid::new("web1@localhost/jabmon").unwrap();
    let ping = || Element::builder("ping", "urn:xmpp:ping").build();
    // Wait until the collector is online.
    let deadline = tokio::time::Instant::now() + WAIT;
    while alice.iq(full.clone(), false, ping()).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A directed presence with a `<show/>` value RFC 6121 does not know.
    let mut p = xmpp_parsers::presence::Presence::available().with_to(full.clone());
    p.payloads.push(
        Element::builder("show", "jabber:client")
            .append("sleeping")
            .build(),
    );
    alice.session.send(p).await;
    // And a message with two bodies in the same language.
    let mut m = Message::new(Some(full.clone()));
    m.type_ = MessageType::Chat;
    m.bodies.insert(Default::default(), "one".into());
    m.payloads.push(
        Element::builder("body", "jabber:client")
            .append("two")
            .build(),
    );
    alice.session.send(m).await;
    // The collector still answers, on the same session (no reconnect in between).
    for _ in 0..5 {
        assert!(alice.iq(full.clone(), false, ping()).await.is_ok());
    }
    let unavailable = alice
        .try_next_matching(Duration::from_millis(500), |e| match e {
            Incoming::Presence(p) if p.type_ == xmpp_parsers::presence::Type::Unavailable => {
                Some(())
            }
            _ => None,
        })
        .await;
    assert!(unavailable.is_none());
    bot.stop().await;
}
