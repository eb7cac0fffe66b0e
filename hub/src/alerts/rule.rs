//! Alert rules and the alerting settings: the `[[alerts]]` and `[alerting]` sections of
//! `hub.toml` as serde structs, and their validation into [`Rule`] and [`Settings`], reporting
//! every problem at once (docs/alerts.md, "Rules").

use jabmon_shared::config::parse_duration;
use jabmon_shared::payload::Severity;
use serde::{Deserialize, Serialize};

use super::format::{self, Template};
use crate::query::{parse_statement, Limits, Statement};

/// Where an alert's messages go: users (1:1 chat) and MUC rooms (groupchat), bare JIDs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub users: Vec<String>,
    pub rooms: Vec<String>,
}

impl Route {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.rooms.is_empty()
    }

    /// The route to one user.
    pub fn user(jid: &str) -> Route {
        Route {
            users: vec![jid.to_owned()],
            rooms: Vec::new(),
        }
    }

    /// Every problem with the JIDs, each prefixed by `what`.
    fn check(&self, what: &str, problems: &mut Vec<String>) {
        for (kind, jids) in [("users", &self.users), ("rooms", &self.rooms)] {
            for jid in jids {
                if !looks_like_bare_jid(jid) {
                    problems.push(format!(
                        "{what} {kind}: `{jid}` is not a bare JID (name@domain)"
                    ));
                }
            }
        }
    }
}

fn looks_like_bare_jid(jid: &str) -> bool {
    match jid.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !jid.contains('/')
                && !jid.chars().any(char::is_whitespace)
                && !domain.contains('@')
        }
        None => false,
    }
}

/// A rule name: 1-64 of `a-z`, `0-9`, `-`, `_`, starting with a letter or digit.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a rule name (1-64 of a-z, 0-9, - and _, starting with a letter or digit)"
        ))
    }
}

/// `info`, `warning` (`warn`) or `critical` (`crit`).
pub fn parse_severity(text: &str) -> Result<Severity, String> {
    match text.to_ascii_lowercase().as_str() {
        "info" => Ok(Severity::Info),
        "warn" | "warning" => Ok(Severity::Warning),
        "crit" | "critical" => Ok(Severity::Critical),
        _ => Err(format!(
            "`{text}` is not a severity (info, warning or critical)"
        )),
    }
}

/// A duration such as `5m`, `90s`, `1h30m`; `0` (or `0s`) is zero.
pub fn parse_secs(text: &str) -> Result<f64, String> {
    let t = text.trim();
    if t.trim_end_matches('s') == "0" {
        return Ok(0.0);
    }
    parse_duration(t).map(|d| d.as_secs_f64())
}

/// A repeat interval: a duration, or `never` (also `0`).
pub fn parse_repeat(text: &str) -> Result<Option<f64>, String> {
    if text.trim().eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    let secs = parse_secs(text)?;
    if secs == 0.0 {
        Ok(None)
    } else if secs < 60.0 {
        Err(format!("repeat `{text}` is shorter than one minute"))
    } else {
        Ok(Some(secs))
    }
}

/// The longest `for` a rule may have.
pub const MAX_FOR_SECS: f64 = 7.0 * 86_400.0;

/// One validated alert rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    /// The proc in canonical form (as `SELECT * FROM leela.xmpp;` lists it).
    pub proc: String,
    /// The regex, trimmed.
    pub regex: String,
    pub severity: Severity,
    /// How long the condition must hold (and then fail) before the alert opens (resolves).
    pub for_secs: f64,
    /// Repeat interval of an open, unacknowledged alert; `None`: never.
    pub repeat_secs: Option<f64>,
    /// Unit printed after values and the threshold (`%`), possibly empty.
    pub unit: String,
    pub route: Route,
    pub firing: Template,
    pub resolved: Template,
    /// The bare JID that defined the rule in chat; `None` for rules from `hub.toml`.
    pub owner: Option<String>,
}

