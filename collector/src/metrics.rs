//! The collector's live metric table (pure): the current value of every metric, its
//! 1/5/15-minute averages and min/max since the last reset, grouped as disco shows them.
//!
//! The averages are exponentially weighted with the kernel load-average constants
//! (α = 1 − e^(−Δt/window)): three floats per metric instead of a ring of samples, which keeps
//! the collector's memory flat whatever `sample_interval` is.

use std::collections::BTreeMap;

use jabmon_shared::human;
use jabmon_shared::payload::{Stat, Stats};

/// The stats groups, in disco order: (node, human title).
pub const GROUPS: [(&str, &str); 8] = [
    ("cpu", "CPU Load"),
    ("load", "System Load"),
    ("memory", "Memory"),
    ("swap", "Swap"),
    ("disk", "Disks"),
    ("network", "Network"),
    ("processes", "Processes"),
    ("uptime", "Uptime"),
];

/// Units of the metric table in docs/metrics.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Percent,
    Load,
    Bytes,
    /// A byte counter's rate (disk and interface octets).
    BytesPerSecond,
    PerSecond,
    Count,
    Seconds,
}

impl Unit {
    /// The unit as the stats payload and docs spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Percent => "percent",
            Unit::Load => "load",
            Unit::Bytes => "bytes",
            Unit::BytesPerSecond | Unit::PerSecond => "per-second",
            Unit::Count => "count",
            Unit::Seconds => "seconds",
        }
    }
    /// A value in this unit as people read it: `97.5 %`, `22.9 GiB`, `1.2 MiB/s`, `3 d 4 h`.
    pub fn show(self, v: f64) -> String {
        match self {
            Unit::Percent => human::percent(v),
            Unit::Load => format!("{v:.2}"),
            Unit::Bytes => human::bytes(v),
            Unit::BytesPerSecond => human::bytes_per_second(v),
            Unit::PerSecond => human::per_second(v),
            Unit::Count => human::trimmed(v, 1),
            Unit::Seconds => human::duration(v),
        }
    }
}

/// The group (disco node) a metric name belongs to.
pub fn group_of(name: &str) -> &'static str {
    let first = name.split('.').next().unwrap_or("");
    match first {
        "cpu" => "cpu",
        "load" => "load",
        "memory" => "memory",
        "swap" => "swap",
        "processes" => "processes",
        "uptime" => "uptime",
        f if f.starts_with("cpu-") => "cpu",
        f if f.starts_with("df-") || f.starts_with("disk-") => "disk",
        f if f.starts_with("interface-") => "network",
        _ => "other",
    }
}

/// A human title for a metric name, without unit (the value shown beside it carries one):
/// `cpu-0.cpu.idle` → `Core 0 idle`, `load.load.shortterm` → `Load 1-min`.
pub fn title(name: &str) -> String {
    let parts: Vec<&str> = name.split('.').collect();
    let (plugin, kind, inst) = match parts.as_slice() {
        [p, k, i] => (*p, *k, *i),
        _ => return name.to_string(),
    };
    let subject = if plugin == "cpu" {
        "CPU".to_string()
    } else if let Some(n) = plugin.strip_prefix("cpu-") {
        format!("Core {n}")
    } else if let Some(m) = plugin.strip_prefix("df-") {
        format!("Filesystem {m}")
    } else if let Some(d) = plugin.strip_prefix("disk-") {
        format!("Disk {d}")
    } else if let Some(i) = plugin.strip_prefix("interface-") {
        format!("Interface {i}")
    } else {
        let mut c = plugin.chars();
        c.next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    };
    let what = match (kind, inst) {
        ("uptime", "seconds") => return subject,
        ("load", "shortterm") => "1-min".to_string(),
        ("load", "midterm") => "5-min".to_string(),
        ("load", "longterm") => "15-min".to_string(),
        ("disk_ops", i) => format!("{i} operations"),
        ("if_packets", i) => format!("{i} packets"),
        ("if_errors", i) => format!("{i} errors"),
        (_, i) => i.to_string(),
    };
    format!("{subject} {what}")
}

/// A metric and its current value as one line for people: `CPU idle: 97.5 %`.
pub fn line(name: &str, unit: Unit, value: f64) -> String {
    format!("{}: {}", title(name), unit.show(value))
}

