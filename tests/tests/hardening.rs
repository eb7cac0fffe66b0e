//! What a stranger can and cannot do to the bots, against each server: answer their IQs
//! (only the asked entity can), flood them with invalid stanzas (counted, not logged one line
//! each); plus ping round trips through the server (printed) and the shell command's timeout
//! killing everything the command started.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use jabmon_shared::payload::{Event, EventKind};
use jabmon_shared::session::Incoming;
use jabmon_tests::bots::{collector_toml, hub_toml, InProcess, Process};
use jabmon_tests::client::WAIT;
use jabmon_tests::{server_matrix, Kind, Server, TestClient};
use minidom::Element;
use xmpp_parsers::data_forms::{DataFormType, FieldType};
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult, Identity};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::pubsub::pubsub::{Item, Items, PubSub};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

const HUB: &str = "hub@localhost/hub";

/// Asks `ask` with `client` every 100 ms until it gives `Some`, for at most `limit`.
async fn poll<T>(
    client: &mut TestClient,
    limit: Duration,
    what: &str,
    mut ask: impl AsyncFnMut(&mut TestClient) -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = ask(client).await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await; // polling interval
    }
}

fn jid(s: &str) -> Jid {
    Jid::new(s).expect("test JID")
}

/// The value of form field `var` in a disco#info result.
fn field(info: &DiscoInfoResult, var: &str) -> Option<String> {
    info.extensions
        .iter()
        .flat_map(|f| &f.fields)
        .find(|f| f.var.as_deref() == Some(var))?
        .values
        .first()
        .cloned()
}

/// What a collector answers to disco#info: the stats feature and a host form with `os`.
fn collector_info(os: &str) -> DiscoInfoResult {
    let form = jabmon_shared::forms::form(
        DataFormType::Result_,
        jabmon_shared::ns::HOST,
        vec![
            jabmon_shared::forms::field("host", FieldType::TextSingle, "Host", vec!["web1".into()]),
            jabmon_shared::forms::field("os", FieldType::TextSingle, "OS", vec![os.into()]),
        ],
    );
    DiscoInfoResult {
        node: None,
        identities: vec![Identity::new("client", "bot", "en", "collector")],
        features: [
            "http://jabber.org/protocol/disco#info",
            "http://jabber.org/protocol/caps",
            jabmon_shared::ns::STATS,
        ]
        .into_iter()
        .map(str::to_string)
        .collect(),
        extensions: vec![form],
    }
}

server_matrix!(
    #[tokio::test]
    only_the_asked_collector_answers_the_hubs_caps_query
);
/// A stranger who learnt the id of the hub's disco#info query to a collector (here from the
/// collector itself, standing in for any leak) answers it first with forged host facts: the
/// hub ignores him and keeps the facts the asked collector gives.
async fn only_the_asked_collector_answers_the_hubs_caps_query(kind: Kind) {
    let server = Server::start(kind);
    for (u, p) in [
        ("hub", "pw-hub"),
        ("web1", "pw-web1"),
        ("u1", "pw-u1"),
        ("eve", "pw-eve"),
    ] {
        server.register(u, p);
    }
    let state = server.scratch().join("hub-state.json");
    let cfg = hub_toml(
        &server,
        &format!(
            "[access]\ncollectors = [\"web1@localhost\"]\nusers = [\"u1@localhost\"]\n[hub]\nstorage = \"file\"\nstate_path = \"{}\"\n",
            state.display()
        ),
    );
    let hub = InProcess::hub(&cfg);
    let mut u1 = TestClient::connect(&server, "u1@localhost", "pw-u1").await;
    let mut web1 = TestClient::connect(&server, "web1@localhost", "pw-web1").await;
    let mut eve = TestClient::connect(&server, "eve@localhost", "pw-eve").await;
    // The hub is online once it answers a ping.
    poll(&mut u1, WAIT, "the hub online", async |u1| {
        u1.iq(jid(HUB), false, ping()).await.ok().map(|_| ())
    })
    .await;

    let genuine = collector_info("genuine-os");
    let caps = jabmon_shared::caps::caps("urn:jabmon", &genuine);
    web1.session
        .send(Presence::available().with_to(jid(HUB)).with_payload(caps))
        .await;
    let query = web1
        .next_matching(WAIT, "the hub's disco#info query", |e| match e {
            Incoming::Iq(req)
                if !req.set && DiscoInfoQuery::try_from(req.payload.clone()).is_ok() =>
            {
                Some(req.clone())
            }
            _ => None,
        })
        .await;
    let node = DiscoInfoQuery::try_from(query.payload.clone())
        .unwrap()
        .node;

    let mut forged = collector_info("forged-os");
    forged.node = node.clone();
    eve.session
        .send(Iq::Result {
            from: None,
            to: Some(jid(HUB)),
            id: query.id.clone(),
            payload: Some(forged.into()),
        })
        .await;
    // The hub reads its stream in order: once it answered eve's ping, it has seen her forgery.
    eve.iq(jid(HUB), false, ping())
        .await
        .expect("ping answered");

    let mut answer = genuine.clone();
    answer.node = node;
    web1.session.reply(&query, Ok(Some(answer.into()))).await;

    let os = poll(&mut u1, WAIT, "host facts at the hub", async |u1| {
        let q = DiscoInfoQuery {
            node: Some("web1@localhost".into()),
        };
        let el = u1.iq(jid(HUB), false, q.into()).await.ok()??;
        field(&DiscoInfoResult::try_from(el).ok()?, "os")
    })
    .await;
    assert_eq!(os, "genuine-os");
    hub.stop().await;
}

