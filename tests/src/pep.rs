//! Reading PEP notifications in tests.

use jabmon_shared::payload::{Event, Stats};
use jabmon_shared::session::Incoming;
use minidom::Element;
use xmpp_parsers::pubsub::event::{Event as PubSubEvent, Payload};

/// The item payloads of a PEP notification for `node`, if `e` is one.
pub fn items(e: &Incoming, node: &str) -> Option<Vec<Element>> {
    let Incoming::Message(m) = e else { return None };
    m.payloads.iter().find_map(
        |p| match PubSubEvent::try_from(p.clone()).map(|e| e.payload) {
            Ok(Payload::Items {
                node: n, published, ..
            }) if n.0 == node => Some(published.into_iter().filter_map(|i| i.payload).collect()),
            _ => None,
        },
    )
}

/// The jabmon events in a notification.
pub fn events(e: &Incoming) -> Option<Vec<Event>> {
    let v: Vec<Event> = items(e, jabmon_shared::ns::EVENTS)?
        .into_iter()
        .filter_map(|p| Event::try_from(p).ok())
        .collect();
    (!v.is_empty()).then_some(v)
}

/// The stats items in a notification.
pub fn stats(e: &Incoming) -> Option<Stats> {
    items(e, jabmon_shared::ns::STATS)?
        .into_iter()
        .find_map(|p| Stats::try_from(p).ok())
}
