//! The hub's state machine (pure, sans-IO): each incoming stanza, IQ answer and tick goes in
//! with the clock, and the [`Action`]s to perform come out. [`crate::bot`] only performs them.

use std::collections::HashSet;
use std::sync::Arc;

use jabmon_shared::session::{stanza_error, IqOutcome, IqRequest};
use jabmon_shared::{adhoc, forms, pep, presence};
use minidom::Element;
use xmpp_parsers::caps::Caps;
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery};
use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::pubsub::event::Event as PubSubEvent;
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

use crate::alerts::{self, Alerts, Target};
use crate::collectors::{Change, Registry, Seen};
use crate::commands::silence::OpenForms;
use crate::commands::{Context, HubCommand};
use crate::config::{Config, EventMessageType};
use crate::counters::Counters;
use crate::delivery::Delivery;
use crate::disco::{Disco, View};
use crate::ingest::{self, Feed, Ingest};
use crate::muc::{FromRoom, Rooms};
use crate::query::{Engine, Output, Reply};
use crate::reference::{self, Reference};
use crate::restore::{self, Restore, MAX_BUFFERED};
use crate::roster::{self, CollectorCheck, Roster};
use crate::storage::{self, Snapshot};
use crate::subscriptions::{self, Answered, Subscriptions};
use crate::throttle::{Episode, Throttle};

/// Something the bot must do.
#[derive(Debug)]
pub enum Action {
    Presence(Presence),
    Message(Message),
    /// Ask for the roster (a fresh stream).
    RequestRoster,
    /// Send an IQ; its outcome comes back with `then`.
    Request {
        to: Option<Jid>,
        set: bool,
        payload: Element,
        then: Awaiting,
    },
    /// Persist the registrations.
    Save,
    /// Stop: the hub cannot work with this server.
    Fatal(String),
}

/// What an IQ's outcome is for.
#[derive(Debug, Clone, PartialEq)]
pub enum Awaiting {
    /// The server's disco#info (does it offer PEP storage?).
    ServerFeatures,
    /// The saved registrations' latest PEP item.
    Restore,
    /// A caps lookup of `from`, for `ver`.
    CapsInfo { ver: String, from: FullJid },
    /// A PEP publish.
    Published(Published),
    /// An explicit subscription to a collector's PEP node.
    Subscription {
        collector: BareJid,
        node: &'static str,
    },
}

/// What a PEP publish was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    Registrations,
    CollectorStatus,
}

impl Published {
    pub fn as_str(self) -> &'static str {
        match self {
            Published::Registrations => "registrations",
            Published::CollectorStatus => "collector status",
        }
    }
}

/// The answer to an IQ request.
pub type IqAnswer = Result<Option<Element>, StanzaError>;

/// Everything the hub knows.
pub struct HubState {
    cfg: Config,
    pub engine: Engine,
    delivery: Delivery,
    registry: Registry,
    roster: Roster,
    ingest: Ingest,
    restore: Restore<Message>,
    disco: Disco,
    throttle: Throttle,
    /// Whom the hub asked for a subscription lately.
    asks: presence::RecentAsks,
    alerts: Alerts,
    /// Alert messages decided while feeding, sent with the next delivery.
    alert_actions: Vec<alerts::Action>,
    /// The alert state changed since the last save (saved at the next tick, at most once a
    /// second, and at shutdown).
    alerts_changed: bool,
    /// The MUC rooms alerts go to.
    rooms: Rooms,
    /// `silence` forms handed out and not answered yet.
    silence_forms: OpenForms,
    online: bool,
    shutting_down: bool,
    last_tick: f64,
    /// When the first tick ran (the hub's start, for `stats`).
    started: Option<f64>,
    /// What the hub counts about its own work.
    pub counters: Counters,
    /// Explicit subscriptions to the collectors' nodes.
    subscriptions: Subscriptions,
}

impl HubState {
    /// `engine` holds the registrations already loaded (`restored`: from the state file).
    pub fn new(cfg: Config, engine: Engine, restored: bool) -> Self {
        let limits = cfg.query_limits();
        let rules = cfg.alert_rules.clone();
        let started = jabmon_shared::unix_now();
        let alerts = Alerts::new(cfg.alerting.clone(), limits.clone(), rules, started)
            .unwrap_or_else(|problems| {
                // The config loader validated the rules; this is a second line of defence.
                tracing::error!(
                    ?problems,
                    "Alert rules refused; alerting runs without them."
                );
                Alerts::new(cfg.alerting.clone(), limits, vec![], started)
                    .unwrap_or_else(|_| unreachable!("no rules, no problems"))
            });
        Self {
            alerts,
            alert_actions: Vec::new(),
            alerts_changed: false,
            rooms: Rooms::new(cfg.rooms.clone()),
            silence_forms: OpenForms::default(),
            delivery: Delivery::new(
                cfg.hub.max_events_per_second_per_user,
                cfg.hub.max_queued_events_per_user,
            ),
            engine,
            registry: Registry::new(cfg.hub.silence_intervals),
            roster: Roster::default(),
            ingest: Ingest::default(),
            restore: Restore::new(restored, MAX_BUFFERED),
            disco: Disco::default(),
            throttle: Throttle::default(),
            asks: presence::RecentAsks::default(),
            online: false,
            shutting_down: false,
            last_tick: 0.0,
            started: None,
            counters: Counters::default(),
            subscriptions: Subscriptions::default(),
            cfg,
        }
    }

    /// The engine for the configured limits.
    pub fn engine_for(cfg: &Config) -> Engine {
        Engine::new(cfg.query_limits())
    }

    fn is_user(&self, jid: &BareJid) -> bool {
        self.cfg.users.allows(jid) || self.cfg.admins.allows(jid)
    }

    fn available(&self) -> Presence {
        Presence::available().with_payload(self.disco.caps().clone())
    }

    /// From now on, queries are answered 503.
    pub fn shutting_down(&mut self) {
        self.shutting_down = true;
    }

    /// The stream is ready; `resumed == false`: announce everything again.
    pub fn on_online(&mut self, resumed: bool) -> Vec<Action> {
        self.online = true;
        if resumed {
            return vec![];
        }
        self.subscriptions.reset();
        let mut out = vec![Action::RequestRoster, Action::Presence(self.available())];
        out.extend(self.rooms.on_online().into_iter().map(Action::Presence));
        if self.restore.start() {
            out.push(Action::Request {
                to: Some(Jid::from(self.cfg.xmpp.jid.clone())),
                set: false,
                payload: DiscoInfoQuery { node: None }.into(),
                then: Awaiting::ServerFeatures,
            });
        }
        out
    }

