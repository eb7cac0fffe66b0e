//! The collector's configuration: the common `[xmpp]`, `[log]`, `[access]` sections plus
//! `[collector]`, `[thresholds]` and `[[commands.shell]]` (docs/protocol.md §2). `load` reports every
//! problem at once.

use std::path::Path;
use std::time::Duration;

use jabmon_shared::acl::Acl;
use jabmon_shared::config::{
    self as shared, parse_duration, AccessSection, LogConfig, Problems, RawConfig, XmppConfig,
    XmppSection,
};
use serde::Deserialize;
use xmpp_parsers::jid::BareJid;

/// `[collector]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CollectorSection {
    /// Host label in metric names; default: the short host name, dots → `_`.
    pub host: Option<String>,
    /// Hub JID to subscribe to at start-up.
    pub hub: Option<String>,
    /// How often stats are sampled (default `1s`).
    pub sample_interval: Option<String>,
    /// How often a stats item is published over PEP (default `10s`).
    pub publish_interval: Option<String>,
    /// argv run by the `reboot` command (default `["systemctl", "reboot"]`).
    pub reboot_command: Option<Vec<String>>,
}

/// `[thresholds]`: warn/critical levels with their clear levels (hysteresis).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    pub load_busy: f64,
    pub load_busy_clear: f64,
    pub load_critical: f64,
    pub cpu_warn: f64,
    pub cpu_warn_clear: f64,
    pub memory_warn: f64,
    pub memory_warn_clear: f64,
    pub disk_warn: f64,
    pub disk_warn_clear: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            load_busy: 1.0,
            load_busy_clear: 0.8,
            load_critical: 2.0,
            cpu_warn: 85.0,
            cpu_warn_clear: 75.0,
            memory_warn: 90.0,
            memory_warn_clear: 80.0,
            disk_warn: 90.0,
            disk_warn_clear: 80.0,
        }
    }
}

/// One threshold: its `[thresholds]` key (also its field in the `thresholds` command form),
/// the label shown for it, and where it lives in [`Thresholds`].
#[derive(Clone, Copy)]
pub struct ThresholdField {
    pub name: &'static str,
    pub label: &'static str,
    /// A percentage, so at most 100.
    pub percent: bool,
    get: fn(&Thresholds) -> f64,
    set: fn(&mut Thresholds, f64),
}

impl ThresholdField {
    pub fn get(&self, t: &Thresholds) -> f64 {
        (self.get)(t)
    }

    pub fn set(&self, t: &mut Thresholds, value: f64) {
        (self.set)(t, value)
    }
}

impl std::fmt::Debug for ThresholdField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Every threshold, in form order. A level `X` is cleared below `X_clear` (hysteresis).
pub const THRESHOLD_FIELDS: [ThresholdField; 9] = [
    ThresholdField {
        name: "load_busy",
        label: "Per-core load: busy (away) at",
        percent: false,
        get: |t| t.load_busy,
        set: |t, v| t.load_busy = v,
    },
    ThresholdField {
        name: "load_busy_clear",
        label: "Per-core load: busy clears below",
        percent: false,
        get: |t| t.load_busy_clear,
        set: |t, v| t.load_busy_clear = v,
    },
    ThresholdField {
        name: "load_critical",
        label: "Per-core load: critical (dnd) at",
        percent: false,
        get: |t| t.load_critical,
        set: |t, v| t.load_critical = v,
    },
    ThresholdField {
        name: "cpu_warn",
        label: "CPU busy % warning at",
        percent: true,
        get: |t| t.cpu_warn,
        set: |t, v| t.cpu_warn = v,
    },
    ThresholdField {
        name: "cpu_warn_clear",
        label: "CPU busy % warning clears below",
        percent: true,
        get: |t| t.cpu_warn_clear,
        set: |t, v| t.cpu_warn_clear = v,
    },
    ThresholdField {
        name: "memory_warn",
        label: "Memory used % warning at",
        percent: true,
        get: |t| t.memory_warn,
        set: |t, v| t.memory_warn = v,
    },
    ThresholdField {
        name: "memory_warn_clear",
        label: "Memory used % warning clears below",
        percent: true,
        get: |t| t.memory_warn_clear,
        set: |t, v| t.memory_warn_clear = v,
    },
    ThresholdField {
        name: "disk_warn",
        label: "Disk used % warning at (per mount)",
        percent: true,
        get: |t| t.disk_warn,
        set: |t, v| t.disk_warn = v,
    },
    ThresholdField {
        name: "disk_warn_clear",
        label: "Disk used % warning clears below",
        percent: true,
        get: |t| t.disk_warn_clear,
        set: |t, v| t.disk_warn_clear = v,
    },
];

