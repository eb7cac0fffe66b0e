//! `stats-reset` (admins): form `groups` (list-multi of the stats groups, default all) →
//! min/max/averages and threshold states of those groups start again.

use jabmon_shared::forms;
use xmpp_parsers::data_forms::{DataForm, FieldType, Option_};
use xmpp_parsers::stanza_error::StanzaError;

use super::{bad_payload, field_name, input_form};

pub const GROUPS_LABEL: &str = "Groups to reset";
use crate::metrics::GROUPS;

pub fn form() -> DataForm {
    let mut f = forms::field(
        "groups",
        FieldType::ListMulti,
        GROUPS_LABEL,
        GROUPS.iter().map(|(g, _)| g.to_string()).collect(),
    );
    f.options = GROUPS
        .iter()
        .map(|(g, t)| Option_ {
            label: Some(t.to_string()),
            value: g.to_string(),
        })
        .collect();
    input_form("Reset statistics", vec![f])
}

/// The chosen groups (all when the field is absent).
pub fn apply(form: &DataForm) -> Result<Vec<String>, StanzaError> {
    let Some(field) = form
        .fields
        .iter()
        .find(|f| f.var.as_deref() == Some("groups"))
    else {
        return Ok(GROUPS.iter().map(|(g, _)| g.to_string()).collect());
    };
    if field.values.is_empty() {
        return Err(bad_payload(&format!(
            "{}: choose at least one group.",
            field_name("groups")
        )));
    }
    let mut out = Vec::new();
    for v in &field.values {
        if !GROUPS.iter().any(|(g, _)| g == v) {
            return Err(bad_payload(&format!(
                "{}: unknown group “{}”.",
                field_name("groups"),
                v.chars().take(64).collect::<String>()
            )));
        }
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    Ok(out)
}
