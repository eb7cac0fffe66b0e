//! The collector binary as an operator runs it: signals, bad configs, bad passwords, a server
//! that goes away and comes back.
// Test code: an unwrap that fails is a failed test.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use jabmon_shared::session::Incoming;
use jabmon_tests::bots::{collector_toml, Process};
use jabmon_tests::client::WAIT;
use jabmon_tests::{server_matrix, Kind, Server, TestClient};
use xmpp_parsers::jid::Jid;
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

fn status(p: &Presence) -> String {
    p.statuses
        .values()
        .next()
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// A subscriber who approved the collector, so it sees every presence change.
async fn subscriber(server: &Server) -> TestClient {
    let mut alice = TestClient::connect(server, "alice@localhost", "pw-alice").await;
    alice.available().await;
    alice
        .session
        .send(Presence::subscribe().with_to(Jid::new("web1@localhost").unwrap()))
        .await;
    alice
        .next_matching(WAIT, "subscribe back", |e| {
            from_collector(e)
                .filter(|p| p.type_ == PresenceType::Subscribe)
                .map(|_| ())
        })
        .await;
    alice
        .session
        .send(Presence::subscribed().with_to(Jid::new("web1@localhost").unwrap()))
        .await;
    alice
}

fn wait_exit(p: &mut Process, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = p.child.try_wait().expect("try_wait") {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "no exit within {limit:?}; log:\n{}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

server_matrix!(
    #[tokio::test]
    sigterm_says_stopping_and_exits_zero_within_5s
);
async fn sigterm_says_stopping_and_exits_zero_within_5s(kind: Kind) {
    let server = Server::start(kind);
    server.register("web1", "pw-web1");
    server.register("alice", "pw-alice");
    let cfg = collector_toml(
        &server,
        "web1",
        "pw-web1",
        "[access]\nsubscribers = [\"@localhost\"]\n",
    );
    let mut bot = Process::start("jabmon-collector", &cfg);
    let mut alice = subscriber(&server).await;
    alice
        .next_matching(WAIT, "collector available", |e| {
            from_collector(e)
                .filter(|p| p.type_ == PresenceType::None)
                .map(|_| ())
        })
        .await;

    bot.signal("TERM");
    let signalled = Instant::now();
    let bye = alice
        // The server also sends bare-JID unavailables around subscription changes: wait for
        // the collector's own (from its full JID).
        .next_matching(WAIT, "unavailable presence", |e| {
            from_collector(e)
                .filter(|p| {
                    p.type_ == PresenceType::Unavailable
                        && p.from.as_ref().is_some_and(|f| f.resource().is_some())
                })
                .cloned()
        })
        .await;
    assert_eq!(status(&bye), "Stopping", "{bye:?}");
    let code = wait_exit(&mut bot, Duration::from_secs(5));
    assert!(code.success(), "exit status {code}; log:\n{}", bot.log());
    assert!(signalled.elapsed() < Duration::from_secs(5));
}

server_matrix!(
    #[tokio::test]
    survives_a_server_restart
);
async fn survives_a_server_restart(kind: Kind) {
    let mut server = Server::start(kind);
    server.register("web1", "pw-web1");
    server.register("alice", "pw-alice");
    let cfg = collector_toml(
        &server,
        "web1",
        "pw-web1",
        "[access]\nsubscribers = [\"@localhost\"]\n",
    );
    let bot = Process::start("jabmon-collector", &cfg);
    {
        let mut alice = subscriber(&server).await;
        alice
            .next_matching(WAIT, "collector available", |e| {
                from_collector(e)
                    .filter(|p| p.type_ == PresenceType::None)
                    .map(|_| ())
            })
            .await;
    }
    server.restart();
    let back = Instant::now();
    let mut alice = TestClient::connect(&server, "alice@localhost", "pw-alice").await;
    alice.available().await;
    alice
        .next_matching(
            Duration::from_secs(10),
            "collector available after the restart",
            |e| {
                from_collector(e)
                    .filter(|p| p.type_ == PresenceType::None)
                    .map(|_| ())
            },
        )
        .await;
    assert!(back.elapsed() < Duration::from_secs(10));
    drop(bot);
}

server_matrix!(
    #[tokio::test]
    wrong_password_is_one_clear_line_then_backoff
);
async fn wrong_password_is_one_clear_line_then_backoff(kind: Kind) {
    let server = Server::start(kind);
    server.register("web1", "right");
    let cfg = collector_toml(&server, "web1", "wrong", "");
    let bot = Process::start("jabmon-collector", &cfg);
    // Wait for the second failure (event-driven: poll the log until it shows two).
    let lines = jabmon_tests::wait_for(
        Duration::from_secs(10),
        "two authentication failures",
        || {
            let log = bot.log();
            async move {
                let l: Vec<String> = log
                    .lines()
                    .filter(|l| l.contains("Authentication failed"))
                    .map(String::from)
                    .collect();
                (l.len() >= 2).then_some(l)
            }
        },
    )
    .await;
    assert!(
        lines[0].contains("Check the account and its password"),
        "{}",
        lines[0]
    );
    assert!(
        !bot.log().contains("wrong"),
        "the password leaked into the log:\n{}",
        bot.log()
    );
    // The retry delays grow (1 s, then 2 s, ±20 %): not a tight loop.
    let delay = |l: &str| -> f64 {
        let v = l.split("retry_in=").nth(1).expect("retry_in field");
        let num: String = v
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let n: f64 = num.parse().unwrap();
        if v[num.len()..].starts_with("ms") {
            n / 1000.0
        } else {
            n
        }
    };
    let (d1, d2) = (delay(&lines[0]), delay(&lines[1]));
    assert!((0.8..=1.2).contains(&d1), "first delay {d1}");
    assert!((1.6..=2.4).contains(&d2), "second delay {d2}");
    drop(bot);
}

#[test]
fn invalid_config_exits_64_listing_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[xmpp]\njid = \"web1@example.org\"\npassword = \"pw\"\nserver = \"192.0.2.10:5222\"\ntls = \"none\"\nunknown_key = 1\n[collector]\nsample_interval = \"soon\"\n[thresholds]\ndisk_warn = 80.0\ndisk_warn_clear = 85.0\n",
    )
    .unwrap();
    let out = Command::new(jabmon_tests::workspace_bin("jabmon-collector"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "unknown_key",
        "plaintext is only allowed to a loopback",
        "sample_interval",
        "disk_warn_clear",
    ] {
        assert!(err.contains(want), "`{want}` missing from:\n{err}");
    }
    assert_eq!(err.lines().count(), 4, "one line per problem:\n{err}");
    assert!(!err.contains("pw\""), "password in error output");
}
