//! `collectors`: every collector with its status, as a table (reported rows + text).

use jabmon_shared::{forms, ns};
use minidom::Element;

use crate::collectors::Registry;

pub fn execute(registry: &Registry, now: f64) -> Element {
    let ago = |t: Option<f64>| {
        t.map(|t| format!("{:.0} s ago", (now - t).max(0.0)))
            .unwrap_or_else(|| "never".into())
    };
    let rows: Vec<Vec<String>> = registry
        .iter()
        .map(|c| {
            vec![
                c.host.clone(),
                c.jid.to_string(),
                c.status.to_string(),
                ago(c.last_seen),
                ago(c.last_sample),
            ]
        })
        .collect();
    let counts = ["alive", "busy", "critical", "dead"]
        .iter()
        .map(|s| {
            format!(
                "{} {s}",
                registry.iter().filter(|c| c.status.as_str() == *s).count()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let form = forms::table_form(
        ns::COLLECTORS,
        "Collectors",
        &[
            ("host", "Host"),
            ("jid", "JID"),
            ("status", "Status"),
            ("last_seen", "Last seen"),
            ("last_sample", "Last sample"),
        ],
        &rows,
    );
    super::completed(
        "collectors",
        &format!("{} collectors: {counts}.", rows.len()),
        Some(form),
    )
}
