//! Events per second through the query engine (matcher + pipelines), with 1, 100, 1,000 and
//! 10,000 registrations of realistic regexes over the names of 1,000 hosts × 50 metrics.
//!
//! `cargo bench -p jabmon-hub --bench query`; figures in docs/performance.md.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use jabmon_hub::query::{Engine, Output};

const HOSTS: usize = 1_000;

/// 50 metric names per host, as a collector emits them (docs/protocol.md §3).
fn metrics() -> Vec<String> {
    let mut m: Vec<String> = Vec::new();
    for t in ["user", "system", "idle", "iowait", "steal"] {
        m.push(format!("cpu.cpu.{t}"));
    }
    for core in 0..3 {
        for t in ["user", "system", "idle"] {
            m.push(format!("cpu-{core}.cpu.{t}"));
        }
    }
    for t in ["shortterm", "midterm", "longterm"] {
        m.push(format!("load.load.{t}"));
    }
    for t in ["used", "free", "available", "cached", "buffered"] {
        m.push(format!("memory.memory.{t}"));
    }
    m.push("memory.percent.used".into());
    m.push("swap.swap.used".into());
    m.push("swap.swap.free".into());
    for mount in ["root", "var-lib", "boot"] {
        m.push(format!("df-{mount}.df.used"));
        m.push(format!("df-{mount}.percent.used"));
    }
    for dev in ["sda", "sdb"] {
        for t in ["disk_octets.read", "disk_octets.write", "disk_ops.read"] {
            m.push(format!("disk-{dev}.{t}"));
        }
    }
    for i in ["eth0", "lo"] {
        for t in ["if_octets.rx", "if_octets.tx", "if_errors.rx"] {
            m.push(format!("interface-{i}.{t}"));
        }
    }
    m.push("interface-eth0.if_packets.rx".into());
    m.push("interface-eth0.if_packets.tx".into());
    m.push("processes.processes.total".into());
    m.push("processes.processes.running".into());
    m.push("uptime.uptime.seconds".into());
    m.push("jabmon.status.alive".into());
    m.push("jabmon.status.busy".into());
    assert_eq!(m.len(), 50);
    m
}

fn host(i: usize) -> String {
    let prefix = ["web", "db", "cache", "app", "mq"][i % 5];
    format!("{prefix}{:03}", i / 5)
}

/// Every name. `by_host`: as collectors send them — a stats item carries all 50 metrics of one
/// host, hosts come in a shuffled order. Otherwise every name shuffled (a worst case for memory
/// locality that no real stream has).
fn names(by_host: bool) -> Vec<String> {
    let metrics = metrics();
    let mut hosts: Vec<usize> = (0..HOSTS).collect();
    shuffle(&mut hosts);
    let mut names: Vec<String> = hosts
        .iter()
        .flat_map(|&h| metrics.iter().map(move |m| format!("{}.{m}", host(h))))
        .collect();
    if !by_host {
        shuffle(&mut names);
    }
    names
}

fn shuffle<T>(v: &mut [T]) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

/// Registration `i`: a realistic regex (host wildcard, host anchor, group anchor, …) and proc.
fn registration(i: usize, metrics: &[String]) -> String {
    let metric = regex::escape(&metrics[(i * 7) % metrics.len()]);
    let h = host((i * 13) % HOSTS);
    let regex = match i % 6 {
        0 => format!(r"^.*\.{metric}$"),
        1 => format!(r"^{h}\."),
        2 => format!(r"^{h}\.(cpu|load)\."),
        3 => format!(r"^web0[0-9]{{2}}\.{metric}$"),
        4 => r"^(web|db)[0-9]+\.df-[a-z-]+\.percent\.used$".to_owned(),
        _ => format!(r"^{h}\.{metric}$"),
    };
    let proc = [
        "id",
        "[> 90]",
        "mean | (* 100)",
        "window 10 (mean)",
        "changed",
        "rate",
        "percentile 99 (100)",
        "throttle 1/10s",
        "ewma 0.3",
        "absent 1m",
    ][(i / 6) % 10];
    format!("SELECT {proc} FROM {regex};")
}

fn engine(n: usize) -> Engine {
    let metrics = metrics();
    let mut e = Engine::default();
    for i in 0..n {
        let user = format!("user{}@example.org", i / 100);
        let r = e.handle(&user, &registration(i, &metrics));
        assert_eq!(r.status, 200, "{:?}", r.reason);
    }
    e
}

fn feed_group(c: &mut Criterion, group_name: &str, names: &[String], sizes: &[usize]) {
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Elements(names.len() as u64));
    group.sample_size(20);
    for &n in sizes {
        let mut e = engine(n);
        let mut out: Vec<Output> = Vec::with_capacity(1 << 16);
        // Warm the per-name cache, then report how much work an event does.
        let mut t = 1_763_800_000.0;
        for name in names {
            e.feed(name, t, 1.0, &mut out);
        }
        let outputs = out.len();
        eprintln!(
            "{group_name}, {n} registrations: {:.2} outputs per event",
            outputs as f64 / names.len() as f64
        );
        group.bench_function(format!("{n} registrations"), |b| {
            b.iter(|| {
                t += 10.0;
                for (i, name) in names.iter().enumerate() {
                    e.feed(name, t, (i % 100) as f64, &mut out);
                    out.clear();
                }
            });
        });
        black_box(&out);
    }
    group.finish();
}

fn bench(c: &mut Criterion) {
    let names = names(true);
    feed_group(c, "feed", &names, &[1, 100, 1_000, 10_000]);
    feed_group(c, "feed shuffled", &self::names(false), &[1_000]);

    // The cold path: the first sight of every name (RegexSet lookups, state creation).
    let mut group = c.benchmark_group("first sight");
    group.throughput(Throughput::Elements(names.len() as u64));
    group.sample_size(10);
    for n in [100, 1_000, 10_000] {
        let template = engine(n).registrations();
        group.bench_function(format!("{n} registrations"), |b| {
            b.iter_batched(
                || {
                    let mut e = Engine::default();
                    for s in &template {
                        let _ = e.restore(s);
                    }
                    e
                },
                |mut e| {
                    let mut out = Vec::new();
                    for name in &names {
                        e.feed(name, 1.0, 1.0, &mut out);
                        out.clear();
                    }
                    e
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