fn ping() -> Element {
    xmpp_parsers::ping::Ping.into()
}

/// An items result for the collector's boot check, carrying a `started` event from a boot
/// long ago: if the collector took it, it would report `rebooted`.
fn forged_boot_items() -> Element {
    let event = Event {
        host: "web1".into(),
        timestamp: 1.0,
        kind: EventKind::Started,
        severity: None,
        boot: Some(1),
        metric: None,
        command: None,
        text: None,
    };
    let mut items = Items::new(jabmon_shared::ns::EVENTS);
    items.items.push(Item {
        id: None,
        publisher: None,
        payload: Some(event.into()),
    });
    PubSub::Items(items).into()
}

/// Subscribes `client` to `bare` and approves its subscription back, as a user of a collector
/// does; returns once the collector's available presence came in.
async fn subscribe(client: &mut TestClient, bare: &str) {
    client.available().await;
    client
        .session
        .send(Presence::subscribe().with_to(jid(bare)))
        .await;
    let is = |e: &Incoming, t: PresenceType| {
        matches!(e, Incoming::Presence(p)
            if p.type_ == t && p.from.as_ref().map(|f| f.to_bare().to_string()).as_deref() == Some(bare))
    };
    client
        .next_matching(WAIT, "subscribe back", |e| {
            is(e, PresenceType::Subscribe).then_some(())
        })
        .await;
    client
        .session
        .send(Presence::subscribed().with_to(jid(bare)))
        .await;
    client
        .next_matching(WAIT, "the collector's presence", |e| {
            is(e, PresenceType::None).then_some(())
        })
        .await;
}

/// The ids a session numbered sequentially would have used first.
fn guessed_ids() -> Vec<String> {
    (1..=40).map(|n| format!("jm{n}")).collect()
}

/// How often [`ForgedAnswers`] sends a round of forged answers.
const ROUND_EVERY: Duration = Duration::from_millis(50);

/// A stranger sending, until stopped, an `error` and a `result` carrying `payload` to `target`
/// for every guessed id, round after round.
///
/// One round (80 stanzas) every [`ROUND_EVERY`]: 1,600 stanzas a second, far more than either
/// server's stock shaper lets a client send, yet no more than a debug-built bot reads. Unpaced,
/// the flood outruns the bot and ejabberd closes the bot's stream (`Too many unacked stanzas`:
/// more than `max_ack_queue`, 5,000, sent and not yet acknowledged) — the server's defence
/// against a flood, not something the bot could answer.
struct ForgedAnswers {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<u64>,
}

impl ForgedAnswers {
    fn start(mut stranger: TestClient, target: &str, payload: Element) -> Self {
        let target = jid(target);
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut sent = 0u64;
            let mut rounds = tokio::time::interval(ROUND_EVERY);
            while stopped.try_recv().is_err() {
                rounds.tick().await;
                for id in guessed_ids() {
                    let error = StanzaError::new(
                        ErrorType::Cancel,
                        DefinedCondition::InternalServerError,
                        "en",
                        "forged",
                    );
                    stranger
                        .session
                        .send(Iq::Error {
                            from: None,
                            to: Some(target.clone()),
                            id: id.clone(),
                            error,
                            payload: None,
                        })
                        .await;
                    stranger
                        .session
                        .send(Iq::Result {
                            from: None,
                            to: Some(target.clone()),
                            id,
                            payload: Some(payload.clone()),
                        })
                        .await;
                    sent += 2;
                }
                // Keep the stranger's own stream drained (bounces, if any).
                let _ = stranger
                    .try_next_matching(Duration::from_millis(5), |_| None::<()>)
                    .await;
            }
            sent
        });
        Self { stop, task }
    }

    /// Stops and returns how many forged answers went out.
    async fn stop(self) -> u64 {
        let _ = self.stop.send(());
        let sent = self.task.await.expect("forging task");
        assert!(sent > 0, "nothing was forged");
        sent
    }
}

