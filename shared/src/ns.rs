//! jabmon's namespaces (docs/protocol.md §4).

/// Stats payload, PEP node name, and a collector's disco feature.
pub const STATS: &str = "urn:jabmon:stats:0";
/// Event payload and PEP node name.
pub const EVENTS: &str = "urn:jabmon:events:0";
/// The hub's PEP node of collector status changes.
pub const COLLECTORS: &str = "urn:jabmon:collectors:0";
/// FORM_TYPE of the host-information form in a collector's disco#info.
pub const HOST: &str = "urn:jabmon:host:0";
/// The `node` of jabmon's XEP-0115 `<c/>`.
pub const CAPS_NODE: &str = "urn:jabmon";
