//! Sampling the host: /proc for what sysinfo lacks (CPU split, load, memory detail, block
//! devices, uptime) and for interface counters (one read of /proc/net/dev instead of
//! sysinfo's six sysfs files per interface per sample — most of the collector's syscalls),
//! sysinfo for filesystems. Counters become per-second rates
//! between two samples; the first sample of a counter yields no rate.

pub mod procfs;

use std::collections::HashMap;
use std::path::Path;

use jabmon_shared::metric;
use sysinfo::{DiskRefreshKind, Disks};

use crate::metrics::Unit;
use procfs::CpuTimes;

/// One reading: metric name (without host), unit, value.
pub type Reading = (String, Unit, f64);

/// Keeps what rates and CPU percentages need from the previous sample.
pub struct Sampler {
    prev_cpu: Option<(CpuTimes, Vec<CpuTimes>)>,
    prev_counters: HashMap<String, (f64, u64)>,
    disks: Disks,
    samples: u64,
}

/// The mount list (re-reading /proc/mounts and every mount's details) is refreshed every this
/// many samples; in between only each known filesystem's statvfs is taken.
const DISK_LIST_EVERY: u64 = 60;

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl Sampler {
    pub fn new() -> Self {
        Self {
            prev_cpu: None,
            prev_counters: HashMap::new(),
            disks: Disks::new_with_refreshed_list_specifics(
                DiskRefreshKind::nothing().with_storage(),
            ),
            samples: 0,
        }
    }

    /// Takes one sample at `now` (seconds since the epoch).
    pub fn sample(&mut self, now: f64) -> Vec<Reading> {
        let mut out = Vec::with_capacity(96);
        self.cpu(&mut out);
        loadavg(&mut out);
        meminfo(&mut out);
        self.filesystems(&mut out);
        self.block_devices(&mut out, now);
        self.interfaces(&mut out, now);
        if let Some(up) = procfs::parse_uptime(&read("/proc/uptime")) {
            out.push(("uptime.uptime.seconds".into(), Unit::Seconds, up.floor()));
        }
        out
    }

    fn block_devices(&mut self, out: &mut Vec<Reading>, now: f64) {
        for d in procfs::parse_diskstats(&read("/proc/diskstats")) {
            // Whole block devices only (partitions have no /sys/block entry), no loop/ram.
            if d.device.starts_with("loop")
                || d.device.starts_with("ram")
                || !Path::new("/sys/block").join(&d.device).exists()
            {
                continue;
            }
            let dev = metric::component(&d.device);
            let octets = Unit::BytesPerSecond;
            let ops = Unit::PerSecond;
            let read = format!("disk-{dev}.disk_octets.read");
            self.rate(out, now, read, octets, d.read_bytes);
            let write = format!("disk-{dev}.disk_octets.write");
            self.rate(out, now, write, octets, d.write_bytes);
            self.rate(out, now, format!("disk-{dev}.disk_ops.read"), ops, d.reads);
            self.rate(
                out,
                now,
                format!("disk-{dev}.disk_ops.write"),
                ops,
                d.writes,
            );
        }
    }

    fn cpu(&mut self, out: &mut Vec<Reading>) {
        let (Some(all), cores) = procfs::parse_stat(&read("/proc/stat")) else {
            return;
        };
        if let Some((prev_all, prev_cores)) = &self.prev_cpu {
            if let Some(p) = split(prev_all, &all) {
                out.push(("cpu.cpu.user".into(), Unit::Percent, p.user));
                out.push(("cpu.cpu.system".into(), Unit::Percent, p.system));
                out.push((metric::CPU_IDLE.into(), Unit::Percent, p.idle));
                out.push(("cpu.cpu.iowait".into(), Unit::Percent, p.iowait));
                out.push(("cpu.cpu.steal".into(), Unit::Percent, p.steal));
            }
            for (n, (prev, cur)) in prev_cores.iter().zip(&cores).enumerate() {
                if let Some(p) = split(prev, cur) {
                    out.push((format!("cpu-{n}.cpu.user"), Unit::Percent, p.user));
                    out.push((format!("cpu-{n}.cpu.system"), Unit::Percent, p.system));
                    out.push((format!("cpu-{n}.cpu.idle"), Unit::Percent, p.idle));
                }
            }
        }
        self.prev_cpu = Some((all, cores));
    }

    fn filesystems(&mut self, out: &mut Vec<Reading>) {
        self.samples += 1;
        if self.samples.is_multiple_of(DISK_LIST_EVERY) {
            self.disks
                .refresh_specifics(true, DiskRefreshKind::nothing().with_storage());
        }
        let mut seen = std::collections::HashSet::new();
        for d in self.disks.list() {
            let Ok(v) = rustix::fs::statvfs(d.mount_point()) else {
                continue; // unmounted since the list was read
            };
            let Some(df) = DfFigures::of(v.f_blocks, v.f_bfree, v.f_bavail, v.f_frsize) else {
                continue;
            };
            let mount = metric::mount(&d.mount_point().to_string_lossy());
            if !seen.insert(mount.clone()) {
                continue; // bind mounts of one filesystem
            }
            out.push((format!("df-{mount}.df.used"), Unit::Bytes, df.used));
            out.push((format!("df-{mount}.df.free"), Unit::Bytes, df.free));
            out.push((format!("df-{mount}.df.reserved"), Unit::Bytes, df.reserved));
            out.push((
                metric::disk_percent_used(&mount),
                Unit::Percent,
                df.percent_used,
            ));
        }
    }

    fn interfaces(&mut self, out: &mut Vec<Reading>, now: f64) {
        for (name, c) in procfs::parse_netdev(&read("/proc/net/dev")) {
            let name = metric::component(&name);
            let kinds = [
                ("if_octets.rx", Unit::BytesPerSecond),
                ("if_octets.tx", Unit::BytesPerSecond),
                ("if_packets.rx", Unit::PerSecond),
                ("if_packets.tx", Unit::PerSecond),
                ("if_errors.rx", Unit::PerSecond),
                ("if_errors.tx", Unit::PerSecond),
            ];
            for ((kind, unit), counter) in kinds.into_iter().zip(c) {
                self.rate(out, now, format!("interface-{name}.{kind}"), unit, counter);
            }
        }
    }

    fn rate(&mut self, out: &mut Vec<Reading>, now: f64, name: String, unit: Unit, counter: u64) {
        if let Some(r) = counter_rate(self.prev_counters.get(&name).copied(), now, counter) {
            out.push((name.clone(), unit, r));
        }
        self.prev_counters.insert(name, (now, counter));
    }
}

