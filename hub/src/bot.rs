//! The hub bot: one task owns the session; presence feeds the collector registry and the
//! users' online state, PEP notifications become events for the query engine, chat messages
//! are queries, and a 250 ms tick drives delivery, `absent` and the silence backstop.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jabmon_shared::adhoc::{self, Command};
use jabmon_shared::payload::{CollectorStatus, Event as JabmonEvent, Stats};
use jabmon_shared::session::{
    forward, stanza_error, Incoming, IqFailure, IqOutcome, IqRequest, Session, SessionError,
    Software,
};
use jabmon_shared::{caps, forms, ns, pep};
use minidom::Element;
use tokio::sync::mpsc;
use xmpp_parsers::caps::Caps;
use xmpp_parsers::data_forms::{DataFormType, FieldType};
use xmpp_parsers::disco::{
    DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery, DiscoItemsResult, Identity, Item,
};
use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::presence::{Presence, Show, Type as PresenceType};
use xmpp_parsers::pubsub::event::{Event as PubSubEvent, Payload};
use xmpp_parsers::stanza_error::DefinedCondition;

use crate::collectors::{Change, Registry, Seen};
use crate::commands;
use crate::config::{Config, EventMessageType, Storage};
use crate::delivery::Delivery;
use crate::query::{dropped_message, Engine, Limits, Output, Reply, Saved};
use crate::storage;

/// Shutdown grace (docs/protocol.md §1 allows 5 s in all).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);
const TICK: Duration = Duration::from_millis(250);
/// Queries kept while registrations are being restored at start-up.
const MAX_BUFFERED: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("state file: {0}")]
    State(String),
    #[error("{0}")]
    Server(String),
}

use jabmon_shared::unix_now as now;

enum Done {
    CapsInfo {
        ver: String,
        from: FullJid,
        outcome: IqOutcome,
    },
    ServerFeatures(IqOutcome),
    Restore(IqOutcome),
    /// A PEP publish: what it was, and the server's answer.
    Published(&'static str, IqOutcome),
}

struct Hub {
    cfg: Config,
    session: Session,
    engine: Engine,
    delivery: Delivery,
    registry: Registry,
    info: DiscoInfoResult,
    caps: Caps,
    caps_node: String,
    /// XEP-0115 ver → does that entity have `urn:jabmon:stats:0`.
    caps_cache: HashMap<String, bool>,
    /// Presences waiting for a caps lookup, by ver.
    caps_waiting: HashMap<String, Vec<(FullJid, Seen)>>,
    /// Collectors' available full JIDs.
    collector_resources: HashMap<String, HashSet<String>>,
    /// Users' available resources.
    user_resources: HashMap<String, HashSet<String>>,
    seen_events: HashSet<(String, String)>,
    online: bool,
    restored: bool,
    restoring: bool,
    shutting_down: bool,
    fatal: Option<String>,
    buffered: VecDeque<Message>,
    /// Cleared when the server refuses `pubsub#max_items` as a publish-option (ejabberd).
    full_publish_options: bool,
    last_tick: f64,
    done_tx: mpsc::UnboundedSender<Done>,
}

/// Runs the hub until `shutdown` resolves.
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    let software = Software {
        name: "jabmon-hub".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let limits = Limits {
        max_queries_per_user: cfg.hub.max_queries_per_user,
        ..Limits::default()
    };
    let mut engine = Engine::new(limits);
    let mut restored = false;
    if cfg.hub.storage == Storage::File {
        let saved = storage::load_file(&cfg.hub.state_path).map_err(RunError::State)?;
        restore(&mut engine, &saved);
        restored = true;
    }
    let session = Session::start(&cfg.xmpp, software)?;
    let info = root_info();
    let caps = caps::caps(ns::CAPS_NODE, &info);
    let caps_node = format!("{}#{}", ns::CAPS_NODE, caps::ver(&info));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    tracing::info!(jid = %cfg.xmpp.jid, storage = ?cfg.hub.storage, registrations = engine.len(), "Hub starting.");
    let mut hub = Hub {
        delivery: Delivery::new(
            cfg.hub.max_events_per_second_per_user,
            cfg.hub.max_queued_events_per_user,
        ),
        session,
        engine,
        registry: Registry::default(),
        info,
        caps,
        caps_node,
        caps_cache: HashMap::new(),
        caps_waiting: HashMap::new(),
        collector_resources: HashMap::new(),
        user_resources: HashMap::new(),
        seen_events: HashSet::new(),
        online: false,
        restored,
        restoring: false,
        shutting_down: false,
        fatal: None,
        buffered: VecDeque::new(),
        full_publish_options: true,
        last_tick: 0.0,
        done_tx,
        cfg,
    };
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            event = hub.session.next() => match event {
                Some(e) => hub.on_event(e).await,
                None => break,
            },
            Some(done) = done_rx.recv() => hub.on_done(done).await,
            _ = tick.tick() => hub.on_tick().await,
        }
        if hub.fatal.is_some() {
            break;
        }
    }
    hub.shutting_down = true;
    tracing::info!("Hub stopping.");
    let grace = async {
        // Answer what is already queued with 503 rather than silence.
        while let Ok(Some(Incoming::Message(m))) =
            tokio::time::timeout(Duration::from_millis(50), hub.session.next()).await
        {
            hub.on_message(m).await;
        }
    };
    grace.await;
    let mut bye = Presence::unavailable();
    bye.set_status("", "Stopping");
    let fatal = hub.fatal.take();
    hub.session.close(Some(bye.into()), SHUTDOWN_GRACE).await;
    match fatal {
        Some(reason) => Err(RunError::Server(reason)),
        None => Ok(()),
    }
}

