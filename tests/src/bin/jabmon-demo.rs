//! The demo: a private Prosody, a collector, and a client that subscribes to it and prints
//! what any Jabber client would see — its presence and its disco tree with live values.
//! Runs until Ctrl-C (or `--seconds N`).

use std::time::Duration;

use jabmon_shared::session::Incoming;
use jabmon_tests::bots::{collector_toml, InProcess};
use jabmon_tests::client::WAIT;
use jabmon_tests::{Prosody, TestClient};
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::presence::{Presence, Type as PresenceType};

fn print_presence(p: &Presence) {
    let show = p.show.as_ref().map(|s| format!("{s:?}").to_lowercase()).unwrap_or_else(|| "available".into());
    let show = if p.type_ == PresenceType::Unavailable { "unavailable".to_string() } else { show };
    let status = p.statuses.values().next().map(|s| s.to_string()).unwrap_or_default();
    println!("presence  {:<22} {show:<11} {status}", p.from.as_ref().map(|j| j.to_string()).unwrap_or_default());
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let seconds: Option<u64> = std::env::args()
        .skip_while(|a| a != "--seconds")
        .nth(1)
        .and_then(|s| s.parse().ok());
    let server = Prosody::start();
    server.register("web1", "demo-web1");
    server.register("ops", "demo-ops");
    println!("Prosody 0.12 running privately on {} (domain localhost)", server.addr());
    let cfg = collector_toml(&server, "web1", "demo-web1",
        "[access]\nsubscribers = [\"ops@localhost\"]\nadmins = [\"ops@localhost\"]\n[collector]\nhost = \"web1\"\n\
         [[commands.shell]]\nname = \"uptime\"\nargv = [\"uptime\"]\n[[commands.shell]]\nname = \"disk-usage\"\nargv = [\"df\", \"-h\"]\n");
    println!("collector web1@localhost/jabmon started with {}", cfg.display());
    let bot = InProcess::collector(&cfg);

    let mut ops = TestClient::connect(&server, "ops@localhost", "demo-ops").await;
    ops.available().await;
    let collector = Jid::new("web1@localhost").unwrap();
    ops.session.send(Presence::subscribe().with_to(collector.clone())).await;
    println!("ops@localhost subscribed to web1@localhost; what a client sees:\n");

    let full = Jid::new("web1@localhost/jabmon").unwrap();
    let started = tokio::time::Instant::now();
    let mut refresh = tokio::time::interval(Duration::from_secs(3));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        if seconds.is_some_and(|s| started.elapsed() >= Duration::from_secs(s)) {
            break;
        }
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = refresh.tick() => {
                for group in ["cpu", "load", "memory"] {
                    let q = DiscoInfoQuery { node: Some(group.into()) };
                    let Ok(Some(el)) = ops.iq(full.clone(), false, q.into()).await else { continue };
                    let Ok(info) = DiscoInfoResult::try_from(el) else { continue };
                    let fields: Vec<String> = info.extensions.iter().flat_map(|f| &f.fields)
                        .filter(|f| f.var.as_deref().is_some_and(|v| v != "FORM_TYPE" && !v.contains('#') && !v.starts_with("cpu-")))
                        .map(|f| format!("{}={}", f.var.as_deref().unwrap_or(""), f.values.first().map(String::as_str).unwrap_or("")))
                        .collect();
                    println!("disco     node={group:<7} {}", fields.join("  "));
                }
            }
            event = tokio::time::timeout(WAIT, ops.session.next()) => match event {
                Ok(Some(Incoming::Presence(p))) => {
                    if p.type_ == PresenceType::Subscribe {
                        ops.session.send(Presence::subscribed().with_to(collector.clone())).await;
                    }
                    print_presence(&p);
                }
                Ok(Some(Incoming::Iq(req))) => ops.session.reply_unavailable(&req).await,
                Ok(Some(_)) | Err(_) => {}
                Ok(None) => break,
            },
        }
    }
    println!("\nstopping…");
    bot.stop().await;
}
