//! Ad-hoc commands and PEP publishing, from an admin's and a plain subscriber's client, against
//! a real Prosody.
// Test code: an unwrap that fails is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use jabmon_shared::adhoc::Command;
use jabmon_shared::payload::{EventKind, Severity};
use jabmon_shared::session::{Incoming, IqFailure, IqOutcome};
use jabmon_tests::bots::{collector_toml, InProcess};
use jabmon_tests::client::WAIT;
use jabmon_tests::{pep, server_matrix, Kind, Server, TestClient};
use minidom::Element;
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field};
use xmpp_parsers::disco::{DiscoItemsQuery, DiscoItemsResult};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::presence::{Presence, Show, Type as PresenceType};
use xmpp_parsers::stanza_error::DefinedCondition;

const NS: &str = "http://jabber.org/protocol/commands";

struct Setup {
    server: Server,
    bot: InProcess,
    marker: std::path::PathBuf,
}

fn full() -> Jid {
    Jid::new("web1@localhost/jabmon").unwrap()
}

async fn setup(kind: Kind, publish_interval: &str) -> Setup {
    start_collector(accounts(kind), publish_interval)
}

/// A server with the collector's (`web1`) and two users' (`ops`, `alice`) accounts.
fn accounts(kind: Kind) -> Server {
    let server = Server::start(kind);
    server.register("web1", "pw-web1");
    server.register("ops", "pw-ops");
    server.register("alice", "pw-alice");
    server
}

fn start_collector(server: Server, publish_interval: &str) -> Setup {
    let marker = server.scratch().join("rebooted");
    let cfg = collector_toml(
        &server,
        "web1",
        "pw-web1",
        &format!(
            "[access]\nsubscribers = [\"@localhost\"]\nadmins = [\"ops@localhost\"]\n\
             [collector]\nhost = \"web1\"\nsample_interval = \"250ms\"\npublish_interval = \"{publish_interval}\"\n\
             reboot_command = [\"touch\", \"{}\"]\n\
             [[commands.shell]]\nname = \"hello\"\nargv = [\"echo\", \"hello\"]\n\
             [[commands.shell]]\nname = \"slow\"\nargv = [\"sleep\", \"30\"]\ntimeout = \"1s\"\n",
            marker.display()
        ),
    );
    let bot = InProcess::collector(&cfg);
    Setup {
        server,
        bot,
        marker,
    }
}

/// Connects a registered user (password `pw-USER`) once the collector answers at [`full`].
async fn connect(s: &Setup, user: &str) -> TestClient {
    let mut c = TestClient::connect(
        &s.server,
        &format!("{user}@localhost"),
        &format!("pw-{user}"),
    )
    .await;
    c.wait_reachable(full()).await;
    c
}

fn command(
    node: &str,
    sessionid: Option<&str>,
    action: Option<&str>,
    form: Option<DataForm>,
) -> Element {
    Command {
        node: node.into(),
        sessionid: sessionid.map(str::to_string),
        action: action.map(str::to_string),
        status: None,
        actions: None,
        notes: vec![],
        form,
    }
    .into()
}

fn submit(fields: &[(&str, &str)]) -> DataForm {
    DataForm {
        type_: DataFormType::Submit,
        title: None,
        instructions: None,
        fields: fields
            .iter()
            .map(|(k, v)| Field::text_single(k, v))
            .collect(),
    }
}

fn parsed(outcome: IqOutcome) -> Command {
    Command::try_from(outcome.expect("command succeeded").expect("a payload")).expect("a command")
}

fn failure(outcome: IqOutcome) -> (DefinedCondition, Option<String>, String) {
    match outcome {
        Err(IqFailure::Error(e)) => (
            e.defined_condition,
            e.other.as_ref().map(|o| o.name().to_string()),
            e.texts.values().next().cloned().unwrap_or_default(),
        ),
        other => panic!("expected an error, got {other:?}"),
    }
}

