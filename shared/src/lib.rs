//! jabmon's shared crate: everything both bots need.
//!
//! - [`config`]: loading TOML + `JABMON_SECTION__KEY` overrides, common sections, validation.
//! - [`acl`]: JID / `@domain` access lists.
//! - [`logging`]: tracing set-up (with the `log` bridge).
//! - [`session`]: the XMPP session layer (connect, reconnect, IQ routing, ping, version).
//! - [`caps`]: XEP-0115 entity capabilities.
//! - [`forms`]: XEP-0004 field helpers (every field typed and labelled).
//! - [`metric`]: metric naming rules.
//! - [`adhoc`]: XEP-0050 command elements.
//! - [`payload`]: the `urn:jabmon:stats:0` and `urn:jabmon:events:0` payloads.
//! - [`pep`]: XEP-0163 publish requests with publish-options.
#![forbid(unsafe_code)]

pub mod acl;
pub mod adhoc;
pub mod caps;
pub mod config;
pub mod forms;
pub mod logging;
pub mod metric;
pub mod ns;
pub mod payload;
pub mod pep;
pub mod session;

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("a SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
