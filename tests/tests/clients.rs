//! What people see in the clients they run: a service browser that shows only item names
//! (Gajim 1.7) sees each group's metrics with values and can open the hub's collector items;
//! the hub's commands answer forms without `<reported/>`; the busy status has no ASCII
//! apostrophe. Against a real server, with a collector and a hub in-process.
// Test code: an unwrap that fails is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use jabmon_shared::adhoc::Command;
use jabmon_shared::session::Incoming;
use jabmon_tests::bots::{collector_toml, hub_toml, InProcess};
use jabmon_tests::chat::{collector_status, query, user_of_hub, HUB};
use jabmon_tests::client::WAIT;
use jabmon_tests::{server_matrix, Kind, Server, TestClient};
use minidom::Element;
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery, DiscoItemsResult};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::presence::{Presence, Type as PresenceType};

const COLLECTOR: &str = "web1@localhost/jabmon";
const HUB_FULL: &str = "hub@localhost/hub";

async fn items(c: &mut TestClient, to: &Jid, node: Option<&str>) -> DiscoItemsResult {
    let q = DiscoItemsQuery {
        node: node.map(str::to_string),
        rsm: None,
    };
    let el = c.iq(to.clone(), false, q.into()).await.unwrap().unwrap();
    DiscoItemsResult::try_from(el).unwrap()
}

async fn info(c: &mut TestClient, to: &Jid, node: &str) -> DiscoInfoResult {
    let q = DiscoInfoQuery {
        node: Some(node.to_string()),
    };
    let el = c.iq(to.clone(), false, q.into()).await.unwrap().unwrap();
    DiscoInfoResult::try_from(el).unwrap()
}

/// Subscribes `c` to the collector and approves it back.
async fn subscribe_to_collector(c: &mut TestClient) {
    let bare = Jid::new("web1@localhost").unwrap();
    c.session
        .send(Presence::subscribe().with_to(bare.clone()))
        .await;
    c.next_matching(WAIT, "the collector's subscribe back", |e| match e {
        Incoming::Presence(p)
            if p.type_ == PresenceType::Subscribe
                && p.from.as_ref().map(|f| f.to_bare().to_string()).as_deref()
                    == Some("web1@localhost") =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
    c.session.send(Presence::subscribed().with_to(bare)).await;
}

/// The names of the items, once `ready` holds for them (values need the second sample).
async fn names_when(
    c: &mut TestClient,
    to: &Jid,
    node: &str,
    ready: impl Fn(&[String]) -> bool,
) -> (DiscoItemsResult, Vec<String>) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = items(c, to, Some(node)).await;
        let names: Vec<String> = r.items.iter().filter_map(|i| i.name.clone()).collect();
        if ready(&names) {
            return (r, names);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{node}: never ready, last {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval, not a wait-long-enough
    }
}

/// The `<x/>` of a completed hub command.
async fn run_hub_command(c: &mut TestClient, node: &str) -> (Command, Element) {
    let request: Element = Command {
        node: node.into(),
        sessionid: None,
        action: Some("execute".into()),
        status: None,
        actions: None,
        notes: vec![],
        form: None,
    }
    .into();
    let el = c
        .iq(Jid::new(HUB_FULL).unwrap(), true, request)
        .await
        .unwrap()
        .unwrap();
    let x = el.get_child("x", "jabber:x:data").unwrap().clone();
    (Command::try_from(el).unwrap(), x)
}

fn field<'a>(x: &'a Element, var: &str) -> Option<&'a Element> {
    x.children().find(|c| c.attr("var") == Some(var))
}

fn values(f: &Element) -> Vec<String> {
    f.children().map(Element::text).collect()
}

