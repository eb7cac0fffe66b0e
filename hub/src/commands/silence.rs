//! `silence` (the hub's users and admins): a form — matcher, duration, comment — that sets a
//! silence as `silence 2h web1.* comment` does in chat (docs/alerts.md, "Ack and silence").
//! Two stages: the form with the silences in force, then the submitted form, validated with
//! the chat command's own checks; a refusal names the field by its label and the form can be
//! submitted again in the same session.

use std::collections::HashMap;

use jabmon_shared::adhoc::{self, Actions, Command, Note};
use jabmon_shared::forms;
use xmpp_parsers::data_forms::{DataForm, DataFormType, FieldType};
use xmpp_parsers::jid::BareJid;
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

use crate::alerts::chat::{check_comment, check_matcher, silence_duration};

/// The command's node.
pub const NODE: &str = "silence";
/// FORM_TYPE of the form.
pub const FORM_TYPE: &str = "urn:jabmon:hub:silence:0";
/// Duration the form offers.
pub const DEFAULT_DURATION: &str = "2h";
/// A form left unanswered this long (seconds) is forgotten.
pub const FORM_IDLE_SECS: f64 = 600.0;
/// Forms one user may have open at once.
pub const FORMS_PER_USER: usize = 5;

const MATCHER: (&str, &str) = ("matcher", "Alerts to silence (series or rule, * and ?)");
const DURATION: (&str, &str) = ("duration", "For how long (30m, 2h, 1d)");
const COMMENT: (&str, &str) = ("comment", "Comment (optional)");

/// A valid submission.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    pub secs: f64,
    pub matcher: String,
    pub comment: String,
}

/// Forms handed out and not answered yet: session id → (user, when handed out).
#[derive(Debug, Default)]
pub struct OpenForms {
    open: HashMap<String, (BareJid, f64)>,
    handed_out: u64,
}

impl OpenForms {
    /// A new session for `user`, or `resource-constraint` when they have too many open.
    pub fn open(&mut self, user: &BareJid, now: f64) -> Result<String, StanzaError> {
        self.open.retain(|_, (_, at)| now - *at < FORM_IDLE_SECS);
        if self.open.values().filter(|(u, _)| u == user).count() >= FORMS_PER_USER {
            return Err(error(
                DefinedCondition::ResourceConstraint,
                None,
                "Too many silence forms open; submit or cancel one.",
            ));
        }
        self.handed_out += 1;
        let id = format!("{NODE}-{}-{}", self.handed_out, (now * 1e3) as u64);
        self.open.insert(id.clone(), (user.clone(), now));
        Ok(id)
    }

    /// Whether `id` is a form handed to `user` and not yet expired.
    pub fn is_open(&self, id: &str, user: &BareJid, now: f64) -> bool {
        self.open
            .get(id)
            .is_some_and(|(u, at)| u == user && now - at < FORM_IDLE_SECS)
    }

    /// Forgets `id` (answered or canceled).
    pub fn close(&mut self, id: &str) {
        self.open.remove(id);
    }
}

/// The first stage: the form, with the silences in force (`silences`) shown above it.
pub fn form_stage(sessionid: String, silences: &str) -> Command {
    let mut form = forms::form(
        DataFormType::Form,
        FORM_TYPE,
        vec![
            forms::field(MATCHER.0, FieldType::TextSingle, MATCHER.1, vec![]),
            forms::field(
                DURATION.0,
                FieldType::TextSingle,
                DURATION.1,
                vec![DEFAULT_DURATION.into()],
            ),
            forms::field(COMMENT.0, FieldType::TextSingle, COMMENT.1, vec![]),
        ],
    );
    form.title = Some("Silence alerts".into());
    form.instructions = Some(format!(
        "Nothing is told about matching alerts until the silence ends (web1.* silences a \
         host, cpu-high a rule). In force now:\n{silences}"
    ));
    if let Some(matcher) = form.fields.get_mut(1) {
        matcher.required = true;
    }
    let mut c = Command::response(NODE, Some(sessionid), "executing");
    c.actions = Some(Actions {
        execute: Some("complete".into()),
        complete: true,
        ..Default::default()
    });
    c.form = Some(form);
    c
}

/// Reads a submitted form. A refusal names the field by its label.
pub fn read(form: Option<&DataForm>) -> Result<Submitted, StanzaError> {
    let Some(form) = form.filter(|f| f.type_ == DataFormType::Submit) else {
        return Err(bad_payload("Submit the command's form."));
    };
    let value = |(var, label): (&str, &str)| -> Result<String, StanzaError> {
        match form.fields.iter().find(|f| f.var.as_deref() == Some(var)) {
            None => Ok(String::new()),
            Some(f) => match f.values.as_slice() {
                [] => Ok(String::new()),
                [v] => Ok(v.trim().to_owned()),
                _ => Err(bad_payload(&format!("“{label}” takes one value."))),
            },
        }
    };
    let matcher = value(MATCHER)?;
    check_matcher(&matcher).map_err(named(MATCHER.1))?;
    let duration = value(DURATION)?;
    let duration = if duration.is_empty() {
        DEFAULT_DURATION.to_owned()
    } else {
        duration
    };
    let secs = silence_duration(&duration).map_err(named(DURATION.1))?;
    let comment = value(COMMENT)?;
    check_comment(&comment).map_err(named(COMMENT.1))?;
    Ok(Submitted {
        secs,
        matcher,
        comment,
    })
}

