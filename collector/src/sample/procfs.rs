//! Pure parsers for the /proc files sysinfo does not cover (CPU time split, load and task
//! counts, memory detail, block-device counters, uptime). Each takes the file's text.

/// One `cpu` line of /proc/stat, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

impl CpuTimes {
    /// Ticks spent in any state (guest time is already inside user/nice).
    pub fn total(&self) -> u64 {
        self.user
            + self.nice
            + self.system
            + self.idle
            + self.iowait
            + self.irq
            + self.softirq
            + self.steal
    }
}

/// /proc/stat: the aggregate line and one per core, in core order.
pub fn parse_stat(text: &str) -> (Option<CpuTimes>, Vec<CpuTimes>) {
    let mut all = None;
    let mut cores = Vec::new();
    for line in text.lines() {
        let mut parts = line.split_ascii_whitespace();
        let Some(label) = parts.next() else { continue };
        if !label.starts_with("cpu") {
            continue;
        }
        let v: Vec<u64> = parts.map(|p| p.parse().unwrap_or(0)).collect();
        let get = |i: usize| v.get(i).copied().unwrap_or(0);
        let t = CpuTimes {
            user: get(0),
            nice: get(1),
            system: get(2),
            idle: get(3),
            iowait: get(4),
            irq: get(5),
            softirq: get(6),
            steal: get(7),
        };
        if label == "cpu" {
            all = Some(t);
        } else {
            cores.push(t);
        }
    }
    (all, cores)
}

/// /proc/loadavg: the three averages, running and total task counts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadAvg {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
    pub running: u64,
    pub total: u64,
}

pub fn parse_loadavg(text: &str) -> Option<LoadAvg> {
    let mut p = text.split_ascii_whitespace();
    let one = p.next()?.parse().ok()?;
    let five = p.next()?.parse().ok()?;
    let fifteen = p.next()?.parse().ok()?;
    let (running, total) = p.next()?.split_once('/')?;
    Some(LoadAvg {
        one,
        five,
        fifteen,
        running: running.parse().ok()?,
        total: total.parse().ok()?,
    })
}

/// /proc/meminfo figures, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MemInfo {
    pub total: u64,
    pub free: u64,
    pub available: u64,
    pub buffers: u64,
    pub cached: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

pub fn parse_meminfo(text: &str) -> MemInfo {
    let mut m = MemInfo::default();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let kib: u64 = rest
            .split_ascii_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let bytes = kib * 1024;
        match key {
            "MemTotal" => m.total = bytes,
            "MemFree" => m.free = bytes,
            "MemAvailable" => m.available = bytes,
            "Buffers" => m.buffers = bytes,
            "Cached" => m.cached = bytes,
            "SwapTotal" => m.swap_total = bytes,
            "SwapFree" => m.swap_free = bytes,
            _ => {}
        }
    }
    m
}

/// One device of /proc/diskstats.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskCounters {
    pub device: String,
    pub reads: u64,
    pub read_bytes: u64,
    pub writes: u64,
    pub write_bytes: u64,
}

pub fn parse_diskstats(text: &str) -> Vec<DiskCounters> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_ascii_whitespace().collect();
            if f.len() < 10 {
                return None;
            }
            let n = |i: usize| f[i].parse::<u64>().ok();
            Some(DiskCounters {
                device: f[2].to_string(),
                reads: n(3)?,
                read_bytes: n(5)? * 512,
                writes: n(7)?,
                write_bytes: n(9)? * 512,
            })
        })
        .collect()
}

/// One interface of /proc/net/dev: (name, [rx bytes, tx bytes, rx packets, tx packets,
/// rx errors, tx errors]).
pub fn parse_netdev(text: &str) -> Vec<(String, [u64; 6])> {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let f: Vec<u64> = rest
                .split_ascii_whitespace()
                .map(|v| v.parse().unwrap_or(0))
                .collect();
            if f.len() < 16 {
                return None;
            }
            // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets errs …
            Some((
                name.trim().to_string(),
                [f[0], f[8], f[1], f[9], f[2], f[10]],
            ))
        })
        .collect()
}

/// /proc/uptime: seconds since boot.
pub fn parse_uptime(text: &str) -> Option<f64> {
    text.split_ascii_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat() {
        let text = "cpu  100 5 50 800 10 2 3 30 0 0\ncpu0 50 0 25 400 5 1 1 15 0 0\ncpu1 50 5 25 400 5 1 2 15 0 0\nintr 1 2\n";
        let (all, cores) = parse_stat(text);
        let all = all.unwrap();
        assert_eq!(all.user, 100);
        assert_eq!(all.steal, 30);
        assert_eq!(all.total(), 1000);
        assert_eq!(cores.len(), 2);
        assert_eq!(cores[1].nice, 5);
    }

    #[test]
    fn loadavg() {
        let l = parse_loadavg("0.42 0.40 0.38 2/345 6789\n").unwrap();
        assert_eq!((l.one, l.running, l.total), (0.42, 2, 345));
        assert!(parse_loadavg("garbage").is_none());
    }

    #[test]
    fn meminfo() {
        let m = parse_meminfo("MemTotal:       16000 kB\nMemFree:  1000 kB\nMemAvailable: 8000 kB\nBuffers: 100 kB\nCached: 2000 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n");
        assert_eq!(m.total, 16000 * 1024);
        assert_eq!(m.available, 8000 * 1024);
        assert_eq!(m.cached, 2000 * 1024);
    }

    #[test]
    fn diskstats() {
        let d =
            parse_diskstats("   8       0 sda 100 0 2000 50 30 0 800 10 0 60 60 0 0 0 0\n short\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].device, "sda");
        assert_eq!(d[0].read_bytes, 2000 * 512);
        assert_eq!(d[0].writes, 30);
    }

    #[test]
    fn netdev() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n  eth0: 5 6 7 0 0 0 0 0 8 9 10 0 0 0 0 0\n";
        let d = parse_netdev(text);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0], ("lo".to_string(), [1000, 2000, 10, 20, 0, 0]));
        assert_eq!(d[1].1, [5, 8, 6, 9, 7, 10]);
    }

    #[test]
    fn uptime() {
        assert_eq!(parse_uptime("12345.67 999.0\n"), Some(12345.67));
    }
}
