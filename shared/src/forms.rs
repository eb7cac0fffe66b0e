//! XEP-0004 data forms as jabmon sends them: every field has an explicit `type` and a human
//! `label` (contract §5 — Profanity shows no value without a type, `(null)` without a label).
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
    all.push(field("FORM_TYPE", FieldType::Hidden, "Form type", vec![form_type.to_string()]));
    all.extend(fields);
    DataForm { type_, title: None, instructions: None, fields: all }
}

/// Serialises a form with every field's `type` spelled out.
pub fn to_element(form: DataForm) -> Element {
    let mut el: Element = form.into();
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(el.children().nth(1).unwrap().attr("type"), Some("text-single"));
    }
}
