//! `queries`: the caller's registrations, as a text table (short key and canonical command) and
//! one field per registration (`var` = the full key, labelled by its short key).

use jabmon_shared::forms;
use minidom::Element;
use xmpp_parsers::data_forms::FieldType;

use crate::query::{short_keys, Engine};

pub fn execute(engine: &Engine, user: &str) -> Element {
    let list = engine.list(user);
    let keys: Vec<String> = list.iter().map(|(_, k)| k.clone()).collect();
    let short = short_keys(&keys);
    let cells: Vec<Vec<String>> = list
        .iter()
        .zip(&short)
        .map(|((cmd, _), s)| vec![s.clone(), cmd.clone()])
        .collect();
    let rows = list
        .iter()
        .zip(&short)
        .map(|((cmd, key), s)| forms::field(key, FieldType::TextSingle, s, vec![cmd.clone()]))
        .collect();
    let form = forms::table_form(
        "urn:jabmon:hub:queries:0",
        "My queries",
        &["Key", "Query"],
        &cells,
        rows,
    );
    super::completed(
        "queries",
        &format!("You have {} registered queries.", list.len()),
        Some(forms::to_element(form)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_field_per_query_keyed_by_the_full_key_and_labelled_by_the_short_one() {
        let mut engine = Engine::default();
        engine.handle("u@x", "SELECT id FROM ^a$;");
        engine.handle("v@x", "SELECT id FROM ^b$;");
        let key = engine.list("u@x")[0].1.clone();
        let el = execute(&engine, "u@x");
        let x = el.get_child("x", "jabber:x:data").unwrap();
        assert!(x
            .children()
            .all(|c| c.name() == "field" || c.name() == "title"));
        let row = x.children().find(|c| c.attr("var") == Some(&key)).unwrap();
        assert_eq!(row.attr("label"), Some(&key[..8]));
        assert_eq!(row.children().next().unwrap().text(), "SELECT id FROM ^a$;");
        let table = x
            .children()
            .find(|c| c.attr("var") == Some("table"))
            .unwrap();
        let lines: Vec<String> = table.children().map(|v| v.text()).collect();
        assert_eq!(lines[1], format!("{}  SELECT id FROM ^a$;", &key[..8]));
        assert!(
            !String::from(&el).contains("^b$"),
            "another user's are not shown"
        );
    }
}
