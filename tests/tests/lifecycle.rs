//! A collector's life as others see it, against each server: values from the first answer
//! after start; a planned stop (`stopped`) kept apart from a crash (`dead`) at the hub.
// Test code: an unwrap that fails is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use jabmon_shared::adhoc::Command;
use jabmon_shared::session::Incoming;
use jabmon_tests::bots::{collector_toml, hub_toml, InProcess, Process};
use jabmon_tests::client::WAIT;
use jabmon_tests::{server_matrix, Kind, Server, TestClient};
use xmpp_parsers::data_forms::DataForm;
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::presence::{Presence, Type as PresenceType};

fn web1() -> Jid {
    Jid::new("web1@localhost").unwrap()
}

fn full() -> Jid {
    Jid::new("web1@localhost/jabmon").unwrap()
}

/// The next live (not a server's delayed copy) presence of `web1` of type `kind`.
async fn presence_of(c: &mut TestClient, kind: PresenceType, what: &str) -> Presence {
    c.next_matching(WAIT, what, |e| match e {
        Incoming::Presence(p)
            if p.type_ == kind
                && p.from.as_ref().map(Jid::to_bare) == Some(web1().to_bare())
                && !p.payloads.iter().any(|x| x.is("delay", "urn:xmpp:delay")) =>
        {
            Some(p.clone())
        }
        _ => None,
    })
    .await
}

/// `var` → first value of every field but `FORM_TYPE`.
fn values(form: &DataForm) -> Vec<(String, Option<String>)> {
    form.fields
        .iter()
        .filter(|f| f.var.as_deref() != Some("FORM_TYPE"))
        .map(|f| (f.var.clone().unwrap_or_default(), f.values.first().cloned()))
        .collect()
}

server_matrix!(
    #[tokio::test]
    first_answers_after_start_carry_every_value
);
async fn first_answers_after_start_carry_every_value(kind: Kind) {
    let server = Server::start(kind);
    server.register("web1", "pw-web1");
    let alice = server.register("alice", "pw-alice");
    // Samples far apart: only the reading at start and the one before going online count.
    let cfg = collector_toml(
        &server,
        "web1",
        "pw-web1",
        "[access]\nsubscribers = [\"alice@localhost\"]\n\
         [collector]\nhost = \"web1\"\nsample_interval = \"60s\"\npublish_interval = \"60s\"\n",
    );
    let bot = InProcess::collector(&cfg);
    let mut c = TestClient::connect(&server, &alice, "pw-alice").await;
    c.available().await;
    c.session.send(Presence::subscribe().with_to(web1())).await;
    presence_of(&mut c, PresenceType::Subscribe, "subscribe back").await;
    c.session.send(Presence::subscribed().with_to(web1())).await;
    presence_of(&mut c, PresenceType::None, "first run online").await;
    bot.stop().await;
    presence_of(&mut c, PresenceType::Unavailable, "first run gone").await;
    c.clear();

    let bot = InProcess::collector(&cfg);
    let online = presence_of(&mut c, PresenceType::None, "second run online").await;
    let seen = Instant::now();
    assert_ne!(
        online.statuses.values().next().map(String::as_str),
        Some("Starting up")
    );
    let q = DiscoInfoQuery {
        node: Some("cpu".into()),
    };
    let rx = c.session.request(Some(full()), false, q.into()).await;
    let cmd: minidom::Element = Command {
        node: "status".into(),
        sessionid: None,
        action: None,
        status: None,
        actions: None,
        notes: vec![],
        form: None,
    }
    .into();
    let status_rx = c.session.request(Some(full()), true, cmd).await;
    assert!(
        seen.elapsed() < Duration::from_millis(100),
        "both asked within 100 ms of the presence"
    );
    let cpu = DiscoInfoResult::try_from(c.wait(rx).await.unwrap().unwrap()).unwrap();
    let status = Command::try_from(c.wait(status_rx).await.unwrap().unwrap()).unwrap();

    let cpu_values = values(&cpu.extensions[0]);
    assert!(
        cpu_values
            .iter()
            .any(|(v, x)| v == "cpu.cpu.idle" && x.is_some()),
        "cpu.cpu.idle in {cpu_values:?}"
    );
    let status_values = values(status.form.as_ref().unwrap());
    assert!(status_values.iter().any(|(v, _)| v == "cpu.cpu.idle"));
    let empty: Vec<_> = status_values.iter().filter(|(_, x)| x.is_none()).collect();
    assert!(empty.is_empty(), "fields without a value: {empty:?}");
    bot.stop().await;
}