impl Thresholds {
    /// Every rule a threshold set must satisfy, as `(field, problem)` pairs, the fields named by
    /// their `[thresholds]` keys (for configuration files).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        self.problems_naming(|f| f.name.to_string())
    }

    /// [`Thresholds::problems`] with each field named by `name` (the command form names them
    /// by label, as people see them there).
    pub fn problems_naming(
        &self,
        name: impl Fn(&ThresholdField) -> String,
    ) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for f in &THRESHOLD_FIELDS {
            let v = f.get(self);
            if !v.is_finite() || v < 0.0 {
                out.push((
                    f.name,
                    format!("{} must be a number ≥ 0 (got {v})", name(f)),
                ));
            }
        }
        for f in THRESHOLD_FIELDS.iter().filter(|f| f.percent) {
            let v = f.get(self);
            if v > 100.0 {
                out.push((
                    f.name,
                    format!("{} is a percentage and must be ≤ 100 (got {v})", name(f)),
                ));
            }
        }
        for clear in &THRESHOLD_FIELDS {
            let Some(level) = clear.name.strip_suffix("_clear") else {
                continue;
            };
            let Some(warn) = THRESHOLD_FIELDS.iter().find(|f| f.name == level) else {
                continue;
            };
            let (c, w) = (clear.get(self), warn.get(self));
            if c >= w {
                out.push((
                    clear.name,
                    format!("{} ({c}) must be below {} ({w})", name(clear), name(warn)),
                ));
            }
        }
        let field = |n: &str| THRESHOLD_FIELDS.iter().find(|f| f.name == n);
        if let (Some(critical), Some(busy)) = (field("load_critical"), field("load_busy")) {
            if self.load_critical <= self.load_busy {
                out.push((
                    critical.name,
                    format!(
                        "{} ({}) must be above {} ({})",
                        name(critical),
                        self.load_critical,
                        name(busy),
                        self.load_busy
                    ),
                ));
            }
        }
        out
    }
}

/// One `[[commands.shell]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShellCommandSection {
    pub name: String,
    pub argv: Vec<String>,
    #[serde(default = "default_shell_timeout")]
    pub timeout: String,
}

fn default_shell_timeout() -> String {
    "10s".into()
}

/// `[commands]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CommandsSection {
    #[serde(default)]
    pub shell: Vec<ShellCommandSection>,
}

/// A validated whitelisted command.
#[derive(Debug, Clone, PartialEq)]
pub struct ShellCommand {
    pub name: String,
    pub argv: Vec<String>,
    pub timeout: Duration,
}

/// The whole, validated collector configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub xmpp: XmppConfig,
    pub log: LogConfig,
    /// Who may subscribe (the hub included).
    pub subscribers: Acl,
    pub admins: Acl,
    pub host: String,
    pub hub: Option<BareJid>,
    pub sample_interval: Duration,
    pub publish_interval: Duration,
    pub reboot_command: Vec<String>,
    /// The thresholds at start; the `thresholds` command changes the live set, which the bot's
    /// `Monitor` holds.
    pub thresholds: Thresholds,
    pub shell: Vec<ShellCommand>,
}

impl Config {
    /// Loads and validates; `Err` lists every problem.
    pub fn load(path: Option<&Path>) -> Result<Self, Problems> {
        Self::from_raw(RawConfig::load(path)?)
    }

    /// Validates an already merged configuration tree.
    pub fn from_raw(mut raw: RawConfig) -> Result<Self, Problems> {
        let mut p = Problems::default();
        let xmpp: XmppSection = raw.section("xmpp", &mut p);
        let log: LogConfig = raw.section("log", &mut p);
        let access: AccessSection = raw.section("access", &mut p);
        let collector: CollectorSection = raw.section("collector", &mut p);
        let thresholds: Thresholds = raw.section("thresholds", &mut p);
        let commands: CommandsSection = raw.section("commands", &mut p);
        raw.finish(&mut p);

        let xmpp = xmpp.validate(&mut p);
        log.validate(&mut p);
        if !access.collectors.is_empty() || !access.users.is_empty() {
            p.push("[access] collectors and users are hub settings; a collector uses subscribers and admins");
        }
        let mut subscribers = shared::acl("access", "subscribers", &access.subscribers, &mut p);
        let admins = shared::acl("access", "admins", &access.admins, &mut p);
        let c = CollectorSettings::validate(&collector, &mut p);
        if let Some(hub) = &c.hub {
            subscribers.allow(hub.clone());
        }
        for (_, problem) in thresholds.problems() {
            p.push(format!("[thresholds] {problem}"));
        }
        let shell = shell_commands(&commands.shell, &mut p);
        let Some(xmpp) = xmpp else { return Err(p) };
        p.into_result(Config {
            xmpp,
            log,
            subscribers,
            admins,
            host: c.host,
            hub: c.hub,
            sample_interval: c.sample_interval,
            publish_interval: c.publish_interval,
            reboot_command: c.reboot_command,
            thresholds,
            shell,
        })
    }
}

