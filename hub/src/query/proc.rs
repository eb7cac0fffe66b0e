//! The proc language (a superset of Leela's dmproc): syntax tree, parser and canonical printer.
//!
//! The canonical text (`Display`) is what keys are computed over and what `SELECT * FROM
//! leela.xmpp;` lists: lower-case names, one space between tokens, ` | ` between stages,
//! numbers in shortest round-trip form, durations in their largest exact unit, `!=` as `/=`.
//! `parse(print(p)) == p` holds for every proc.

use std::fmt;

use super::error::ParseError;
use super::lex::Cursor;

/// Largest count accepted for `window`, `sma`, `sample`, `throttle` and `percentile`.
pub(crate) const MAX_COUNT: u64 = 1_000_000;
/// Largest duration accepted (one year), in milliseconds.
pub(crate) const MAX_DURATION_MS: u64 = 366 * 24 * 3_600_000;

/// A parsed pipeline: stages applied in order to each event of one name.
#[derive(Debug, Clone, PartialEq)]
pub struct Proc {
    pub stages: Vec<Stage>,
}

/// A per-event stage: exactly one output for each input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PerEvent {
    Id,
    Abs,
    Ceil,
    Floor,
    Round,
    Truncate,
    Mean,
    Median,
    Minimum,
    Maximum,
    Sum,
    Prod,
    Count,
    /// `(op v)` is `x op v`; `(v op)` (`value_first`) is `v op x`.
    Arith {
        op: Aop,
        value: Num,
        value_first: bool,
    },
}

