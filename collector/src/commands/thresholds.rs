//! `thresholds` (admins): a form pre-filled with the current thresholds → validated (numbers,
//! clear < warn) and applied; fields left out keep their value.

use jabmon_shared::forms;
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType};
use xmpp_parsers::stanza_error::StanzaError;

use super::{bad_payload, input_form, value};
use crate::config::{ThresholdField, Thresholds, THRESHOLD_FIELDS};

fn fields(t: &Thresholds) -> Vec<Field> {
    THRESHOLD_FIELDS
        .iter()
        .map(|f| {
            forms::field(
                f.name,
                FieldType::TextSingle,
                f.label,
                vec![f.get(t).to_string()],
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

/// A field as people see it in the form: its label, quoted.
fn quoted(f: &ThresholdField) -> String {
    format!("“{}”", f.label)
}

/// Validates and applies a submitted form. A refusal names the field by its label, as the
/// form shows it (`“CPU busy % warning at” must be a number.`).
pub fn apply(form: &DataForm, current: &Thresholds) -> Result<Thresholds, StanzaError> {
    let mut t = *current;
    for f in &THRESHOLD_FIELDS {
        if let Some(text) = value(form, f.name)? {
            let v: f64 = text.trim().parse().map_err(|_| {
                bad_payload(&format!("{} must be a number (got “{text}”).", quoted(f)))
            })?;
            f.set(&mut t, v);
        }
    }
    if let Some((_, problem)) = t.problems_naming(quoted).into_iter().next() {
        return Err(bad_payload(&format!("{problem}.")));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submit(fields: &[(&str, &str)]) -> DataForm {
        DataForm {
            type_: DataFormType::Submit,
            title: None,
            instructions: None,
            fields: fields
                .iter()
                .map(|(k, v)| Field::text_single(k, v))
                .collect(),
        }
    }

    #[test]
    fn form_shows_every_threshold_with_its_value() {
        let t = Thresholds {
            disk_warn_clear: 77.0,
            ..Default::default()
        };
        let f = form(&t);
        let vars: Vec<_> = f.fields.iter().filter_map(|f| f.var.as_deref()).collect();
        assert_eq!(vars, THRESHOLD_FIELDS.map(|f| f.name));
        let last = f.fields.last().unwrap();
        assert_eq!(last.var.as_deref(), Some("disk_warn_clear"));
        assert_eq!(last.values, ["77"]);
    }

    #[test]
    fn apply_changes_the_named_field_only() {
        let t = Thresholds::default();
        let got = apply(&submit(&[("memory_warn", " 95 ")]), &t).unwrap();
        assert_eq!(
            got,
            Thresholds {
                memory_warn: 95.0,
                ..t
            }
        );
        let e = apply(&submit(&[("load_busy", "high")]), &t).unwrap_err();
        assert_eq!(
            e.texts.values().next().unwrap(),
            "“Per-core load: busy (away) at” must be a number (got “high”)."
        );
        let e = apply(&submit(&[("cpu_warn", "50"), ("cpu_warn_clear", "60")]), &t).unwrap_err();
        assert_eq!(
            e.texts.values().next().unwrap(),
            "“CPU busy % warning clears below” (60) must be below “CPU busy % warning at” (50)."
        );
        // Unknown fields are not thresholds: ignored, nothing else written.
        assert_eq!(apply(&submit(&[("disk_warn_clera", "1")]), &t).unwrap(), t);
    }
}