async fn exec(c: &mut TestClient, node: &str) -> Command {
    parsed(c.iq(full(), true, command(node, None, None, None)).await)
}

fn value<'a>(cmd: &'a Command, var: &str) -> Option<&'a str> {
    cmd.form
        .as_ref()?
        .fields
        .iter()
        .find(|f| f.var.as_deref() == Some(var))?
        .values
        .first()
        .map(String::as_str)
}

/// Subscribes `c` to the collector (both ways), advertising `features` in caps.
async fn subscribe(c: &mut TestClient, features: &[&str]) {
    c.advertise(features).await;
    let bare = Jid::new("web1@localhost").unwrap();
    c.session
        .send(Presence::subscribe().with_to(bare.clone()))
        .await;
    c.next_matching(WAIT, "the collector's approval", |e| match e {
        Incoming::Presence(p) if p.type_ == PresenceType::Subscribed => Some(()),
        _ => None,
    })
    .await;
    c.next_matching(WAIT, "subscribe back", |e| match e {
        Incoming::Presence(p) if p.type_ == PresenceType::Subscribe => Some(()),
        _ => None,
    })
    .await;
    c.session.send(Presence::subscribed().with_to(bare)).await;
    // ejabberd takes `+notify` interest only from presence sent after the publisher approved
    // the subscription: send it again, as the bots do on `subscribed`.
    c.advertise(features).await;
}

async fn command_nodes(c: &mut TestClient) -> Vec<String> {
    let q = DiscoItemsQuery {
        node: Some(NS.into()),
        rsm: None,
    };
    let items =
        DiscoItemsResult::try_from(c.iq(full(), false, q.into()).await.unwrap().unwrap()).unwrap();
    items.items.into_iter().filter_map(|i| i.node).collect()
}

