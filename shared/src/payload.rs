//! jabmon's own payloads: `<stats xmlns='urn:jabmon:stats:0'/>` (PEP node `urn:jabmon:stats:0`)
//! and `<event xmlns='urn:jabmon:events:0'/>` (PEP node `urn:jabmon:events:0`), docs/protocol.md §5.

use std::fmt;
use std::str::FromStr;

use xso::{AsXml, FromXml};

use crate::ns;

/// A stats item: every metric of one sample.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = ns::STATS, name = "stats")]
pub struct Stats {
    #[xml(attribute)]
    pub host: String,
    /// Seconds since the epoch.
    #[xml(attribute)]
    pub timestamp: f64,
    #[xml(child(n = ..))]
    pub stats: Vec<Stat>,
}

/// One metric value (name without host).
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = ns::STATS, name = "stat")]
pub struct Stat {
    #[xml(attribute)]
    pub name: String,
    #[xml(attribute)]
    pub value: f64,
    #[xml(attribute(default))]
    pub unit: Option<String>,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Started,
    Stopping,
    Rebooted,
    Threshold,
    Command,
    StatsReset,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Started => "started",
            EventKind::Stopping => "stopping",
            EventKind::Rebooted => "rebooted",
            EventKind::Threshold => "threshold",
            EventKind::Command => "command",
            EventKind::StatsReset => "stats-reset",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown event kind or severity.
#[derive(Debug, thiserror::Error)]
#[error("unknown value `{0}`")]
pub struct UnknownValue(String);

impl FromStr for EventKind {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, UnknownValue> {
        Ok(match s {
            "started" => EventKind::Started,
            "stopping" => EventKind::Stopping,
            "rebooted" => EventKind::Rebooted,
            "threshold" => EventKind::Threshold,
            "command" => EventKind::Command,
            "stats-reset" => EventKind::StatsReset,
            other => return Err(UnknownValue(other.to_string())),
        })
    }
}

/// How serious.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        })
    }
}

impl FromStr for Severity {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, UnknownValue> {
        Ok(match s {
            "info" => Severity::Info,
            "warning" => Severity::Warning,
            "critical" => Severity::Critical,
            other => return Err(UnknownValue(other.to_string())),
        })
    }
}

xso::convert_via_fromstr_and_display!(EventKind, Severity);

/// An event item.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = ns::EVENTS, name = "event")]
pub struct Event {
    #[xml(attribute)]
    pub host: String,
    #[xml(attribute)]
    pub timestamp: f64,
    #[xml(attribute)]
    pub kind: EventKind,
    #[xml(attribute(default))]
    pub severity: Option<Severity>,
    /// The host's boot time (seconds since the epoch): a receiver — or the collector after a
    /// restart — tells a reboot from a restart by comparing it.
    #[xml(attribute(default))]
    pub boot: Option<u64>,
    #[xml(child(default))]
    pub metric: Option<EventMetric>,
    #[xml(child(default))]
    pub command: Option<CommandRun>,
    #[xml(extract(default, fields(text(type_ = String))))]
    pub text: Option<String>,
}

/// The metric a threshold event is about.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = ns::EVENTS, name = "metric")]
pub struct EventMetric {
    #[xml(attribute)]
    pub name: String,
    #[xml(attribute)]
    pub value: f64,
}

/// Where a command run is (the dispatcher model): every run goes `pending` → `running` →
/// `finished`, one event each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandState {
    Pending,
    Running,
    Finished,
}

impl CommandState {
    pub fn as_str(self) -> &'static str {
        match self {
            CommandState::Pending => "pending",
            CommandState::Running => "running",
            CommandState::Finished => "finished",
        }
    }
}

impl fmt::Display for CommandState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CommandState {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, UnknownValue> {
        Ok(match s {
            "pending" => CommandState::Pending,
            "running" => CommandState::Running,
            "finished" => CommandState::Finished,
            other => return Err(UnknownValue(other.to_string())),
        })
    }
}

xso::convert_via_fromstr_and_display!(CommandState);

/// One state of a command run, as an `<event kind='command'/>` carries it.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = ns::EVENTS, name = "command")]
pub struct CommandRun {
    #[xml(attribute)]
    pub name: String,
    #[xml(attribute)]
    pub state: CommandState,
    /// Bare JID of who asked.
    #[xml(attribute)]
    pub asker: String,
    #[xml(attribute(name = "exit-code", default))]
    pub exit_code: Option<i32>,
}