/// Instances in the order people read them; others follow by name.
const INSTANCE_ORDER: [&str; 21] = [
    "shortterm",
    "midterm",
    "longterm",
    "user",
    "system",
    "iowait",
    "steal",
    "idle",
    "used",
    "free",
    "reserved",
    "available",
    "cached",
    "buffered",
    "read",
    "write",
    "rx",
    "tx",
    "total",
    "running",
    "seconds",
];

/// The sort key of a metric within its group: the plugin (its number compared as a number,
/// so `cpu-2` comes before `cpu-10`, and the whole-host `cpu` first), percentages before
/// their absolute figures, then the instance — so loads read 1, 5, 15-min and memory used
/// before free.
pub fn order(name: &str) -> (String, u64, u8, String, usize, String) {
    let parts: Vec<&str> = name.split('.').collect();
    let [plugin, kind, inst] = parts.as_slice() else {
        return (name.to_string(), 0, 0, String::new(), 0, String::new());
    };
    let (base, number) = match plugin.rsplit_once('-') {
        Some((b, n)) if n.bytes().all(|c| c.is_ascii_digit()) => {
            (b.to_string(), n.parse::<u64>().map_or(u64::MAX, |n| n + 1))
        }
        _ => (plugin.to_string(), 0),
    };
    // Percentages first; bytes, then packets, then errors.
    let kind_rank = [
        "percent",
        "if_octets",
        "disk_octets",
        "if_packets",
        "disk_ops",
        "if_errors",
    ]
    .iter()
    .position(|k| k == kind)
    .map_or(u8::MAX, |p| p as u8);
    let inst_rank = INSTANCE_ORDER
        .iter()
        .position(|i| i == inst)
        .unwrap_or(INSTANCE_ORDER.len());
    (
        base,
        number,
        kind_rank,
        kind.to_string(),
        inst_rank,
        inst.to_string(),
    )
}

/// Which windowed figure of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    Avg1,
    Avg5,
    Avg15,
    Min,
    Max,
}

impl Figure {
    pub const ALL: [Figure; 5] = [
        Figure::Avg1,
        Figure::Avg5,
        Figure::Avg15,
        Figure::Min,
        Figure::Max,
    ];
    /// The suffix after `#` in form field names.
    pub fn suffix(self) -> &'static str {
        match self {
            Figure::Avg1 => "1-min",
            Figure::Avg5 => "5-min",
            Figure::Avg15 => "15-min",
            Figure::Min => "min",
            Figure::Max => "max",
        }
    }
    /// Label text appended to the metric's own label.
    pub fn describe(self) -> &'static str {
        match self {
            Figure::Avg1 => "1-min average",
            Figure::Avg5 => "5-min average",
            Figure::Avg15 => "15-min average",
            Figure::Min => "minimum since reset",
            Figure::Max => "maximum since reset",
        }
    }
}

/// One metric's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub unit: Unit,
    pub value: f64,
    pub timestamp: f64,
    avg: [f64; 3],
    pub min: f64,
    pub max: f64,
}

const WINDOWS: [f64; 3] = [60.0, 300.0, 900.0];

impl Series {
    fn new(unit: Unit, value: f64, timestamp: f64) -> Self {
        Self {
            unit,
            value,
            timestamp,
            avg: [value; 3],
            min: value,
            max: value,
        }
    }

    fn update(&mut self, value: f64, timestamp: f64) {
        let dt = (timestamp - self.timestamp).max(0.0);
        for (avg, window) in self.avg.iter_mut().zip(WINDOWS) {
            let alpha = 1.0 - (-dt / window).exp();
            *avg += alpha * (value - *avg);
        }
        self.value = value;
        self.timestamp = timestamp;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    fn reset(&mut self) {
        self.avg = [self.value; 3];
        self.min = self.value;
        self.max = self.value;
    }

    /// A windowed figure.
    pub fn figure(&self, f: Figure) -> f64 {
        match f {
            Figure::Avg1 => self.avg[0],
            Figure::Avg5 => self.avg[1],
            Figure::Avg15 => self.avg[2],
            Figure::Min => self.min,
            Figure::Max => self.max,
        }
    }
}

/// Every metric, by name.
#[derive(Debug, Default)]
pub struct MetricTable {
    series: BTreeMap<String, Series>,
    /// Timestamp of the latest sample.
    pub last_sample: Option<f64>,
}

impl MetricTable {
    /// Records one sample: `(name, unit, value)` readings taken at `timestamp`. Metrics that
    /// vanished (an unmounted disk, a removed interface) are dropped.
    pub fn record(&mut self, timestamp: f64, readings: Vec<(String, Unit, f64)>) {
        let mut seen = std::collections::BTreeSet::new();
        for (name, unit, value) in readings {
            if !value.is_finite() {
                continue;
            }
            match self.series.get_mut(&name) {
                Some(s) => s.update(value, timestamp),
                None => {
                    self.series
                        .insert(name.clone(), Series::new(unit, value, timestamp));
                }
            }
            seen.insert(name);
        }
        self.series.retain(|k, _| seen.contains(k));
        self.last_sample = Some(timestamp);
    }