/// The parts of a rule before validation, shared by `hub.toml` and the chat syntax.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub name: String,
    /// `SELECT <proc> FROM <regex>` (a trailing `;` is optional).
    pub query: String,
    pub severity: Option<String>,
    pub for_: Option<String>,
    pub repeat: Option<String>,
    pub unit: Option<String>,
    pub route: Route,
    pub firing: Option<String>,
    pub resolved: Option<String>,
}

impl RuleSpec {
    /// Validates; `Err` holds every problem, each starting with the rule's name.
    pub fn validate(
        &self,
        owner: Option<&str>,
        settings: &Settings,
        limits: &Limits,
    ) -> Result<Rule, Vec<String>> {
        let mut problems = Vec::new();
        let at = format!("alert `{}`:", self.name);
        if let Err(e) = check_name(&self.name) {
            problems.push(format!("{at} {e}"));
        }
        let (proc, regex) = match parse_statement(&self.query, limits) {
            Ok(Statement::Register { proc, regex, .. }) => (proc.to_string(), regex),
            Ok(_) => {
                problems.push(format!("{at} query must be SELECT <proc> FROM <regex>"));
                (String::new(), String::new())
            }
            Err(e) => {
                problems.push(format!("{at} query: {e}"));
                (String::new(), String::new())
            }
        };
        if !regex.is_empty() && regex.len() > limits.max_regex_bytes {
            problems.push(format!(
                "{at} regex is over the limit of {} bytes",
                limits.max_regex_bytes
            ));
        } else if let Err(e) = regex::Regex::new(&regex) {
            // The crate's text draws a caret diagram over several lines; its last line says it.
            let text = e.to_string();
            let last = text.lines().last().unwrap_or_default();
            problems.push(format!(
                "{at} invalid regex: {}",
                last.trim_start_matches("error: ")
            ));
        }
        let mut field = |value: Option<&String>, parse: &dyn Fn(&str) -> Result<f64, String>| {
            value
                .map_or(Ok(None), |v| parse(v).map(Some))
                .unwrap_or_else(|e| {
                    problems.push(format!("{at} {e}"));
                    None
                })
        };
        let for_secs = field(self.for_.as_ref(), &parse_secs).unwrap_or(0.0);
        let repeat = field(self.repeat.as_ref(), &|t| {
            parse_repeat(t).map(|r| r.unwrap_or(f64::INFINITY))
        });
        if for_secs > MAX_FOR_SECS {
            problems.push(format!("{at} `for` is longer than 7 days"));
        }
        let repeat_secs = match repeat {
            Some(r) if r.is_infinite() => None,
            Some(r) => Some(r),
            None => settings.default_repeat_secs,
        };
        let severity = match self.severity.as_deref().map(parse_severity) {
            None => Severity::Warning,
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                problems.push(format!("{at} {e}"));
                Severity::Warning
            }
        };
        let unit = self.unit.clone().unwrap_or_default();
        if unit.chars().count() > 16 || unit.chars().any(char::is_control) {
            problems.push(format!("{at} unit must be at most 16 printable characters"));
        }
        let mut template = |text: Option<&String>, default: &str, what: &str| {
            Template::parse(text.map_or(default, String::as_str)).unwrap_or_else(|e| {
                problems.push(format!("{at} {what}: {e}"));
                Template::parse(default).expect("the default templates parse")
            })
        };
        let firing = template(self.firing.as_ref(), format::DEFAULT_FIRING, "message");
        let resolved = template(
            self.resolved.as_ref(),
            format::DEFAULT_RESOLVED,
            "resolved message",
        );
        let route = if self.route.is_empty() {
            owner.map(Route::user).unwrap_or_default()
        } else {
            self.route.clone()
        };
        route.check(&format!("{at} route"), &mut problems);
        if route.is_empty() {
            problems.push(format!("{at} route needs at least one user or room"));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Rule {
            name: self.name.clone(),
            proc,
            regex,
            severity,
            for_secs,
            repeat_secs,
            unit,
            route,
            firing,
            resolved,
            owner: owner.map(str::to_owned),
        })
    }
}