fn restore(engine: &mut Engine, saved: &[Saved]) {
    let mut ok = 0;
    for s in saved {
        match engine.restore(s) {
            Ok(_) => ok += 1,
            Err(e) => {
                tracing::error!(user = %s.user, cmd = %s.cmd, "Saved registration no longer valid, dropped: {e}")
            }
        }
    }
    tracing::info!(restored = ok, "Registrations restored.");
}

fn root_info() -> DiscoInfoResult {
    let features = [
        "http://jabber.org/protocol/caps",
        adhoc::NS,
        "http://jabber.org/protocol/disco#info",
        "http://jabber.org/protocol/disco#items",
        "jabber:iq:version",
        "urn:xmpp:ping",
        ns::COLLECTORS,
        "urn:jabmon:stats:0+notify",
        "urn:jabmon:events:0+notify",
    ];
    DiscoInfoResult {
        node: None,
        identities: vec![Identity::new("client", "bot", "en", "jabmon hub")],
        features: features.iter().map(|s| s.to_string()).collect(),
        extensions: vec![],
    }
}

impl Hub {
    fn is_user(&self, jid: &BareJid) -> bool {
        self.cfg.users.allows(jid) || self.cfg.admins.allows(jid)
    }

    async fn on_event(&mut self, event: Incoming) {
        match event {
            Incoming::Online { resumed } => {
                self.online = true;
                if !resumed {
                    self.session.request_roster().await;
                    self.session
                        .send(Presence::available().with_payload(self.caps.clone()))
                        .await;
                    if !self.restored && !self.restoring {
                        self.restoring = true;
                        let rx = self
                            .session
                            .request(
                                Some(Jid::from(self.cfg.xmpp.jid.clone())),
                                false,
                                DiscoInfoQuery { node: None }.into(),
                            )
                            .await;
                        forward(rx, &self.done_tx, Done::ServerFeatures);
                    }
                }
            }
            Incoming::Suspended => self.online = false,
            Incoming::Presence(p) => self.on_presence(p).await,
            Incoming::Message(m) => self.on_message(m).await,
            Incoming::Iq(req) => self.on_iq(req).await,
        }
    }