server_matrix!(
    #[tokio::test]
    a_service_browser_sees_values_and_opens_the_hubs_collectors
);
async fn a_service_browser_sees_values_and_opens_the_hubs_collectors(kind: Kind) {
    let server = Server::start(kind);
    for (u, p) in [("hub", "pw-hub"), ("web1", "pw-web1"), ("u1", "pw-u1")] {
        server.register(u, p);
    }
    let state = server.scratch().join("hub.json");
    let hub = InProcess::hub(&hub_toml(
        &server,
        &format!("[access]\ncollectors = [\"web1@localhost\"]\nusers = [\"u1@localhost\"]\n[hub]\nstorage = \"file\"\nstate_path = \"{}\"\n", state.display()),
    ));
    let cfg = collector_toml(
        &server,
        "web1",
        "pw-web1",
        &format!("[access]\nsubscribers = [\"u1@localhost\"]\n[collector]\nhost = \"web1\"\nhub = \"{HUB}\"\nsample_interval = \"250ms\"\npublish_interval = \"1s\"\n"),
    );
    let bot = InProcess::collector(&cfg);
    let mut u1 = user_of_hub(&server, "u1").await;
    subscribe_to_collector(&mut u1).await;
    let collector = Jid::new(COLLECTOR).unwrap();

    // The collector's group nodes list their metrics, each named with its value.
    let (cpu, names) = names_when(&mut u1, &collector, "cpu", |n| {
        n.iter().any(|n| n.starts_with("CPU idle: "))
    })
    .await;
    let idle = names.iter().find(|n| n.starts_with("CPU idle: ")).unwrap();
    let pct: f64 = idle
        .strip_prefix("CPU idle: ")
        .and_then(|v| v.strip_suffix(" %"))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{idle}"));
    assert!((0.0..=100.0).contains(&pct), "{idle}");
    let item = cpu
        .items
        .iter()
        .find(|i| i.node.as_deref() == Some("cpu/cpu.cpu.idle"))
        .unwrap();
    assert_eq!(item.jid.to_string(), COLLECTOR);
    let (_, memory) = names_when(&mut u1, &collector, "memory", |n| !n.is_empty()).await;
    let available = memory
        .iter()
        .find(|n| n.starts_with("Memory available: "))
        .unwrap();
    assert!(
        available.ends_with("iB") || available.ends_with(" B"),
        "bytes in binary units: {available}"
    );
    // A metric's own node answers, named like its item.
    let leaf = info(&mut u1, &collector, "cpu/cpu.cpu.idle").await;
    assert!(leaf.identities[0]
        .name
        .as_deref()
        .unwrap()
        .starts_with("CPU idle: "));

    // The hub: each collector item points at the hub itself, and opens. (Up is alive, or busy
    // on a loaded test machine.)
    let deadline = tokio::time::Instant::now() + WAIT;
    let is_up = |s: &str| ["alive", "busy", "critical"].contains(&s);
    while !collector_status(&mut u1, "web1@localhost")
        .await
        .is_some_and(|s| is_up(&s))
    {
        assert!(tokio::time::Instant::now() < deadline, "never up");
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval
    }
    let hub_jid = Jid::new(HUB_FULL).unwrap();
    let root = items(&mut u1, &hub_jid, None).await;
    assert_eq!(root.items.len(), 1);
    let web1 = &root.items[0];
    assert_eq!(
        (web1.jid.to_string().as_str(), web1.node.as_deref()),
        (HUB_FULL, Some("web1@localhost"))
    );
    assert_eq!(web1.name.as_deref(), Some("web1"));
    let at_item = info(&mut u1, &web1.jid, "web1@localhost").await;
    let status = jabmon_tests::chat::field(&at_item, "status").unwrap();
    assert!(is_up(&status), "{status}");
    let (opened, names) = names_when(&mut u1, &hub_jid, "web1@localhost", |n| {
        n.iter().any(|n| n.starts_with("web1@localhost/jabmon"))
    })
    .await;
    assert!(
        names
            .iter()
            .any(|n| n.strip_prefix("Status: ").is_some_and(is_up)),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.starts_with("Memory: ")), "{names:?}");
    let to_collector = opened
        .items
        .iter()
        .find(|i| i.jid.to_string() == COLLECTOR)
        .unwrap();
    assert_eq!(to_collector.node, None, "the collector's own root");

    // `collectors` and `queries`: completed, a text table and one field per row, no
    // `<reported/>` or `<item/>`.
    let (cmd, x) = run_hub_command(&mut u1, "collectors").await;
    assert_eq!(cmd.status.as_deref(), Some("completed"));
    assert!(x
        .children()
        .all(|c| c.name() != "reported" && c.name() != "item"));
    let table = field(&x, "table").unwrap();
    assert_eq!(table.attr("type"), Some("text-multi"));
    assert!(
        values(table).iter().any(|l| l.starts_with("web1 ")),
        "{:?}",
        values(table)
    );
    let row = field(&x, "web1@localhost").unwrap();
    assert!(is_up(&values(row)[0]), "{:?}", values(row));
    assert!(row.attr("label").unwrap().starts_with("web1"));

    let r = query(&mut u1, r"SELECT id FROM ^web1\.load\.load\.shortterm$;").await;
    let key = r["results"]["key"].as_str().unwrap().to_string();
    let (cmd, x) = run_hub_command(&mut u1, "queries").await;
    assert_eq!(cmd.notes[0].text, "You have 1 registered queries.");
    assert!(x
        .children()
        .all(|c| c.name() != "reported" && c.name() != "item"));
    let row = field(&x, &key).unwrap();
    assert_eq!(row.attr("label"), Some(&key[..8]));
    assert_eq!(
        values(row),
        [r"SELECT id FROM ^web1\.load\.load\.shortterm$;"]
    );
    let lines = values(field(&x, "table").unwrap());
    assert!(lines[1].starts_with(&key[..8]), "{lines:?}");

    bot.stop().await;
    hub.stop().await;
}

