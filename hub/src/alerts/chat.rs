//! The chat commands of alerting (docs/alerts.md, "Chat"), parsed purely:
//!
//! ```text
//! ALERT <name> [SEVERITY s] [FOR d] [REPEAT d|never] [UNIT u] [ROUTE ROOM j, USER j …]
//!       [MESSAGE "…"] [RESOLVED "…"] SELECT <proc> FROM <regex>;
//! DROP ALERT <name>        RULES
//! ack <id> [<id> …]        alerts        history [N]
//! silence <duration> <matcher> [comment]   unsilence <id>   silences
//! ```
//! Keywords are case-insensitive. [`parse`] answers `None` for a body that is none of these
//! (a query, say), so the caller can try the query language next.

use thiserror::Error;

use super::rule::{parse_secs, Route, RuleSpec};
use crate::query::{parse_statement, Limits, ParseError, QueryError};

/// One parsed command.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatCommand {
    /// `ALERT …`: define (or replace) one of the sender's rules.
    Define(RuleSpec),
    /// `DROP ALERT name`.
    Drop { name: String },
    /// `RULES`: every rule.
    Rules,
    /// `ack 12 13`.
    Ack { ids: Vec<u32> },
    /// `silence 2h web1.* deploy`.
    Silence {
        secs: f64,
        matcher: String,
        comment: String,
    },
    /// `unsilence 3`.
    Unsilence { id: u32 },
    /// `silences`: the active silences.
    Silences,
    /// `alerts`: the open alerts.
    Alerts,
    /// `history [N]`: the last N entries (default [`HISTORY_DEFAULT`]).
    History { count: usize },
}

/// Entries `history` shows without a count.
pub const HISTORY_DEFAULT: usize = 10;
/// Most entries `history N` shows.
pub const HISTORY_MAX: usize = 50;
/// Longest silence matcher.
pub const MAX_MATCHER_CHARS: usize = 200;
/// Longest silence comment.
pub const MAX_COMMENT_CHARS: usize = 500;

/// A silence's duration (`2h`, `30m`): longer than zero. The chat command and the ad-hoc
/// `silence` form both check with it (the book checks the upper bound, `max_silence`).
pub fn silence_duration(text: &str) -> Result<f64, String> {
    let secs = parse_secs(text)?;
    if secs > 0.0 {
        Ok(secs)
    } else {
        Err("a silence must last longer than zero".into())
    }
}

/// A silence matcher: not empty, at most [`MAX_MATCHER_CHARS`].
pub fn check_matcher(matcher: &str) -> Result<(), String> {
    match matcher.chars().count() {
        0 => Err("a silence needs a matcher such as web1.*".into()),
        n if n > MAX_MATCHER_CHARS => Err(format!(
            "a matcher may have at most {MAX_MATCHER_CHARS} characters"
        )),
        _ => Ok(()),
    }
}

/// A silence comment: at most [`MAX_COMMENT_CHARS`].
pub fn check_comment(comment: &str) -> Result<(), String> {
    if comment.chars().count() > MAX_COMMENT_CHARS {
        Err(format!(
            "a comment may have at most {MAX_COMMENT_CHARS} characters"
        ))
    } else {
        Ok(())
    }
}

/// A command that does not parse; answered like the query language's 400s.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message} at column {column}")]
pub struct ChatError {
    /// 1-based character column in the body.
    pub column: usize,
    pub message: String,
}

