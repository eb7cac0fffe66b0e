//! Alerts for people (pure): rules over the event stream, readable one-line messages to users
//! and MUC rooms, recovery, ack and silence from chat, grouping, flap damping, rate limits,
//! history, and state that survives a restart. The user manual is docs/alerts.md.
//!
//! The bot drives one [`Alerts`] with the hub's clock and performs the [`Action`]s it
//! returns; nothing here does I/O:
//! - every metric event: [`Alerts::on_metric`]; collector events and status changes:
//!   [`collector::from_event`] / [`collector::from_status`] into [`Alerts::on_collector`];
//! - a chat body: [`chat::parse`] (`None`: not an alerting command), then
//!   [`Alerts::on_command`]; a reply or a reaction to one of its messages:
//!   [`Alerts::on_reply`] / [`Alerts::on_reaction`]; a room's stanza id for a message it
//!   sent: [`Alerts::note_stanza_id`];
//! - about every second: [`Alerts::tick`];
//! - on [`Action::Save`]: [`Alerts::save`] (JSON through serde); at start-up
//!   [`Alerts::restore`].
//!
//! Layout: `rule` holds the rule and `[alerting]` config and their validation, `chat` the
//! command parser, `format` the message templates and number/duration printing, `collector`
//! the rule-less alerts, `series` the per-series `for` and flap state, `silence` silences and
//! their globs, `flood` grouping and rate limits, `book` the state machine tying them together.

mod book;
pub mod chat;
pub mod collector;
mod flood;
pub mod format;
pub mod rule;
mod series;
mod silence;

pub use book::{
    Ack, Action, Alerts, HistoryEntry, OpenAlert, Outgoing, SavedAlerts, SavedRule, Sender, Target,
};
pub use chat::{ChatCommand, ChatError};
pub use rule::{validate_rules, AlertingSection, Route, Rule, RuleConfig, RuleSpec, Settings};
pub use silence::{glob, Silence};
