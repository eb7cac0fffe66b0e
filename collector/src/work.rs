//! Work the collector does away from its main task — a shell run, the reboot sequence, a
//! PEP answer awaited — and what each sends back to the loop when it ends ([`Done`]).

use std::time::Duration;

use jabmon_shared::session::{IqOutcome, IqRequest};
use tokio::sync::mpsc;
use xmpp_parsers::jid::BareJid;

use crate::commands::{runs, shell};
use crate::config::ShellCommand;
use crate::events::Notice;
use crate::monitor::ShellJob;
use crate::pep::Published;

/// Work that finished away from the main task.
pub enum Done {
    /// The server's answer to a publish of `Published`.
    Published(Published, IqOutcome),
    /// The newest item of our own events node, read at start.
    BootCheck(IqOutcome),
    /// A shell run ended: the request to answer, the run, how it ended.
    Shell(Box<(IqRequest, ShellJob, shell::Outcome)>),
    /// A step of a background run (the reboot) to publish.
    Notice(Notice),
}

/// Runs `job` in the background; the request is answered when [`Done::Shell`] comes back.
pub fn spawn_shell(tx: &mpsc::UnboundedSender<Done>, req: IqRequest, job: ShellJob) {
    let tx = tx.clone();
    tokio::spawn(async move {
        let outcome = shell::run(&job.command).await;
        let _ = tx.send(Done::Shell(Box::new((req, job, outcome))));
    });
}

/// After `delay_secs`: a `running` notice, `command`, then a `finished` notice with its exit
/// code.
pub fn spawn_reboot(
    tx: &mpsc::UnboundedSender<Done>,
    command: ShellCommand,
    asker: BareJid,
    delay_secs: u64,
) {
    let tx = tx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(delay_secs)).await;
        let _ = tx.send(Done::Notice(runs::running(&command.name, &asker)));
        let exit_code = shell::run(&command).await.exit_code;
        let finished = runs::finished(&command.name, &asker, exit_code);
        let _ = tx.send(Done::Notice(finished));
    });
}
