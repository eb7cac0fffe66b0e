//! The collector bot: one task that owns the session and reacts to three things — a stanza,
//! the sample timer, and shutdown. Handlers are split by stanza kind below.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jabmon_shared::caps;
use jabmon_shared::ns;
use jabmon_shared::session::{stanza_error, Incoming, IqRequest, Session, SessionError, Software};
use xmpp_parsers::caps::Caps;
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery, DiscoItemsResult};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::presence::{Presence, Show, Type as PresenceType};
use xmpp_parsers::stanza_error::DefinedCondition;

use crate::config::Config;
use crate::disco::{self, HostFacts};
use crate::metrics::MetricTable;
use crate::presence::{self, Level, Pacer};
use crate::sample::Sampler;

/// How long shutdown may take before we leave anyway (the contract allows 5 s in all).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

const COMMANDS_NODE: &str = "http://jabber.org/protocol/commands";

/// Errors that stop the collector.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// Seconds since the epoch, as a float.
pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

struct Collector {
    cfg: Config,
    session: Session,
    facts: HostFacts,
    info: DiscoInfoResult,
    caps: Caps,
    caps_node: String,
    table: MetricTable,
    sampler: Sampler,
    level: Level,
    pacer: Pacer,
    online: bool,
}

/// Runs the collector until `shutdown` resolves, then says goodbye (unavailable presence with
/// status `Stopping`) and closes the stream within [`SHUTDOWN_GRACE`].
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    let software = Software { name: "jabmon-collector".into(), version: env!("CARGO_PKG_VERSION").into() };
    let session = Session::start(&cfg.xmpp, software)?;
    let facts = HostFacts::read();
    let info = disco::root_info(&cfg.host, &facts);
    let caps = caps::caps(ns::CAPS_NODE, &info);
    let caps_node = format!("{}#{}", ns::CAPS_NODE, caps::ver(&info));
    tracing::info!(host = %cfg.host, jid = %cfg.xmpp.jid, caps = %caps_node, "Collector starting.");
    let mut bot = Collector {
        session,
        facts,
        info,
        caps,
        caps_node,
        table: MetricTable::default(),
        sampler: Sampler::new(),
        level: Level::Starting,
        pacer: Pacer::default(),
        online: false,
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
            _ = tick.tick() => bot.on_tick().await,
        }
    }
    tracing::info!("Collector stopping.");
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
                }
            }
            Incoming::Suspended => self.online = false,
            Incoming::Iq(req) => self.on_iq(req).await,
            Incoming::Presence(p) => self.on_presence(p).await,
            Incoming::Message(_) => {}
        }
    }

    async fn on_tick(&mut self) {
        let t = now();
        let readings = self.sampler.sample(t);
        self.table.record(t, readings);
        if let (Some(load), Some(_)) = (self.table.value("load.load.shortterm"), self.table.value("cpu.cpu.idle")) {
            let per_core = load / self.facts.cores.max(1) as f64;
            let level = presence::next_level(self.level, per_core, &self.cfg.thresholds);
            if level != self.level {
                tracing::info!(from = ?self.level, to = ?level, per_core, "Load level changed.");
            }
            self.level = level;
        }
        self.announce(false).await;
    }

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
            [v("load.load.shortterm"), v("load.load.midterm"), v("load.load.longterm")],
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
        let Some(from) = p.from.as_ref().map(Jid::to_bare) else { return };
        match p.type_ {
            PresenceType::Subscribe => {
                if self.cfg.subscribers.allows(&from) {
                    tracing::info!(%from, "Subscription approved.");
                    self.session.send(Presence::subscribed().with_to(from.clone())).await;
                    self.session.send(Presence::subscribe().with_to(from)).await;
                } else {
                    tracing::warn!(%from, "Subscription refused: not in access.subscribers.");
                    self.session.send(Presence::new(PresenceType::Unsubscribed).with_to(from)).await;
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

    fn may_read_stats(&self, from: Option<&Jid>) -> bool {
        let Some(from) = from.map(Jid::to_bare) else { return false };
        from == self.cfg.xmpp.jid || self.cfg.subscribers.allows(&from) || self.cfg.admins.allows(&from)
    }

    async fn on_iq(&mut self, req: IqRequest) {
        if !req.set {
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
        let answer = match node.as_deref() {
            None => Ok(self.info.clone()),
            Some(n) if n == self.caps_node => {
                let mut info = self.info.clone();
                info.node = Some(n.to_string());
                Ok(info)
            }
            Some(group) => match disco::group_info(group, &self.table) {
                Some(_) if !self.may_read_stats(req.from.as_ref()) => Err(DefinedCondition::Forbidden),
                Some(info) => Ok(info),
                None => Err(DefinedCondition::ItemNotFound),
            },
        };
        let outcome = answer
            .map(|info| Some(disco::info_element(info)))
            .map_err(|c| stanza_error(c, None));
        self.session.reply(req, outcome).await
    }

    async fn on_disco_items(&mut self, req: &IqRequest, node: Option<String>) {
        let answer = match node.as_deref() {
            None => Ok(disco::items(self.session.jid())),
            Some(COMMANDS_NODE) => Ok(DiscoItemsResult { node, items: vec![], rsm: None }),
            Some(_) => Err(stanza_error(DefinedCondition::ItemNotFound, None)),
        };
        self.session.reply(req, answer.map(|r| Some(r.into()))).await
    }
}

