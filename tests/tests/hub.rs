//! The hub as users see it: queries over chat, isolation, limits, a dying collector, restarts
//! and slow neighbours — against a real Prosody and a real collector process.
// Test code: an unwrap that fails is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use jabmon_shared::session::Incoming;
use jabmon_tests::bots::{collector_toml, hub_toml, InProcess, Process};
use jabmon_tests::chat::{
    body_of, collector_status, hub_online, hub_says, is_event, next_event, query, tell_hub, user,
    user_of_hub, HUB,
};
use jabmon_tests::client::WAIT;
use jabmon_tests::{muc, server_matrix, Kind, Server, TestClient};
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::presence::Type as PresenceType;

struct Net {
    server: Server,
    collector: Process,
}

/// Prosody, accounts, a collector process publishing every second and subscribed to the hub.
fn network(kind: Kind) -> Net {
    let server = Server::start(kind);
    for (u, p) in [
        ("hub", "pw-hub"),
        ("web1", "pw-web1"),
        ("u1", "pw-u1"),
        ("u2", "pw-u2"),
        ("u3", "pw-u3"),
        ("u4", "pw-u4"),
        ("eve", "pw-eve"),
    ] {
        server.register(u, p);
    }
    let cfg = collector_toml(
        &server,
        "web1",
        "pw-web1",
        &format!("[access]\nsubscribers = [\"u1@localhost\"]\n[collector]\nhost = \"web1\"\nhub = \"{HUB}\"\nsample_interval = \"500ms\"\npublish_interval = \"1s\"\n"),
    );
    let collector = Process::start("jabmon-collector", &cfg);
    Net { server, collector }
}

fn hub_config(server: &Server, storage: &str) -> std::path::PathBuf {
    let state = server.scratch().join("hub-state.json");
    hub_toml(
        server,
        &format!(
            "[access]\ncollectors = [\"web1@localhost\"]\nusers = [\"u1@localhost\", \"u2@localhost\", \"u3@localhost\", \"u4@localhost\"]\n[hub]\nstorage = \"{storage}\"\nstate_path = \"{}\"\nmax_events_per_second_per_user = 200\n",
            state.display()
        ),
    )
}