    async fn on_done(&mut self, done: Done) {
        match done {
            Done::ServerFeatures(outcome) => {
                let ok = outcome
                    .ok()
                    .flatten()
                    .and_then(|el| DiscoInfoResult::try_from(el).ok())
                    .is_some_and(|info| {
                        info.identities
                            .iter()
                            .any(|i| i.category == "pubsub" && i.type_ == "pep")
                            && info
                                .features
                                .contains("http://jabber.org/protocol/pubsub#publish-options")
                    });
                if !ok {
                    let msg = "the server does not offer PEP with publish-options (XEP-0223), needed for storage = \"pep\"; set [hub] storage = \"file\" and state_path instead";
                    tracing::error!("{msg}");
                    self.fatal = Some(msg.to_string());
                    return;
                }
                let rx = self
                    .session
                    .request(None, false, pep::latest_items(storage::NS, 1))
                    .await;
                forward(rx, &self.done_tx, Done::Restore);
            }
            Done::Restore(outcome) => {
                let saved = match outcome {
                    Ok(Some(result)) => pep::item_payloads(result)
                        .into_iter()
                        .filter_map(|p| storage::PepRegistrations::try_from(p).ok())
                        .next_back()
                        .map(|r| r.into_saved())
                        .unwrap_or_default(),
                    Ok(None) => vec![],
                    Err(IqFailure::Error(e))
                        if e.defined_condition == DefinedCondition::ItemNotFound =>
                    {
                        vec![]
                    }
                    Err(e) => {
                        tracing::warn!("Could not read saved registrations ({e}); retrying at the next connection.");
                        self.restoring = false;
                        return;
                    }
                };
                restore(&mut self.engine, &saved);
                self.restored = true;
                self.restoring = false;
                while let Some(m) = self.buffered.pop_front() {
                    self.on_message(m).await;
                }
            }
            Done::Published(what, outcome) => {
                if let (Err(IqFailure::Error(e)), true, "registrations") =
                    (&outcome, self.full_publish_options, what)
                {
                    if pep::refuses_options(e) {
                        tracing::warn!(reason = %pep::describe(e), "Server refused publish-options; saving with access_model and persist_items only.");
                        self.full_publish_options = false;
                        return self.save().await;
                    }
                }
                if let Err(e) = outcome {
                    tracing::error!(
                        what,
                        "PEP publish failed: {e}. It is published again at the next change."
                    );
                }
            }
            Done::CapsInfo { ver, from, outcome } => {
                let info = outcome
                    .ok()
                    .flatten()
                    .and_then(|el| DiscoInfoResult::try_from(el).ok());
                let is_collector = info
                    .as_ref()
                    .is_some_and(|i| i.features.contains(ns::STATS));
                if let Some(info) = &info {
                    // Cache by ver only when the hash checks out (XEP-0115 §5.4).
                    let mut plain = info.clone();
                    plain.node = None;
                    if caps::ver(&plain) == ver {
                        self.caps_cache.insert(ver.clone(), is_collector);
                    }
                    if is_collector {
                        let facts = info
                            .extensions
                            .iter()
                            .filter(|f| f.form_type() == Some(ns::HOST))
                            .flat_map(|f| &f.fields)
                            .filter_map(|f| Some((f.var.clone()?, f.values.first()?.clone())))
                            .filter(|(k, _)| k != "FORM_TYPE")
                            .collect();
                        self.registry.facts(&from.to_bare(), facts);
                    }
                }
                for (jid, seen) in self.caps_waiting.remove(&ver).unwrap_or_default() {
                    if is_collector {
                        self.collector_seen(&jid, seen).await;
                    }
                }
            }
        }
    }

    // ---- presence ---------------------------------------------------------------------------

