//! What the collector knows and decides between stanzas (pure, the clock passed in): the
//! metric table and load level, threshold states, the presence pacer, the stats schedule, the
//! queue of events to publish, the open command sessions, and whether the session is up. The bot feeds it samples, accepted commands and server
//! answers, and sends what it hands back.

use jabmon_shared::adhoc::Command;
use jabmon_shared::payload::EventKind;
use jabmon_shared::presence::RecentAsks;
use jabmon_shared::session::{stanza_error, IqFailure, IqOutcome};
use minidom::Element;
use xmpp_parsers::caps::Caps;
use xmpp_parsers::jid::BareJid;
use xmpp_parsers::presence::Presence;
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

use crate::alerts::Alerts;
use crate::commands::{self, runs, shell, CommandSessions, Effect, Rights};
use crate::config::{ShellCommand, Thresholds};
use crate::events::{self, Notice};
use crate::metrics::{MetricTable, Unit};
use crate::pep::{Published, Publisher};
use crate::presence::{self, Level, Pacer};

/// A `shell` run the bot carries out in the background.
#[derive(Debug, PartialEq)]
pub struct ShellJob {
    pub command: ShellCommand,
    pub sessionid: String,
    pub asker: BareJid,
}

/// Work an accepted command leaves for the background.
#[derive(Debug, PartialEq)]
pub enum Background {
    None,
    /// Run it; its IQ is answered when it ends ([`Monitor::shell_finished`]).
    Shell(ShellJob),
    /// Wait, then run `reboot_command`.
    Reboot {
        delay_secs: u64,
        asker: BareJid,
    },
}

/// The collector's state between stanzas (see the module doc).
pub struct Monitor {
    host: String,
    boot: u64,
    cores: usize,
    publish_interval: f64,
    pub thresholds: Thresholds,
    pub table: MetricTable,
    pub level: Level,
    alerts: Alerts,
    pacer: Pacer,
    publisher: Publisher,
    last_publish: f64,
    started_sent: bool,
    command_sessions: CommandSessions,
    online: bool,
    /// Whom we asked for a subscription lately (see [`RecentAsks`]).
    pub asks: RecentAsks,
}

impl Monitor {
    /// `boot`: the host's boot time; `publish_interval`: seconds between stats items.
    pub fn new(host: &str, boot: u64, cores: usize, publish_interval: f64, t: Thresholds) -> Self {
        Monitor {
            host: host.to_string(),
            boot,
            cores,
            publish_interval,
            asks: RecentAsks::default(),
            thresholds: t,
            table: MetricTable::default(),
            level: Level::Starting,
            alerts: Alerts::default(),
            pacer: Pacer::default(),
            publisher: Publisher::default(),
            last_publish: 0.0,
            started_sent: false,
            command_sessions: CommandSessions::default(),
            online: false,
        }
    }

    /// Records a sample taken at `now`; level changes and threshold crossings are queued.
    pub fn record(&mut self, now: f64, readings: Vec<(String, Unit, f64)>) {
        self.table.record(now, readings);
        let (level, alerts) =
            self.alerts
                .on_sample(self.level, &self.table, self.cores, &self.thresholds);
        self.level = level;
        for a in alerts {
            tracing::info!(metric = %a.metric, value = a.value, severity = %a.severity, "{}", a.text);
            self.publish(Notice::threshold(a), now);
        }
    }

    /// The presence summary line.
    pub fn summary(&self) -> String {
        presence::summary_of(&self.table)
    }

    /// The presence status text.
    pub fn status(&self) -> String {
        presence::status(self.level, &self.summary())
    }

    pub fn presence(&self, caps: Caps) -> Presence {
        presence::stanza(self.level, &self.summary(), caps)
    }

    /// The session is up (`true`) or suspended. Nothing goes out while it is down: no
    /// presence, no stats; events wait in the queue.
    pub fn set_online(&mut self, online: bool) {
        self.online = online;
    }

    pub fn is_online(&self) -> bool {
        self.online
    }

