//! The hub's configuration: the common `[xmpp]`, `[log]`, `[access]` sections plus `[hub]`
//! (docs/protocol.md §2). `load` reports every problem at once.

use std::path::{Path, PathBuf};

use jabmon_shared::acl::Acl;
use jabmon_shared::config::{
    self as shared, AccessSection, LogConfig, Problems, RawConfig, XmppConfig, XmppSection,
};
use serde::Deserialize;

/// Where registrations are kept across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// A private XEP-0223 PEP node on the hub's own account (moves with the account).
    #[default]
    Pep,
    /// A JSON file at `state_path`, written atomically.
    File,
}

/// Message type of event deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EventMessageType {
    #[default]
    Chat,
    /// Never stored offline by servers.
    Headline,
}

/// `[hub]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubSection {
    /// Registrations one user may hold.
    pub max_queries_per_user: usize,
    /// Event messages per second per user (token bucket; excess dropped and counted).
    pub max_events_per_second_per_user: u32,
    /// Events waiting per user (while paused or rate limited).
    pub max_queued_events_per_user: usize,
    pub storage: Storage,
    pub state_path: PathBuf,
    pub event_message_type: EventMessageType,
    /// A collector whose stats stay silent this many publish intervals is dead.
    pub silence_intervals: u32,
}

impl Default for HubSection {
    fn default() -> Self {
        Self {
            max_queries_per_user: 100,
            max_events_per_second_per_user: 50,
            max_queued_events_per_user: 1000,
            storage: Storage::Pep,
            state_path: PathBuf::from("/var/lib/jabmon/hub.json"),
            event_message_type: EventMessageType::Chat,
            silence_intervals: 3,
        }
    }
}

/// The whole, validated hub configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub xmpp: XmppConfig,
    pub log: LogConfig,
    pub collectors: Acl,
    pub users: Acl,
    pub admins: Acl,
    pub hub: HubSection,
    /// `[alerting]`, validated.
    pub alerting: crate::alerts::Settings,
    /// `[[alerts]]`, validated.
    pub alert_rules: Vec<crate::alerts::Rule>,
    /// `[[rooms]]` and every room an alert route names, validated.
    pub rooms: Vec<crate::muc::RoomSettings>,
}

/// The query engine's limits for `[hub]` (the engine's and the alert rules' parser share them).
fn query_limits(hub: &HubSection) -> crate::query::Limits {
    crate::query::Limits {
        max_queries_per_user: hub.max_queries_per_user,
        ..crate::query::Limits::default()
    }
}

impl Config {
    /// The query engine's limits.
    pub fn query_limits(&self) -> crate::query::Limits {
        query_limits(&self.hub)
    }

    /// Loads and validates; `Err` lists every problem.
    pub fn load(path: Option<&Path>) -> Result<Self, Problems> {
        Self::from_raw(RawConfig::load(path)?)
    }

