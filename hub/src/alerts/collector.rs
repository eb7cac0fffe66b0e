//! Alerts without rules: what collectors report about themselves (docs/alerts.md, "Collector
//! alerts"). A threshold crossing opens an alert for `HOST.METRIC` and its `info` event (back
//! below the clear level) resolves it; `stopping` and status `dead` open the `collector` alert
//! of the host, `started`, `rebooted` and a return to life resolve it; a reboot is also told
//! as a notice.

use jabmon_shared::payload::{Event, EventKind, Severity};

use crate::collectors::Change;
use jabmon_shared::payload::CollectorState as Status;

/// Source name of collector up/down alerts.
pub const COLLECTOR: &str = "collector";
/// Source name of threshold alerts.
pub const THRESHOLD: &str = "threshold";

/// What one collector report means for alerting.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// Open (or keep open) the alert of `source` for `series`.
    Open {
        source: &'static str,
        series: String,
        severity: Severity,
        value: Option<f64>,
        text: String,
    },
    /// Resolve it, if open.
    Resolve {
        source: &'static str,
        series: String,
        value: Option<f64>,
        text: String,
    },
    /// Tell it once; nothing stays open.
    Notice {
        source: &'static str,
        series: String,
        text: String,
    },
}

/// The signals of one collector event (a `command` or `stats-reset` event has none).
pub fn from_event(ev: &Event) -> Vec<Signal> {
    let host = ev.host.clone();
    let text = ev.text.clone().unwrap_or_default();
    match ev.kind {
        EventKind::Threshold => {
            let Some(metric) = &ev.metric else {
                return Vec::new();
            };
            let series = format!("{host}.{}", metric.name);
            let value = Some(metric.value);
            match ev.severity {
                Some(Severity::Info) => vec![Signal::Resolve {
                    source: THRESHOLD,
                    series,
                    value,
                    text,
                }],
                severity => vec![Signal::Open {
                    source: THRESHOLD,
                    series,
                    severity: severity.unwrap_or(Severity::Warning),
                    value,
                    text,
                }],
            }
        }
        EventKind::Stopping => vec![Signal::Open {
            source: COLLECTOR,
            series: host,
            severity: Severity::Warning,
            value: None,
            text: "collector stopping".to_owned(),
        }],
        EventKind::Started => vec![Signal::Resolve {
            source: COLLECTOR,
            series: host,
            value: None,
            text: "collector started".to_owned(),
        }],
        EventKind::Rebooted => vec![
            Signal::Notice {
                source: COLLECTOR,
                series: host.clone(),
                text: "rebooted".to_owned(),
            },
            Signal::Resolve {
                source: COLLECTOR,
                series: host,
                value: None,
                text: "collector started after a reboot".to_owned(),
            },
        ],
        EventKind::Command | EventKind::StatsReset => Vec::new(),
    }
}

/// The signal of a collector status change: `dead` opens, back to life resolves.
pub fn from_status(change: &Change) -> Option<Signal> {
    match (change.from, change.to) {
        (_, Status::Dead) => Some(Signal::Open {
            source: COLLECTOR,
            series: change.host.clone(),
            severity: Severity::Critical,
            value: None,
            text: "collector dead".to_owned(),
        }),
        (Status::Dead, to) if to.is_alive() => Some(Signal::Resolve {
            source: COLLECTOR,
            series: change.host.clone(),
            value: None,
            text: format!("collector {to}"),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jabmon_shared::payload::EventMetric;

    fn event(kind: EventKind, severity: Option<Severity>) -> Event {
        Event {
            host: "web1".into(),
            timestamp: 1.0,
            kind,
            severity,
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
    fn threshold_crossings_open_and_info_resolves() {
        assert_eq!(
            from_event(&event(EventKind::Threshold, Some(Severity::Warning))),
            [Signal::Open {
                source: THRESHOLD,
                series: "web1.df-root.percent.used".into(),
                severity: Severity::Warning,
                value: Some(93.1),
                text: "disk / above 90% (93.1%)".into()
            }]
        );
        assert!(matches!(
            &from_event(&event(EventKind::Threshold, Some(Severity::Critical)))[..],
            [Signal::Open {
                severity: Severity::Critical,
                ..
            }]
        ));
        assert!(matches!(
            &from_event(&event(EventKind::Threshold, Some(Severity::Info)))[..],
            [Signal::Resolve { source: THRESHOLD, series, .. }] if series == "web1.df-root.percent.used"
        ));
        let mut no_metric = event(EventKind::Threshold, None);
        no_metric.metric = None;
        assert!(from_event(&no_metric).is_empty());
    }

    #[test]
    fn lifecycle_events_open_and_resolve_the_collector_alert() {
        assert!(matches!(
            &from_event(&event(EventKind::Stopping, None))[..],
            [Signal::Open { source: COLLECTOR, series, .. }] if series == "web1"
        ));
        assert!(matches!(
            &from_event(&event(EventKind::Started, None))[..],
            [Signal::Resolve {
                source: COLLECTOR,
                ..
            }]
        ));
        assert!(matches!(
            &from_event(&event(EventKind::Rebooted, None))[..],
            [Signal::Notice { .. }, Signal::Resolve { .. }]
        ));
        assert!(from_event(&event(EventKind::Command, None)).is_empty());
        assert!(from_event(&event(EventKind::StatsReset, None)).is_empty());
    }

    #[test]
    fn dead_opens_and_life_resolves() {
        let change = |from, to| Change {
            jid: "web1@x".parse().unwrap(),
            host: "web1".into(),
            from,
            to,
        };
        assert!(matches!(
            from_status(&change(Status::Alive, Status::Dead)),
            Some(Signal::Open {
                severity: Severity::Critical,
                ..
            })
        ));
        assert!(matches!(
            from_status(&change(Status::Dead, Status::Alive)),
            Some(Signal::Resolve { text, .. }) if text == "collector alive"
        ));
        assert_eq!(from_status(&change(Status::Dead, Status::Unknown)), None);
        assert_eq!(from_status(&change(Status::Alive, Status::Busy)), None);
    }
}
