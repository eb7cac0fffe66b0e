//! Evaluation of a [`Proc`] over the events of one name (docs/protocol.md §6, "Procs").
//!
//! A [`PipeState`] holds the state of every stage of one pipeline for one (registration, event
//! name) pair. Time-driven stages read the event's own timestamp; `absent` alone reads the clock
//! the hub passes to [`tick`]. Nothing here reads the wall clock. Every stage emits at most one
//! event per input, and an output keeps the timestamp of the event that triggered it.

use super::proc::{Millis, PerEvent, Proc, Stage};
use super::quantile::Quantile;

/// The state of one pipeline for one event name.
#[derive(Debug, Clone)]
pub(crate) struct PipeState {
    stages: Vec<StageState>,
}

#[derive(Debug, Clone)]
enum StageState {
    Fold(Fold),
    Window {
        seen: u64,
        body: Vec<Fold>,
    },
    TWindow {
        window: Option<i64>,
        last: Option<f64>,
        body: Vec<Fold>,
    },
    Sma {
        seen: u64,
        avg: f64,
    },
    Ewma(Option<f64>),
    Sample {
        seen: u64,
    },
    /// `rate`/`derive`: the previous (timestamp, value).
    Prev(Option<(f64, f64)>),
    Changed(Option<f64>),
    Throttle {
        start: Option<f64>,
        passed: u64,
    },
    /// `absent`: an event arrived since the last tick; the tick time it was last seen at;
    /// whether the absence was reported already.
    Absent {
        pending: bool,
        seen_at: Option<f64>,
        fired: bool,
    },
    Percentile {
        seen: u64,
        quantile: Quantile,
    },
}

/// The running state of a per-event stage (`None` for the stateless ones).
#[derive(Debug, Clone)]
enum Fold {
    None,
    Sum(f64),
    Prod(f64),
    Min(f64),
    Max(f64),
    Mean { sum: f64, n: u64 },
    Count(u64),
    Quantile(Quantile),
}

impl Fold {
    fn new(s: &PerEvent) -> Fold {
        match s {
            PerEvent::Sum => Fold::Sum(0.0),
            PerEvent::Prod => Fold::Prod(1.0),
            // f64::min/max ignore a NaN operand, so NaN is "no value yet".
            PerEvent::Minimum => Fold::Min(f64::NAN),
            PerEvent::Maximum => Fold::Max(f64::NAN),
            PerEvent::Mean => Fold::Mean { sum: 0.0, n: 0 },
            PerEvent::Count => Fold::Count(0),
            PerEvent::Median => Fold::Quantile(Quantile::new(0.5)),
            _ => Fold::None,
        }
    }

    fn reset(&mut self, s: &PerEvent) {
        match self {
            Fold::Quantile(q) => q.reset(),
            other => *other = Fold::new(s),
        }
    }

    fn apply(&mut self, s: &PerEvent, x: f64) -> f64 {
        match (s, self) {
            (PerEvent::Id, _) => x,
            (PerEvent::Abs, _) => x.abs(),
            (PerEvent::Ceil, _) => x.ceil(),
            (PerEvent::Floor, _) => x.floor(),
            (PerEvent::Round, _) => x.round_ties_even(),
            (PerEvent::Truncate, _) => x.trunc(),
            (
                PerEvent::Arith {
                    op,
                    value,
                    value_first,
                },
                _,
            ) => {
                if *value_first {
                    op.apply(value.0, x)
                } else {
                    op.apply(x, value.0)
                }
            }
            (_, Fold::Sum(acc)) => {
                *acc += x;
                *acc
            }
            (_, Fold::Prod(acc)) => {
                *acc *= x;
                *acc
            }
            (_, Fold::Min(acc)) => {
                *acc = acc.min(x);
                *acc
            }
            (_, Fold::Max(acc)) => {
                *acc = acc.max(x);
                *acc
            }
            (_, Fold::Mean { sum, n }) => {
                *sum += x;
                *n = n.saturating_add(1);
                *sum / *n as f64
            }
            (_, Fold::Count(n)) => {
                *n = n.saturating_add(1);
                *n as f64
            }
            (_, Fold::Quantile(q)) => {
                q.push(x);
                q.value()
            }
            // A fold stage always has its fold state; keep the value if that ever breaks.
            (_, Fold::None) => x,
        }
    }
}

