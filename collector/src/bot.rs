//! The collector bot: one task owns the session and reacts to a stanza, the sample timer,
//! work finished in the background (PEP answers, shell runs, a reboot), or shutdown. Everything
//! that decides something lives in the pure modules; this file wires them to the session.

use std::future::Future;
use std::time::Duration;

use jabmon_shared::adhoc::{self, Command};
use jabmon_shared::caps;
use jabmon_shared::ns;
use jabmon_shared::payload::{CommandRun, Event, EventKind, EventMetric, Severity, Stat, Stats};
use jabmon_shared::pep as pep_req;
use jabmon_shared::session::{
    forward, stanza_error, Incoming, IqFailure, IqOutcome, IqRequest, Session, SessionError,
    Software,
};
use minidom::Element;
use tokio::sync::mpsc;
use xmpp_parsers::caps::Caps;
use xmpp_parsers::disco::{
    DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery, DiscoItemsResult, Identity, Item,
};
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::presence::{Presence, Show, Type as PresenceType};
use xmpp_parsers::stanza_error::DefinedCondition;

use crate::alerts::{self, Alert, Alerts};
use crate::commands::{self, shell, Effect, Node, Rights, Sessions};
use crate::config::{Config, ShellCommand};
use crate::disco::{self, HostFacts};
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

use jabmon_shared::unix_now as now;

/// Work that finished away from the main task.
enum Done {
    Published(Published, IqOutcome),
    /// The newest item of our own events node, read at start.
    BootCheck(IqOutcome),
    Shell {
        req: IqRequest,
        command: ShellCommand,
        sessionid: String,
        asker: BareJid,
        outcome: shell::Outcome,
    },
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
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut bot = Collector {
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
    };
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
    tracing::info!("Collector stopping.");
    if bot.online {
        bot.event(
            EventKind::Stopping,
            None,
            None,
            None,
            Some("collector stopping".into()),
        );
        bot.flush_events().await;
    }
    let mut bye = Presence::unavailable();
    bye.set_status("", "Stopping");
    bot.session.close(Some(bye.into()), SHUTDOWN_GRACE).await;
    Ok(())
}

impl Collector {
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

    /// Someone chatting with the collector gets one line saying what it offers (subscribers and
    /// admins only; never an answer to errors, headlines or group chat, so no loops).
    async fn on_message(&mut self, m: xmpp_parsers::message::Message) {
        use xmpp_parsers::message::{Message, MessageType};
        if !matches!(m.type_, MessageType::Chat | MessageType::Normal) || m.bodies.is_empty() {
            return;
        }
        let Some(from) = m.from.clone() else { return };
        if self.rights(Some(&from)) == Rights::None {
            return;
        }
        let me = self.session.jid().to_string();
        let text = format!(
            "I am the jabmon collector of {}: {}. My stats groups are in service discovery; \
             ad-hoc commands: status (e.g. /cmd exec status {me} in Profanity){}. \
             For queries over many hosts, message the hub.",
            self.cfg.host,
            presence::status(self.level, &self.summary()),
            if self.rights(Some(&from)) == Rights::Admin {
                ", stats-reset, reboot, shell, thresholds"
            } else {
                ""
            },
        );
        let mut reply = Message::new(Some(from));
        reply.type_ = m.type_.clone();
        reply.bodies.insert(Default::default(), text);
        self.session.send(reply).await;
    }

    async fn on_tick(&mut self) {
        let t = now();
        let readings = self.sampler.sample(t);
        self.table.record(t, readings);
        if let (Some(load), Some(_)) = (
            self.table.value("load.load.shortterm"),
            self.table.value("cpu.cpu.idle"),
        ) {
            let per_core = load / self.facts.cores.max(1) as f64;
            let level = presence::next_level(self.level, per_core, &self.cfg.thresholds);
            if level != self.level {
                tracing::info!(from = ?self.level, to = ?level, per_core, "Load level changed.");
                if let Some(a) =
                    alerts::load_alert(self.level, level, per_core, &self.cfg.thresholds)
                {
                    self.alert(a);
                }
            }
            self.level = level;
            for a in self.alerts.check(&self.table, &self.cfg.thresholds) {
                self.alert(a);
            }
        }
        self.announce(false).await;
        if self.online
            && t - self.last_publish >= self.cfg.publish_interval.as_secs_f64()
            && self.publisher.ready(t)
        {
            self.publish_stats(t).await;
        }
        self.flush_events().await;
    }