impl ChatError {
    pub fn status(&self) -> u16 {
        400
    }
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn skip_ws(&mut self) {
        let rest = &self.src[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn column(&self, pos: usize) -> usize {
        self.src[..pos].chars().count() + 1
    }

    fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.pos >= self.src.len()
    }

    /// The next whitespace-delimited word and its start, without consuming it.
    fn peek(&mut self) -> (usize, &'a str) {
        self.skip_ws();
        let rest = &self.src[self.pos..];
        let len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        (self.pos, &rest[..len])
    }

    fn word(&mut self) -> (usize, &'a str) {
        let (at, w) = self.peek();
        self.pos += w.len();
        (at, w)
    }

    fn error(&self, at: usize, message: impl Into<String>) -> ChatError {
        ChatError {
            column: self.column(at),
            message: message.into(),
        }
    }

    fn expected(&mut self, what: &str) -> ChatError {
        let (at, w) = self.peek();
        let found = if w.is_empty() {
            "end of input".to_owned()
        } else {
            format!("\"{}\"", w.chars().take(20).collect::<String>())
        };
        self.error(at, format!("expected {what}, found {found}"))
    }

    /// A required word.
    fn require(&mut self, what: &str) -> Result<(usize, &'a str), ChatError> {
        match self.peek() {
            (_, "") => Err(self.expected(what)),
            _ => Ok(self.word()),
        }
    }

    /// A double-quoted string (`\"` and `\\` escaped) or, failing that, one word.
    fn string(&mut self, what: &str) -> Result<String, ChatError> {
        self.skip_ws();
        let start = self.pos;
        let rest = &self.src[start..];
        if !rest.starts_with('"') {
            return self.require(what).map(|(_, w)| w.to_owned());
        }
        let mut out = String::new();
        let mut chars = rest.char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos = start + i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, e @ ('"' | '\\'))) => out.push(e),
                    _ => return Err(self.error(start + i, "expected \\\" or \\\\ after \\")),
                },
                c => out.push(c),
            }
        }
        Err(self.error(start, "unclosed string"))
    }
}

/// Parses one chat body; `None` when it is not an alerting command.
pub fn parse(body: &str, limits: &Limits) -> Option<Result<ChatCommand, ChatError>> {
    let mut lx = Lexer { src: body, pos: 0 };
    let (_, first) = lx.peek();
    let first = first.to_ascii_lowercase();
    let known = [
        "alert",
        "drop",
        "rules",
        "ack",
        "silence",
        "unsilence",
        "silences",
        "alerts",
        "history",
    ];
    if !known.contains(&first.as_str()) {
        return None;
    }
    if first == "drop" {
        // `DROP` alone is not ours unless `ALERT` follows: leave other words to the caller.
        let mut probe = Lexer { src: body, pos: 0 };
        probe.word();
        if !probe.peek().1.eq_ignore_ascii_case("alert") {
            return None;
        }
    }
    lx.word();
    Some(command(&mut lx, &first, limits))
}

fn command(lx: &mut Lexer<'_>, first: &str, limits: &Limits) -> Result<ChatCommand, ChatError> {
    let cmd = match first {
        "alert" => return define(lx, limits),
        "drop" => {
            lx.word();
            let (_, name) = lx.require("a rule name")?;
            ChatCommand::Drop {
                name: name.to_owned(),
            }
        }
        "rules" => ChatCommand::Rules,
        "alerts" => ChatCommand::Alerts,
        "silences" => ChatCommand::Silences,
        "ack" => {
            let mut ids = vec![id(lx, "an alert id")?];
            while !lx.at_end() {
                ids.push(id(lx, "an alert id")?);
            }
            ChatCommand::Ack { ids }
        }
        "unsilence" => ChatCommand::Unsilence {
            id: id(lx, "a silence id")?,
        },
        "history" => {
            if lx.at_end() {
                ChatCommand::History {
                    count: HISTORY_DEFAULT,
                }
            } else {
                let (at, w) = lx.word();
                match w.parse::<usize>() {
                    Ok(n) if (1..=HISTORY_MAX).contains(&n) => ChatCommand::History { count: n },
                    _ => {
                        return Err(lx.error(
                            at,
                            format!("history count must be between 1 and {HISTORY_MAX}"),
                        ))
                    }
                }
            }
        }
        "silence" => {
            let (at, d) = lx.require("a duration such as 2h")?;
            let secs = silence_duration(d).map_err(|e| lx.error(at, e))?;
            let (at, matcher) = lx.require("a matcher such as web1.*")?;
            check_matcher(matcher).map_err(|e| lx.error(at, e))?;
            lx.skip_ws();
            let comment = lx.src[lx.pos..].trim().to_owned();
            check_comment(&comment).map_err(|e| lx.error(lx.pos, e))?;
            lx.pos = lx.src.len();
            ChatCommand::Silence {
                secs,
                matcher: matcher.to_owned(),
                comment,
            }
        }
        _ => unreachable!("parse only passes known words"),
    };
    if lx.at_end() {
        Ok(cmd)
    } else {
        Err(lx.expected("end of command"))
    }
}