    /// Whether to send presence at `now` (always when `force`, if online); records the send.
    pub fn presence_due(&mut self, now: f64, force: bool) -> bool {
        self.online && (self.pacer.should_send(self.level, now) || force)
    }

    /// The server forgot our presence: the next one goes out at once.
    pub fn presence_lost(&mut self) {
        self.pacer.forget();
    }

    /// The stats publish request when one is due at `now` (a publish interval since the last
    /// one, and not backing off); records it as sent.
    pub fn stats_due(&mut self, now: f64) -> Option<Element> {
        let due = (now - self.last_publish >= self.publish_interval
            || self.publisher.stats_again())
            && self.publisher.ready(now);
        if !self.online || !due {
            return None;
        }
        self.last_publish = now;
        let stats = self.table.to_stats(&self.host, now);
        Some(self.publisher.stats_request(stats.into()))
    }

    /// Queues an event, stamped with our host, `now` and our boot time.
    pub fn publish(&mut self, notice: Notice, now: f64) {
        self.started_sent |= notice.kind == EventKind::Started;
        let event = notice.into_event(&self.host, now, self.boot);
        self.publisher.push(event);
    }

    /// Whether `started` was queued (the boot check is done once per run).
    pub fn started(&self) -> bool {
        self.started_sent
    }

    /// The answer to the boot check (the newest items of our events node).
    pub fn boot_checked(&mut self, outcome: IqOutcome, now: f64) {
        let published = match outcome {
            Ok(Some(result)) => jabmon_shared::pep::item_payloads(result),
            _ => vec![],
        };
        for notice in events::after_boot_check(published, self.boot) {
            self.publish(notice, now);
        }
    }

    /// The events to publish now, with their requests (none while offline or backing off).
    pub fn drain(&mut self, now: f64) -> Vec<(Published, Element)> {
        if !self.online {
            return vec![];
        }
        self.publisher.drain(now)
    }

    /// The server's answer to a publish.
    pub fn published(&mut self, what: Published, outcome: IqOutcome, now: f64) {
        let result = match outcome {
            Ok(_) => Ok(()),
            Err(IqFailure::Error(e)) => Err(Some(*e)),
            Err(IqFailure::Lost) => Err(None),
        };
        self.publisher.answered(what, result, now);
    }

    /// A shell run ended: queues its `finished` event and returns the answer to its IQ.
    pub fn shell_finished(&mut self, job: ShellJob, outcome: &shell::Outcome, now: f64) -> Command {
        let (asker, command) = (&job.asker, &job.command);
        tracing::info!(%asker, command = %command.name, exit_code = ?outcome.exit_code, timed_out = outcome.timed_out, "Shell command finished.");
        self.publish(runs::finished(&command.name, asker, outcome.exit_code), now);
        shell::completed_response(command, job.sessionid, outcome)
    }

    /// Handles one `<command/>` from `asker` (`None`: the stanza had no `from`): the answer to
    /// send now, and the work left for the background. `shell` is the configured commands.
    #[allow(clippy::result_large_err)] // the error is the stanza error we answer with
    pub fn command(
        &mut self,
        request: Command,
        asker: Option<&BareJid>,
        rights: Rights,
        shell: &[ShellCommand],
        now: f64,
    ) -> Result<(Command, Background), StanzaError> {
        let ctx = commands::Context {
            table: &self.table,
            thresholds: &self.thresholds,
            shell,
            summary: self.summary(),
        };
        let (response, effect) = commands::handle(
            &mut self.command_sessions,
            &ctx,
            asker,
            rights,
            request,
            now,
        )?;
        // `handle` refuses every command without a sender, so this is never the error.
        let forbidden = || stanza_error(DefinedCondition::Forbidden, None);
        let asker = asker.ok_or_else(forbidden)?;
        Ok((response, self.apply(effect, asker, now)))
    }

