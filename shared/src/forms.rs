//! XEP-0004 data forms as jabmon sends them: every field has an explicit `type` and a human
//! `label` (docs/protocol.md §5 — Profanity shows no value without a type, `(null)` without a label).
//!
//! WORKAROUND (xmpp-parsers 0.23): `FieldType` omits `type='text-single'` when serialising,
//! since it is the default; [`to_element`] writes it back in.

use minidom::Element;
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType};

/// A field with a type, a label and values.
pub fn field(var: &str, type_: FieldType, label: &str, values: Vec<String>) -> Field {
    let mut f = Field::new(var, type_);
    f.label = Some(label.to_string());
    f.values = values;
    f
}

/// A form of `type_` whose FORM_TYPE is `form_type`, hidden and labelled.
pub fn form(type_: DataFormType, form_type: &str, fields: Vec<Field>) -> DataForm {
    let mut all = Vec::with_capacity(fields.len() + 1);
    all.push(field(
        "FORM_TYPE",
        FieldType::Hidden,
        "Form type",
        vec![form_type.to_string()],
    ));
    all.extend(fields);
    DataForm {
        type_,
        title: None,
        instructions: None,
        fields: all,
    }
}

/// Serialises a form — or anything carrying forms (disco#info results, commands) — with every
/// field's `type` spelled out.
pub fn to_element(value: impl Into<Element>) -> Element {
    let mut el: Element = value.into();
    explicit_types(&mut el);
    el
}

/// Adds `type='text-single'` to every `<field/>` below `el` that lacks a type.
pub fn explicit_types(el: &mut Element) {
    for child in el.children_mut() {
        if child.is("field", xmpp_parsers::ns::DATA_FORMS) && child.attr("type").is_none() {
            child.set_attr(
                minidom::rxml::Namespace::NONE,
                minidom::rxml::NcName::try_from("type").expect("a valid name"),
                "text-single",
            );
        }
        explicit_types(child);
    }
}

/// A `result` form carrying a table as text: a text-multi field `table` with one aligned line
/// per row under a header, then `rows` — one labelled field per row, for clients that show
/// fields one by one. No XEP-0004 `<reported/>`/`<item/>`: Gajim 1.7 stalls on "Executing…"
/// for a result form that has them, and Profanity does not draw them.
pub fn table_form(
    form_type: &str,
    title: &str,
    columns: &[&str],
    cells: &[Vec<String>],
    rows: Vec<Field>,
) -> DataForm {
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, label)| {
            cells
                .iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
                .max(label.chars().count())
        })
        .collect();
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut text = vec![line(columns.to_vec())];
    text.extend(
        cells
            .iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    let mut fields = vec![
        field(
            "count",
            FieldType::TextSingle,
            "Rows",
            vec![cells.len().to_string()],
        ),
        field("table", FieldType::TextMulti, title, text),
    ];
    fields.extend(rows);
    let mut f = form(DataFormType::Result_, form_type, fields);
    f.title = Some(title.to_string());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_text_and_one_field_per_row_without_reported() {
        let cells = vec![
            vec!["web1".to_string(), "alive".to_string()],
            vec!["db2".to_string(), "dead".to_string()],
        ];
        let rows = vec![
            field(
                "web1@x",
                FieldType::TextSingle,
                "web1",
                vec!["alive".into()],
            ),
            field("db2@x", FieldType::TextSingle, "db2", vec!["dead".into()]),
        ];
        let el = to_element(table_form(
            "urn:x",
            "Collectors",
            &["Host", "Status"],
            &cells,
            rows,
        ));
        assert!(el
            .children()
            .all(|c| c.name() != "reported" && c.name() != "item"));
        let table = el
            .children()
            .find(|c| c.attr("var") == Some("table"))
            .unwrap();
        assert_eq!(table.attr("type"), Some("text-multi"));
        let lines: Vec<String> = table.children().map(|v| v.text()).collect();
        assert_eq!(lines, vec!["Host  Status", "web1  alive", "db2   dead"]);
        let vars: Vec<_> = el.children().filter_map(|c| c.attr("var")).collect();
        assert_eq!(vars, ["FORM_TYPE", "count", "table", "web1@x", "db2@x"]);
        assert_eq!(
            el.children().last().unwrap().attr("label"),
            Some("db2"),
            "each row labelled"
        );
    }

    #[test]
    fn every_field_has_type_and_label() {
        let f = form(
            DataFormType::Result_,
            "urn:x",
            vec![field("a", FieldType::TextSingle, "A", vec!["1".into()])],
        );
        let el = to_element(f);
        let fields: Vec<_> = el.children().filter(|c| c.name() == "field").collect();
        assert_eq!(fields.len(), 2);
        for f in fields {
            assert!(f.attr("type").is_some(), "{f:?}");
            assert!(f.attr("label").is_some(), "{f:?}");
        }
        assert_eq!(
            el.children().nth(1).unwrap().attr("type"),
            Some("text-single")
        );
    }
}