fn apply_body(body: &[PerEvent], folds: &mut [Fold], mut x: f64) -> f64 {
    for (s, f) in body.iter().zip(folds.iter_mut()) {
        x = f.apply(s, x);
    }
    x
}

fn reset_body(body: &[PerEvent], folds: &mut [Fold]) {
    for (s, f) in body.iter().zip(folds.iter_mut()) {
        f.reset(s);
    }
}

fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

impl PipeState {
    pub(crate) fn new(proc: &Proc) -> PipeState {
        let stages = proc
            .stages
            .iter()
            .map(|stage| match stage {
                Stage::PerEvent(s) => StageState::Fold(Fold::new(s)),
                Stage::Window { body, .. } => StageState::Window {
                    seen: 0,
                    body: body.iter().map(Fold::new).collect(),
                },
                Stage::TWindow { body, .. } => StageState::TWindow {
                    window: None,
                    last: None,
                    body: body.iter().map(Fold::new).collect(),
                },
                Stage::Sma(_) => StageState::Sma { seen: 0, avg: 0.0 },
                Stage::Ewma(_) => StageState::Ewma(None),
                Stage::Sample { .. } => StageState::Sample { seen: 0 },
                Stage::Filter { .. } => StageState::Fold(Fold::None),
                Stage::Rate | Stage::Derive => StageState::Prev(None),
                Stage::Changed => StageState::Changed(None),
                Stage::Throttle { .. } => StageState::Throttle {
                    start: None,
                    passed: 0,
                },
                Stage::Absent(_) => StageState::Absent {
                    pending: false,
                    seen_at: None,
                    fired: false,
                },
                Stage::Percentile { pct, .. } => StageState::Percentile {
                    seen: 0,
                    quantile: Quantile::lazy(pct.0 / 100.0),
                },
            })
            .collect();
        PipeState { stages }
    }
}

/// Feeds one event through the pipeline; returns the output value, if any.
pub(crate) fn push(proc: &Proc, state: &mut PipeState, ts: f64, x: f64) -> Option<f64> {
    run(&proc.stages, &mut state.stages, ts, x)
}

/// Advances `absent` stages to clock time `now` (seconds); `emit` gets each output value,
/// whose timestamp is `now`.
pub(crate) fn tick(proc: &Proc, state: &mut PipeState, now: f64, mut emit: impl FnMut(f64)) {
    for i in 0..proc.stages.len().min(state.stages.len()) {
        let (here, after) = state.stages.split_at_mut(i + 1);
        let (
            Stage::Absent(d),
            Some(StageState::Absent {
                pending,
                seen_at,
                fired,
            }),
        ) = (&proc.stages[i], here.last_mut())
        else {
            continue;
        };
        if *pending {
            *pending = false;
            *seen_at = Some(now);
        } else if let Some(seen) = *seen_at {
            if !*fired && now - seen >= d.secs() {
                *fired = true;
                if let Some(v) = run(&proc.stages[i + 1..], after, now, 1.0) {
                    emit(v);
                }
            }
        }
    }
}

fn run(stages: &[Stage], states: &mut [StageState], ts: f64, mut x: f64) -> Option<f64> {
    for (stage, state) in stages.iter().zip(states.iter_mut()) {
        x = step(stage, state, ts, x)?;
    }
    Some(x)
}