    /// Carries out an accepted command's `effect` for `asker`: queues its events, makes the
    /// changes made on the spot, and returns what is left for the background.
    fn apply(&mut self, effect: Effect, asker: &BareJid, now: f64) -> Background {
        for notice in runs::opening(&effect, asker) {
            self.publish(notice, now);
        }
        match effect {
            Effect::None => Background::None,
            Effect::ResetStats(groups) => {
                let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
                self.table.reset(&refs);
                self.alerts.reset(&groups);
                Background::None
            }
            Effect::SetThresholds(t) => {
                tracing::info!(%asker, ?t, "Thresholds changed.");
                self.thresholds = t;
                Background::None
            }
            Effect::Reboot { delay_secs, reason } => {
                tracing::warn!(%asker, delay_secs, %reason, "Reboot requested.");
                let asker = asker.clone();
                Background::Reboot { delay_secs, asker }
            }
            Effect::Shell { command, sessionid } => Background::Shell(ShellJob {
                command,
                sessionid,
                asker: asker.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use jabmon_shared::metric;
    use jabmon_shared::payload::{CommandState, Event};

    use super::*;

    fn monitor() -> Monitor {
        let mut m = Monitor::new("web1", 1000, 2, 10.0, Thresholds::default());
        m.set_online(true);
        m
    }

    fn sample(m: &mut Monitor, now: f64, load: f64, disk: f64) {
        m.record(
            now,
            vec![
                (metric::LOAD_SHORTTERM.into(), Unit::Load, load),
                (metric::CPU_IDLE.into(), Unit::Percent, 90.0),
                (metric::disk_percent_used("root"), Unit::Percent, disk),
            ],
        );
    }

    fn queued(m: &mut Monitor) -> Vec<Event> {
        m.drain(0.0)
            .into_iter()
            .filter_map(|(what, _)| match what {
                Published::Event(e) => Some(*e),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn samples_move_the_level_and_queue_alerts() {
        let mut m = monitor();
        sample(&mut m, 1.0, 0.2, 50.0);
        assert_eq!(m.level, Level::Normal);
        assert!(queued(&mut m).is_empty());
        sample(&mut m, 2.0, 2.2, 95.0);
        assert_eq!(m.level, Level::Busy);
        let events = queued(&mut m);
        let kinds: Vec<_> = events.iter().map(|e| (e.kind, e.timestamp)).collect();
        assert_eq!(
            kinds,
            [(EventKind::Threshold, 2.0), (EventKind::Threshold, 2.0)]
        );
        assert!(events
            .iter()
            .all(|e| e.host == "web1" && e.boot == Some(1000)));
        assert!(m.status().starts_with("Overloaded."));
    }

    #[test]
    fn stats_follow_the_publish_interval() {
        let mut m = monitor();
        sample(&mut m, 1.0, 0.2, 50.0);
        assert!(m.stats_due(10.0).is_some());
        assert!(m.stats_due(19.9).is_none(), "10 s between items");
        assert!(m.stats_due(20.0).is_some());
        // A refusal backs off beyond the interval.
        let e = jabmon_shared::session::stanza_error(
            xmpp_parsers::stanza_error::DefinedCondition::Forbidden,
            None,
        );
        m.published(Published::Stats, Err(IqFailure::Error(Box::new(e))), 30.0);
        assert!(m.stats_due(30.0).is_none(), "backing off");
    }

    #[test]
    fn stats_reset_restarts_alerts_and_publishes_its_run() {
        let mut m = monitor();
        sample(&mut m, 1.0, 0.2, 95.0);
        assert_eq!(queued(&mut m).len(), 1, "disk above its level");
        let ops = BareJid::new("ops@x").unwrap();
        let bg = m.apply(Effect::ResetStats(vec!["disk".into()]), &ops, 2.0);
        assert_eq!(bg, Background::None);
        let states: Vec<_> = queued(&mut m)
            .into_iter()
            .map(|e| (e.kind, e.command.map(|c| c.state)))
            .collect();
        assert_eq!(
            states,
            [
                (EventKind::Command, Some(CommandState::Pending)),
                (EventKind::Command, Some(CommandState::Running)),
                (EventKind::StatsReset, None),
                (EventKind::Command, Some(CommandState::Finished)),
            ]
        );
        sample(&mut m, 3.0, 0.2, 95.0);
        assert_eq!(queued(&mut m).len(), 1, "reported again after the reset");
        let t = Thresholds {
            disk_warn: 99.0,
            ..Default::default()
        };
        assert_eq!(
            m.apply(Effect::SetThresholds(t), &ops, 4.0),
            Background::None
        );
        assert_eq!(m.thresholds, t);
        let reboot = Effect::Reboot {
            delay_secs: 3,
            reason: "r".into(),
        };
        let asker = ops.clone();
        assert_eq!(
            m.apply(reboot, &ops, 5.0),
            Background::Reboot {
                delay_secs: 3,
                asker
            }
        );
    }

    #[test]
    fn commands_run_through_to_their_effect() {
        let mut m = monitor();
        let ops = BareJid::new("ops@x").unwrap();
        let req = |sessionid: Option<String>, form| Command {
            node: "thresholds".into(),
            sessionid,
            action: None,
            status: None,
            actions: None,
            notes: vec![],
            form,
        };
        let (first, bg) = m
            .command(req(None, None), Some(&ops), Rights::Admin, &[], 1.0)
            .unwrap();
        assert_eq!(bg, Background::None);
        assert!(queued(&mut m).is_empty(), "a form stage changes nothing");
        let mut form = first.form.unwrap();
        form.type_ = xmpp_parsers::data_forms::DataFormType::Submit;
        form.fields
            .retain(|f| f.var.as_deref() == Some("disk_warn"));
        form.fields[0].values = vec!["95".into()];
        let (done, _) = m
            .command(
                req(first.sessionid, Some(form)),
                Some(&ops),
                Rights::Admin,
                &[],
                2.0,
            )
            .unwrap();
        assert_eq!(done.status.as_deref(), Some("completed"));
        assert_eq!(m.thresholds.disk_warn, 95.0);
        assert_eq!(queued(&mut m).len(), 3, "pending, running, finished");
        let e = m
            .command(req(None, None), None, Rights::Admin, &[], 3.0)
            .unwrap_err();
        assert_eq!(
            e.defined_condition,
            DefinedCondition::Forbidden,
            "no sender"
        );
    }

    #[test]
    fn a_finished_shell_run_is_published_and_answered() {
        let mut m = monitor();
        let job = ShellJob {
            command: ShellCommand {
                name: "slow".into(),
                argv: vec!["sleep".into(), "30".into()],
                timeout: std::time::Duration::from_secs(1),
            },
            sessionid: "shell-1".into(),
            asker: BareJid::new("ops@x").unwrap(),
        };
        let killed = shell::Outcome {
            exit_code: None,
            timed_out: true,
            stdout: String::new(),
            stderr: String::new(),
            duration: std::time::Duration::from_secs(1),
            error: None,
        };
        let answer = m.shell_finished(job, &killed, 9.0);
        assert_eq!(answer.status.as_deref(), Some("completed"));
        assert_eq!(answer.sessionid.as_deref(), Some("shell-1"));
        assert!(
            answer.notes[0].text.contains("killed"),
            "{:?}",
            answer.notes
        );
        let run = queued(&mut m).pop().unwrap().command.unwrap();
        assert_eq!(
            (run.name.as_str(), run.state, run.exit_code),
            ("slow", CommandState::Finished, Some(-1))
        );
    }

    #[test]
    fn nothing_goes_out_while_offline() {
        let mut m = monitor();
        m.set_online(false);
        sample(&mut m, 1.0, 0.2, 95.0);
        assert!(!m.presence_due(1.0, true), "not even forced");
        assert!(m.stats_due(11.0).is_none());
        assert!(m.drain(11.0).is_empty());
        m.set_online(true);
        assert!(m.presence_due(12.0, false));
        assert!(
            m.stats_due(12.0).is_some(),
            "the schedule did not move while offline"
        );
        assert_eq!(queued(&mut m).len(), 1, "the disk alert waited");
    }

    #[test]
    fn boot_check_queues_started_once_answered() {
        let mut m = monitor();
        assert!(!m.started());
        m.boot_checked(Err(IqFailure::Lost), 1.0);
        assert!(m.started());
        let kinds: Vec<_> = queued(&mut m).into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::Started]);
    }
}
