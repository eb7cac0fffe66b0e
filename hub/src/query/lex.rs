//! A character cursor shared by the command and proc parsers.
//!
//! Positions are byte offsets into the request body; error columns are 1-based *character*
//! columns, so a user counting characters in their client finds the spot.

use super::error::ParseError;

#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Cursor { src, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn set_pos(&mut self, pos: usize) {
        self.pos = pos;
    }

    pub(crate) fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    /// The 1-based character column of byte offset `pos`.
    pub(crate) fn column_of(&self, pos: usize) -> usize {
        self.src[..pos].chars().count() + 1
    }

    pub(crate) fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    /// Consumes `c` (after whitespace) if it is next.
    pub(crate) fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// Consumes the literal `s` (after whitespace) if it is next, case-sensitively.
    pub(crate) fn eat_str(&mut self, s: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    /// The next word (ASCII letters) after whitespace, without consuming it.
    pub(crate) fn peek_word(&mut self) -> &'a str {
        self.skip_ws();
        let rest = self.rest();
        let len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        &rest[..len]
    }

    /// Consumes the next word if it equals `kw`, ignoring ASCII case.
    pub(crate) fn eat_keyword(&mut self, kw: &str) -> bool {
        let word = self.peek_word();
        if word.eq_ignore_ascii_case(kw) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    /// Consumes and returns the next word (possibly empty).
    pub(crate) fn word(&mut self) -> &'a str {
        let word = self.peek_word();
        self.pos += word.len();
        word
    }

    /// Consumes a run of ASCII digits (after whitespace).
    pub(crate) fn digits(&mut self) -> &'a str {
        self.skip_ws();
        let rest = self.rest();
        let len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    /// Consumes a decimal floating-point literal without sign:
    /// `digits [. digits*] [e [+-] digits]` or `. digits [e …]`.
    pub(crate) fn double(&mut self) -> &'a str {
        self.skip_ws();
        let rest = self.rest().as_bytes();
        let digits = |from: usize| {
            rest[from..]
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(rest.len() - from)
        };
        let int = digits(0);
        let mut len = int;
        if rest.get(len) == Some(&b'.') {
            let frac = digits(len + 1);
            if int > 0 || frac > 0 {
                len += 1 + frac;
            }
        }
        if len == 0 {
            return "";
        }
        if matches!(rest.get(len), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(rest.get(len + 1), Some(b'+' | b'-')));
            let exp = digits(len + 1 + sign);
            if exp > 0 {
                len += 1 + sign + exp;
            }
        }
        let text = &self.rest()[..len];
        self.pos += len;
        text
    }

    /// A short description of what is at `pos`, for "found …" in errors.
    pub(crate) fn found_at(&self, pos: usize) -> String {
        let rest = &self.src[pos..];
        let rest = rest.trim_start();
        let Some(first) = rest.chars().next() else {
            return "end of input".to_owned();
        };
        let token: String = if first.is_ascii_alphanumeric() || first == '.' {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_')
                .take(20)
                .collect()
        } else {
            first.to_string()
        };
        format!("\"{token}\"")
    }

    /// An "expected X" error at the next token (after whitespace).
    pub(crate) fn expected(&self, what: &str) -> ParseError {
        let mut c = self.clone();
        c.skip_ws();
        ParseError::Expected {
            column: c.column_of(c.pos),
            expected: what.to_owned(),
            found: c.found_at(c.pos),
        }
    }

    /// An "invalid" error at byte offset `pos`.
    pub(crate) fn invalid(&self, pos: usize, message: impl Into<String>) -> ParseError {
        ParseError::Invalid {
            column: self.column_of(pos),
            message: message.into(),
        }
    }
}