/// A stage that may swallow events, hold state across them, or emit on a clock.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    PerEvent(PerEvent),
    Window {
        size: u64,
        body: Vec<PerEvent>,
    },
    TWindow {
        width: Millis,
        body: Vec<PerEvent>,
    },
    Sma(u64),
    Ewma(Num),
    Sample {
        pass: u64,
        every: u64,
    },
    /// `[op v]` passes when `x op v`; `[v op]` (`value_first`) when `v op x`.
    Filter {
        op: Lop,
        value: Num,
        value_first: bool,
    },
    Rate,
    Derive,
    Changed,
    Throttle {
        count: u64,
        per: Millis,
    },
    Absent(Millis),
    Percentile {
        pct: Num,
        size: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aop {
    Mul,
    Div,
    Add,
    Sub,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lop {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

/// A number in a proc. Equality is by bit pattern (NaN is normalised at parse time), so
/// syntax trees compare equal exactly when they print the same.
#[derive(Debug, Clone, Copy)]
pub struct Num(pub f64);

impl PartialEq for Num {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

/// A duration in whole milliseconds, 1 ms ..= [`MAX_DURATION_MS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Millis {
    pub ms: u64,
}

impl Millis {
    pub fn secs(self) -> f64 {
        self.ms as f64 / 1000.0
    }
}

impl Aop {
    pub fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            Aop::Mul => a * b,
            Aop::Div => a / b,
            Aop::Add => a + b,
            Aop::Sub => a - b,
        }
    }
}

impl Lop {
    pub fn test(self, a: f64, b: f64) -> bool {
        match self {
            Lop::Gt => a > b,
            Lop::Ge => a >= b,
            Lop::Lt => a < b,
            Lop::Le => a <= b,
            Lop::Eq => a == b,
            Lop::Ne => a != b,
        }
    }
}

impl Proc {
    /// Number of stages, counting those inside `window`/`twindow` bodies.
    pub fn weight(&self) -> usize {
        self.stages
            .iter()
            .map(|s| match s {
                Stage::Window { body, .. } | Stage::TWindow { body, .. } => 1 + body.len(),
                _ => 1,
            })
            .sum()
    }

    /// Whether `tick` can make this pipeline emit.
    pub fn has_absent(&self) -> bool {
        self.stages.iter().any(|s| matches!(s, Stage::Absent(_)))
    }
}

// ---------------------------------------------------------------------------------------------
// Parser

/// Parses a whole proc (for tests and tools; commands use `parse_pipeline`).
pub fn parse(text: &str) -> Result<Proc, ParseError> {
    let mut c = Cursor::new(text);
    let proc = parse_pipeline(&mut c)?;
    c.skip_ws();
    if !c.at_end() {
        return Err(c.expected("| or end of proc"));
    }
    Ok(proc)
}

/// `pipeline := stage ("|" stage)*`; stops before the first token that is not `|`.
pub(crate) fn parse_pipeline(c: &mut Cursor<'_>) -> Result<Proc, ParseError> {
    let mut stages = vec![parse_stage(c)?];
    while c.eat('|') {
        stages.push(parse_stage(c)?);
    }
    Ok(Proc { stages })
}

const STAGE: &str = "a function (id, mean, window, [> v], (* v), …)";
const PER_EVENT: &str = "a per-event function (id, abs, mean, median, (* v), …)";

fn parse_stage(c: &mut Cursor<'_>) -> Result<Stage, ParseError> {
    c.skip_ws();
    match c.peek() {
        Some('(') => return parse_arith(c).map(Stage::PerEvent),
        Some('[') => return parse_filter(c),
        _ => {}
    }
    let start = c.pos();
    let word = c.word().to_ascii_lowercase();
    if let Some(per_event) = per_event_named(&word) {
        return Ok(Stage::PerEvent(per_event));
    }
    let stage = match word.as_str() {
        "window" => Stage::Window {
            size: count(c, "window size", 1)?,
            body: parse_body(c)?,
        },
        "twindow" => Stage::TWindow {
            width: duration(c)?,
            body: parse_body(c)?,
        },
        "sma" => Stage::Sma(count(c, "sma length", 1)?),
        "ewma" => parse_ewma(c)?,
        "sample" => parse_sample(c)?,
        "rate" => Stage::Rate,
        "derive" => Stage::Derive,
        "changed" => Stage::Changed,
        "throttle" => {
            let count = count(c, "throttle count", 1)?;
            expect(c, '/', "/")?;
            Stage::Throttle {
                count,
                per: duration(c)?,
            }
        }
        "absent" => Stage::Absent(duration(c)?),
        "percentile" => parse_percentile(c)?,
        _ => {
            c.set_pos(start);
            return Err(c.expected(STAGE));
        }
    };
    Ok(stage)
}

/// `ewma A`, after the word.
fn parse_ewma(c: &mut Cursor<'_>) -> Result<Stage, ParseError> {
    let at = next_pos(c);
    let a = value(c)?;
    if !(0.0..=1.0).contains(&a.0) {
        return Err(c.invalid(at, "ewma weight must be between 0 and 1"));
    }
    Ok(Stage::Ewma(a))
}

/// `sample N/M`, after the word.
fn parse_sample(c: &mut Cursor<'_>) -> Result<Stage, ParseError> {
    let at = next_pos(c);
    let pass = count(c, "sample count", 1)?;
    expect(c, '/', "/")?;
    let every = count(c, "sample block", 1)?;
    if pass > every {
        return Err(c.invalid(at, "sample n/m needs n <= m"));
    }
    Ok(Stage::Sample { pass, every })
}

/// `percentile P (N)`, after the word.
fn parse_percentile(c: &mut Cursor<'_>) -> Result<Stage, ParseError> {
    let at = next_pos(c);
    let text = c.double();
    let pct = text.parse::<f64>().map_err(|_| {
        c.set_pos(at);
        c.expected("a percentile (0 to 100)")
    })?;
    if !(0.0..=100.0).contains(&pct) {
        return Err(c.invalid(at, "percentile must be between 0 and 100"));
    }
    expect(c, '(', "(")?;
    let size = count(c, "percentile window size", 1)?;
    expect(c, ')', ")")?;
    Ok(Stage::Percentile {
        pct: Num(pct),
        size,
    })
}

fn per_event_named(word: &str) -> Option<PerEvent> {
    Some(match word {
        "id" => PerEvent::Id,
        "abs" => PerEvent::Abs,
        "ceil" => PerEvent::Ceil,
        "floor" => PerEvent::Floor,
        "round" => PerEvent::Round,
        "truncate" => PerEvent::Truncate,
        "mean" => PerEvent::Mean,
        "median" => PerEvent::Median,
        "minimum" => PerEvent::Minimum,
        "maximum" => PerEvent::Maximum,
        "sum" => PerEvent::Sum,
        "prod" => PerEvent::Prod,
        "count" => PerEvent::Count,
        _ => return None,
    })
}

/// `"(" sync ("|" sync)* ")"`
fn parse_body(c: &mut Cursor<'_>) -> Result<Vec<PerEvent>, ParseError> {
    expect(c, '(', "(")?;
    let mut body = vec![parse_per_event(c)?];
    while c.eat('|') {
        body.push(parse_per_event(c)?);
    }
    expect(c, ')', "| or )")?;
    Ok(body)
}

fn parse_per_event(c: &mut Cursor<'_>) -> Result<PerEvent, ParseError> {
    c.skip_ws();
    if c.peek() == Some('(') {
        return parse_arith(c);
    }
    let start = c.pos();
    let word = c.word().to_ascii_lowercase();
    per_event_named(&word).ok_or_else(|| {
        c.set_pos(start);
        c.expected(PER_EVENT)
    })
}

/// `"(" aop val ")" | "(" val aop ")"`. A leading `-` is ambiguous (`(- 1)` vs `(-1 -)`):
/// the operator-first reading is tried first, then the value-first one.
fn parse_arith(c: &mut Cursor<'_>) -> Result<PerEvent, ParseError> {
    expect(c, '(', "(")?;
    let op_first = |c: &mut Cursor<'_>| -> Result<PerEvent, ParseError> {
        let op = aop(c).ok_or_else(|| c.expected("an operator (* / + -) or a number"))?;
        let value = value(c)?;
        expect(c, ')', ")")?;
        Ok(PerEvent::Arith {
            op,
            value,
            value_first: false,
        })
    };
    let value_first = |c: &mut Cursor<'_>| -> Result<PerEvent, ParseError> {
        let value = value(c)?;
        let op = aop(c).ok_or_else(|| c.expected("an operator (* / + -)"))?;
        expect(c, ')', ")")?;
        Ok(PerEvent::Arith {
            op,
            value,
            value_first: true,
        })
    };
    c.skip_ws();
    let open = c.pos();
    let leading_minus = c.peek() == Some('-');
    if !matches!(c.peek(), Some('*' | '/' | '+' | '-')) {
        return value_first(c);
    }
    let first = match op_first(c) {
        Err(e) if leading_minus => e,
        other => return other,
    };
    c.set_pos(open);
    match value_first(c) {
        Ok(s) => Ok(s),
        // Report whichever reading got further.
        Err(second) if second.column() > first.column() => Err(second),
        Err(_) => Err(first),
    }
}

