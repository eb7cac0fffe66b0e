//! The hub's ad-hoc commands (XEP-0050), one file each; all complete in one stage.
//! `collectors` is for every user; `queries` and `delete-queries` act on the caller's own
//! registrations only.

pub mod collectors;
pub mod delete_queries;
pub mod queries;

use jabmon_shared::adhoc::{Command, Note};
use minidom::Element;

/// The hub's commands, in disco order: (node, title).
pub const NODES: [(&str, &str); 3] = [
    ("collectors", "List collectors and their status"),
    ("queries", "List my queries"),
    ("delete-queries", "Delete all my queries"),
];

/// A completed response with a note and an optional form element.
pub fn completed(node: &str, note: &str, form: Option<Element>) -> Element {
    let mut c = Command::response(node, None, "completed");
    c.notes.push(Note::info(note));
    let mut el = c.to_element();
    if let Some(f) = form {
        el.append_child(f);
    }
    el
}
