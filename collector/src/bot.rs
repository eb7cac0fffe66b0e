//! The collector bot: one task owns the session and reacts to a stanza, the sample timer,
//! work finished in the background (PEP answers, shell runs, a reboot), or shutdown. Everything
//! that decides something lives in the pure modules; this file hands them what came in and
//! sends what they return.

use std::future::Future;
use std::time::Duration;

use jabmon_shared::adhoc::Command;
use jabmon_shared::session::{
    forward, stanza_error, Incoming, IqRequest, Session, SessionError, Software,
};
use jabmon_shared::{ns, pep as pep_req, unix_now as now};
use minidom::Element;
use tokio::sync::mpsc;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::Message;
use xmpp_parsers::presence::{Presence, Type as PresenceType};

use crate::chat;
use crate::commands::{reboot, Rights};
use crate::config::Config;
use crate::disco::{self, HostFacts, Profile};
use crate::events::Notice;
use crate::monitor::{Background, Monitor};
use crate::pep::Published;
use crate::presence;
use crate::sample::Sampler;
use crate::work::{self, Done};

/// How long shutdown may take before we leave anyway (docs/protocol.md §1 allows 5 s in all).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

struct Collector {
    cfg: Config,
    session: Session,
    profile: Profile,
    sampler: Sampler,
    monitor: Monitor,
    done_tx: mpsc::UnboundedSender<Done>,
}

