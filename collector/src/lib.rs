//! jabmon-collector: one XMPP bot per monitored host.
//!
//! - [`config`]: `[collector]`, `[thresholds]`, `[[commands.shell]]` and validation.
//! - [`sample`]: reading the host (/proc parsers in `sample::procfs`, sysinfo for disks and
//!   interfaces), counters into rates.
//! - [`metrics`]: the live metric table — values, 1/5/15-min averages, min/max since reset.
//! - [`presence`]: load → available/away/dnd with hysteresis, status text, pacing (pure).
//! - [`disco`]: what disco#info / disco#items answer.
//! - [`bot`]: the event loop tying the session, the sampler and the handlers together.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod bot;
pub mod chat;
pub mod commands;
pub mod config;
pub mod disco;
pub mod events;
pub mod metrics;
pub mod monitor;
pub mod pep;
pub mod presence;
pub mod sample;

pub use bot::run;
pub use config::Config;
