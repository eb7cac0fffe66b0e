//! Configuration shared by every jabmon binary: loading (TOML through the `config` crate plus
//! `JABMON_SECTION__KEY` environment overrides), the common `[xmpp]`, `[log]` and `[access]`
//! sections, and validation that reports *every* problem at once.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::acl::Acl;

/// Exit status for an invalid configuration (`EX_USAGE` from sysexits.h; docs/protocol.md §1).
pub const EXIT_CONFIG: i32 = 64;

/// Every problem found in a configuration, one line each.
#[derive(Debug, Default, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<String>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "config: {p}")?;
        }
        Ok(())
    }
}

impl Problems {
    /// Records one problem.
    pub fn push(&mut self, problem: impl Into<String>) {
        self.0.push(problem.into());
    }
    /// True when nothing was found wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// `Ok(value)` when no problem was recorded, otherwise all of them.
    pub fn into_result<T>(self, value: T) -> Result<T, Problems> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

/// The raw, merged configuration tree (file + environment), split into top-level sections.
pub struct RawConfig {
    sections: BTreeMap<String, config::Value>,
}

impl RawConfig {
    /// Reads `path` (TOML) and the `JABMON_<SECTION>__<KEY>` environment variables.
    pub fn load(path: Option<&Path>) -> Result<Self, Problems> {
        Self::load_with_env(path, None)
    }

    /// As [`RawConfig::load`], with an explicit environment (tests) instead of the process's.
    pub fn load_with_env(
        path: Option<&Path>,
        env: Option<std::collections::HashMap<String, String>>,
    ) -> Result<Self, Problems> {
        let mut builder = config::Config::builder();
        if let Some(path) = path {
            if !path.exists() {
                return Err(Problems(vec![format!(
                    "config file {} does not exist",
                    path.display()
                )]));
            }
            builder = builder.add_source(
                config::File::from(path.to_path_buf()).format(config::FileFormat::Toml),
            );
        }
        let mut environment = config::Environment::with_prefix("JABMON")
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .list_separator(",");
        for key in [
            "access.subscribers",
            "access.admins",
            "access.collectors",
            "access.users",
            "collector.reboot_command",
        ] {
            environment = environment.with_list_parse_key(key);
        }
        if let Some(env) = env {
            environment = environment.source(Some(env.into_iter().collect()));
        }
        let built = builder
            .add_source(environment)
            .build()
            .map_err(|e| Problems(vec![e.to_string()]))?;
        let sections: BTreeMap<String, config::Value> = built.try_deserialize().map_err(|e| {
            Problems(vec![format!(
                "the top level must be a table of sections: {e}"
            )])
        })?;
        Ok(Self { sections })
    }

    /// Deserialises section `name` into `T` (its `Default` when the section is absent), removing
    /// offending keys one at a time so that every bad key of the section is reported.
    pub fn section<T: DeserializeOwned + Default>(
        &mut self,
        name: &str,
        problems: &mut Problems,
    ) -> T {
        let Some(value) = self.sections.remove(name) else {
            return T::default();
        };
        let mut table = match value.clone().into_table() {
            Ok(t) => t,
            Err(_) => {
                // Arrays of tables (e.g. [[commands.shell]]) and scalars go through as they are.
                return match value.try_deserialize() {
                    Ok(v) => v,
                    Err(e) => {
                        problems.push(format!("[{name}]: {e}"));
                        T::default()
                    }
                };
            }
        };
        for _ in 0..64 {
            match config::Value::from(table.clone()).try_deserialize::<T>() {
                Ok(v) => return v,
                Err(e) => {
                    let text = e.to_string();
                    let offending = offending_key(&e, &text, &table);
                    problems.push(format!(
                        "[{name}] {}",
                        describe(&text, offending.as_deref())
                    ));
                    match offending {
                        Some(key) => {
                            table.remove(&key);
                        }
                        None => return T::default(),
                    }
                }
            }
        }
        T::default()
    }

    /// Reports every section nobody asked for.
    pub fn finish(self, problems: &mut Problems) {
        for name in self.sections.keys() {
            problems.push(format!("unknown section [{name}]"));
        }
    }
}

fn describe(text: &str, key: Option<&str>) -> String {
    match key {
        Some(k) if !text.contains(k) => format!("{k}: {text}"),
        _ => text.to_string(),
    }
}

fn offending_key(
    err: &config::ConfigError,
    text: &str,
    table: &config::Map<String, config::Value>,
) -> Option<String> {
    if let Some(rest) = text.strip_prefix("unknown field `") {
        return rest.split('`').next().map(str::to_string);
    }
    let key = match err {
        config::ConfigError::Type { key: Some(k), .. } => Some(k.clone()),
        config::ConfigError::At { key: Some(k), .. } => Some(k.clone()),
        _ => None,
    }
    .or_else(|| {
        // "... for key `xmpp.tls`" style messages.
        text.rsplit("for key `")
            .next()
            .and_then(|r| r.split('`').next())
            .map(str::to_string)
    })?;
    let first = key.split(['.', '[']).next().unwrap_or(&key).to_string();
    table.contains_key(&first).then_some(first)
}

/// Parses a duration with a unit: `"500ms"`, `"10s"`, `"5m"`, `"1h"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration with a unit such as \"10s\": {e}"))?;
    if d.is_zero() {
        return Err(format!("`{text}` must be longer than zero"));
    }
    Ok(d)
}

