//! `queries`: the caller's registrations (key and canonical command).

use jabmon_shared::forms;
use minidom::Element;

use crate::query::Engine;

pub fn execute(engine: &Engine, user: &str) -> Element {
    let rows: Vec<Vec<String>> = engine
        .list(user)
        .into_iter()
        .map(|(cmd, key)| vec![key, cmd])
        .collect();
    let form = forms::table_form(
        "urn:jabmon:hub:queries:0",
        "My queries",
        &[("key", "Key"), ("cmd", "Query")],
        &rows,
    );
    super::completed(
        "queries",
        &format!("You have {} registered queries.", rows.len()),
        Some(form),
    )
}