/// A stranger floods the collector, from before it connects until well after, with `result`s
/// and `error`s for every id it could guess: the boot check still reads the real last boot (no
/// `rebooted`), and the stats keep being published and confirmed.
// Prosody only: the test reads the `started` event back from the collector's events node, and
// ejabberd keeps one item per PEP node (node_pep's default `max_items` 1, which it will not
// take as a publish-option): the next event replaces `started` before it can be read. The
// collector would have to reconfigure the node (pubsub#owner) to keep 100 events there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessed_answers_change_nothing_at_the_collector() {
    let kind = Kind::Prosody;
    let server = Server::start(kind);
    for (u, p) in [("web1", "pw-web1"), ("u1", "pw-u1"), ("eve", "pw-eve")] {
        server.register(u, p);
    }
    let cfg = collector_toml(
        &server,
        "web1",
        "pw-web1",
        "[access]\nsubscribers = [\"u1@localhost\"]\n[collector]\nhost = \"web1\"\nsample_interval = \"500ms\"\npublish_interval = \"1s\"\n",
    );
    let eve = TestClient::connect(&server, "eve@localhost", "pw-eve").await;
    let flood = ForgedAnswers::start(eve, "web1@localhost/jabmon", forged_boot_items());

    let bot = InProcess::collector(&cfg);
    let mut u1 = TestClient::connect(&server, "u1@localhost", "pw-u1").await;
    subscribe(&mut u1, "web1@localhost").await;
    let events = poll(
        &mut u1,
        Duration::from_secs(15),
        "the started event",
        async |u1| {
            let items = jabmon_shared::pep::latest_items(jabmon_shared::ns::EVENTS, 100);
            let el = u1.iq(jid("web1@localhost"), false, items).await.ok()??;
            let events: Vec<Event> = jabmon_shared::pep::item_payloads(el)
                .into_iter()
                .filter_map(|p| Event::try_from(p).ok())
                .collect();
            events
                .iter()
                .any(|e| e.kind == EventKind::Started)
                .then_some(events)
        },
    )
    .await;
    assert!(
        events.iter().all(|e| e.kind != EventKind::Rebooted),
        "{events:?}"
    );
    // Publishing goes on at its 1 s interval: three fresh stats items within 5 s, pushed to
    // u1 by the server (stats are not stored: `pubsub#persist_items=false`), so each publish
    // was taken there.
    u1.advertise(&["urn:jabmon:stats:0+notify"]).await;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while seen.len() < 3 {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let stamp = u1
            .try_next_matching(left, |e| {
                jabmon_tests::pep::stats(e).map(|s| s.timestamp.to_bits())
            })
            .await;
        match stamp {
            Some(s) if !seen.contains(&s) => seen.push(s),
            Some(_) => {}
            None => panic!("stats stopped: {seen:?}"),
        }
    }
    let sent = flood.stop().await;
    eprintln!("eve sent {sent} forged answers");
    bot.stop().await;
}