    pub fn on_suspended(&mut self) {
        self.online = false;
    }

    // ---- IQ answers -----------------------------------------------------------------------

    /// The outcome of a request made through [`Action::Request`] (publishes excepted: the
    /// bot handles those).
    pub fn on_answer(&mut self, then: Awaiting, outcome: IqOutcome, now: f64) -> Vec<Action> {
        match then {
            Awaiting::ServerFeatures => self.on_server_features(outcome),
            Awaiting::Restore => self.on_restore(outcome, now),
            Awaiting::CapsInfo { ver, from } => {
                let info = outcome
                    .ok()
                    .flatten()
                    .and_then(|el| DiscoInfoResult::try_from(el).ok());
                self.on_caps_info(&ver, &from, info.as_ref(), now)
            }
            Awaiting::Published(_) => vec![],
            Awaiting::Subscription { collector, node } => {
                self.on_subscription(collector, node, outcome, now)
            }
        }
    }

    /// The answer to an explicit subscription (paced and retried by [`Subscriptions`]).
    fn on_subscription(
        &mut self,
        collector: BareJid,
        node: &'static str,
        outcome: IqOutcome,
        now: f64,
    ) -> Vec<Action> {
        let request = (collector.clone(), node);
        let (said, next) = self.subscriptions.answered(request, outcome.is_ok(), now);
        match (said, outcome) {
            (Answered::AcceptedAfterRefusal, _) => {
                tracing::info!(%collector, %node, "Explicit PEP subscription accepted.");
            }
            (Answered::FirstRefusal, Err(e)) => {
                tracing::info!(%collector, %node, reason = %e, "Explicit PEP subscription refused (the node may not exist before its first publish); trying again, +notify meanwhile.");
            }
            _ => {}
        }
        self.subscription_requests(next)
    }

    fn on_server_features(&mut self, outcome: IqOutcome) -> Vec<Action> {
        if !restore::server_offers_pep_storage(outcome) {
            let msg = "the server does not offer PEP with publish-options (XEP-0223), needed for storage = \"pep\"; set [hub] storage = \"file\" and state_path instead";
            tracing::error!("{msg}");
            return vec![Action::Fatal(msg.to_string())];
        }
        vec![Action::Request {
            to: None,
            set: false,
            payload: pep::latest_items(storage::NS, 1),
            then: Awaiting::Restore,
        }]
    }

    fn on_restore(&mut self, outcome: IqOutcome, now: f64) -> Vec<Action> {
        match restore::saved_snapshot(outcome) {
            Ok(saved) => {
                restore::load_into(&mut self.engine, &saved.registrations);
                self.restore_alerts(saved.alerts, now);
                let waiting = self.restore.finish();
                waiting
                    .into_iter()
                    .flat_map(|m| self.on_message(m, now))
                    .collect()
            }
            Err(e) => {
                tracing::warn!(
                    "Could not read saved registrations ({e}); retrying at the next connection."
                );
                self.restore.failed();
                vec![]
            }
        }
    }

    fn on_caps_info(
        &mut self,
        ver: &str,
        from: &FullJid,
        info: Option<&DiscoInfoResult>,
        now: f64,
    ) -> Vec<Action> {
        let answer = self.roster.caps_answer(ver, info);
        let mut out: Vec<Action> = answer
            .next
            .into_iter()
            .filter_map(|ask| self.caps_request(ask))
            .collect();
        if !answer.is_collector {
            return out;
        }
        if let Some(info) = info {
            self.registry
                .facts(&from.to_bare(), roster::host_facts(info));
        }
        for (jid, seen) in answer.waiting {
            out.extend(self.collector_seen(&jid, seen, now));
        }
        out
    }

    /// The disco#info request of a caps lookup.
    fn caps_request(&mut self, check: CollectorCheck) -> Option<Action> {
        let CollectorCheck::Ask { to, node, ver } = check else {
            return None;
        };
        self.counters.caps_lookups += 1;
        Some(Action::Request {
            to: Some(Jid::from(to.clone())),
            set: false,
            payload: DiscoInfoQuery { node: Some(node) }.into(),
            then: Awaiting::CapsInfo { ver, from: to },
        })
    }

    // ---- presence -------------------------------------------------------------------------

    /// A presence; `subscribed_to`: the roster says we already receive the sender's presence
    /// (a `subscribe` from it is approved without asking back).
    pub fn on_presence(&mut self, p: Presence, subscribed_to: bool, now: f64) -> Vec<Action> {
        if let Some(room) = self.rooms.on_presence(&p, now) {
            let presences = room.presences.into_iter().map(Action::Presence);
            return presences
                .chain(room.messages.into_iter().map(Action::Message))
                .collect();
        }
        let Some(from) = p.from.clone() else {
            return vec![];
        };
        let bare = from.to_bare();
        match p.type_ {
            PresenceType::Subscribe => {
                let acls = [&self.cfg.collectors, &self.cfg.users, &self.cfg.admins];
                let answer =
                    presence::answer_subscription(&bare, &acls, subscribed_to, &mut self.asks, now);
                match answer.approved {
                    true => tracing::info!(%bare, "Subscription approved."),
                    false => {
                        tracing::warn!(%bare, "Subscription refused: neither a collector nor a user.")
                    }
                }
                answer.presences.into_iter().map(Action::Presence).collect()
            }
            // ejabberd records +notify interest only from presence after the approval.
            PresenceType::Subscribed => vec![Action::Presence(self.available().with_to(bare))],
            PresenceType::None => self.on_available(&p, from, bare, now),
            PresenceType::Unavailable => {
                let gone = roster::gone(&p);
                self.on_unavailable(&from, &bare, gone, now)
            }
            _ => vec![],
        }
    }

    fn on_available(&mut self, p: &Presence, from: Jid, bare: BareJid, now: f64) -> Vec<Action> {
        if self.is_user(&bare) {
            self.roster
                .user_available(&bare, from.resource().map(|r| r.as_str()));
            self.delivery
                .set_online(&Arc::from(bare.as_str()), true, now);
        }
        if !self.cfg.collectors.allows(&bare) {
            return vec![];
        }
        let Ok(full) = from.try_into_full() else {
            return vec![];
        };
        let caps = p
            .payloads
            .iter()
            .find_map(|e| Caps::try_from(e.clone()).ok());
        let known = self.registry.is_known(&bare);
        match self
            .roster
            .collector_available(full, roster::seen(p), caps.as_ref(), known)
        {
            CollectorCheck::Seen(full, seen) => self.collector_seen(&full, seen, now),
            ask @ CollectorCheck::Ask { .. } => self.caps_request(ask).into_iter().collect(),
            CollectorCheck::Nothing => vec![],
        }
    }