    // ---- presence -------------------------------------------------------------------------

    /// Sends presence when the pacer allows it (or always, when `force`).
    async fn announce(&mut self, force: bool) {
        if !self.online {
            return;
        }
        if !self.pacer.should_send(self.level, now()) && !force {
            return;
        }
        self.session.send(self.presence()).await;
    }

    fn summary(&self) -> String {
        let v = |n: &str| self.table.value(n).unwrap_or(0.0);
        presence::summary(
            [
                v("load.load.shortterm"),
                v("load.load.midterm"),
                v("load.load.longterm"),
            ],
            100.0 - v("cpu.cpu.idle"),
            v("memory.percent.used"),
        )
    }

    fn presence(&self) -> Presence {
        let mut p = Presence::available().with_payload(self.caps.clone());
        match self.level {
            Level::Busy => p = p.with_show(Show::Away),
            Level::Critical => p = p.with_show(Show::Dnd),
            Level::Starting | Level::Normal => {}
        }
        p.set_status("", presence::status(self.level, &self.summary()));
        p
    }

    async fn on_presence(&mut self, p: Presence) {
        let Some(from) = p.from.as_ref().map(Jid::to_bare) else {
            return;
        };
        match p.type_ {
            PresenceType::Subscribe => {
                if self.cfg.subscribers.allows(&from) || self.cfg.admins.allows(&from) {
                    tracing::info!(%from, "Subscription approved.");
                    self.session
                        .send(Presence::subscribed().with_to(from.clone()))
                        .await;
                    self.session.send(Presence::subscribe().with_to(from)).await;
                } else {
                    tracing::warn!(%from, "Subscription refused: not in access.subscribers.");
                    self.session
                        .send(Presence::new(PresenceType::Unsubscribed).with_to(from))
                        .await;
                }
            }
            PresenceType::Subscribed => {
                // ejabberd records +notify interest only from presence after the approval.
                if self.online {
                    self.session.send(self.presence().with_to(from)).await;
                }
            }
            _ => {}
        }
    }

    // ---- IQs --------------------------------------------------------------------------------

    fn rights(&self, from: Option<&Jid>) -> Rights {
        let Some(from) = from.map(Jid::to_bare) else {
            return Rights::None;
        };
        if self.cfg.admins.allows(&from) {
            Rights::Admin
        } else if from == self.cfg.xmpp.jid || self.cfg.subscribers.allows(&from) {
            Rights::Subscriber
        } else {
            Rights::None
        }
    }

    async fn on_iq(&mut self, req: IqRequest) {
        if req.set {
            if let Ok(cmd) = Command::try_from(req.payload.clone()) {
                return self.on_command(req, cmd).await;
            }
        } else {
            if let Ok(q) = DiscoInfoQuery::try_from(req.payload.clone()) {
                return self.on_disco_info(&req, q.node).await;
            }
            if let Ok(q) = DiscoItemsQuery::try_from(req.payload.clone()) {
                return self.on_disco_items(&req, q.node).await;
            }
        }
        self.session.reply_unavailable(&req).await
    }

    async fn on_disco_info(&mut self, req: &IqRequest, node: Option<String>) {
        let rights = self.rights(req.from.as_ref());
        let answer = match node.as_deref() {
            None => Ok(self.info.clone()),
            Some(n) if n == self.caps_node => {
                let mut info = self.info.clone();
                info.node = Some(n.to_string());
                Ok(info)
            }
            Some(n) if n == adhoc::NS => Ok(DiscoInfoResult {
                node: Some(n.to_string()),
                identities: vec![Identity::new(
                    "automation",
                    "command-list",
                    "en",
                    "Commands",
                )],
                features: [adhoc::NS.to_string()].into_iter().collect(),
                extensions: vec![],
            }),
            Some(n) => match (Node::parse(n), disco::group_info(n, &self.table)) {
                (Some(cmd), _) if rights.may_run(cmd) => Ok(DiscoInfoResult {
                    node: Some(n.to_string()),
                    identities: vec![Identity::new(
                        "automation",
                        "command-node",
                        "en",
                        cmd.title(),
                    )],
                    features: [adhoc::NS.to_string(), "jabber:x:data".to_string()]
                        .into_iter()
                        .collect(),
                    extensions: vec![],
                }),
                (Some(_), _) => Err(DefinedCondition::Forbidden),
                (None, Some(_)) if rights == Rights::None => Err(DefinedCondition::Forbidden),
                (None, Some(info)) => Ok(info),
                (None, None) => Err(DefinedCondition::ItemNotFound),
            },
        };
        let outcome = answer
            .map(|info| Some(jabmon_shared::forms::to_element(info)))
            .map_err(|c| stanza_error(c, None));
        self.session.reply(req, outcome).await
    }

