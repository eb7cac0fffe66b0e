//! `shell` (admins): form `command` (list-single of the configured `[[commands.shell]]` names)
//! → runs that argv — never through a shell, no user text in it — with its timeout, killing it
//! on expiry; completed with `exit_code`, `stdout`, `stderr` (each capped at 64 KiB) and
//! `duration`. It runs in its own task: the bot keeps serving while it does.

use std::process::Stdio;
use std::time::{Duration, Instant};

use jabmon_shared::adhoc::Command;
use jabmon_shared::forms;
use tokio::io::AsyncReadExt;
use xmpp_parsers::data_forms::{DataForm, DataFormType, FieldType, Option_};
use xmpp_parsers::stanza_error::StanzaError;

use super::{bad_payload, completed, input_form, value, Node};
use crate::config::ShellCommand;

/// Output kept per stream.
pub const OUTPUT_CAP: usize = 64 * 1024;

pub fn form(commands: &[ShellCommand]) -> DataForm {
    let first = commands
        .first()
        .map(|c| vec![c.name.clone()])
        .unwrap_or_default();
    let mut f = forms::field("command", FieldType::ListSingle, "Command", first);
    f.required = true;
    f.options = commands
        .iter()
        .map(|c| Option_ {
            label: Some(format!("{} ({})", c.name, c.argv.join(" "))),
            value: c.name.clone(),
        })
        .collect();
    input_form("Run a command", vec![f])
}

pub fn apply(form: &DataForm, commands: &[ShellCommand]) -> Result<ShellCommand, StanzaError> {
    let name =
        value(form, "command")?.ok_or_else(|| bad_payload("Field 'command' is required."))?;
    commands
        .iter()
        .find(|c| c.name == name)
        .cloned()
        .ok_or_else(|| bad_payload("Field 'command': not one of the configured commands."))
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// `None` when killed (timeout or signal).
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    pub duration: Duration,
    /// Set when the program could not be started.
    pub error: Option<String>,
}

async fn read_capped<R: tokio::io::AsyncRead + Unpin>(mut r: R) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    let mut truncated = false;
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = OUTPUT_CAP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                truncated |= n > room;
            }
        }
    }
    (kept, truncated)
}

fn text((bytes, truncated): (Vec<u8>, bool)) -> String {
    let mut s = String::from_utf8_lossy(&bytes).into_owned();
    if truncated {
        s.push_str("\n[output truncated at 64 KiB]");
    }
    s
}

/// Runs `cmd` to completion or timeout. Output beyond the cap is read and dropped, so the
/// child never blocks on a full pipe.
pub async fn run(cmd: &ShellCommand) -> Outcome {
    let started = Instant::now();
    let spawned = tokio::process::Command::new(&cmd.argv[0])
        .args(&cmd.argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
                exit_code: None,
                timed_out: false,
                stdout: String::new(),
                stderr: String::new(),
                duration: started.elapsed(),
                error: Some(format!("could not start {}: {e}", cmd.argv[0])),
            }
        }
    };
    let out = tokio::spawn(read_capped(child.stdout.take().expect("piped stdout")));
    let err = tokio::spawn(read_capped(child.stderr.take().expect("piped stderr")));
    let (exit_code, timed_out) = match tokio::time::timeout(cmd.timeout, child.wait()).await {
        Ok(Ok(status)) => (status.code(), false),
        Ok(Err(_)) => (None, false),
        Err(_) => {
            let _ = child.kill().await;
            (None, true)
        }
    };
    let stdout = out.await.map(text).unwrap_or_default();
    let stderr = err.await.map(text).unwrap_or_default();
    Outcome {
        exit_code,
        timed_out,
        stdout,
        stderr,
        duration: started.elapsed(),
        error: None,
    }
}

/// The final response for a finished run.
pub fn completed_response(cmd: &ShellCommand, sessionid: String, o: &Outcome) -> Command {
    let note = match (&o.error, o.timed_out, o.exit_code) {
        (Some(e), _, _) => e.clone(),
        (None, true, _) => format!(
            "{} was killed after its {:?} timeout.",
            cmd.name, cmd.timeout
        ),
        (None, false, Some(code)) => format!(
            "{} exited with code {code} in {:.2} s.",
            cmd.name,
            o.duration.as_secs_f64()
        ),
        (None, false, None) => format!("{} was killed by a signal.", cmd.name),
    };
    let exit = o
        .exit_code
        .map(|c| c.to_string())
        .unwrap_or_else(|| "-1".into());
    let multi = |s: &str| s.lines().map(str::to_string).collect::<Vec<_>>();
    let form = DataForm {
        type_: DataFormType::Result_,
        title: Some(format!("{} result", cmd.name)),
        instructions: None,
        fields: vec![
            forms::field(
                "exit_code",
                FieldType::TextSingle,
                "Exit code (-1: killed or not started)",
                vec![exit],
            ),
            forms::field(
                "timed_out",
                FieldType::Boolean,
                "Killed on timeout",
                vec![if o.timed_out { "1" } else { "0" }.into()],
            ),
            forms::field(
                "stdout",
                FieldType::TextMulti,
                "Standard output",
                multi(&o.stdout),
            ),
            forms::field(
                "stderr",
                FieldType::TextMulti,
                "Standard error",
                multi(&o.stderr),
            ),
            forms::field(
                "duration",
                FieldType::TextSingle,
                "Duration (s)",
                vec![format!("{:.3}", o.duration.as_secs_f64())],
            ),
        ],
    };
    completed(Node::Shell, Some(sessionid), &note, Some(form))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(argv: &[&str], timeout_ms: u64) -> ShellCommand {
        ShellCommand {
            name: "t".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    #[tokio::test]
    async fn runs_argv_and_reports() {
        let o = run(&cmd(&["echo", "hello; rm -rf /"], 5000)).await;
        assert_eq!(o.exit_code, Some(0));
        assert_eq!(o.stdout, "hello; rm -rf /\n", "argv, not a shell");
        let o = run(&cmd(&["sh", "-c", "echo oops >&2; exit 3"], 5000)).await;
        assert_eq!((o.exit_code, o.stderr.as_str()), (Some(3), "oops\n"));
    }

    #[tokio::test]
    async fn timeout_kills() {
        let o = run(&cmd(&["sleep", "30"], 200)).await;
        assert!(o.timed_out);
        assert_eq!(o.exit_code, None);
        assert!(o.duration < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn output_is_capped_without_blocking_the_child() {
        let o = run(&cmd(&["head", "-c", "1000000", "/dev/zero"], 10_000)).await;
        assert_eq!(o.exit_code, Some(0));
        assert!(o.stdout.len() <= OUTPUT_CAP + 64);
        assert!(o.stdout.ends_with("[output truncated at 64 KiB]"));
    }

    #[tokio::test]
    async fn missing_program_is_reported() {
        let o = run(&cmd(&["/nonexistent/prog"], 1000)).await;
        assert!(o.error.unwrap().contains("could not start"));
    }
}