impl Rule {
    /// The rule's query, `SELECT <proc> FROM <regex>;`.
    pub fn query(&self) -> String {
        format!("SELECT {} FROM {};", self.proc, self.regex)
    }

    /// The proc without its filter stages: what the condition is judged on. An event for which
    /// this produces a value and the whole proc does not is a failing one; an event for which
    /// neither does (a `window` still filling) is no news. A proc with `absent` is judged on
    /// every event (`id`): any event is the end of an absence.
    pub fn measure_proc(&self) -> String {
        let stages: Vec<&str> = self
            .proc
            .split(" | ")
            .filter(|s| !(s.starts_with('[') && s.ends_with(']')))
            .collect();
        if stages.is_empty() || stages.iter().any(|s| s.starts_with("absent ")) {
            "id".to_owned()
        } else {
            stages.join(" | ")
        }
    }

    /// The condition as people read it, from the proc's last filter stage: `< 10 %` for
    /// `[< 10]` (and for `[10 >]`), empty when the proc has no filter.
    pub fn condition(&self) -> String {
        let Some(stage) = self
            .proc
            .rsplit(" | ")
            .find(|s| s.starts_with('[') && s.ends_with(']'))
        else {
            return String::new();
        };
        let inner = &stage[1..stage.len() - 1];
        let Some((a, b)) = inner.split_once(' ') else {
            return String::new();
        };
        let ops = ["<", "<=", ">", ">=", "==", "/="];
        let (op, number) = if ops.contains(&a) {
            (a, b)
        } else {
            // `[v op]` tests `v op x`: the same as `x op' v` with the comparison mirrored.
            let mirrored = match b {
                "<" => ">",
                "<=" => ">=",
                ">" => "<",
                ">=" => "<=",
                other => other,
            };
            (mirrored, a)
        };
        let op = match op {
            "/=" => "≠",
            "==" => "=",
            "<=" => "≤",
            ">=" => "≥",
            other => other,
        };
        let number = number
            .parse::<f64>()
            .map_or(number.to_owned(), format::value);
        if self.unit.is_empty() {
            format!("{op} {number}")
        } else {
            format!("{op} {number} {}", self.unit)
        }
    }

    /// The rule in the chat syntax, which parses back to the same rule (chat rules are saved
    /// this way).
    pub fn to_chat(&self) -> String {
        let mut s = format!("ALERT {} SEVERITY {}", self.name, self.severity);
        if self.for_secs > 0.0 {
            s.push_str(&format!(" FOR {}s", self.for_secs));
        }
        match self.repeat_secs {
            Some(r) => s.push_str(&format!(" REPEAT {r}s")),
            None => s.push_str(" REPEAT never"),
        }
        if !self.unit.is_empty() {
            s.push_str(&format!(" UNIT {}", quote(&self.unit)));
        }
        let targets: Vec<String> = (self.route.rooms.iter().map(|r| format!("ROOM {r}")))
            .chain(self.route.users.iter().map(|u| format!("USER {u}")))
            .collect();
        if !targets.is_empty() {
            s.push_str(&format!(" ROUTE {}", targets.join(", ")));
        }
        if self.firing.source() != format::DEFAULT_FIRING {
            s.push_str(&format!(" MESSAGE {}", quote(self.firing.source())));
        }
        if self.resolved.source() != format::DEFAULT_RESOLVED {
            s.push_str(&format!(" RESOLVED {}", quote(self.resolved.source())));
        }
        s.push(' ');
        s.push_str(&self.query());
        s
    }
}

