//! Alerts without floods, against a real server and synthetic collectors (tests/src/loadgen):
//! fifty collectors crossing one rule at once give one grouped message, and a flapping series
//! gives its changes, then one flapping message, then nothing — in a room and to a user, with
//! the readable firing and recovery lines.
// Test code: an unwrap that fails is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use jabmon_shared::session::Incoming;
use jabmon_tests::bots::{hub_toml, InProcess};
use jabmon_tests::chat::{body_of, hub_says, is_event, query, tell_hub, user, user_of_hub, HUB};
use jabmon_tests::client::WAIT;
use jabmon_tests::loadgen::figures::{host, metric_names};
use jabmon_tests::loadgen::fleet::{self, Fleet};
use jabmon_tests::loadgen::publish_options;
use jabmon_tests::{muc, server_matrix, Kind, Server};
use xmpp_parsers::jid::BareJid;

/// A server with accounts for `n` synthetic collectors (password `pw`), the hub and `u1`,
/// every collector and `u1` already in the hub's roster both ways.
fn fleet_server(kind: Kind, n: usize) -> (Server, Vec<String>) {
    let server = Server::start(kind);
    let names: Vec<String> = (0..n).map(host).collect();
    let mut accounts: Vec<(String, String)> =
        names.iter().map(|h| (h.clone(), "pw".into())).collect();
    accounts.push(("hub".into(), "pw-hub".into()));
    accounts.push(("u1".into(), "pw-u1".into()));
    server.register_many(&accounts);
    let mut contacts = names.clone();
    contacts.push("u1".into());
    server.subscribe_both("hub", &contacts);
    (server, names)
}

/// The hub's config: `names` as collectors, `u1` as user, `alerting` appended.
fn fleet_hub(server: &Server, names: &[String], alerting: &str) -> std::path::PathBuf {
    let collectors: Vec<String> = names.iter().map(|n| format!("\"{n}@localhost\"")).collect();
    let state = server.scratch().join("hub-state.json");
    hub_toml(
        server,
        &format!(
            "[access]\ncollectors = [{}]\nusers = [\"u1@localhost\"]\n[hub]\nstorage = \"file\"\nstate_path = \"{}\"\nmax_events_per_second_per_user = 1000\n{alerting}",
            collectors.join(", "),
            state.display()
        ),
    )
}

/// A fleet plan of `metrics` stats per item, one item a second.
fn plan(kind: Kind, metrics: usize) -> Fleet {
    Fleet::new(
        metric_names(metrics),
        Duration::from_secs(1),
        BareJid::new(HUB).unwrap(),
        publish_options(kind, Some(false)),
        0.0,
    )
}

/// The body of a message from the hub containing `want`: in `room` (the hub's line there) or,
/// without a room, 1:1.
fn alert_line(e: &Incoming, room: Option<&BareJid>, want: &str) -> Option<String> {
    match room {
        Some(room) => muc::hub_said(e, room, want).map(|s| s.body),
        None => hub_says(e, want).map(|(body, _)| body),
    }
}

server_matrix!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    fifty_collectors_firing_one_rule_at_once_give_one_grouped_message
);
/// Fifty collectors publish; once the hub passes events from every one of them, a chat rule
/// that all fifty pass fires within one publish interval, and the user gets one message
/// counting fifty, not fifty messages.
async fn fifty_collectors_firing_one_rule_at_once_give_one_grouped_message(kind: Kind) {
    const N: usize = 50;
    let (server, names) = fleet_server(kind, N);
    let cfg = fleet_hub(&server, &names, "[alerting]\ngroup_wait = \"10s\"\n");
    let hub = InProcess::hub(&cfg);
    let mut u1 = user_of_hub(&server, "u1").await;
    let fleet = Arc::new(plan(kind, 3));
    let stop = fleet::spawn(&server, &fleet, N);

    // Every collector's events pass through the hub before the rule is defined.
    let watch = r"SELECT id FROM ^lg\d+\.cpu\.cpu\.idle$;";
    let reply = query(&mut u1, watch).await;
    let key = reply["results"]["key"]
        .as_str()
        .unwrap_or_else(|| panic!("{reply}"))
        .to_string();
    let mut seen = HashSet::new();
    u1.next_matching(Duration::from_secs(90), "events from all fifty", |e| {
        let v = body_of(e, true).filter(|v| is_event(v, &key))?;
        let name = v["results"]["event"]["name"].as_str()?;
        seen.insert(name.split('.').next()?.to_string());
        (seen.len() == N).then_some(())
    })
    .await;
    query(&mut u1, "DELETE FROM leela.xmpp;").await;

    tell_hub(
        &mut u1,
        r"ALERT fleet-idle SELECT [>= 0] FROM ^lg\d+\.cpu\.cpu\.idle$;",
    )
    .await;
    let first = u1
        .next_matching(
            Duration::from_secs(30),
            "the rule's first alert message",
            |e| alert_line(e, None, "(fleet-idle)").filter(|b| b.starts_with("⚠️")),
        )
        .await;
    assert!(
        first.starts_with("⚠️ 50 firing (fleet-idle): lg"),
        "one message for all fifty: {first}"
    );
    assert!(first.contains("and 47 more #"), "{first}");
    eprintln!("grouped: {first}");
    drop(stop);
    hub.stop().await;
}

