//! jabmon-collector: one XMPP bot per monitored host.
//!
//! - [`config`]: `[collector]`, `[thresholds]` (one table of all thresholds),
//!   `[[commands.shell]]` and validation.
//! - [`sample`]: reading the host (/proc parsers in `sample::procfs`, interface counters from
//!   `/proc/net/dev`, sysinfo for filesystems), counters into rates.
//! - [`metrics`]: the live metric table — values, 1/5/15-min averages, min/max since reset.
//! - [`presence`]: load → available/away/dnd with hysteresis, status text, pacing, answers to
//!   subscription requests.
//! - [`alerts`]: threshold crossings with hysteresis and load level alerts.
//! - [`events`]: what goes on the events node, and reboot detection at start.
//! - [`pep`]: publishing stats and events, backoff and the publish-options fallback.
//! - [`disco`]: what disco#info / disco#items answer, and who may see what.
//! - [`commands`]: the XEP-0050 commands, one file each, and the events of a command run.
//! - [`chat`]: the one-line answer to a chat message.
//! - [`monitor`]: the state between stanzas, tying the pure parts together.
//! - [`work`]: shell runs, the reboot sequence and awaited answers, away from the main task.
//! - [`bot`]: the event loop: reads a stanza or a timer, asks the pure parts, sends what they
//!   return.
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
pub mod work;

pub use bot::run;
pub use config::Config;