/// A double-quoted string with `\"` and `\\` escaped (the chat syntax's strings).
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One `[[alerts]]` table of `hub.toml`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique name, shown in every message: `cpu-high`.
    pub name: String,
    /// `SELECT <proc> FROM <regex>`: the alert fires for a series while the proc passes it.
    pub query: String,
    /// `info`, `warning` (the default) or `critical`.
    #[serde(default)]
    pub severity: Option<String>,
    /// How long the condition must hold before the alert opens, and fail before it resolves
    /// (`5m`; default `0`: at once).
    #[serde(default, rename = "for")]
    pub for_: Option<String>,
    /// Repeat interval while open and not acknowledged (`1h`, or `never`; default:
    /// `[alerting] repeat`).
    #[serde(default)]
    pub repeat: Option<String>,
    /// Unit printed after values (`%`).
    #[serde(default)]
    pub unit: Option<String>,
    /// Bare JIDs of users to message 1:1.
    #[serde(default)]
    pub users: Vec<String>,
    /// Bare JIDs of MUC rooms to message.
    #[serde(default)]
    pub rooms: Vec<String>,
    /// Template of the firing message (docs/alerts.md, "Messages").
    #[serde(default)]
    pub message: Option<String>,
    /// Template of the recovery message.
    #[serde(default)]
    pub resolved: Option<String>,
}

impl RuleConfig {
    pub fn spec(&self) -> RuleSpec {
        RuleSpec {
            name: self.name.clone(),
            query: self.query.clone(),
            severity: self.severity.clone(),
            for_: self.for_.clone(),
            repeat: self.repeat.clone(),
            unit: self.unit.clone(),
            route: Route {
                users: self.users.clone(),
                rooms: self.rooms.clone(),
            },
            firing: self.message.clone(),
            resolved: self.resolved.clone(),
        }
    }
}

/// `[alerting]` of `hub.toml`: how alerts are grouped, damped, limited and kept.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingSection {
    /// How long the first alert of a rule waits for others to share its message (`10s`; `0`:
    /// never grouped).
    pub group_wait: String,
    /// Series named in a grouped message before "and N more".
    pub group_names: usize,
    /// A series changing state more than this many times within `flap_window` is flapping.
    pub flap_changes: usize,
    pub flap_window: String,
    /// Messages per minute to one user or room (a burst of `route_burst` is allowed).
    pub route_per_minute: u32,
    pub route_burst: u32,
    /// Default repeat interval of rules (`4h`, or `never`).
    pub repeat: String,
    /// Entries kept for `history`.
    pub history: usize,
    /// After a restart, open alerts are not resolved for this long (pipelines refill).
    pub restore_grace: String,
    /// Longest silence.
    pub max_silence: String,
    /// Rules one user may define in chat.
    pub max_rules_per_user: usize,
    /// Users told about collector alerts (dead, stopping, thresholds, reboots).
    pub collector_users: Vec<String>,
    /// Rooms told about collector alerts.
    pub collector_rooms: Vec<String>,
}

impl Default for AlertingSection {
    fn default() -> Self {
        AlertingSection {
            group_wait: "10s".into(),
            group_names: 3,
            flap_changes: 6,
            flap_window: "10m".into(),
            route_per_minute: 20,
            route_burst: 5,
            repeat: "4h".into(),
            history: 200,
            restore_grace: "5m".into(),
            max_silence: "30d".into(),
            max_rules_per_user: 20,
            collector_users: Vec::new(),
            collector_rooms: Vec::new(),
        }
    }
}

/// Validated [`AlertingSection`].
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub group_wait_secs: f64,
    pub group_names: usize,
    pub flap_changes: usize,
    pub flap_window_secs: f64,
    pub route_per_minute: u32,
    pub route_burst: u32,
    pub default_repeat_secs: Option<f64>,
    pub history: usize,
    pub restore_grace_secs: f64,
    pub max_silence_secs: f64,
    pub max_rules_per_user: usize,
    pub collector_route: Route,
}

impl Default for Settings {
    fn default() -> Self {
        AlertingSection::default()
            .validate()
            .expect("the default [alerting] section is valid")
    }
}

