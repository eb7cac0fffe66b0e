//! The events a command run publishes (pure): every run that does something goes `pending` →
//! `running` → `finished`, one `command` event each (docs/protocol.md §5). A change made on
//! the spot (stats-reset, thresholds) publishes all three at once; `shell` publishes
//! `finished` when its program exits, `reboot` `running` when its delay is over and
//! `finished` when `reboot_command` returns.

use jabmon_shared::payload::CommandState;
use xmpp_parsers::jid::BareJid;

use super::{Effect, Node};
use crate::events::Notice;

/// The events published when a stage with `effect` is accepted, in order.
pub fn opening(effect: &Effect, asker: &BareJid) -> Vec<Notice> {
    let pending = |name: &str| Notice::command(name, CommandState::Pending, asker, None);
    match effect {
        Effect::None => vec![],
        Effect::Shell { command, .. } => {
            vec![pending(&command.name), running(&command.name, asker)]
        }
        Effect::Reboot { .. } => vec![pending(Node::Reboot.name())],
        Effect::ResetStats(groups) => {
            let name = Node::StatsReset.name();
            vec![
                pending(name),
                running(name, asker),
                Notice::stats_reset(asker, groups),
                finished(name, asker, Some(0)),
            ]
        }
        Effect::SetThresholds(_) => {
            let name = Node::Thresholds.name();
            vec![
                pending(name),
                running(name, asker),
                finished(name, asker, Some(0)),
            ]
        }
    }
}

pub fn running(name: &str, asker: &BareJid) -> Notice {
    Notice::command(name, CommandState::Running, asker, None)
}

/// `exit_code` is `None` when the program was killed or never started: published as -1.
pub fn finished(name: &str, asker: &BareJid, exit_code: Option<i32>) -> Notice {
    Notice::command(
        name,
        CommandState::Finished,
        asker,
        Some(exit_code.unwrap_or(-1)),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jabmon_shared::payload::EventKind;

    use super::*;
    use crate::config::{ShellCommand, Thresholds};

    fn ops() -> BareJid {
        BareJid::new("ops@x").unwrap()
    }

    /// (command name, state, exit code) of each command event; `-` for another kind.
    fn runs(notices: &[Notice]) -> Vec<(String, Option<CommandState>, Option<i32>)> {
        notices
            .iter()
            .map(|n| match &n.command {
                Some(c) => (c.name.clone(), Some(c.state), c.exit_code),
                None => (format!("-{}", n.kind), None, None),
            })
            .collect()
    }

    fn run(
        name: &str,
        state: CommandState,
        exit: Option<i32>,
    ) -> (String, Option<CommandState>, Option<i32>) {
        (name.to_string(), Some(state), exit)
    }

    use CommandState::*;

    #[test]
    fn changes_on_the_spot_publish_the_whole_run() {
        let groups = vec!["cpu".to_string(), "disk".to_string()];
        let n = opening(&Effect::ResetStats(groups), &ops());
        assert_eq!(
            runs(&n),
            [
                run("stats-reset", Pending, None),
                run("stats-reset", Running, None),
                ("-stats-reset".into(), None, None),
                run("stats-reset", Finished, Some(0)),
            ]
        );
        assert_eq!(n[2].kind, EventKind::StatsReset);
        assert_eq!(n[2].text, "statistics reset by ops@x: cpu, disk");
        let n = opening(&Effect::SetThresholds(Thresholds::default()), &ops());
        assert_eq!(
            runs(&n),
            [
                run("thresholds", Pending, None),
                run("thresholds", Running, None),
                run("thresholds", Finished, Some(0)),
            ]
        );
    }

    #[test]
    fn background_runs_open_and_finish_later() {
        let command = ShellCommand {
            name: "uptime".into(),
            argv: vec!["uptime".into()],
            timeout: Duration::from_secs(1),
        };
        let shell = Effect::Shell {
            command,
            sessionid: "s".into(),
        };
        assert_eq!(
            runs(&opening(&shell, &ops())),
            [run("uptime", Pending, None), run("uptime", Running, None)]
        );
        let reboot = Effect::Reboot {
            delay_secs: 5,
            reason: String::new(),
        };
        assert_eq!(
            runs(&opening(&reboot, &ops())),
            [run("reboot", Pending, None)]
        );
        assert_eq!(
            runs(&[running("reboot", &ops())]),
            [run("reboot", Running, None)]
        );
        assert_eq!(
            runs(&[
                finished("uptime", &ops(), Some(3)),
                finished("uptime", &ops(), None)
            ]),
            [
                run("uptime", Finished, Some(3)),
                run("uptime", Finished, Some(-1))
            ]
        );
        assert!(opening(&Effect::None, &ops()).is_empty());
    }
}
