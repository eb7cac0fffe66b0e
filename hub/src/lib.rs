//! jabmon hub: aggregates collectors and serves the Leela query language over chat.
//!
//! - [`query`]: the query engine (pure): commands, procs, matching, registrations, replies.
//! - [`config`]: `[hub]` and the common sections.
//! - [`collectors`]: the collector registry and status rules (pure).
//! - [`counters`]: what the hub counts about its own work, for the `stats` command (pure).
//! - [`delivery`]: per-user rate limits, queues, pausing and drop reports (pure).
//! - [`throttle`]: noticing that the server's rate limit throttles the hub (pure).
//! - [`storage`]: registrations on disk or in a private PEP node.
//! - [`commands`]: the hub's ad-hoc commands, one file each.
//! - [`roster`]: available resources, the caps cache, who is a collector (pure).
//! - [`ingest`]: PEP notifications → metric events, with dedup and the revive rule (pure).
//! - [`restore`]: the start-up restore of registrations and the queries buffered meanwhile (pure).
//! - [`disco`]: the hub's disco views (pure).
//! - [`state`]: the hub's state machine: stanzas and the clock in, actions out (pure).
//! - [`bot`]: the event loop performing those actions on the XMPP session.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod bot;
pub mod collectors;
pub mod commands;
pub mod config;
pub mod counters;
pub mod delivery;
pub mod disco;
pub mod ingest;
pub mod muc;
pub mod query;
pub mod reference;
pub mod restore;
pub mod roster;
pub mod state;
pub mod storage;
pub mod subscriptions;
pub mod throttle;

pub use bot::run;
pub use config::Config;
