//! Presence from load (pure): the busy/critical state machine with hysteresis, the status
//! summary, and the rate limit (re-send at once when `<show/>` changes, otherwise at most once
//! every 60 s — a roster broadcast is not free).

use crate::config::Thresholds;

/// What the presence shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Connected, no sample yet: status `Starting up`.
    Starting,
    Normal,
    /// `<show>away</show>`.
    Busy,
    /// `<show>dnd</show>`.
    Critical,
}

/// Hysteresis on the per-core 1-minute load.
///
/// Busy is entered at `load_busy` and left below `load_busy_clear`. Critical is entered at
/// `load_critical` and left below `load_critical − (load_busy − load_busy_clear)` — the same
/// band width — going to Busy or Normal according to the load.
pub fn next_level(current: Level, per_core_load: f64, t: &Thresholds) -> Level {
    let band = t.load_busy - t.load_busy_clear;
    let critical_clear = (t.load_critical - band).max(t.load_busy_clear);
    let l = per_core_load;
    if l >= t.load_critical || (current == Level::Critical && l >= critical_clear) {
        return Level::Critical;
    }
    if l >= t.load_busy
        || (matches!(current, Level::Busy | Level::Critical) && l >= t.load_busy_clear)
    {
        return Level::Busy;
    }
    Level::Normal
}

/// The status line: `load 0.42 0.40 0.38 · cpu 12% · mem 41%`.
pub fn summary(load: [f64; 3], cpu_busy: f64, mem_used: f64) -> String {
    format!(
        "load {:.2} {:.2} {:.2} · cpu {:.0}% · mem {:.0}%",
        load[0], load[1], load[2], cpu_busy, mem_used
    )
}

/// The status text for a level.
pub fn status(level: Level, summary: &str) -> String {
    match level {
        Level::Starting => "Starting up".to_string(),
        Level::Normal => summary.to_string(),
        Level::Busy => format!("Overloaded. Can't take more jobs. {summary}"),
        Level::Critical => format!("Critical: {summary}"),
    }
}

/// Decides when to re-send presence.
#[derive(Debug, Default)]
pub struct Pacer {
    last: Option<(Level, f64)>,
}

/// Minimum seconds between two presences that do not change `<show/>`.
pub const MIN_INTERVAL: f64 = 60.0;

impl Pacer {
    /// Whether to send now; records the send when it says yes.
    pub fn should_send(&mut self, level: Level, now: f64) -> bool {
        let send = match self.last {
            None => true,
            Some((last, at)) => last != level || now - at >= MIN_INTERVAL,
        };
        if send {
            self.last = Some((level, now));
        }
        send
    }

    /// Forget what was sent (the server lost our presence: send at the next chance).
    pub fn forget(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Thresholds {
        Thresholds::default()
    }

    #[test]
    fn hysteresis_with_fake_loads() {
        let th = t(); // busy 1.0 / clear 0.8, critical 2.0 (clears below 1.8)
        let loads = [0.5, 0.9, 1.0, 0.9, 0.81, 0.79, 2.5, 1.9, 1.7, 0.85, 0.7];
        let mut level = Level::Starting;
        let mut seen = vec![];
        for l in loads {
            level = next_level(level, l, &th);
            seen.push(level);
        }
        use Level::*;
        assert_eq!(
            seen,
            vec![Normal, Normal, Busy, Busy, Busy, Normal, Critical, Critical, Busy, Busy, Normal]
        );
    }

    #[test]
    fn pacing() {
        let mut p = Pacer::default();
        assert!(p.should_send(Level::Starting, 0.0));
        assert!(p.should_send(Level::Normal, 1.0), "show changed");
        assert!(!p.should_send(Level::Normal, 30.0));
        assert!(!p.should_send(Level::Normal, 60.9));
        assert!(p.should_send(Level::Normal, 61.0));
        assert!(p.should_send(Level::Busy, 62.0), "show changed: at once");
        p.forget();
        assert!(p.should_send(Level::Busy, 63.0));
    }

    #[test]
    fn texts() {
        let s = summary([0.42, 0.4, 0.38], 12.2, 41.0);
        assert_eq!(s, "load 0.42 0.40 0.38 · cpu 12% · mem 41%");
        assert!(status(Level::Busy, &s).starts_with("Overloaded. Can't take more jobs."));
        assert!(status(Level::Critical, &s).starts_with("Critical:"));
        assert_eq!(status(Level::Starting, &s), "Starting up");
    }
}