fn step(stage: &Stage, state: &mut StageState, ts: f64, x: f64) -> Option<f64> {
    match (stage, state) {
        (Stage::PerEvent(s), StageState::Fold(f)) => Some(f.apply(s, x)),
        (
            Stage::Filter {
                op,
                value,
                value_first,
            },
            _,
        ) => {
            let (a, b) = if *value_first {
                (value.0, x)
            } else {
                (x, value.0)
            };
            op.test(a, b).then_some(x)
        }
        (Stage::Window { size, body }, StageState::Window { seen, body: folds }) => {
            window(*size, body, seen, folds, x)
        }
        (
            Stage::TWindow { width, body },
            StageState::TWindow {
                window,
                last,
                body: folds,
            },
        ) => twindow(*width, body, window, last, folds, ts, x),
        (Stage::Sma(n), StageState::Sma { seen, avg }) => sma(*n, seen, avg, x),
        (Stage::Ewma(a), StageState::Ewma(prev)) => {
            let y = prev.map_or(x, |p| a.0 * p + (1.0 - a.0) * x);
            *prev = Some(y);
            Some(y)
        }
        (Stage::Sample { pass, every }, StageState::Sample { seen }) => {
            let i = *seen;
            *seen = (i + 1) % every;
            (i < *pass).then_some(x)
        }
        (Stage::Rate | Stage::Derive, StageState::Prev(prev)) => {
            slope(matches!(stage, Stage::Rate), prev, ts, x)
        }
        (Stage::Changed, StageState::Changed(last)) => {
            let changed = !last.is_some_and(|l| same(l, x));
            changed.then(|| *last.insert(x))
        }
        (Stage::Throttle { count, per }, StageState::Throttle { start, passed }) => {
            throttle(*count, *per, start, passed, ts, x)
        }
        (Stage::Absent(_), StageState::Absent { pending, fired, .. }) => {
            *pending = true;
            *fired = false;
            None
        }
        (Stage::Percentile { size, .. }, StageState::Percentile { seen, quantile }) => {
            percentile(*size, seen, quantile, x)
        }
        // States are built from the same stages; a mismatch would be a bug: pass through.
        _ => Some(x),
    }
}

/// `window N (body)`: the body's value every N events, then the body starts afresh.
#[inline]
fn window(size: u64, body: &[PerEvent], seen: &mut u64, folds: &mut [Fold], x: f64) -> Option<f64> {
    let y = apply_body(body, folds, x);
    *seen += 1;
    if *seen < size {
        return None;
    }
    *seen = 0;
    reset_body(body, folds);
    Some(y)
}

/// `twindow D (body)`: the last window's value when an event of a later window comes.
#[inline]
fn twindow(
    width: Millis,
    body: &[PerEvent],
    window: &mut Option<i64>,
    last: &mut Option<f64>,
    folds: &mut [Fold],
    ts: f64,
    x: f64,
) -> Option<f64> {
    // Windows are aligned on multiples of the width since the epoch; a late event
    // (earlier window) counts in the current one. `as` saturates (NaN → 0).
    let w = (ts * 1000.0 / width.ms as f64).floor() as i64;
    let mut out = None;
    match *window {
        Some(current) if w > current => {
            out = last.take();
            reset_body(body, folds);
            *window = Some(w);
        }
        Some(_) => {}
        None => *window = Some(w),
    }
    *last = Some(apply_body(body, folds, x));
    out
}

/// `sma N`: an exponential average with weight 2/(N+1), silent for the first half window.
#[inline]
fn sma(n: u64, seen: &mut u64, avg: &mut f64, x: f64) -> Option<f64> {
    let k = 2.0 / (n as f64 + 1.0);
    *avg = if *seen == 0 {
        x
    } else {
        k * x + (1.0 - k) * *avg
    };
    *seen = seen.saturating_add(1);
    (*seen > n.div_ceil(2)).then_some(*avg)
}

/// `rate` (`counter`: a decrease is a reset, skipped) and `derive`: change per second.
#[inline]
fn slope(counter: bool, prev: &mut Option<(f64, f64)>, ts: f64, x: f64) -> Option<f64> {
    let Some((t0, x0)) = *prev else {
        *prev = Some((ts, x));
        return None;
    };
    let dt = ts - t0;
    // Same or earlier timestamp (or NaN): no rate can be computed; keep the old point.
    if dt.is_nan() || dt <= 0.0 {
        return None;
    }
    *prev = Some((ts, x));
    let dx = x - x0;
    // A counter that went down was reset or wrapped: skip one step.
    if counter && dx < 0.0 {
        return None;
    }
    Some(dx / dt)
}

/// `throttle N/D`: at most N events per window of D starting at the first one let through.
#[inline]
fn throttle(
    count: u64,
    per: Millis,
    start: &mut Option<f64>,
    passed: &mut u64,
    ts: f64,
    x: f64,
) -> Option<f64> {
    match *start {
        // Still inside the window (a NaN timestamp also stays in it).
        Some(s) if (ts - s).is_nan() || ts - s < per.secs() => {}
        _ => {
            *start = Some(ts);
            *passed = 0;
        }
    }
    if *passed < count {
        *passed += 1;
        Some(x)
    } else {
        None
    }
}