fn aop(c: &mut Cursor<'_>) -> Option<Aop> {
    c.skip_ws();
    let op = match c.peek()? {
        '*' => Aop::Mul,
        '/' if !c.rest().starts_with("/=") => Aop::Div,
        '+' => Aop::Add,
        '-' => Aop::Sub,
        _ => return None,
    };
    c.eat(c.peek()?);
    Some(op)
}

/// `"[" lop val "]" | "[" val lop "]"`
fn parse_filter(c: &mut Cursor<'_>) -> Result<Stage, ParseError> {
    expect(c, '[', "[")?;
    let (op, value, value_first) = match lop(c) {
        Some(op) => (op, value(c)?, false),
        None => {
            let v = value(c)?;
            let op = lop(c).ok_or_else(|| c.expected("a comparison (> >= < <= = /= !=)"))?;
            (op, v, true)
        }
    };
    expect(c, ']', "]")?;
    Ok(Stage::Filter {
        op,
        value,
        value_first,
    })
}

fn lop(c: &mut Cursor<'_>) -> Option<Lop> {
    for (text, op) in [
        (">=", Lop::Ge),
        ("<=", Lop::Le),
        ("/=", Lop::Ne),
        ("!=", Lop::Ne),
        (">", Lop::Gt),
        ("<", Lop::Lt),
        ("=", Lop::Eq),
    ] {
        if c.eat_str(text) {
            return Some(op);
        }
    }
    None
}