    async fn on_disco_items(&mut self, req: &IqRequest, node: Option<String>) {
        let rights = self.rights(req.from.as_ref());
        let me = Jid::from(self.session.jid().clone());
        let answer = match node.as_deref() {
            None => Ok(disco::items(self.session.jid())),
            Some(adhoc::NS) => Ok(DiscoItemsResult {
                node,
                items: Node::ALL
                    .into_iter()
                    .filter(|n| rights.may_run(*n))
                    .map(|n| Item {
                        jid: me.clone(),
                        node: Some(n.name().to_string()),
                        name: Some(n.title().to_string()),
                    })
                    .collect(),
                rsm: None,
            }),
            Some(_) => Err(stanza_error(DefinedCondition::ItemNotFound, None)),
        };
        self.session
            .reply(req, answer.map(|r| Some(r.into())))
            .await
    }

    async fn on_command(&mut self, req: IqRequest, cmd: Command) {
        let rights = self.rights(req.from.as_ref());
        let asker = req.from.as_ref().map(Jid::to_bare);
        let ctx = commands::Context {
            table: &self.table,
            thresholds: &self.cfg.thresholds,
            shell: &self.cfg.shell,
            summary: self.summary(),
        };
        let node = cmd.node.clone();
        let result = commands::handle(&mut self.commands, &ctx, asker.as_ref(), rights, cmd, now());
        let (response, effect) = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(from = ?req.from.as_ref().map(|j| j.to_string()), %node, condition = ?e.defined_condition, "Command refused.");
                return self.session.reply(&req, Err(e)).await;
            }
        };
        let asker = asker.expect("handle refuses commands without a sender");
        match effect {
            Effect::Shell { command, sessionid } => {
                // Answered when the run ends; the bot keeps serving meanwhile.
                self.command_event(&command.name, "pending", &asker, None);
                self.command_event(&command.name, "running", &asker, None);
                self.flush_events().await;
                let tx = self.done_tx.clone();
                tokio::spawn(async move {
                    let outcome = shell::run(&command).await;
                    let _ = tx.send(Done::Shell {
                        req,
                        command,
                        sessionid,
                        asker,
                        outcome,
                    });
                });
                return;
            }
            Effect::None => {}
            Effect::ResetStats(groups) => {
                self.command_event("stats-reset", "pending", &asker, None);
                self.command_event("stats-reset", "running", &asker, None);
                let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
                self.table.reset(&refs);
                self.alerts.reset(&groups);
                self.event(
                    EventKind::StatsReset,
                    None,
                    None,
                    None,
                    Some(format!(
                        "statistics reset by {asker}: {}",
                        groups.join(", ")
                    )),
                );
                self.command_event("stats-reset", "finished", &asker, Some(0));
            }
            Effect::SetThresholds(t) => {
                self.command_event("thresholds", "pending", &asker, None);
                self.command_event("thresholds", "running", &asker, None);
                tracing::info!(%asker, ?t, "Thresholds changed.");
                self.cfg.thresholds = t;
                self.command_event("thresholds", "finished", &asker, Some(0));
            }
            Effect::Reboot { delay_secs, reason } => {
                tracing::warn!(%asker, delay_secs, %reason, "Reboot requested.");
                self.command_event("reboot", "pending", &asker, None);
                let argv = self.cfg.reboot_command.clone();
                let tx = self.done_tx.clone();
                let who = asker.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(delay_secs)).await;
                    let _ = tx.send(Done::RebootRunning { asker: who.clone() });
                    let cmd = ShellCommand {
                        name: "reboot".into(),
                        argv,
                        timeout: Duration::from_secs(300),
                    };
                    let outcome = shell::run(&cmd).await;
                    let _ = tx.send(Done::RebootFinished {
                        asker: who,
                        exit_code: outcome.exit_code,
                    });
                });
            }
        }
        self.session
            .reply(&req, Ok(Some(response.to_element())))
            .await;
        self.flush_events().await;
    }

    async fn on_done(&mut self, done: Done) {
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
                let last_boot = match outcome {
                    Ok(Some(result)) => pep_req::item_payloads(result)
                        .into_iter()
                        .filter_map(|p| Event::try_from(p).ok())
                        .filter_map(|e| e.boot)
                        .next_back(),
                    _ => None,
                };
                if let Some(last) = last_boot.filter(|b| b.abs_diff(self.boot) > 2) {
                    self.event(
                        EventKind::Rebooted,
                        Some(Severity::Warning),
                        None,
                        None,
                        Some(format!(
                            "host rebooted (boot time was {last}, now {})",
                            self.boot
                        )),
                    );
                }
                self.event(
                    EventKind::Started,
                    None,
                    None,
                    None,
                    Some("collector started".into()),
                );
            }
            Done::Shell {
                req,
                command,
                sessionid,
                asker,
                outcome,
            } => {
                tracing::info!(%asker, command = %command.name, exit_code = ?outcome.exit_code, timed_out = outcome.timed_out, "Shell command finished.");
                self.command_event(
                    &command.name,
                    "finished",
                    &asker,
                    Some(outcome.exit_code.unwrap_or(-1)),
                );
                let response = shell::completed_response(&command, sessionid, &outcome);
                self.session
                    .reply(&req, Ok(Some(response.to_element())))
                    .await;
            }
            Done::RebootRunning { asker } => self.command_event("reboot", "running", &asker, None),
            Done::RebootFinished { asker, exit_code } => {
                self.command_event("reboot", "finished", &asker, Some(exit_code.unwrap_or(-1)))
            }
        }
        self.flush_events().await;
    }

    // ---- events and PEP ---------------------------------------------------------------------

    fn event(
        &mut self,
        kind: EventKind,
        severity: Option<Severity>,
        metric: Option<EventMetric>,
        command: Option<CommandRun>,
        text: Option<String>,
    ) {
        if kind == EventKind::Started {
            self.started_sent = true;
        }
        self.publisher.push(Event {
            host: self.cfg.host.clone(),
            timestamp: now(),
            kind,
            severity,
            boot: Some(self.boot),
            metric,
            command,
            text,
        });
    }

    fn alert(&mut self, a: Alert) {
        tracing::info!(metric = %a.metric, value = a.value, severity = %a.severity, "{}", a.text);
        let metric = EventMetric {
            name: a.metric,
            value: (a.value * 1000.0).round() / 1000.0,
        };
        self.event(
            EventKind::Threshold,
            Some(a.severity),
            Some(metric),
            None,
            Some(a.text),
        );
    }

    fn command_event(&mut self, name: &str, state: &str, asker: &BareJid, exit_code: Option<i32>) {
        let run = CommandRun {
            name: name.to_string(),
            state: state.to_string(),
            asker: asker.to_string(),
            exit_code,
        };
        let text = format!("{name} {state} for {asker}");
        self.event(EventKind::Command, None, None, Some(run), Some(text));
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

    async fn publish_stats(&mut self, t: f64) {
        self.last_publish = t;
        let stats = Stats {
            host: self.cfg.host.clone(),
            timestamp: self.table.last_sample.unwrap_or(t),
            stats: self
                .table
                .iter()
                // Three decimals are plenty for any of our units and keep items small.
                .map(|(name, s)| Stat {
                    name: name.clone(),
                    value: (s.value * 1000.0).round() / 1000.0,
                    unit: Some(s.unit.as_str().to_string()),
                })
                .collect(),
        };
        let request = self.publisher.stats_request(stats.into());
        self.send_publish(Published::Stats, request).await;
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
