//! The hub's ad-hoc commands (XEP-0050), one file each. All but `silence` (a form, two
//! stages) complete in one stage. `collectors` and `stats` are for every user; `queries` and
//! `delete-queries` act on the caller's own registrations only; `silence` sets a silence in
//! the alert book as the chat command does.

// A refused stage is answered with the `StanzaError` itself, once per request: boxing it
// would buy nothing.
#![allow(clippy::result_large_err)]

pub mod collectors;
pub mod delete_queries;
pub mod queries;
pub mod silence;
pub mod stats;

use jabmon_shared::adhoc::{Command, Note};
use minidom::Element;
use xmpp_parsers::jid::BareJid;
use xmpp_parsers::stanza_error::StanzaError;

use crate::alerts::{self, Alerts};
use crate::collectors::Registry;
use crate::counters::Counters;
use crate::delivery::Delivery;
use crate::query::Engine;

/// The hub's commands, in disco order: (node, title).
pub const NODES: [(&str, &str); 5] = [
    ("collectors", "List collectors and their status"),
    ("queries", "List my queries"),
    ("delete-queries", "Delete all my queries"),
    (silence::NODE, "Silence alerts"),
    ("stats", "Hub statistics"),
];

/// One of the hub's commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubCommand {
    Collectors,
    Queries,
    DeleteQueries,
    Silence,
    Stats,
}

impl HubCommand {
    /// The command at `node`, if there is one.
    pub fn from_node(node: &str) -> Option<Self> {
        match node {
            "collectors" => Some(HubCommand::Collectors),
            "queries" => Some(HubCommand::Queries),
            "delete-queries" => Some(HubCommand::DeleteQueries),
            silence::NODE => Some(HubCommand::Silence),
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
    /// The request: its session id, action and form (multi-stage commands).
    pub request: &'a Command,
    pub alerts: &'a mut Alerts,
    /// What the alert book decided (saves), for the hub to carry out.
    pub alert_actions: &'a mut Vec<alerts::Action>,
    pub silence_forms: &'a mut silence::OpenForms,
    pub now: f64,
}

impl HubCommand {
    /// Runs the command (one stage of it); returns the `<command/>` to answer with.
    pub fn execute(self, ctx: Context<'_>) -> Result<Element, StanzaError> {
        let element = match self {
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
            HubCommand::Silence => return silence_stage(ctx).map(Command::to_element),
        };
        Ok(element)
    }
}

/// One stage of `silence`: the form for a new session; for a submitted one, the silence set
/// (or a refusal naming the field, the session kept for another try); `cancel` ends it.
fn silence_stage(ctx: Context<'_>) -> Result<Command, StanzaError> {
    let Some(sessionid) = ctx.request.sessionid.clone() else {
        let sessionid = ctx.silence_forms.open(ctx.user, ctx.now)?;
        let listed = ctx.alerts.list_silences(ctx.now);
        return Ok(silence::form_stage(sessionid, &listed));
    };
    if !ctx.silence_forms.is_open(&sessionid, ctx.user, ctx.now) {
        return Err(silence::bad_sessionid());
    }
    if ctx.request.action.as_deref() == Some("cancel") {
        ctx.silence_forms.close(&sessionid);
        return Ok(silence::canceled(sessionid));
    }
    let submitted = silence::read(ctx.request.form.as_ref())?;
    ctx.silence_forms.close(&sessionid);
    let sender = alerts::Sender {
        who: ctx.user.to_string(),
        reply_to: alerts::Target::User(ctx.user.to_string()),
        allowed: true,
        // A silence takes no place under the query limit.
        queries: 0,
    };
    let (text, actions) = ctx.alerts.silence_from_form(
        &sender,
        submitted.secs,
        submitted.matcher,
        submitted.comment,
        ctx.now,
    );
    ctx.alert_actions.extend(actions);
    Ok(silence::completed(sessionid, &text))
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
        assert_eq!(
            HubCommand::from_node(silence::NODE),
            Some(HubCommand::Silence)
        );
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