/// `val := "nan" | "inf" | "-" val | DOUBLE`
fn value(c: &mut Cursor<'_>) -> Result<Num, ParseError> {
    let mut negative = false;
    while c.eat('-') {
        negative = !negative;
    }
    c.skip_ws();
    let start = c.pos();
    let word = c.peek_word();
    let v = if word.eq_ignore_ascii_case("nan") {
        c.word();
        f64::NAN
    } else if word.eq_ignore_ascii_case("inf") {
        c.word();
        f64::INFINITY
    } else {
        let text = c.double();
        text.parse::<f64>().map_err(|_| {
            c.set_pos(start);
            c.expected("a number (or nan, inf)")
        })?
    };
    let v = if negative { -v } else { v };
    Ok(Num(if v.is_nan() { f64::NAN } else { v }))
}

fn next_pos(c: &mut Cursor<'_>) -> usize {
    c.skip_ws();
    c.pos()
}

fn expect(c: &mut Cursor<'_>, ch: char, what: &str) -> Result<(), ParseError> {
    if c.eat(ch) {
        Ok(())
    } else {
        Err(c.expected(what))
    }
}

/// An INT in `min ..= MAX_COUNT`.
fn count(c: &mut Cursor<'_>, what: &str, min: u64) -> Result<u64, ParseError> {
    let at = next_pos(c);
    let digits = c.digits();
    if digits.is_empty() {
        return Err(c.expected(&format!("an integer ({what})")));
    }
    match digits.parse::<u64>() {
        Ok(n) if (min..=MAX_COUNT).contains(&n) => Ok(n),
        _ => Err(c.invalid(at, format!("{what} must be between {min} and {MAX_COUNT}"))),
    }
}

/// `DUR := INT ("ms" | "s" | "m" | "h")`
fn duration(c: &mut Cursor<'_>) -> Result<Millis, ParseError> {
    let at = next_pos(c);
    let digits = c.digits();
    if digits.is_empty() {
        return Err(c.expected("a duration (like 500ms, 10s, 5m, 1h)"));
    }
    let unit = match c.peek_word().to_ascii_lowercase().as_str() {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(c.expected("a duration unit (ms, s, m, h)")),
    };
    c.word();
    match digits.parse::<u64>().ok().and_then(|n| n.checked_mul(unit)) {
        Some(ms) if (1..=MAX_DURATION_MS).contains(&ms) => Ok(Millis { ms }),
        _ => Err(c.invalid(at, "duration must be between 1ms and 366 days")),
    }
}

// ---------------------------------------------------------------------------------------------
// Canonical printer

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0;
        if x.is_nan() {
            f.write_str("nan")
        } else if x.is_infinite() {
            f.write_str(if x > 0.0 { "inf" } else { "-inf" })
        } else if x == 0.0 || (1e-5..1e16).contains(&x.abs()) {
            write!(f, "{x}")
        } else {
            write!(f, "{x:e}")
        }
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.ms;
        match () {
            _ if ms.is_multiple_of(3_600_000) => write!(f, "{}h", ms / 3_600_000),
            _ if ms.is_multiple_of(60_000) => write!(f, "{}m", ms / 60_000),
            _ if ms.is_multiple_of(1000) => write!(f, "{}s", ms / 1000),
            _ => write!(f, "{ms}ms"),
        }
    }
}

impl fmt::Display for Aop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Aop::Mul => "*",
            Aop::Div => "/",
            Aop::Add => "+",
            Aop::Sub => "-",
        })
    }
}

impl fmt::Display for Lop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lop::Gt => ">",
            Lop::Ge => ">=",
            Lop::Lt => "<",
            Lop::Le => "<=",
            Lop::Eq => "=",
            Lop::Ne => "/=",
        })
    }
}

impl fmt::Display for PerEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            PerEvent::Id => "id",
            PerEvent::Abs => "abs",
            PerEvent::Ceil => "ceil",
            PerEvent::Floor => "floor",
            PerEvent::Round => "round",
            PerEvent::Truncate => "truncate",
            PerEvent::Mean => "mean",
            PerEvent::Median => "median",
            PerEvent::Minimum => "minimum",
            PerEvent::Maximum => "maximum",
            PerEvent::Sum => "sum",
            PerEvent::Prod => "prod",
            PerEvent::Count => "count",
            PerEvent::Arith {
                op,
                value,
                value_first: false,
            } => return write!(f, "({op} {value})"),
            PerEvent::Arith {
                op,
                value,
                value_first: true,
            } => return write!(f, "({value} {op})"),
        };
        f.write_str(name)
    }
}