    async fn on_presence(&mut self, p: Presence) {
        let Some(from) = p.from.clone() else { return };
        let bare = from.to_bare();
        let t = now();
        match p.type_ {
            PresenceType::Subscribe => {
                if self.cfg.collectors.allows(&bare) || self.is_user(&bare) {
                    tracing::info!(%bare, "Subscription approved.");
                    self.session
                        .send(Presence::subscribed().with_to(bare.clone()))
                        .await;
                    self.session.send(Presence::subscribe().with_to(bare)).await;
                } else {
                    tracing::warn!(%bare, "Subscription refused: neither a collector nor a user.");
                    self.session
                        .send(Presence::new(PresenceType::Unsubscribed).with_to(bare))
                        .await;
                }
            }
            PresenceType::Subscribed => {
                // ejabberd records +notify interest only from presence after the approval.
                self.session
                    .send(
                        Presence::available()
                            .with_payload(self.caps.clone())
                            .with_to(bare),
                    )
                    .await;
            }
            PresenceType::None => {
                let key = bare.to_string();
                if self.is_user(&bare) {
                    if let Some(r) = from.resource() {
                        self.user_resources
                            .entry(key.clone())
                            .or_default()
                            .insert(r.to_string());
                    }
                    self.delivery.set_online(&Arc::from(key.as_str()), true, t);
                }
                if !self.cfg.collectors.allows(&bare) {
                    return;
                }
                let Ok(full) = from.clone().try_into_full() else {
                    return;
                };
                let status = p.statuses.values().next().map(|s| s.as_str()).unwrap_or("");
                let seen = Seen::Available {
                    away: matches!(p.show, Some(Show::Away) | Some(Show::Xa)),
                    dnd: p.show == Some(Show::Dnd),
                    starting: status == "Starting up",
                };
                let caps = p
                    .payloads
                    .iter()
                    .find_map(|e| Caps::try_from(e.clone()).ok());
                match caps {
                    Some(c) => {
                        let ver = base64_ver(&c);
                        match self.caps_cache.get(&ver) {
                            Some(true) => self.collector_seen(&full, seen).await,
                            Some(false) => {}
                            None => {
                                let waiting = self.caps_waiting.entry(ver.clone()).or_default();
                                let first = waiting.is_empty();
                                waiting.retain(|(j, _)| j != &full);
                                waiting.push((full.clone(), seen));
                                if first {
                                    let q = DiscoInfoQuery {
                                        node: Some(format!("{}#{ver}", c.node)),
                                    };
                                    let rx = self
                                        .session
                                        .request(Some(Jid::from(full.clone())), false, q.into())
                                        .await;
                                    forward(rx, &self.done_tx, move |outcome| Done::CapsInfo {
                                        ver,
                                        from: full,
                                        outcome,
                                    });
                                }
                            }
                        }
                    }
                    None if self.registry.is_known(&bare) => self.collector_seen(&full, seen).await,
                    None => {}
                }
            }
            PresenceType::Unavailable => {
                let key = bare.to_string();
                if let Some(r) = from.resource() {
                    if let Some(set) = self.user_resources.get_mut(&key) {
                        set.remove(r.as_str());
                        if set.is_empty() {
                            self.delivery.set_online(&Arc::from(key.as_str()), false, t);
                        }
                    }
                }
                if self.registry.is_known(&bare) {
                    let resources = self.collector_resources.entry(key.clone()).or_default();
                    match from.resource() {
                        Some(r) => {
                            resources.remove(r.as_str());
                        }
                        // A bare unavailable (subscription changes) means nothing while a
                        // resource is known to be available.
                        None if !resources.is_empty() => return,
                        None => {}
                    }
                    if resources.is_empty() {
                        if let Some(change) = self.registry.presence(&bare, Seen::Unavailable, t) {
                            self.status_changed(change).await;
                        }
                    }
                }
            }
            _ => {}
        }
    }

    async fn collector_seen(&mut self, full: &FullJid, seen: Seen) {
        let bare = full.to_bare();
        let key = bare.to_string();
        self.collector_resources
            .entry(key.clone())
            .or_default()
            .insert(full.resource().to_string());
        if let Some(change) = self.registry.presence(&bare, seen, now()) {
            self.status_changed(change).await;
        }
    }

    /// Publishes a status change and injects it into the event stream.
    async fn status_changed(&mut self, change: Change) {
        tracing::info!(collector = %change.jid, host = %change.host, from = %change.from, to = %change.to, "Collector status changed.");
        let t = now();
        let item = CollectorStatus {
            jid: change.jid.to_string(),
            host: change.host.clone(),
            status: change.to,
            timestamp: t,
        };
        let req = pep::publish(
            ns::COLLECTORS,
            change.jid.as_str(),
            item.into(),
            &[("pubsub#access_model", "presence")],
        );
        let rx = self.session.request(None, true, req).await;
        forward(rx, &self.done_tx, |o| {
            Done::Published("collector status", o)
        });
        let mut out = Vec::new();
        self.engine.feed(
            &format!("{}.jabmon.status.alive", change.host),
            t,
            f64::from(u8::from(change.to.is_alive())),
            &mut out,
        );
        self.engine.feed(
            &format!("{}.jabmon.status.busy", change.host),
            t,
            f64::from(u8::from(change.to.is_busy())),
            &mut out,
        );
        self.queue_outputs(out, t).await;
    }

