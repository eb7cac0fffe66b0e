//! `shell` (admins): form `command` (list-single of the configured `[[commands.shell]]` names)
//! → runs that argv — never through a shell, no user text in it — in its own process group
//! with its timeout, killing the whole group on expiry; completed with `exit_code`, `stdout`,
//! `stderr` (each capped at 64 KiB) and `duration`. It runs in its own task: the bot keeps
//! serving while it does.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jabmon_shared::adhoc::Command;
use jabmon_shared::forms;
use tokio::io::AsyncReadExt;
use xmpp_parsers::data_forms::{DataForm, DataFormType, FieldType, Option_};
use xmpp_parsers::stanza_error::StanzaError;

use super::{bad_payload, completed, field_name, input_form, value, Node};

pub const COMMAND_LABEL: &str = "Command";
use crate::config::ShellCommand;

/// Output kept per stream.
pub const OUTPUT_CAP: usize = 64 * 1024;

pub fn form(commands: &[ShellCommand]) -> DataForm {
    let first = commands
        .first()
        .map(|c| vec![c.name.clone()])
        .unwrap_or_default();
    let mut f = forms::field("command", FieldType::ListSingle, COMMAND_LABEL, first);
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
    let name = value(form, "command")?
        .ok_or_else(|| bad_payload(&format!("{} is required.", field_name("command"))))?;
    commands
        .iter()
        .find(|c| c.name == name)
        .cloned()
        .ok_or_else(|| {
            bad_payload(&format!(
                "{}: not one of the configured commands.",
                field_name("command")
            ))
        })
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// `None` when killed (timeout or signal).
    pub exit_code: Option<i32>,
    /// Something of the command's process group was still running at the timeout and was
    /// killed (the program itself, or only what it started).
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    pub duration: Duration,
    /// Set when the program could not be started.
    pub error: Option<String>,
}

/// What a reader kept of one stream so far: shared, so that whatever was read is there even
/// when the stream never ends (a process outside the group still holds the pipe).
type Kept = Arc<Mutex<(Vec<u8>, bool)>>;

async fn read_capped<R: tokio::io::AsyncRead + Unpin>(mut r: R, kept: Kept) {
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let Ok(mut k) = kept.lock() else { break };
                let room = OUTPUT_CAP.saturating_sub(k.0.len());
                k.0.extend_from_slice(&buf[..n.min(room)]);
                k.1 |= n > room;
            }
        }
    }
}

fn text(kept: &Kept) -> String {
    let Ok(k) = kept.lock() else {
        return String::new();
    };
    let mut s = String::from_utf8_lossy(&k.0).into_owned();
    if k.1 {
        s.push_str("\n[output truncated at 64 KiB]");
    }
    s
}

/// How long the output may take to end once the group was killed.
const AFTER_KILL: Duration = Duration::from_secs(1);

/// Kills every process of group `pgid` with SIGKILL, through the `kill` program (the crate
/// forbids `unsafe`, so no `kill(2)` here).
async fn kill_group(pgid: u32) {
    let killed = tokio::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    if !killed.is_ok_and(|s| s.success()) {
        tracing::debug!(
            pgid,
            "kill -KILL of the process group failed (already gone?)."
        );
    }
}

/// Runs `cmd` to completion or timeout, in a process group of its own: at the timeout the whole
/// group is killed — the program and whatever it started that is still running, which may
/// hold the output pipes after the program itself exited — and what was read so far is
/// returned. Output beyond the cap is read and dropped, so the child never blocks on a full
/// pipe.
pub async fn run(cmd: &ShellCommand) -> Outcome {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + cmd.timeout;
    let spawned = tokio::process::Command::new(&cmd.argv[0])
        .args(&cmd.argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
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
    // The group's id is the child's pid (process_group(0)); `None` only once it was reaped.
    let pgid = child.id();
    let (out, err) = (Kept::default(), Kept::default());
    let mut readers = tokio::task::JoinSet::new();
    readers.spawn(read_capped(
        child.stdout.take().expect("piped stdout"),
        out.clone(),
    ));
    readers.spawn(read_capped(
        child.stderr.take().expect("piped stderr"),
        err.clone(),
    ));
    let waited = tokio::time::timeout_at(deadline, child.wait()).await;
    let exit_code = match &waited {
        Ok(Ok(status)) => status.code(),
        Ok(Err(_)) | Err(_) => None,
    };
    // The output ends when the last process holding the pipes does: by the deadline, or the
    // group is killed.
    let output_ended = waited.is_ok()
        && tokio::time::timeout_at(deadline, async {
            while readers.join_next().await.is_some() {}
        })
        .await
        .is_ok();
    let timed_out = !output_ended;
    if timed_out {
        if let Some(pgid) = pgid {
            kill_group(pgid).await;
        }
        let _ = child.start_kill();
        let _ = tokio::time::timeout(AFTER_KILL, child.wait()).await;
        let after_kill = tokio::time::timeout(AFTER_KILL, async {
            while readers.join_next().await.is_some() {}
        })
        .await;
        if after_kill.is_err() {
            tracing::warn!(command = %cmd.name, "Output still open after killing the command's process group (a process left the group); returning what was read.");
            readers.abort_all();
        }
    }
    Outcome {
        exit_code,
        timed_out,
        stdout: text(&out),
        stderr: text(&err),
        duration: started.elapsed(),
        error: None,
    }
}

/// The final response for a finished run.
pub fn completed_response(cmd: &ShellCommand, sessionid: String, o: &Outcome) -> Command {
    let note = match (&o.error, o.timed_out, o.exit_code) {
        (Some(e), _, _) => e.clone(),
        (None, true, Some(code)) => format!(
            "{} exited with code {code}, but what it started was still running at its {:?} \
             timeout and was killed.",
            cmd.name, cmd.timeout
        ),
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
    async fn timeout_kills_what_the_command_started_and_keeps_its_output() {
        let o = run(&cmd(&["sh", "-c", "echo before; sleep 30 & sleep 30"], 300)).await;
        assert!(o.timed_out);
        assert_eq!(o.exit_code, None);
        assert_eq!(o.stdout, "before\n");
        assert!(o.duration < Duration::from_secs(2), "{:?}", o.duration);
    }

    #[tokio::test]
    async fn a_background_process_holding_the_output_is_killed_at_the_timeout() {
        let o = run(&cmd(&["sh", "-c", "echo out; sleep 30 &"], 300)).await;
        assert!(o.timed_out, "the program exited, its child held stdout");
        assert_eq!(o.exit_code, Some(0));
        assert_eq!(o.stdout, "out\n");
        assert!(o.duration < Duration::from_secs(2), "{:?}", o.duration);
        let c = cmd(&["sh"], 300);
        let note = completed_response(&c, "s".into(), &o).notes[0].text.clone();
        assert!(
            note.contains("still running") && note.contains("killed"),
            "{note}"
        );
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
