//! The commands of the query language (docs/protocol.md §6): Leela's four, and two for people.
//!
//! ```text
//! SELECT * FROM leela.xmpp;
//! SELECT <proc> FROM <regex>;
//! DELETE FROM leela.xmpp;
//! DELETE FROM leela.xmpp WHERE key=<K or a prefix of it>;
//! FORMAT text;   FORMAT json;
//! help
//! ```
//! Keywords (and `leela.xmpp`) are case-insensitive, whitespace between tokens is free, the
//! trailing `;` is optional. The regex is everything after `FROM` up to an optional final `;`,
//! trimmed: the trimmed text is its canonical form.

use super::engine::Limits;
use super::error::QueryError;
use super::lex::Cursor;
use super::proc::{self, Proc};

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `SELECT * FROM leela.xmpp;`
    List,
    /// `SELECT <proc> FROM <regex>;` (the regex is not compiled yet).
    Register {
        proc: Proc,
        regex: String,
        /// Column of the regex's first character in the body, for regex errors.
        regex_column: usize,
    },
    /// `DELETE FROM leela.xmpp;`
    DeleteAll,
    /// `DELETE FROM leela.xmpp WHERE key=<K>;` (the key, or a prefix of it, lower-cased).
    Delete { key: String },
    /// `FORMAT text;` / `FORMAT json;`: how the caller's events (and replies) are written.
    Format(Format),
    /// `help` (or `?`): the usage text.
    Help,
}

/// How a user's events and replies are written: JSON (the default, Leela's, for programs) or
/// one short line each (for people).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Json,
    Text,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Text => "text",
        }
    }
}

const TABLE: &str = "leela.xmpp";

/// Parses one command, enforcing the proc limits of `limits` (the body size is the caller's).
pub fn parse(body: &str, limits: &Limits) -> Result<Statement, QueryError> {
    let mut c = Cursor::new(body);
    if c.eat_keyword("select") {
        return parse_select(&mut c, limits);
    }
    if c.eat_keyword("delete") {
        return parse_delete(&mut c);
    }
    if c.eat_keyword("format") {
        let format = if c.eat_keyword("text") {
            Format::Text
        } else if c.eat_keyword("json") {
            Format::Json
        } else {
            return Err(c.expected("text or json").into());
        };
        end(&mut c)?;
        return Ok(Statement::Format(format));
    }
    if c.eat_keyword("help") || c.eat('?') {
        end(&mut c)?;
        return Ok(Statement::Help);
    }
    Err(c.expected("SELECT, DELETE, FORMAT or help").into())
}

/// After `SELECT`: `* FROM leela.xmpp;` or `<proc> FROM <regex>;`.
fn parse_select(c: &mut Cursor<'_>, limits: &Limits) -> Result<Statement, QueryError> {
    c.skip_ws();
    if c.eat('*') {
        keyword(c, "from", "FROM")?;
        table(c)?;
        end(c)?;
        return Ok(Statement::List);
    }
    let proc = proc::parse_pipeline(c)?;
    // Measured on the canonical text, so a restored registration passes as it did first.
    if proc.to_string().chars().count() > limits.max_proc_chars {
        return Err(QueryError::TooLarge {
            what: "proc length (characters)",
            limit: limits.max_proc_chars,
        });
    }
    if proc.weight() > limits.max_proc_stages {
        return Err(QueryError::TooLarge {
            what: "proc stage count",
            limit: limits.max_proc_stages,
        });
    }
    keyword(c, "from", "| or FROM")?;
    c.skip_ws();
    let rest = c.rest().trim_end();
    let regex = rest.strip_suffix(';').unwrap_or(rest).trim_end();
    if regex.is_empty() {
        return Err(c.expected("a regex").into());
    }
    Ok(Statement::Register {
        proc,
        regex: regex.to_owned(),
        regex_column: c.column_of(c.pos()),
    })
}

