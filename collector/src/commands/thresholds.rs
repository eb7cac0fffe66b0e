//! `thresholds` (admins): a form pre-filled with the current thresholds → validated (numbers,
//! clear < warn) and applied; fields left out keep their value.

use jabmon_shared::forms;
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType};
use xmpp_parsers::stanza_error::StanzaError;

use super::{bad_payload, input_form, value};
use crate::config::Thresholds;

/// (field, label, getter/setter index) in form order.
const FIELDS: [(&str, &str); 9] = [
    ("load_busy", "Per-core load: busy (away) at"),
    ("load_busy_clear", "Per-core load: busy clears below"),
    ("load_critical", "Per-core load: critical (dnd) at"),
    ("cpu_warn", "CPU busy % warning at"),
    ("cpu_warn_clear", "CPU busy % warning clears below"),
    ("memory_warn", "Memory used % warning at"),
    ("memory_warn_clear", "Memory used % warning clears below"),
    ("disk_warn", "Disk used % warning at (per mount)"),
    ("disk_warn_clear", "Disk used % warning clears below"),
];

fn slot<'t>(t: &'t mut Thresholds, name: &str) -> &'t mut f64 {
    match name {
        "load_busy" => &mut t.load_busy,
        "load_busy_clear" => &mut t.load_busy_clear,
        "load_critical" => &mut t.load_critical,
        "cpu_warn" => &mut t.cpu_warn,
        "cpu_warn_clear" => &mut t.cpu_warn_clear,
        "memory_warn" => &mut t.memory_warn,
        "memory_warn_clear" => &mut t.memory_warn_clear,
        "disk_warn" => &mut t.disk_warn,
        _ => &mut t.disk_warn_clear,
    }
}

fn fields(t: &Thresholds) -> Vec<Field> {
    let mut t = *t;
    FIELDS
        .iter()
        .map(|(name, label)| {
            forms::field(
                name,
                FieldType::TextSingle,
                label,
                vec![slot(&mut t, name).to_string()],
            )
        })
        .collect()
}

pub fn form(t: &Thresholds) -> DataForm {
    input_form("Thresholds", fields(t))
}

/// The applied set, shown in the completed response.
pub fn result_form(t: &Thresholds) -> DataForm {
    DataForm {
        type_: DataFormType::Result_,
        title: Some("Thresholds now".into()),
        instructions: None,
        fields: fields(t),
    }
}

pub fn apply(form: &DataForm, current: &Thresholds) -> Result<Thresholds, StanzaError> {
    let mut t = *current;
    for (name, _) in FIELDS {
        if let Some(text) = value(form, name)? {
            let v: f64 = text
                .trim()
                .parse()
                .map_err(|_| bad_payload(&format!("Field '{name}' must be a number.")))?;
            *slot(&mut t, name) = v;
        }
    }
    if let Some((field, problem)) = t.problems().into_iter().next() {
        return Err(bad_payload(&format!("Field '{field}': {problem}.")));
    }
    Ok(t)
}
