//! The hub's ad-hoc commands (XEP-0050), one file each; all complete in one stage.
//! `collectors` and `stats` are for every user; `queries` and `delete-queries` act on the
//! caller's own registrations only.

pub mod collectors;
pub mod delete_queries;
pub mod queries;
pub mod stats;

use jabmon_shared::adhoc::{Command, Note};
use minidom::Element;
use xmpp_parsers::jid::BareJid;

use crate::collectors::Registry;
use crate::counters::Counters;
use crate::delivery::Delivery;
use crate::query::Engine;

/// The hub's commands, in disco order: (node, title).
pub const NODES: [(&str, &str); 4] = [
    ("collectors", "List collectors and their status"),
    ("queries", "List my queries"),
    ("delete-queries", "Delete all my queries"),
    ("stats", "Hub statistics"),
];

/// One of the hub's commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubCommand {
    Collectors,
    Queries,
    DeleteQueries,
    Stats,
}

impl HubCommand {
    /// The command at `node`, if there is one.
    pub fn from_node(node: &str) -> Option<Self> {
        match node {
            "collectors" => Some(HubCommand::Collectors),
            "queries" => Some(HubCommand::Queries),
            "delete-queries" => Some(HubCommand::DeleteQueries),
            "stats" => Some(HubCommand::Stats),
            _ => None,
        }
    }

    /// Whether running it changes the registrations (which are then saved).
    pub fn changes_registrations(self) -> bool {
        self == HubCommand::DeleteQueries
    }
}

/// What a command works on.
pub struct Context<'a> {
    pub engine: &'a mut Engine,
    pub delivery: &'a mut Delivery,
    pub registry: &'a Registry,
    /// Said in the `collectors` note while the server throttles the hub.
    pub throttle_note: Option<String>,
    pub counters: &'a Counters,
    /// Caps lookups waiting or in flight.
    pub caps_pending: usize,
    /// Seconds since the hub started.
    pub uptime: f64,
    /// The caller.
    pub user: &'a BareJid,
    pub now: f64,
}

impl HubCommand {
    /// Runs the command; returns the completed `<command/>`.
    pub fn execute(self, ctx: Context<'_>) -> Element {
        match self {
            HubCommand::Collectors => {
                collectors::execute(ctx.registry, ctx.now, ctx.throttle_note.as_deref())
            }
            HubCommand::Queries => queries::execute(ctx.engine, ctx.user.as_str()),
            HubCommand::DeleteQueries => {
                delete_queries::execute(ctx.engine, ctx.delivery, ctx.user.as_str())
            }
            HubCommand::Stats => {
                let sizes = stats::Sizes {
                    registrations: ctx.engine.len(),
                    dropped: ctx.delivery.dropped_total,
                    caps_pending: ctx.caps_pending,
                    uptime: ctx.uptime,
                };
                stats::execute(ctx.registry, ctx.counters, &sizes)
            }
        }
    }
}

/// A completed response with a note and an optional form element.
pub fn completed(node: &str, note: &str, form: Option<Element>) -> Element {
    let mut c = Command::response(node, None, "completed");
    c.notes.push(Note::info(note));
    let mut el = c.to_element();
    if let Some(f) = form {
        el.append_child(f);
    }
    el
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_node_is_a_command_and_nothing_else_is() {
        for (node, _) in NODES {
            assert!(HubCommand::from_node(node).is_some(), "{node}");
        }
        assert_eq!(HubCommand::from_node("reboot"), None);
        let saving: Vec<&str> = NODES
            .iter()
            .filter(|(n, _)| {
                HubCommand::from_node(n).is_some_and(HubCommand::changes_registrations)
            })
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(saving, ["delete-queries"]);
    }
}