/// Runs the collector until `shutdown` resolves, then publishes `stopping`, says goodbye
/// (unavailable presence, status `Stopping`) and closes the stream within [`SHUTDOWN_GRACE`].
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), SessionError> {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut bot = Collector::start(cfg, done_tx)?;
    // The first reading was taken at start; the next is due one interval later.
    let every = bot.cfg.sample_interval;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
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
        let software = Software::new("jabmon-collector", env!("CARGO_PKG_VERSION"));
        let session = Session::start(&cfg.xmpp, software)?;
        let facts = HostFacts::read();
        let interval = cfg.publish_interval.as_secs_f64();
        let profile = Profile::new(&cfg.host, interval, &facts);
        tracing::info!(host = %cfg.host, jid = %cfg.xmpp.jid, caps = %profile.caps_node, "Collector starting.");
        let boot = sysinfo::System::boot_time();
        let monitor = Monitor::new(&cfg.host, boot, facts.cores, interval, cfg.thresholds);
        let mut bot = Collector {
            session,
            profile,
            sampler: Sampler::new(),
            monitor,
            done_tx,
            cfg,
        };
        // Rates need two readings: this one, and one just before going online.
        bot.sample();
        Ok(bot)
    }

    async fn stop(mut self) {
        tracing::info!("Collector stopping.");
        if self.monitor.is_online() {
            self.monitor.publish(Notice::stopping(), now());
            self.flush_events().await;
        }
        let bye = jabmon_shared::presence::goodbye();
        self.session.close(Some(bye.into()), SHUTDOWN_GRACE).await;
    }

    async fn on_event(&mut self, event: Incoming) {
        match event {
            Incoming::Online { resumed } => {
                self.monitor.set_online(true);
                if !resumed {
                    self.session.request_roster().await;
                    // Fresh values (rates included) before anyone can see us.
                    self.sample();
                    // The server forgot our presence: announce everything again.
                    self.monitor.presence_lost();
                    self.announce(true).await;
                    if !self.monitor.started() {
                        self.check_boot().await;
                    }
                }
                self.flush_events().await;
            }
            Incoming::Suspended => self.monitor.set_online(false),
            Incoming::Roster => {
                // Ask the hub for a subscription only when the roster says it is not mutual
                // yet: a restart then sends no subscription presence at all.
                if let Some(hub) = self.cfg.hub.clone() {
                    if !self.session.contacts().mutual(&hub) {
                        self.monitor.asks.record(&hub, now());
                        self.session.send(Presence::subscribe().with_to(hub)).await;
                    }
                }
            }
            Incoming::Iq(req) => self.on_iq(req).await,
            Incoming::Presence(p) => self.on_presence(p).await,
            Incoming::Message(m) => self.on_message(m).await,
        }
    }

    async fn on_message(&mut self, m: Message) {
        let rights = self.rights(m.from.as_ref());
        let (status, me) = (self.monitor.status(), self.session.jid().to_string());
        if let Some(reply) = chat::reply(&m, rights, &self.cfg.host, &me, &status) {
            self.session.send(reply).await;
        }
    }

    /// Reads the host and records the values.
    fn sample(&mut self) {
        let t = now();
        let readings = self.sampler.sample(t);
        self.monitor.record(t, readings);
    }

    async fn on_tick(&mut self) {
        self.sample();
        let t = now();
        self.announce(false).await;
        if let Some(request) = self.monitor.stats_due(t) {
            self.send_publish(Published::Stats, request).await;
        }
        self.flush_events().await;
    }

    /// Sends presence when the pacer allows it (or always, when `force`).
    async fn announce(&mut self, force: bool) {
        if self.monitor.presence_due(now(), force) {
            let p = self.monitor.presence(self.profile.caps.clone());
            self.session.send(p).await;
        }
    }

    async fn on_presence(&mut self, p: Presence) {
        let Some(from) = p.from.as_ref().map(Jid::to_bare) else {
            return;
        };
        let acls = [&self.cfg.subscribers, &self.cfg.admins];
        let current = (self.monitor.is_online() && p.type_ == PresenceType::Subscribed)
            .then(|| self.monitor.presence(self.profile.caps.clone()));
        let subscribed_to = self.session.contacts().subscribed_to(&from);
        let asks = &mut self.monitor.asks;
        let replies = presence::subscription_replies(
            &p.type_,
            &from,
            &acls,
            subscribed_to,
            current,
            asks,
            now(),
        );
        for reply in replies {
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
        } else if let Some(answer) = disco::answer(
            &self.profile,
            self.session.jid(),
            &req.payload,
            rights,
            &self.monitor.table,
        ) {
            let answer = answer.map(Some).map_err(|c| stanza_error(c, None));
            return self.session.reply(&req, answer).await;
        }
        self.session.reply_unavailable(&req).await
    }

    async fn on_command(&mut self, req: IqRequest, cmd: Command, rights: Rights) {
        let asker = req.from.as_ref().map(Jid::to_bare);
        let node = cmd.node.clone();
        let result = self
            .monitor
            .command(cmd, asker.as_ref(), rights, &self.cfg.shell, now());
        let (response, background) = match result {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::info!(from = ?req.from.as_ref().map(|j| j.to_string()), %node, condition = ?e.defined_condition, "Command refused.");
                return self.session.reply(&req, Err(e)).await;
            }
        };
        match background {
            Background::Shell(job) => {
                // Answered when the run ends; the bot keeps serving meanwhile.
                self.flush_events().await;
                return work::spawn_shell(&self.done_tx, req, job);
            }
            Background::Reboot { delay_secs, asker } => {
                let command = reboot::command(self.cfg.reboot_command.clone());
                work::spawn_reboot(&self.done_tx, command, asker, delay_secs);
            }
            Background::None => {}
        }
        self.session
            .reply(&req, Ok(Some(response.to_element())))
            .await;
        self.flush_events().await;
    }

    async fn on_done(&mut self, done: Done) {
        let t = now();
        match done {
            Done::Published(what, outcome) => self.monitor.published(what, outcome, t),
            Done::BootCheck(outcome) => self.monitor.boot_checked(outcome, t),
            Done::Notice(notice) => self.monitor.publish(notice, t),
            Done::Shell(run) => {
                let (req, job, outcome) = *run;
                let response = self.monitor.shell_finished(job, &outcome, t);
                self.session
                    .reply(&req, Ok(Some(response.to_element())))
                    .await;
            }
        }
        self.flush_events().await;
    }

    /// Sends every queued event (unless offline or backing off).
    async fn flush_events(&mut self) {
        for (what, request) in self.monitor.drain(now()) {
            self.send_publish(what, request).await;
        }
    }

    async fn send_publish(&mut self, what: Published, request: Element) {
        let rx = self.session.request(None, true, request).await;
        forward(rx, &self.done_tx, move |o| Done::Published(what, o));
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
