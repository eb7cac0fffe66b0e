//! How alerts read: numbers and durations a person takes in at a glance, series names split
//! into host and metric, and the per-rule message templates (docs/alerts.md, "Messages").

use std::fmt::Write as _;

/// A value with about three significant digits, trailing zeros dropped: `3.2`, `45`, `0.042`,
/// `1235`.
pub fn value(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "∞" } else { "-∞" }.to_owned();
    }
    if v == 0.0 {
        return "0".to_owned();
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (2 - magnitude).clamp(0, 6) as usize;
    let mut text = format!("{v:.decimals$}");
    if text.contains('.') {
        while text.ends_with('0') {
            text.pop();
        }
        if text.ends_with('.') {
            text.pop();
        }
    }
    if text == "-0" {
        text = "0".to_owned();
    }
    text
}

/// A value followed by its unit, if any: `3.2 %`.
pub fn value_with_unit(v: f64, unit: &str) -> String {
    if unit.is_empty() {
        value(v)
    } else {
        format!("{} {unit}", value(v))
    }
}

/// A duration in the two largest units that matter, rounded down: `45 s`, `12 min`,
/// `2 h 5 min`, `3 d 4 h`.
pub fn duration(secs: f64) -> String {
    let s = if secs.is_finite() && secs > 0.0 {
        secs as u64
    } else {
        0
    };
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// Splits an event name into its host and a readable metric: `web1.cpu.cpu.idle` is
/// (`web1`, `cpu idle`) — components joined by spaces, a component repeating the one before it
/// dropped. A name without a dot is all host.
pub fn split_series(name: &str) -> (&str, String) {
    let Some((host, rest)) = name.split_once('.') else {
        return (name, String::new());
    };
    let mut metric = String::new();
    let mut last = "";
    for part in rest.split('.') {
        if part == last || part.is_empty() {
            continue;
        }
        if !metric.is_empty() {
            metric.push(' ');
        }
        metric.push_str(part);
        last = part;
    }
    (host, metric)
}

/// The placeholders a template may use, each documented in docs/alerts.md.
pub const PLACEHOLDERS: &[&str] = &[
    "icon",
    "host",
    "metric",
    "name",
    "value",
    "condition",
    "rule",
    "severity",
    "duration",
    "for",
    "id",
    "text",
];

/// What a template is rendered with; every field is already text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields {
    pub icon: String,
    pub host: String,
    pub metric: String,
    pub name: String,
    pub value: String,
    pub condition: String,
    pub rule: String,
    pub severity: String,
    pub duration: String,
    /// `for {duration}`, empty while that is under a second (a rule without `for` firing on
    /// its first passing event).
    pub held_for: String,
    pub id: String,
    pub text: String,
}

impl Fields {
    fn get(&self, placeholder: &str) -> &str {
        match placeholder {
            "icon" => &self.icon,
            "host" => &self.host,
            "metric" => &self.metric,
            "name" => &self.name,
            "value" => &self.value,
            "condition" => &self.condition,
            "rule" => &self.rule,
            "severity" => &self.severity,
            "duration" => &self.duration,
            "for" => &self.held_for,
            "id" => &self.id,
            "text" => &self.text,
            _ => "",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Field(&'static str),
}

/// A parsed message template: literal text with `{placeholder}`s; `{{` and `}}` are literal
/// braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

/// The default text of a firing alert: `🔥 web1 cpu idle 3.2 % < 10 % for 5 min (cpu-high) #12`
/// (without `for 5 min` when the alert opened on its first passing event).
pub const DEFAULT_FIRING: &str = "{icon} {host} {metric} {value} {condition} {for} ({rule}) #{id}";
/// The default text of a resolved alert: `✅ web1 cpu idle back to 45 % after 12 min (cpu-high)`.
pub const DEFAULT_RESOLVED: &str =
    "{icon} {host} {metric} back to {value} after {duration} ({rule})";

impl Template {
    /// Parses `source`; the error names the first unknown placeholder or stray brace.
    pub fn parse(source: &str) -> Result<Template, String> {
        if source.trim().is_empty() {
            return Err("a message template must not be empty".to_owned());
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = source.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|(_, n)| *n == '{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().is_some_and(|(_, n)| *n == '}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let rest = &source[at + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(format!("unclosed {{ at character {}", column(source, at)));
                    };
                    let word = &rest[..end];
                    let Some(known) = PLACEHOLDERS.iter().find(|p| **p == word) else {
                        return Err(format!(
                            "unknown placeholder {{{word}}} at character {}; known: {}",
                            column(source, at),
                            PLACEHOLDERS
                                .iter()
                                .map(|p| format!("{{{p}}}"))
                                .collect::<Vec<_>>()
                                .join(" ")
                        ));
                    };
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Field(known));
                    for _ in 0..word.chars().count() + 1 {
                        chars.next();
                    }
                }
                '}' => {
                    return Err(format!(
                        "unmatched }} at character {} (write }}}} for a brace)",
                        column(source, at)
                    ))
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Template {
            source: source.to_owned(),
            pieces,
        })
    }

    /// The text the template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The message: the pieces filled in, runs of whitespace (left by empty fields) made one
    /// space, one line.
    pub fn render(&self, fields: &Fields) -> String {
        let mut text = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => text.push_str(s),
                Piece::Field(f) => text.push_str(fields.get(f)),
            }
        }
        let mut line = String::with_capacity(text.len());
        for word in text.split_whitespace() {
            if !line.is_empty() {
                line.push(' ');
            }
            let _ = write!(line, "{word}");
        }
        line
    }
}

