//! Noticing that the server throttles the hub (pure). A server's per-client rate limit
//! (Prosody's `limits`, ejabberd's `c2s_shaper`) makes it read the hub's socket slowly, so the
//! stanzas the server has not taken yet — the session's backlog — grow. The hub says so once
//! per episode (log and the `collectors` note, naming the setting to change), and while the
//! backlog is deep it holds event messages back in the users' own queues, where the delivery
//! rules drop and count them, so that its reading never waits on a full outgoing queue.

/// Backlog that counts as "growing": more than a burst of one tick's worth at normal rates.
pub const NOTICE_AT: usize = 64;
/// How long the backlog must stay at [`NOTICE_AT`] or more before the hub says it is throttled.
pub const NOTICE_AFTER_SECS: f64 = 3.0;
/// Backlog at which event messages are held back ...
pub const HOLD_AT: usize = 1024;
/// ... until it is down to this.
pub const RELEASE_AT: usize = 256;
/// While an episode lasts, event messages are held already at this backlog ...
pub const THROTTLED_HOLD_AT: usize = NOTICE_AT;
/// ... until it is down to this: what the hub answers (commands, queries) then waits behind a
/// few dozen stanzas, not a thousand (seconds, not minutes, at ejabberd's stock 3,000 B/s).
pub const THROTTLED_RELEASE_AT: usize = 16;
/// How long the backlog must stay under [`NOTICE_AT`] before the episode is over.
pub const CLEAR_AFTER_SECS: f64 = 30.0;

/// What changed with one observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Episode {
    /// The server has been reading slowly for a while: `backlog` stanzas wait.
    Began { backlog: usize },
    /// The backlog has stayed small long enough.
    Ended,
}

/// The throttling watch.
#[derive(Debug, Default)]
pub struct Throttle {
    growing_since: Option<f64>,
    calm_since: Option<f64>,
    throttled: bool,
    holding: bool,
    peak: usize,
}

impl Throttle {
    /// Records the backlog seen at `now`; returns the start or end of an episode.
    pub fn observe(&mut self, backlog: usize, now: f64) -> Option<Episode> {
        let (hold_at, release_at) = if self.throttled {
            (THROTTLED_HOLD_AT, THROTTLED_RELEASE_AT)
        } else {
            (HOLD_AT, RELEASE_AT)
        };
        self.holding = if self.holding {
            backlog > release_at
        } else {
            backlog >= hold_at
        };
        if backlog >= NOTICE_AT {
            self.calm_since = None;
            let since = *self.growing_since.get_or_insert(now);
            if self.throttled {
                self.peak = self.peak.max(backlog);
            } else if now - since >= NOTICE_AFTER_SECS || self.holding {
                self.throttled = true;
                self.peak = backlog;
                return Some(Episode::Began { backlog });
            }
        } else {
            self.growing_since = None;
            let since = *self.calm_since.get_or_insert(now);
            if self.throttled && now - since >= CLEAR_AFTER_SECS {
                self.throttled = false;
                return Some(Episode::Ended);
            }
        }
        None
    }

    /// Whether event messages wait in the users' queues rather than go out now.
    pub fn holding(&self) -> bool {
        self.holding
    }

    /// The note for the `collectors` command while an episode lasts.
    pub fn note(&self) -> Option<String> {
        self.throttled.then(|| {
            format!(
                "The server is throttling the hub (up to {} stanzas waited for it): exempt the \
                 hub's JID from the server's rate limit (Prosody: unlimited_jids; ejabberd: \
                 c2s_shaper none; see docs/operations.md).",
                self.peak
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_burst_is_not_throttling() {
        let mut t = Throttle::default();
        assert_eq!(t.observe(500, 0.0), None);
        assert_eq!(t.observe(500, 2.0), None);
        assert_eq!(t.observe(3, 2.5), None);
        assert_eq!(t.observe(500, 4.0), None, "the clock starts again");
        assert!(t.note().is_none() && !t.holding());
    }

    #[test]
    fn a_lasting_backlog_is_reported_once_and_ends_after_calm() {
        let mut t = Throttle::default();
        assert_eq!(t.observe(100, 0.0), None);
        assert_eq!(t.observe(200, 3.0), Some(Episode::Began { backlog: 200 }));
        assert_eq!(t.observe(300, 4.0), None, "once per episode");
        assert!(t.note().unwrap().contains("up to 300"));
        assert_eq!(t.observe(10, 5.0), None);
        assert_eq!(t.observe(10, 20.0), None);
        assert_eq!(t.observe(100, 21.0), None, "still the same episode");
        assert_eq!(t.observe(10, 22.0), None);
        assert_eq!(t.observe(10, 52.0), Some(Episode::Ended));
        assert!(t.note().is_none());
    }

    #[test]
    fn a_deep_backlog_holds_at_once_with_hysteresis() {
        let mut t = Throttle::default();
        assert_eq!(
            t.observe(HOLD_AT, 0.0),
            Some(Episode::Began { backlog: HOLD_AT })
        );
        assert!(t.holding());
        t.observe(RELEASE_AT, 1.0);
        assert!(t.holding(), "held until the backlog is well down");
        t.observe(THROTTLED_RELEASE_AT, 2.0);
        assert!(!t.holding());
        t.observe(HOLD_AT - 1, 3.0);
        assert!(t.holding(), "during the episode the hub holds much earlier");
    }

    #[test]
    fn during_an_episode_events_are_held_at_a_shallow_backlog() {
        let mut t = Throttle::default();
        t.observe(NOTICE_AT, 0.0);
        assert!(!t.holding(), "not yet throttled: only a deep backlog holds");
        assert_eq!(
            t.observe(NOTICE_AT, 3.0),
            Some(Episode::Began { backlog: NOTICE_AT })
        );
        t.observe(THROTTLED_HOLD_AT, 3.5);
        assert!(t.holding());
        t.observe(THROTTLED_RELEASE_AT + 1, 4.0);
        assert!(t.holding());
        t.observe(THROTTLED_RELEASE_AT, 4.5);
        assert!(!t.holding());
        for (i, b) in [10, 10].into_iter().enumerate() {
            t.observe(b, 5.0 + i as f64 * CLEAR_AFTER_SECS);
        }
        t.observe(THROTTLED_HOLD_AT, 70.0);
        assert!(!t.holding(), "after the episode the deep threshold is back");
    }
}