fn write_body(f: &mut fmt::Formatter<'_>, body: &[PerEvent]) -> fmt::Result {
    f.write_str("(")?;
    for (i, s) in body.iter().enumerate() {
        if i > 0 {
            f.write_str(" | ")?;
        }
        write!(f, "{s}")?;
    }
    f.write_str(")")
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::PerEvent(s) => write!(f, "{s}"),
            Stage::Window { size, body } => {
                write!(f, "window {size} ")?;
                write_body(f, body)
            }
            Stage::TWindow { width, body } => {
                write!(f, "twindow {width} ")?;
                write_body(f, body)
            }
            Stage::Sma(n) => write!(f, "sma {n}"),
            Stage::Ewma(a) => write!(f, "ewma {a}"),
            Stage::Sample { pass, every } => write!(f, "sample {pass}/{every}"),
            Stage::Filter {
                op,
                value,
                value_first: false,
            } => write!(f, "[{op} {value}]"),
            Stage::Filter {
                op,
                value,
                value_first: true,
            } => write!(f, "[{value} {op}]"),
            Stage::Rate => f.write_str("rate"),
            Stage::Derive => f.write_str("derive"),
            Stage::Changed => f.write_str("changed"),
            Stage::Throttle { count, per } => write!(f, "throttle {count}/{per}"),
            Stage::Absent(d) => write!(f, "absent {d}"),
            Stage::Percentile { pct, size } => write!(f, "percentile {pct} ({size})"),
        }
    }
}