/// The hub's view of web1's status (its disco#info node for the collector).
async fn status_at_hub(c: &mut TestClient) -> Option<String> {
    let q = DiscoInfoQuery {
        node: Some("web1@localhost".into()),
    };
    let el = c
        .iq(Jid::new("hub@localhost/hub").unwrap(), false, q.into())
        .await
        .ok()??;
    let info = DiscoInfoResult::try_from(el).ok()?;
    info.extensions
        .iter()
        .flat_map(|f| &f.fields)
        .find(|f| f.var.as_deref() == Some("status"))?
        .values
        .first()
        .cloned()
}

/// Asks the hub until web1's status is one of `want`, for at most `limit`.
async fn until_status(c: &mut TestClient, want: &[&str], limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let now = status_at_hub(c).await;
        if let Some(s) = now.filter(|s| want.contains(&s.as_str())) {
            return s;
        }
        assert!(Instant::now() < deadline, "web1 never {want:?} at the hub");
        tokio::time::sleep(Duration::from_millis(100)).await; // polling interval
    }
}

const UP: &[&str] = &["alive", "busy", "critical"];

server_matrix!(
    #[tokio::test]
    a_planned_stop_is_stopped_a_kill_is_dead
);
async fn a_planned_stop_is_stopped_a_kill_is_dead(kind: Kind) {
    let server = Server::start(kind);
    for (u, p) in [("hub", "pw-hub"), ("web1", "pw-web1"), ("u1", "pw-u1")] {
        server.register(u, p);
    }
    let collector_cfg = collector_toml(
        &server,
        "web1",
        "pw-web1",
        "[access]\nsubscribers = [\"u1@localhost\"]\n[collector]\nhost = \"web1\"\n\
         hub = \"hub@localhost\"\nsample_interval = \"500ms\"\npublish_interval = \"1s\"\n",
    );
    let hub_cfg = hub_toml(
        &server,
        "[access]\ncollectors = [\"web1@localhost\"]\nusers = [\"u1@localhost\"]\n[hub]\nstorage = \"pep\"\n",
    );
    let hub = InProcess::hub(&hub_cfg);
    let mut collector = Process::start("jabmon-collector", &collector_cfg);
    let mut u1 = TestClient::connect(&server, "u1@localhost", "pw-u1").await;
    u1.available().await;
    until_status(&mut u1, UP, Duration::from_secs(15)).await;

    collector.signal("TERM");
    let stopping = Instant::now();
    until_status(&mut u1, &["stopped"], Duration::from_secs(10)).await;
    assert!(stopping.elapsed() < Duration::from_secs(10));
    assert!(collector.child.wait().unwrap().success());
    // Silent for more than four publish intervals (the silence rule's three included): still
    // `stopped`, never `dead`, at every look.
    let silent = Instant::now();
    while silent.elapsed() < Duration::from_secs(5) {
        assert_eq!(status_at_hub(&mut u1).await.as_deref(), Some("stopped"));
        tokio::time::sleep(Duration::from_millis(250)).await; // polling interval
    }

    drop(collector);
    collector = Process::start("jabmon-collector", &collector_cfg);
    until_status(&mut u1, UP, Duration::from_secs(15)).await;

    collector.signal("KILL");
    until_status(&mut u1, &["dead"], Duration::from_secs(30)).await;
    hub.stop().await;
}
