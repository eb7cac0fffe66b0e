//! XEP-0050 ad-hoc commands (docs/protocol.md §5), one file per command. This module holds what they
//! share: the node list and who may run what, command sessions (one `sessionid` across
//! stages, 5 minutes idle expiry, at most 10 open per asker), form reading with size limits,
//! and the XEP-0050 error conditions. It is pure: effects are returned as [`Effect`] for the
//! bot to carry out.

// A refused stage is answered with the `StanzaError` itself, once per request: boxing it
// would buy nothing.
#![allow(clippy::result_large_err)]

pub mod reboot;
pub mod runs;
pub mod shell;
pub mod stats_reset;
pub mod status;
pub mod thresholds;

use std::collections::HashMap;

use jabmon_shared::acl::Acl;
use jabmon_shared::adhoc::{self, Actions, Command, Note};
use jabmon_shared::session::stanza_error;
use xmpp_parsers::data_forms::{DataForm, DataFormType};
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

use crate::config::{ShellCommand, Thresholds};
use crate::metrics::MetricTable;

/// The collector's commands, in the order `disco#items` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Node {
    Status,
    StatsReset,
    Reboot,
    Shell,
    Thresholds,
}

impl Node {
    pub const ALL: [Node; 5] = [
        Node::Status,
        Node::StatsReset,
        Node::Reboot,
        Node::Shell,
        Node::Thresholds,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Node::Status => "status",
            Node::StatsReset => "stats-reset",
            Node::Reboot => "reboot",
            Node::Shell => "shell",
            Node::Thresholds => "thresholds",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Node::Status => "Show status and all metrics",
            Node::StatsReset => "Reset statistics",
            Node::Reboot => "Reboot the host",
            Node::Shell => "Run a whitelisted command",
            Node::Thresholds => "Edit thresholds",
        }
    }

    pub fn parse(name: &str) -> Option<Node> {
        Node::ALL.into_iter().find(|n| n.name() == name)
    }

    /// Everything but `status` is for admins only.
    pub fn admin_only(self) -> bool {
        self != Node::Status
    }
}

/// Who is asking, as the ACLs see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rights {
    None,
    Subscriber,
    Admin,
}

impl Rights {
    /// What `from` may do: admins everything; our own account and subscribers read and run
    /// `status`; anyone else — and a stanza without `from` (the server) — nothing.
    pub fn of(from: Option<&Jid>, own: &BareJid, subscribers: &Acl, admins: &Acl) -> Rights {
        let Some(from) = from.map(Jid::to_bare) else {
            return Rights::None;
        };
        if admins.allows(&from) {
            Rights::Admin
        } else if &from == own || subscribers.allows(&from) {
            Rights::Subscriber
        } else {
            Rights::None
        }
    }

    pub fn may_run(self, node: Node) -> bool {
        match self {
            Rights::Admin => true,
            Rights::Subscriber => !node.admin_only(),
            Rights::None => false,
        }
    }
}

/// What the bot has to do once a stage is answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    None,
    ResetStats(Vec<String>),
    SetThresholds(Thresholds),
    Reboot {
        delay_secs: u64,
        reason: String,
    },
    /// Run this command; the IQ is answered when it ends (see [`shell::completed_response`]).
    Shell {
        command: ShellCommand,
        sessionid: String,
    },
}

/// Read-only state the commands look at.
pub struct Context<'a> {
    pub table: &'a MetricTable,
    pub thresholds: &'a Thresholds,
    pub shell: &'a [ShellCommand],
    /// The presence summary line.
    pub summary: String,
}

/// Idle command sessions expire after this many seconds.
pub const SESSION_IDLE: f64 = 300.0;
/// Open sessions allowed per asker.
pub const MAX_SESSIONS: usize = 10;
/// Longest accepted form value, and most fields in a submitted form.
pub const MAX_VALUE_LEN: usize = 1024;
pub const MAX_FIELDS: usize = 32;

struct Open {
    node: Node,
    asker: BareJid,
    last_used: f64,
}

/// The open multi-stage sessions.
#[derive(Default)]
pub struct CommandSessions {
    open: HashMap<String, Open>,
    counter: u64,
}

impl CommandSessions {
    fn expire(&mut self, now: f64) {
        self.open.retain(|_, s| now - s.last_used < SESSION_IDLE);
    }