    fn on_unavailable(&mut self, from: &Jid, bare: &BareJid, gone: Seen, now: f64) -> Vec<Action> {
        if self
            .roster
            .user_unavailable(bare, from.resource().map(|r| r.as_str()))
        {
            self.delivery
                .set_online(&Arc::from(bare.as_str()), false, now);
        }
        if !self.registry.is_known(bare) || !self.roster.collector_unavailable(from) {
            return vec![];
        }
        match self.registry.presence(bare, gone, now) {
            Some(change) => self.status_changed(change, now),
            None => vec![],
        }
    }

    fn collector_seen(&mut self, full: &FullJid, seen: Seen, now: f64) -> Vec<Action> {
        self.roster.collector_seen(full);
        let mut out = self.subscribe_to(full.to_bare());
        if let Some(change) = self.registry.presence(&full.to_bare(), seen, now) {
            out.extend(self.status_changed(change, now));
        }
        out
    }

    /// Explicit subscriptions to a collector's stats and events nodes, once per stream
    /// (hub/src/subscriptions.rs); duplicates of items that come both ways are dropped at
    /// ingest.
    fn subscribe_to(&mut self, collector: BareJid) -> Vec<Action> {
        let nodes = [jabmon_shared::ns::STATS, jabmon_shared::ns::EVENTS];
        let now = self.subscriptions.collector_seen(&collector, nodes);
        self.subscription_requests(now)
    }

    /// Asks collectors' PEP services to subscribe the hub to their nodes.
    fn subscription_requests(&self, requests: Vec<subscriptions::Request>) -> Vec<Action> {
        requests
            .into_iter()
            .map(|(collector, node)| Action::Request {
                to: Some(Jid::from(collector.clone())),
                set: true,
                payload: pep::subscribe(node, &self.cfg.xmpp.jid),
                then: Awaiting::Subscription { collector, node },
            })
            .collect()
    }

    /// Publishes a status change and injects it into the event stream.
    fn status_changed(&mut self, change: Change, now: f64) -> Vec<Action> {
        tracing::info!(collector = %change.jid, host = %change.host, from = %change.from, to = %change.to, "Collector status changed.");
        let item = jabmon_shared::payload::CollectorStatus {
            jid: change.jid.to_string(),
            host: change.host.clone(),
            status: change.to,
            timestamp: now,
        };
        let payload = pep::publish(
            jabmon_shared::ns::COLLECTORS,
            change.jid.as_str(),
            item.into(),
            &[("pubsub#access_model", "presence")],
        );
        let mut out = vec![Action::Request {
            to: None,
            set: true,
            payload,
            then: Awaiting::Published(Published::CollectorStatus),
        }];
        if let Some(signal) = alerts::collector::from_status(&change) {
            let decided = self.alerts.on_collector(signal, now);
            self.alert_actions.extend(decided);
        }
        let outputs = self.feed(ingest::status_feeds(&change, now), now);
        out.extend(self.deliver(outputs, now));
        out
    }

    // ---- messages -------------------------------------------------------------------------

