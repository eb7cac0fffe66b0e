//! One series of one rule (or of a collector source): the `for` state machine over its events,
//! and the count of its recent changes for flap damping (docs/alerts.md, "Rules", "No floods").

use std::collections::VecDeque;

/// Where a series stands; times are event timestamps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Phase {
    Ok,
    Pending { since: f64 },
    Firing,
    Resolving { since: f64 },
}

#[derive(Debug)]
pub(super) struct Series {
    pub(super) phase: Phase,
    /// Hub times of recent opens and resolves (flap detection).
    pub(super) flaps: VecDeque<f64>,
    pub(super) open: Option<u32>,
    /// After a restore: false conditions are ignored until then.
    pub(super) hold_until: f64,
}

impl Series {
    /// Counts one change (open or resolve) at `now`; true when more than `max` fall within
    /// the last `window` seconds: the series flaps.
    pub(super) fn count_change(&mut self, now: f64, window: f64, max: usize) -> bool {
        self.flaps.push_back(now);
        while self.flaps.front().is_some_and(|t| *t < now - window) {
            self.flaps.pop_front();
        }
        self.flaps.len() > max
    }

    pub(super) fn new() -> Self {
        Series {
            phase: Phase::Ok,
            flaps: VecDeque::new(),
            open: None,
            hold_until: 0.0,
        }
    }
}

/// What a series' condition did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Step {
    /// Opened; the condition began to hold at this event time.
    Open {
        held_since: f64,
    },
    Resolve,
}

impl Phase {
    /// The `for` rule: the condition must hold `for_secs` (event time) to open, and fail as
    /// long to resolve; with `for_secs` zero both happen at the first event.
    pub(super) fn step(&mut self, cond: bool, t: f64, for_secs: f64) -> Option<Step> {
        match (*self, cond) {
            (Phase::Ok, true) => {
                *self = Phase::Pending { since: t };
                self.step(true, t, for_secs)
            }
            (Phase::Pending { since }, true) if t - since >= for_secs => {
                *self = Phase::Firing;
                Some(Step::Open { held_since: since })
            }
            (Phase::Pending { .. }, false) => {
                *self = Phase::Ok;
                None
            }
            (Phase::Firing, false) => {
                *self = Phase::Resolving { since: t };
                self.step(false, t, for_secs)
            }
            (Phase::Resolving { since }, false) if t - since >= for_secs => {
                *self = Phase::Ok;
                Some(Step::Resolve)
            }
            (Phase::Resolving { .. }, true) => {
                *self = Phase::Firing;
                None
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_holds_before_opening_and_before_resolving() {
        let mut p = Phase::Ok;
        assert_eq!(p.step(true, 0.0, 300.0), None);
        assert_eq!(p.step(true, 299.0, 300.0), None);
        assert_eq!(
            p.step(true, 300.0, 300.0),
            Some(Step::Open { held_since: 0.0 })
        );
        assert_eq!(p.step(true, 310.0, 300.0), None);
        assert_eq!(p.step(false, 320.0, 300.0), None);
        // True again within `for`: still firing, and the resolve clock starts over.
        assert_eq!(p.step(true, 330.0, 300.0), None);
        assert_eq!(p.step(false, 400.0, 300.0), None);
        assert_eq!(p.step(false, 699.0, 300.0), None);
        assert_eq!(p.step(false, 700.0, 300.0), Some(Step::Resolve));
        assert_eq!(p, Phase::Ok);
        // A false event while pending starts over.
        assert_eq!(p.step(true, 800.0, 300.0), None);
        assert_eq!(p.step(false, 900.0, 300.0), None);
        assert_eq!(p.step(true, 1000.0, 300.0), None);
        assert_eq!(p.step(true, 1200.0, 300.0), None);
        // With `for` zero both happen at the first event.
        let mut p = Phase::Ok;
        assert_eq!(p.step(true, 5.0, 0.0), Some(Step::Open { held_since: 5.0 }));
        assert_eq!(p.step(false, 6.0, 0.0), Some(Step::Resolve));
    }

    #[test]
    fn more_than_max_changes_in_the_window_is_flapping() {
        let mut s = Series::new();
        for t in [0.0, 10.0, 20.0] {
            assert!(!s.count_change(t, 60.0, 3));
        }
        assert!(s.count_change(30.0, 60.0, 3));
        // Changes older than the window no longer count.
        assert!(!s.count_change(85.0, 60.0, 3));
        assert_eq!(s.flaps, [30.0, 85.0]);
    }
}
