//! The demo: a private Prosody (or ejabberd with `--server ejabberd`), a hub and a collector, and a user who queries the hub and
//! watches the collector — what any Jabber client would see — and a team room,
//! `ops@conference.localhost`, where the hub posts a rule's alert. Runs until Ctrl-C (or
//! `--seconds N`).
// Test tooling, not yet clean under the workspace `unwrap_used` lint.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use jabmon_shared::session::Incoming;
use jabmon_tests::bots::{collector_toml, hub_toml, InProcess};
use jabmon_tests::{muc, Kind, Server, TestClient};
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult};
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::presence::{Presence, Type as PresenceType};

const QUERIES: [&str; 2] = [
    r"SELECT id FROM ^.*\.cpu\.cpu\.idle$;",
    r"SELECT window 5 (mean) | round FROM ^web1\.memory\.percent\.used$;",
];

/// `[alerting]`, the room and one rule that fires on any host and stays open: memory in use
/// above 1 %.
fn alerting(room: &BareJid) -> String {
    format!(
        "[alerting]\ngroup_wait = \"0s\"\ncollector_users = [\"ops@localhost\"]\ncollector_rooms = [\"{room}\"]\n\
         [[rooms]]\njid = \"{room}\"\n\
         [[alerts]]\nname = \"memory-in-use\"\nquery = 'SELECT [> 1] FROM ^web1\\.memory\\.percent\\.used$'\nunit = \"%\"\nrooms = [\"{room}\"]\nusers = [\"ops@localhost\"]\n"
    )
}

fn print_presence(p: &Presence) {
    let show = p
        .show
        .as_ref()
        .map(|s| format!("{s:?}").to_lowercase())
        .unwrap_or_else(|| "available".into());
    let show = if p.type_ == PresenceType::Unavailable {
        "unavailable".to_string()
    } else {
        show
    };
    let status = p
        .statuses
        .values()
        .next()
        .map(|s| s.to_string())
        .unwrap_or_default();
    println!(
        "presence  {:<22} {show:<11} {status}",
        p.from.as_ref().map(|j| j.to_string()).unwrap_or_default()
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let seconds: Option<u64> = std::env::args()
        .skip_while(|a| a != "--seconds")
        .nth(1)
        .and_then(|s| s.parse().ok());
    let server = Server::start(Kind::from_args());
    for (u, p) in [
        ("hub", "pw-hub"),
        ("web1", "demo-web1"),
        ("ops", "demo-ops"),
    ] {
        server.register(u, p);
    }
    println!("{} running privately on {} (domain localhost); accounts hub, web1, ops (password demo-ops)", server.kind().name(), server.addr());
    // The room exists before the hub comes: it never creates one.
    let mut ops = TestClient::connect(&server, "ops@localhost", "demo-ops").await;
    ops.available().await;
    let room = muc::room_jid("ops");
    ops.join_room(&room, "ops-demo").await;
    let hub_cfg = hub_toml(&server, &format!("[access]\ncollectors = [\"@localhost\"]\nusers = [\"ops@localhost\"]\n[hub]\nstorage = \"pep\"\n{}", alerting(&room)));
    let hub = InProcess::hub(&hub_cfg);
    let cfg = collector_toml(&server, "web1", "demo-web1",
        "[access]\nsubscribers = [\"ops@localhost\"]\nadmins = [\"ops@localhost\"]\n[collector]\nhost = \"web1\"\nhub = \"hub@localhost\"\npublish_interval = \"2s\"\n\
         [[commands.shell]]\nname = \"uptime\"\nargv = [\"uptime\"]\n[[commands.shell]]\nname = \"disk-usage\"\nargv = [\"df\", \"-h\"]\n");
    let bot = InProcess::collector(&cfg);
    println!("hub hub@localhost/hub and collector web1@localhost/jabmon started; room {room}\n");

    let collector = Jid::new("web1@localhost").unwrap();
    ops.session
        .send(Presence::subscribe().with_to(collector.clone()))
        .await;
    for q in QUERIES {
        let mut m = Message::new(Some(Jid::new("hub@localhost").unwrap()));
        m.type_ = MessageType::Chat;
        m.bodies.insert(Default::default(), q.to_string());
        ops.session.send(m).await;
        println!("ops → hub   {q}");
    }
    let full = Jid::new("web1@localhost/jabmon").unwrap();
    let started = tokio::time::Instant::now();
    let mut refresh = tokio::time::interval(Duration::from_secs(15));
    let stop = jabmon_shared::shutdown_signal();
    tokio::pin!(stop);
    loop {
        if seconds.is_some_and(|s| started.elapsed() >= Duration::from_secs(s)) {
            break;
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = refresh.tick() => {
                let q = DiscoInfoQuery { node: Some("load".into()) };
                if let Ok(Some(el)) = ops.iq(full.clone(), false, q.into()).await {
                    if let Ok(info) = DiscoInfoResult::try_from(el) {
                        let fields: Vec<String> = info.extensions.iter().flat_map(|f| &f.fields)
                            .filter(|f| f.var.as_deref().is_some_and(|v| v != "FORM_TYPE" && !v.contains('#')))
                            .map(|f| format!("{}={}", f.var.as_deref().unwrap_or(""), f.values.first().map(String::as_str).unwrap_or("")))
                            .collect();
                        println!("disco     web1 node=load  {}", fields.join("  "));
                    }
                }
            }
            event = tokio::time::timeout(Duration::from_secs(1), ops.session.next()) => match event {
                Ok(Some(Incoming::Presence(p))) => {
                    if p.type_ == PresenceType::Subscribe {
                        ops.session.send(Presence::subscribed().with_to(collector.clone())).await;
                    }
                    print_presence(&p);
                }
                Ok(Some(e @ Incoming::Message(_))) if muc::said(&e, &room).is_some() => {
                    let said = muc::said(&e, &room).unwrap();
                    println!("{room}/{}  {}", said.nick, said.body);
                }
                Ok(Some(Incoming::Message(m))) => {
                    if let Some(body) = m.bodies.values().next() {
                        let from = m.from.as_ref().map(|j| j.to_bare().to_string()).unwrap_or_default();
                        println!("{from} → ops  {body}");
                    }
                }
                Ok(Some(Incoming::Iq(req))) => ops.session.reply_unavailable(&req).await,
                Ok(Some(_)) | Err(_) => {}
                Ok(None) => break,
            },
        }
    }
    println!("\nstopping…");
    bot.stop().await;
    hub.stop().await;
}