/// How the connection to the server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// STARTTLS on the c2s port (the default).
    #[default]
    Required,
    /// XEP-0368 direct TLS.
    Direct,
    /// No TLS at all: only to a loopback server, and only when asked for.
    None,
}

/// `[xmpp]`: the bot's account and how to reach its server.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct XmppSection {
    /// Bare JID of the bot's account.
    pub jid: Option<String>,
    /// Resource to bind; default: the host name.
    pub resource: Option<String>,
    /// Password, inline.
    pub password: Option<String>,
    /// File whose first line is the password.
    pub password_file: Option<PathBuf>,
    /// Name of an environment variable holding the password.
    pub password_env: Option<String>,
    /// `host:port` of the server; default: the JID's domain via SRV, port 5222.
    pub server: Option<String>,
    /// `required` (STARTTLS), `direct` or `none`.
    #[serde(default)]
    pub tls: TlsMode,
    /// Extra trust anchor (PEM) in addition to the system roots.
    pub ca_file: Option<PathBuf>,
    /// Hide the operating system in XEP-0092 software version answers.
    #[serde(default)]
    pub hide_os: bool,
}

/// A password that never prints itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret itself; call only where it is handed to the server.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAddr {
    /// Look up the JID's domain (SRV, then A/AAAA).
    Dns,
    /// An explicit host and port.
    Explicit { host: String, port: u16 },
}

/// Validated `[xmpp]` settings.
#[derive(Debug, Clone)]
pub struct XmppConfig {
    pub jid: xmpp_parsers::jid::BareJid,
    pub resource: String,
    pub password: Secret,
    pub server: ServerAddr,
    pub tls: TlsMode,
    pub ca_file: Option<PathBuf>,
    pub hide_os: bool,
}

impl XmppConfig {
    /// The full JID the bot asks to bind.
    pub fn full_jid(&self) -> xmpp_parsers::jid::FullJid {
        let resource = xmpp_parsers::jid::ResourcePart::new(&self.resource)
            .expect("resource validated at load time")
            .into_owned();
        self.jid.with_resource(&resource)
    }
}

/// The machine's host name, used for default resources and host labels.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

impl XmppSection {
    /// Validates the section, recording every problem.
    pub fn validate(self, problems: &mut Problems) -> Option<XmppConfig> {
        let before = problems.0.len();
        let jid = match self.jid.as_deref() {
            None => {
                problems.push("[xmpp] jid is required");
                None
            }
            Some(text) => match xmpp_parsers::jid::BareJid::new(text) {
                Ok(j) if j.node().is_some() => Some(j),
                Ok(_) => {
                    problems.push(format!(
                        "[xmpp] jid `{text}` needs a user part (user@domain)"
                    ));
                    None
                }
                Err(e) => {
                    problems.push(format!("[xmpp] jid `{text}` is not a valid bare JID: {e}"));
                    None
                }
            },
        };
        let resource = self.resource.clone().unwrap_or_else(hostname);
        if xmpp_parsers::jid::ResourcePart::new(&resource).is_err() {
            problems.push(format!(
                "[xmpp] resource `{resource}` is not a valid resource"
            ));
        }
        let password = self.password(problems);
        let server = match self.server.as_deref() {
            None => Some(ServerAddr::Dns),
            Some(text) => match parse_host_port(text) {
                Ok((host, port)) => Some(ServerAddr::Explicit { host, port }),
                Err(e) => {
                    problems.push(format!("[xmpp] server: {e}"));
                    None
                }
            },
        };
        if self.tls == TlsMode::None {
            match &server {
                Some(ServerAddr::Explicit { host, .. }) if is_loopback(host) => {}
                Some(_) => problems.push(
                    "[xmpp] tls = \"none\" is refused: plaintext is only allowed to a loopback \
                     `server` (127.0.0.1, ::1 or localhost); use tls = \"required\"",
                ),
                None => {}
            }
        }
        if let Some(ca) = &self.ca_file {
            if let Err(e) = crate::session::connector::load_ca_file(ca) {
                problems.push(format!("[xmpp] ca_file: {e}"));
            }
        }
        if problems.0.len() > before {
            return None;
        }
        Some(XmppConfig {
            jid: jid?,
            resource,
            password: password?,
            server: server?,
            tls: self.tls,
            ca_file: self.ca_file,
            hide_os: self.hide_os,
        })
    }

