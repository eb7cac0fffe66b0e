//! The collector bot: one task owns the session and reacts to a stanza, the sample timer,
//! work finished in the background (PEP answers, shell runs, a reboot), or shutdown. Everything
//! that decides something lives in the pure modules; this file hands them what came in and
//! sends what they return.

use std::future::Future;
use std::time::Duration;

use jabmon_shared::adhoc::Command;
use jabmon_shared::payload::EventKind;
use jabmon_shared::session::{
    forward, stanza_error, Incoming, IqFailure, IqOutcome, IqRequest, Session, SessionError,
    Software,
};
use jabmon_shared::{caps, forms, ns, pep as pep_req, unix_now as now};
use minidom::Element;
use tokio::sync::mpsc;
use xmpp_parsers::caps::Caps;
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery};
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::message::Message;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza_error::DefinedCondition::Forbidden;

use crate::alerts::Alerts;
use crate::chat;
use crate::commands::{self, reboot, runs, shell, Effect, Node, Rights, Sessions};
use crate::config::{Config, ShellCommand};
use crate::disco::{self, HostFacts, InfoTree};
use crate::events::{self, Notice};
use crate::metrics::MetricTable;
use crate::pep::{Published, Publisher};
use crate::presence::{self, Level, Pacer};
use crate::sample::Sampler;

/// How long shutdown may take before we leave anyway (docs/protocol.md §1 allows 5 s in all).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

/// Errors that stop the collector.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// A shell run that ended, with what its answer needs.
struct ShellDone {
    req: IqRequest,
    command: ShellCommand,
    sessionid: String,
    asker: BareJid,
    outcome: shell::Outcome,
}

/// Work that finished away from the main task.
enum Done {
    Published(Published, IqOutcome),
    /// The newest item of our own events node, read at start.
    BootCheck(IqOutcome),
    Shell(Box<ShellDone>),
    RebootRunning {
        asker: BareJid,
    },
    RebootFinished {
        asker: BareJid,
        exit_code: Option<i32>,
    },
}

struct Collector {
    cfg: Config,
    session: Session,
    facts: HostFacts,
    boot: u64,
    info: DiscoInfoResult,
    caps: Caps,
    caps_node: String,
    table: MetricTable,
    sampler: Sampler,
    level: Level,
    pacer: Pacer,
    alerts: Alerts,
    commands: Sessions,
    publisher: Publisher,
    last_publish: f64,
    online: bool,
    started_sent: bool,
    done_tx: mpsc::UnboundedSender<Done>,
}

/// Runs the collector until `shutdown` resolves, then publishes `stopping`, says goodbye
/// (unavailable presence, status `Stopping`) and closes the stream within [`SHUTDOWN_GRACE`].
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut bot = Collector::start(cfg, done_tx)?;
    let mut tick = tokio::time::interval(bot.cfg.sample_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            event = bot.session.next() => match event {
                Some(event) => bot.on_event(event).await,
                None => break,
            },
            Some(done) = done_rx.recv() => bot.on_done(done).await,
            _ = tick.tick() => bot.on_tick().await,
        }
    }
    bot.stop().await;
    Ok(())
}

impl Collector {
    fn start(cfg: Config, done_tx: mpsc::UnboundedSender<Done>) -> Result<Self, SessionError> {
        let software = Software {
            name: "jabmon-collector".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        };
        let session = Session::start(&cfg.xmpp, software)?;
        let facts = HostFacts::read();
        let info = disco::root_info(&cfg.host, cfg.publish_interval.as_secs_f64(), &facts);
        let caps = caps::caps(ns::CAPS_NODE, &info);
        let caps_node = format!("{}#{}", ns::CAPS_NODE, caps::ver(&info));
        tracing::info!(host = %cfg.host, jid = %cfg.xmpp.jid, caps = %caps_node, "Collector starting.");
        Ok(Collector {
            session,
            facts,
            boot: sysinfo::System::boot_time(),
            info,
            caps,
            caps_node,
            table: MetricTable::default(),
            sampler: Sampler::new(),
            level: Level::Starting,
            pacer: Pacer::default(),
            alerts: Alerts::default(),
            commands: Sessions::default(),
            publisher: Publisher::default(),
            last_publish: 0.0,
            online: false,
            started_sent: false,
            done_tx,
            cfg,
        })
    }

    async fn stop(mut self) {
        tracing::info!("Collector stopping.");
        if self.online {
            self.publish(Notice::stopping());
            self.flush_events().await;
        }
        let mut bye = Presence::unavailable();
        bye.set_status("", "Stopping");
        self.session.close(Some(bye.into()), SHUTDOWN_GRACE).await;
    }

