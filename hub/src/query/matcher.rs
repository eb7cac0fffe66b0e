//! Which registrations' regexes match an event name.
//!
//! The engine asks this only on the first sight of a name (it caches the answer per name), so
//! this is the cold path. Patterns live in chunks of [`CHUNK`] with one `RegexSet` each, built
//! lazily on the first lookup after a chunk changed: adding or deleting one registration
//! recompiles one chunk of ≤ 256 patterns, never all of them, and small sets stay clear of the
//! lazy-DFA cliff `RegexSet` shows past ~2,000 patterns (docs/performance.md).

use std::collections::HashMap;

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use super::engine::Limits;
use super::error::QueryError;
use super::registry::RegId;

/// Patterns per `RegexSet`.
pub(crate) const CHUNK: usize = 256;

/// Compiles a registration's regex under the size limits. `column` is the body column where the
/// regex starts, so syntax errors point into the request.
pub(crate) fn compile(pattern: &str, column: usize, limits: &Limits) -> Result<Regex, QueryError> {
    if pattern.len() > limits.max_regex_bytes {
        return Err(QueryError::TooLarge {
            what: "regex length (bytes)",
            limit: limits.max_regex_bytes,
        });
    }
    if let Err(e) = regex_syntax::Parser::new().parse(pattern) {
        let (offset, message) = match &e {
            regex_syntax::Error::Parse(e) => (e.span().start.offset, e.kind().to_string()),
            regex_syntax::Error::Translate(e) => (e.span().start.offset, e.kind().to_string()),
            other => (0, other.to_string()),
        };
        let within = pattern.get(..offset).map_or(0, |p| p.chars().count());
        return Err(QueryError::Regex {
            column: column + within,
            message,
        });
    }
    builder(pattern, limits).build().map_err(|e| match e {
        regex::Error::CompiledTooBig(_) => QueryError::TooLarge {
            what: "compiled regex size (bytes)",
            limit: limits.regex_size_limit,
        },
        other => QueryError::Regex {
            column,
            message: other.to_string(),
        },
    })
}

fn builder(pattern: &str, limits: &Limits) -> RegexBuilder {
    let mut b = RegexBuilder::new(pattern);
    b.size_limit(limits.regex_size_limit)
        .dfa_size_limit(limits.regex_size_limit.saturating_mul(4));
    b
}

#[derive(Debug, Default)]
pub(crate) struct Matcher {
    chunks: Vec<Chunk>,
    /// Registration → index of its chunk.
    home: HashMap<RegId, usize>,
    set_size_limit: usize,
}

#[derive(Debug, Default)]
struct Chunk {
    ids: Vec<RegId>,
    patterns: Vec<String>,
    /// `None` after a change: rebuilt at the next lookup.
    compiled: Option<Compiled>,
}

#[derive(Debug)]
enum Compiled {
    Set(RegexSet),
    /// Fallback if a set cannot be built (each pattern compiled on its own earlier, so this
    /// only guards against limits of the combined program).
    Each(Vec<(usize, Regex)>),
}

impl Matcher {
    pub(crate) fn new(limits: &Limits) -> Self {
        Matcher {
            set_size_limit: limits.regex_size_limit.saturating_mul(CHUNK),
            ..Matcher::default()
        }
    }

    pub(crate) fn insert(&mut self, id: RegId, pattern: String) {
        let at = match self.chunks.iter().position(|c| c.ids.len() < CHUNK) {
            Some(at) => at,
            None => {
                self.chunks.push(Chunk::default());
                self.chunks.len() - 1
            }
        };
        if let Some(chunk) = self.chunks.get_mut(at) {
            chunk.ids.push(id);
            chunk.patterns.push(pattern);
            chunk.compiled = None;
            self.home.insert(id, at);
        }
    }