server_matrix!(
    #[tokio::test]
    queries_isolation_limits_and_delete
);
async fn queries_isolation_limits_and_delete(kind: Kind) {
    let net = network(kind);
    let hub = InProcess::hub(&hub_config(&net.server, "file"));
    let mut u1 = user_of_hub(&net.server, "u1").await;
    let mut u2 = user(&net.server, "u2").await;
    let mut eve = user(&net.server, "eve").await;

    let r = query(&mut u1, r"SELECT id FROM ^.*\.cpu\.cpu\.idle$;").await;
    assert_eq!(r["status"], 200, "{r}");
    let key = r["results"]["key"].as_str().unwrap().to_string();
    assert_eq!(key.len(), 128);
    assert!(key
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    // Same again: same key.
    assert_eq!(
        query(&mut u1, r"select   id   from ^.*\.cpu\.cpu\.idle$").await["results"]["key"],
        key.as_str()
    );

    let ev = next_event(&mut u1, &key, Duration::from_secs(15)).await;
    let e = &ev["results"]["event"];
    assert!(
        e["name"].as_str().unwrap().ends_with(".cpu.cpu.idle"),
        "{ev}"
    );
    assert_eq!(e["name"].as_str().unwrap(), "web1.cpu.cpu.idle");
    assert!(e["value"].is_number() && e["timestamp"].is_f64(), "{ev}");

    // U2: cannot see or delete U1's key.
    let list = query(&mut u2, "SELECT * FROM leela.xmpp;").await;
    assert_eq!(list["results"], serde_json::json!([]), "{list}");
    let del = query(&mut u2, &format!("DELETE FROM leela.xmpp WHERE key={key};")).await;
    assert_eq!(del["status"], 404, "{del}");
    // A stranger: 403. Bad proc / regex: 400 naming the position.
    assert_eq!(query(&mut eve, "SELECT id FROM x;").await["status"], 403);
    let bad = query(&mut u1, "SELECT window 0 ( FROM x;").await;
    assert_eq!(bad["status"], 400, "{bad}");
    assert!(bad["reason"].as_str().unwrap().contains("column"), "{bad}");
    let bad = query(&mut u1, "SELECT id FROM (unclosed;").await;
    assert_eq!(bad["status"], 400, "{bad}");
    assert!(bad["reason"].as_str().unwrap().contains("column"), "{bad}");
    // 100 registrations fit, the 101st is refused.
    for i in 1..100 {
        let r = query(&mut u2, &format!("SELECT id FROM ^host{i}\\.x$;")).await;
        assert_eq!(r["status"], 200, "{r}");
    }
    assert_eq!(
        query(&mut u2, "SELECT id FROM ^host100\\.x$;").await["status"],
        200
    );
    let over = query(&mut u2, "SELECT id FROM ^host101\\.x$;").await;
    assert_eq!(over["status"], 413, "{over}");
    let d = query(&mut u2, "DELETE FROM leela.xmpp;").await;
    assert_eq!(d["results"].as_array().unwrap().len(), 100);

    // DELETE all: U1's keys come back, and U1's events stop.
    let r2 = query(&mut u1, r"SELECT mean FROM ^web1\.load\.load\.shortterm$;").await;
    let key2 = r2["results"]["key"].as_str().unwrap().to_string();
    let del = query(&mut u1, "DELETE FROM leela.xmpp;").await;
    let mut keys: Vec<String> = del["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["key"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    let mut want = vec![key.clone(), key2.clone()];
    want.sort();
    assert_eq!(keys, want);
    u1.clear();
    // U2 registers the same stream: while U2 receives three events, U1 (deleted) gets none,
    // and U2 never sees U1's keys.
    let r = query(&mut u2, r"SELECT id FROM ^web1\.cpu\.cpu\.idle$;").await;
    let k2 = r["results"]["key"].as_str().unwrap().to_string();
    assert_ne!(k2, key, "keys include the user");
    for _ in 0..3 {
        next_event(&mut u2, &k2, Duration::from_secs(10)).await;
    }
    let (a, b) = (key.clone(), key2.clone());
    let leaked = u2
        .try_next_matching(Duration::ZERO, move |e| {
            body_of(e, true).filter(|v| v["key"] == a.as_str() || v["key"] == b.as_str())
        })
        .await;
    assert!(leaked.is_none(), "U2 received U1's event: {leaked:?}");
    let (a, b) = (key.clone(), key2.clone());
    let stray = u1
        .try_next_matching(Duration::from_millis(100), move |e| {
            body_of(e, true).filter(|v| is_event(v, &a) || is_event(v, &b))
        })
        .await;
    assert!(
        stray.is_none(),
        "U1 still got an event after DELETE: {stray:?}"
    );
    hub.stop().await;
}

server_matrix!(
    #[tokio::test]
    a_killed_collector_is_dead_within_30s
);
async fn a_killed_collector_is_dead_within_30s(kind: Kind) {
    let net = network(kind);
    let hub = InProcess::hub(&hub_config(&net.server, "file"));
    let mut u1 = user_of_hub(&net.server, "u1").await;
    let r = query(&mut u1, r"SELECT id FROM ^.*\.jabmon\.status\.alive$;").await;
    let key = r["results"]["key"].as_str().unwrap().to_string();
    // Up first (the registry learns it from presence and caps); a loaded test machine may
    // well make it busy or critical rather than alive.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !matches!(
        collector_status(&mut u1, "web1@localhost").await.as_deref(),
        Some("alive" | "busy" | "critical")
    ) {
        assert!(Instant::now() < deadline, "collector never up at the hub");
        tokio::time::sleep(Duration::from_millis(200)).await; // polling interval
    }
    net.collector.signal("KILL");
    let killed = Instant::now();
    let k = key.clone();
    let ev = u1
        .next_matching(Duration::from_secs(30), "status.alive = 0", move |e| {
            body_of(e, true).filter(|v| is_event(v, &k) && v["results"]["event"]["value"] == 0.0)
        })
        .await;
    assert_eq!(ev["results"]["event"]["name"], "web1.jabmon.status.alive");
    assert_eq!(
        collector_status(&mut u1, "web1@localhost").await.as_deref(),
        Some("dead")
    );
    assert!(killed.elapsed() < Duration::from_secs(30));
    eprintln!("dead after {:?}", killed.elapsed());
    hub.stop().await;
}

async fn restart_keeps_registrations(kind: Kind, storage: &str) {
    let net = network(kind);
    let cfg = hub_config(&net.server, storage);
    let mut hub = Process::start("jabmon-hub", &cfg);
    let mut u1 = user_of_hub(&net.server, "u1").await;
    let r = query(&mut u1, r"SELECT id FROM ^web1\.cpu\.cpu\.idle$;").await;
    assert_eq!(r["status"], 200, "{r}; hub log:\n{}", hub.log());
    let key = r["results"]["key"].as_str().unwrap().to_string();
    let r2 = query(
        &mut u1,
        r"SELECT (* 2) | [>= 0] FROM ^web1\.load\.load\.shortterm$;",
    )
    .await;
    let key2 = r2["results"]["key"].as_str().unwrap().to_string();
    next_event(&mut u1, &key, Duration::from_secs(15)).await;

    hub.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = hub.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "hub did not exit within 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}: {}", hub.log());
    drop(hub);
    // The old hub's presence ends here: what comes after it is the new hub's.
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

    let hub = Process::start("jabmon-hub", &cfg);
    hub_online(&mut u1).await;
    let list = query(&mut u1, "SELECT * FROM leela.xmpp;").await;
    assert_eq!(list["status"], 200, "{list}; hub log:\n{}", hub.log());
    let mut keys: Vec<&str> = list["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["key"].as_str().unwrap())
        .collect();
    keys.sort();
    let mut want = vec![key.as_str(), key2.as_str()];
    want.sort();
    assert_eq!(keys, want, "{list}");
    next_event(&mut u1, &key, Duration::from_secs(15)).await;
    drop(hub);
}

server_matrix!(
    #[tokio::test]
    registrations_survive_a_restart_with_pep_storage
);
async fn registrations_survive_a_restart_with_pep_storage(kind: Kind) {
    restart_keeps_registrations(kind, "pep").await;
}

server_matrix!(
    #[tokio::test]
    registrations_survive_a_restart_with_file_storage
);
async fn registrations_survive_a_restart_with_file_storage(kind: Kind) {
    restart_keeps_registrations(kind, "file").await;
}

server_matrix!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    flooders_offline_users_and_stalled_readers_do_not_delay_others
);
/// A user flooding queries, a user who went offline with a busy registration and a user
/// whose client stopped reading (online, with the hub sending it its full per-user rate) must
/// not delay U1's events. Prints the gaps it measured.
async fn flooders_offline_users_and_stalled_readers_do_not_delay_others(kind: Kind) {
    let net = network(kind);
    let hub = InProcess::hub(&hub_config(&net.server, "file"));
    let mut u1 = user_of_hub(&net.server, "u1").await;
    let mut u3 = user_of_hub(&net.server, "u3").await;
    // U3 registers every metric of web1 (~70 events a second), then goes offline.
    let r = query(&mut u3, r"SELECT id FROM ^web1\.;").await;
    assert_eq!(r["status"], 200, "{r}");
    u3.session
        .send(xmpp_parsers::presence::Presence::unavailable())
        .await;
    u3.session.close(None, Duration::from_secs(2)).await;
    // U4 registers every metric of web1 five times (~350 events a second, more than the hub's
    // 200 per user) and then never reads again: the client is kept, its session never polled.
    let mut u4 = user_of_hub(&net.server, "u4").await;
    for i in 0..5 {
        let r = query(&mut u4, &format!(r"SELECT id FROM ^web1\.(|{i});")).await;
        assert_eq!(r["status"], 200, "{r}");
    }
    let key = query(&mut u1, r"SELECT id FROM ^web1\.cpu\.cpu\.idle$;").await["results"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    next_event(&mut u1, &key, Duration::from_secs(15)).await;

    // U2 floods 200 queries a second for the whole measurement.
    let mut u2 = user(&net.server, "u2").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let flood = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        let mut sent = 0u32;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            tick.tick().await;
            let mut m = Message::new(Some(Jid::new(HUB).unwrap()));
            m.type_ = MessageType::Chat;
            m.bodies.insert(
                Default::default(),
                format!("SELECT id FROM ^flood{}$;", sent % 150),
            );
            u2.session.send(m).await;
            sent += 1;
            while let Some(Some(_)) = futures_now(&mut u2).await {}
        }
        sent
    });
    let mut arrivals = vec![Instant::now()];
    for _ in 0..8 {
        next_event(&mut u1, &key, Duration::from_secs(10)).await;
        arrivals.push(Instant::now());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = flood.await.unwrap();
    let gaps: Vec<f64> = arrivals
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    let max = gaps.iter().cloned().fold(0.0, f64::max);
    eprintln!("U1 event gaps under a {sent}-query flood and an offline user: {gaps:.3?} (max {max:.3} s; publish interval 1 s)");
    // Events keep coming at the collector's pace: no gap near the 10 s wait.
    assert!(max < 3.0, "U1 was delayed: gaps {gaps:?}");
    drop(u4);
    hub.stop().await;
}

