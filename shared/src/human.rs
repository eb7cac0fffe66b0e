//! Values as people read them, for labels, item names, notes and chat lines (payloads keep raw
//! numbers): binary units for bytes, one decimal for percentages, durations in days, hours and
//! minutes, times of day in UTC.

const BINARY: [&str; 7] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB"];

/// Bytes in binary units: `512 B`, `1.5 KiB`, `22.9 GiB`.
pub fn bytes(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v} B");
    }
    if v.abs() < 1024.0 {
        return format!("{} B", v.round());
    }
    let mut scaled = v / 1024.0;
    let mut unit = BINARY[0];
    for u in &BINARY[1..] {
        if scaled.abs() < 1024.0 {
            break;
        }
        scaled /= 1024.0;
        unit = u;
    }
    format!("{scaled:.1} {unit}")
}

/// Bytes per second: `1.2 MiB/s`.
pub fn bytes_per_second(v: f64) -> String {
    format!("{}/s", bytes(v))
}

/// A rate of anything else: `12.3/s`, `0/s`.
pub fn per_second(v: f64) -> String {
    format!("{}/s", trimmed(v, 1))
}

/// A percentage with one decimal: `97.5 %`.
pub fn percent(v: f64) -> String {
    format!("{v:.1} %")
}

/// A plain number: integers without a fraction, others with at most `decimals` decimals.
pub fn trimmed(v: f64, decimals: usize) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A duration: `45 s`, `12 min 5 s`, `3 h 4 min`, `12 d 3 h`.
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return format!("{secs} s");
    }
    let s = secs.round() as u64;
    let (d, h, m, s) = (s / 86_400, s / 3_600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// The time of day of `epoch` seconds, in UTC: `12:00:03`.
pub fn utc_time(epoch: f64) -> String {
    let secs = if epoch.is_finite() && epoch > 0.0 {
        epoch as u64
    } else {
        0
    };
    let t = secs % 86_400;
    format!("{:02}:{:02}:{:02}", t / 3_600, t / 60 % 60, t % 60)
}

/// How long ago `then` was at `now`: `3 s ago`, `never` for `None`.
pub fn ago(now: f64, then: Option<f64>) -> String {
    match then {
        Some(t) => format!("{} ago", duration((now - t).max(0.0))),
        None => "never".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_in_binary_units() {
        assert_eq!(bytes(0.0), "0 B");
        assert_eq!(bytes(1023.0), "1023 B");
        assert_eq!(bytes(1024.0), "1.0 KiB");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(bytes(24_638_754_816.0), "22.9 GiB");
        assert_eq!(bytes(5.0 * 1024f64.powi(4)), "5.0 TiB");
        assert_eq!(bytes_per_second(1_258_291.2), "1.2 MiB/s");
    }

    #[test]
    fn numbers_percent_and_rates() {
        assert_eq!(percent(97.54), "97.5 %");
        assert_eq!(percent(100.0), "100.0 %");
        assert_eq!(per_second(12.34), "12.3/s");
        assert_eq!(per_second(0.0), "0/s");
        assert_eq!(trimmed(0.42, 2), "0.42");
        assert_eq!(trimmed(0.4, 2), "0.4");
        assert_eq!(trimmed(42.0, 2), "42");
        assert_eq!(trimmed(12.3456, 3), "12.346");
    }

    #[test]
    fn durations_and_times() {
        assert_eq!(duration(45.2), "45 s");
        assert_eq!(duration(725.0), "12 min 5 s");
        assert_eq!(duration(3.0 * 3600.0 + 240.0), "3 h 4 min");
        assert_eq!(duration(12.0 * 86_400.0 + 3.0 * 3600.0 + 59.0), "12 d 3 h");
        assert_eq!(utc_time(1_763_812_803.5), "12:00:03");
        assert_eq!(ago(10.0, Some(7.0)), "3 s ago");
        assert_eq!(ago(10.0, None), "never");
    }
}
