//! End-to-end hub measurement through a private Prosody (or ejabberd with `--server ejabberd`): N collectors (in this process)
//! publish stats every 100 ms, the hub (a release process) turns every stat into an event,
//! one user registers `SELECT id FROM ^.*$;` and receives them all. Reports events/s reaching
//! the user, sample→user latency (event timestamp to arrival) p50/p99, and the hub's RSS and
//! CPU from /proc.
//!
//!     cargo build --release --bins && target/release/jabmon-hub-load --collectors 4 --seconds 60
// Test tooling, not yet clean under the workspace `unwrap_used` lint.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use jabmon_shared::session::Incoming;
use jabmon_tests::bots::{collector_toml, hub_toml, InProcess, Process};
use jabmon_tests::{Kind, Server, TestClient};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Message, MessageType};

fn arg(name: &str, default: u64) -> u64 {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn proc_figures(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rfind(')').map(|i| &stat[i + 2..]).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (rss, ticks)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = arg("--collectors", 4);
    let seconds = arg("--seconds", 60);
    let server = Server::start(Kind::from_args());
    server.register("hub", "pw-hub");
    server.register("user", "pw-user");
    let hub_cfg = hub_toml(&server, &format!(
        "[access]\ncollectors = [\"@localhost\"]\nusers = [\"user@localhost\"]\n[hub]\nstorage = \"file\"\nstate_path = \"{}\"\n\
         max_events_per_second_per_user = 10000\nmax_queued_events_per_user = 100000\n[log]\nlevel = \"warn\"\n",
        server.scratch().join("hub.json").display()));
    let hub = Process::start("jabmon-hub", &hub_cfg);
    let mut bots = Vec::new();
    for i in 0..n {
        let name = format!("c{i}");
        server.register(&name, "pw");
        let cfg = collector_toml(&server, &name, "pw", &format!(
            "[access]\nsubscribers = [\"@localhost\"]\n[collector]\nhost = \"{name}\"\nhub = \"hub@localhost\"\nsample_interval = \"100ms\"\npublish_interval = \"100ms\"\n[log]\nlevel = \"warn\"\n"));
        bots.push(InProcess::collector(&cfg));
    }
    let mut user = TestClient::connect(&server, "user@localhost", "pw-user").await;
    user.available().await;
    let mut m = Message::new(Some(Jid::new("hub@localhost").unwrap()));
    m.type_ = MessageType::Chat;
    m.bodies
        .insert(Default::default(), "SELECT id FROM ^.*$;".into());
    user.session.send(m).await;
    // Warm up until events flow from every collector.
    let warm = Instant::now();
    let mut seen = std::collections::HashSet::new();
    while seen.len() < n as usize && warm.elapsed() < Duration::from_secs(30) {
        if let Ok(Some(Incoming::Message(m))) =
            tokio::time::timeout(Duration::from_secs(1), user.session.next()).await
        {
            if let Some(v) = m
                .bodies
                .values()
                .next()
                .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
            {
                if let Some(name) = v["results"]["event"]["name"].as_str() {
                    seen.insert(name.split('.').next().unwrap_or("").to_string());
                }
            }
        }
    }
    let pid = hub.child.id();
    let (_, t0) = proc_figures(pid);
    let start = Instant::now();
    let mut latencies = Vec::new();
    let mut rss_max = 0;
    let mut last_rss = Instant::now();
    while start.elapsed() < Duration::from_secs(seconds) {
        match tokio::time::timeout(Duration::from_secs(1), user.session.next()).await {
            Ok(Some(Incoming::Message(m))) => {
                let Some(v) = m
                    .bodies
                    .values()
                    .next()
                    .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
                else {
                    continue;
                };
                if let Some(ts) = v["results"]["event"]["timestamp"].as_f64() {
                    let now = jabmon_shared::unix_now();
                    latencies.push(now - ts);
                }
            }
            Ok(Some(Incoming::Iq(req))) => user.session.reply_unavailable(&req).await,
            _ => {}
        }
        if last_rss.elapsed() >= Duration::from_secs(1) {
            rss_max = rss_max.max(proc_figures(pid).0);
            last_rss = Instant::now();
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let (rss, t1) = proc_figures(pid);
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
            * 1000.0
    };
    println!(
        "{n} collectors publishing every 100 ms, one user receiving every event, {wall:.0} s:"
    );
    println!(
        "  events delivered  {} ({:.0}/s)",
        latencies.len(),
        latencies.len() as f64 / wall
    );
    println!("  sample→user latency  p50 {:.1} ms  p99 {:.1} ms  (includes the collector's sample→publish wait, ≤ 100 ms)", pct(0.5), pct(0.99));
    println!(
        "  hub RSS  {:.1} MiB (max {:.1} MiB)   hub CPU  {:.1} % of one core",
        rss as f64 / 1024.0,
        rss_max as f64 / 1024.0,
        (t1 - t0) as f64 / 100.0 / wall * 100.0
    );
    for b in bots {
        b.stop().await;
    }
    drop(hub);
}
