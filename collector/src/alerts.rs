//! Threshold alerts (pure): CPU, memory and per-mount disk usage against `[thresholds]`, each
//! with hysteresis — one `warning` when a value crosses its level, one `info` when it falls
//! below the clear level, nothing in between — plus the load level changes that drive
//! presence (`warning` busy, `critical` critical, `info` back to normal).

use std::collections::BTreeSet;

use jabmon_shared::payload::Severity;

use crate::config::Thresholds;
use crate::metrics::{group_of, MetricTable};
use crate::presence::Level;

/// One alert to publish as a `threshold` event.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub metric: String,
    pub value: f64,
    pub severity: Severity,
    pub text: String,
}

/// Which metrics are above their warning level now.
#[derive(Debug, Default)]
pub struct Alerts {
    raised: BTreeSet<String>,
}

/// (metric, what it measures, value as checked, warn, clear). CPU is checked as busy %.
fn checks(table: &MetricTable, t: &Thresholds) -> Vec<(String, String, f64, f64, f64)> {
    let mut out = Vec::new();
    if let Some(idle) = table.value("cpu.cpu.idle") {
        out.push((
            "cpu.cpu.idle".into(),
            "cpu busy".into(),
            100.0 - idle,
            t.cpu_warn,
            t.cpu_warn_clear,
        ));
    }
    if let Some(m) = table.value("memory.percent.used") {
        out.push((
            "memory.percent.used".into(),
            "memory".into(),
            m,
            t.memory_warn,
            t.memory_warn_clear,
        ));
    }
    for (name, s) in table.group("disk") {
        if let Some(mount) = name
            .strip_prefix("df-")
            .and_then(|r| r.strip_suffix(".percent.used"))
        {
            let shown = if mount == "root" {
                "/".to_string()
            } else {
                format!("/{}", mount.replace('-', "/"))
            };
            out.push((
                name.clone(),
                format!("disk {shown}"),
                s.value,
                t.disk_warn,
                t.disk_warn_clear,
            ));
        }
    }
    out
}

impl Alerts {
    /// Compares the table with the thresholds; returns the crossings since the last call.
    pub fn check(&mut self, table: &MetricTable, t: &Thresholds) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for (metric, what, v, warn, clear) in checks(table, t) {
            let raised = self.raised.contains(&metric);
            if !raised && v >= warn {
                self.raised.insert(metric.clone());
                alerts.push(Alert {
                    text: format!("{what} above {warn}% ({v:.1}%)"),
                    metric,
                    value: v,
                    severity: Severity::Warning,
                });
            } else if raised && v < clear {
                self.raised.remove(&metric);
                alerts.push(Alert {
                    text: format!("{what} back below {clear}% ({v:.1}%)"),
                    metric,
                    value: v,
                    severity: Severity::Info,
                });
            }
        }
        // A metric that vanished (unmounted) is no longer raised.
        self.raised.retain(|m| table.get(m).is_some());
        alerts
    }

    /// Forgets the states of metrics in `groups` (stats-reset): a value still above its level
    /// is reported again at the next check.
    pub fn reset(&mut self, groups: &[String]) {
        self.raised
            .retain(|m| !groups.iter().any(|g| g == group_of(m)));
    }
}

/// The alert for a load level change, if it is one worth an event.
pub fn load_alert(from: Level, to: Level, per_core: f64, t: &Thresholds) -> Option<Alert> {
    let (severity, text) = match (from, to) {
        (_, Level::Critical) if from != Level::Critical => (
            Severity::Critical,
            format!(
                "load {per_core:.2} per core at or above critical {}",
                t.load_critical
            ),
        ),
        (Level::Normal | Level::Starting, Level::Busy) => (
            Severity::Warning,
            format!(
                "load {per_core:.2} per core at or above busy {}",
                t.load_busy
            ),
        ),
        (Level::Busy | Level::Critical, Level::Normal) => (
            Severity::Info,
            format!(
                "load {per_core:.2} per core back below {}",
                t.load_busy_clear
            ),
        ),
        _ => return None,
    };
    Some(Alert {
        metric: "load.load.shortterm".into(),
        value: per_core,
        severity,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Unit;

    fn table(disk: f64, t: f64) -> MetricTable {
        let mut m = MetricTable::default();
        m.record(
            t,
            vec![
                ("df-root.percent.used".into(), Unit::Percent, disk),
                ("cpu.cpu.idle".into(), Unit::Percent, 90.0),
            ],
        );
        m
    }

    #[test]
    fn one_warning_then_one_info() {
        let t = Thresholds {
            disk_warn: 50.0,
            disk_warn_clear: 40.0,
            ..Default::default()
        };
        let mut a = Alerts::default();
        let mut seen = vec![];
        for (i, v) in [30.0, 55.0, 60.0, 45.0, 52.0, 39.0, 38.0]
            .into_iter()
            .enumerate()
        {
            seen.extend(a.check(&table(v, i as f64), &t));
        }
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0].severity, Severity::Warning);
        assert_eq!(seen[0].text, "disk / above 50% (55.0%)");
        assert_eq!(seen[1].severity, Severity::Info);
        assert_eq!(seen[1].metric, "df-root.percent.used");
    }

    #[test]
    fn reset_reports_again() {
        let t = Thresholds {
            disk_warn: 50.0,
            disk_warn_clear: 40.0,
            ..Default::default()
        };
        let mut a = Alerts::default();
        assert_eq!(a.check(&table(60.0, 0.0), &t).len(), 1);
        assert_eq!(a.check(&table(60.0, 1.0), &t).len(), 0);
        a.reset(&["disk".to_string()]);
        assert_eq!(a.check(&table(60.0, 2.0), &t).len(), 1);
    }

    #[test]
    fn load_alerts() {
        let t = Thresholds::default();
        assert_eq!(
            load_alert(Level::Normal, Level::Busy, 1.1, &t)
                .unwrap()
                .severity,
            Severity::Warning
        );
        assert_eq!(
            load_alert(Level::Busy, Level::Critical, 2.1, &t)
                .unwrap()
                .severity,
            Severity::Critical
        );
        assert_eq!(load_alert(Level::Critical, Level::Busy, 1.7, &t), None);
        assert_eq!(
            load_alert(Level::Busy, Level::Normal, 0.5, &t)
                .unwrap()
                .severity,
            Severity::Info
        );
        assert_eq!(load_alert(Level::Starting, Level::Normal, 0.5, &t), None);
    }
}