/// `12`, `#12` (as messages show it) or `s3` (as `silences` shows it).
fn id(lx: &mut Lexer<'_>, what: &str) -> Result<u32, ChatError> {
    let (at, w) = lx.require(what)?;
    let digits = w
        .strip_prefix('#')
        .or_else(|| w.strip_prefix(['s', 'S']))
        .unwrap_or(w)
        .trim_end_matches(',');
    digits
        .parse::<u32>()
        .map_err(|_| lx.error(at, format!("expected {what}, found \"{w}\"")))
}

fn define(lx: &mut Lexer<'_>, limits: &Limits) -> Result<ChatCommand, ChatError> {
    let (_, name) = lx.require("a rule name")?;
    let mut spec = RuleSpec {
        name: name.to_owned(),
        query: String::new(),
        severity: None,
        for_: None,
        repeat: None,
        unit: None,
        route: Route::default(),
        firing: None,
        resolved: None,
    };
    let mut seen: Vec<String> = Vec::new();
    loop {
        let (at, word) = lx.peek();
        let kw = word.to_ascii_uppercase();
        if kw == "SELECT" {
            break;
        }
        let clauses = [
            "SEVERITY", "FOR", "REPEAT", "UNIT", "ROUTE", "MESSAGE", "RESOLVED",
        ];
        if !clauses.contains(&kw.as_str()) {
            return Err(
                lx.expected("SEVERITY, FOR, REPEAT, UNIT, ROUTE, MESSAGE, RESOLVED or SELECT")
            );
        }
        if seen.contains(&kw) {
            return Err(lx.error(at, format!("{kw} is given twice")));
        }
        lx.word();
        match kw.as_str() {
            "SEVERITY" => spec.severity = Some(lx.require("a severity")?.1.to_owned()),
            "FOR" => spec.for_ = Some(lx.require("a duration such as 5m")?.1.to_owned()),
            "REPEAT" => spec.repeat = Some(lx.require("a duration or never")?.1.to_owned()),
            "UNIT" => spec.unit = Some(lx.string("a unit")?),
            "MESSAGE" => spec.firing = Some(lx.string("a quoted template")?),
            "RESOLVED" => spec.resolved = Some(lx.string("a quoted template")?),
            _ => route(lx, &mut spec.route)?,
        }
        seen.push(kw);
    }
    let start = lx.pos;
    let query = &lx.src[start..];
    if let Err(e) = parse_statement(query, limits) {
        let offset = lx.column(start) - 1;
        let (column, message) = match e {
            QueryError::Parse(ParseError::Expected {
                column,
                expected,
                found,
            }) => (
                offset + column,
                format!("expected {expected}, found {found}"),
            ),
            QueryError::Parse(ParseError::Invalid { column, message }) => {
                (offset + column, message)
            }
            other => (offset + 1, other.to_string()),
        };
        return Err(ChatError { column, message });
    }
    spec.query = query.trim().to_owned();
    Ok(ChatCommand::Define(spec))
}