/// After `DELETE`: `FROM leela.xmpp;` or `FROM leela.xmpp WHERE key=<hex>;`.
fn parse_delete(c: &mut Cursor<'_>) -> Result<Statement, QueryError> {
    keyword(c, "from", "FROM")?;
    table(c)?;
    if !c.eat_keyword("where") {
        end(c)?;
        return Ok(Statement::DeleteAll);
    }
    keyword(c, "key", "key")?;
    if !c.eat('=') {
        return Err(c.expected("=").into());
    }
    c.skip_ws();
    let key = c.rest();
    let len = key
        .find(|ch: char| !ch.is_ascii_alphanumeric())
        .unwrap_or(key.len());
    if len == 0 {
        return Err(c.expected("a key").into());
    }
    let key = key[..len].to_ascii_lowercase();
    c.set_pos(c.pos() + len);
    end(c)?;
    Ok(Statement::Delete { key })
}

fn keyword(c: &mut Cursor<'_>, kw: &str, expected: &str) -> Result<(), QueryError> {
    if c.eat_keyword(kw) {
        Ok(())
    } else {
        Err(c.expected(expected).into())
    }
}

fn table(c: &mut Cursor<'_>) -> Result<(), QueryError> {
    c.skip_ws();
    let rest = c.rest();
    let is_table = rest
        .get(..TABLE.len())
        .is_some_and(|t| t.eq_ignore_ascii_case(TABLE));
    let boundary = rest
        .get(TABLE.len()..)
        .and_then(|r| r.chars().next())
        .is_none_or(|ch| ch.is_whitespace() || ch == ';');
    if is_table && boundary {
        c.set_pos(c.pos() + TABLE.len());
        Ok(())
    } else {
        Err(c.expected(TABLE).into())
    }
}