/// One filesystem as df(1) and collectd's df plugin see it, in bytes: `used` = blocks not
/// free, `free` = blocks available to unprivileged users, `reserved` = free blocks only root
/// may use (typically 5 % on ext4). `percent_used` is df's Use%: used / (used + free), so the
/// reserved blocks count neither way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DfFigures {
    pub used: f64,
    pub free: f64,
    pub reserved: f64,
    pub percent_used: f64,
}

impl DfFigures {
    /// From statvfs(2) counts (`frsize` = the block size they are counted in); `None` for a
    /// filesystem without blocks (proc, sysfs, …).
    pub fn of(blocks: u64, bfree: u64, bavail: u64, frsize: u64) -> Option<Self> {
        if blocks == 0 {
            return None;
        }
        let bfree = bfree.min(blocks);
        let bavail = bavail.min(bfree);
        let bytes = |n: u64| n as f64 * frsize as f64;
        let used = blocks - bfree;
        let seen = used + bavail;
        Some(Self {
            used: bytes(used),
            free: bytes(bavail),
            reserved: bytes(bfree - bavail),
            percent_used: if seen == 0 {
                0.0
            } else {
                used as f64 * 100.0 / seen as f64
            },
        })
    }
}

/// Per-second rate of a counter since `prev`; `None` on the first sample or a counter reset.
pub fn counter_rate(prev: Option<(f64, u64)>, now: f64, counter: u64) -> Option<f64> {
    let (t, c) = prev?;
    let dt = now - t;
    (dt > 0.0 && counter >= c).then(|| (counter - c) as f64 / dt)
}

/// CPU percentages between two readings.
#[derive(Debug, PartialEq)]
pub struct CpuSplit {
    pub user: f64,
    pub system: f64,
    pub idle: f64,
    pub iowait: f64,
    pub steal: f64,
}

/// user = user + nice, system = system + irq + softirq; `None` when no tick passed.
pub fn split(prev: &CpuTimes, cur: &CpuTimes) -> Option<CpuSplit> {
    let total = cur.total().checked_sub(prev.total()).filter(|t| *t > 0)? as f64;
    let d = |a: u64, b: u64| b.saturating_sub(a) as f64 * 100.0 / total;
    Some(CpuSplit {
        user: d(prev.user + prev.nice, cur.user + cur.nice),
        system: d(
            prev.system + prev.irq + prev.softirq,
            cur.system + cur.irq + cur.softirq,
        ),
        idle: d(prev.idle, cur.idle),
        iowait: d(prev.iowait, cur.iowait),
        steal: d(prev.steal, cur.steal),
    })
}

/// Load averages and task counts from /proc/loadavg.
fn loadavg(out: &mut Vec<Reading>) {
    if let Some(l) = procfs::parse_loadavg(&read("/proc/loadavg")) {
        out.push((metric::LOAD_SHORTTERM.into(), Unit::Load, l.one));
        out.push((metric::LOAD_MIDTERM.into(), Unit::Load, l.five));
        out.push((metric::LOAD_LONGTERM.into(), Unit::Load, l.fifteen));
        out.push((
            "processes.processes.total".into(),
            Unit::Count,
            l.total as f64,
        ));
        out.push((
            "processes.processes.running".into(),
            Unit::Count,
            l.running as f64,
        ));
    }
}