/// `[collector]`, validated.
struct CollectorSettings {
    host: String,
    hub: Option<BareJid>,
    sample_interval: Duration,
    publish_interval: Duration,
    reboot_command: Vec<String>,
}

impl CollectorSettings {
    fn validate(c: &CollectorSection, p: &mut Problems) -> Self {
        let host = match &c.host {
            Some(h) if jabmon_shared::metric::is_valid(h) && !h.contains('.') => h.clone(),
            Some(h) => {
                p.push(format!(
                    "[collector] host `{h}` must be one lower-case name of [a-z0-9_-]"
                ));
                String::new()
            }
            None => jabmon_shared::metric::host_label(&shared::hostname()),
        };
        let hub = c.hub.as_deref().and_then(|h| match BareJid::new(h) {
            Ok(j) if j.node().is_some() => Some(j),
            _ => {
                p.push(format!(
                    "[collector] hub `{h}` is not a bare JID (user@domain)"
                ));
                None
            }
        });
        let sample_interval = interval(p, "sample_interval", &c.sample_interval, 1);
        let publish_interval = interval(p, "publish_interval", &c.publish_interval, 10);
        if sample_interval < Duration::from_millis(100) {
            p.push("[collector] sample_interval must be at least 100ms");
        }
        if publish_interval < sample_interval {
            p.push("[collector] publish_interval must not be shorter than sample_interval");
        }
        let reboot_command = c
            .reboot_command
            .clone()
            .unwrap_or_else(|| vec!["systemctl".into(), "reboot".into()]);
        if reboot_command.is_empty() || reboot_command[0].is_empty() {
            p.push("[collector] reboot_command must name a program");
        }
        CollectorSettings {
            host,
            hub,
            sample_interval,
            publish_interval,
            reboot_command,
        }
    }
}

/// `[collector] key`, a duration; `default_secs` when unset or invalid.
fn interval(p: &mut Problems, key: &str, v: &Option<String>, default_secs: u64) -> Duration {
    match v {
        None => Duration::from_secs(default_secs),
        Some(text) => parse_duration(text).unwrap_or_else(|e| {
            p.push(format!("[collector] {key}: {e}"));
            Duration::from_secs(default_secs)
        }),
    }
}

