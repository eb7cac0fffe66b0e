//! The servers as Debian ships them (see `tests/src/stock.rs`): the whole flow over STARTTLS
//! with the test CA — collectors subscribe, the hub sees them alive, users query and get
//! events — first with the stock rate limits, which throttle the hub (and the hub says so),
//! then with the repository's snippets from `configs/`, which exempt the bots, so that events
//! reach users at the hub's own per-user limit.
// Test code: an unwrap that fails is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use jabmon_shared::adhoc::Command;
use jabmon_tests::bots::{collector_toml, hub_toml, Process};
use jabmon_tests::chat::{
    body_of, collector_status, hub_online, is_event, query, user, user_of_hub, HUB,
};
use jabmon_tests::stock::Snippet;
use jabmon_tests::{server_matrix, Kind, Server, TestClient};
use minidom::Element;
use xmpp_parsers::jid::Jid;

const COLLECTORS: [&str; 2] = ["c1", "c2"];
const USERS: [&str; 3] = ["u1", "u2", "u3"];
/// The hub's `max_events_per_second_per_user` here: far below what the collectors offer
/// (each publishes every stat once a second), so that only the server can hold events back.
const PER_USER_LIMIT: u32 = 20;
/// How long event messages are counted.
const WINDOW: Duration = Duration::from_secs(10);

/// What one run saw.
struct Seen {
    /// Event messages per second each user got during [`WINDOW`].
    per_user: Vec<f64>,
    hub_log: String,
    /// The note of the hub's `collectors` command at the end.
    collectors_note: String,
}

/// How users come into the hub's roster.
#[derive(Clone, Copy, PartialEq)]
enum Enrol {
    /// Each user subscribes to the hub, which approves and subscribes back.
    Handshake,
    /// Users and collectors written into the hub's roster beforehand, as an operator's
    /// provisioning would: ejabberd's stock `mod_pres_counter` ignores subscription stanzas
    /// past 5 a minute (counted per session, not per contact: two collectors' handshakes
    /// tripped it in about one run in three), and with a mutual roster no bot sends any.
    Provisioned,
}

/// The whole flow on a stock server with `snippet`; events counted per user.
async fn run(kind: Kind, snippet: Snippet, enrol: Enrol) -> Seen {
    let server = Server::start_stock(kind, &snippet);
    assert!(server.tls_required());
    server.register("hub", "pw-hub");
    for name in COLLECTORS.iter().chain(&USERS) {
        server.register(name, &format!("pw-{name}"));
    }
    if enrol == Enrol::Provisioned {
        let contacts: Vec<String> = USERS
            .iter()
            .chain(&COLLECTORS)
            .map(|u| u.to_string())
            .collect();
        server.subscribe_both("hub", &contacts);
    }
    let list = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("\"{n}@localhost\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let hub_cfg = hub_toml(
        &server,
        &format!(
            "[access]\ncollectors = [{}]\nusers = [{}]\n[hub]\nmax_events_per_second_per_user = {PER_USER_LIMIT}\nmax_queued_events_per_user = 100\n",
            list(&COLLECTORS),
            list(&USERS)
        ),
    );
    let hub = Process::start("jabmon-hub", &hub_cfg);
    let _collectors: Vec<Process> = COLLECTORS
        .iter()
        .map(|name| {
            let cfg = collector_toml(
                &server,
                name,
                &format!("pw-{name}"),
                &format!(
                    "[access]\nsubscribers = [\"{HUB}\"]\n[collector]\nhost = \"{name}\"\nhub = \"{HUB}\"\nsample_interval = \"1s\"\npublish_interval = \"1s\"\n"
                ),
            );
            Process::start("jabmon-collector", &cfg)
        })
        .collect();
    let mut users = Vec::new();
    for name in USERS {
        users.push(match enrol {
            Enrol::Handshake => user_of_hub(&server, name).await,
            Enrol::Provisioned => {
                let mut u = user(&server, name).await;
                hub_online(&mut u).await;
                u
            }
        });
    }
    for name in COLLECTORS {
        until_alive(&mut users[0], &format!("{name}@localhost")).await;
    }

    let mut keys = Vec::new();
    for u in &mut users {
        let reply = query(u, r"SELECT id FROM ^c[12]\.;").await;
        keys.push(reply["results"]["key"].as_str().unwrap().to_string());
    }
    let [a, b, c] = &mut users[..] else {
        unreachable!("three users")
    };
    let counted = tokio::join!(
        count_events(a, &keys[0]),
        count_events(b, &keys[1]),
        count_events(c, &keys[2])
    );
    let per_user = [counted.0, counted.1, counted.2]
        .iter()
        .map(|n| *n as f64 / WINDOW.as_secs_f64())
        .collect();
    let collectors_note = collectors_note(&mut users[0]).await;
    Seen {
        per_user,
        hub_log: hub.log(),
        collectors_note,
    }
}

