//! Query engine: the Leela query language and the proc language, pure and fast.
//!
//! The hub drives one [`Engine`]: [`Engine::handle`] answers a request body with a [`Reply`],
//! [`Engine::feed`] runs each metric event through the matching registrations, and
//! [`Engine::tick`] advances `absent` on the hub's clock. No I/O, no tokio, no wall clock.
//!
//! Layout: `command` parses the four commands, `proc` the proc grammar and its canonical
//! printer, `eval` runs pipelines (with `quantile` for `median`/`percentile`), `matcher`
//! compiles regexes and finds the registrations matching a new name, `names` caches what
//! each seen name matched, `registry` keeps the
//! registrations, `key` computes keys, `reply` builds the JSON bodies, `people` the usage text
//! and the one-line text format, `engine` ties them together. The wire format is docs/protocol.md §6; the user manual is `docs/query-language.md`.

mod command;
mod engine;
mod error;
mod eval;
mod key;
mod lex;
mod matcher;
mod names;
mod people;
mod proc;
mod quantile;
mod registry;
mod reply;

pub use command::{parse as parse_statement, Format, Statement};
pub use engine::{Engine, Limits, Output, Saved, Untracked};
pub use error::{ParseError, QueryError};
pub use key::{key, short_keys, MIN_PREFIX};
pub use proc::{parse as parse_proc, Proc};
pub use registry::Registration;
pub use reply::{dropped_message, event_message, Reply, ReplyDebug};