    // ---- messages ---------------------------------------------------------------------------

    async fn on_message(&mut self, m: Message) {
        if let Some(from) = m.from.clone() {
            if let Some(event) = m
                .payloads
                .iter()
                .find_map(|p| PubSubEvent::try_from(p.clone()).ok())
            {
                // PEP notifications come from the publisher's bare JID, stamped by the server;
                // a client's own message always carries its full JID, so a user cannot pose as
                // a collector by sending a pubsub payload.
                if from.resource().is_none() {
                    return self.on_pep(from.to_bare(), event).await;
                }
                tracing::warn!(%from, "Ignored a pubsub event sent by a client, not by the server.");
                return;
            }
        }
        if !matches!(m.type_, MessageType::Chat | MessageType::Normal) {
            return;
        }
        let Some(body) = m.bodies.values().next().cloned() else {
            return;
        };
        let Some(from) = m.from.clone() else { return };
        let bare = from.to_bare();
        let reply = if self.shutting_down || !self.online {
            Reply::unavailable(&body)
        } else if !self.is_user(&bare) {
            tracing::info!(%bare, "Query refused: not a user.");
            Reply::forbidden(&body)
        } else if !self.restored {
            if self.buffered.len() < MAX_BUFFERED {
                self.buffered.push_back(m);
                return;
            }
            Reply::unavailable(&body)
        } else {
            let user = bare.to_string();
            if let Some(r) = from.resource() {
                self.user_resources
                    .entry(user.clone())
                    .or_default()
                    .insert(r.to_string());
            }
            let before_len = self.engine.len();
            let before: Vec<String> = self
                .engine
                .list(&user)
                .into_iter()
                .map(|(_, k)| k)
                .collect();
            let reply = self.engine.handle(&user, &body);
            if self.engine.len() != before_len {
                let after: HashSet<String> = self
                    .engine
                    .list(&user)
                    .into_iter()
                    .map(|(_, k)| k)
                    .collect();
                for k in before.iter().filter(|k| !after.contains(*k)) {
                    self.delivery.forget_key(&user, k);
                }
                self.save().await;
            }
            reply
        };
        let mut answer = Message::new(Some(from));
        answer.type_ = m.type_.clone();
        answer.bodies.insert(Default::default(), reply.to_json());
        self.session.send(answer).await;
    }

    /// Persists the registrations after a change.
    async fn save(&mut self) {
        let saved = self.engine.registrations();
        match self.cfg.hub.storage {
            Storage::File => {
                if let Err(e) = storage::save_file(&self.cfg.hub.state_path, &saved) {
                    tracing::error!(path = %self.cfg.hub.state_path.display(), "Could not save registrations: {e}");
                }
            }
            Storage::Pep => {
                let payload: Element = storage::PepRegistrations::from(saved.as_slice()).into();
                let mut options = vec![
                    ("pubsub#persist_items", "true"),
                    ("pubsub#access_model", "whitelist"),
                ];
                if self.full_publish_options {
                    options.push(("pubsub#max_items", "1"));
                }
                let req = pep::publish(storage::NS, "current", payload, &options);
                let rx = self.session.request(None, true, req).await;
                forward(rx, &self.done_tx, |o| Done::Published("registrations", o));
            }
        }
    }