impl fmt::Display for Proc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.stages.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        parse(text)
            .unwrap_or_else(|e| panic!("{text:?}: {e}"))
            .to_string()
    }

    fn err(text: &str) -> String {
        parse(text).expect_err(text).to_string()
    }

    #[test]
    fn every_function_parses_and_prints_canonically() {
        for (input, canonical) in [
            ("id", "id"),
            ("ABS", "abs"),
            ("ceil", "ceil"),
            ("floor", "floor"),
            ("round", "round"),
            ("truncate", "truncate"),
            ("mean", "mean"),
            ("median", "median"),
            ("minimum", "minimum"),
            ("maximum", "maximum"),
            ("sum", "sum"),
            ("prod", "prod"),
            ("count", "count"),
            ("(*100)", "(* 100)"),
            ("( / 2.50 )", "(/ 2.5)"),
            ("(+ -1)", "(+ -1)"),
            ("(- 1)", "(- 1)"),
            ("(1 -)", "(1 -)"),
            ("(-1 -)", "(-1 -)"),
            ("(- - 1 *)", "(1 *)"),
            ("(- -1)", "(- -1)"),
            ("(nan +)", "(nan +)"),
            ("(* -INF)", "(* -inf)"),
            ("(* 1e300)", "(* 1e300)"),
            ("(* 0.0000001)", "(* 1e-7)"),
            ("(* .5)", "(* 0.5)"),
            ("(* 5.)", "(* 5)"),
            ("(* -0)", "(* -0)"),
            ("window 5 (mean)", "window 5 (mean)"),
            ("window5(mean|(*2))", "window 5 (mean | (* 2))"),
            ("twindow 60s (maximum)", "twindow 1m (maximum)"),
            ("twindow 1500 ms (sum)", "twindow 1500ms (sum)"),
            ("sma 10", "sma 10"),
            ("ewma 0.25", "ewma 0.25"),
            ("sample 1 / 5", "sample 1/5"),
            ("[> 50]", "[> 50]"),
            ("[>=50]", "[>= 50]"),
            ("[< 1]", "[< 1]"),
            ("[<= 1]", "[<= 1]"),
            ("[= 1]", "[= 1]"),
            ("[/= 2]", "[/= 2]"),
            ("[!= 2]", "[/= 2]"),
            ("[2 /=]", "[2 /=]"),
            ("[2 >]", "[2 >]"),
            ("[-2 <=]", "[-2 <=]"),
            ("rate", "rate"),
            ("derive", "derive"),
            ("changed", "changed"),
            ("throttle 5/1s", "throttle 5/1s"),
            ("throttle 5 / 120m", "throttle 5/2h"),
            ("absent 5m", "absent 5m"),
            ("absent 300s", "absent 5m"),
            ("percentile 99 (100)", "percentile 99 (100)"),
            ("percentile 99.9(1000)", "percentile 99.9 (1000)"),
            ("  mean|(*100)  |[>50] ", "mean | (* 100) | [> 50]"),
        ] {
            assert_eq!(canon(input), canonical, "{input}");
        }
    }

    #[test]
    fn printing_round_trips() {
        for text in [
            "(- 1) | abs | (* 100)",
            "mean | (* 100) | [> 50]",
            "window 5 (mean | median | (2 /))",
            "twindow 1500ms (sum) | changed | throttle 3/1h | absent 1s",
            "(* 1.7976931348623157e308) | (+ 5e-324) | [nan =] | (* -0.1)",
            "sma 3 | ewma 0.5 | sample 2/7 | rate | derive | percentile 0 (1)",
        ] {
            let p = parse(text).unwrap();
            assert_eq!(p.to_string(), text);
            assert_eq!(parse(&p.to_string()).unwrap(), p);
        }
    }

    #[test]
    fn errors_carry_column_and_expectation() {
        for (input, message) in [
            ("", "expected a function (id, mean, window, [> v], (* v), …) at column 1, found end of input"),
            ("id |", "expected a function (id, mean, window, [> v], (* v), …) at column 5, found end of input"),
            ("id | bogus", "expected a function (id, mean, window, [> v], (* v), …) at column 6, found \"bogus\""),
            ("id mean", "expected | or end of proc at column 4, found \"mean\""),
            ("window 0 (mean)", "window size must be between 1 and 1000000 at column 8"),
            ("window 99999999999999999999999 (mean)", "window size must be between 1 and 1000000 at column 8"),
            ("window (mean)", "expected an integer (window size) at column 8, found \"(\""),
            ("window 5 mean", "expected ( at column 10, found \"mean\""),
            ("window 5 (rate)", "expected a per-event function (id, abs, mean, median, (* v), …) at column 11, found \"rate\""),
            ("window 5 (mean", "expected | or ) at column 15, found end of input"),
            ("twindow 0s (mean)", "duration must be between 1ms and 366 days at column 9"),
            ("twindow 10 (mean)", "expected a duration unit (ms, s, m, h) at column 12, found \"(\""),
            ("twindow 10d (mean)", "expected a duration unit (ms, s, m, h) at column 11, found \"d\""),
            ("absent 99999999999999999h", "duration must be between 1ms and 366 days at column 8"),
            ("sma 0", "sma length must be between 1 and 1000000 at column 5"),
            ("ewma 2", "ewma weight must be between 0 and 1 at column 6"),
            ("ewma x", "expected a number (or nan, inf) at column 6, found \"x\""),
            ("sample 0/0", "sample count must be between 1 and 1000000 at column 8"),
            ("sample 1/0", "sample block must be between 1 and 1000000 at column 10"),
            ("sample 6/5", "sample n/m needs n <= m at column 8"),
            ("sample 1 5", "expected / at column 10, found \"5\""),
            ("throttle 0/1s", "throttle count must be between 1 and 1000000 at column 10"),
            ("percentile 101 (10)", "percentile must be between 0 and 100 at column 12"),
            ("percentile x (10)", "expected a percentile (0 to 100) at column 12, found \"x\""),
            ("percentile 50 (0)", "percentile window size must be between 1 and 1000000 at column 16"),
            ("(* )", "expected a number (or nan, inf) at column 4, found \")\""),
            ("(2 2)", "expected an operator (* / + -) at column 4, found \"2\""),
            ("(* 2", "expected ) at column 5, found end of input"),
            ("(- 1 2)", "expected ) at column 6, found \"2\""),
            ("(- 1 - 2)", "expected ) at column 8, found \"2\""),
            ("(% 2)", "expected a number (or nan, inf) at column 2, found \"%\""),
            ("[> ]", "expected a number (or nan, inf) at column 4, found \"]\""),
            ("[2 ]", "expected a comparison (> >= < <= = /= !=) at column 4, found \"]\""),
            ("[> 2", "expected ] at column 5, found end of input"),
            ("[== 2]", "expected a number (or nan, inf) at column 3, found \"=\""),
        ] {
            assert_eq!(err(input), message, "{input}");
        }
    }

    mod generated {
        use super::super::*;
        use proptest::prelude::*;

        fn num() -> impl Strategy<Value = Num> {
            prop_oneof![
                any::<f64>().prop_map(|x| Num(if x.is_nan() { f64::NAN } else { x })),
                (-1000i32..1000).prop_map(|i| Num(f64::from(i) / 8.0)),
            ]
        }

        fn unit() -> impl Strategy<Value = Num> {
            (0u32..=1000).prop_map(|i| Num(f64::from(i) / 1000.0))
        }

        fn duration() -> impl Strategy<Value = Millis> {
            (1..=MAX_DURATION_MS).prop_map(|ms| Millis { ms })
        }

        fn sync() -> impl Strategy<Value = PerEvent> {
            prop_oneof![
                prop::sample::select(vec![
                    PerEvent::Id,
                    PerEvent::Abs,
                    PerEvent::Ceil,
                    PerEvent::Floor,
                    PerEvent::Round,
                    PerEvent::Truncate,
                    PerEvent::Mean,
                    PerEvent::Median,
                    PerEvent::Minimum,
                    PerEvent::Maximum,
                    PerEvent::Sum,
                    PerEvent::Prod,
                    PerEvent::Count,
                ]),
                (
                    prop::sample::select(vec![Aop::Mul, Aop::Div, Aop::Add, Aop::Sub]),
                    num(),
                    any::<bool>()
                )
                    .prop_map(|(op, value, value_first)| PerEvent::Arith {
                        op,
                        value,
                        value_first
                    }),
            ]
        }

        fn stage() -> impl Strategy<Value = Stage> {
            let count = 1..=MAX_COUNT;
            let body = || prop::collection::vec(sync(), 1..4);
            prop_oneof![
                sync().prop_map(Stage::PerEvent),
                (count.clone(), body()).prop_map(|(size, body)| Stage::Window { size, body }),
                (duration(), body()).prop_map(|(width, body)| Stage::TWindow { width, body }),
                count.clone().prop_map(Stage::Sma),
                unit().prop_map(Stage::Ewma),
                (count.clone(), count.clone()).prop_map(|(a, b)| Stage::Sample {
                    pass: a.min(b),
                    every: a.max(b)
                }),
                (
                    prop::sample::select(vec![
                        Lop::Gt,
                        Lop::Ge,
                        Lop::Lt,
                        Lop::Le,
                        Lop::Eq,
                        Lop::Ne
                    ]),
                    num(),
                    any::<bool>()
                )
                    .prop_map(|(op, value, value_first)| Stage::Filter {
                        op,
                        value,
                        value_first
                    }),
                Just(Stage::Rate),
                Just(Stage::Derive),
                Just(Stage::Changed),
                (count.clone(), duration()).prop_map(|(count, per)| Stage::Throttle { count, per }),
                duration().prop_map(Stage::Absent),
                (unit(), count).prop_map(|(p, size)| Stage::Percentile {
                    pct: Num(p.0 * 100.0),
                    size
                }),
            ]
        }

        proptest! {
            #[test]
            fn parse_of_print_is_identity(stages in prop::collection::vec(stage(), 1..6)) {
                let p = Proc { stages };
                let text = p.to_string();
                let back = parse(&text);
                prop_assert_eq!(back.as_ref(), Ok(&p), "{}", text);
            }
        }
    }

    #[test]
    fn weight_counts_window_bodies() {
        assert_eq!(parse("id | window 3 (mean | (* 2))").unwrap().weight(), 4);
        assert!(parse("id | absent 1m").unwrap().has_absent());
        assert!(!parse("id").unwrap().has_absent());
    }
}
