//! `delete-queries`: removes every registration of the caller (like `DELETE FROM leela.xmpp;`)
//! and the events still queued for them.

use minidom::Element;

use crate::delivery::Delivery;
use crate::query::Engine;

pub fn execute(engine: &mut Engine, delivery: &mut Delivery, user: &str) -> Element {
    let keys = engine.delete_all(user);
    for k in &keys {
        delivery.forget_key(user, k);
    }
    response(keys.len())
}

/// The response, given how many were deleted.
fn response(deleted: usize) -> Element {
    super::completed(
        "delete-queries",
        &format!("Deleted {deleted} queries."),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn deletes_the_callers_registrations_and_their_queued_events() {
        let mut engine = Engine::default();
        let mut delivery = Delivery::new(10, 10);
        engine.handle("u@x", "SELECT id FROM ^a$;");
        engine.handle("v@x", "SELECT id FROM ^a$;");
        let key: Arc<str> = engine.list("u@x")[0].1.as_str().into();
        delivery.push(&Arc::from("u@x"), &key, "e".into(), 0.0);
        let el = execute(&mut engine, &mut delivery, "u@x");
        assert!(String::from(&el).contains("Deleted 1 queries."));
        assert!(engine.list("u@x").is_empty());
        assert_eq!(engine.list("v@x").len(), 1, "another user's stay");
        assert_eq!(delivery.queued("u@x"), 0);
    }
}