/// Round trips of `n` XEP-0199 pings from `client` to `to`, sorted.
async fn ping_round_trips(client: &mut TestClient, to: &str, n: usize) -> Vec<Duration> {
    let mut rtts = Vec::with_capacity(n);
    for _ in 0..n {
        let sent = Instant::now();
        client
            .iq(jid(to), false, ping())
            .await
            .expect("ping answered");
        rtts.push(sent.elapsed());
    }
    rtts.sort();
    rtts
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

server_matrix!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    ping_round_trips_to_the_hub_and_a_collector
);
/// Pings from a client to the hub and to a collector, both running as processes, through the
/// test Prosody (`nagle = false` there): every ping is answered, and the round trips are
/// printed (`cargo nextest run -p jabmon-tests --test hardening --no-capture ping`) for
/// docs/performance.md.
async fn ping_round_trips_to_the_hub_and_a_collector(kind: Kind) {
    let server = Server::start(kind);
    for (u, p) in [("hub", "pw-hub"), ("web1", "pw-web1"), ("u1", "pw-u1")] {
        server.register(u, p);
    }
    let state = server.scratch().join("hub-state.json");
    let hub_cfg = hub_toml(
        &server,
        &format!(
            "[access]\ncollectors = [\"web1@localhost\"]\nusers = [\"u1@localhost\"]\n[hub]\nstorage = \"file\"\nstate_path = \"{}\"\n",
            state.display()
        ),
    );
    let collector_cfg = collector_toml(
        &server,
        "web1",
        "pw-web1",
        "[access]\nsubscribers = [\"u1@localhost\"]\n[collector]\nhost = \"web1\"\n",
    );
    let _hub = Process::start("jabmon-hub", &hub_cfg);
    let _collector = Process::start("jabmon-collector", &collector_cfg);
    let mut u1 = TestClient::connect(&server, "u1@localhost", "pw-u1").await;
    for (name, to) in [("hub", HUB), ("collector", "web1@localhost/jabmon")] {
        poll(&mut u1, WAIT, name, async |u1| {
            u1.iq(jid(to), false, ping()).await.ok().map(|_| ())
        })
        .await;
        let rtts = ping_round_trips(&mut u1, to, 200).await;
        eprintln!(
            "ping {name}: n={} min={:?} p50={:?} p90={:?} p99={:?} max={:?}",
            rtts.len(),
            rtts[0],
            percentile(&rtts, 0.5),
            percentile(&rtts, 0.9),
            percentile(&rtts, 0.99),
            rtts[rtts.len() - 1]
        );
    }
}

/// The pids whose command line holds `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        String::from_utf8_lossy(&cmdline)
            .contains(marker)
            .then_some(pid)
    })
    .collect()
}

fn adhoc(node: &str, sessionid: Option<&str>, command: Option<&str>) -> Element {
    let form = command.map(|c| xmpp_parsers::data_forms::DataForm {
        type_: DataFormType::Submit,
        title: None,
        instructions: None,
        fields: vec![xmpp_parsers::data_forms::Field::text_single("command", c)],
    });
    jabmon_shared::adhoc::Command {
        node: node.into(),
        sessionid: sessionid.map(str::to_string),
        action: None,
        status: None,
        actions: None,
        notes: vec![],
        form,
    }
    .into()
}

server_matrix!(
    #[tokio::test]
    a_shell_timeout_kills_everything_the_command_started
);
/// A whitelisted command that forks (`sh -c 'sleep 60 & sleep 60'`) with a 2 s timeout:
/// completed with a timeout note at the timeout, and nothing it started is left running.
async fn a_shell_timeout_kills_everything_the_command_started(kind: Kind) {
    let server = Server::start(kind);
    server.register("web1", "pw-web1");
    server.register("ops", "pw-ops");
    // A duration no other process on the machine sleeps for: how its processes are found.
    let marker = format!("60.{}", std::process::id());
    let cfg = collector_toml(
        &server,
        "web1",
        "pw-web1",
        &format!(
            "[access]\nadmins = [\"ops@localhost\"]\n[collector]\nhost = \"web1\"\n\
             [[commands.shell]]\nname = \"forks\"\nargv = [\"sh\", \"-c\", \"sleep {marker} & sleep {marker}\"]\ntimeout = \"2s\"\n"
        ),
    );
    let bot = InProcess::collector(&cfg);
    let mut ops = TestClient::connect(&server, "ops@localhost", "pw-ops").await;
    let collector = jid("web1@localhost/jabmon");
    let first = poll(&mut ops, WAIT, "the shell command's form", async |ops| {
        let el = ops
            .iq(collector.clone(), true, adhoc("shell", None, None))
            .await
            .ok()??;
        jabmon_shared::adhoc::Command::try_from(el).ok()
    })
    .await;
    let rx = ops
        .session
        .request(
            Some(collector.clone()),
            true,
            adhoc("shell", first.sessionid.as_deref(), Some("forks")),
        )
        .await;
    let submitted = Instant::now();
    // The command's processes are there while it runs.
    poll(&mut ops, WAIT, "the command's processes", async |_| {
        (processes_with(&marker).len() >= 2).then_some(())
    })
    .await;
    let done = ops
        .wait(rx)
        .await
        .expect("command answered")
        .expect("a payload");
    let took = submitted.elapsed();
    let done = jabmon_shared::adhoc::Command::try_from(done).expect("a command");
    assert!(
        took < Duration::from_secs(5),
        "answered after {took:?}, not at the 2 s timeout"
    );
    let note = &done.notes[0].text;
    assert!(
        note.contains("timeout") && note.contains("killed"),
        "{note}"
    );
    let timed_out = done
        .form
        .as_ref()
        .and_then(|f| {
            f.fields
                .iter()
                .find(|f| f.var.as_deref() == Some("timed_out"))
        })
        .and_then(|f| f.values.first().cloned());
    assert_eq!(timed_out.as_deref(), Some("1"));
    poll(
        &mut ops,
        Duration::from_secs(2),
        "no process of the command left",
        async |_| processes_with(&marker).is_empty().then_some(()),
    )
    .await;
    eprintln!("answered after {took:?}");
    bot.stop().await;
}