fn route(lx: &mut Lexer<'_>, route: &mut Route) -> Result<(), ChatError> {
    let mut any = false;
    loop {
        let (_, word) = lx.peek();
        let list = match word.to_ascii_uppercase().as_str() {
            "ROOM" => &mut route.rooms,
            "USER" => &mut route.users,
            _ if any => return Ok(()),
            _ => return Err(lx.expected("ROOM or USER")),
        };
        lx.word();
        let (_, jid) = lx.require("a bare JID")?;
        let jid = jid.trim_end_matches(',');
        list.push(jid.to_owned());
        any = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> ChatCommand {
        parse(body, &Limits::default())
            .unwrap_or_else(|| panic!("{body:?} not recognised"))
            .unwrap_or_else(|e| panic!("{body:?}: {e}"))
    }

    fn err(body: &str) -> String {
        let e = parse(body, &Limits::default())
            .expect("recognised")
            .expect_err(body);
        assert_eq!(e.status(), 400);
        e.to_string()
    }

    #[test]
    fn other_bodies_are_left_to_the_query_language() {
        for body in [
            "SELECT * FROM leela.xmpp;",
            "DELETE FROM leela.xmpp",
            "drop table x",
            "hello",
            "",
            "acknowledge 3",
        ] {
            assert_eq!(parse(body, &Limits::default()), None, "{body:?}");
        }
    }

    #[test]
    fn a_full_rule_definition() {
        let cmd = ok(
            r#"alert cpu-high SEVERITY crit for 5m REPEAT never UNIT "%" ROUTE ROOM ops@conf.example.org, USER bob@example.org MESSAGE "{host} \"hot\"" RESOLVED ok SELECT [< 10] FROM ^web.*\.idle$;"#,
        );
        let ChatCommand::Define(spec) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(spec.name, "cpu-high");
        assert_eq!(spec.severity.as_deref(), Some("crit"));
        assert_eq!(spec.for_.as_deref(), Some("5m"));
        assert_eq!(spec.repeat.as_deref(), Some("never"));
        assert_eq!(spec.unit.as_deref(), Some("%"));
        assert_eq!(spec.route.rooms, ["ops@conf.example.org"]);
        assert_eq!(spec.route.users, ["bob@example.org"]);
        assert_eq!(spec.firing.as_deref(), Some("{host} \"hot\""));
        assert_eq!(spec.resolved.as_deref(), Some("ok"));
        assert_eq!(spec.query, r"SELECT [< 10] FROM ^web.*\.idle$;");
        let ChatCommand::Define(spec) = ok("ALERT x SELECT id FROM a") else {
            panic!()
        };
        assert_eq!((spec.route, spec.severity), (Route::default(), None));
    }

    #[test]
    fn rule_errors_point_at_the_column() {
        for (body, message) in [
            ("ALERT", "expected a rule name, found end of input at column 6"),
            (
                "ALERT x LOUD SELECT id FROM a",
                "expected SEVERITY, FOR, REPEAT, UNIT, ROUTE, MESSAGE, RESOLVED or SELECT, found \"LOUD\" at column 9",
            ),
            ("ALERT x FOR 1m FOR 2m SELECT id FROM a", "FOR is given twice at column 16"),
            ("ALERT x ROUTE alice@x SELECT id FROM a", "expected ROOM or USER, found \"alice@x\" at column 15"),
            ("ALERT x MESSAGE \"open", "unclosed string at column 17"),
            // The query's own errors, at their column in the whole body.
            ("ALERT x SELECT id FRM a", "expected | or FROM, found \"FRM\" at column 19"),
            ("ALERT x FOR 5m SELECT window 0 (mean) FROM a", "window size must be between 1 and 1000000 at column 30"),
        ] {
            assert_eq!(err(body), message, "{body:?}");
        }
    }

    #[test]
    fn ack_silence_and_listing_commands() {
        assert_eq!(ok("ack 12"), ChatCommand::Ack { ids: vec![12] });
        assert_eq!(ok("ACK #12, 13"), ChatCommand::Ack { ids: vec![12, 13] });
        assert_eq!(
            ok("silence 2h web1.* deploy of the new kernel"),
            ChatCommand::Silence {
                secs: 7200.0,
                matcher: "web1.*".into(),
                comment: "deploy of the new kernel".into()
            }
        );
        assert_eq!(
            ok("silence 30m cpu-high"),
            ChatCommand::Silence {
                secs: 1800.0,
                matcher: "cpu-high".into(),
                comment: String::new()
            }
        );
        assert_eq!(ok("unsilence s3"), ChatCommand::Unsilence { id: 3 });
        assert_eq!(ok("unsilence 3"), ChatCommand::Unsilence { id: 3 });
        assert_eq!(ok("silences"), ChatCommand::Silences);
        assert_eq!(ok(" Alerts "), ChatCommand::Alerts);
        assert_eq!(ok("rules"), ChatCommand::Rules);
        assert_eq!(ok("history"), ChatCommand::History { count: 10 });
        assert_eq!(ok("history 25"), ChatCommand::History { count: 25 });
        assert_eq!(
            ok("DROP alert cpu-high"),
            ChatCommand::Drop {
                name: "cpu-high".into()
            }
        );
    }

    #[test]
    fn command_errors() {
        let long_matcher = format!("silence 1h {}", "x".repeat(201));
        let long_comment = format!("silence 1h x {}", "y".repeat(501));
        for (body, message) in [
            ("ack", "expected an alert id, found end of input at column 4"),
            ("ack twelve", "expected an alert id, found \"twelve\" at column 5"),
            ("silence web1.*", "`web1.*` is not a duration with a unit such as \"10s\": expected number at 0 at column 9"),
            ("silence 2h", "expected a matcher such as web1.*, found end of input at column 11"),
            ("silence 0 x", "a silence must last longer than zero at column 9"),
            ("history 0", "history count must be between 1 and 50 at column 9"),
            ("history 5 more", "expected end of command, found \"more\" at column 11"),
            ("alerts now", "expected end of command, found \"now\" at column 8"),
            ("unsilence", "expected a silence id, found end of input at column 10"),
            ("drop alert", "expected a rule name, found end of input at column 11"),
            (&long_matcher, "a matcher may have at most 200 characters at column 12"),
            (&long_comment, "a comment may have at most 500 characters at column 14"),
        ] {
            assert_eq!(err(body), message, "{body:?}");
        }
    }

    mod never_panics {
        use super::*;
        use crate::alerts::rule::Settings;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn on_any_body(body in "(?s)(ALERT|ack|silence|history|unsilence|drop alert|alerts|\\PC){0,3}[ -~éü🔥\"\\\\\n]{0,60}") {
                if let Some(Ok(ChatCommand::Define(spec))) = parse(&body, &Limits::default()) {
                    let _ = spec.validate(Some("a@b"), &Settings::default(), &Limits::default());
                }
            }

            #[test]
            fn on_any_rule_clauses(
                clauses in prop::collection::vec(prop_oneof![
                    "SEVERITY (info|warn|crit|loud)",
                    "FOR (0|30s|5m|1h30m|x)",
                    "REPEAT (never|2h|10s)",
                    "UNIT (%|\"kB/s\"|\"a \\\"b\\\"\")",
                    "ROUTE (ROOM|USER) [a-z]{1,3}@[a-z]{1,3}(, USER b@c)?",
                    "(MESSAGE|RESOLVED) \"[{}a-z ]{0,12}\"",
                ], 0..5),
                query in prop_oneof![
                    Just("SELECT [< 10] FROM ^web.*$;".to_owned()),
                    Just("SELECT window 3 (mean) | [> 2.5] FROM idle$".to_owned()),
                    Just("SELECT absent 1m FROM x".to_owned()),
                    "SELECT [ -~]{0,20}",
                ],
            ) {
                let body = format!("ALERT r {} {query}", clauses.join(" "));
                if let Some(Ok(ChatCommand::Define(spec))) = parse(&body, &Limits::default()) {
                    if let Ok(rule) = spec.validate(Some("a@b"), &Settings::default(), &Limits::default()) {
                        // What validates prints back to itself.
                        let again = parse(&rule.to_chat(), &Limits::default());
                        let Some(Ok(ChatCommand::Define(back))) = again else {
                            panic!("{body:?} printed as {:?}", rule.to_chat());
                        };
                        let back = back
                            .validate(Some("a@b"), &Settings::default(), &Limits::default())
                            .unwrap();
                        prop_assert_eq!(back, rule);
                    }
                }
            }
        }
    }
}