/// Memory and swap from /proc/meminfo.
fn meminfo(out: &mut Vec<Reading>) {
    let m = procfs::parse_meminfo(&read("/proc/meminfo"));
    if m.total > 0 {
        let used = m.total.saturating_sub(m.available);
        out.push(("memory.memory.used".into(), Unit::Bytes, used as f64));
        out.push(("memory.memory.free".into(), Unit::Bytes, m.free as f64));
        out.push((
            "memory.memory.available".into(),
            Unit::Bytes,
            m.available as f64,
        ));
        out.push(("memory.memory.cached".into(), Unit::Bytes, m.cached as f64));
        out.push((
            "memory.memory.buffered".into(),
            Unit::Bytes,
            m.buffers as f64,
        ));
        out.push((
            metric::MEMORY_PERCENT_USED.into(),
            Unit::Percent,
            used as f64 * 100.0 / m.total as f64,
        ));
        out.push((
            "swap.swap.used".into(),
            Unit::Bytes,
            m.swap_total.saturating_sub(m.swap_free) as f64,
        ));
        out.push(("swap.swap.free".into(), Unit::Bytes, m.swap_free as f64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(counter_rate(None, 1.0, 10), None);
        assert_eq!(counter_rate(Some((0.0, 10)), 2.0, 30), Some(10.0));
        assert_eq!(counter_rate(Some((0.0, 10)), 2.0, 5), None, "counter reset");
        assert_eq!(
            counter_rate(Some((2.0, 10)), 2.0, 20),
            None,
            "no time passed"
        );
    }

    #[test]
    fn cpu_split() {
        let a = CpuTimes {
            user: 100,
            nice: 0,
            system: 50,
            idle: 800,
            iowait: 50,
            ..Default::default()
        };
        let b = CpuTimes {
            user: 110,
            nice: 10,
            system: 60,
            idle: 950,
            iowait: 60,
            steal: 10,
            ..Default::default()
        };
        let s = split(&a, &b).unwrap();
        assert_eq!(s.user, 10.0);
        assert_eq!(s.system, 5.0);
        assert_eq!(s.idle, 75.0);
        assert_eq!(s.iowait, 5.0);
        assert_eq!(s.steal, 5.0);
        assert!(split(&a, &a).is_none());
    }

    #[test]
    fn df_figures_count_reserved_blocks_apart() {
        // 1000 blocks of 4 KiB: 700 free, of which 650 available (50 reserved for root).
        let d = DfFigures::of(1000, 700, 650, 4096).unwrap();
        assert_eq!(d.used, 300.0 * 4096.0);
        assert_eq!(d.free, 650.0 * 4096.0);
        assert_eq!(d.reserved, 50.0 * 4096.0);
        assert!((d.percent_used - 300.0 * 100.0 / 950.0).abs() < 1e-9);
        assert_eq!(DfFigures::of(0, 0, 0, 4096), None, "no blocks: not a disk");
        let full = DfFigures::of(10, 0, 0, 1).unwrap();
        assert_eq!((full.percent_used, full.free), (100.0, 0.0));
    }

    /// Use% of `df -P PATH` (df rounds up).
    fn df_use_percent(path: &str) -> f64 {
        let out = std::process::Command::new("df")
            .args(["-P", path])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let line = text.lines().nth(1).unwrap();
        let pct = line.split_whitespace().nth(4).unwrap();
        pct.trim_end_matches('%').parse().unwrap()
    }

    #[test]
    fn root_percent_used_agrees_with_df() {
        let mut s = Sampler::new();
        let readings = s.sample(0.0);
        let ours = readings
            .iter()
            .find(|r| r.0 == "df-root.percent.used")
            .map(|r| r.2)
            .expect("df-root.percent.used");
        let df = df_use_percent("/");
        assert!((ours - df).abs() <= 1.0, "ours {ours:.2} %, df {df} %");
        for kind in ["used", "free", "reserved"] {
            let name = format!("df-root.df.{kind}");
            assert!(readings.iter().any(|r| r.0 == name), "{name}");
        }
    }

    #[test]
    fn real_host_has_every_group() {
        let mut s = Sampler::new();
        s.sample(0.0);
        // Make sure the CPU counters move between the two samples.
        let mut x = 0u64;
        for i in 0..3_000_000u64 {
            x = std::hint::black_box(x.wrapping_add(i * i));
        }
        let readings = s.sample(1.0);
        let names: Vec<&str> = readings.iter().map(|r| r.0.as_str()).collect();
        for want in [
            "load.load.shortterm",
            "memory.memory.used",
            "memory.percent.used",
            "swap.swap.free",
            "processes.processes.total",
            "uptime.uptime.seconds",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        assert!(names.iter().any(|n| n.starts_with("df-")), "{names:?}");
        assert!(
            names.iter().any(|n| n.starts_with("interface-")),
            "{names:?}"
        );
        for (name, _, v) in &readings {
            assert!(metric::is_valid(name), "{name}");
            assert!(v.is_finite(), "{name}");
        }
    }
}