    pub fn from_raw(mut raw: RawConfig) -> Result<Self, Problems> {
        let mut p = Problems::default();
        let xmpp: XmppSection = raw.section("xmpp", &mut p);
        let log: LogConfig = raw.section("log", &mut p);
        let access: AccessSection = raw.section("access", &mut p);
        let hub: HubSection = raw.section("hub", &mut p);
        let alerting: crate::alerts::AlertingSection = raw.section("alerting", &mut p);
        let alert_configs: Vec<crate::alerts::RuleConfig> = raw.section("alerts", &mut p);
        let room_sections: Vec<crate::muc::RoomSection> = raw.section("rooms", &mut p);
        raw.finish(&mut p);
        let limits = query_limits(&hub);
        let (alerting, alert_rules) = match alerting.validate() {
            Ok(settings) => {
                let rules = crate::alerts::validate_rules(&alert_configs, &settings, &limits)
                    .unwrap_or_else(|problems| {
                        problems
                            .into_iter()
                            .for_each(|e| p.push(format!("[[alerts]] {e}")));
                        vec![]
                    });
                (settings, rules)
            }
            Err(problems) => {
                problems
                    .into_iter()
                    .for_each(|e| p.push(format!("[alerting] {e}")));
                (crate::alerts::Settings::default(), vec![])
            }
        };
        let routed: Vec<String> = alert_rules
            .iter()
            .flat_map(|r| r.route.rooms.iter())
            .chain(alerting.collector_route.rooms.iter())
            .cloned()
            .collect();
        let rooms =
            crate::muc::validate_rooms(&room_sections, &routed).unwrap_or_else(|problems| {
                problems.into_iter().for_each(|e| p.push(e));
                vec![]
            });
        let xmpp = xmpp.validate(&mut p);
        log.validate(&mut p);
        if !access.subscribers.is_empty() {
            p.push(
                "[access] subscribers is a collector setting; the hub uses collectors and users",
            );
        }
        let collectors = shared::acl("access", "collectors", &access.collectors, &mut p);
        let users = shared::acl("access", "users", &access.users, &mut p);
        let admins = shared::acl("access", "admins", &access.admins, &mut p);
        if hub.max_queries_per_user == 0 || hub.max_queries_per_user > 10_000 {
            p.push("[hub] max_queries_per_user must be 1-10000");
        }
        if hub.max_events_per_second_per_user == 0 || hub.max_events_per_second_per_user > 10_000 {
            p.push("[hub] max_events_per_second_per_user must be 1-10000");
        }
        if hub.max_queued_events_per_user == 0 || hub.max_queued_events_per_user > 1_000_000 {
            p.push("[hub] max_queued_events_per_user must be 1-1000000");
        }
        if hub.silence_intervals < 2 {
            p.push("[hub] silence_intervals must be at least 2");
        }
        if hub.storage == Storage::File {
            match hub.state_path.parent() {
                Some(dir) if dir.as_os_str().is_empty() || dir.is_dir() => {}
                _ => p.push(format!(
                    "[hub] state_path {}: its directory does not exist",
                    hub.state_path.display()
                )),
            }
        }
        let Some(xmpp) = xmpp else { return Err(p) };
        p.into_result(Config {
            xmpp,
            log,
            collectors,
            users,
            admins,
            hub,
            alerting,
            alert_rules,
            rooms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/hub.example.toml");
        let env = HashMap::from([
            (
                "JABMON_XMPP__PASSWORD_FILE".to_string(),
                "/dev/null".to_string(),
            ),
            ("JABMON_XMPP__PASSWORD".to_string(), "x".to_string()),
        ]);
        let mut raw = RawConfig::load_with_env(Some(&path), Some(env)).unwrap();
        // password_file (from the file) and password (env) would clash: validate the rest.
        let mut p = Problems::default();
        let hub: HubSection = raw.section("hub", &mut p);
        assert!(p.is_empty(), "{p}");
        assert_eq!(hub.max_queries_per_user, 100);
        assert_eq!(hub.storage, Storage::Pep);
    }

    #[test]
    fn the_examples_commented_rooms_and_alerts_are_valid_once_uncommented() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/hub.example.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let block: Vec<&str> = text[text.find("# [[rooms]]").unwrap()..]
            .lines()
            .map(|l| l.trim_start_matches('#').trim_start())
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.toml");
        std::fs::write(
            &path,
            format!(
                "[xmpp]\njid = \"hub@example.org\"\npassword = \"p\"\n{}\n",
                block.join("\n")
            ),
        )
        .unwrap();
        let cfg = Config::load(Some(&path)).unwrap_or_else(|p| panic!("{p}"));
        assert_eq!(cfg.alert_rules.len(), 1);
        assert_eq!(cfg.rooms.len(), 1);
    }

    #[test]
    fn every_problem_listed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.toml");
        std::fs::write(&path, "[xmpp]\njid = \"hub@x\"\npassword = \"p\"\n[hub]\nmax_queries_per_user = 0\nstorage = \"cloud\"\nfoo = 1\n").unwrap();
        let err =
            Config::from_raw(RawConfig::load_with_env(Some(&path), Some(HashMap::new())).unwrap())
                .unwrap_err();
        let text = err.to_string();
        for want in ["storage", "foo", "max_queries_per_user"] {
            assert!(text.contains(want), "`{want}` not in:\n{text}");
        }
    }
}
