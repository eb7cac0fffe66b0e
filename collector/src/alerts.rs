//! Threshold alerts (pure): CPU, memory and per-mount disk usage against `[thresholds]`, each
//! with hysteresis — one `warning` when a value crosses its level, one `info` when it falls
//! below the clear level, nothing in between — plus the load level changes that drive
//! presence (`warning` busy, `critical` critical, `info` back to normal).

use std::collections::BTreeSet;

use jabmon_shared::metric;
use jabmon_shared::payload::Severity;

use crate::config::Thresholds;
use crate::metrics::{group_of, MetricTable};
use crate::presence::{next_level, Level};

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
    if let Some(idle) = table.value(metric::CPU_IDLE) {
        out.push((
            metric::CPU_IDLE.into(),
            "cpu busy".into(),
            100.0 - idle,
            t.cpu_warn,
            t.cpu_warn_clear,
        ));
    }
    if let Some(m) = table.value(metric::MEMORY_PERCENT_USED) {
        out.push((
            metric::MEMORY_PERCENT_USED.into(),
            "memory".into(),
            m,
            t.memory_warn,
            t.memory_warn_clear,
        ));
    }
    for (name, s) in table.group("disk") {
        if let Some(mount) = metric::disk_percent_used_mount(name) {
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

    /// One sample's verdict: the load level after it (from the per-core 1-minute load) and
    /// the alerts to publish — a load level change worth an event first, then the threshold
    /// crossings. Until the table has the load and a CPU figure (the first sample has no CPU
    /// rates yet) the level stays and nothing is checked.
    pub fn on_sample(
        &mut self,
        level: Level,
        table: &MetricTable,
        cores: usize,
        t: &Thresholds,
    ) -> (Level, Vec<Alert>) {
        let (Some(load), Some(_)) = (
            table.value(metric::LOAD_SHORTTERM),
            table.value(metric::CPU_IDLE),
        ) else {
            return (level, vec![]);
        };
        let per_core = load / cores.max(1) as f64;
        let next = next_level(level, per_core, t);
        let mut alerts = Vec::new();
        if next != level {
            tracing::info!(from = ?level, to = ?next, per_core, "Load level changed.");
            alerts.extend(load_alert(level, next, per_core, t));
        }
        alerts.extend(self.check(table, t));
        (next, alerts)
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
        metric: metric::LOAD_SHORTTERM.into(),
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
    fn a_sample_moves_the_level_and_raises_alerts() {
        let t = Thresholds::default();
        let mut a = Alerts::default();
        // No CPU figure yet (first sample): nothing decided even at a high load.
        let mut m = MetricTable::default();
        m.record(0.0, vec![(metric::LOAD_SHORTTERM.into(), Unit::Load, 9.0)]);
        assert_eq!(
            a.on_sample(Level::Starting, &m, 2, &t),
            (Level::Starting, vec![])
        );
        // 2.2 on two cores is 1.1 per core: busy; the disk is over its level as well.
        let mut m = table(95.0, 1.0);
        m.record(
            1.0,
            vec![
                (metric::LOAD_SHORTTERM.into(), Unit::Load, 2.2),
                (metric::CPU_IDLE.into(), Unit::Percent, 90.0),
                ("df-root.percent.used".into(), Unit::Percent, 95.0),
            ],
        );
        let (level, alerts) = a.on_sample(Level::Normal, &m, 2, &t);
        assert_eq!(level, Level::Busy);
        let got: Vec<_> = alerts
            .iter()
            .map(|a| (a.metric.as_str(), a.severity))
            .collect();
        assert_eq!(
            got,
            [
                ("load.load.shortterm", Severity::Warning),
                ("df-root.percent.used", Severity::Warning)
            ]
        );
        assert!((alerts[0].value - 1.1).abs() < 1e-9, "per-core load");
        // Same level again: no load alert, and the disk stays raised.
        assert_eq!(a.on_sample(Level::Busy, &m, 2, &t), (Level::Busy, vec![]));
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