    async fn on_event(&mut self, event: Incoming) {
        match event {
            Incoming::Online { resumed } => {
                self.online = true;
                if !resumed {
                    self.session.request_roster().await;
                    // The server forgot our presence: announce everything again.
                    self.pacer.forget();
                    self.announce(true).await;
                    if let Some(hub) = self.cfg.hub.clone() {
                        self.session.send(Presence::subscribe().with_to(hub)).await;
                    }
                    if !self.started_sent {
                        self.check_boot().await;
                    }
                }
                self.flush_events().await;
            }
            Incoming::Suspended => self.online = false,
            Incoming::Iq(req) => self.on_iq(req).await,
            Incoming::Presence(p) => self.on_presence(p).await,
            Incoming::Message(m) => self.on_message(m).await,
        }
    }

    async fn on_message(&mut self, m: Message) {
        let rights = self.rights(m.from.as_ref());
        let status = presence::status(self.level, &presence::summary_of(&self.table));
        let me = self.session.jid().to_string();
        if let Some(reply) = chat::reply(&m, rights, &self.cfg.host, &me, &status) {
            self.session.send(reply).await;
        }
    }

    async fn on_tick(&mut self) {
        let t = now();
        let readings = self.sampler.sample(t);
        self.table.record(t, readings);
        let (level, alerts) = self.alerts.on_sample(
            self.level,
            &self.table,
            self.facts.cores,
            &self.cfg.thresholds,
        );
        self.level = level;
        for a in alerts {
            tracing::info!(metric = %a.metric, value = a.value, severity = %a.severity, "{}", a.text);
            self.publish(Notice::threshold(a));
        }
        self.announce(false).await;
        if self.online
            && t - self.last_publish >= self.cfg.publish_interval.as_secs_f64()
            && self.publisher.ready(t)
        {
            self.last_publish = t;
            let stats = self.table.to_stats(&self.cfg.host, t);
            let request = self.publisher.stats_request(stats.into());
            self.send_publish(Published::Stats, request).await;
        }
        self.flush_events().await;
    }

    /// Sends presence when the pacer allows it (or always, when `force`).
    async fn announce(&mut self, force: bool) {
        if self.online && (self.pacer.should_send(self.level, now()) || force) {
            self.session.send(self.presence()).await;
        }
    }

    fn presence(&self) -> Presence {
        let summary = presence::summary_of(&self.table);
        presence::stanza(self.level, &summary, self.caps.clone())
    }

    async fn on_presence(&mut self, p: Presence) {
        let Some(from) = p.from.as_ref().map(Jid::to_bare) else {
            return;
        };
        let allowed = self.cfg.subscribers.allows(&from) || self.cfg.admins.allows(&from);
        let current = (self.online && p.type_ == PresenceType::Subscribed).then(|| self.presence());
        for reply in presence::subscription_replies(&p.type_, &from, allowed, current) {
            self.session.send(reply).await;
        }
    }

    fn rights(&self, from: Option<&Jid>) -> Rights {
        let c = &self.cfg;
        Rights::of(from, &c.xmpp.jid, &c.subscribers, &c.admins)
    }

    async fn on_iq(&mut self, req: IqRequest) {
        let rights = self.rights(req.from.as_ref());
        if req.set {
            if let Ok(cmd) = Command::try_from(req.payload.clone()) {
                return self.on_command(req, cmd, rights).await;
            }
        } else if let Ok(q) = DiscoInfoQuery::try_from(req.payload.clone()) {
            let tree = InfoTree {
                root: &self.info,
                caps_node: &self.caps_node,
                table: &self.table,
            };
            let answer = tree.info(q.node.as_deref(), rights);
            let answer = answer.map(|info| Some(forms::to_element(info)));
            return self
                .session
                .reply(&req, answer.map_err(|c| stanza_error(c, None)))
                .await;
        } else if let Ok(q) = DiscoItemsQuery::try_from(req.payload.clone()) {
            let answer = disco::items(self.session.jid(), q.node.as_deref(), rights);
            let answer = answer.map(|items| Some(items.into()));
            return self
                .session
                .reply(&req, answer.map_err(|c| stanza_error(c, None)))
                .await;
        }
        self.session.reply_unavailable(&req).await
    }

