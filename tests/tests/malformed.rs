//! Odd stanzas from a contact — an unknown `<show/>` value, two bodies in one language — must not
//! cost the bot its session: it keeps serving everyone else on the same stream. (xmpp-parsers
//! 0.23 lets both through; a stanza it refused outright would make tokio-xmpp send a stream
//! error and reconnect, which this test would catch as an unavailable presence.)

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use jabmon_shared::session::Incoming;
use jabmon_tests::bots::{collector_toml, InProcess};
use jabmon_tests::client::WAIT;
use jabmon_tests::{server_matrix, Kind, Server, TestClient};
use minidom::Element;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::presence::{Presence, Type as PresenceType};

fn from_collector(e: &Incoming) -> Option<&Presence> {
    match e {
        Incoming::Presence(p)
            if p.from.as_ref().map(|f| f.to_bare().to_string()).as_deref()
                == Some("web1@localhost") =>
        {
            Some(p)
        }
        _ => None,
    }
}

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
    // Alice subscribes both ways, so that any end of the collector's session reaches her as an
    // unavailable presence; its available presence says it is online.
    let bare = Jid::new("web1@localhost").unwrap();
    alice.available().await;
    alice
        .session
        .send(Presence::subscribe().with_to(bare.clone()))
        .await;
    alice
        .next_matching(WAIT, "subscribe back from the collector", |e| {
            from_collector(e)
                .filter(|p| p.type_ == PresenceType::Subscribe)
                .map(|_| ())
        })
        .await;
    alice
        .session
        .send(Presence::subscribed().with_to(bare))
        .await;
    alice
        .next_matching(WAIT, "the collector's available presence", |e| {
            from_collector(e)
                .filter(|p| p.type_ == PresenceType::None)
                .map(|_| ())
        })
        .await;
    // A directed presence with a `<show/>` value RFC 6121 does not know.
    let mut p = Presence::available().with_to(full.clone());
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
    // The collector still answers. Had it dropped its stream over either stanza, the server
    // would have sent Alice its unavailable presence before the new session could answer a
    // ping: so once the pings are answered, such a presence is already in Alice's inbox.
    for _ in 0..5 {
        assert!(alice.iq(full.clone(), false, ping()).await.is_ok());
    }
    let unavailable = alice
        .try_next_matching(Duration::ZERO, |e| {
            // From the collector's full JID: servers also send bare-JID unavailables around
            // subscription changes.
            from_collector(e)
                .filter(|p| {
                    p.type_ == PresenceType::Unavailable
                        && p.from.as_ref().is_some_and(|f| f.resource().is_some())
                })
                .cloned()
        })
        .await;
    assert!(
        unavailable.is_none(),
        "the collector lost its session: {unavailable:?}"
    );
    bot.stop().await;
}
