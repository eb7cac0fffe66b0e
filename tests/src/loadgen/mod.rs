//! `jabmon-loadgen`: a fleet of synthetic collectors and users against a private server and
//! a real hub process, with the figures docs/performance.md reports.
//!
//! [`run`] creates the accounts in bulk and writes the mutual subscriptions straight into the
//! server's store, starts the hub (a `jabmon-hub` process), connects the users (registering
//! their queries) and then the collectors (at most `logins` logging in at once), waits until
//! the hub's `stats` command counts every collector alive, warms up, and measures for a
//! window: the hub's counters before and after (events ingested and messages sent per
//! second, drops, its own latency samples), events received by the users, the probe's
//! sample → user latency, publish round trips, and CPU and RSS of hub and server from `/proc`.

pub mod figures;
pub mod fleet;
pub mod memory;
pub mod users;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jabmon_shared::unix_now;
use tokio::sync::{oneshot, watch, Semaphore};
use xmpp_parsers::jid::{BareJid, Jid};

use crate::bots::{hub_toml, Process};
use crate::client::xmpp_config;
use crate::{Kind, Server};
use figures::{host, loadavg, percentiles, proc_figures, ProcFigures};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub kind: Kind,
    pub collectors: usize,
    /// Stats per item.
    pub metrics: usize,
    /// Seconds between a collector's stats items.
    pub interval: f64,
    pub users: usize,
    /// Queries per user besides the probe's.
    pub queries: usize,
    /// Presence changes per second across the fleet.
    pub presence_rate: f64,
    /// Seconds measured after the warm-up.
    pub seconds: f64,
    pub warmup: f64,
    /// Collectors logging in at once.
    pub logins: usize,
    /// `pubsub#persist_items` as a publish-option: `false` by default, as the collector
    /// publishes stats (`None`: not sent, the server's default).
    pub persist_items: Option<bool>,
    /// Extra configuration: Lua lines for Prosody's global section, top-level YAML lines for
    /// ejabberd.
    pub server_extra: String,
    /// List every collector's JID in the hub's `access.collectors` (else one `@localhost`).
    pub acl_list: bool,
    /// How long to wait for every collector to be alive at the hub.
    pub alive_limit: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            kind: Kind::Prosody,
            collectors: 1000,
            metrics: 90,
            interval: 10.0,
            users: 10,
            queries: 10,
            presence_rate: 1.0,
            seconds: 60.0,
            warmup: 10.0,
            logins: 100,
            persist_items: Some(false),
            server_extra: String::new(),
            acl_list: true,
            alive_limit: 180.0,
        }
    }
}

/// What was measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub accounts_s: f64,
    /// From the first login to the last collector online.
    pub online_s: f64,
    /// From the first login until the hub counted every collector alive.
    pub alive_s: Option<f64>,
    pub alive: u64,
    pub caps_lookups: u64,
    pub window_s: f64,
    pub notifications_per_s: f64,
    pub ingested_per_s: f64,
    pub hub_sent_per_s: f64,
    pub delivered_per_s: f64,
    pub dropped: u64,
    pub publish_errors: u64,
    pub published: u64,
    /// Probe latency sample → user, ms: count, p50, p99, max.
    pub latency: (usize, f64, f64, f64),
    pub publish_rtt: (usize, f64, f64, f64),
    /// The hub's own samples (`lag_*`, `work_*`), ms: p50, p99, max.
    pub hub_lag: (f64, f64, f64),
    pub hub_work: (f64, f64, f64),
    pub hub_rss_mib: f64,
    pub hub_rss_max_mib: f64,
    pub hub_cpu: f64,
    pub server_rss_mib: f64,
    pub server_cpu: f64,
    pub loadgen_cpu: f64,
    pub load: (f64, f64),
}

