//! Silences: while one matches an alert, nothing is told about it (docs/alerts.md, "Ack and
//! silence").

use serde::{Deserialize, Serialize};

/// A silence: matching alerts send nothing until `until`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// The short id `unsilence` takes (shown as `s3`).
    pub id: u32,
    /// A glob (`*` any run, `?` one character) over the series name or the rule name.
    pub matcher: String,
    /// Hub clock.
    pub until: f64,
    /// Who set it, as the room or chat showed them.
    pub by: String,
    pub comment: String,
    pub created: f64,
}

impl Silence {
    /// Whether the silence covers the alert of `source` (a rule name) for `series`.
    pub fn matches(&self, source: &str, series: &str) -> bool {
        glob(&self.matcher, series) || glob(&self.matcher, source)
    }
}

/// Whole-string glob: `*` matches any run (also empty), `?` one character, all else itself.
/// Linear backtracking over the last `*`, so no input makes it slow.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names() {
        assert!(glob("web1.*", "web1.cpu.cpu.idle"));
        assert!(!glob("web1.*", "web10"));
        assert!(glob("web?.cpu*", "web2.cpu.cpu.idle"));
        assert!(glob("*idle", "web2.cpu.cpu.idle"));
        assert!(!glob("*idle", "web2.cpu.cpu.idle.x"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "aXbYbZc"));
        assert!(!glob("cpu-high", "cpu-high2"));
    }

    #[test]
    fn a_silence_matches_by_series_or_by_rule() {
        let s = |matcher: &str| Silence {
            id: 1,
            matcher: matcher.into(),
            until: 10.0,
            by: "a@b".into(),
            comment: String::new(),
            created: 0.0,
        };
        assert!(s("web1.*").matches("cpu-high", "web1.cpu.cpu.idle"));
        assert!(s("cpu-*").matches("cpu-high", "web1.cpu.cpu.idle"));
        assert!(!s("db*").matches("cpu-high", "web1.cpu.cpu.idle"));
    }
}