    fn start(&mut self, node: Node, asker: &BareJid, now: f64) -> Result<String, StanzaError> {
        self.expire(now);
        if self.open.values().filter(|s| &s.asker == asker).count() >= MAX_SESSIONS {
            return Err(stanza_error(
                DefinedCondition::ResourceConstraint,
                Some("Too many open command sessions; finish or cancel one."),
            ));
        }
        self.counter += 1;
        let id = format!(
            "{}-{:x}-{}",
            node.name(),
            (now * 1000.0) as u64,
            self.counter
        );
        self.open.insert(
            id.clone(),
            Open {
                node,
                asker: asker.clone(),
                last_used: now,
            },
        );
        Ok(id)
    }

    /// The session's node when `id` is open, belongs to `asker` and is for `node`.
    fn get(&mut self, id: &str, node: Node, asker: &BareJid, now: f64) -> Result<(), StanzaError> {
        self.expire(now);
        match self.open.get_mut(id) {
            Some(s) if &s.asker == asker && s.node == node => {
                s.last_used = now;
                Ok(())
            }
            _ => Err(bad_sessionid()),
        }
    }

    fn end(&mut self, id: &str) {
        self.open.remove(id);
    }

    /// Number of open sessions (for tests and status).
    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

fn app_error(condition: DefinedCondition, app: &str, text: &str) -> StanzaError {
    let mut e = stanza_error(condition, Some(text));
    e.other = Some(minidom::Element::builder(app, adhoc::NS).build());
    e
}

/// `bad-request` + `<bad-sessionid/>`.
pub fn bad_sessionid() -> StanzaError {
    app_error(
        DefinedCondition::BadRequest,
        adhoc::errors::BAD_SESSIONID,
        "Unknown or expired session.",
    )
}

/// `bad-request` + `<bad-payload/>` with a text naming the field.
pub fn bad_payload(text: &str) -> StanzaError {
    app_error(
        DefinedCondition::BadRequest,
        adhoc::errors::BAD_PAYLOAD,
        text,
    )
}

/// How the command forms label `var`, quoted, for error texts: people see labels, not vars.
pub fn field_name(var: &str) -> String {
    let label = match var {
        "confirm" => reboot::CONFIRM_LABEL,
        "delay" => reboot::DELAY_LABEL,
        "reason" => reboot::REASON_LABEL,
        "command" => shell::COMMAND_LABEL,
        "groups" => stats_reset::GROUPS_LABEL,
        other => crate::config::THRESHOLD_FIELDS
            .iter()
            .find(|f| f.name == other)
            .map_or(other, |f| f.label),
    };
    format!("“{label}”")
}

/// The single value of `var` in a submitted form, with limits.
pub fn value<'f>(form: &'f DataForm, var: &str) -> Result<Option<&'f str>, StanzaError> {
    let Some(field) = form.fields.iter().find(|f| f.var.as_deref() == Some(var)) else {
        return Ok(None);
    };
    match field.values.as_slice() {
        [] => Ok(None),
        [v] if v.len() <= MAX_VALUE_LEN => Ok(Some(v.as_str())),
        [_] => Err(bad_payload(&format!(
            "{} is too long (at most {MAX_VALUE_LEN} characters).",
            field_name(var)
        ))),
        _ => Err(bad_payload(&format!(
            "{} takes one value.",
            field_name(var)
        ))),
    }
}

/// A first-stage response: `executing`, with the form and a Complete action.
fn executing(node: Node, sessionid: String, form: DataForm, note: &str) -> Command {
    let mut c = Command::response(node.name(), Some(sessionid), "executing");
    c.actions = Some(Actions {
        execute: Some("complete".into()),
        complete: true,
        ..Default::default()
    });
    c.notes.push(Note::info(note));
    c.form = Some(form);
    c
}

/// A final response: `completed` with a one-line note (and maybe a result form).
pub fn completed(
    node: Node,
    sessionid: Option<String>,
    note: &str,
    form: Option<DataForm>,
) -> Command {
    let mut c = Command::response(node.name(), sessionid, "completed");
    c.notes.push(Note::info(note));
    c.form = form;
    c
}

