//! jabmon hub: aggregates collectors and serves the Leela query language over chat.
//!
//! - [`query`]: the query engine (pure): commands, procs, matching, registrations, replies.
//! - [`config`]: `[hub]` and the common sections.
//! - [`collectors`]: the collector registry and status rules (pure).
//! - [`delivery`]: per-user rate limits, queues, pausing and drop reports (pure).
//! - [`storage`]: registrations on disk or in a private PEP node.
//! - [`commands`]: the hub's ad-hoc commands, one file each.
//! - [`bot`]: the event loop wiring them to the XMPP session.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod bot;
pub mod collectors;
pub mod commands;
pub mod config;
pub mod delivery;
pub mod query;
pub mod storage;

pub use bot::run;
pub use config::Config;
