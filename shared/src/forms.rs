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

/// A `result` form carrying a table twice: as XEP-0004 `<reported/>` + `<item/>` rows (for
/// clients that render tables) and as a text-multi field `table` (for those that do not,
/// like Gajim and Profanity). xmpp-parsers' `DataForm` has no `<reported/>`, so the rows are
/// appended to its element as typed `Field`s.
pub fn table_form(
    form_type: &str,
    title: &str,
    columns: &[(&str, &str)],
    rows: &[Vec<String>],
) -> Element {
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, label))| {
            rows.iter()
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
    let mut text = vec![line(columns.iter().map(|(_, l)| *l).collect())];
    text.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    let mut f = form(
        DataFormType::Result_,
        form_type,
        vec![
            field(
                "count",
                FieldType::TextSingle,
                "Rows",
                vec![rows.len().to_string()],
            ),
            field("table", FieldType::TextMulti, title, text),
        ],
    );
    f.title = Some(title.to_string());
    let mut el = to_element(f);
    let reported = columns
        .iter()
        .map(|(var, label)| Element::from(field(var, FieldType::TextSingle, label, vec![])));
    el.append_child(
        Element::builder("reported", xmpp_parsers::ns::DATA_FORMS)
            .append_all(reported)
            .build(),
    );
    for row in rows {
        let cells = columns.iter().zip(row).map(|((var, _), v)| {
            let mut f = Field::new(var, FieldType::TextSingle);
            f.values = vec![v.clone()];
            Element::from(f)
        });
        el.append_child(
            Element::builder("item", xmpp_parsers::ns::DATA_FORMS)
                .append_all(cells)
                .build(),
        );
    }
    explicit_types(&mut el);
    el
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_rows_twice() {
        let rows = vec![
            vec!["web1".to_string(), "alive".to_string()],
            vec!["db2".to_string(), "dead".to_string()],
        ];
        let el = table_form(
            "urn:x",
            "Collectors",
            &[("host", "Host"), ("status", "Status")],
            &rows,
        );
        assert_eq!(el.children().filter(|c| c.name() == "item").count(), 2);
        assert_eq!(
            el.get_child("reported", xmpp_parsers::ns::DATA_FORMS)
                .unwrap()
                .children()
                .count(),
            2
        );
        let table = el
            .children()
            .find(|c| c.attr("var") == Some("table"))
            .unwrap();
        let lines: Vec<String> = table.children().map(|v| v.text()).collect();
        assert_eq!(lines, vec!["Host  Status", "web1  alive", "db2   dead"]);
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