/// Waits (up to a minute) until the hub calls `collector` alive.
async fn until_alive(u: &mut TestClient, collector: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = collector_status(u, collector).await;
        if matches!(status.as_deref(), Some("alive" | "busy" | "critical")) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{collector} not alive at the hub: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await; // polling interval
    }
}

/// Event messages of registration `key` that reach `u` during [`WINDOW`].
async fn count_events(u: &mut TestClient, key: &str) -> u64 {
    let until = Instant::now() + WINDOW;
    let mut n = 0;
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        let got = u
            .try_next_matching(left, |e| body_of(e, true).filter(|v| is_event(v, key)))
            .await;
        if got.is_some() {
            n += 1;
        }
    }
    n
}

/// The note of the hub's `collectors` command, answered within a minute even while the server
/// throttles the hub. The hub then holds event messages back at a shallow backlog of its own,
/// but what the kernel's socket buffer already holds drains at the shaper's rate first (on
/// stock ejabberd 3,000 B/s: tens of kilobytes take tens of seconds; 20 s failed in CI).
async fn collectors_note(u: &mut TestClient) -> String {
    let request: Element = Command {
        node: "collectors".into(),
        sessionid: None,
        action: Some("execute".into()),
        status: None,
        actions: None,
        notes: vec![],
        form: None,
    }
    .into();
    let asked = u
        .session
        .request(Some(Jid::new("hub@localhost/hub").unwrap()), true, request)
        .await;
    let el = u
        .wait_within(asked, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let cmd = Command::try_from(el).unwrap();
    cmd.notes.iter().map(|n| n.text.clone()).collect()
}

server_matrix!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    on_a_stock_server_the_hub_says_it_is_throttled
);
async fn on_a_stock_server_the_hub_says_it_is_throttled(kind: Kind) {
    let seen = run(kind, Snippet::None, Enrol::Provisioned).await;
    eprintln!("{kind:?} stock: events/s per user {:?}", seen.per_user);
    let warned = seen.hub_log.matches("throttles the hub").count();
    assert_eq!(warned, 1, "one warning per episode:\n{}", seen.hub_log);
    let setting = match kind {
        Kind::Prosody => "unlimited_jids",
        Kind::Ejabberd => "c2s_shaper",
    };
    assert!(seen.hub_log.contains(setting), "{}", seen.hub_log);
    assert!(
        seen.collectors_note.contains("throttling the hub")
            && seen.collectors_note.contains(setting),
        "{}",
        seen.collectors_note
    );
}

server_matrix!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    with_the_configs_snippet_events_reach_users_at_the_hubs_limit
);
async fn with_the_configs_snippet_events_reach_users_at_the_hubs_limit(kind: Kind) {
    let bots = std::iter::once("hub")
        .chain(COLLECTORS)
        .map(|n| format!("{n}@localhost"))
        .collect();
    let seen = run(kind, Snippet::Jabmon(bots), Enrol::Handshake).await;
    eprintln!(
        "{kind:?} with snippet: events/s per user {:?}",
        seen.per_user
    );
    assert!(
        !seen.hub_log.contains("throttles the hub"),
        "{}",
        seen.hub_log
    );
    assert!(!seen.collectors_note.contains("throttling"));
    for rate in &seen.per_user {
        assert!(
            *rate >= 0.8 * f64::from(PER_USER_LIMIT) && *rate <= 1.1 * f64::from(PER_USER_LIMIT),
            "each user gets the hub's limit of {PER_USER_LIMIT}/s: {:?}",
            seen.per_user
        );
    }
}