    async fn on_pep(&mut self, from: BareJid, event: PubSubEvent) {
        let Payload::Items {
            node, published, ..
        } = event.payload
        else {
            return;
        };
        let jid = from.to_string();
        if !self.registry.is_known(&from) && !self.cfg.collectors.allows(&from) {
            return;
        }
        let t = now();
        let mut out = Vec::new();
        for item in published {
            let Some(payload) = item.payload else {
                continue;
            };
            if node.0 == ns::STATS {
                let Ok(stats) = Stats::try_from(payload) else {
                    continue;
                };
                let values: Vec<(String, f64)> = stats
                    .stats
                    .iter()
                    .map(|s| (s.name.clone(), s.value))
                    .collect();
                if !self
                    .registry
                    .record_stats(&from, &stats.host, stats.timestamp, values, t)
                {
                    continue; // a replay or a duplicate
                }
                let host = self
                    .registry
                    .get(&from)
                    .map(|c| c.host.clone())
                    .unwrap_or_default();
                for s in &stats.stats {
                    self.engine.feed(
                        &format!("{host}.{}", s.name),
                        stats.timestamp,
                        s.value,
                        &mut out,
                    );
                }
                if self
                    .registry
                    .get(&from)
                    .is_some_and(|c| !c.status.is_alive())
                    && self
                        .collector_resources
                        .get(&jid)
                        .is_some_and(|r| !r.is_empty())
                {
                    if let Some(change) = self.registry.presence(
                        &from,
                        Seen::Available {
                            away: false,
                            dnd: false,
                            starting: false,
                        },
                        t,
                    ) {
                        self.status_changed(change).await;
                    }
                }
            } else if node.0 == ns::EVENTS {
                let Ok(ev) = JabmonEvent::try_from(payload) else {
                    continue;
                };
                let id = item.id.map(|i| i.0).unwrap_or_default();
                if t - ev.timestamp > crate::collectors::STALE_AFTER
                    || !self.seen_events.insert((jid.clone(), id))
                {
                    continue;
                }
                if self.seen_events.len() > 10_000 {
                    self.seen_events.clear();
                }
                let host = self
                    .registry
                    .get(&from)
                    .map(|c| c.host.clone())
                    .unwrap_or_else(|| jabmon_shared::metric::host_label(&ev.host));
                self.engine.feed(
                    &format!("{host}.jabmon.event.{}", ev.kind),
                    ev.timestamp,
                    1.0,
                    &mut out,
                );
            }
        }
        self.queue_outputs(out, t).await;
    }

    async fn queue_outputs(&mut self, out: Vec<Output>, t: f64) {
        for o in out {
            let body = o.message_body();
            self.delivery.push(&o.user, &o.key, body, t);
        }
        self.flush(t).await;
    }

    async fn flush(&mut self, t: f64) {
        if !self.online {
            return;
        }
        let ready = self.delivery.ready(t, dropped_message);
        let type_ = match self.cfg.hub.event_message_type {
            EventMessageType::Chat => MessageType::Chat,
            EventMessageType::Headline => MessageType::Headline,
        };
        for (user, _key, body) in ready {
            let Ok(to) = BareJid::new(&user) else {
                continue;
            };
            let mut m = Message::new(Some(Jid::from(to)));
            m.type_ = type_.clone();
            m.bodies.insert(Default::default(), body);
            self.session.send(m).await;
        }
    }

    async fn on_tick(&mut self) {
        let t = now();
        let mut out = Vec::new();
        if t - self.last_tick >= 1.0 {
            self.last_tick = t;
            self.engine.tick(t, &mut out);
            for change in self.registry.silence(t, self.cfg.hub.silence_intervals) {
                tracing::warn!(collector = %change.jid, "No stats for {} publish intervals.", self.cfg.hub.silence_intervals);
                self.status_changed(change).await;
            }
        }
        self.queue_outputs(out, t).await;
    }

    // ---- IQs --------------------------------------------------------------------------------