impl AlertingSection {
    /// Validates; `Err` holds every problem.
    pub fn validate(&self) -> Result<Settings, Vec<String>> {
        let mut p = Vec::new();
        let mut secs = |key: &str, text: &str, max: f64| match parse_secs(text) {
            Ok(s) if s <= max => s,
            Ok(_) => {
                p.push(format!(
                    "[alerting] {key} is longer than {}",
                    format::duration(max)
                ));
                0.0
            }
            Err(e) => {
                p.push(format!("[alerting] {key}: {e}"));
                0.0
            }
        };
        let group_wait_secs = secs("group_wait", &self.group_wait, 600.0);
        let flap_window_secs = secs("flap_window", &self.flap_window, 86_400.0);
        let restore_grace_secs = secs("restore_grace", &self.restore_grace, 86_400.0);
        let max_silence_secs = secs("max_silence", &self.max_silence, 366.0 * 86_400.0);
        let default_repeat_secs = parse_repeat(&self.repeat).unwrap_or_else(|e| {
            p.push(format!("[alerting] repeat: {e}"));
            None
        });
        if !(1..=50).contains(&self.group_names) {
            p.push("[alerting] group_names must be 1-50".into());
        }
        if self.flap_changes < 2 {
            p.push("[alerting] flap_changes must be at least 2".into());
        }
        if !(1..=600).contains(&self.route_per_minute) {
            p.push("[alerting] route_per_minute must be 1-600".into());
        }
        if !(1..=100).contains(&self.route_burst) {
            p.push("[alerting] route_burst must be 1-100".into());
        }
        if !(1..=100_000).contains(&self.history) {
            p.push("[alerting] history must be 1-100000".into());
        }
        if max_silence_secs == 0.0 {
            p.push("[alerting] max_silence must be longer than zero".into());
        }
        if self.max_rules_per_user > 1000 {
            p.push("[alerting] max_rules_per_user must be 0-1000".into());
        }
        let collector_route = Route {
            users: self.collector_users.clone(),
            rooms: self.collector_rooms.clone(),
        };
        collector_route.check("[alerting] collector", &mut p);
        if !p.is_empty() {
            return Err(p);
        }
        Ok(Settings {
            group_wait_secs,
            group_names: self.group_names,
            flap_changes: self.flap_changes,
            flap_window_secs,
            route_per_minute: self.route_per_minute,
            route_burst: self.route_burst,
            default_repeat_secs,
            history: self.history,
            restore_grace_secs,
            max_silence_secs,
            max_rules_per_user: self.max_rules_per_user,
            collector_route,
        })
    }
}