fn end(c: &mut Cursor<'_>) -> Result<(), QueryError> {
    c.eat(';');
    c.skip_ws();
    if c.at_end() {
        Ok(())
    } else {
        Err(c.expected("end of command").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(body: &str) -> Statement {
        parse(body, &Limits::default()).unwrap_or_else(|e| panic!("{body:?}: {e}"))
    }

    fn err(body: &str) -> String {
        parse(body, &Limits::default()).expect_err(body).to_string()
    }

    fn register(proc: &str, regex: &str, regex_column: usize) -> Statement {
        Statement::Register {
            proc: proc::parse(proc).unwrap(),
            regex: regex.into(),
            regex_column,
        }
    }

    #[test]
    fn the_four_commands() {
        assert_eq!(cmd("SELECT * FROM leela.xmpp;"), Statement::List);
        assert_eq!(cmd("select*from LEELA.XMPP"), Statement::List);
        assert_eq!(cmd("  SeLeCt  *  FrOm  leela.xmpp  ;  "), Statement::List);
        assert_eq!(
            cmd(r"SELECT id FROM ^.*\.cpu\.cpu\.idle$;"),
            register("id", r"^.*\.cpu\.cpu\.idle$", 16)
        );
        assert_eq!(
            cmd("select mean|(*100)|[>50] from ^web1\\. "),
            register("mean | (* 100) | [> 50]", r"^web1\.", 31)
        );
        assert_eq!(cmd("DELETE FROM leela.xmpp;"), Statement::DeleteAll);
        assert_eq!(cmd("delete from leela.xmpp"), Statement::DeleteAll);
        assert_eq!(
            cmd("DELETE FROM leela.xmpp WHERE key=ABC123;"),
            Statement::Delete {
                key: "abc123".into()
            }
        );
        assert_eq!(
            cmd("delete from leela.xmpp where KEY = abc ;"),
            Statement::Delete { key: "abc".into() }
        );
    }

    #[test]
    fn the_commands_for_people() {
        assert_eq!(cmd("help"), Statement::Help);
        assert_eq!(cmd(" HELP; "), Statement::Help);
        assert_eq!(cmd("?"), Statement::Help);
        assert_eq!(cmd("FORMAT text;"), Statement::Format(Format::Text));
        assert_eq!(cmd("format JSON"), Statement::Format(Format::Json));
    }

    #[test]
    fn regex_is_the_trimmed_rest_without_the_final_semicolon() {
        assert_eq!(cmd("SELECT id FROM a b ;"), register("id", "a b", 16));
        assert_eq!(cmd("SELECT id FROM a;;"), register("id", "a;", 16));
        assert_eq!(cmd("SELECT id FROM\n\t.*\n"), register("id", ".*", 17));
        // A regex may name the listing table: that is a registration, not a listing.
        assert_eq!(
            cmd("SELECT id FROM leela.xmpp"),
            register("id", "leela.xmpp", 16)
        );
    }

    #[test]
    fn errors_carry_column_and_expectation() {
        for (body, message) in [
            ("", "expected SELECT, DELETE, FORMAT or help at column 1, found end of input"),
            ("UPDATE x", "expected SELECT, DELETE, FORMAT or help at column 1, found \"UPDATE\""),
            ("SELECTid FROM a", "expected SELECT, DELETE, FORMAT or help at column 1, found \"SELECTid\""),
            ("FORMAT xml", "expected text or json at column 8, found \"xml\""),
            ("help me", "expected end of command at column 6, found \"me\""),
            ("SELECT id   ^a$", "expected | or FROM at column 13, found \"^\""),
            ("SELECT mean foo", "expected | or FROM at column 13, found \"foo\""),
            ("SELECT id FROM", "expected a regex at column 15, found end of input"),
            ("SELECT id FROM  ; ", "expected a regex at column 17, found \";\""),
            ("SELECT FROM a", "expected a function (id, mean, window, [> v], (* v), …) at column 8, found \"FROM\""),
            ("SELECT * FROM a", "expected leela.xmpp at column 15, found \"a\""),
            ("SELECT * FROM leela.xmppx", "expected leela.xmpp at column 15, found \"leela.xmppx\""),
            ("SELECT * leela.xmpp", "expected FROM at column 10, found \"leela.xmpp\""),
            ("SELECT * FROM leela.xmpp; x", "expected end of command at column 27, found \"x\""),
            ("DELETE leela.xmpp", "expected FROM at column 8, found \"leela.xmpp\""),
            ("DELETE FROM leela.xmpp x", "expected end of command at column 24, found \"x\""),
            ("DELETE FROM leela.xmpp WHERE id=1", "expected key at column 30, found \"id\""),
            ("DELETE FROM leela.xmpp WHERE key 1", "expected = at column 34, found \"1\""),
            ("DELETE FROM leela.xmpp WHERE key=", "expected a key at column 34, found end of input"),
            ("DELETE FROM leela.xmpp WHERE key=ab cd", "expected end of command at column 37, found \"cd\""),
            ("SELECT window 0 (mean) FROM a", "window size must be between 1 and 1000000 at column 15"),
            ("SELECT sample 0/0 FROM a", "sample count must be between 1 and 1000000 at column 15"),
            ("SELECT ü FROM a", "expected a function (id, mean, window, [> v], (* v), …) at column 8, found \"ü\""),
        ] {
            assert_eq!(err(body), message, "{body:?}");
            assert_eq!(parse(body, &Limits::default()).unwrap_err().status(), 400);
        }
    }

    #[test]
    fn proc_limits_are_413() {
        let limits = Limits {
            max_proc_chars: 25,
            max_proc_stages: 3,
            ..Limits::default()
        };
        let e = parse("SELECT id|id|id|id|id|id|id FROM a", &limits).unwrap_err();
        assert_eq!(e.status(), 413);
        assert_eq!(
            e.to_string(),
            "proc length (characters) is over the limit of 25"
        );
        let e = parse("SELECT window 2 (id|id|id) FROM a", &limits).unwrap_err();
        assert_eq!(e.to_string(), "proc stage count is over the limit of 3");
        assert!(parse("SELECT id|id|id FROM a", &limits).is_ok());
    }
}