/// A collector's status as the hub tracks it, from presence, stats items and silence
/// (docs/protocol.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectorState {
    /// Available with the status text `Starting up`.
    Starting,
    Alive,
    /// Available with `away` or `xa`.
    Busy,
    /// Available with `dnd`.
    Critical,
    /// Unavailable with the status text `Stopping`: a planned stop; silence keeps it.
    Stopped,
    /// Unavailable otherwise, or silent for too long: a crash.
    Dead,
    /// Known, but no presence seen yet.
    Unknown,
}

impl CollectorState {
    /// Every state, in the order the hub lists them.
    pub const ALL: [CollectorState; 7] = [
        CollectorState::Starting,
        CollectorState::Alive,
        CollectorState::Busy,
        CollectorState::Critical,
        CollectorState::Stopped,
        CollectorState::Dead,
        CollectorState::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CollectorState::Starting => "starting",
            CollectorState::Alive => "alive",
            CollectorState::Busy => "busy",
            CollectorState::Critical => "critical",
            CollectorState::Stopped => "stopped",
            CollectorState::Dead => "dead",
            CollectorState::Unknown => "unknown",
        }
    }

    /// Whether the collector is up (`HOST.jabmon.status.alive` is 1).
    pub fn is_alive(self) -> bool {
        matches!(
            self,
            CollectorState::Starting
                | CollectorState::Alive
                | CollectorState::Busy
                | CollectorState::Critical
        )
    }

    /// Whether the collector reports load (`HOST.jabmon.status.busy` is 1).
    pub fn is_busy(self) -> bool {
        matches!(self, CollectorState::Busy | CollectorState::Critical)
    }
}

impl fmt::Display for CollectorState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CollectorState {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, UnknownValue> {
        CollectorState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownValue(s.to_string()))
    }
}

xso::convert_via_fromstr_and_display!(CollectorState);

/// A collector's status as the hub publishes it on `urn:jabmon:collectors:0` (item id = the
/// collector's bare JID).
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = ns::COLLECTORS, name = "collector")]
pub struct CollectorStatus {
    #[xml(attribute)]
    pub jid: String,
    #[xml(attribute)]
    pub host: String,
    #[xml(attribute)]
    pub status: CollectorState,
    #[xml(attribute)]
    pub timestamp: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use minidom::Element;

    const STATS: &str = "<stats xmlns='urn:jabmon:stats:0' host='web1' timestamp='1763804400.125'><stat name='cpu.cpu.idle' value='85.2' unit='percent'/><stat name='load.load.shortterm' value='0.42'/></stats>";
    const EVENT: &str = "<event xmlns='urn:jabmon:events:0' host='web1' timestamp='1763804400.5' kind='threshold' severity='warning'><metric name='df-root.percent.used' value='93.1'/><text>disk / above 90% (93.1%)</text></event>";
    const COMMAND: &str = "<event xmlns='urn:jabmon:events:0' host='web1' timestamp='2' kind='command' boot='1700000000'><command name='shell' state='finished' asker='ops@example.org' exit-code='0'/></event>";

    fn stats() -> Stats {
        Stats {
            host: "web1".into(),
            timestamp: 1763804400.125,
            stats: vec![
                Stat {
                    name: "cpu.cpu.idle".into(),
                    value: 85.2,
                    unit: Some("percent".into()),
                },
                Stat {
                    name: "load.load.shortterm".into(),
                    value: 0.42,
                    unit: None,
                },
            ],
        }
    }

    fn event() -> Event {
        Event {
            host: "web1".into(),
            timestamp: 1763804400.5,
            kind: EventKind::Threshold,
            severity: Some(Severity::Warning),
            boot: None,
            metric: Some(EventMetric {
                name: "df-root.percent.used".into(),
                value: 93.1,
            }),
            command: None,
            text: Some("disk / above 90% (93.1%)".into()),
        }
    }

