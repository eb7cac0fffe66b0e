//! The session layer under load and over TLS, against a real Prosody.
//!
//! `no_stall_under_load_and_across_a_restart` guards the tokio-xmpp 6.0.0 lost-wakeup bug
//! (see shared/src/session/mod.rs): with `Client`, a fast exchange stalled after ~170
//! stanzas and a bot never came back online after a server restart.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use jabmon_shared::config::TlsMode;
use jabmon_shared::session::connector::{login, Connector};
use jabmon_shared::session::Incoming;
use jabmon_tests::client::{xmpp_config, WAIT};
use jabmon_tests::{server_matrix, Kind, Server, TestClient};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::Message;

const N: usize = 3000;

/// Sends `n` chats to `to` while receiving `n` from the peer, at full speed.
async fn exchange(mut c: TestClient, to: Jid, n: usize) -> TestClient {
    let mut sent = 0;
    let mut received = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while sent < n || received < n {
        for _ in 0..32.min(n - sent) {
            let m =
                Message::chat(Some(to.clone())).with_body(Default::default(), format!("m{sent}"));
            c.session.send(m).await;
            sent += 1;
        }
        let wait = if sent < n {
            Duration::from_millis(1)
        } else {
            deadline - tokio::time::Instant::now()
        };
        match tokio::time::timeout(wait, c.session.next()).await {
            Ok(Some(Incoming::Message(_))) => received += 1,
            Ok(Some(Incoming::Iq(req))) => c.session.reply_unavailable(&req).await,
            Ok(Some(_)) => {}
            Ok(None) => panic!("session ended"),
            Err(_) if sent < n => {}
            Err(_) => panic!("{} stalled: received {received} of {n}", c.jid),
        }
    }
    c
}

async fn online(c: &mut TestClient) {
    c.next_matching(Duration::from_secs(15), "online again", |e| {
        matches!(e, Incoming::Online { .. }).then_some(())
    })
    .await;
}

server_matrix!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    no_stall_under_load_and_across_a_restart
);
async fn no_stall_under_load_and_across_a_restart(kind: Kind) {
    let mut server = Server::start(kind);
    server.register("a", "pa");
    server.register("b", "pb");
    let a = TestClient::connect(&server, "a@localhost", "pa").await;
    let b = TestClient::connect(&server, "b@localhost", "pb").await;
    let (ja, jb) = (
        Jid::new("a@localhost/test").unwrap(),
        Jid::new("b@localhost/test").unwrap(),
    );
    let ta = tokio::spawn(exchange(a, jb.clone(), N));
    let tb = tokio::spawn(exchange(b, ja.clone(), N));
    let (mut a, mut b) = (ta.await.unwrap(), tb.await.unwrap());

    server.restart();
    online(&mut a).await;
    online(&mut b).await;
    let ta = tokio::spawn(exchange(a, jb, 500));
    let tb = tokio::spawn(exchange(b, ja, 500));
    ta.await.unwrap();
    tb.await.unwrap();
}

server_matrix!(
    #[tokio::test]
    starttls_and_direct_tls_with_a_private_ca
);
async fn starttls_and_direct_tls_with_a_private_ca(kind: Kind) {
    let server = Server::start(kind);
    server.register("t", "pt");
    let mut cfg = xmpp_config(&server, "t@localhost", "pt", "tls");
    cfg.tls = TlsMode::Required;
    cfg.ca_file = Some(server.ca_file());
    let mut c = TestClient::connect_with(cfg.clone()).await;
    let ping = minidom::Element::builder("ping", "urn:xmpp:ping").build();
    assert!(c
        .iq(Jid::new("localhost").unwrap(), false, ping)
        .await
        .is_ok());

    let mut direct = cfg.clone();
    direct.tls = TlsMode::Direct;
    direct.server = jabmon_shared::config::ServerAddr::Explicit {
        host: "127.0.0.1".into(),
        port: server.tls_port(),
    };
    direct.resource = "direct".into();
    TestClient::connect_with(direct).await;

    // Without the CA the server's certificate is not trusted: the login fails, it does not
    // fall back to anything weaker.
    let mut untrusted = cfg;
    untrusted.ca_file = None;
    let connector = Connector::new(&untrusted).unwrap();
    let jid = Jid::new("t@localhost/x").unwrap();
    let err = tokio::time::timeout(WAIT, login(&connector, &jid, "pt", Default::default()))
        .await
        .expect("login gives up")
        .err()
        .expect("an untrusted certificate is refused");
    let text = err.to_string();
    assert!(
        text.contains("certificate") || text.contains("UnknownIssuer"),
        "{text}"
    );
}
