//! `reboot` (admins): `confirm` (boolean, required), `delay` (seconds, default 0), `reason` →
//! if confirmed, an event is published and `reboot_command` runs after the delay.

use std::time::Duration;

use jabmon_shared::forms;
use xmpp_parsers::data_forms::{DataForm, FieldType};
use xmpp_parsers::stanza_error::StanzaError;

use super::{bad_payload, field_name, input_form, value};

pub const CONFIRM_LABEL: &str = "Really reboot this host?";
pub const DELAY_LABEL: &str = "Delay (seconds)";
pub const REASON_LABEL: &str = "Reason";
use crate::config::ShellCommand;

/// Longest accepted delay: a day.
pub const MAX_DELAY: u64 = 86_400;

/// How long `reboot_command` may run before it is killed (it normally returns at once, or
/// never as the host goes down).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// `reboot_command` (`argv`) as a run of its own.
pub fn command(argv: Vec<String>) -> ShellCommand {
    ShellCommand {
        name: super::Node::Reboot.name().into(),
        argv,
        timeout: COMMAND_TIMEOUT,
    }
}

pub fn form() -> DataForm {
    let mut confirm = forms::field(
        "confirm",
        FieldType::Boolean,
        CONFIRM_LABEL,
        vec!["0".into()],
    );
    confirm.required = true;
    input_form(
        "Reboot",
        vec![
            confirm,
            forms::field(
                "delay",
                FieldType::TextSingle,
                DELAY_LABEL,
                vec!["0".into()],
            ),
            forms::field("reason", FieldType::TextSingle, REASON_LABEL, vec![]),
        ],
    )
}

/// `Some((delay, reason))` when confirmed, `None` when not.
pub fn apply(form: &DataForm) -> Result<Option<(u64, String)>, StanzaError> {
    let confirm = match value(form, "confirm")? {
        Some("1") | Some("true") => true,
        Some("0") | Some("false") => false,
        None => {
            return Err(bad_payload(&format!(
                "{} is required.",
                field_name("confirm")
            )))
        }
        Some(_) => {
            return Err(bad_payload(&format!(
                "{} must be yes or no.",
                field_name("confirm")
            )))
        }
    };
    let delay = match value(form, "delay")?.map(str::trim) {
        None | Some("") => 0,
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|d| *d <= MAX_DELAY)
            .ok_or_else(|| {
                bad_payload(&format!(
                    "{} must be whole seconds from 0 to {MAX_DELAY}.",
                    field_name("delay")
                ))
            })?,
    };
    let reason = value(form, "reason")?.unwrap_or("").to_string();
    Ok(confirm.then_some((delay, reason)))
}