    fn password(&self, problems: &mut Problems) -> Option<Secret> {
        let given = [
            self.password.is_some(),
            self.password_file.is_some(),
            self.password_env.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given != 1 {
            problems
                .push("[xmpp] exactly one of password, password_file or password_env must be set");
            return None;
        }
        let secret = if let Some(p) = &self.password {
            p.clone()
        } else if let Some(path) = &self.password_file {
            match std::fs::read_to_string(path) {
                Ok(s) => s.lines().next().unwrap_or("").to_string(),
                Err(e) => {
                    problems.push(format!(
                        "[xmpp] password_file {} cannot be read: {e}",
                        path.display()
                    ));
                    return None;
                }
            }
        } else {
            let var = self.password_env.as_deref().unwrap_or_default();
            match std::env::var(var) {
                Ok(s) => s,
                Err(_) => {
                    problems.push(format!(
                        "[xmpp] password_env names `{var}`, which is not set"
                    ));
                    return None;
                }
            }
        };
        if secret.is_empty() {
            problems.push("[xmpp] the password is empty");
            return None;
        }
        Some(Secret(secret))
    }
}

fn parse_host_port(text: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (h, p) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{text}`: missing `]`"))?;
        (h.to_string(), p.strip_prefix(':'))
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h.to_string(), Some(p)),
            _ => (text.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(format!("`{text}` has no host"));
    }
    let port = match port {
        None => 5222,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("`{text}`: port must be 1-65535"))?,
    };
    Ok((host, port))
}

/// True for `localhost`, 127.0.0.0/8 and ::1.
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// tracing filter, e.g. `info` or `jabmon=debug`; `RUST_LOG` overrides it.
    #[serde(default = "default_log_level")]
    pub level: String,
    /// `text` or `json`.
    #[serde(default)]
    pub format: LogFormat,
}

fn default_log_level() -> String {
    "info".into()
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: default_log_level(),
            format: LogFormat::Text,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogConfig {
    /// Validates the filter syntax.
    pub fn validate(&self, problems: &mut Problems) {
        if crate::logging::parse_filter(&self.level).is_err() {
            problems.push(format!(
                "[log] level `{}` is not a valid tracing filter",
                self.level
            ));
        }
    }
}

/// `[access]` for any bot; the hub uses `collectors` and `users`, the collector `subscribers`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessSection {
    /// Who may subscribe to this bot (collector).
    #[serde(default)]
    pub subscribers: Vec<String>,
    /// Who may run privileged commands.
    #[serde(default)]
    pub admins: Vec<String>,
    /// Hub: who is accepted as a collector.
    #[serde(default)]
    pub collectors: Vec<String>,
    /// Hub: who may subscribe and query.
    #[serde(default)]
    pub users: Vec<String>,
}

/// Parses an ACL list, recording bad entries.
pub fn acl(section: &str, key: &str, entries: &[String], problems: &mut Problems) -> Acl {
    match Acl::parse(entries) {
        Ok(acl) => acl,
        Err(bad) => {
            for b in bad {
                problems.push(format!(
                    "[{section}] {key}: `{b}` is neither a bare JID nor @domain"
                ));
            }
            Acl::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            parse_host_port("127.0.0.1:5333").unwrap(),
            ("127.0.0.1".into(), 5333)
        );
        assert_eq!(
            parse_host_port("example.org").unwrap(),
            ("example.org".into(), 5222)
        );
        assert_eq!(parse_host_port("[::1]:5").unwrap(), ("::1".into(), 5));
        assert!(parse_host_port("h:0").is_err());
        assert!(parse_host_port("h:x").is_err());
    }

    #[test]
    fn loopback() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("127.3.2.1"));
        assert!(is_loopback("::1"));
        assert!(is_loopback("LocalHost"));
        assert!(!is_loopback("10.0.0.1"));
        assert!(!is_loopback("example.org"));
    }

    #[test]
    fn secret_does_not_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn plaintext_only_to_loopback() {
        let mut p = Problems::default();
        let s = XmppSection {
            jid: Some("bot@example.org".into()),
            password: Some("x".into()),
            server: Some("192.0.2.1:5222".into()),
            tls: TlsMode::None,
            ..Default::default()
        };
        assert!(s.validate(&mut p).is_none());
        assert!(
            p.0[0].contains("plaintext is only allowed to a loopback"),
            "{p}"
        );
    }

    #[test]
    fn every_problem_is_listed() {
        let mut p = Problems::default();
        let s = XmppSection {
            jid: Some("not a jid@@".into()),
            server: Some("h:99999".into()),
            ..Default::default()
        };
        assert!(s.validate(&mut p).is_none());
        assert_eq!(p.0.len(), 3, "{p}");
    }
}
