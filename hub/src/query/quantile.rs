//! Bounded-memory quantiles for `median` and `percentile`.
//!
//! Exact (linear interpolation between closest ranks, like numpy's default) for the first
//! [`EXACT_CAP`] values; after that the P² estimator (Jain & Chlamtac, CACM 1985), seeded from
//! the exact sample, keeps five markers. So a running `median` over months of events costs a few
//! kilobytes per name, and a `percentile 99 (100000)` window does too. In estimator mode NaN
//! values are ignored; the minimum and maximum stay exact.

/// Values kept exactly before switching to the P² estimate.
pub(crate) const EXACT_CAP: usize = 512;

#[derive(Debug, Clone)]
pub(crate) struct Quantile {
    p: f64,
    mode: Mode,
    /// Whether the exact sample is sorted.
    sorted: bool,
    /// Append and sort when the value is asked for (a `percentile` window, asked once per
    /// window) rather than insert in order (a running `median`, asked after every event).
    lazy: bool,
}

#[derive(Debug, Clone)]
enum Mode {
    Exact(Vec<f64>),
    Estimate(Box<P2>),
}

impl Quantile {
    /// `p` in `0.0 ..= 1.0`, for a value asked after every push.
    pub(crate) fn new(p: f64) -> Self {
        Quantile {
            p: p.clamp(0.0, 1.0),
            mode: Mode::Exact(Vec::new()),
            sorted: true,
            lazy: false,
        }
    }

    /// `p` in `0.0 ..= 1.0`, for a value asked rarely.
    pub(crate) fn lazy(p: f64) -> Self {
        Quantile {
            lazy: true,
            ..Quantile::new(p)
        }
    }

    pub(crate) fn reset(&mut self) {
        match &mut self.mode {
            Mode::Exact(v) => v.clear(),
            Mode::Estimate(_) => self.mode = Mode::Exact(Vec::new()),
        }
        self.sorted = true;
    }

    pub(crate) fn push(&mut self, x: f64) {
        match &mut self.mode {
            Mode::Exact(v) if v.len() < EXACT_CAP && self.lazy => {
                if v.last().is_some_and(|last| last.total_cmp(&x).is_gt()) {
                    self.sorted = false;
                }
                v.push(x);
            }
            Mode::Exact(v) if v.len() < EXACT_CAP => {
                let at = v.partition_point(|y| y.total_cmp(&x).is_lt());
                v.insert(at, x);
            }
            Mode::Exact(v) => {
                if !self.sorted {
                    v.sort_unstable_by(f64::total_cmp);
                    self.sorted = true;
                }
                let mut est = Box::new(P2::from_sorted(v, self.p));
                est.push(x);
                self.mode = Mode::Estimate(est);
            }
            Mode::Estimate(est) => est.push(x),
        }
    }

    /// The current quantile; NaN before any value.
    pub(crate) fn value(&mut self) -> f64 {
        match &mut self.mode {
            Mode::Exact(v) => {
                if !self.sorted {
                    v.sort_unstable_by(f64::total_cmp);
                    self.sorted = true;
                }
                exact(v, self.p)
            }
            Mode::Estimate(est) => est.value(self.p),
        }
    }
}

fn exact(sorted: &[f64], p: f64) -> f64 {
    let Some(last) = sorted.len().checked_sub(1) else {
        return f64::NAN;
    };
    let h = last as f64 * p;
    let lo = (h.floor() as usize).min(last);
    let hi = (lo + 1).min(last);
    let frac = h - lo as f64;
    if frac == 0.0 || sorted[lo] == sorted[hi] {
        sorted[lo]
    } else {
        sorted[lo] + frac * (sorted[hi] - sorted[lo])
    }
}

/// Five markers: heights `q`, actual positions `n`, desired positions `want`, increments `dn`.
#[derive(Debug, Clone)]
struct P2 {
    q: [f64; 5],
    n: [f64; 5],
    want: [f64; 5],
    dn: [f64; 5],
}

impl P2 {
    /// Seeds the markers from a sorted sample of at least five values.
    fn from_sorted(sorted: &[f64], p: f64) -> Self {
        let len = sorted.len().max(5);
        let last = (len - 1) as f64;
        let dn = [0.0, p / 2.0, p, (1.0 + p) / 2.0, 1.0];
        let want = dn.map(|d| d * last);
        let mut n = want.map(f64::round);
        for i in 1..4 {
            n[i] = n[i].max(n[i - 1] + 1.0);
        }
        for i in (1..4).rev() {
            n[i] = n[i].min(n[i + 1] - 1.0);
        }
        let at = |pos: f64| sorted.get(pos as usize).copied().unwrap_or(f64::NAN);
        P2 {
            q: n.map(at),
            n,
            want,
            dn,
        }
    }