/// Drains whatever is already received, without waiting.
async fn futures_now(c: &mut TestClient) -> Option<Option<()>> {
    c.try_next_matching(Duration::ZERO, |_| Some(()))
        .await
        .map(Some)
}

server_matrix!(
    #[tokio::test]
    forged_pep_notifications_are_ignored
);
/// A user cannot inject stats by sending a pubsub event payload from their own client: only
/// the server's notifications (from a bare JID) count.
async fn forged_pep_notifications_are_ignored(kind: Kind) {
    let net = network(kind);
    // The usual deployment: collectors and users in one domain.
    let state = net.server.scratch().join("hub.json");
    let hub = InProcess::hub(&hub_toml(
        &net.server,
        &format!("[access]\ncollectors = [\"@localhost\"]\nusers = [\"@localhost\"]\n[hub]\nstorage = \"file\"\nstate_path = \"{}\"\n", state.display()),
    ));
    let mut u1 = user_of_hub(&net.server, "u1").await;
    let key = query(&mut u1, r"SELECT id FROM ^forged\.;").await["results"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let u2 = user(&net.server, "u2").await;
    let stats = jabmon_shared::payload::Stats {
        host: "forged".into(),
        timestamp: jabmon_shared::unix_now(),
        stats: vec![jabmon_shared::payload::Stat {
            name: "cpu.cpu.idle".into(),
            value: 1.0,
            unit: None,
        }],
    };
    let event = xmpp_parsers::pubsub::event::Event {
        payload: xmpp_parsers::pubsub::event::Payload::Items {
            node: xmpp_parsers::pubsub::NodeName("urn:jabmon:stats:0".into()),
            published: vec![xmpp_parsers::pubsub::event::Item {
                id: None,
                publisher: None,
                payload: Some(stats.into()),
            }],
            retracted: vec![],
        },
    };
    let mut m = Message::new(Some(Jid::new("hub@localhost/hub").unwrap()));
    m.type_ = MessageType::Headline;
    m.payloads.push(event.into());
    u2.session.send(m).await;
    // Meanwhile the real collector's events keep flowing to a control registration.
    let real = query(&mut u1, r"SELECT id FROM ^web1\.cpu\.cpu\.idle$;").await["results"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    next_event(&mut u1, &real, Duration::from_secs(15)).await;
    let forged = u1
        .try_next_matching(Duration::from_millis(200), move |e| {
            body_of(e, true).filter(|v| is_event(v, &key))
        })
        .await;
    assert!(
        forged.is_none(),
        "a forged stats item became an event: {forged:?}"
    );
    hub.stop().await;
}

server_matrix!(
    #[tokio::test]
    a_rule_alerts_a_user_and_a_killed_collector_raises_dead
);
/// A `[[alerts]]` rule from hub.toml messages its user with a readable line; SIGKILL on the
/// collector raises a `dead` alert to the collector route, and its return resolves it.
async fn a_rule_alerts_a_user_and_a_killed_collector_raises_dead(kind: Kind) {
    let mut net = network(kind);
    let state = net.server.scratch().join("hub-state.json");
    let cfg = hub_toml(
        &net.server,
        &format!(
            "[access]\ncollectors = [\"web1@localhost\"]\nusers = [\"u1@localhost\"]\n[hub]\nstorage = \"file\"\nstate_path = \"{}\"\n[alerting]\ngroup_wait = \"0s\"\ncollector_users = [\"u1@localhost\"]\n[[alerts]]\nname = \"idle-seen\"\nquery = 'SELECT [>= 0] FROM ^web1\\.cpu\\.cpu\\.idle$'\nunit = \"%\"\nusers = [\"u1@localhost\"]\n",
            state.display()
        ),
    );
    let hub = InProcess::hub(&cfg);
    let mut u1 = user_of_hub(&net.server, "u1").await;
    let text = |e: &Incoming, want: &'static str| -> Option<String> {
        let Incoming::Message(m) = e else { return None };
        let body = m.bodies.values().next()?;
        (m.from.as_ref()?.to_bare().to_string() == HUB && body.contains(want)).then(|| body.clone())
    };
    let fired = u1
        .next_matching(WAIT, "the idle-seen alert", |e| text(e, "idle-seen"))
        .await;
    assert!(fired.contains("web1") && !fired.starts_with('{'), "{fired}");
    net.collector.signal("KILL");
    let dead = u1
        .next_matching(Duration::from_secs(40), "the dead alert", |e| {
            text(e, "dead")
        })
        .await;
    assert!(dead.contains("web1"), "{dead}");
    // Back again, the collector resolves its alert.
    net.collector = Process::start("jabmon-collector", &net.server.scratch().join("web1.toml"));
    let back = u1
        .next_matching(Duration::from_secs(40), "the collector's recovery", |e| {
            text(e, "✅")
        })
        .await;
    assert!(
        back.contains("web1") && back.contains("(collector)"),
        "{back}"
    );
    eprintln!("alert: {fired}\ncollector alert: {dead}\nrecovery: {back}");
    hub.stop().await;
}

/// The rule of the room tests: fires on web1's first CPU sample and stays open.
const IDLE_RULE: &str = "[[alerts]]\nname = \"idle-seen\"\nquery = 'SELECT [>= 0] FROM ^web1\\.cpu\\.cpu\\.idle$'\nunit = \"%\"\n";

/// A hub config with `[alerting]` sending at once, `rest` appended (rooms, rules).
fn alerting_hub(server: &Server, storage: &str, rest: &str) -> std::path::PathBuf {
    let state = server.scratch().join("hub-state.json");
    hub_toml(
        server,
        &format!(
            "[access]\ncollectors = [\"web1@localhost\"]\nusers = [\"u1@localhost\"]\n[hub]\nstorage = \"{storage}\"\nstate_path = \"{}\"\n[alerting]\ngroup_wait = \"0s\"\n{rest}",
            state.display()
        ),
    )
}

server_matrix!(
    #[tokio::test]
    a_rule_alerts_a_room_a_reply_acks_it_and_a_stranger_is_refused
);
/// The hub joins a configured room, posts a rule's alert there, a user's XEP-0461 reply acks
/// it for the room to see, and an occupant outside the hub's ACL is refused with a reason.
async fn a_rule_alerts_a_room_a_reply_acks_it_and_a_stranger_is_refused(kind: Kind) {
    let net = network(kind);
    let room = muc::room_jid("ops");
    let mut u1 = user(&net.server, "u1").await;
    u1.join_room(&room, "alice").await;
    let mut eve = user(&net.server, "eve").await;
    eve.join_room(&room, "eve").await;
    let cfg = alerting_hub(
        &net.server,
        "file",
        &format!("[[rooms]]\njid = \"{room}\"\n{IDLE_RULE}rooms = [\"{room}\"]\n"),
    );
    let hub = InProcess::hub(&cfg);
    u1.next_matching(WAIT, "the hub in the room", |e| {
        muc::joined(e, &room, muc::HUB_NICK).then_some(())
    })
    .await;
    let alert = u1
        .next_matching(WAIT, "the alert in the room", |e| {
            muc::hub_said(e, &room, "idle-seen")
        })
        .await;
    assert!(
        alert.body.contains("web1") && !alert.body.starts_with('{'),
        "{alert:?}"
    );
    // XEP-0461: in a room the reply names the room's stanza id; this room stamps none, so
    // clients fall back to the message id.
    let replied_to = alert.stanza_id.clone().or(alert.id.clone()).unwrap();
    let reply = jabmon_hub::reference::ReplyTo {
        to: Some(format!("{room}/jabmon")),
        id: replied_to,
    };
    u1.say(&room, Some("on it"), vec![reply.into()]).await;
    let acked = u1
        .next_matching(WAIT, "the ack shown in the room", |e| {
            muc::hub_said(e, &room, "acked")
        })
        .await;
    assert!(acked.body.contains("u1@localhost"), "{acked:?}");
    eve.say(&room, Some("ack 1"), vec![]).await;
    let refused = u1
        .next_matching(WAIT, "eve refused", |e| muc::hub_said(e, &room, "⛔"))
        .await;
    assert!(refused.body.contains("eve"), "{refused:?}");
    eprintln!("room: {}\n{}\n{}", alert.body, acked.body, refused.body);
    hub.stop().await;
}

server_matrix!(
    #[tokio::test]
    a_room_archive_keeps_the_alerts_for_clients_scrolling_back
);
/// The hub's alert and its ack in a room go through the server like anyone's messages, so the
/// room's archive (XEP-0313) holds them: a user who was not there finds them scrolling back.
async fn a_room_archive_keeps_the_alerts_for_clients_scrolling_back(kind: Kind) {
    let net = network(kind);
    let room = muc::room_jid("ops");
    let mut u1 = user(&net.server, "u1").await;
    u1.join_room(&room, "alice").await;
    let cfg = alerting_hub(
        &net.server,
        "file",
        &format!("[[rooms]]\njid = \"{room}\"\n{IDLE_RULE}rooms = [\"{room}\"]\n"),
    );
    let hub = InProcess::hub(&cfg);
    let alert = u1
        .next_matching(WAIT, "the alert in the room", |e| {
            muc::hub_said(e, &room, "idle-seen")
        })
        .await;
    u1.say(&room, Some("ack 1"), vec![]).await;
    let acked = u1
        .next_matching(WAIT, "the ack in the room", |e| {
            muc::hub_said(e, &room, "acked #1")
        })
        .await;
    let mut u2 = user(&net.server, "u2").await;
    let archived: Vec<(String, String)> = u2
        .room_archive(&room)
        .await
        .into_iter()
        .filter_map(|m| {
            let nick = m.from.as_ref()?.resource()?.to_string();
            Some((nick, m.bodies.values().next()?.clone()))
        })
        .collect();
    let hub_lines: Vec<&str> = archived
        .iter()
        .filter(|(nick, _)| nick == muc::HUB_NICK)
        .map(|(_, body)| body.as_str())
        .collect();
    assert!(
        hub_lines.contains(&alert.body.as_str()) && hub_lines.contains(&acked.body.as_str()),
        "the alert {:?} and the ack {:?} in the archive: {archived:?}",
        alert.body,
        acked.body
    );
    eprintln!("archived: {archived:?}");
    hub.stop().await;
}

server_matrix!(
    #[tokio::test]
    a_reaction_acks_and_acks_and_silences_survive_a_restart
);
/// A XEP-0444 reaction to an alert in a 1:1 chat acks it; a silence set from chat, and the
/// ack, are there after a hub restart (PEP storage).
async fn a_reaction_acks_and_acks_and_silences_survive_a_restart(kind: Kind) {
    let net = network(kind);
    let cfg = alerting_hub(
        &net.server,
        "pep",
        &format!("{IDLE_RULE}users = [\"u1@localhost\"]\n"),
    );
    let hub = InProcess::hub(&cfg);
    let mut u1 = user_of_hub(&net.server, "u1").await;
    let (alert, id) = u1
        .next_matching(WAIT, "the alert", |e| hub_says(e, "idle-seen"))
        .await;
    let reactions = xmpp_parsers::reactions::Reactions {
        id: id.expect("alert messages carry an id"),
        reactions: vec![xmpp_parsers::reactions::Reaction {
            emoji: "👍".into()
        }],
    };
    let mut m = Message::new(Some(Jid::new(HUB).unwrap()));
    m.type_ = MessageType::Chat;
    m.payloads.push(reactions.into());
    u1.session.send(m).await;
    let (acked, _) = u1
        .next_matching(WAIT, "the ack", |e| hub_says(e, "acked"))
        .await;
    tell_hub(&mut u1, "silence 2h web1.* kernel update").await;
    let (silenced, _) = u1
        .next_matching(WAIT, "the silence", |e| hub_says(e, "🔕"))
        .await;
    eprintln!("{alert}\n{acked}\n{silenced}");

    hub.stop().await;
    let hub = InProcess::hub(&cfg);
    hub_online(&mut u1).await;
    tell_hub(&mut u1, "silences").await;
    let (listed, _) = u1
        .next_matching(WAIT, "the silence after the restart", |e| {
            hub_says(e, "web1.*")
        })
        .await;
    assert!(
        listed.contains("u1@localhost") && listed.contains("kernel update"),
        "{listed}"
    );
    tell_hub(&mut u1, "alerts").await;
    let (open, _) = u1
        .next_matching(WAIT, "the open alert, acked, after the restart", |e| {
            hub_says(e, "acked by u1@localhost")
        })
        .await;
    assert!(open.contains("idle-seen"), "{open}");
    hub.stop().await;
}

server_matrix!(
    #[tokio::test]
    a_silence_holds_back_a_new_alert_until_it_expires
);
/// A silence set in chat before a rule fires holds the alert's message back — the alert is
/// open meanwhile and `alerts` shows it silenced — and the message goes out once the silence
/// has expired, after which `silences` lists nothing.
async fn a_silence_holds_back_a_new_alert_until_it_expires(kind: Kind) {
    const SILENCE: Duration = Duration::from_secs(12);
    let net = network(kind);
    let cfg = alerting_hub(&net.server, "file", "");
    let hub = InProcess::hub(&cfg);
    let mut u1 = user_of_hub(&net.server, "u1").await;
    let set = Instant::now();
    tell_hub(&mut u1, "silence 12s web1.* maintenance").await;
    let (silenced, _) = u1
        .next_matching(WAIT, "the silence", |e| hub_says(e, "🔕"))
        .await;
    tell_hub(
        &mut u1,
        r"ALERT idle SELECT [>= 0] FROM ^web1\.cpu\.cpu\.idle$;",
    )
    .await;
    u1.next_matching(WAIT, "the rule saved", |e| hub_says(e, "rule idle saved"))
        .await;
    // The rule sees web1's events when a query does: once one has reached u1, the alert is
    // open (an early firing line would be skipped here and missed below: the test fails).
    let reply = query(&mut u1, r"SELECT id FROM ^web1\.cpu\.cpu\.idle$;").await;
    let key = reply["results"]["key"].as_str().unwrap().to_string();
    next_event(&mut u1, &key, WAIT).await;
    query(&mut u1, "DELETE FROM leela.xmpp;").await;
    tell_hub(&mut u1, "alerts").await;
    let (open, _) = u1
        .next_matching(WAIT, "the open alert, silenced", |e| hub_says(e, "(idle)"))
        .await;
    assert!(open.contains("silenced"), "{open}");
    let (fired, _) = u1
        .next_matching(
            Duration::from_secs(40),
            "the alert once the silence ends",
            |e| hub_says(e, "(idle)").filter(|(b, _)| b.starts_with("⚠️")),
        )
        .await;
    let told_after = set.elapsed();
    assert!(
        told_after >= SILENCE,
        "told {told_after:?} after a {SILENCE:?} silence was set: {fired}"
    );
    tell_hub(&mut u1, "silences").await;
    u1.next_matching(WAIT, "no silence left", |e| hub_says(e, "No silences."))
        .await;
    eprintln!("{silenced}\n{open}\n{fired} (after {told_after:?})");
    hub.stop().await;
}

server_matrix!(
    #[tokio::test]
    the_hub_rejoins_its_room_after_it_is_recreated_and_after_a_server_restart
);
/// Destroyed and created again, the room gets the hub back; so it does after the server
/// restarts (the room is persistent), with no bot restarted.
async fn the_hub_rejoins_its_room_after_it_is_recreated_and_after_a_server_restart(kind: Kind) {
    let mut net = network(kind);
    let room = muc::room_jid("ops");
    let mut u1 = user(&net.server, "u1").await;
    u1.join_room(&room, "alice").await;
    let cfg = alerting_hub(
        &net.server,
        "file",
        &format!("[[rooms]]\njid = \"{room}\"\n"),
    );
    let hub = InProcess::hub(&cfg);
    let in_room = |e: &Incoming| muc::joined(e, &room, muc::HUB_NICK).then_some(());
    u1.next_matching(WAIT, "the hub in the room", in_room).await;

    u1.destroy_room(&room).await;
    u1.clear();
    u1.join_room(&room, "alice").await;
    let recreated = Instant::now();
    u1.next_matching(
        Duration::from_secs(20),
        "the hub back in the new room",
        in_room,
    )
    .await;
    eprintln!("back in the recreated room after {:?}", recreated.elapsed());

    drop(u1);
    net.server.restart();
    let restarted = Instant::now();
    let mut u1 = user(&net.server, "u1").await;
    u1.join_room(&room, "alice").await;
    u1.next_matching(
        Duration::from_secs(60),
        "the hub back after the restart",
        in_room,
    )
    .await;
    eprintln!(
        "back in the room {:?} after the server restarted",
        restarted.elapsed()
    );
    hub.stop().await;
}

server_matrix!(
    #[tokio::test]
    ack_by_id_and_a_silence_from_the_ad_hoc_form
);
/// `ack 1` in chat from a hub user acks the alert for everyone on its route; the ad-hoc
/// `silence` form refuses a zero duration, naming the field, then sets a silence that `silences`
/// lists with who set it.
async fn ack_by_id_and_a_silence_from_the_ad_hoc_form(kind: Kind) {
    use jabmon_shared::adhoc::Command;
    use xmpp_parsers::data_forms::{DataForm, DataFormType, Field};

    let net = network(kind);
    let cfg = alerting_hub(
        &net.server,
        "file",
        &format!("{IDLE_RULE}users = [\"u1@localhost\"]\n"),
    );
    let hub = InProcess::hub(&cfg);
    let mut u1 = user_of_hub(&net.server, "u1").await;
    let (alert, _) = u1
        .next_matching(WAIT, "the alert", |e| hub_says(e, "idle-seen"))
        .await;
    assert!(alert.contains("#1"), "{alert}");
    tell_hub(&mut u1, "ack 1").await;
    let (acked, _) = u1
        .next_matching(WAIT, "the ack", |e| hub_says(e, "acked #1"))
        .await;
    assert!(acked.contains("u1@localhost"), "{acked}");

    let stage = |sessionid: Option<String>, fields: &[(&str, &str)]| -> minidom::Element {
        let form = (!fields.is_empty()).then(|| DataForm {
            type_: DataFormType::Submit,
            title: None,
            instructions: None,
            fields: fields
                .iter()
                .map(|(k, v)| Field::text_single(k, v))
                .collect(),
        });
        Command {
            node: "silence".into(),
            sessionid,
            action: Some(
                if form.is_some() {
                    "complete"
                } else {
                    "execute"
                }
                .into(),
            ),
            status: None,
            actions: None,
            notes: vec![],
            form,
        }
        .into()
    };
    let hub_jid = Jid::new("hub@localhost/hub").unwrap();
    let first = u1.iq(hub_jid.clone(), true, stage(None, &[])).await;
    let first = Command::try_from(first.unwrap().unwrap()).unwrap();
    assert_eq!(first.status.as_deref(), Some("executing"));
    let sessionid = first.sessionid.clone();
    let refused = u1
        .iq(
            hub_jid.clone(),
            true,
            stage(
                sessionid.clone(),
                &[("matcher", "web1.*"), ("duration", "0")],
            ),
        )
        .await;
    let Err(jabmon_shared::session::IqFailure::Error(e)) = refused else {
        panic!("a zero duration must be refused: {refused:?}");
    };
    let text = e.texts.values().next().cloned().unwrap_or_default();
    assert!(text.contains("For how long"), "{text}");
    let done = u1
        .iq(
            hub_jid,
            true,
            stage(
                sessionid,
                &[
                    ("matcher", "web1.*"),
                    ("duration", "1h"),
                    ("comment", "disk swap"),
                ],
            ),
        )
        .await;
    let done = Command::try_from(done.unwrap().unwrap()).unwrap();
    assert_eq!(done.status.as_deref(), Some("completed"));
    assert!(
        done.notes[0].text.contains("🔕 silence s1 on web1.*"),
        "{done:?}"
    );
    tell_hub(&mut u1, "silences").await;
    let (listed, _) = u1
        .next_matching(WAIT, "the silence listed", |e| hub_says(e, "s1 web1.*"))
        .await;
    assert!(listed.contains("by u1@localhost: disk swap"), "{listed}");
    eprintln!("{alert}\n{acked}\n{}\n{listed}", done.notes[0].text);
    hub.stop().await;
}

server_matrix!(
    #[tokio::test]
    the_hub_joins_a_password_protected_and_a_members_only_room
);
/// With the room's password in `[[rooms]]` the hub joins a password-protected room; made a
/// member, it joins a members-only room; a rule's alert reaches both.
async fn the_hub_joins_a_password_protected_and_a_members_only_room(kind: Kind) {
    let net = network(kind);
    let (locked, members) = (muc::room_jid("locked"), muc::room_jid("members"));
    let mut u1 = user(&net.server, "u1").await;
    u1.join_room(&locked, "alice").await;
    u1.reconfigure_room(
        &locked,
        &[
            ("muc#roomconfig_passwordprotectedroom", "1"),
            ("muc#roomconfig_roomsecret", "s3cret"),
        ],
    )
    .await;
    u1.join_room(&members, "alice").await;
    u1.reconfigure_room(&members, &[("muc#roomconfig_membersonly", "1")])
        .await;
    u1.add_member(&members, &BareJid::new(HUB).unwrap()).await;
    let cfg = alerting_hub(
        &net.server,
        "file",
        &format!(
            "[[rooms]]\njid = \"{locked}\"\npassword = \"s3cret\"\n[[rooms]]\njid = \"{members}\"\n{IDLE_RULE}rooms = [\"{locked}\", \"{members}\"]\n"
        ),
    );
    let hub = InProcess::hub(&cfg);
    for room in [&locked, &members] {
        let alert = u1
            .next_matching(WAIT, "the alert in the room", |e| {
                muc::hub_said(e, room, "idle-seen")
            })
            .await;
        eprintln!("{room}: {}", alert.body);
    }
    hub.stop().await;
}
