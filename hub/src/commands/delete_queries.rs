//! `delete-queries`: removes every registration of the caller (like `DELETE FROM leela.xmpp;`).

use minidom::Element;

/// The response, given how many were deleted.
pub fn response(deleted: usize) -> Element {
    super::completed(
        "delete-queries",
        &format!("Deleted {deleted} queries."),
        None,
    )
}