/// A presence tokio-xmpp cannot parse (`<priority>` must be a number): the server passes it
/// on, the receiving bot drops it.
fn invalid_presence(to: &str) -> Presence {
    let mut p = Presence::available().with_to(jid(to));
    p.payloads.push(
        Element::builder("priority", "jabber:client")
            .append("not a number")
            .build(),
    );
    p
}

/// 10,000 invalid stanzas from a stranger, half to the hub and half to a collector: neither
/// logs a line per stanza (a summary instead), and both keep answering another user's pings meanwhile
/// (round trips printed).
// Prosody only: ejabberd does not pass these invalid presences on to the bots at all, so
// there is nothing for them to count; the test needs a stanza ejabberd forwards and tokio-xmpp
// rejects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_stanzas_are_counted_not_logged_one_by_one() {
    let kind = Kind::Prosody;
    const FLOOD: usize = 5_000;
    let server = Server::start(kind);
    for (u, p) in [
        ("hub", "pw-hub"),
        ("web1", "pw-web1"),
        ("u1", "pw-u1"),
        ("eve", "pw-eve"),
    ] {
        server.register(u, p);
    }
    let state = server.scratch().join("hub-state.json");
    let hub_cfg = hub_toml(
        &server,
        &format!(
            "[access]\ncollectors = [\"web1@localhost\"]\nusers = [\"u1@localhost\"]\n[hub]\nstorage = \"file\"\nstate_path = \"{}\"\n",
            state.display()
        ),
    );
    let collector_cfg = collector_toml(
        &server,
        "web1",
        "pw-web1",
        "[access]\nsubscribers = [\"u1@localhost\"]\n[collector]\nhost = \"web1\"\n",
    );
    let hub = Process::start("jabmon-hub", &hub_cfg);
    let collector = Process::start("jabmon-collector", &collector_cfg);
    let bots = [(HUB, &hub), ("web1@localhost/jabmon", &collector)];
    let mut u1 = TestClient::connect(&server, "u1@localhost", "pw-u1").await;
    let mut eve = TestClient::connect(&server, "eve@localhost", "pw-eve").await;
    for (to, _) in bots {
        poll(&mut u1, WAIT, to, async |u1| {
            u1.iq(jid(to), false, ping()).await.ok().map(|_| ())
        })
        .await;
    }

    let targets = bots.map(|(to, _)| to);
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let pinger = tokio::spawn(async move {
        let mut rtts = Vec::new();
        while stop_rx.try_recv().is_err() {
            for to in targets {
                let sent = Instant::now();
                u1.iq(jid(to), false, ping()).await.expect("ping answered");
                rtts.push(sent.elapsed());
            }
        }
        rtts.sort();
        rtts
    });
    let started = Instant::now();
    for i in 0..FLOOD {
        for (to, _) in bots {
            eve.session.send(invalid_presence(to)).await;
        }
        if i % 500 == 0 {
            let _ = eve
                .try_next_matching(Duration::from_millis(1), |_| None::<()>)
                .await;
        }
    }
    // Each bot reads its stream in order: once it answered eve's ping, it has read the flood.
    for (to, _) in bots {
        let mut answer = eve.session.request(Some(jid(to)), false, ping()).await;
        let deadline = Instant::now() + Duration::from_secs(120);
        while answer.try_recv().is_err() {
            assert!(Instant::now() < deadline, "{to} never read the whole flood");
            let _ = eve
                .try_next_matching(Duration::from_millis(50), |_| None::<()>)
                .await;
        }
    }
    let flood_took = started.elapsed();
    let _ = stop_tx.send(());
    let rtts = pinger.await.expect("pinger");
    eprintln!(
        "{FLOOD} invalid presences to each bot read in {flood_took:?}; {} pings meanwhile: p50={:?} p99={:?} max={:?}",
        rtts.len(),
        percentile(&rtts, 0.5),
        percentile(&rtts, 0.99),
        rtts[rtts.len() - 1]
    );
    for (to, bot) in bots {
        let log = bot.log();
        let per_stanza = log.matches("Received invalid stanza").count();
        let summaries: Vec<&str> = log.lines().filter(|l| l.contains("dropped")).collect();
        assert_eq!(per_stanza, 0, "{to}: a line per invalid stanza");
        assert!(
            !summaries.is_empty() && summaries.len() <= 2,
            "{to}: {summaries:#?}"
        );
        assert!(
            summaries[0].contains("invalid presence"),
            "{}",
            summaries[0]
        );
        eprintln!("{to}: {}", summaries.join("\n"));
    }
}