fn field(f: &HashMap<String, String>, k: &str) -> f64 {
    f.get(k).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn cpu(a: ProcFigures, b: ProcFigures, secs: f64) -> f64 {
    b.ticks.saturating_sub(a.ticks) as f64 / 100.0 / secs * 100.0
}

fn hub_config(
    server: &Server,
    opts: &Options,
    names: &[String],
    users: &[String],
) -> std::path::PathBuf {
    let list = |v: &[String]| {
        v.iter()
            .map(|n| format!("\"{n}@localhost\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let collectors = match opts.acl_list {
        true => list(names),
        false => "\"@localhost\"".to_string(),
    };
    let state = server.scratch().join("hub.json");
    hub_toml(
        server,
        &format!(
            "[access]\ncollectors = [{collectors}]\nusers = [{}]\n[hub]\nstorage = \"file\"\nstate_path = \"{}\"\n\
             max_events_per_second_per_user = 10000\nmax_queued_events_per_user = 100000\n[log]\nlevel = \"info\"\n",
            list(users),
            state.display()
        ),
    )
}

/// The publish-options of a synthetic collector's stats items on `kind`, as the collector
/// sends them (`pubsub#max_items` only where the server knows it).
pub fn publish_options(
    kind: Kind,
    persist_items: Option<bool>,
) -> Vec<(&'static str, &'static str)> {
    let mut options = vec![("pubsub#access_model", "presence")];
    if kind == Kind::Prosody {
        options.insert(0, ("pubsub#max_items", "1"));
    }
    match persist_items {
        Some(true) => options.push(("pubsub#persist_items", "true")),
        Some(false) => options.push(("pubsub#persist_items", "false")),
        None => {}
    }
    options
}

/// Runs the load and returns its figures (prints progress on stderr).
pub async fn run(opts: &Options) -> Report {
    let mut r = Report {
        load: (loadavg(), 0.0),
        ..Report::default()
    };
    if let Some(limit) = figures::open_files_limit() {
        if limit < opts.collectors as u64 + 200 {
            eprintln!(
                "loadgen: open files limit {limit} < collectors + 200: raise it (`ulimit -n`)"
            );
        }
    }
    let server = Server::start_with(opts.kind, &opts.server_extra);
    let t = Instant::now();
    let names: Vec<String> = (0..opts.collectors).map(host).collect();
    let users: Vec<String> = (0..opts.users.max(1)).map(|u| format!("u{u}")).collect();
    let mut accounts: Vec<(String, String)> = names
        .iter()
        .map(|n| (n.clone(), "pw".to_string()))
        .collect();
    accounts.extend(users.iter().map(|u| (u.clone(), "pw".to_string())));
    accounts.push(("hub".into(), "pw-hub".into()));
    server.register_many(&accounts);
    let contacts: Vec<String> = names.iter().chain(&users).cloned().collect();
    server.subscribe_both("hub", &contacts);
    r.accounts_s = t.elapsed().as_secs_f64();
    eprintln!(
        "loadgen: {} accounts and subscriptions in {:.1} s",
        accounts.len(),
        r.accounts_s
    );

    let mut hub = Process::start("jabmon-hub", &hub_config(&server, opts, &names, &users));
    std::thread::sleep(Duration::from_millis(300));
    if let Ok(Some(status)) = hub.child.try_wait() {
        panic!("jabmon-hub exited ({status}):\n{}", hub.log());
    }
    let seen = Arc::new(users::Seen::default());
    let user_cfgs: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let queries = match i {
                0 => vec![users::PROBE.to_string()],
                _ => figures::queries(i, opts.queries, opts.collectors),
            };
            (
                xmpp_config(&server, &format!("{u}@localhost"), "pw", "lg"),
                queries,
            )
        })
        .collect();
    let hub_bare = Jid::new("hub@localhost").expect("jid");
    let hub_full = Jid::new("hub@localhost/hub").expect("jid");
    let (asks, users_thread) = users::start(user_cfgs, hub_bare, hub_full, seen.clone());
    let stats = || async {
        let (tx, rx) = oneshot::channel();
        let _ = asks.send(users::Ask::Stats(tx));
        rx.await.unwrap_or_default()
    };
    eprintln!(
        "loadgen: {} users online, {} queries accepted",
        users.len(),
        seen.accepted.load(Ordering::Relaxed)
    );

    let options = publish_options(opts.kind, opts.persist_items);
    let interval = Duration::from_secs_f64(opts.interval);
    let fleet = Arc::new(fleet::Fleet::new(
        figures::metric_names(opts.metrics),
        interval,
        BareJid::new("hub@localhost").expect("jid"),
        options,
        (opts.presence_rate * opts.interval / opts.collectors.max(1) as f64).min(1.0),
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    let logins = Arc::new(Semaphore::new(opts.logins.max(1)));
    let start = unix_now();
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let cfg = xmpp_config(&server, &format!("{n}@localhost"), "pw", "jabmon");
        tasks.push(tokio::spawn(fleet::collector(
            i,
            cfg,
            fleet.clone(),
            logins.clone(),
            stop_rx.clone(),
        )));
    }
    // Start-up: until every collector is online and the hub counts them all alive.
    let limit = Duration::from_secs_f64(opts.alive_limit);
    let mut last_print = Instant::now();
    while t.elapsed() < limit {
        let f = stats().await;
        r.alive = field(&f, "alive") as u64;
        r.caps_lookups = field(&f, "caps_lookups") as u64;
        if r.alive as usize >= opts.collectors {
            r.alive_s = Some(t.elapsed().as_secs_f64());
            break;
        }
        if last_print.elapsed() > Duration::from_secs(10) {
            if f.is_empty() {
                eprintln!(
                    "loadgen: the hub's stats command gave nothing; hub log:\n{}",
                    hub.log()
                );
            }
            eprintln!(
                "loadgen: {:.0} s: {} online, {} alive at the hub, {} caps lookups",
                t.elapsed().as_secs_f64(),
                fleet.online.load(Ordering::Relaxed),
                r.alive,
                r.caps_lookups
            );
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let online = fleet.online.load(Ordering::Relaxed) as usize;
    r.online_s = if online >= opts.collectors {
        *fleet.last_online.lock().expect("lock") - start
    } else {
        f64::NAN
    };
    eprintln!(
        "loadgen: {online} online ({:.1} s), {} alive at the hub ({:?} s), {} caps lookups",
        r.online_s, r.alive, r.alive_s, r.caps_lookups
    );
    tokio::time::sleep(Duration::from_secs_f64(opts.warmup)).await;

    // The window.
    let hub_pid = hub.child.id();
    let server_pid = server.pid().unwrap_or(0);
    let me = std::process::id();
    let before = stats().await;
    let (h0, s0, l0) = (
        proc_figures(hub_pid),
        proc_figures(server_pid),
        proc_figures(me),
    );
    seen.measuring.store(true, Ordering::Relaxed);
    fleet.measuring.store(true, Ordering::Relaxed);
    let errors0 = fleet.publish_errors.load(Ordering::Relaxed);
    let published0 = fleet.published.load(Ordering::Relaxed);
    let t = Instant::now();
    let mut rss_max = 0;
    while t.elapsed().as_secs_f64() < opts.seconds {
        tokio::time::sleep(Duration::from_millis(500)).await;
        rss_max = rss_max.max(proc_figures(hub_pid).rss_kib);
    }
    seen.measuring.store(false, Ordering::Relaxed);
    fleet.measuring.store(false, Ordering::Relaxed);
    let w = t.elapsed().as_secs_f64();
    let (h1, s1, l1) = (
        proc_figures(hub_pid),
        proc_figures(server_pid),
        proc_figures(me),
    );
    let after = stats().await;
    let rate = |k: &str| (field(&after, k) - field(&before, k)) / w;
    r.window_s = w;
    r.notifications_per_s = rate("notifications");
    r.ingested_per_s = rate("events_in");
    r.hub_sent_per_s = rate("messages_out");
    r.dropped = (field(&after, "dropped") - field(&before, "dropped")) as u64;
    r.delivered_per_s = seen.delivered.load(Ordering::Relaxed) as f64 / w;
    r.publish_errors = fleet.publish_errors.load(Ordering::Relaxed) - errors0;
    r.published = fleet.published.load(Ordering::Relaxed) - published0;
    let mut lat = std::mem::take(&mut *seen.latencies.lock().expect("lock"));
    let (p50, p99, max) = percentiles(&mut lat);
    r.latency = (lat.len(), p50, p99, max);
    let mut rtt = std::mem::take(&mut *fleet.publish_rtt.lock().expect("lock"));
    let (p50, p99, max) = percentiles(&mut rtt);
    r.publish_rtt = (rtt.len(), p50, p99, max);
    let three = |k: &str| {
        (
            field(&after, &format!("{k}_p50_ms")),
            field(&after, &format!("{k}_p99_ms")),
            field(&after, &format!("{k}_max_ms")),
        )
    };
    r.hub_lag = three("lag");
    r.hub_work = three("work");
    r.hub_rss_mib = mib(h1.rss_kib);
    r.hub_rss_max_mib = mib(rss_max.max(h1.rss_kib));
    r.hub_cpu = cpu(h0, h1, w);
    r.server_rss_mib = mib(s1.rss_kib);
    r.server_cpu = cpu(s0, s1, w);
    r.loadgen_cpu = cpu(l0, l1, w);
    r.load.1 = loadavg();

    let _ = stop_tx.send(true);
    let _ = asks.send(users::Ask::Stop);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    let _ = users_thread.join();
    drop(hub);
    r
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let alive = self
            .alive_s
            .map_or("never".to_string(), |s| format!("{s:.1} s"));
        writeln!(f, "accounts + subscriptions  {:.1} s", self.accounts_s)?;
        writeln!(f, "start-up  all online {:.1} s, all alive at the hub {alive} ({} alive, {} caps lookups)", self.online_s, self.alive, self.caps_lookups)?;
        writeln!(
            f,
            "window  {:.0} s, load average {:.2} → {:.2}",
            self.window_s, self.load.0, self.load.1
        )?;
        writeln!(f, "ingested  {:.0} events/s ({:.1} notifications/s), hub sent {:.0} messages/s, users received {:.0} events/s, dropped {}", self.ingested_per_s, self.notifications_per_s, self.hub_sent_per_s, self.delivered_per_s, self.dropped)?;
        writeln!(
            f,
            "publishes  {} ok, {} failed; round trip p50 {:.2} / p99 {:.2} / max {:.1} ms",
            self.published,
            self.publish_errors,
            self.publish_rtt.1,
            self.publish_rtt.2,
            self.publish_rtt.3
        )?;
        writeln!(
            f,
            "sample→user (probe, {} events)  p50 {:.2} / p99 {:.2} / max {:.1} ms",
            self.latency.0, self.latency.1, self.latency.2, self.latency.3
        )?;
        writeln!(f, "hub: item age on arrival p50 {:.2} / p99 {:.2} / max {:.1} ms; arrival→queued p50 {:.3} / p99 {:.3} / max {:.2} ms", self.hub_lag.0, self.hub_lag.1, self.hub_lag.2, self.hub_work.0, self.hub_work.1, self.hub_work.2)?;
        writeln!(
            f,
            "hub  RSS {:.1} MiB (max {:.1}), CPU {:.1} % of a core",
            self.hub_rss_mib, self.hub_rss_max_mib, self.hub_cpu
        )?;
        writeln!(
            f,
            "server  RSS {:.1} MiB, CPU {:.1} %;  loadgen CPU {:.1} %",
            self.server_rss_mib, self.server_cpu, self.loadgen_cpu
        )
    }
}