/// The hub's alert lines about rule `flip` (firing, recovery, flapping), in a room and 1:1.
#[derive(Default)]
struct Said {
    room: Vec<String>,
    chat: Vec<String>,
}

impl Said {
    fn take(&mut self, e: &Incoming, room: &BareJid) {
        let alert = |b: &String| ["⚠️", "✅", "🔁"].iter().any(|i| b.starts_with(i));
        if let Some(b) = alert_line(e, Some(room), "(flip)").filter(alert) {
            self.room.push(b);
        } else if let Some(b) = alert_line(e, None, "(flip)").filter(alert) {
            self.chat.push(b);
        }
    }

    fn both(&self, f: impl Fn(&String) -> bool) -> bool {
        self.room.iter().any(&f) && self.chat.iter().any(&f)
    }
}

server_matrix!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_flapping_series_gives_one_flapping_message_in_a_room_and_to_a_user
);
/// One collector's CPU idle alternates between 5 and 50 every second under a `[< 10]` rule
/// routed to a room and to a user: both see the readable firing line and its recovery line,
/// six changes in all, then one flapping message — and nothing more while the series keeps
/// flapping for twenty more publishes.
async fn a_flapping_series_gives_one_flapping_message_in_a_room_and_to_a_user(kind: Kind) {
    let (server, names) = fleet_server(kind, 1);
    let room = muc::room_jid("ops");
    let mut u1 = user(&server, "u1").await;
    u1.join_room(&room, "alice").await;
    let cfg = fleet_hub(
        &server,
        &names,
        &format!(
            "[alerting]\ngroup_wait = \"0s\"\nroute_per_minute = 120\nroute_burst = 20\n[[rooms]]\njid = \"{room}\"\n[[alerts]]\nname = \"flip\"\nquery = 'SELECT [< 10] FROM ^lg00000\\.cpu\\.cpu\\.idle$'\nunit = \"%\"\nusers = [\"u1@localhost\"]\nrooms = [\"{room}\"]\n"
        ),
    );
    let hub = InProcess::hub(&cfg);
    u1.next_matching(WAIT, "the hub in the room", |e| {
        muc::joined(e, &room, muc::HUB_NICK).then_some(())
    })
    .await;
    let mut plan = plan(kind, 1);
    plan.alternate = Some((5.0, 50.0));
    let fleet = Arc::new(plan);
    let stop = fleet::spawn(&server, &fleet, 1);

    // Everything the hub says about the rule, in the room and 1:1, in order.
    let mut said = Said::default();
    u1.next_matching(Duration::from_secs(60), "the flapping message", |e| {
        said.take(e, &room);
        said.both(|b| b.starts_with("🔁")).then_some(())
    })
    .await;
    // `take` has seen every event kept in the inbox: drop them, or it would see them again.
    u1.clear();
    // Twenty more changes, seen by u1 through a query on the same series (its events pass
    // the hub after the rule has judged them), then the hub's answer to a command: what it
    // said about the rule by then is all it will say while the series flaps.
    let reply = query(&mut u1, r"SELECT id FROM ^lg00000\.cpu\.cpu\.idle$;").await;
    let key = reply["results"]["key"]
        .as_str()
        .unwrap_or_else(|| panic!("{reply}"))
        .to_string();
    let mut changes = 0;
    u1.next_matching(Duration::from_secs(60), "twenty more changes", |e| {
        said.take(e, &room);
        changes += usize::from(body_of(e, true).is_some_and(|v| is_event(&v, &key)));
        (changes >= 20).then_some(())
    })
    .await;
    u1.clear();
    tell_hub(&mut u1, "alerts").await;
    let open = u1
        .next_matching(WAIT, "the open alerts", |e| {
            said.take(e, &room);
            alert_line(e, None, "· flapping")
        })
        .await;
    eprintln!("room:\n{}\nopen: {open}", said.room.join("\n"));
    for lines in [&said.room, &said.chat] {
        assert!(
            lines[0].starts_with("⚠️ lg00000 cpu idle 5 % < 10 %") && lines[0].contains("#1"),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("✅ lg00000 cpu idle back to 50 % after"),
            "{lines:?}"
        );
        let flapping = lines.iter().filter(|b| b.starts_with("🔁")).count();
        assert_eq!(flapping, 1, "{lines:?}");
        assert_eq!(
            lines.len(),
            7,
            "six changes and one flapping message: {lines:?}"
        );
    }
    drop(stop);
    hub.stop().await;
}