/// Handles one `<command/>` request. `asker` is `None` when the stanza had no `from` (the
/// server itself): it may run nothing.
pub fn handle(
    sessions: &mut CommandSessions,
    ctx: &Context<'_>,
    asker: Option<&BareJid>,
    rights: Rights,
    request: Command,
    now: f64,
) -> Result<(Command, Effect), StanzaError> {
    let Some(node) = Node::parse(&request.node) else {
        return Err(stanza_error(
            DefinedCondition::ItemNotFound,
            Some("No such command."),
        ));
    };
    let Some(asker) = asker.filter(|_| rights.may_run(node)) else {
        return Err(stanza_error(
            DefinedCondition::Forbidden,
            Some("You may not run this command."),
        ));
    };
    let action = request.action.as_deref().unwrap_or("execute");
    let Some(sessionid) = request.sessionid.clone() else {
        if !matches!(action, "execute" | "complete" | "next") {
            return Err(app_error(
                DefinedCondition::BadRequest,
                adhoc::errors::BAD_ACTION,
                "Nothing to cancel.",
            ));
        }
        return first_stage(sessions, ctx, node, asker, now).map(|c| (c, Effect::None));
    };
    sessions.get(&sessionid, node, asker, now)?;
    if action == "cancel" {
        sessions.end(&sessionid);
        let mut c = Command::response(node.name(), Some(sessionid), "canceled");
        c.notes.push(Note::info("Canceled; nothing was changed."));
        return Ok((c, Effect::None));
    }
    if !matches!(action, "execute" | "complete" | "next") {
        return Err(app_error(
            DefinedCondition::BadRequest,
            adhoc::errors::BAD_ACTION,
            "This command has one stage.",
        ));
    }
    let form = match request.form {
        Some(f) if f.type_ == DataFormType::Submit && f.fields.len() <= MAX_FIELDS => f,
        Some(f) if f.fields.len() > MAX_FIELDS => return Err(bad_payload("Too many fields.")),
        _ => return Err(bad_payload("Submit the command's form (type 'submit').")),
    };
    let result = submitted(ctx, node, sessionid.clone(), &form);
    if result.is_ok() {
        sessions.end(&sessionid);
    }
    result
}

/// The answer to a first stage: `status` completes at once, the others open a session and
/// send their form.
fn first_stage(
    sessions: &mut CommandSessions,
    ctx: &Context<'_>,
    node: Node,
    asker: &BareJid,
    now: f64,
) -> Result<Command, StanzaError> {
    let (form, note) = match node {
        Node::Status => return Ok(status::execute(ctx)),
        Node::Shell if ctx.shell.is_empty() => {
            let note = "No shell commands are configured: add [[commands.shell]] entries to \
                        the collector's configuration.";
            return Ok(completed(node, None, note, None));
        }
        Node::StatsReset => (stats_reset::form(), "Choose the groups to reset."),
        Node::Reboot => (reboot::form(), "Confirm to reboot the host."),
        Node::Shell => (shell::form(ctx.shell), "Choose a command to run."),
        Node::Thresholds => (
            thresholds::form(ctx.thresholds),
            "Edit and submit the thresholds.",
        ),
    };
    Ok(executing(
        node,
        sessions.start(node, asker, now)?,
        form,
        note,
    ))
}

/// The answer to a submitted form in session `sessionid`, and the effect to carry out.
fn submitted(
    ctx: &Context<'_>,
    node: Node,
    sessionid: String,
    form: &DataForm,
) -> Result<(Command, Effect), StanzaError> {
    let sid = Some(sessionid.clone());
    match node {
        // `status` completes in its first stage, so it never has a session to continue.
        Node::Status => Err(bad_sessionid()),
        Node::StatsReset => stats_reset::apply(form).map(|groups| {
            let note = format!("Statistics reset for {}.", groups.join(", "));
            (
                completed(node, sid, &note, None),
                Effect::ResetStats(groups),
            )
        }),
        Node::Reboot => reboot::apply(form).map(|plan| match plan {
            None => (
                completed(node, sid, "Not confirmed: nothing was done.", None),
                Effect::None,
            ),
            Some((delay_secs, reason)) => {
                let note = format!("Reboot scheduled in {delay_secs} s.");
                (
                    completed(node, sid, &note, None),
                    Effect::Reboot { delay_secs, reason },
                )
            }
        }),
        Node::Shell => shell::apply(form, ctx.shell).map(|command| {
            (
                Command::response(node.name(), sid, "executing"),
                Effect::Shell { command, sessionid },
            )
        }),
        Node::Thresholds => thresholds::apply(form, ctx.thresholds).map(|t| {
            let result = thresholds::result_form(&t);
            (
                completed(node, sid, "Thresholds applied.", Some(result)),
                Effect::SetThresholds(t),
            )
        }),
    }
}