/// `[[commands.shell]]`, validated.
fn shell_commands(sections: &[ShellCommandSection], p: &mut Problems) -> Vec<ShellCommand> {
    let mut shell = Vec::new();
    for (i, c) in sections.iter().enumerate() {
        if c.name.is_empty() || c.name.len() > 64 {
            p.push(format!(
                "[[commands.shell]] #{}: name must be 1-64 characters",
                i + 1
            ));
        }
        if shell.iter().any(|s: &ShellCommand| s.name == c.name) {
            p.push(format!(
                "[[commands.shell]] name `{}` is used twice",
                c.name
            ));
        }
        if c.argv.is_empty() || c.argv[0].is_empty() {
            p.push(format!(
                "[[commands.shell]] `{}`: argv must name a program",
                c.name
            ));
        }
        let timeout = parse_duration(&c.timeout).unwrap_or_else(|e| {
            p.push(format!("[[commands.shell]] `{}` timeout: {e}", c.name));
            Duration::from_secs(10)
        });
        shell.push(ShellCommand {
            name: c.name.clone(),
            argv: c.argv.clone(),
            timeout,
        });
    }
    shell
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load_str(toml: &str, env: &[(&str, &str)]) -> Result<Config, Problems> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml).unwrap();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_raw(RawConfig::load_with_env(Some(&path), Some(env))?)
    }

    #[test]
    fn example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/collector.example.toml");
        // The example points at /etc/jabmon/collector.pass; give it a readable file instead.
        let dir = tempfile::tempdir().unwrap();
        let pass = dir.path().join("collector.pass");
        std::fs::write(&pass, "secret\n").unwrap();
        let env = HashMap::from([(
            "JABMON_XMPP__PASSWORD_FILE".to_string(),
            pass.to_string_lossy().into_owned(),
        )]);
        let raw = RawConfig::load_with_env(Some(&path), Some(env)).unwrap();
        let cfg = Config::from_raw(raw).unwrap_or_else(|p| panic!("{p}"));
        assert_eq!(cfg.host, "web1");
        assert_eq!(cfg.publish_interval, Duration::from_secs(10));
        assert_eq!(cfg.shell[0].name, "uptime");
        assert_eq!(cfg.xmpp.password.expose(), "secret");
        assert!(cfg
            .subscribers
            .allows(&BareJid::new("hub@example.org").unwrap()));
    }

    #[test]
    fn env_overrides_file() {
        let cfg = load_str(
            "[xmpp]\njid = \"a@b\"\npassword = \"x\"\n",
            &[
                ("JABMON_XMPP__PASSWORD", "from-env"),
                ("JABMON_COLLECTOR__HOST", "envhost"),
            ],
        )
        .unwrap();
        assert_eq!(cfg.xmpp.password.expose(), "from-env");
        assert_eq!(cfg.host, "envhost");
    }

    #[test]
    fn every_problem_listed() {
        let err = load_str(
            "[xmpp]\njid = \"a@b\"\npasword = \"typo\"\ntls = \"maybe\"\n[collector]\nsample_interval = \"fast\"\nbogus = 1\n[thresholds]\ncpu_warn = 50.0\ncpu_warn_clear = 60.0\n[nonsense]\nx = 1\n",
            &[],
        )
        .unwrap_err();
        let text = err.to_string();
        for want in [
            "pasword",
            "tls",
            "bogus",
            "sample_interval",
            "cpu_warn_clear",
            "[nonsense]",
            "exactly one of password",
        ] {
            assert!(text.contains(want), "`{want}` not in:\n{text}");
        }
        assert!(err.0.len() >= 7, "{text}");
    }

    #[test]
    fn threshold_table_names_the_config_keys_and_reaches_each_field() {
        let values = [1.5, 1.25, 3.5, 81.0, 71.0, 82.0, 72.0, 83.0, 73.0];
        let mut toml = "[xmpp]\njid = \"a@b\"\npassword = \"x\"\n[thresholds]\n".to_string();
        for (f, v) in THRESHOLD_FIELDS.iter().zip(values) {
            toml.push_str(&format!("{} = {v:?}\n", f.name));
        }
        let cfg = load_str(&toml, &[]).unwrap_or_else(|p| panic!("{p}"));
        for (f, v) in THRESHOLD_FIELDS.iter().zip(values) {
            assert_eq!(f.get(&cfg.thresholds), v, "{}", f.name);
            // `set` writes that field and no other.
            let mut t = cfg.thresholds;
            f.set(&mut t, 7.0);
            for g in &THRESHOLD_FIELDS {
                let want = if g.name == f.name {
                    7.0
                } else {
                    g.get(&cfg.thresholds)
                };
                assert_eq!(g.get(&t), want, "setting {} changed {}", f.name, g.name);
            }
        }
    }

    #[test]
    fn every_clear_level_has_its_level() {
        for f in THRESHOLD_FIELDS
            .iter()
            .filter(|f| f.name.ends_with("_clear"))
        {
            let level = f.name.trim_end_matches("_clear");
            assert!(
                THRESHOLD_FIELDS.iter().any(|g| g.name == level),
                "{}",
                f.name
            );
        }
        let mut t = Thresholds::default();
        t.cpu_warn_clear = t.cpu_warn;
        t.memory_warn = 101.0;
        let fields: Vec<_> = t.problems().into_iter().map(|p| p.0).collect();
        assert_eq!(fields, vec!["memory_warn", "cpu_warn_clear"]);
    }

    #[test]
    fn thresholds_rules() {
        let mut t = Thresholds::default();
        assert!(t.problems().is_empty());
        t.disk_warn_clear = 95.0;
        t.load_critical = 0.5;
        let fields: Vec<_> = t.problems().into_iter().map(|p| p.0).collect();
        assert_eq!(fields, vec!["disk_warn_clear", "load_critical"]);
    }
}