    pub(crate) fn remove(&mut self, id: RegId) {
        let Some(chunk) = self.home.remove(&id).and_then(|at| self.chunks.get_mut(at)) else {
            return;
        };
        if let Some(i) = chunk.ids.iter().position(|x| *x == id) {
            chunk.ids.swap_remove(i);
            chunk.patterns.swap_remove(i);
            chunk.compiled = None;
        }
    }

    /// Appends to `out` every registration whose regex matches `name`.
    pub(crate) fn matches(&mut self, name: &str, out: &mut Vec<RegId>) {
        let limit = self.set_size_limit;
        for chunk in &mut self.chunks {
            if chunk.ids.is_empty() {
                continue;
            }
            let compiled = chunk
                .compiled
                .get_or_insert_with(|| build(&chunk.patterns, limit));
            match compiled {
                Compiled::Set(set) => {
                    out.extend(set.matches(name).iter().filter_map(|i| chunk.ids.get(i)));
                }
                Compiled::Each(each) => out.extend(
                    each.iter()
                        .filter(|(_, re)| re.is_match(name))
                        .filter_map(|(i, _)| chunk.ids.get(*i)),
                ),
            }
        }
    }
}

fn build(patterns: &[String], size_limit: usize) -> Compiled {
    match RegexSetBuilder::new(patterns)
        .size_limit(size_limit)
        .dfa_size_limit(size_limit.min(64 << 20))
        .build()
    {
        Ok(set) => Compiled::Set(set),
        Err(_) => Compiled::Each(
            patterns
                .iter()
                .enumerate()
                .filter_map(|(i, p)| Regex::new(p).ok().map(|re| (i, re)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    fn matching(m: &mut Matcher, name: &str) -> Vec<RegId> {
        let mut out = vec![];
        m.matches(name, &mut out);
        out.sort();
        out
    }

    #[test]
    fn compile_reports_column_in_body_and_limits() {
        let l = limits();
        assert!(compile(r"^.*\.cpu\.cpu\.idle$", 16, &l).is_ok());
        let e = compile("web(1", 16, &l).unwrap_err();
        assert_eq!(e.status(), 400);
        assert_eq!(e.to_string(), "invalid regex at column 19: unclosed group");
        let e = compile("é[z-a]", 10, &l).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid regex at column 12: invalid character class range, the start must be <= the end"
        );
        let e = compile(&"a".repeat(2000), 1, &l).unwrap_err();
        assert_eq!(e.status(), 413);
        let e = compile(r"\w{1000}", 1, &l).unwrap_err();
        assert_eq!(e.status(), 413, "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "compiled regex size (bytes) is over the limit of {}",
                l.regex_size_limit
            )
        );
    }

    #[test]
    fn chunks_match_insert_and_remove() {
        let mut m = Matcher::new(&limits());
        for id in 0..600u32 {
            m.insert(id, format!(r"^host{id}\."));
        }
        m.insert(600, r"\.cpu\.".into());
        assert_eq!(matching(&mut m, "host7.cpu.cpu.idle"), [7, 600]);
        assert_eq!(matching(&mut m, "host599.load.load.shortterm"), [599]);
        m.remove(7);
        m.remove(7);
        assert_eq!(matching(&mut m, "host7.cpu.cpu.idle"), [600]);
        m.insert(7, "idle$".into());
        assert_eq!(matching(&mut m, "host7.cpu.cpu.idle"), [7, 600]);
        assert!(matching(&mut m, "nothing").is_empty());
    }

    #[test]
    fn fallback_matches_one_by_one() {
        let c = build(&["^a".to_owned(), "b$".to_owned()], 1);
        assert!(matches!(c, Compiled::Each(_)));
        let mut m = Matcher::new(&limits());
        m.insert(1, "^a".into());
        m.insert(2, "b$".into());
        if let Some(chunk) = m.chunks.first_mut() {
            chunk.compiled = Some(c);
        }
        assert_eq!(matching(&mut m, "ab"), [1, 2]);
    }
}