    fn push(&mut self, x: f64) {
        if x.is_nan() {
            return;
        }
        let q = &mut self.q;
        let k = if x < q[0] {
            q[0] = x;
            0
        } else if x < q[1] {
            0
        } else if x < q[2] {
            1
        } else if x < q[3] {
            2
        } else if x <= q[4] {
            3
        } else {
            q[4] = x;
            3
        };
        for n in &mut self.n[k + 1..] {
            *n += 1.0;
        }
        for (w, d) in self.want.iter_mut().zip(self.dn) {
            *w += d;
        }
        for i in 1..4 {
            let d = self.want[i] - self.n[i];
            let room_up = self.n[i + 1] - self.n[i] > 1.0;
            let room_down = self.n[i - 1] - self.n[i] < -1.0;
            if (d >= 1.0 && room_up) || (d <= -1.0 && room_down) {
                let s = d.signum();
                let candidate = self.parabolic(i, s);
                self.q[i] = if self.q[i - 1] < candidate && candidate < self.q[i + 1] {
                    candidate
                } else {
                    self.linear(i, s)
                };
                self.n[i] += s;
            }
        }
    }

    fn parabolic(&self, i: usize, s: f64) -> f64 {
        let (q, n) = (&self.q, &self.n);
        q[i] + s / (n[i + 1] - n[i - 1])
            * ((n[i] - n[i - 1] + s) * (q[i + 1] - q[i]) / (n[i + 1] - n[i])
                + (n[i + 1] - n[i] - s) * (q[i] - q[i - 1]) / (n[i] - n[i - 1]))
    }

    fn linear(&self, i: usize, s: f64) -> f64 {
        let j = if s > 0.0 { i + 1 } else { i - 1 };
        self.q[i] + s * (self.q[j] - self.q[i]) / (self.n[j] - self.n[i])
    }

    fn value(&self, p: f64) -> f64 {
        if p <= 0.0 {
            self.q[0]
        } else if p >= 1.0 {
            self.q[4]
        } else {
            self.q[2]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quantile_of(p: f64, values: impl IntoIterator<Item = f64> + Clone) -> f64 {
        let mut eager = Quantile::new(p);
        let mut lazy = Quantile::lazy(p);
        for v in values {
            eager.push(v);
            lazy.push(v);
        }
        let (a, b) = (eager.value(), lazy.value());
        assert!(a.to_bits() == b.to_bits(), "{a} != {b}");
        a
    }

    #[test]
    fn exact_median_and_percentiles() {
        assert!(quantile_of(0.5, []).is_nan());
        assert_eq!(quantile_of(0.5, [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(quantile_of(0.5, [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(quantile_of(0.0, [4.0, 1.0, 3.0]), 1.0);
        assert_eq!(quantile_of(1.0, [4.0, 1.0, 3.0]), 4.0);
        assert!((quantile_of(0.9, (1..=11).map(f64::from)) - 10.0).abs() < 1e-9);
        assert_eq!(
            quantile_of(0.5, [f64::INFINITY, f64::INFINITY]),
            f64::INFINITY
        );
    }

    #[test]
    fn estimate_stays_close_and_bounded() {
        // A shuffled ramp 0..100000: the true median is ~50000, p99 ~99000.
        let values = (0..100_000u64).map(|i| ((i * 7919) % 100_000) as f64);
        let median = quantile_of(0.5, values.clone());
        assert!((median - 50_000.0).abs() < 1_000.0, "{median}");
        let p99 = quantile_of(0.99, values.clone());
        assert!((p99 - 99_000.0).abs() < 1_000.0, "{p99}");
        assert_eq!(quantile_of(0.0, values.clone()), 0.0);
        assert_eq!(quantile_of(1.0, values), 99_999.0);
    }

    #[test]
    fn estimate_survives_nan_inf_and_extreme_p() {
        for p in [0.0, 1e-9, 0.5, 1.0 - 1e-9, 1.0] {
            let mut q = Quantile::new(p);
            for i in 0..2_000 {
                q.push(match i % 4 {
                    0 => f64::NAN,
                    1 => f64::INFINITY,
                    2 => f64::NEG_INFINITY,
                    _ => i as f64,
                });
            }
            let _ = q.value();
            q.reset();
            assert!(q.value().is_nan());
        }
    }
}