/// `percentile P (N)`: the P-th percentile of each tumbling block of N events.
#[inline]
fn percentile(size: u64, seen: &mut u64, quantile: &mut Quantile, x: f64) -> Option<f64> {
    quantile.push(x);
    *seen += 1;
    if *seen < size {
        return None;
    }
    *seen = 0;
    let v = quantile.value();
    quantile.reset();
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::super::proc::parse;
    use super::*;
    use proptest::prelude::*;

    /// Runs `proc` over `values` with timestamps 0, 1, 2, … and collects the outputs.
    fn run_values(proc: &str, values: &[f64]) -> Vec<f64> {
        let timed: Vec<(f64, f64)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as f64, *v))
            .collect();
        run_timed(proc, &timed)
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    fn run_timed(proc: &str, events: &[(f64, f64)]) -> Vec<(f64, f64)> {
        let p = parse(proc).unwrap_or_else(|e| panic!("{proc}: {e}"));
        let mut st = PipeState::new(&p);
        events
            .iter()
            .filter_map(|&(t, x)| push(&p, &mut st, t, x).map(|y| (t, y)))
            .collect()
    }

    #[test]
    fn documented_example_table() {
        assert_eq!(run_values("id", &[1.0, 2.0, 3.0]), [1.0, 2.0, 3.0]);
        assert_eq!(run_values("(- 1) | abs | (* 100)", &[0.0]), [100.0]);
        let out = run_values("mean | (* 100) | [> 50]", &[0.2, 0.9, 1.0]);
        assert_eq!(out.len(), 2);
        assert!(
            (out[0] - 55.0).abs() < 1e-9 && (out[1] - 70.0).abs() < 1e-9,
            "{out:?}"
        );
        assert_eq!(
            run_values("window 5 (mean)", &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            [3.0]
        );
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(run_values("sample 1/5", &ten), [1.0, 6.0]);
        assert_eq!(run_values("round", &[0.5, 1.5, 2.5]), [0.0, 2.0, 2.0]);
        assert_eq!(run_values("[2 /=]", &[1.0, 2.0, 3.0]), [1.0, 3.0]);
        assert_eq!(run_values("[/= 2]", &[1.0, 2.0, 3.0]), [1.0, 3.0]);
        assert_eq!(
            run_values("changed", &[1.0, 1.0, 2.0, 2.0, 1.0]),
            [1.0, 2.0, 1.0]
        );
    }

    #[test]
    fn per_value_functions() {
        let xs = [-1.5, -0.5, 0.5, 1.5, 2.5];
        assert_eq!(run_values("abs", &xs), [1.5, 0.5, 0.5, 1.5, 2.5]);
        assert_eq!(run_values("ceil", &xs), [-1.0, -0.0, 1.0, 2.0, 3.0]);
        assert_eq!(run_values("floor", &xs), [-2.0, -1.0, 0.0, 1.0, 2.0]);
        assert_eq!(run_values("round", &xs), [-2.0, -0.0, 0.0, 2.0, 2.0]);
        assert_eq!(run_values("truncate", &xs), [-1.0, -0.0, 0.0, 1.0, 2.0]);
    }

    #[test]
    fn arithmetic_in_both_operand_orders() {
        for (proc, out) in [
            ("(* 2)", 20.0),
            ("(2 *)", 20.0),
            ("(/ 2)", 5.0),
            ("(2 /)", 0.2),
            ("(+ 2)", 12.0),
            ("(2 +)", 12.0),
            ("(- 2)", 8.0),
            ("(2 -)", -8.0),
            ("(- -2)", 12.0),
            ("(-2 -)", -12.0),
        ] {
            assert_eq!(run_values(proc, &[10.0]), [out], "{proc}");
        }
        // IEEE rules: no panic, infinities and NaN flow through.
        assert_eq!(run_values("(/ 0)", &[1.0]), [f64::INFINITY]);
        assert_eq!(run_values("(0 /)", &[0.0]).len(), 1);
        assert!(run_values("(0 /)", &[0.0])[0].is_nan());
        assert!(run_values("(* nan)", &[1.0])[0].is_nan());
        assert_eq!(run_values("(+ -inf)", &[1.0]), [f64::NEG_INFINITY]);
    }

    #[test]
    fn filters_in_both_operand_orders() {
        let xs = [1.0, 2.0, 3.0];
        for (proc, out) in [
            ("[> 2]", vec![3.0]),
            ("[2 >]", vec![1.0]),
            ("[>= 2]", vec![2.0, 3.0]),
            ("[2 >=]", vec![1.0, 2.0]),
            ("[< 2]", vec![1.0]),
            ("[2 <]", vec![3.0]),
            ("[<= 2]", vec![1.0, 2.0]),
            ("[2 <=]", vec![2.0, 3.0]),
            ("[= 2]", vec![2.0]),
            ("[2 =]", vec![2.0]),
            ("[!= 2]", vec![1.0, 3.0]),
            ("[2 !=]", vec![1.0, 3.0]),
            ("[> nan]", vec![]),
            ("[/= nan]", vec![1.0, 2.0, 3.0]),
        ] {
            assert_eq!(run_values(proc, &xs), out, "{proc}");
        }
    }

    #[test]
    fn running_folds_emit_on_every_event() {
        let xs = [3.0, 1.0, 4.0, 1.0, 5.0];
        assert_eq!(run_values("sum", &xs), [3.0, 4.0, 8.0, 9.0, 14.0]);
        assert_eq!(run_values("prod", &xs), [3.0, 3.0, 12.0, 12.0, 60.0]);
        assert_eq!(run_values("minimum", &xs), [3.0, 1.0, 1.0, 1.0, 1.0]);
        assert_eq!(run_values("maximum", &xs), [3.0, 3.0, 4.0, 4.0, 5.0]);
        assert_eq!(run_values("count", &xs), [1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(run_values("mean", &xs), [3.0, 2.0, 8.0 / 3.0, 2.25, 2.8]);
        assert_eq!(run_values("median", &xs), [3.0, 2.0, 3.0, 2.0, 3.0]);
        let m = run_values("minimum", &[f64::NAN, 2.0]);
        assert!(m[0].is_nan());
        assert_eq!(m[1], 2.0);
    }

    #[test]
    fn windows_run_their_body_per_block() {
        let xs: Vec<f64> = (1..=7).map(f64::from).collect();
        assert_eq!(run_values("window 3 (sum)", &xs), [6.0, 15.0]);
        assert_eq!(
            run_values("window 2 (maximum | (* 10))", &xs),
            [20.0, 40.0, 60.0]
        );
        assert_eq!(run_values("window 1 (count)", &[5.0, 5.0]), [1.0, 1.0]);
        assert_eq!(
            run_values("window 4 (median)", &[4.0, 1.0, 3.0, 2.0]),
            [2.5]
        );
    }

    #[test]
    fn sma_swallows_the_first_half_window() {
        // n = 3: k = 0.5, the first ⌊4/2⌋ = 2 events are swallowed.
        assert_eq!(run_values("sma 3", &[2.0, 4.0, 8.0, 0.0]), [5.5, 2.75]);
        assert_eq!(run_values("sma 1", &[2.0, 4.0]), [4.0]);
    }

    #[test]
    fn ewma_seeds_with_the_first_event() {
        assert_eq!(run_values("ewma 0.5", &[2.0, 4.0, 8.0]), [2.0, 3.0, 5.5]);
        assert_eq!(run_values("ewma 1", &[2.0, 4.0]), [2.0, 2.0]);
        assert_eq!(run_values("ewma 0", &[2.0, 4.0]), [2.0, 4.0]);
    }

    #[test]
    fn rate_and_derive_use_event_time() {
        let ev = [
            (10.0, 100.0),
            (12.0, 110.0),
            (12.0, 500.0),
            (13.0, 90.0),
            (15.0, 100.0),
        ];
        // rate: the equal timestamp is skipped, the drop (counter reset) emits nothing.
        assert_eq!(run_timed("rate", &ev), [(12.0, 5.0), (15.0, 5.0)]);
        assert_eq!(
            run_timed("derive", &ev),
            [(12.0, 5.0), (13.0, -20.0), (15.0, 5.0)]
        );
        assert!(run_timed("rate", &[(f64::NAN, 1.0), (1.0, 2.0)]).is_empty());
    }

    #[test]
    fn twindow_emits_when_the_next_window_starts() {
        let ev = [
            (0.5, 1.0),
            (9.9, 3.0),
            (10.0, 10.0),
            (5.0, 20.0),
            (25.0, 7.0),
            (31.0, 0.0),
        ];
        // [0,10): mean 2, emitted by the event at 10; [10,20): 10 and the late 20 → 15.
        assert_eq!(
            run_timed("twindow 10s (mean)", &ev),
            [(10.0, 2.0), (25.0, 15.0), (31.0, 7.0)]
        );
        assert_eq!(
            run_timed(
                "twindow 500ms (count)",
                &[(0.1, 1.0), (0.2, 1.0), (0.6, 1.0)]
            ),
            [(0.6, 2.0)]
        );
    }

    #[test]
    fn throttle_limits_per_event_time_window() {
        let ev: Vec<(f64, f64)> = (0..10)
            .map(|i| (f64::from(i) * 0.5, f64::from(i)))
            .collect();
        // 2 per second from t=0: [0,1) passes 0, 0.5; [1,2) passes 1, 1.5; ...
        assert_eq!(run_timed("throttle 1/1s", &ev).len(), 5);
        assert_eq!(run_timed("throttle 2/1s", &ev).len(), 10);
        assert_eq!(
            run_timed("throttle 1/2s", &ev),
            [(0.0, 0.0), (2.0, 4.0), (4.0, 8.0)]
        );
    }

    #[test]
    fn percentile_over_tumbling_windows() {
        let xs: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(run_values("percentile 50 (5)", &xs), [3.0, 8.0]);
        assert_eq!(run_values("percentile 100 (5)", &xs), [5.0, 10.0]);
        assert_eq!(run_values("percentile 0 (10)", &xs), [1.0]);
        let p90 = run_values("percentile 90 (10)", &xs);
        assert!((p90[0] - 9.1).abs() < 1e-9, "{p90:?}");
    }

    #[test]
    fn absent_fires_once_per_silence_on_the_tick_clock() {
        let p = parse("absent 5s | (* 3)").unwrap();
        let mut st = PipeState::new(&p);
        let mut out = vec![];
        let tick_at = |st: &mut PipeState, now: f64, out: &mut Vec<f64>| {
            tick(&p, st, now, |v| out.push(v));
        };
        tick_at(&mut st, 0.0, &mut out); // never seen: nothing
        assert_eq!(push(&p, &mut st, 1000.0, 42.0), None);
        tick_at(&mut st, 1.0, &mut out); // seen at 1
        tick_at(&mut st, 5.9, &mut out);
        assert!(out.is_empty());
        tick_at(&mut st, 6.0, &mut out);
        assert_eq!(out, [3.0]);
        tick_at(&mut st, 60.0, &mut out);
        assert_eq!(out, [3.0], "fires once per silence");
        push(&p, &mut st, 1.0, 1.0);
        tick_at(&mut st, 61.0, &mut out);
        tick_at(&mut st, 65.0, &mut out);
        assert_eq!(out, [3.0]);
        tick_at(&mut st, 66.0, &mut out);
        assert_eq!(out, [3.0, 3.0]);
    }

    proptest! {
        #[test]
        fn window_emits_floor_l_over_n(n in 1u64..20, xs in prop::collection::vec(-1e6f64..1e6, 0..200)) {
            let out = run_values(&format!("window {n} (mean | sum)"), &xs);
            prop_assert_eq!(out.len() as u64, xs.len() as u64 / n);
        }

        #[test]
        fn sample_emits_n_per_block(m in 1u64..20, n_raw in 1u64..20, len in 0usize..300) {
            let n = n_raw.min(m);
            let xs = vec![1.0; len];
            let out = run_values(&format!("sample {n}/{m}"), &xs);
            let l = len as u64;
            prop_assert_eq!(out.len() as u64, n * (l / m) + n.min(l % m));
        }

        #[test]
        fn id_is_the_identity(xs in prop::collection::vec(any::<f64>(), 0..100)) {
            let out = run_values("id", &xs);
            prop_assert_eq!(out.len(), xs.len());
            for (a, b) in out.iter().zip(&xs) {
                prop_assert_eq!(a.to_bits(), b.to_bits());
            }
        }

        #[test]
        fn changed_never_repeats(xs in prop::collection::vec(prop::sample::select(vec![0.0, 1.0, 2.0, f64::NAN]), 0..100)) {
            let out = run_values("changed", &xs);
            for w in out.windows(2) {
                prop_assert!(!same(w[0], w[1]));
            }
        }
    }
}