    async fn on_iq(&mut self, req: IqRequest) {
        let asker = req.from.as_ref().map(Jid::to_bare);
        let is_user = asker.as_ref().is_some_and(|j| self.is_user(j));
        if req.set {
            if let Ok(cmd) = Command::try_from(req.payload.clone()) {
                let outcome = match (asker, is_user) {
                    (Some(user), true) => self.command(&user, &cmd.node),
                    _ => Err(stanza_error(
                        DefinedCondition::Forbidden,
                        Some("Only the hub's users may run its commands."),
                    )),
                };
                if outcome.is_ok() && cmd.node == "delete-queries" {
                    self.save().await;
                }
                return self.session.reply(&req, outcome.map(Some)).await;
            }
        } else if let Ok(q) = DiscoInfoQuery::try_from(req.payload.clone()) {
            let outcome = match q.node.as_deref() {
                None => Ok(self.info.clone()),
                Some(n) if n == self.caps_node => {
                    let mut i = self.info.clone();
                    i.node = Some(n.to_string());
                    Ok(i)
                }
                Some(n) if commands::NODES.iter().any(|(c, _)| *c == n) => Ok(DiscoInfoResult {
                    node: Some(n.to_string()),
                    identities: vec![Identity::new("automation", "command-node", "en", n)],
                    features: [adhoc::NS.to_string(), "jabber:x:data".to_string()]
                        .into_iter()
                        .collect(),
                    extensions: vec![],
                }),
                Some(n) if BareJid::new(n).is_ok_and(|j| self.registry.is_known(&j)) && is_user => {
                    Ok(self.collector_info(n))
                }
                Some(n) if BareJid::new(n).is_ok_and(|j| self.registry.is_known(&j)) => {
                    Err(stanza_error(DefinedCondition::Forbidden, None))
                }
                Some(_) => Err(stanza_error(DefinedCondition::ItemNotFound, None)),
            };
            let outcome = outcome.map(|i| Some(forms::to_element(i)));
            return self.session.reply(&req, outcome).await;
        } else if let Ok(q) = DiscoItemsQuery::try_from(req.payload.clone()) {
            let me = Jid::from(self.session.jid().clone());
            let outcome = match q.node.as_deref() {
                None => Ok(DiscoItemsResult {
                    node: None,
                    items: if is_user {
                        self.registry
                            .iter()
                            .filter_map(|c| {
                                Some(Item {
                                    jid: Jid::from(c.jid.clone()),
                                    node: Some(c.jid.to_string()),
                                    name: Some(c.host.clone()),
                                })
                            })
                            .collect()
                    } else {
                        vec![]
                    },
                    rsm: None,
                }),
                Some(adhoc::NS) => Ok(DiscoItemsResult {
                    node: q.node.clone(),
                    items: if is_user {
                        commands::NODES
                            .iter()
                            .map(|(n, t)| Item {
                                jid: me.clone(),
                                node: Some(n.to_string()),
                                name: Some(t.to_string()),
                            })
                            .collect()
                    } else {
                        vec![]
                    },
                    rsm: None,
                }),
                Some(_) => Err(stanza_error(DefinedCondition::ItemNotFound, None)),
            };
            return self
                .session
                .reply(&req, outcome.map(|r| Some(r.into())))
                .await;
        }
        self.session.reply_unavailable(&req).await
    }

    fn command(
        &mut self,
        user: &BareJid,
        node: &str,
    ) -> Result<Element, xmpp_parsers::stanza_error::StanzaError> {
        let u = user.to_string();
        match node {
            "collectors" => Ok(commands::collectors::execute(&self.registry, now())),
            "queries" => Ok(commands::queries::execute(&self.engine, &u)),
            "delete-queries" => {
                let keys = self.engine.delete_all(&u);
                for k in &keys {
                    self.delivery.forget_key(&u, k);
                }
                Ok(commands::delete_queries::response(keys.len()))
            }
            _ => Err(stanza_error(
                DefinedCondition::ItemNotFound,
                Some("No such command."),
            )),
        }
    }

    fn collector_info(&self, jid: &str) -> DiscoInfoResult {
        let c = self
            .registry
            .get(&BareJid::new(jid).expect("known collector"))
            .expect("known collector");
        let text = |var: &str, label: &str, v: String| {
            forms::field(var, FieldType::TextSingle, label, vec![v])
        };
        let time = |t: Option<f64>| t.map(|t| format!("{t:.3}")).unwrap_or_default();
        let mut fields = vec![
            text("host", "Host", c.host.clone()),
            text("status", "Status", c.status.to_string()),
            text("last_seen", "Last seen (epoch s)", time(c.last_seen)),
            text("last_sample", "Last sample (epoch s)", time(c.last_sample)),
        ];
        for (k, v) in &c.facts {
            fields.push(text(k, k, v.clone()));
        }
        DiscoInfoResult {
            node: Some(jid.to_string()),
            identities: vec![Identity::new(
                "client",
                "bot",
                "en",
                format!("collector {}", c.host),
            )],
            features: ["http://jabber.org/protocol/disco#info".to_string()]
                .into_iter()
                .collect(),
            extensions: vec![forms::form(DataFormType::Result_, ns::COLLECTORS, fields)],
        }
    }
}

fn base64_ver(c: &Caps) -> String {
    xmpp_parsers::hashes::Hash::new(c.hash.clone(), c.ver.clone()).to_base64()
}