    async fn on_command(&mut self, req: IqRequest, cmd: Command, rights: Rights) {
        let asker = req.from.as_ref().map(Jid::to_bare);
        let ctx = commands::Context {
            table: &self.table,
            thresholds: &self.cfg.thresholds,
            shell: &self.cfg.shell,
            summary: presence::summary_of(&self.table),
        };
        let node = cmd.node.clone();
        let result = commands::handle(&mut self.commands, &ctx, asker.as_ref(), rights, cmd, now());
        let ((response, effect), asker) = match (result, asker) {
            (Ok(accepted), Some(asker)) => (accepted, asker),
            // `handle` refuses every command without a sender, so `Ok` comes with one.
            (result, _) => {
                let e = result
                    .err()
                    .unwrap_or_else(|| stanza_error(Forbidden, None));
                tracing::info!(from = ?req.from.as_ref().map(|j| j.to_string()), %node, condition = ?e.defined_condition, "Command refused.");
                return self.session.reply(&req, Err(e)).await;
            }
        };
        for notice in runs::opening(&effect, &asker) {
            self.publish(notice);
        }
        match effect {
            Effect::Shell { command, sessionid } => {
                // Answered when the run ends; the bot keeps serving meanwhile.
                self.flush_events().await;
                return self.spawn_shell(req, command, sessionid, asker);
            }
            Effect::None => {}
            Effect::ResetStats(groups) => {
                let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
                self.table.reset(&refs);
                self.alerts.reset(&groups);
            }
            Effect::SetThresholds(t) => {
                tracing::info!(%asker, ?t, "Thresholds changed.");
                self.cfg.thresholds = t;
            }
            Effect::Reboot { delay_secs, reason } => {
                tracing::warn!(%asker, delay_secs, %reason, "Reboot requested.");
                self.spawn_reboot(asker, delay_secs);
            }
        }
        self.session
            .reply(&req, Ok(Some(response.to_element())))
            .await;
        self.flush_events().await;
    }

    fn spawn_shell(
        &self,
        req: IqRequest,
        command: ShellCommand,
        sessionid: String,
        asker: BareJid,
    ) {
        let tx = self.done_tx.clone();
        tokio::spawn(async move {
            let outcome = shell::run(&command).await;
            let done = ShellDone {
                req,
                command,
                sessionid,
                asker,
                outcome,
            };
            let _ = tx.send(Done::Shell(Box::new(done)));
        });
    }

    fn spawn_reboot(&self, asker: BareJid, delay_secs: u64) {
        let command = reboot::command(self.cfg.reboot_command.clone());
        let tx = self.done_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(delay_secs)).await;
            let _ = tx.send(Done::RebootRunning {
                asker: asker.clone(),
            });
            let exit_code = shell::run(&command).await.exit_code;
            let _ = tx.send(Done::RebootFinished { asker, exit_code });
        });
    }

    async fn on_done(&mut self, done: Done) {
        let reboot = Node::Reboot.name();
        match done {
            Done::Published(what, outcome) => {
                let result = match outcome {
                    Ok(_) => Ok(()),
                    Err(IqFailure::Error(e)) => Err(Some(*e)),
                    Err(IqFailure::Lost) => Err(None),
                };
                self.publisher.answered(what, result, now());
            }
            Done::BootCheck(outcome) => {
                let published = match outcome {
                    Ok(Some(result)) => pep_req::item_payloads(result),
                    _ => vec![],
                };
                for notice in events::after_boot_check(published, self.boot) {
                    self.publish(notice);
                }
            }
            Done::Shell(done) => {
                let ShellDone {
                    req,
                    command,
                    sessionid,
                    asker,
                    outcome,
                } = *done;
                tracing::info!(%asker, command = %command.name, exit_code = ?outcome.exit_code, timed_out = outcome.timed_out, "Shell command finished.");
                self.publish(runs::finished(&command.name, &asker, outcome.exit_code));
                let response = shell::completed_response(&command, sessionid, &outcome);
                self.session
                    .reply(&req, Ok(Some(response.to_element())))
                    .await;
            }
            Done::RebootRunning { asker } => self.publish(runs::running(reboot, &asker)),
            Done::RebootFinished { asker, exit_code } => {
                self.publish(runs::finished(reboot, &asker, exit_code))
            }
        }
        self.flush_events().await;
    }

    /// Queues an event, stamped with our host, the time and our boot time.
    fn publish(&mut self, notice: Notice) {
        self.started_sent |= notice.kind == EventKind::Started;
        let event = notice.into_event(&self.cfg.host, now(), self.boot);
        self.publisher.push(event);
    }

    /// Sends every queued event (unless offline or backing off).
    async fn flush_events(&mut self) {
        if !self.online {
            return;
        }
        for (event, request) in self.publisher.drain(now()) {
            self.send_publish(Published::Event(Box::new(event)), request)
                .await;
        }
    }

    async fn send_publish(&mut self, what: Published, request: Element) {
        let rx = self.session.request(None, true, request).await;
        forward(rx, &self.done_tx, move |outcome| {
            Done::Published(what, outcome)
        });
    }

    /// Reads the newest event this account published (its `boot` attribute) to tell a reboot
    /// from a restart; `started` (and maybe `rebooted`) follow when the answer is in.
    async fn check_boot(&mut self) {
        let rx = self
            .session
            .request(None, false, pep_req::latest_items(ns::EVENTS, 1))
            .await;
        forward(rx, &self.done_tx, Done::BootCheck);
    }
}