/// Sends `body` to the hub as chat and returns the first message body from the hub that
/// `wanted` accepts.
async fn say(c: &mut TestClient, body: &str, wanted: impl Fn(&str) -> bool) -> String {
    let mut m = xmpp_parsers::message::Message::new(Some(Jid::new(HUB).unwrap()));
    m.type_ = xmpp_parsers::message::MessageType::Chat;
    m.bodies.insert(Default::default(), body.to_string());
    c.session.send(m).await;
    next_text(c, wanted).await
}

/// The next message body from the hub that `wanted` accepts.
async fn next_text(c: &mut TestClient, wanted: impl Fn(&str) -> bool) -> String {
    c.next_matching(WAIT, "a message from the hub", |e| match e {
        Incoming::Message(m)
            if m.from.as_ref().map(|f| f.to_bare().to_string()).as_deref() == Some(HUB) =>
        {
            m.bodies.values().next().filter(|b| wanted(b)).cloned()
        }
        _ => None,
    })
    .await
}

/// `web1.cpu.cpu.idle 97.5 @ 12:00:03`
fn is_text_event(body: &str) -> bool {
    let Some((value, time)) = body
        .strip_prefix("web1.cpu.cpu.idle ")
        .and_then(|r| r.split_once(" @ "))
    else {
        return false;
    };
    value.parse::<f64>().is_ok()
        && time.len() == 8
        && time
            .split(':')
            .all(|p| p.len() == 2 && p.parse::<u8>().is_ok())
}

server_matrix!(
    #[tokio::test]
    chat_with_the_hub_for_people_and_programs
);
async fn chat_with_the_hub_for_people_and_programs(kind: Kind) {
    let server = Server::start(kind);
    for (u, p) in [("hub", "pw-hub"), ("web1", "pw-web1"), ("u1", "pw-u1")] {
        server.register(u, p);
    }
    let hub_cfg = hub_toml(
        &server,
        "[access]\ncollectors = [\"web1@localhost\"]\nusers = [\"u1@localhost\"]\n[hub]\nstorage = \"pep\"\n",
    );
    let hub = InProcess::hub(&hub_cfg);
    let cfg = collector_toml(
        &server,
        "web1",
        "pw-web1",
        &format!("[collector]\nhost = \"web1\"\nhub = \"{HUB}\"\nsample_interval = \"250ms\"\npublish_interval = \"1s\"\n"),
    );
    let bot = InProcess::collector(&cfg);
    let mut u1 = user_of_hub(&server, "u1").await;

    // help: a usage text, not a parse error.
    let help = say(&mut u1, "help", |b| !b.starts_with('{')).await;
    assert!(
        help.starts_with("jabmon hub: send one command per message"),
        "{help}"
    );
    assert!(help.contains("FORMAT text"), "{help}");

    // Programs: JSON as before; a unique prefix of the key deletes, the full key comes back.
    let r = query(&mut u1, r"SELECT id FROM ^web1\.cpu\.cpu\.idle$;").await;
    let key = r["results"]["key"].as_str().unwrap().to_string();
    let r = query(&mut u1, r"SELECT id FROM ^web1\.load\.load\.shortterm$;").await;
    let key2 = r["results"]["key"].as_str().unwrap().to_string();
    let del = query(
        &mut u1,
        &format!("DELETE FROM leela.xmpp WHERE key={};", &key2[..8]),
    )
    .await;
    assert_eq!(del["status"], 200, "{del}");
    assert_eq!(del["results"]["key"], key2.as_str());
    let list = query(&mut u1, "SELECT * FROM leela.xmpp;").await;
    assert_eq!(list["results"].as_array().unwrap().len(), 1, "{list}");

    // People: FORMAT text makes events one short line, and survives a hub restart.
    let ok = say(&mut u1, "FORMAT text;", |b| {
        b.starts_with("Events now arrive")
    })
    .await;
    assert!(ok.contains("FORMAT json"), "{ok}");
    let line = next_text(&mut u1, is_text_event).await;
    assert!(!line.contains(&key[..8]), "no key in the line: {line}");
    let listed = say(&mut u1, "select * from leela.xmpp", |b| {
        b.starts_with("You have")
    })
    .await;
    assert_eq!(
        listed,
        format!(
            "You have 1 queries:\n{}  SELECT id FROM ^web1\\.cpu\\.cpu\\.idle$;",
            &key[..8]
        )
    );

    hub.stop().await;
    u1.clear();
    let hub = InProcess::hub(&hub_cfg);
    jabmon_tests::chat::hub_online(&mut u1).await;
    next_text(&mut u1, is_text_event).await;

    // Back to JSON: the reply and the events are Leela's again.
    let r = query(&mut u1, "FORMAT json;").await;
    assert_eq!(r["results"]["format"], "json", "{r}");
    jabmon_tests::chat::next_event(&mut u1, &key, WAIT).await;

    bot.stop().await;
    hub.stop().await;
}
