//! Reconnect delays: 1 s doubling to 60 s, each with ±20 % jitter so that a fleet of collectors
//! does not hammer a server that just came back all in the same second.

use std::time::Duration;

/// Exponential backoff state.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_secs(1), Duration::from_secs(60))
    }
}

impl Backoff {
    /// Starts at `base`, doubles up to `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            next: base,
        }
    }

    /// The delay before the next attempt; `unit` in [0, 1) picks the jitter.
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d.mul_f64(0.8 + 0.4 * unit.clamp(0.0, 1.0))
    }

    /// After a success, start again from `base`.
    pub fn reset(&mut self) {
        self.next = self.base;
    }
}

/// A random number in [0, 1) without a dependency: the std hasher is randomly keyed.
pub fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_with_bounded_jitter() {
        let mut b = Backoff::default();
        let mid: Vec<u64> = (0..9).map(|_| b.next_delay(0.5).as_secs()).collect();
        assert_eq!(mid, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
        let mut b = Backoff::default();
        assert_eq!(b.next_delay(0.0), Duration::from_millis(800));
        assert_eq!(b.next_delay(1.0), Duration::from_millis(2400));
        b.reset();
        assert_eq!(b.next_delay(0.5), Duration::from_secs(1));
    }

    #[test]
    fn random_unit_in_range() {
        for _ in 0..100 {
            let u = random_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