/// Sends `body` to the hub's session (its full JID: a message to the bare JID while the hub
/// is logging in goes to offline storage, and on ejabberd one that arrived as the hub logged
/// in was sometimes never delivered to it) and returns its JSON reply to that request.
async fn hub_query(c: &mut TestClient, body: &str) -> serde_json::Value {
    let mut m = xmpp_parsers::message::Message::chat(Some(jid("hub@localhost/hub")));
    m.bodies.insert(Default::default(), body.to_string());
    c.session.send(m).await;
    c.next_matching(WAIT, "the hub's reply", |e| {
        let Incoming::Message(m) = e else { return None };
        let v: serde_json::Value = serde_json::from_str(m.bodies.values().next()?).ok()?;
        (v["debug"]["request"].as_str() == Some(body)).then_some(v)
    })
    .await
}

/// The keys of the hub's registrations for `c`.
async fn registered_keys(c: &mut TestClient) -> Vec<String> {
    let list = hub_query(c, "SELECT * FROM leela.xmpp;").await;
    assert_eq!(list["status"], 200, "{list}");
    let mut keys: Vec<String> = list["results"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| v["key"].as_str().expect("a key").to_string())
        .collect();
    keys.sort();
    keys
}

server_matrix!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    guessed_answers_change_nothing_at_the_hub
);
/// A stranger floods a restarting hub (storage in PEP) with `result`s — empty saved
/// registrations — and `error`s for every id it could guess: the hub restores what it saved.
async fn guessed_answers_change_nothing_at_the_hub(kind: Kind) {
    let server = Server::start(kind);
    for (u, p) in [("hub", "pw-hub"), ("u1", "pw-u1"), ("eve", "pw-eve")] {
        server.register(u, p);
    }
    let cfg = hub_toml(
        &server,
        "[access]\ncollectors = [\"web1@localhost\"]\nusers = [\"u1@localhost\"]\n[hub]\nstorage = \"pep\"\n",
    );
    let mut u1 = TestClient::connect(&server, "u1@localhost", "pw-u1").await;
    u1.available().await;
    let mut hub = Process::start("jabmon-hub", &cfg);
    u1.wait_reachable(jid("hub@localhost/hub")).await;
    let mut want = Vec::new();
    for q in [
        r"SELECT id FROM ^web1\.cpu\.cpu\.idle$;",
        r"SELECT (* 2) | [>= 0] FROM ^web1\.load\.load\.shortterm$;",
    ] {
        let r = hub_query(&mut u1, q).await;
        assert_eq!(r["status"], 200, "{r}; hub log:\n{}", hub.log());
        want.push(r["results"]["key"].as_str().expect("a key").to_string());
    }
    want.sort();
    assert_eq!(registered_keys(&mut u1).await, want);
    hub.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(5);
    while hub.child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "hub did not exit within 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await; // polling interval
    }
    drop(hub);
    u1.clear();

    let eve = TestClient::connect(&server, "eve@localhost", "pw-eve").await;
    let nothing_saved = PubSub::Items(Items::new("urn:jabmon:hub:registrations:0")).into();
    let flood = ForgedAnswers::start(eve, HUB, nothing_saved);
    let hub = Process::start("jabmon-hub", &cfg);
    u1.wait_reachable(jid("hub@localhost/hub")).await;
    let keys = registered_keys(&mut u1).await;
    let sent = flood.stop().await;
    assert_eq!(keys, want, "hub log:\n{}", hub.log());
    eprintln!("eve sent {sent} forged answers");
}