    #[test]
    fn parse_literals() {
        assert_eq!(
            Stats::try_from(STATS.parse::<Element>().unwrap()).unwrap(),
            stats()
        );
        assert_eq!(
            Event::try_from(EVENT.parse::<Element>().unwrap()).unwrap(),
            event()
        );
        let c = Event::try_from(COMMAND.parse::<Element>().unwrap()).unwrap();
        assert_eq!(c.kind, EventKind::Command);
        assert_eq!(c.boot, Some(1700000000));
        let run = c.command.unwrap();
        assert_eq!(run.state, CommandState::Finished);
        assert_eq!(run.exit_code, Some(0));
    }

    #[test]
    fn command_state_is_the_wire_word() {
        let e = Event::try_from(COMMAND.parse::<Element>().unwrap()).unwrap();
        assert_eq!(Element::from(e), COMMAND.parse::<Element>().unwrap());
        for s in [
            CommandState::Pending,
            CommandState::Running,
            CommandState::Finished,
        ] {
            assert_eq!(s.as_str().parse::<CommandState>().unwrap(), s);
        }
        let broken: Element =
            "<command xmlns='urn:jabmon:events:0' name='x' state='done' asker='a@b'/>"
                .parse()
                .unwrap();
        assert_eq!(
            CommandRun::try_from(broken).unwrap_err().to_string(),
            "text parse error: unknown value `done`"
        );
    }

    #[test]
    fn serialise_and_compare() {
        assert_eq!(Element::from(stats()), STATS.parse::<Element>().unwrap());
        assert_eq!(Element::from(event()), EVENT.parse::<Element>().unwrap());
    }

    #[test]
    fn broken_payloads_give_exact_errors() {
        let el: Element = "<stats xmlns='urn:jabmon:stats:0' host='h' timestamp='soon'/>"
            .parse()
            .unwrap();
        assert_eq!(
            Stats::try_from(el).unwrap_err().to_string(),
            "text parse error: invalid float literal"
        );
        let el: Element =
            "<event xmlns='urn:jabmon:events:0' host='h' timestamp='1' kind='exploded'/>"
                .parse()
                .unwrap();
        assert_eq!(
            Event::try_from(el).unwrap_err().to_string(),
            "text parse error: unknown value `exploded`"
        );
        let other: Element = "<stats xmlns='urn:other'/>".parse().unwrap();
        assert!(matches!(
            Stats::try_from(other),
            Err(xso::error::FromElementError::Mismatch(_))
        ));
    }

    #[test]
    fn collector_status_four_ways() {
        let xml = "<collector xmlns='urn:jabmon:collectors:0' jid='web1@x' host='web1' status='dead' timestamp='5'/>";
        let el: Element = xml.parse().unwrap();
        let c = CollectorStatus::try_from(el.clone()).unwrap();
        assert_eq!(
            c,
            CollectorStatus {
                jid: "web1@x".into(),
                host: "web1".into(),
                status: CollectorState::Dead,
                timestamp: 5.0
            }
        );
        assert_eq!(Element::from(c.clone()), el);
        let broken: Element =
            "<collector xmlns='urn:jabmon:collectors:0' jid='a' host='h' status='dead'/>"
                .parse()
                .unwrap();
        assert_eq!(
            CollectorStatus::try_from(broken).unwrap_err().to_string(),
            "Required attribute field 'timestamp' on CollectorStatus element missing."
        );
        assert_eq!(
            CollectorStatus::try_from(Element::from(c.clone())).unwrap(),
            c
        );
    }

    #[test]
    fn collector_state_names_round_trip_and_unknown_is_refused() {
        for state in CollectorState::ALL {
            assert_eq!(state.as_str().parse::<CollectorState>().unwrap(), state);
        }
        assert_eq!(
            "asleep".parse::<CollectorState>().unwrap_err().to_string(),
            "unknown value `asleep`"
        );
        let alive: Vec<bool> = CollectorState::ALL.iter().map(|s| s.is_alive()).collect();
        assert_eq!(alive, [true, true, true, true, false, false, false]);
        let busy: Vec<bool> = CollectorState::ALL.iter().map(|s| s.is_busy()).collect();
        assert_eq!(busy, [false, false, true, true, false, false, false]);
    }

    #[test]
    fn round_trips() {
        let s = stats();
        assert_eq!(Stats::try_from(Element::from(s.clone())).unwrap(), s);
        let e = Event::try_from(COMMAND.parse::<Element>().unwrap()).unwrap();
        assert_eq!(Event::try_from(Element::from(e.clone())).unwrap(), e);
    }
}