    pub fn on_message(&mut self, m: Message, now: f64) -> Vec<Action> {
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
                    return self.on_pep(&from.to_bare(), event, now);
                }
                tracing::warn!(%from, "Ignored a pubsub event sent by a client, not by the server.");
                return vec![];
            }
        }
        if m.type_ == MessageType::Groupchat {
            return self.on_groupchat(&m, now);
        }
        if !matches!(m.type_, MessageType::Chat | MessageType::Normal) {
            return vec![];
        }
        // Until the saved state is back, a user's commands wait for it (an ack or a silence
        // now would be overwritten by the restore, a listing would miss what was saved).
        let from_user = m.from.as_ref().is_some_and(|f| self.is_user(&f.to_bare()));
        if from_user && self.online && !self.shutting_down && !self.restore.is_restored() {
            match self.restore.buffer(m) {
                Ok(()) => return vec![],
                Err(m) => return self.unavailable_answer(m),
            }
        }
        if let Some(actions) = self.alert_reference(&m, now) {
            return actions;
        }
        let (Some(body), Some(from)) = (m.bodies.values().next().cloned(), m.from.clone()) else {
            return vec![];
        };
        let type_ = m.type_.clone();
        let mut out = Vec::new();
        let reply = match self.alert_command(&from, &body, now, &mut out) {
            Some(Some(reply)) => Some(reply),
            Some(None) => return out,
            None => None,
        };
        let reply = match reply {
            Some(reply) => reply,
            None => match self.query_reply(m, &from, &body, &mut out) {
                Some(reply) => reply,
                None => return out,
            },
        };
        out.push(self.answer(from, type_, &reply));
        out
    }

    /// `reply` rendered for its user, as a message of `type_` to `to`.
    fn answer(&self, to: Jid, type_: MessageType, reply: &Reply) -> Action {
        let body = self.engine.render(to.to_bare().as_str(), reply);
        let mut answer = Message::new(Some(to));
        answer.type_ = type_;
        answer.bodies.insert(Default::default(), body);
        Action::Message(answer)
    }

    /// An alerting command (docs/alerts.md) from a user: its answers go to `out` as plain text
    /// (`Some(None)`); a JSON reply only for a refusal or a syntax error (`Some(Some(_))`);
    /// `None` when `body` is not an alerting command.
    fn alert_command(
        &mut self,
        from: &Jid,
        body: &str,
        now: f64,
        out: &mut Vec<Action>,
    ) -> Option<Option<Reply>> {
        let parsed = alerts::chat::parse(body, &self.cfg.query_limits())?;
        let bare = from.to_bare();
        if self.shutting_down || !self.online {
            return Some(Some(Reply::unavailable(body)));
        }
        if !self.is_user(&bare) {
            return Some(Some(Reply::forbidden(body)));
        }
        let cmd = match parsed {
            Ok(cmd) => cmd,
            Err(e) => {
                let reason = format!("{} at column {}", e.message, e.column);
                return Some(Some(Reply::status(e.status(), reason, body)));
            }
        };
        let sender = alerts::Sender {
            who: bare.to_string(),
            reply_to: Target::User(bare.to_string()),
            allowed: true,
            queries: self.engine.count_of(bare.as_str()),
        };
        let decided = self.alerts.on_command(&sender, cmd, now);
        self.alert_actions.extend(decided);
        out.extend(self.answer_alerting());
        Some(None)
    }

    /// A groupchat message from one of the hub's rooms: the reflection of its own alert
    /// message (its room stanza id is noted, for replies and reactions), or an occupant's
    /// reply, reaction or alerting command — judged by the occupant's real JID where the room
    /// shows it, refused otherwise (docs/alerts.md, "Who may"). Other chatter is left alone.
    fn on_groupchat(&mut self, m: &Message, now: f64) -> Vec<Action> {
        let occupant = match self.rooms.classify(m) {
            Some(FromRoom::Occupant(o)) => o,
            Some(FromRoom::Reflection {
                id: Some(id),
                stanza_id: Some(stanza_id),
            }) => {
                self.alerts.note_stanza_id(&id, &stanza_id);
                return vec![];
            }
            _ => return vec![],
        };
        let who = occupant
            .real
            .as_ref()
            .map_or_else(|| occupant.nick.clone(), BareJid::to_string);
        let sender = alerts::Sender {
            allowed: occupant.real.as_ref().is_some_and(|j| self.is_user(j)),
            queries: self.engine.count_of(&who),
            who,
            reply_to: Target::Room(occupant.room.to_string()),
        };
        let decided = match reference::of(m) {
            Some(Reference::Reply(id)) => self.alerts.on_reply(&sender, &id, now),
            Some(Reference::Reactions { id, emojis }) => {
                self.alerts.on_reaction(&sender, &id, &emojis, now)
            }
            None => {
                let Some(body) = m.bodies.values().next() else {
                    return vec![];
                };
                match alerts::chat::parse(body, &self.cfg.query_limits()) {
                    Some(Ok(cmd)) => Some(self.alerts.on_command(&sender, cmd, now)),
                    Some(Err(e)) => {
                        let mut answer = Message::groupchat(Some(Jid::from(occupant.room)));
                        let text = format!("❌ {} at column {}", e.message, e.column);
                        answer.bodies.insert(Default::default(), text);
                        return vec![Action::Message(answer)];
                    }
                    None => None,
                }
            }
        };
        let Some(decided) = decided else {
            return vec![];
        };
        self.alert_actions.extend(decided);
        self.answer_alerting()
    }

    /// A reply (XEP-0461) to, or reactions (XEP-0444) on, one of the hub's alert messages:
    /// acks what that message told, or refuses a sender the ACL does not allow, with a reason.
    /// `None` when the message refers to no alert message (it is then handled as usual).
    fn alert_reference(&mut self, m: &Message, now: f64) -> Option<Vec<Action>> {
        let reference = reference::of(m)?;
        let bare = m.from.as_ref()?.to_bare();
        let sender = alerts::Sender {
            who: bare.to_string(),
            reply_to: Target::User(bare.to_string()),
            allowed: self.is_user(&bare),
            queries: self.engine.count_of(bare.as_str()),
        };
        let decided = match reference {
            Reference::Reply(id) => self.alerts.on_reply(&sender, &id, now)?,
            Reference::Reactions { id, emojis } => {
                self.alerts.on_reaction(&sender, &id, &emojis, now)?
            }
        };
        self.alert_actions.extend(decided);
        Some(self.answer_alerting())
    }

    /// The messages after a person's ack, silence or rule: what they changed is saved at once
    /// (the save goes out before the answer), not at the next tick.
    fn answer_alerting(&mut self) -> Vec<Action> {
        let mut out = self.alert_messages();
        if self.save_due() {
            out.insert(0, Action::Save);
        }
        out
    }

    /// A 503 answer to `m` (the restore buffer is full).
    fn unavailable_answer(&self, m: Message) -> Vec<Action> {
        let (Some(from), Some(body)) = (m.from.clone(), m.bodies.values().next()) else {
            return vec![];
        };
        vec![self.answer(from, m.type_.clone(), &Reply::unavailable(body))]
    }

    /// The reply to a query, or `None` when it was buffered until the restore.
    fn query_reply(
        &mut self,
        m: Message,
        from: &Jid,
        body: &str,
        out: &mut Vec<Action>,
    ) -> Option<Reply> {
        let bare = from.to_bare();
        if self.shutting_down || !self.online {
            return Some(Reply::unavailable(body));
        }
        if !self.is_user(&bare) {
            tracing::info!(%bare, "Query refused: not a user.");
            return Some(Reply::forbidden(body));
        }
        if !self.restore.is_restored() {
            return match self.restore.buffer(m) {
                Ok(()) => None,
                Err(_) => Some(Reply::unavailable(body)),
            };
        }
        self.roster
            .user_available(&bare, from.resource().map(|r| r.as_str()));
        let user = bare.as_str();
        let (before_len, version) = (self.engine.len(), self.engine.saved_version());
        let before: Vec<String> = self.engine.list(user).into_iter().map(|(_, k)| k).collect();
        let reply = self
            .engine
            .handle_holding(user, body, self.alerts.rules_of(user));
        if self.engine.len() != before_len {
            let after: HashSet<String> =
                self.engine.list(user).into_iter().map(|(_, k)| k).collect();
            for k in before.iter().filter(|k| !after.contains(*k)) {
                self.delivery.forget_key(user, k);
            }
        }
        if self.engine.saved_version() != version {
            out.push(Action::Save);
        }
        Some(reply)
    }

    fn on_pep(&mut self, from: &BareJid, event: PubSubEvent, now: f64) -> Vec<Action> {
        if !self.registry.is_known(from) && !self.cfg.collectors.allows(from) {
            return vec![];
        }
        let ingested = self
            .ingest
            .notification(&mut self.registry, &self.roster, from, event, now);
        let stamped = ingested.feeds.first().map(|f| f.timestamp);
        self.counters.item(stamped, now);
        let mut out = Vec::new();
        for change in ingested.changes {
            out.extend(self.status_changed(change, now));
        }
        let outputs = self.feed(ingested.feeds, now);
        out.extend(self.deliver(outputs, now));
        out
    }

    fn feed(&mut self, feeds: impl IntoIterator<Item = Feed>, now: f64) -> Vec<Output> {
        let mut outputs = Vec::new();
        for f in feeds {
            self.counters.events_in += 1;
            self.engine
                .feed(&f.name, f.timestamp, f.value, &mut outputs);
            let decided = self.alerts.on_metric(&f.name, f.timestamp, f.value, now);
            self.alert_actions.extend(decided);
        }
        self.counters.outputs += outputs.len() as u64;
        outputs
    }

    /// The alert messages decided so far, as stanzas; those for a room the hub is not in are
    /// held until it is (`muc`). Notes a changed alert state for the next save.
    fn alert_messages(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        for action in std::mem::take(&mut self.alert_actions) {
            let msg = match action {
                alerts::Action::Send(msg) => msg,
                alerts::Action::Save => {
                    self.alerts_changed = true;
                    continue;
                }
            };
            match msg.to {
                Target::User(user) => {
                    let Ok(to) = BareJid::new(&user) else {
                        continue;
                    };
                    let mut m = Message::new(Some(Jid::from(to)));
                    m.type_ = MessageType::Chat;
                    m.id = Some(xmpp_parsers::message::Id(msg.id));
                    m.bodies.insert(Default::default(), msg.body);
                    out.push(Action::Message(m));
                }
                Target::Room(room) => {
                    let Ok(room) = BareJid::new(&room) else {
                        continue;
                    };
                    let mut m = Message::groupchat(Some(Jid::from(room.clone())));
                    m.id = Some(xmpp_parsers::message::Id(msg.id));
                    m.bodies.insert(Default::default(), msg.body);
                    if let Some(m) = self.rooms.send_or_hold(&room, m) {
                        out.push(Action::Message(m));
                    }
                }
            }
        }
        out
    }

    /// Queues outputs per user and sends what the rate limits allow now.
    fn deliver(&mut self, outputs: Vec<Output>, now: f64) -> Vec<Action> {
        for o in outputs {
            let body = self.engine.event_body(&o);
            self.delivery.push(&o.user, &o.key, body, now);
        }
        if !self.online {
            return vec![];
        }
        let alerts = self.alert_messages();
        self.throttle.sent(alerts.len());
        let type_ = match self.cfg.hub.event_message_type {
            EventMessageType::Chat => MessageType::Chat,
            EventMessageType::Headline => MessageType::Headline,
        };
        let engine = &self.engine;
        let ready = self
            .delivery
            .drain_ready(now, self.throttle.room(), |user, key, n| {
                engine.dropped_body(user, key, n)
            });
        self.counters.messages_out += ready.len() as u64;
        self.throttle.sent(ready.len());
        let events = ready.into_iter().filter_map(|(user, _key, body)| {
            let to = BareJid::new(&user).ok()?;
            let mut m = Message::new(Some(Jid::from(to)));
            m.type_ = type_.clone();
            m.bodies.insert(Default::default(), body);
            Some(Action::Message(m))
        });
        alerts.into_iter().chain(events).collect()
    }

    /// The session's backlog (stanzas the server has not taken yet), seen at `now`: logs the
    /// start and end of a throttling episode, and sizes what event messages may go out.
    pub fn observe_backlog(&mut self, backlog: usize, now: f64) {
        match self.throttle.observe(backlog, now) {
            Some(Episode::Began { backlog }) => tracing::warn!(
                backlog,
                "The server reads the hub's stanzas slowly: its rate limit (or its load) throttles \
                 the hub and events reach users late or are dropped. Exempt the hub's JID: Prosody \
                 `unlimited_jids` (limits), ejabberd `c2s_shaper` rule `none` (see \
                 docs/operations.md, \"Rate limits\")."
            ),
            Some(Episode::Ended) => tracing::info!("The server no longer throttles the hub."),
            None => {}
        }
    }

    /// Takes back the alert state saved before a restart (docs/alerts.md, "State that
    /// survives"); what no longer fits the configuration is logged and dropped.
    pub fn restore_alerts(&mut self, saved: alerts::SavedAlerts, now: f64) {
        let (open, silences) = (saved.open.len(), saved.silences.len());
        for problem in self.alerts.restore(saved, now) {
            tracing::warn!("Saved alert state: {problem}");
        }
        tracing::info!(open, silences, "Alert state restored.");
    }

    /// Whether the alert state changed and may be saved now: not before the saved state was
    /// read back (a save then would overwrite it).
    pub fn save_due(&self) -> bool {
        self.alerts_changed && self.restore.is_restored()
    }

    /// What to save: the registrations and the alert state.
    pub fn snapshot(&mut self) -> Snapshot {
        self.alerts_changed = false;
        Snapshot {
            registrations: self.engine.registrations(),
            alerts: self.alerts.save(),
        }
    }

    /// Every 250 ms: delivery; once a second also `absent` and the silence backstop.
    pub fn on_tick(&mut self, now: f64) -> Vec<Action> {
        let mut outputs = Vec::new();
        let mut out = Vec::new();
        self.started.get_or_insert(now);
        if now - self.last_tick >= 1.0 {
            self.last_tick = now;
            self.engine.tick(now, &mut outputs);
            let decided = self.alerts.tick(now);
            self.alert_actions.extend(decided);
            out.extend(self.rooms.tick(now).into_iter().map(Action::Presence));
            if self.save_due() {
                out.push(Action::Save);
            }
            let intervals = self.cfg.hub.silence_intervals;
            for change in self.registry.silence(now) {
                tracing::warn!(collector = %change.jid, "No stats for {intervals} publish intervals.");
                out.extend(self.status_changed(change, now));
            }
            let roster = &self.roster;
            let due = self.subscriptions.tick(now, |c| roster.collector_online(c));
            out.extend(self.subscription_requests(due));
        }
        out.extend(self.deliver(outputs, now));
        out
    }

    // ---- IQs ------------------------------------------------------------------------------

    /// Answers an IQ request (`me`: the hub's bound JID); unknown ones get
    /// `service-unavailable`.
    pub fn on_iq(&mut self, req: &IqRequest, me: &Jid, now: f64) -> (IqAnswer, Vec<Action>) {
        let asker = req.from.as_ref().map(Jid::to_bare);
        let user = asker.filter(|j| self.is_user(j));
        let refused = |c: DefinedCondition| stanza_error(c, None);
        if req.set {
            if let Ok(cmd) = adhoc::Command::try_from(req.payload.clone()) {
                return self.command(user.as_ref(), &cmd, now);
            }
            return (Err(refused(DefinedCondition::ServiceUnavailable)), vec![]);
        }
        let view = View {
            is_user: user.is_some(),
            registry: &self.registry,
            roster: &self.roster,
            now,
        };
        if let Ok(q) = DiscoInfoQuery::try_from(req.payload.clone()) {
            let info = self.disco.info(q.node.as_deref(), &view);
            let answer = info.map(|i| Some(forms::to_element(i))).map_err(refused);
            return (answer, vec![]);
        } else if let Ok(q) = DiscoItemsQuery::try_from(req.payload.clone()) {
            let items = self.disco.items(q.node.as_deref(), me, &view);
            return (items.map(|r| Some(r.into())).map_err(refused), vec![]);
        }
        (Err(refused(DefinedCondition::ServiceUnavailable)), vec![])
    }

    fn command(
        &mut self,
        user: Option<&BareJid>,
        request: &adhoc::Command,
        now: f64,
    ) -> (IqAnswer, Vec<Action>) {
        let Some(user) = user else {
            let text = "Only the hub's users may run its commands.";
            return (
                Err(stanza_error(DefinedCondition::Forbidden, Some(text))),
                vec![],
            );
        };
        let Some(cmd) = HubCommand::from_node(&request.node) else {
            let text = "No such command.";
            return (
                Err(stanza_error(DefinedCondition::ItemNotFound, Some(text))),
                vec![],
            );
        };
        let ctx = Context {
            engine: &mut self.engine,
            delivery: &mut self.delivery,
            registry: &self.registry,
            throttle_note: self.throttle.note(),
            counters: &self.counters,
            caps_pending: self.roster.caps_pending(),
            uptime: now - self.started.unwrap_or(now),
            user,
            request,
            alerts: &mut self.alerts,
            alert_actions: &mut self.alert_actions,
            silence_forms: &mut self.silence_forms,
            now,
        };
        let result = cmd.execute(ctx).map(Some);
        let mut actions = self.answer_alerting();
        if cmd.changes_registrations() && !actions.iter().any(|a| matches!(a, Action::Save)) {
            actions.insert(0, Action::Save);
        }
        (result, actions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jabmon_shared::config::RawConfig;
    use jabmon_shared::ns;
    use std::collections::HashMap;
    use xmpp_parsers::data_forms::{DataForm, DataFormType};
    use xmpp_parsers::disco::Identity;

    const T: f64 = 1_000.0;

    fn cfg(storage: &str) -> Config {
        cfg_with(storage, "")
    }

    /// [`cfg`] with more `[hub]` keys.
    fn cfg_with(storage: &str, hub_keys: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.toml");
        let state = dir.path().join("hub.json");
        let toml = format!(
            "[xmpp]\njid = \"hub@x\"\npassword = \"p\"\n[access]\ncollectors = [\"web1@x\"]\nusers = [\"ops@x\"]\n[hub]\nstorage = \"{storage}\"\nstate_path = {state:?}\n{hub_keys}"
        );
        std::fs::write(&path, toml).unwrap();
        let raw = RawConfig::load_with_env(Some(&path), Some(HashMap::new())).unwrap();
        Config::from_raw(raw).unwrap()
    }

    /// A hub online, with registrations restored.
    fn hub() -> HubState {
        let cfg = cfg("file");
        let mut s = HubState::new(cfg.clone(), HubState::engine_for(&cfg), true);
        s.on_online(false);
        s
    }

    fn jid(s: &str) -> Jid {
        Jid::new(s).unwrap()
    }

    fn collector_info() -> DiscoInfoResult {
        DiscoInfoResult {
            node: None,
            identities: vec![Identity::new("client", "bot", "en", "collector")],
            features: [ns::STATS.to_string()].into_iter().collect(),
            extensions: vec![],
        }
    }

    fn available(from: &str) -> Presence {
        let caps = jabmon_shared::caps::caps(ns::CAPS_NODE, &collector_info());
        let mut p = Presence::available().with_payload(caps);
        p.from = Some(jid(from));
        p
    }

    fn unavailable(from: &str) -> Presence {
        let mut p = Presence::unavailable();
        p.from = Some(jid(from));
        p
    }

    fn chat(from: &str, body: &str) -> Message {
        let mut m = Message::new(Some(jid("hub@x")));
        m.from = Some(jid(from));
        m.type_ = MessageType::Chat;
        m.bodies.insert(Default::default(), body.into());
        m
    }

    fn stats(t: f64) -> Message {
        let xml = format!("<message xmlns='jabber:client' from='web1@x' to='hub@x'><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='urn:jabmon:stats:0'><item id='current'><stats xmlns='urn:jabmon:stats:0' host='web1' timestamp='{t}'><stat name='cpu.cpu.idle' value='85'/></stats></item></items></event></message>");
        Message::try_from(xml.parse::<Element>().unwrap()).unwrap()
    }

    /// The statuses published, in order.
    fn published(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Request {
                    payload,
                    then: Awaiting::Published(Published::CollectorStatus),
                    ..
                } => Some(String::from(payload)),
                _ => None,
            })
            .filter_map(|xml| {
                let at = xml.find("status=")? + 8;
                Some(xml[at..].split(['"', '\'']).next()?.to_string())
            })
            .collect()
    }

    fn bodies(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Message(m) => m.bodies.values().next().cloned(),
                _ => None,
            })
            .collect()
    }

    /// Brings web1@x/a up through a caps lookup.
    fn collector_up(s: &mut HubState) {
        let ask = s.on_presence(available("web1@x/a"), false, T);
        let [Action::Request { then, .. }] = &ask[..] else {
            panic!("expected one caps lookup, got {ask:?}");
        };
        assert!(matches!(then, Awaiting::CapsInfo { .. }));
        let answer = Ok(Some(forms::to_element(collector_info())));
        let up = s.on_answer(then.clone(), answer, T);
        assert_eq!(published(&up), ["alive"]);
    }

    /// The nodes of the explicit subscriptions in `actions`.
    fn subscriptions(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Request {
                    then: Awaiting::Subscription { node, .. },
                    ..
                } => Some(node.to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_collector_is_subscribed_to_once_per_stream_and_again_after_a_refusal() {
        let mut s = hub();
        let ask = s.on_presence(available("web1@x/a"), false, T);
        let [Action::Request { then, .. }] = &ask[..] else {
            panic!("expected one caps lookup, got {ask:?}");
        };
        let answer = Ok(Some(forms::to_element(collector_info())));
        let up = s.on_answer(then.clone(), answer, T);
        assert_eq!(subscriptions(&up), [ns::STATS, ns::EVENTS]);
        assert!(subscriptions(&s.on_presence(available("web1@x/a"), false, T + 1.0)).is_empty());
        let refused = Awaiting::Subscription {
            collector: BareJid::new("web1@x").unwrap(),
            node: ns::STATS,
        };
        let lost = Err(jabmon_shared::session::IqFailure::Lost);
        assert!(s.on_answer(refused, lost, T + 2.0).is_empty());
        let other_node = Awaiting::Subscription {
            collector: BareJid::new("web1@x").unwrap(),
            node: ns::EVENTS,
        };
        assert!(s.on_answer(other_node, Ok(None), T + 2.0).is_empty());
        assert!(subscriptions(&s.on_tick(T + 2.0 + subscriptions::RETRY / 2.0)).is_empty());
        // Only the refused node is asked again, and nothing while that request is out.
        let again = s.on_tick(T + 2.0 + subscriptions::RETRY);
        assert_eq!(subscriptions(&again), [ns::STATS]);
        assert!(subscriptions(&s.on_tick(T + 10.0)).is_empty());
        assert!(
            subscriptions(&s.on_presence(available("web1@x/a"), false, T + 10.0)).is_empty(),
            "a presence does not subscribe again"
        );
        // Each refusal doubles the wait, up to five minutes.
        let mut at = T + 10.0;
        let mut waits = Vec::new();
        for _ in 0..10 {
            let refused = Awaiting::Subscription {
                collector: BareJid::new("web1@x").unwrap(),
                node: ns::STATS,
            };
            let gone = Err(jabmon_shared::session::IqFailure::Lost);
            assert!(s.on_answer(refused, gone, at).is_empty());
            let mut next = at + 1.0;
            while subscriptions(&s.on_tick(next)).is_empty() {
                next += 1.0;
                assert!(next < at + 1000.0, "asked again within 1000 s");
            }
            waits.push((next - at).round() as u64);
            at = next;
        }
        assert_eq!(waits, [4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        s.on_online(false);
        let fresh = s.on_presence(available("web1@x/a"), false, T + 4.0);
        assert_eq!(subscriptions(&fresh), [ns::STATS, ns::EVENTS]);
    }

    #[test]
    fn a_configured_rule_alerts_its_user_and_chat_commands_answer_in_text() {
        let mut cfg = cfg("file");
        let rule: crate::alerts::RuleConfig = serde_json::from_value(serde_json::json!({
            "name": "idle-high",
            "query": r"SELECT [> 50] FROM ^web1\.cpu\.cpu\.idle$",
            "unit": "%",
            "users": ["ops@x"],
        }))
        .unwrap();
        cfg.alert_rules =
            crate::alerts::validate_rules(&[rule], &cfg.alerting, &crate::query::Limits::default())
                .unwrap();
        let mut s = HubState::new(cfg.clone(), HubState::engine_for(&cfg), true);
        s.on_online(false);
        collector_up(&mut s);
        let mut out = s.on_message(stats(T + 1.0), T + 1.0);
        for i in 2..40 {
            out.extend(s.on_tick(T + i as f64));
        }
        let to_ops: Vec<String> = out
            .iter()
            .filter_map(|a| match a {
                Action::Message(m) if m.to == Some(jid("ops@x")) => {
                    m.bodies.values().next().cloned()
                }
                _ => None,
            })
            .collect();
        assert_eq!(to_ops.len(), 1, "one alert message: {to_ops:?}");
        assert!(
            to_ops[0].contains("idle-high") && to_ops[0].contains("web1"),
            "{to_ops:?}"
        );
        // `alerts` is answered in plain text, not sent to the query engine.
        let listed = bodies(&s.on_message(chat("ops@x/r", "alerts"), T + 41.0));
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert!(
            listed[0].contains("idle-high") && !listed[0].starts_with('{'),
            "{listed:?}"
        );
        // A stranger may not use it.
        let refused = bodies(&s.on_message(chat("eve@x/r", "alerts"), T + 42.0));
        assert!(refused[0].contains("403"), "{refused:?}");
    }

    #[test]
    fn chat_rules_and_queries_share_the_query_limit() {
        let cfg = cfg_with("file", "max_queries_per_user = 2\n");
        let mut s = HubState::new(cfg.clone(), HubState::engine_for(&cfg), true);
        s.on_online(false);
        let say = |s: &mut HubState, body: &str| bodies(&s.on_message(chat("ops@x/r", body), T));
        assert!(say(&mut s, "ALERT a SELECT [> 1] FROM ^x$;")[0].contains("rule a saved"));
        assert!(say(&mut s, "SELECT id FROM ^y$;")[0].contains("\"key\""));
        let refused = say(&mut s, "SELECT id FROM ^z$;");
        assert!(
            refused[0].contains("413")
                && refused[0].contains("too many queries and alert rules: the limit is 2"),
            "{refused:?}"
        );
        assert_eq!(
            say(&mut s, "ALERT b SELECT [> 1] FROM ^x$;"),
            ["❌ too many queries and alert rules: the limit is 2 per user (1 query, 1 rule)"]
        );
        assert!(say(&mut s, "DROP ALERT a")[0].contains("dropped"));
        assert!(say(&mut s, "SELECT id FROM ^z$;")[0].contains("\"key\""));
    }

    #[test]
    fn a_bare_unavailable_keeps_an_available_collector_alive() {
        let mut s = hub();
        collector_up(&mut s);
        assert!(s
            .on_presence(unavailable("web1@x"), false, T + 1.0)
            .is_empty());
        let gone = s.on_presence(unavailable("web1@x/a"), false, T + 2.0);
        assert_eq!(published(&gone), ["dead"]);
    }

    #[test]
    fn fresh_stats_revive_a_collector_the_silence_rule_killed() {
        let mut s = hub();
        collector_up(&mut s);
        let later = T + 100.0;
        assert_eq!(published(&s.on_tick(later)), ["dead"], "silent too long");
        assert!(
            published(&s.on_message(stats(later - 90.0), later)).is_empty(),
            "a replay"
        );
        assert_eq!(published(&s.on_message(stats(later), later)), ["alive"]);
    }

    #[test]
    fn caps_of_a_non_collector_never_make_it_one() {
        let mut s = hub();
        let ask = s.on_presence(available("web1@x/phone"), false, T);
        let [Action::Request { then, .. }] = &ask[..] else {
            panic!("expected a caps lookup");
        };
        let mut phone = collector_info();
        phone.features = ["urn:xmpp:ping".to_string()].into_iter().collect();
        let answer = Ok(Some(forms::to_element(phone)));
        assert!(s.on_answer(then.clone(), answer, T).is_empty());
    }

    #[test]
    fn queries_wait_for_the_restore_and_a_change_is_saved_before_the_reply() {
        let cfg = cfg("pep");
        let mut s = HubState::new(cfg.clone(), HubState::engine_for(&cfg), false);
        let online = s.on_online(false);
        assert!(matches!(
            online[..],
            [
                Action::RequestRoster,
                Action::Presence(_),
                Action::Request {
                    then: Awaiting::ServerFeatures,
                    ..
                }
            ]
        ));
        assert!(
            s.on_online(false).len() == 2,
            "no second restore while one runs"
        );
        assert!(
            s.on_message(chat("ops@x/r", "SELECT id FROM ^a$;"), T)
                .is_empty(),
            "buffered"
        );
        let restored = s.on_answer(Awaiting::Restore, Ok(None), T);
        assert!(
            matches!(restored[..], [Action::Save, Action::Message(_)]),
            "{restored:?}"
        );
        assert!(bodies(&restored)[0].contains("\"status\":200"));
    }

    #[test]
    fn a_server_without_pep_storage_is_fatal() {
        let cfg = cfg("pep");
        let mut s = HubState::new(cfg.clone(), HubState::engine_for(&cfg), false);
        s.on_online(false);
        let out = s.on_answer(Awaiting::ServerFeatures, Ok(None), T);
        assert!(matches!(out[..], [Action::Fatal(_)]));
    }

    #[test]
    fn strangers_get_403_and_everyone_503_while_offline_or_stopping() {
        let mut s = hub();
        assert!(
            bodies(&s.on_message(chat("eve@x/r", "SELECT * FROM leela.xmpp;"), T))[0]
                .contains("\"status\":403")
        );
        s.on_suspended();
        assert!(
            bodies(&s.on_message(chat("ops@x/r", "SELECT * FROM leela.xmpp;"), T))[0]
                .contains("\"status\":503")
        );
        s.on_online(true);
        s.shutting_down();
        assert!(
            bodies(&s.on_message(chat("ops@x/r", "SELECT * FROM leela.xmpp;"), T))[0]
                .contains("\"status\":503")
        );
    }

    #[test]
    fn pubsub_payloads_from_a_full_jid_are_ignored() {
        let mut s = hub();
        collector_up(&mut s);
        s.on_tick(T + 100.0);
        let mut forged = stats(T + 100.0);
        forged.from = Some(jid("web1@x/a"));
        assert!(s.on_message(forged, T + 100.0).is_empty());
    }

    #[test]
    fn commands_are_for_users_and_delete_queries_saves() {
        let mut s = hub();
        let me = jid("hub@x/r");
        let cmd = |node: &str, from: &str| IqRequest {
            from: Some(jid(from)),
            id: "1".into(),
            set: true,
            payload: adhoc::Command {
                node: node.into(),
                sessionid: None,
                action: Some("execute".into()),
                status: None,
                actions: None,
                notes: vec![],
                form: None,
            }
            .to_element(),
        };
        let (answer, actions) = s.on_iq(&cmd("queries", "eve@x/r"), &me, T);
        assert_eq!(
            answer.unwrap_err().defined_condition,
            DefinedCondition::Forbidden
        );
        assert!(actions.is_empty());
        let (answer, actions) = s.on_iq(&cmd("queries", "ops@x/r"), &me, T);
        assert!(answer.is_ok() && actions.is_empty());
        let (answer, actions) = s.on_iq(&cmd("delete-queries", "ops@x/r"), &me, T);
        assert!(answer.is_ok());
        assert!(matches!(actions[..], [Action::Save]));
        let (answer, _) = s.on_iq(&cmd("reboot", "ops@x/r"), &me, T);
        assert_eq!(
            answer.unwrap_err().defined_condition,
            DefinedCondition::ItemNotFound
        );
    }

    #[test]
    fn the_silence_form_sets_a_silence_that_chat_lists_and_saves_it() {
        let mut s = hub();
        let me = jid("hub@x/r");
        let stage = |sessionid: Option<String>, form: Option<DataForm>| IqRequest {
            from: Some(jid("ops@x/r")),
            id: "1".into(),
            set: true,
            payload: adhoc::Command {
                node: "silence".into(),
                sessionid,
                action: Some("complete".into()),
                status: None,
                actions: None,
                notes: vec![],
                form,
            }
            .to_element(),
        };
        let (answer, _) = s.on_iq(&stage(None, None), &me, T);
        let first = adhoc::Command::try_from(answer.unwrap().unwrap()).unwrap();
        assert_eq!(first.status.as_deref(), Some("executing"));
        let sessionid = first.sessionid.clone().unwrap();
        let mut form = first.form.unwrap();
        form.type_ = DataFormType::Submit;
        form.fields[1].values = vec!["web1.*".into()];
        form.fields[2].values = vec!["0".into()];
        let (answer, _) = s.on_iq(&stage(Some(sessionid.clone()), Some(form.clone())), &me, T);
        assert_eq!(
            answer.unwrap_err().defined_condition,
            DefinedCondition::BadRequest,
            "a zero duration is refused"
        );
        form.fields[2].values = vec!["2h".into()];
        let (answer, actions) =
            s.on_iq(&stage(Some(sessionid.clone()), Some(form.clone())), &me, T);
        let done = adhoc::Command::try_from(answer.unwrap().unwrap()).unwrap();
        assert_eq!(done.status.as_deref(), Some("completed"));
        assert!(done.notes[0]
            .text
            .starts_with("🔕 silence s1 on web1.* for 2 h by ops@x"));
        assert!(matches!(actions[..], [Action::Save]), "{actions:?}");
        let (answer, _) = s.on_iq(&stage(Some(sessionid), Some(form)), &me, T);
        assert_eq!(
            answer.unwrap_err().defined_condition,
            DefinedCondition::BadRequest,
            "the session ended with the silence"
        );
        let listed = bodies(&s.on_message(chat("ops@x/r", "silences"), T));
        assert!(listed[0].starts_with("s1 web1.* for 2 h"), "{listed:?}");
    }
}