fn column(source: &str, byte: usize) -> usize {
    source[..byte].chars().count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_at_a_glance() {
        for (v, text) in [
            (3.2, "3.2"),
            (45.0, "45"),
            (45.04, "45"),
            (12.25, "12.2"),
            (0.0421, "0.0421"),
            (1234.6, "1235"),
            (-3.25, "-3.25"),
            (0.0, "0"),
            (-0.0001, "-0.0001"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "∞"),
        ] {
            assert_eq!(value(v), text, "{v}");
        }
        assert_eq!(value_with_unit(3.2, "%"), "3.2 %");
        assert_eq!(value_with_unit(3.2, ""), "3.2");
    }

    #[test]
    fn durations_in_two_units() {
        for (s, text) in [
            (0.0, "0 s"),
            (-5.0, "0 s"),
            (45.9, "45 s"),
            (300.0, "5 min"),
            (12.0 * 60.0 + 59.0, "12 min"),
            (7200.0, "2 h"),
            (7500.0, "2 h 5 min"),
            (3.0 * 86_400.0 + 4.0 * 3600.0 + 60.0, "3 d 4 h"),
            (86_400.0 + 60.0, "1 d"),
        ] {
            assert_eq!(duration(s), text, "{s}");
        }
    }

    #[test]
    fn series_split_into_host_and_metric() {
        assert_eq!(
            split_series("web1.cpu.cpu.idle"),
            ("web1", "cpu idle".into())
        );
        assert_eq!(
            split_series("db2.df-root.percent.used"),
            ("db2", "df-root percent used".into())
        );
        assert_eq!(split_series("web1"), ("web1", String::new()));
        assert_eq!(split_series("web1..a"), ("web1", "a".into()));
    }

    fn fields() -> Fields {
        Fields {
            icon: "🔥".into(),
            host: "web1".into(),
            metric: "cpu idle".into(),
            value: "3.2 %".into(),
            condition: "< 10 %".into(),
            rule: "cpu-high".into(),
            duration: "5 min".into(),
            held_for: "for 5 min".into(),
            id: "12".into(),
            ..Fields::default()
        }
    }

    #[test]
    fn default_templates_give_the_documented_lines() {
        let t = Template::parse(DEFAULT_FIRING).unwrap();
        assert_eq!(
            t.render(&fields()),
            "🔥 web1 cpu idle 3.2 % < 10 % for 5 min (cpu-high) #12"
        );
        let t = Template::parse(DEFAULT_RESOLVED).unwrap();
        let f = Fields {
            icon: "✅".into(),
            value: "45 %".into(),
            duration: "12 min".into(),
            ..fields()
        };
        assert_eq!(
            t.render(&f),
            "✅ web1 cpu idle back to 45 % after 12 min (cpu-high)"
        );
        // Opened on its first passing event: no `for 0 s`.
        let t = Template::parse(DEFAULT_FIRING).unwrap();
        let f = Fields {
            held_for: String::new(),
            ..fields()
        };
        assert_eq!(t.render(&f), "🔥 web1 cpu idle 3.2 % < 10 % (cpu-high) #12");
    }

    #[test]
    fn empty_fields_and_newlines_leave_one_space() {
        let t = Template::parse("{icon} {host}\n{condition}  {text} [{rule}]").unwrap();
        assert_eq!(t.render(&fields()), "🔥 web1 < 10 % [cpu-high]");
        let t = Template::parse("{host} {{literal}} {id}").unwrap();
        assert_eq!(t.render(&fields()), "web1 {literal} 12");
        assert_eq!(t.source(), "{host} {{literal}} {id}");
    }

    #[test]
    fn template_errors_say_what_and_where() {
        let e = Template::parse("{host} {hots}").unwrap_err();
        assert!(
            e.starts_with("unknown placeholder {hots} at character 8; known: {icon} {host}"),
            "{e}"
        );
        assert_eq!(
            Template::parse("a {host").unwrap_err(),
            "unclosed { at character 3"
        );
        assert_eq!(
            Template::parse("a } b").unwrap_err(),
            "unmatched } at character 3 (write }} for a brace)"
        );
        assert_eq!(
            Template::parse("  ").unwrap_err(),
            "a message template must not be empty"
        );
    }

    mod never_panics {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn on_any_template(text in "[{}a-z é🔥]{0,40}") {
                if let Ok(t) = Template::parse(&text) {
                    let _ = t.render(&Fields::default());
                }
            }

            #[test]
            fn on_any_number(v in proptest::num::f64::ANY, secs in proptest::num::f64::ANY) {
                let _ = value(v);
                let _ = duration(secs);
            }
        }
    }
}
