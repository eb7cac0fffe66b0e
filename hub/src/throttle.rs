//! Noticing that the server throttles the hub, and pacing event messages to what it takes
//! (pure). A server's per-client rate limit (Prosody's `limits`, ejabberd's `c2s_shaper`) — or a
//! server too busy to keep up — reads the hub's socket slowly, so the stanzas the server has not
//! taken yet — the session's backlog — grow. The hub says so once per episode (log and the
//! `collectors` note, naming the setting to change), and sends event messages only while the
//! backlog is under a window: the rest wait in the users' own queues, where the delivery rules
//! drop and count them, so that its reading never waits on a full outgoing queue. Events keep
//! flowing at the rate the server takes stanzas; they are never held until the backlog is gone.

/// Backlog that counts as "growing": more than a burst of one tick's worth at normal rates.
pub const NOTICE_AT: usize = 64;
/// How long the backlog must stay at [`NOTICE_AT`] or more before the hub says it is throttled.
pub const NOTICE_AFTER_SECS: f64 = 3.0;
/// Backlog up to which event messages go out ...
pub const WINDOW: usize = 1024;
/// ... and during an episode: what the hub answers (commands, queries) then waits behind a few
/// dozen stanzas, not a thousand (seconds, not minutes, at ejabberd's stock 3,000 B/s).
pub const THROTTLED_WINDOW: usize = NOTICE_AT;
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
    backlog: usize,
    peak: usize,
}

impl Throttle {
    /// Records the backlog seen at `now`; returns the start or end of an episode.
    pub fn observe(&mut self, backlog: usize, now: f64) -> Option<Episode> {
        self.backlog = backlog;
        if backlog >= NOTICE_AT {
            self.calm_since = None;
            let since = *self.growing_since.get_or_insert(now);
            if self.throttled {
                self.peak = self.peak.max(backlog);
            } else if now - since >= NOTICE_AFTER_SECS || backlog >= WINDOW {
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

    /// How many event messages may go out now: what keeps the backlog under the window.
    pub fn room(&self) -> usize {
        let window = if self.throttled {
            THROTTLED_WINDOW
        } else {
            WINDOW
        };
        window.saturating_sub(self.backlog)
    }

    /// Counts messages just handed to the session (the backlog grows by them until the next
    /// observation).
    pub fn sent(&mut self, n: usize) {
        self.backlog += n;
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
        assert!(t.note().is_none());
        assert_eq!(t.room(), WINDOW - 500);
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
    fn events_fill_the_window_and_the_window_narrows_during_an_episode() {
        let mut t = Throttle::default();
        assert_eq!(t.room(), WINDOW);
        t.observe(NOTICE_AT, 0.0);
        assert_eq!(
            t.room(),
            WINDOW - NOTICE_AT,
            "not yet throttled: the wide window"
        );
        t.sent(10);
        assert_eq!(
            t.room(),
            WINDOW - NOTICE_AT - 10,
            "what was just sent counts"
        );
        assert_eq!(
            t.observe(NOTICE_AT, 3.0),
            Some(Episode::Began { backlog: NOTICE_AT })
        );
        assert_eq!(
            t.room(),
            0,
            "throttled: nothing more at a full narrow window"
        );
        t.observe(THROTTLED_WINDOW - 5, 4.0);
        assert_eq!(
            t.room(),
            5,
            "a server that takes stanzas slowly still gets events"
        );
        t.observe(10, 5.0);
        t.observe(10, 5.0 + CLEAR_AFTER_SECS);
        assert_eq!(
            t.room(),
            WINDOW - 10,
            "after the episode the wide window is back"
        );
    }

    #[test]
    fn a_backlog_past_the_window_is_an_episode_at_once() {
        let mut t = Throttle::default();
        assert_eq!(
            t.observe(WINDOW, 0.0),
            Some(Episode::Began { backlog: WINDOW })
        );
        assert_eq!(t.room(), 0);
    }
}