/// A field's problem, named by the field's label.
fn named(label: &'static str) -> impl Fn(String) -> StanzaError {
    move |e| bad_payload(&format!("“{label}”: {e}."))
}

/// The last stage: `completed` with the outcome as its note.
pub fn completed(sessionid: String, text: &str) -> Command {
    let mut c = Command::response(NODE, Some(sessionid), "completed");
    c.notes.push(Note::info(text));
    c
}

/// The answer to `cancel`.
pub fn canceled(sessionid: String) -> Command {
    let mut c = Command::response(NODE, Some(sessionid), "canceled");
    c.notes.push(Note::info("Canceled; no silence was set."));
    c
}

/// `bad-request` + `<bad-sessionid/>`.
pub fn bad_sessionid() -> StanzaError {
    error(
        DefinedCondition::BadRequest,
        Some(adhoc::errors::BAD_SESSIONID),
        "Unknown or expired session: run the command again.",
    )
}

fn bad_payload(text: &str) -> StanzaError {
    error(
        DefinedCondition::BadRequest,
        Some(adhoc::errors::BAD_PAYLOAD),
        text,
    )
}

fn error(condition: DefinedCondition, app: Option<&str>, text: &str) -> StanzaError {
    let mut e = StanzaError::new(
        xmpp_parsers::stanza_error::ErrorType::Modify,
        condition,
        "en",
        text,
    );
    e.other = app.map(|name| minidom::Element::builder(name, adhoc::NS).build());
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_parsers::data_forms::Field;

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

    fn text(e: StanzaError) -> String {
        e.texts.values().next().cloned().unwrap_or_default()
    }

    #[test]
    fn the_form_offers_every_field_with_a_label_and_lists_the_silences() {
        let c = form_stage("s-1".into(), "s1 web1.* for 1 h more, by ops@x");
        assert_eq!(c.status.as_deref(), Some("executing"));
        let form = c.form.unwrap();
        let vars: Vec<_> = form
            .fields
            .iter()
            .filter_map(|f| f.var.as_deref())
            .collect();
        assert_eq!(vars, ["FORM_TYPE", "matcher", "duration", "comment"]);
        assert!(form.fields.iter().all(|f| f.label.is_some()));
        assert!(form.fields[1].required);
        assert_eq!(form.fields[2].values, ["2h"]);
        assert!(form.instructions.unwrap().contains("s1 web1.*"));
    }

    #[test]
    fn a_submission_is_checked_like_the_chat_command() {
        let ok = read(Some(&submit(&[
            ("matcher", " web1.* "),
            ("duration", "30m"),
            ("comment", "kernel update"),
        ])))
        .unwrap();
        assert_eq!(
            ok,
            Submitted {
                secs: 1800.0,
                matcher: "web1.*".into(),
                comment: "kernel update".into()
            }
        );
        let default = read(Some(&submit(&[("matcher", "cpu-high")]))).unwrap();
        assert_eq!(default.secs, 7200.0, "the offered duration when left empty");
        for (fields, want) in [
            (
                vec![("duration", "1h")],
                "“Alerts to silence (series or rule, * and ?)”: a silence needs a matcher such as web1.*.",
            ),
            (
                vec![("matcher", "web1.*"), ("duration", "0")],
                "“For how long (30m, 2h, 1d)”: a silence must last longer than zero.",
            ),
        ] {
            assert_eq!(text(read(Some(&submit(&fields))).unwrap_err()), want);
        }
        let long = "x".repeat(501);
        let e = read(Some(&submit(&[("matcher", "a"), ("comment", &long)]))).unwrap_err();
        assert!(text(e).starts_with("“Comment (optional)”: a comment may have at most 500"));
        assert!(read(None).is_err(), "no form");
    }

    #[test]
    fn forms_belong_to_their_user_expire_and_are_bounded() {
        let (ops, eve) = (
            BareJid::new("ops@x").unwrap(),
            BareJid::new("eve@x").unwrap(),
        );
        let mut forms = OpenForms::default();
        let id = forms.open(&ops, 0.0).unwrap();
        assert!(forms.is_open(&id, &ops, 1.0));
        assert!(!forms.is_open(&id, &eve, 1.0), "another user's session");
        assert!(!forms.is_open(&id, &ops, FORM_IDLE_SECS), "expired");
        forms.close(&id);
        assert!(!forms.is_open(&id, &ops, 1.0));
        for _ in 0..FORMS_PER_USER {
            forms.open(&ops, 2.0).unwrap();
        }
        assert!(forms.open(&ops, 2.0).is_err());
        assert!(
            forms.open(&eve, 2.0).is_ok(),
            "others are not limited by ops"
        );
    }
}