    /// A table holding one metric's figures (to build that metric's form alone).
    pub fn single(name: &str, series: &Series) -> Self {
        let mut series_map = BTreeMap::new();
        series_map.insert(name.to_string(), series.clone());
        Self {
            series: series_map,
            last_sample: Some(series.timestamp),
        }
    }

    /// Restarts min/max and averages of the given groups.
    pub fn reset(&mut self, groups: &[&str]) {
        for (name, s) in self.series.iter_mut() {
            if groups.contains(&group_of(name)) {
                s.reset();
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&Series> {
        self.series.get(name)
    }

    /// Current value of a metric.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.series.get(name).map(|s| s.value)
    }

    /// All metrics of a group, in the order people read them ([`order`]).
    pub fn group<'a>(
        &'a self,
        group: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Series)> + 'a {
        let mut metrics: Vec<_> = self
            .series
            .iter()
            .filter(move |(n, _)| group_of(n) == group)
            .collect();
        metrics.sort_by_cached_key(|(n, _)| order(n));
        metrics.into_iter()
    }

    /// All metrics.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Series)> {
        self.series.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// The stats item of the latest sample (taken at `now` when there was none yet). Three
    /// decimals are plenty for any of our units and keep items small.
    pub fn to_stats(&self, host: &str, now: f64) -> Stats {
        Stats {
            host: host.to_string(),
            timestamp: self.last_sample.unwrap_or(now),
            stats: self
                .series
                .iter()
                .map(|(name, s)| Stat {
                    name: name.clone(),
                    value: (s.value * 1000.0).round() / 1000.0,
                    unit: Some(s.unit.as_str().to_string()),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_item_of_the_latest_sample() {
        let mut t = MetricTable::default();
        assert_eq!(t.to_stats("web1", 7.0).timestamp, 7.0, "no sample yet");
        assert!(t.to_stats("web1", 7.0).stats.is_empty());
        t.record(
            5.0,
            vec![
                ("load.load.shortterm".into(), Unit::Load, 0.123456),
                ("cpu.cpu.idle".into(), Unit::Percent, 80.0),
            ],
        );
        let s = t.to_stats("web1", 6.0);
        assert_eq!((s.host.as_str(), s.timestamp), ("web1", 5.0));
        let got: Vec<_> = s
            .stats
            .iter()
            .map(|s| (s.name.as_str(), s.value, s.unit.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("cpu.cpu.idle", 80.0, Some("percent")),
                ("load.load.shortterm", 0.123, Some("load"))
            ]
        );
    }

    fn r(name: &str, v: f64) -> (String, Unit, f64) {
        (name.to_string(), Unit::Percent, v)
    }

    #[test]
    fn min_max_and_reset() {
        let mut t = MetricTable::default();
        t.record(0.0, vec![r("cpu.cpu.idle", 50.0)]);
        t.record(1.0, vec![r("cpu.cpu.idle", 10.0)]);
        t.record(2.0, vec![r("cpu.cpu.idle", 90.0)]);
        let s = t.get("cpu.cpu.idle").unwrap();
        assert_eq!((s.min, s.max, s.value), (10.0, 90.0, 90.0));
        t.reset(&["load"]);
        assert_eq!(
            t.get("cpu.cpu.idle").unwrap().min,
            10.0,
            "other groups untouched"
        );
        t.reset(&["cpu"]);
        let s = t.get("cpu.cpu.idle").unwrap();
        assert_eq!((s.min, s.max), (90.0, 90.0));
    }

    #[test]
    fn averages_follow_their_windows() {
        let mut t = MetricTable::default();
        t.record(0.0, vec![r("x.y.z", 0.0)]);
        for i in 1..=60 {
            t.record(i as f64, vec![r("x.y.z", 100.0)]);
        }
        let s = t.get("x.y.z").unwrap();
        // After one minute of 100s: 1-min ≈ 63 %, 5-min ≈ 18 %, 15-min ≈ 6.5 % of the step.
        assert!(
            (s.figure(Figure::Avg1) - 63.2).abs() < 0.5,
            "{}",
            s.figure(Figure::Avg1)
        );
        assert!((s.figure(Figure::Avg5) - 18.1).abs() < 0.5);
        assert!((s.figure(Figure::Avg15) - 6.45).abs() < 0.5);
    }

    #[test]
    fn vanished_metrics_are_dropped_and_nan_skipped() {
        let mut t = MetricTable::default();
        t.record(0.0, vec![r("df-a.df.used", 1.0), r("df-b.df.used", 1.0)]);
        t.record(
            1.0,
            vec![r("df-a.df.used", 2.0), r("df-c.df.used", f64::NAN)],
        );
        assert!(t.get("df-b.df.used").is_none());
        assert!(t.get("df-c.df.used").is_none());
        assert_eq!(t.value("df-a.df.used"), Some(2.0));
    }

    #[test]
    fn groups_read_in_order() {
        let mut t = MetricTable::default();
        let names = [
            "load.load.longterm",
            "load.load.midterm",
            "load.load.shortterm",
            "cpu-10.cpu.idle",
            "cpu-2.cpu.idle",
            "cpu.cpu.idle",
            "cpu.cpu.user",
            "memory.memory.free",
            "memory.memory.used",
            "memory.percent.used",
            "df-root.df.free",
            "df-root.df.reserved",
            "df-root.df.used",
            "df-root.percent.used",
            "interface-eth0.if_errors.rx",
            "interface-eth0.if_octets.rx",
            "interface-eth0.if_packets.rx",
        ];
        t.record(0.0, names.iter().map(|n| r(n, 1.0)).collect());
        let group = |g: &str| -> Vec<String> { t.group(g).map(|(n, _)| n.clone()).collect() };
        assert_eq!(
            group("load"),
            [
                "load.load.shortterm",
                "load.load.midterm",
                "load.load.longterm"
            ]
        );
        assert_eq!(
            group("cpu"),
            [
                "cpu.cpu.user",
                "cpu.cpu.idle",
                "cpu-2.cpu.idle",
                "cpu-10.cpu.idle"
            ]
        );
        assert_eq!(
            group("memory"),
            [
                "memory.percent.used",
                "memory.memory.used",
                "memory.memory.free"
            ]
        );
        assert_eq!(
            group("network"),
            [
                "interface-eth0.if_octets.rx",
                "interface-eth0.if_packets.rx",
                "interface-eth0.if_errors.rx"
            ]
        );
        assert_eq!(
            group("disk"),
            [
                "df-root.percent.used",
                "df-root.df.used",
                "df-root.df.free",
                "df-root.df.reserved"
            ]
        );
    }

    #[test]
    fn groups_and_labels() {
        assert_eq!(group_of("cpu-3.cpu.user"), "cpu");
        assert_eq!(group_of("df-root.percent.used"), "disk");
        assert_eq!(group_of("disk-sda.disk_ops.read"), "disk");
        assert_eq!(group_of("interface-eth0.if_octets.rx"), "network");
        assert_eq!(title("cpu.cpu.idle"), "CPU idle");
        assert_eq!(title("cpu-0.cpu.user"), "Core 0 user");
        assert_eq!(title("load.load.shortterm"), "Load 1-min");
        assert_eq!(title("df-root.percent.used"), "Filesystem root used");
        assert_eq!(title("uptime.uptime.seconds"), "Uptime");
        assert_eq!(title("disk-sda.disk_ops.read"), "Disk sda read operations");
        assert_eq!(
            line("cpu.cpu.idle", Unit::Percent, 97.54),
            "CPU idle: 97.5 %"
        );
        assert_eq!(
            line("memory.memory.available", Unit::Bytes, 24_638_754_816.0),
            "Memory available: 22.9 GiB"
        );
        assert_eq!(
            line("interface-eth0.if_octets.rx", Unit::BytesPerSecond, 2048.0),
            "Interface eth0 rx: 2.0 KiB/s"
        );
        assert_eq!(
            line("load.load.shortterm", Unit::Load, 0.4),
            "Load 1-min: 0.40"
        );
        assert_eq!(
            line("uptime.uptime.seconds", Unit::Seconds, 90_061.0),
            "Uptime: 1 d 1 h"
        );
    }
}
