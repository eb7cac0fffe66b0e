//! Measures a bot's footprint against a private Prosody (or ejabberd with `--server ejabberd`): RSS (VmRSS, sampled every second)
//! and CPU (utime + stime over the whole run), the way docs/performance.md reports them.
//!
//!     cargo build --release --bins && target/release/jabmon-footprint --seconds 300 [--tls]
//!
//! `BOTS_BIN_DIR=target/small` measures the collector built with the `small` profile.
// Test tooling, not yet clean under the workspace `unwrap_used` lint.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use jabmon_tests::bots::{collector_toml, Process};
use jabmon_tests::client::WAIT;
use jabmon_tests::{Kind, Server, TestClient};

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Waits until the collector is online and has sampled: a subscriber sees its presence, which
/// it sends once the session is up, carrying the first sample's summary (`load …`). The
/// subscriber then leaves, so that the measurement sees the collector alone.
fn online(server: &Server) {
    use jabmon_shared::session::Incoming;
    use xmpp_parsers::presence::{Presence, Type};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let mut watcher = TestClient::connect(server, "watcher@localhost", "pw-watcher").await;
        let collector = xmpp_parsers::jid::Jid::new("web1@localhost").unwrap();
        watcher.available().await;
        watcher
            .session
            .send(Presence::subscribe().with_to(collector.clone()))
            .await;
        watcher
            .next_matching(WAIT, "the collector's subscription request", |e| {
                matches!(e, Incoming::Presence(p) if p.type_ == Type::Subscribe).then_some(())
            })
            .await;
        watcher
            .session
            .send(Presence::subscribed().with_to(collector))
            .await;
        watcher
            .next_matching(
                Duration::from_secs(30),
                "the collector online",
                |e| match e {
                    Incoming::Presence(p)
                        if p.type_ == Type::None
                            && p.statuses.values().any(|s| s.contains("load ")) =>
                    {
                        Some(())
                    }
                    _ => None,
                },
            )
            .await;
        watcher.session.close(None, Duration::from_secs(2)).await;
    });
}

fn main() {
    let seconds: u64 = arg("--seconds").and_then(|s| s.parse().ok()).unwrap_or(300);
    let interval = arg("--sample-interval").unwrap_or_else(|| "1s".into());
    let server = Server::start(Kind::from_args());
    server.register("web1", "pw");
    server.register("watcher", "pw-watcher");
    let cfg = collector_toml(&server, "web1", "pw",
        &format!("[access]\nsubscribers = [\"@localhost\"]\n[collector]\nsample_interval = \"{interval}\"\n[log]\nlevel = \"warn\"\n"));
    // `--tls`: STARTTLS with the test CA, as production runs (the default is loopback plaintext).
    let tls = std::env::args().any(|a| a == "--tls");
    if tls {
        let text = std::fs::read_to_string(&cfg).unwrap().replace(
            "tls = \"none\"",
            &format!(
                "tls = \"required\"\nca_file = \"{}\"",
                server.ca_file().display()
            ),
        );
        std::fs::write(&cfg, text).unwrap();
    }
    let bot = Process::start("jabmon-collector", &cfg);
    let pid = bot.child.id();
    online(&server);
    let t0 = Instant::now();
    let c0 =
        cpu_ticks(pid).unwrap_or_else(|| panic!("collector not running; its log:\n{}", bot.log()));
    let (mut min, mut max, mut sum, mut n) = (u64::MAX, 0u64, 0u64, 0u64);
    while t0.elapsed() < Duration::from_secs(seconds) {
        if let Some(r) = rss_kib(pid) {
            min = min.min(r);
            max = max.max(r);
            sum += r;
            n += 1;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(n > 0, "the collector exited; its log:\n{}", bot.log());
    let c1 = cpu_ticks(pid).expect("collector still running");
    let wall = t0.elapsed().as_secs_f64();
    let hz = 100.0; // USER_HZ on Linux
    let cpu_pct = (c1 - c0) as f64 / hz / wall * 100.0;
    println!(
        "collector, sample_interval {interval}, {}, {wall:.0} s:",
        if tls {
            "STARTTLS"
        } else {
            "loopback plaintext"
        }
    );
    println!(
        "  RSS   min {:.2} MiB  mean {:.2} MiB  max {:.2} MiB",
        min as f64 / 1024.0,
        sum as f64 / n.max(1) as f64 / 1024.0,
        max as f64 / 1024.0
    );
    println!(
        "  CPU   {cpu_pct:.3} % of one core ({} ticks of 10 ms)",
        c1 - c0
    );
}
