//! The hub bot: one task owns the session and performs what the pure [`HubState`] decides —
//! presence feeds the collector registry and the users' online state, PEP notifications
//! become events for the query engine, chat messages are queries, and a 250 ms tick drives
//! delivery, `absent` and the silence backstop. Persisting registrations (a file or a PEP
//! item) is done here.

use std::future::Future;
use std::time::Duration;

use jabmon_shared::presence::goodbye;
use jabmon_shared::session::{
    forward, Incoming, IqFailure, IqOutcome, Session, SessionError, Software,
};
use jabmon_shared::{pep, unix_now as now};
use minidom::Element;
use tokio::sync::mpsc;
use xmpp_parsers::jid::Jid;

use crate::config::{Config, Storage};
use crate::restore;
use crate::state::{Action, Awaiting, HubState, Published};
use crate::storage;

/// Shutdown grace (docs/protocol.md §1 allows 5 s in all).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);
const TICK: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("state file: {0}")]
    State(String),
    #[error("{0}")]
    Server(String),
}

/// An IQ outcome, with what it was for.
type Done = (Awaiting, IqOutcome);

struct Hub {
    cfg: Config,
    session: Session,
    state: HubState,
    fatal: Option<String>,
    publish_options: pep::OptionsFallback,
    done_tx: mpsc::UnboundedSender<Done>,
}

/// Runs the hub until `shutdown` resolves.
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    let software = Software::new("jabmon-hub", env!("CARGO_PKG_VERSION"));
    let mut engine = HubState::engine_for(&cfg);
    let restored = cfg.hub.storage == Storage::File;
    let saved = if restored {
        let saved = storage::load_file(&cfg.hub.state_path).map_err(RunError::State)?;
        restore::load_into(&mut engine, &saved.registrations);
        Some(saved.alerts)
    } else {
        None
    };
    let session = Session::start(&cfg.xmpp, software)?;
    tracing::info!(jid = %cfg.xmpp.jid, storage = ?cfg.hub.storage, registrations = engine.len(), "Hub starting.");
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut hub = Hub {
        state: HubState::new(cfg.clone(), engine, restored),
        cfg,
        session,
        fatal: None,
        publish_options: pep::OptionsFallback::default(),
        done_tx,
    };
    if let Some(alerts) = saved {
        hub.state.restore_alerts(alerts, now());
    }
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    while hub.fatal.is_none() {
        tokio::select! {
            _ = &mut shutdown => break,
            event = hub.session.next() => match event {
                Some(e) => hub.on_event(e).await,
                None => break,
            },
            Some((then, outcome)) = done_rx.recv() => hub.on_done(then, outcome).await,
            _ = tick.tick() => {
                hub.state.observe_backlog(hub.session.backlog(), now());
                let actions = hub.state.on_tick(now());
                hub.perform(actions).await;
            }
        }
    }
    hub.stop().await
}

impl Hub {
    async fn on_event(&mut self, event: Incoming) {
        let t = now();
        // Fresh before every stanza: how many event messages may go out depends on it.
        self.state.observe_backlog(self.session.backlog(), t);
        let items = self.state.counters.notifications;
        let actions = match event {
            Incoming::Online { resumed } => self.state.on_online(resumed),
            Incoming::Suspended => {
                self.state.on_suspended();
                vec![]
            }
            Incoming::Presence(p) => {
                let contacts = self.session.contacts();
                let seen = p
                    .from
                    .as_ref()
                    .is_some_and(|f| contacts.subscribed_to(&f.to_bare()));
                self.state.on_presence(p, seen, t)
            }
            Incoming::Roster => vec![],
            Incoming::Message(m) => self.state.on_message(m, t),
            Incoming::Iq(req) => {
                let me = Jid::from(self.session.jid().clone());
                let (answer, actions) = self.state.on_iq(&req, &me, t);
                self.perform(actions).await;
                return self.session.reply(&req, answer).await;
            }
        };
        self.perform(actions).await;
        if self.state.counters.notifications != items {
            self.state.counters.work.push((now() - t) * 1000.0);
        }
    }

    async fn on_done(&mut self, then: Awaiting, outcome: IqOutcome) {
        match then {
            Awaiting::Published(what) => self.on_published(what, outcome).await,
            then => {
                let actions = self.state.on_answer(then, outcome, now());
                self.perform(actions).await;
            }
        }
    }

    async fn perform(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Presence(p) => self.session.send(p).await,
                Action::Message(m) => self.session.send(m).await,
                Action::RequestRoster => self.session.request_roster().await,
                Action::Request {
                    to,
                    set,
                    payload,
                    then,
                } => {
                    let rx = self.session.request(to, set, payload).await;
                    forward(rx, &self.done_tx, move |o| (then, o));
                }
                Action::Save => self.save().await,
                Action::Fatal(reason) => self.fatal = Some(reason),
            }
        }
    }

    /// Answers what is already queued with 503 rather than silence, says goodbye, closes.
    async fn stop(mut self) -> Result<(), RunError> {
        self.state.shutting_down();
        tracing::info!("Hub stopping.");
        while let Ok(Some(Incoming::Message(m))) =
            tokio::time::timeout(Duration::from_millis(50), self.session.next()).await
        {
            let actions = self.state.on_message(m, now());
            self.perform(actions).await;
        }
        if self.state.save_due() {
            self.save().await;
        }
        let fatal = self.fatal.take();
        self.session
            .close(Some(goodbye().into()), SHUTDOWN_GRACE)
            .await;
        match fatal {
            Some(reason) => Err(RunError::Server(reason)),
            None => Ok(()),
        }
    }

    async fn on_published(&mut self, what: Published, outcome: IqOutcome) {
        if let (Err(IqFailure::Error(e)), Published::Registrations) = (&outcome, what) {
            if self.publish_options.refused(e) {
                return self.save().await;
            }
        }
        if let Err(e) = outcome {
            tracing::error!(
                what = what.as_str(),
                "PEP publish failed: {e}. It is published again at the next change."
            );
        }
    }

    /// Persists the registrations and the alert state after a change.
    async fn save(&mut self) {
        let saved = self.state.snapshot();
        match self.cfg.hub.storage {
            Storage::File => {
                if let Err(e) = storage::save_file(&self.cfg.hub.state_path, &saved) {
                    tracing::error!(path = %self.cfg.hub.state_path.display(), "Could not save registrations and alert state: {e}");
                }
            }
            Storage::Pep => {
                let payload: Element = storage::PepRegistrations::from(&saved).into();
                let options = self.publish_options.options(
                    &[
                        ("pubsub#persist_items", "true"),
                        ("pubsub#access_model", "whitelist"),
                    ],
                    "1",
                );
                let req = pep::publish(storage::NS, "current", payload, &options);
                let rx = self.session.request(None, true, req).await;
                let then = Awaiting::Published(Published::Registrations);
                forward(rx, &self.done_tx, move |o| (then, o));
            }
        }
    }
}