server_matrix!(
    #[tokio::test]
    admins_see_everything_subscribers_only_status
);
async fn admins_see_everything_subscribers_only_status(kind: Kind) {
    let s = setup(kind, "10s").await;
    let mut ops = connect(&s, "ops").await;
    let mut alice = connect(&s, "alice").await;
    assert_eq!(
        command_nodes(&mut ops).await,
        ["status", "stats-reset", "reboot", "shell", "thresholds"]
    );
    assert_eq!(command_nodes(&mut alice).await, ["status"]);

    let (cond, _, _) = failure(
        alice
            .iq(full(), true, command("reboot", None, None, None))
            .await,
    );
    assert_eq!(cond, DefinedCondition::Forbidden);
    let (cond, _, _) = failure(
        alice
            .iq(full(), true, command("shell", None, None, None))
            .await,
    );
    assert_eq!(cond, DefinedCondition::Forbidden);
    let (cond, _, _) = failure(
        ops.iq(full(), true, command("no-such", None, None, None))
            .await,
    );
    assert_eq!(cond, DefinedCondition::ItemNotFound);

    // status: one stage, completed, every metric, the summary as a note.
    let status = exec(&mut alice, "status").await;
    assert_eq!(status.status.as_deref(), Some("completed"));
    // The note is the presence summary, `load 0.52 · cpu 3% · mem 41%`, made from the same
    // table as the form.
    let note = &status.notes[0].text;
    let parts: Vec<&str> = note.split(" · ").collect();
    assert_eq!(parts.len(), 3, "{note}");
    let loads: Vec<f64> = parts[0]
        .strip_prefix("load ")
        .unwrap_or_else(|| panic!("{note}"))
        .split(' ')
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{note}")))
        .collect();
    assert_eq!(loads.len(), 1, "{note}");
    for (part, name) in [(parts[1], "cpu "), (parts[2], "mem ")] {
        let pct = part
            .strip_prefix(name)
            .and_then(|p| p.strip_suffix('%'))
            .and_then(|p| p.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{note}"));
        assert!((0.0..=100.0).contains(&pct), "{note}");
    }
    let shortterm: f64 = value(&status, "load.load.shortterm")
        .expect("load.load.shortterm")
        .parse()
        .unwrap();
    assert!(
        (loads[0] - shortterm).abs() <= 0.006,
        "{note} vs {shortterm}"
    );
    assert!(value(&status, "threshold.load_busy").is_some());
    // Values for people: bytes in binary units, loads in 1/5/15-min order, df's percentage.
    let available = value(&status, "memory.memory.available").unwrap();
    assert!(available.ends_with("iB"), "{available}");
    let vars: Vec<&str> = status
        .form
        .as_ref()
        .unwrap()
        .fields
        .iter()
        .filter_map(|f| f.var.as_deref())
        .filter(|v| v.starts_with("load."))
        .collect();
    assert_eq!(
        vars,
        [
            "load.load.shortterm",
            "load.load.midterm",
            "load.load.longterm"
        ]
    );
    let root = value(&status, "df-root.percent.used").unwrap();
    assert!(root.ends_with(" %"), "{root}");
    assert!(value(&status, "df-root.df.reserved").is_some());
    assert!(!s.marker.exists(), "a refused reboot ran nothing");
    s.bot.stop().await;
}

server_matrix!(
    #[tokio::test]
    reboot_confirm_sessions_cancel_and_events
);
async fn reboot_confirm_sessions_cancel_and_events(kind: Kind) {
    let s = setup(kind, "10s").await;
    let mut ops = connect(&s, "ops").await;
    subscribe(&mut ops, &["urn:jabmon:events:0+notify"]).await;

    // Not confirmed: nothing runs; the session id is kept across the two stages.
    let first = exec(&mut ops, "reboot").await;
    assert_eq!(first.status.as_deref(), Some("executing"));
    let sid = first.sessionid.clone().expect("a session id");
    let form = first.form.as_ref().expect("a form");
    for f in &form.fields {
        assert!(f.label.is_some(), "{f:?}");
    }
    let done = parsed(
        ops.iq(
            full(),
            true,
            command(
                "reboot",
                Some(&sid),
                Some("complete"),
                Some(submit(&[("confirm", "false")])),
            ),
        )
        .await,
    );
    assert_eq!(done.sessionid.as_deref(), Some(sid.as_str()));
    assert_eq!(done.status.as_deref(), Some("completed"));
    assert!(!done.notes.is_empty());

    // cancel, and a made-up session id.
    let first = exec(&mut ops, "reboot").await;
    let sid2 = first.sessionid.unwrap();
    let canceled = parsed(
        ops.iq(
            full(),
            true,
            command("reboot", Some(&sid2), Some("cancel"), None),
        )
        .await,
    );
    assert_eq!(canceled.status.as_deref(), Some("canceled"));
    let (cond, app, _) = failure(
        ops.iq(
            full(),
            true,
            command(
                "reboot",
                Some("made-up"),
                Some("complete"),
                Some(submit(&[("confirm", "true")])),
            ),
        )
        .await,
    );
    assert_eq!(
        (cond, app.as_deref()),
        (DefinedCondition::BadRequest, Some("bad-sessionid"))
    );
    assert!(!s.marker.exists(), "nothing ran so far");

    // Confirmed with a delay: the command runs after it; events pending → running → finished.
    let first = exec(&mut ops, "reboot").await;
    let sid3 = first.sessionid.unwrap();
    let done = parsed(
        ops.iq(
            full(),
            true,
            command(
                "reboot",
                Some(&sid3),
                Some("complete"),
                Some(submit(&[
                    ("confirm", "true"),
                    ("delay", "1"),
                    ("reason", "test"),
                ])),
            ),
        )
        .await,
    );
    assert_eq!(done.status.as_deref(), Some("completed"));
    let mut states = Vec::new();
    while states.len() < 3 {
        let evs = ops
            .next_matching(WAIT, "reboot command events", pep::events)
            .await;
        for e in evs {
            if let (EventKind::Command, Some(c)) = (e.kind, e.command) {
                if c.name == "reboot" {
                    assert_eq!(c.asker, "ops@localhost");
                    states.push((c.state.to_string(), c.exit_code));
                }
            }
        }
    }
    assert_eq!(
        states,
        vec![
            ("pending".into(), None),
            ("running".into(), None),
            ("finished".into(), Some(0))
        ]
    );
    assert!(s.marker.exists(), "reboot_command ran");
    s.bot.stop().await;
}

server_matrix!(
    #[tokio::test]
    shell_runs_times_out_and_never_blocks_the_bot
);
async fn shell_runs_times_out_and_never_blocks_the_bot(kind: Kind) {
    let s = setup(kind, "10s").await;
    let mut ops = connect(&s, "ops").await;
    let first = exec(&mut ops, "shell").await;
    let options: Vec<_> = first.form.as_ref().unwrap().fields[0]
        .options
        .iter()
        .map(|o| o.value.clone())
        .collect();
    assert_eq!(options, ["hello", "slow"]);
    let done = parsed(
        ops.iq(
            full(),
            true,
            command(
                "shell",
                first.sessionid.as_deref(),
                None,
                Some(submit(&[("command", "hello")])),
            ),
        )
        .await,
    );
    assert_eq!(value(&done, "exit_code"), Some("0"));
    assert!(value(&done, "stdout").unwrap().contains("hello"));

    // A slow one: the bot answers a ping while it runs; then it is killed and reported.
    let first = exec(&mut ops, "shell").await;
    let pending = ops
        .session
        .request(
            Some(full()),
            true,
            command(
                "shell",
                first.sessionid.as_deref(),
                None,
                Some(submit(&[("command", "slow")])),
            ),
        )
        .await;
    let ping = Element::builder("ping", "urn:xmpp:ping").build();
    assert!(
        ops.iq(full(), false, ping).await.is_ok(),
        "ping answered while the command runs"
    );
    let done = parsed(ops.wait(pending).await);
    assert_eq!(value(&done, "timed_out"), Some("1"));
    assert_eq!(value(&done, "exit_code"), Some("-1"));
    assert!(done.notes[0].text.contains("killed"), "{:?}", done.notes);
    s.bot.stop().await;
}

server_matrix!(
    #[tokio::test]
    thresholds_validate_apply_and_drive_presence
);
async fn thresholds_validate_apply_and_drive_presence(kind: Kind) {
    let s = setup(kind, "10s").await;
    let mut ops = connect(&s, "ops").await;
    subscribe(&mut ops, &[]).await;
    let first = exec(&mut ops, "thresholds").await;
    assert_eq!(value(&first, "load_busy"), Some("1"));
    let sid = first.sessionid.unwrap();
    let (cond, app, text) = failure(
        ops.iq(
            full(),
            true,
            command(
                "thresholds",
                Some(&sid),
                None,
                Some(submit(&[("cpu_warn", "50"), ("cpu_warn_clear", "50")])),
            ),
        )
        .await,
    );
    assert_eq!(
        (cond, app.as_deref()),
        (DefinedCondition::BadRequest, Some("bad-payload"))
    );
    assert!(
        text.contains("“CPU busy % warning clears below”"),
        "named by its label: {text}"
    );
    let (_, app, text) = failure(
        ops.iq(
            full(),
            true,
            command(
                "thresholds",
                Some(&sid),
                None,
                Some(submit(&[("disk_warn", "lots")])),
            ),
        )
        .await,
    );
    assert_eq!(app.as_deref(), Some("bad-payload"));
    assert_eq!(
        text,
        "“Disk used % warning at (per mount)” must be a number (got “lots”)."
    );

    let done = parsed(
        ops.iq(
            full(),
            true,
            command(
                "thresholds",
                Some(&sid),
                None,
                Some(submit(&[
                    ("load_busy", "0.0002"),
                    ("load_busy_clear", "0.0001"),
                    ("load_critical", "1000"),
                ])),
            ),
        )
        .await,
    );
    assert_eq!(done.status.as_deref(), Some("completed"));
    let status = exec(&mut ops, "status").await;
    assert_eq!(value(&status, "threshold.load_busy"), Some("0.0002"));
    let _burn = jabmon_tests::Burner::start();
    ops.next_matching(
        WAIT,
        "away presence under the new thresholds",
        |e| match e {
            Incoming::Presence(p) if p.show == Some(Show::Away) => Some(()),
            _ => None,
        },
    )
    .await;
    s.bot.stop().await;
}

server_matrix!(
    #[tokio::test]
    stats_reach_a_notify_subscriber_without_pubsub_subscription
);
async fn stats_reach_a_notify_subscriber_without_pubsub_subscription(kind: Kind) {
    let s = setup(kind, "1s").await;
    let mut alice = connect(&s, "alice").await;
    subscribe(&mut alice, &["urn:jabmon:stats:0+notify"]).await;
    let stats = alice
        .next_matching(
            Duration::from_secs(2) * 2 + Duration::from_millis(500),
            "a stats item with cpu.cpu.idle",
            |e| pep::stats(e).filter(|s| s.stats.iter().any(|st| st.name == "cpu.cpu.idle")),
        )
        .await;
    assert_eq!(stats.host, "web1");
    let idle = stats
        .stats
        .iter()
        .find(|s| s.name == "cpu.cpu.idle")
        .unwrap();
    assert!((0.0..=100.0).contains(&idle.value));
    assert_eq!(idle.unit.as_deref(), Some("percent"));
    s.bot.stop().await;
}

server_matrix!(
    #[tokio::test]
    a_stats_node_left_persistent_is_reconfigured_and_stats_flow
);
/// Stats are published with `pubsub#persist_items=false` (collector/src/pep.rs). A stats node
/// an earlier version created persistent makes the server refuse that: the collector
/// reconfigures the node and its stats reach subscribers within the first publish interval.
async fn a_stats_node_left_persistent_is_reconfigured_and_stats_flow(kind: Kind) {
    let server = accounts(kind);
    let mut old = TestClient::connect(&server, "web1@localhost", "pw-web1").await;
    let stats: Element = "<stats xmlns='urn:jabmon:stats:0' host='web1' timestamp='1'/>"
        .parse()
        .unwrap();
    let options = [
        ("pubsub#access_model", "presence"),
        ("pubsub#persist_items", "true"),
    ];
    let created = old
        .iq(
            Jid::new("web1@localhost").unwrap(),
            true,
            jabmon_shared::pep::publish("urn:jabmon:stats:0", "current", stats, &options),
        )
        .await;
    assert!(created.is_ok(), "{created:?}");
    assert_eq!(persist_items(&mut old).await.as_deref(), Some("1"));

    // Gone before the collector starts: ejabberd hands a PEP notification to one session of
    // the owner's account to fan out, and this one, never available, knows no contacts' caps.
    old.session.close(None, Duration::from_secs(2)).await;

    let s = start_collector(server, "10s");
    let mut alice = connect(&s, "alice").await;
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    subscribe(&mut alice, &["urn:jabmon:stats:0+notify"]).await;
    // Within one publish interval of subscribing (ejabberd may hold the first item for a new
    // subscriber until the next publish), and a fresh one, not the item stored above.
    let fresh = alice
        .next_matching(Duration::from_secs(15), "a fresh stats item", |e| {
            pep::stats(e).filter(|st| st.timestamp > started - 5.0)
        })
        .await;
    assert!(!fresh.stats.is_empty());
    let mut owner = TestClient::connect(&s.server, "web1@localhost", "pw-web1").await;
    assert_eq!(persist_items(&mut owner).await.as_deref(), Some("0"));
    s.bot.stop().await;
}

/// `pubsub#persist_items` of web1's stats node as its owner reads it (`1` or `0`; both
/// servers also accept and may answer `true`/`false`, normalised here).
async fn persist_items(owner: &mut TestClient) -> Option<String> {
    let get = xmpp_parsers::pubsub::Owner {
        payload: xmpp_parsers::pubsub::owner::Payload::Configure {
            node: Some(xmpp_parsers::pubsub::NodeName("urn:jabmon:stats:0".into())),
            form: None,
        },
    };
    let answer = owner
        .iq(Jid::new("web1@localhost").unwrap(), false, get.into())
        .await
        .expect("the owner reads the node configuration")
        .expect("a configuration");
    let configure = answer.children().next()?;
    let form = DataForm::try_from(configure.children().next()?.clone()).ok()?;
    let field = form
        .fields
        .iter()
        .find(|f| f.var.as_deref() == Some("pubsub#persist_items"))?;
    field.values.first().map(|v| match v.as_str() {
        "true" => "1".to_string(),
        "false" => "0".to_string(),
        other => other.to_string(),
    })
}

server_matrix!(
    #[tokio::test]
    disk_threshold_warns_once_and_clears_once
);
async fn disk_threshold_warns_once_and_clears_once(kind: Kind) {
    let s = setup(kind, "1s").await;
    let mut ops = connect(&s, "ops").await;
    subscribe(
        &mut ops,
        &["urn:jabmon:events:0+notify", "urn:jabmon:stats:0+notify"],
    )
    .await;
    // Lower disk_warn below the root filesystem's usage.
    let first = exec(&mut ops, "thresholds").await;
    parsed(
        ops.iq(
            full(),
            true,
            command(
                "thresholds",
                first.sessionid.as_deref(),
                None,
                Some(submit(&[
                    ("disk_warn", "0.02"),
                    ("disk_warn_clear", "0.01"),
                ])),
            ),
        )
        .await,
    );
    // Whatever filesystem this machine has (containers may lack a plain `/`).
    let alert = |e: &Incoming, sev: Severity, metric: Option<&str>| {
        pep::events(e).and_then(|evs| {
            evs.into_iter().find(|ev| {
                ev.kind == EventKind::Threshold
                    && ev.severity == Some(sev)
                    && ev.metric.as_ref().is_some_and(|m| match metric {
                        Some(want) => m.name == want,
                        None => m.name.starts_with("df-") && m.name.ends_with(".percent.used"),
                    })
            })
        })
    };
    let warning = ops
        .next_matching(WAIT, "a disk warning", |e| {
            alert(e, Severity::Warning, None)
        })
        .await;
    assert!(warning.text.as_deref().unwrap().starts_with("disk /"));
    let metric = warning.metric.unwrap().name;
    let is_root_alert = |e: &Incoming, sev: Severity| alert(e, sev, Some(&metric));
    // Three more stats publishes (≥ 12 samples) bring no second warning.
    let mut seen_warnings = 0;
    let mut publishes = 0;
    while publishes < 3 {
        let e = ops
            .next_matching(WAIT, "stats or events", |e| {
                if pep::stats(e).is_some() {
                    Some(true)
                } else {
                    is_root_alert(e, Severity::Warning).map(|_| false)
                }
            })
            .await;
        if e {
            publishes += 1
        } else {
            seen_warnings += 1
        }
    }
    assert_eq!(seen_warnings, 0, "one warning, not one per sample");
    // Raise it back above the usage: one info event.
    let first = exec(&mut ops, "thresholds").await;
    parsed(
        ops.iq(
            full(),
            true,
            command(
                "thresholds",
                first.sessionid.as_deref(),
                None,
                Some(submit(&[
                    ("disk_warn", "100"),
                    ("disk_warn_clear", "99.99"),
                ])),
            ),
        )
        .await,
    );
    let info = ops
        .next_matching(WAIT, "the disk warning cleared", |e| {
            is_root_alert(e, Severity::Info)
        })
        .await;
    assert!(info.text.unwrap().contains("back below"));
    s.bot.stop().await;
}