/// Builds a `form` form with a title.
pub fn input_form(title: &str, fields: Vec<xmpp_parsers::data_forms::Field>) -> DataForm {
    DataForm {
        type_: DataFormType::Form,
        title: Some(title.to_string()),
        instructions: None,
        fields,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_parsers::data_forms::Field;

    fn ctx<'a>(
        table: &'a MetricTable,
        t: &'a Thresholds,
        shell: &'a [ShellCommand],
    ) -> Context<'a> {
        Context {
            table,
            thresholds: t,
            shell,
            summary: "load 0.1 0.1 0.1 · cpu 1% · mem 2%".into(),
        }
    }

    fn request(
        node: &str,
        sessionid: Option<&str>,
        action: Option<&str>,
        form: Option<DataForm>,
    ) -> Command {
        Command {
            node: node.into(),
            sessionid: sessionid.map(str::to_string),
            action: action.map(str::to_string),
            status: None,
            actions: None,
            notes: vec![],
            form,
        }
    }

    fn submit(fields: &[(&str, &str)]) -> DataForm {
        DataForm {
            type_: DataFormType::Submit,
            title: None,
            instructions: None,
            fields: fields
                .iter()
                .map(|(k, v)| Field::text_single(k, v))
                .collect(),
        }
    }

    fn jid(s: &str) -> BareJid {
        BareJid::new(s).unwrap()
    }

    #[test]
    fn rights_of_a_sender() {
        let list = |e: &str| Acl::parse(&[e.to_string()]).unwrap();
        let (subs, admins) = (list("@example.org"), list("ops@example.org"));
        let own = jid("web1@example.net");
        let of = |from: Option<&str>| {
            let from = from.map(|f| Jid::new(f).unwrap());
            Rights::of(from.as_ref(), &own, &subs, &admins)
        };
        assert_eq!(of(Some("ops@example.org/laptop")), Rights::Admin);
        assert_eq!(of(Some("alice@example.org/phone")), Rights::Subscriber);
        assert_eq!(of(Some("web1@example.net/other")), Rights::Subscriber);
        assert_eq!(of(Some("eve@example.net/x")), Rights::None);
        assert_eq!(of(Some("example.org")), Rights::None, "a domain is no user");
        assert_eq!(of(None), Rights::None);
        assert!(Rights::Subscriber.may_run(Node::Status));
        for n in Node::ALL.into_iter().filter(|n| *n != Node::Status) {
            assert!(
                !Rights::Subscriber.may_run(n) && Rights::Admin.may_run(n),
                "{n:?}"
            );
        }
        assert!(Node::ALL.into_iter().all(|n| !Rights::None.may_run(n)));
    }

    #[test]
    fn rights() {
        let (t, table) = (Thresholds::default(), MetricTable::default());
        let c = ctx(&table, &t, &[]);
        let mut s = CommandSessions::default();
        let u = jid("u@x");
        let e = handle(
            &mut s,
            &c,
            Some(&u),
            Rights::Subscriber,
            request("reboot", None, None, None),
            0.0,
        )
        .unwrap_err();
        assert_eq!(e.defined_condition, DefinedCondition::Forbidden);
        assert!(handle(
            &mut s,
            &c,
            Some(&u),
            Rights::Subscriber,
            request("status", None, None, None),
            0.0
        )
        .is_ok());
        let e = handle(
            &mut s,
            &c,
            None,
            Rights::Admin,
            request("status", None, None, None),
            0.0,
        )
        .unwrap_err();
        assert_eq!(
            e.defined_condition,
            DefinedCondition::Forbidden,
            "no from: never trusted"
        );
        let e = handle(
            &mut s,
            &c,
            Some(&u),
            Rights::Admin,
            request("nope", None, None, None),
            0.0,
        )
        .unwrap_err();
        assert_eq!(e.defined_condition, DefinedCondition::ItemNotFound);
    }

    #[test]
    fn sessions_keep_their_id_expire_and_are_bounded() {
        let (t, table) = (Thresholds::default(), MetricTable::default());
        let c = ctx(&table, &t, &[]);
        let mut s = CommandSessions::default();
        let a = jid("ops@x");
        let (first, _) = handle(
            &mut s,
            &c,
            Some(&a),
            Rights::Admin,
            request("reboot", None, None, None),
            0.0,
        )
        .unwrap();
        let sid = first.sessionid.clone().unwrap();
        // Someone else cannot use it; a made-up one is refused.
        let other = jid("eve@x");
        let e = handle(
            &mut s,
            &c,
            Some(&other),
            Rights::Admin,
            request(
                "reboot",
                Some(&sid),
                None,
                Some(submit(&[("confirm", "false")])),
            ),
            1.0,
        )
        .unwrap_err();
        assert_eq!(e.other.unwrap().name(), "bad-sessionid");
        let (done, effect) = handle(
            &mut s,
            &c,
            Some(&a),
            Rights::Admin,
            request(
                "reboot",
                Some(&sid),
                Some("complete"),
                Some(submit(&[("confirm", "false")])),
            ),
            2.0,
        )
        .unwrap();
        assert_eq!(done.sessionid.as_deref(), Some(sid.as_str()));
        assert_eq!(done.status.as_deref(), Some("completed"));
        assert_eq!(effect, Effect::None);
        assert!(s.is_empty());
        // Expiry after 5 minutes idle.
        let (first, _) = handle(
            &mut s,
            &c,
            Some(&a),
            Rights::Admin,
            request("reboot", None, None, None),
            0.0,
        )
        .unwrap();
        let sid = first.sessionid.unwrap();
        let e = handle(
            &mut s,
            &c,
            Some(&a),
            Rights::Admin,
            request("reboot", Some(&sid), Some("cancel"), None),
            301.0,
        )
        .unwrap_err();
        assert_eq!(e.other.unwrap().name(), "bad-sessionid");
        // At most 10 per asker.
        for i in 0..MAX_SESSIONS {
            handle(
                &mut s,
                &c,
                Some(&a),
                Rights::Admin,
                request("reboot", None, None, None),
                400.0 + i as f64,
            )
            .unwrap();
        }
        let e = handle(
            &mut s,
            &c,
            Some(&a),
            Rights::Admin,
            request("reboot", None, None, None),
            420.0,
        )
        .unwrap_err();
        assert_eq!(e.defined_condition, DefinedCondition::ResourceConstraint);
        assert!(handle(
            &mut s,
            &c,
            Some(&other),
            Rights::Admin,
            request("reboot", None, None, None),
            420.0
        )
        .is_ok());
    }

    #[test]
    fn first_stages() {
        let (t, table) = (Thresholds::default(), MetricTable::default());
        let hello = [ShellCommand {
            name: "hello".into(),
            argv: vec!["echo".into()],
            timeout: std::time::Duration::from_secs(1),
        }];
        let a = jid("ops@x");
        let mut s = CommandSessions::default();
        let mut first = |node: &str, shell: &[ShellCommand]| {
            let c = ctx(&table, &t, shell);
            let (r, e) = handle(
                &mut s,
                &c,
                Some(&a),
                Rights::Admin,
                request(node, None, None, None),
                0.0,
            )
            .unwrap();
            assert_eq!(e, Effect::None, "{node}");
            (r.status.unwrap(), r.sessionid.is_some(), r.form.is_some())
        };
        let completed = ("completed".to_string(), false, true);
        assert_eq!(first("status", &[]), completed);
        let (status, session, form) = first("shell", &[]);
        assert_eq!(
            (status.as_str(), session, form),
            ("completed", false, false),
            "nothing to run"
        );
        for node in ["stats-reset", "reboot", "shell", "thresholds"] {
            assert_eq!(
                first(node, &hello),
                ("executing".to_string(), true, true),
                "{node}"
            );
        }
        assert_eq!(s.len(), 4, "one session per form stage");
    }

    #[test]
    fn cancel_and_bad_payload() {
        let (t, table) = (Thresholds::default(), MetricTable::default());
        let c = ctx(&table, &t, &[]);
        let mut s = CommandSessions::default();
        let a = jid("ops@x");
        let (first, _) = handle(
            &mut s,
            &c,
            Some(&a),
            Rights::Admin,
            request("thresholds", None, None, None),
            0.0,
        )
        .unwrap();
        let sid = first.sessionid.unwrap();
        let e = handle(
            &mut s,
            &c,
            Some(&a),
            Rights::Admin,
            request(
                "thresholds",
                Some(&sid),
                None,
                Some(submit(&[("cpu_warn", "50"), ("cpu_warn_clear", "60")])),
            ),
            1.0,
        )
        .unwrap_err();
        assert_eq!(e.other.as_ref().unwrap().name(), "bad-payload");
        assert!(e
            .texts
            .values()
            .next()
            .unwrap()
            .contains("“CPU busy % warning clears below”"));
        let (c2, _) = handle(
            &mut s,
            &c,
            Some(&a),
            Rights::Admin,
            request("thresholds", Some(&sid), Some("cancel"), None),
            2.0,
        )
        .unwrap();
        assert_eq!(c2.status.as_deref(), Some("canceled"));
    }
}