/// Validates every `[[alerts]]` table; `Err` holds every problem of every rule, including
/// duplicate names.
pub fn validate_rules(
    configs: &[RuleConfig],
    settings: &Settings,
    limits: &Limits,
) -> Result<Vec<Rule>, Vec<String>> {
    let mut rules = Vec::new();
    let mut problems = Vec::new();
    for (i, c) in configs.iter().enumerate() {
        if configs[..i].iter().any(|o| o.name == c.name) {
            problems.push(format!("alert `{}`: the name is used twice", c.name));
        }
        match c.spec().validate(None, settings, limits) {
            Ok(rule) => rules.push(rule),
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str) -> RuleConfig {
        RuleConfig {
            name: name.into(),
            query: r"SELECT [< 10] FROM ^web.*\.cpu\.cpu\.idle$".into(),
            rooms: vec!["ops@conference.example.org".into()],
            ..RuleConfig::default()
        }
    }

    fn rule(c: RuleConfig) -> Rule {
        validate_rules(&[c], &Settings::default(), &Limits::default())
            .unwrap()
            .remove(0)
    }

    #[test]
    fn a_minimal_rule_takes_the_defaults() {
        let r = rule(config("cpu-high"));
        assert_eq!(r.proc, "[< 10]");
        assert_eq!(r.regex, r"^web.*\.cpu\.cpu\.idle$");
        assert_eq!(r.severity, Severity::Warning);
        assert_eq!(r.for_secs, 0.0);
        assert_eq!(r.repeat_secs, Some(4.0 * 3600.0));
        assert_eq!(r.owner, None);
        assert_eq!(r.query(), r"SELECT [< 10] FROM ^web.*\.cpu\.cpu\.idle$;");
    }

    #[test]
    fn toml_shape_with_deny_unknown_fields() {
        // The shape the hub's TOML loader hands to serde (`for` is a keyword in Rust only).
        let c: RuleConfig = serde_json::from_value(serde_json::json!({
            "name": "cpu-high",
            "query": "SELECT [< 10] FROM ^web",
            "severity": "crit",
            "for": "5m",
            "repeat": "never",
            "unit": "%",
            "users": ["alice@example.org"],
            "message": "{host} {value}",
        }))
        .unwrap();
        let r = rule(c);
        assert_eq!(r.severity, Severity::Critical);
        assert_eq!(r.for_secs, 300.0);
        assert_eq!(r.repeat_secs, None);
        assert_eq!(r.route, Route::user("alice@example.org"));
        assert_eq!(r.firing.source(), "{host} {value}");
        let bad =
            serde_json::json!({"name": "a", "query": "SELECT id FROM a", "rooms": [], "colour": 1});
        let e = serde_json::from_value::<RuleConfig>(bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `colour`"), "{e}");
    }

    #[test]
    fn hub_toml_sections_load_through_the_config_loader() {
        use jabmon_shared::config::{Problems, RawConfig};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.toml");
        std::fs::write(
            &path,
            r#"
[alerting]
group_wait = "5s"
collector_rooms = ["ops@conference.example.org"]

[[alerts]]
name = "cpu-high"
query = 'SELECT [< 10] FROM ^web.*\.cpu\.cpu\.idle$'
for = "5m"
unit = "%"
rooms = ["ops@conference.example.org"]

[[alerts]]
name = "disk"
query = "SELECT [> 90] FROM df-.*percent.used$"
severity = "critical"
users = ["alice@example.org"]
"#,
        )
        .unwrap();
        let mut raw = RawConfig::load_with_env(Some(&path), Some(Default::default())).unwrap();
        let mut p = Problems::default();
        let section: AlertingSection = raw.section("alerting", &mut p);
        let configs: Vec<RuleConfig> = raw.section("alerts", &mut p);
        assert!(p.is_empty(), "{p}");
        let settings = section.validate().unwrap();
        assert_eq!(settings.group_wait_secs, 5.0);
        let rules = validate_rules(&configs, &settings, &Limits::default()).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].for_secs, 300.0);
        assert_eq!(rules[0].regex, r"^web.*\.cpu\.cpu\.idle$");
        assert_eq!(rules[1].severity, Severity::Critical);
        // An unknown key in an [[alerts]] table is a problem.
        std::fs::write(
            &path,
            "[[alerts]]\nname = \"x\"\nquery = \"SELECT id FROM a\"\ncolour = 1\n",
        )
        .unwrap();
        let mut raw = RawConfig::load_with_env(Some(&path), Some(Default::default())).unwrap();
        let _: Vec<RuleConfig> = raw.section("alerts", &mut p);
        assert!(p.to_string().contains("colour"), "{p}");
    }

    #[test]
    fn every_problem_of_every_rule_is_reported() {
        let bad = RuleConfig {
            name: "Bad Name".into(),
            query: "SELECT mean FRM x".into(),
            severity: Some("loud".into()),
            for_: Some("soon".into()),
            repeat: Some("10s".into()),
            users: vec!["not-a-jid".into()],
            rooms: vec![],
            message: Some("{nope}".into()),
            ..RuleConfig::default()
        };
        let regex = RuleConfig {
            query: "SELECT id FROM web(".into(),
            ..config("re")
        };
        let dup = config("re");
        let no_route = RuleConfig {
            rooms: vec![],
            ..config("lonely")
        };
        let p = validate_rules(
            &[bad, regex, dup, no_route],
            &Settings::default(),
            &Limits::default(),
        )
        .unwrap_err();
        let text = p.join("\n");
        for want in [
            "alert `Bad Name`: `Bad Name` is not a rule name",
            "alert `Bad Name`: query: expected | or FROM at column 13, found \"FRM\"",
            "alert `Bad Name`: `loud` is not a severity",
            "alert `Bad Name`: `soon` is not a duration",
            "alert `Bad Name`: repeat `10s` is shorter than one minute",
            "alert `Bad Name`: message: unknown placeholder {nope}",
            "alert `Bad Name`: route users: `not-a-jid` is not a bare JID",
            "alert `re`: invalid regex",
            "alert `re`: the name is used twice",
            "alert `lonely`: route needs at least one user or room",
        ] {
            assert!(text.contains(want), "`{want}` missing in:\n{text}");
        }
        assert_eq!(p.len(), 10, "{text}");
    }

    #[test]
    fn condition_reads_the_last_filter() {
        let with = |query: &str, unit: &str| {
            rule(RuleConfig {
                query: query.into(),
                unit: Some(unit.into()),
                ..config("c")
            })
            .condition()
        };
        assert_eq!(with("SELECT [< 10] FROM a", "%"), "< 10 %");
        assert_eq!(with("SELECT [10 >] FROM a", "%"), "< 10 %");
        assert_eq!(with("SELECT mean | [>= 0.5] FROM a", ""), "≥ 0.5");
        assert_eq!(with("SELECT [> 1] | (* 2) | [/= 3] FROM a", ""), "≠ 3");
        assert_eq!(with("SELECT mean FROM a", "%"), "");
    }

    #[test]
    fn measure_is_the_proc_without_filters() {
        let with = |query: &str| {
            rule(RuleConfig {
                query: query.into(),
                ..config("m")
            })
            .measure_proc()
        };
        assert_eq!(with("SELECT [< 10] FROM a"), "id");
        assert_eq!(
            with("SELECT window 5 (mean) | [< 10] FROM a"),
            "window 5 (mean)"
        );
        assert_eq!(with("SELECT rate | [> 1] | (* 8) FROM a"), "rate | (* 8)");
        assert_eq!(with("SELECT absent 5m FROM a"), "id");
        assert_eq!(with("SELECT mean FROM a"), "mean");
    }

    #[test]
    fn chat_form_round_trips_through_the_spec() {
        let r = rule(RuleConfig {
            severity: Some("critical".into()),
            for_: Some("5m".into()),
            unit: Some("%".into()),
            users: vec!["a@b".into()],
            message: Some("say \"{host}\"".into()),
            ..config("cpu-high")
        });
        assert_eq!(
            r.to_chat(),
            r#"ALERT cpu-high SEVERITY critical FOR 300s REPEAT 14400s UNIT "%" ROUTE ROOM ops@conference.example.org, USER a@b MESSAGE "say \"{host}\"" SELECT [< 10] FROM ^web.*\.cpu\.cpu\.idle$;"#
        );
    }

    #[test]
    fn alerting_section_defaults_and_problems() {
        let s = Settings::default();
        assert_eq!(s.group_wait_secs, 10.0);
        assert_eq!(s.flap_window_secs, 600.0);
        assert_eq!(s.default_repeat_secs, Some(14_400.0));
        let bad = AlertingSection {
            group_wait: "1h".into(),
            flap_changes: 1,
            route_per_minute: 0,
            repeat: "often".into(),
            max_silence: "0".into(),
            collector_rooms: vec!["room".into()],
            ..AlertingSection::default()
        };
        let p = bad.validate().unwrap_err();
        assert_eq!(p.len(), 6, "{p:?}");
        assert!(p[0].contains("group_wait is longer than 10 min"), "{p:?}");
        let e = serde_json::from_value::<AlertingSection>(serde_json::json!({"groupwait": "1s"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `groupwait`"), "{e}");
    }

    #[test]
    fn durations_and_severities() {
        assert_eq!(parse_secs("0"), Ok(0.0));
        assert_eq!(parse_secs("0s"), Ok(0.0));
        assert_eq!(parse_secs("1h30m"), Ok(5400.0));
        assert!(parse_secs("5").is_err());
        assert_eq!(parse_repeat("never"), Ok(None));
        assert_eq!(parse_repeat("2h"), Ok(Some(7200.0)));
        assert_eq!(parse_severity("CRIT"), Ok(Severity::Critical));
        assert!(check_name("cpu-high_2").is_ok());
        assert!(check_name("-x").is_err());
        assert!(check_name(&"a".repeat(65)).is_err());
    }
}
