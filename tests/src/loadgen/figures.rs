//! Pure helpers of the load generator: percentiles, `/proc` readings, the hub's `stats` form,
//! the synthetic metric names and values.

use std::collections::HashMap;

use minidom::Element;
use xmpp_parsers::data_forms::DataForm;

/// p50, p99 and max of `values` (ms), sorting them; zeros when empty.
pub fn percentiles(values: &mut [f64]) -> (f64, f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    values.sort_by(f64::total_cmp);
    let at = |p: f64| values[(((values.len() - 1) as f64) * p).round() as usize];
    (at(0.5), at(0.99), values[values.len() - 1])
}

/// One process's figures from `/proc`: resident KiB and utime + stime in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcFigures {
    pub rss_kib: u64,
    pub ticks: u64,
}

/// Parses `/proc/PID/status` and `/proc/PID/stat`.
pub fn parse_proc(status: &str, stat: &str) -> ProcFigures {
    let rss_kib = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    // Fields after the command name, which may hold spaces: state is field 3, utime 14.
    let rest = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    ProcFigures {
        rss_kib,
        ticks: tick(11) + tick(12),
    }
}

/// Reads [`ProcFigures`] of `pid` (zeros when it is gone).
pub fn proc_figures(pid: u32) -> ProcFigures {
    let read = |f: &str| std::fs::read_to_string(format!("/proc/{pid}/{f}")).unwrap_or_default();
    parse_proc(&read("status"), &read("stat"))
}

/// The 1-minute load average.
pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The soft limit on open files of this process.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The fields of the hub's `stats` command response (`<command/>` with a result form).
pub fn stats_fields(command: &Element) -> HashMap<String, String> {
    command
        .get_child("x", xmpp_parsers::ns::DATA_FORMS)
        .and_then(|x| DataForm::try_from(x.clone()).ok())
        .map(|form| {
            form.fields
                .into_iter()
                .filter_map(|f| Some((f.var?, f.values.into_iter().next()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// The realistic part of a collector's metric names; [`metric_names`] pads them.
const BASE: [&str; 24] = [
    "cpu.cpu.idle",
    "cpu.cpu.user",
    "cpu.cpu.system",
    "cpu.cpu.iowait",
    "cpu.cpu.steal",
    "load.load.1",
    "load.load.5",
    "load.load.15",
    "memory.percent.used",
    "memory.memory.used",
    "memory.memory.free",
    "memory.memory.cached",
    "swap.percent.used",
    "df-root.percent.used",
    "df-root.df.free",
    "df-var.percent.used",
    "df-var.df.free",
    "processes.ps_state.running",
    "processes.ps_state.total",
    "uptime.uptime",
    "interface-eth0.if_octets.rx",
    "interface-eth0.if_octets.tx",
    "interface-eth0.if_packets.rx",
    "interface-eth0.if_packets.tx",
];

/// `n` metric names as a collector publishes them (without the host): the common ones, then
/// per-disk and per-core series.
pub fn metric_names(n: usize) -> Vec<String> {
    let mut names: Vec<String> = BASE.iter().take(n).map(|s| s.to_string()).collect();
    let mut k = 0;
    while names.len() < n {
        let name = match k % 3 {
            0 => format!("disk-vd{}.disk_octets.read", k / 3),
            1 => format!("disk-vd{}.disk_octets.write", k / 3),
            _ => format!("cpu-{}.cpu.user", k / 3),
        };
        names.push(name);
        k += 1;
    }
    names
}

/// A small fast random generator (xorshift64*), one per synthetic collector.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The host label of synthetic collector `i`.
pub fn host(i: usize) -> String {
    format!("lg{i:05}")
}

/// The queries of user `u` (of `per_user`), over a fleet of `n` collectors: single series,
/// host anchors, thresholds over the fleet, smoothing and change detection.
pub fn queries(u: usize, per_user: usize, n: usize) -> Vec<String> {
    (0..per_user)
        .map(|j| {
            let h = host((u * 7919 + j * 104_729) % n.max(1));
            match j % 6 {
                0 => format!("SELECT id FROM ^{h}\\.load\\.load\\.1$;"),
                1 => "SELECT [> 99] FROM ^.*\\.cpu\\.cpu\\.user$;".to_string(),
                2 => format!("SELECT ewma 0.3 FROM ^{h}\\.memory\\.percent\\.used$;"),
                3 => format!("SELECT changed FROM ^{h}\\.df-root\\.percent\\.used$;"),
                4 => format!("SELECT window 10 (mean) FROM ^{h}\\.cpu\\.cpu\\.idle$;"),
                _ => format!("SELECT mean | (* 100) | [> 50] FROM ^{h}\\.swap\\.percent\\.used$;"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_sample() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentiles(&mut v), (51.0, 99.0, 100.0));
        assert_eq!(percentiles(&mut []), (0.0, 0.0, 0.0));
    }

    #[test]
    fn proc_files_parse() {
        let status = "Name:\tx\nVmRSS:\t  12345 kB\n";
        let stat = "42 (a b) S 1 2 3 4 5 6 7 8 9 10 100 50 0 0";
        assert_eq!(
            parse_proc(status, stat),
            ProcFigures {
                rss_kib: 12345,
                ticks: 150
            }
        );
        assert_eq!(parse_proc("", ""), ProcFigures::default());
    }

    #[test]
    fn names_are_distinct_and_as_many_as_asked() {
        let names = metric_names(90);
        assert_eq!(names.len(), 90);
        let set: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(set.len(), 90);
        assert_eq!(
            metric_names(3),
            ["cpu.cpu.idle", "cpu.cpu.user", "cpu.cpu.system"]
        );
    }

    #[test]
    fn rng_stays_in_the_unit_interval() {
        let mut r = Rng::new(7);
        let v: Vec<f64> = (0..1000).map(|_| r.unit()).collect();
        assert!(v.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(v.iter().any(|x| *x > 0.9) && v.iter().any(|x| *x < 0.1));
    }

    #[test]
    fn stats_form_fields_are_read() {
        let xml = "<command xmlns='http://jabber.org/protocol/commands' node='stats' status='completed'><x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:jabmon:hub:stats:0</value></field><field var='alive' type='text-single'><value>50</value></field></x></command>";
        let el: Element = xml.parse().unwrap();
        let f = stats_fields(&el);
        assert_eq!(f.get("alive").map(String::as_str), Some("50"));
    }

    #[test]
    fn every_query_names_a_host_of_the_fleet_or_all() {
        let q = queries(3, 12, 50);
        assert_eq!(q.len(), 12);
        assert!(q
            .iter()
            .all(|s| s.starts_with("SELECT ") && s.ends_with(';')));
        assert!(q
            .iter()
            .filter(|s| s.contains("^lg"))
            .all(|s| s.contains("^lg000")));
    }
}
