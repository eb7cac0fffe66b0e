//! The XMPP session every jabmon bot runs on: connect (see [`connector`]), stay connected
//! (tokio-xmpp's stanza stream reconnects and resumes with XEP-0198; our reconnector adds
//! backoff with jitter and readable errors), answer XEP-0199 ping and XEP-0092 version, match
//! IQ responses to requests, and hand every other stanza to the bot as an [`Incoming`].
//!
//! WORKAROUND (tokio-xmpp 6.0.0 lost wakeup): `tokio_xmpp::Client` drives its stream through
//! `StanzaReceiver::poll_next` (src/stanzastream/mod.rs ~l.321) and `ClientReceiver::poll_next`
//! (src/client/receiver.rs ~l.41), which return `Pending` without registering a waker when an
//! internal `try_lock` fails — the client then stalls under load or after a reconnect. We do
//! not use `Client` at all: a [`StanzaStream`] owned by one task, never split, is polled
//! through a plain channel and has no lock on its receive path. The stress test
//! `tests/tests/session.rs` fails if a stall comes back. When upstream fixes those two
//! `poll_next`s, `Client` could replace this module's IQ tracking.

pub mod backlog;
pub mod backoff;
pub mod connector;
pub mod contacts;
pub mod discarded;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use minidom::Element;
use tokio::sync::oneshot;
use tokio_xmpp::stanzastream::{
    Connection, Event as StreamEvent, StanzaStage, StanzaStream, StanzaToken,
    StreamEvent as StreamState,
};
use tokio_xmpp::xmlstream::Timeouts;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::{FullJid, Jid};
use xmpp_parsers::message::Message;
use xmpp_parsers::presence::Presence;
use xmpp_parsers::roster::Roster;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use xmpp_parsers::version::{VersionQuery, VersionResult};

use crate::config::XmppConfig;
use backlog::Backlog;
use backoff::Backoff;
use connector::Connector;
use contacts::Contacts;

/// Stanzas queued in each direction before [`Session::send`] (or the server's side) waits.
/// Deep enough that a throttled hub keeps reading while it notices the backlog and holds
/// back events (docs/operations.md, "Rate limits").
pub const QUEUE_DEPTH: usize = 4096;

/// How a bot names itself in XEP-0092 answers.
#[derive(Debug, Clone)]
pub struct Software {
    pub name: String,
    pub version: String,
}

impl Software {
    pub fn new(name: &str, version: &str) -> Self {
        Software {
            name: name.to_string(),
            version: version.to_string(),
        }
    }
}

/// Something the bot has to act on.
#[derive(Debug)]
pub enum Incoming {
    /// The stream is (again) ready. `resumed == false` means server-side state (presence,
    /// PEP interest) was lost: announce everything again.
    Online {
        resumed: bool,
    },
    /// The connection dropped; tokio-xmpp is reconnecting.
    Suspended,
    /// An IQ get/set for the bot to answer (ping and version are answered already).
    Iq(IqRequest),
    Presence(Presence),
    Message(Message),
    /// The roster asked for with [`Session::request_roster`] came in: [`Session::contacts`]
    /// is current (and kept so through roster pushes).
    Roster,
}

/// An incoming IQ get or set.
#[derive(Debug, Clone)]
pub struct IqRequest {
    pub from: Option<Jid>,
    pub id: String,
    pub set: bool,
    pub payload: Element,
}

/// The outcome of an IQ we sent.
pub type IqOutcome = Result<Option<Element>, IqFailure>;

/// Why an IQ we sent did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IqFailure {
    #[error("the peer answered with an error: {0:?}")]
    Error(Box<StanzaError>),
    #[error("the stream was reset before an answer came")]
    Lost,
}

/// Errors at start-up.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("TLS set-up failed: {0}")]
    Tls(String),
}

/// One bot's connection.
pub struct Session {
    stream: StanzaStream,
    /// Builds a fresh stream (no XEP-0198 state); see [`Session::next`]'s `Suspended` arm.
    fresh_stream: Box<dyn Fn() -> StanzaStream + Send + Sync>,
    /// Losses in a row without getting online in between.
    losses_in_a_row: u32,
    jid: FullJid,
    software: Software,
    hide_os: bool,
    pending: HashMap<String, PendingIq>,
    /// What we sent that the server has not taken yet (see [`Session::backlog`]).
    backlog: Mutex<Backlog<StanzaToken>>,
    /// Our roster's subscription states (see [`Session::contacts`]).
    contacts: Contacts,
    /// The answer to [`Session::request_roster`], while it is awaited.
    roster_answer: Option<oneshot::Receiver<IqOutcome>>,
}

/// An IQ we sent and wait for: whom it was sent to, and who waits for the outcome.
struct PendingIq {
    to: Option<Jid>,
    waiter: oneshot::Sender<IqOutcome>,
}

impl Session {
    /// Starts connecting in the background; events arrive through [`Session::next`].
    pub fn start(cfg: &XmppConfig, software: Software) -> Result<Self, SessionError> {
        let connector = Connector::new(cfg).map_err(SessionError::Tls)?;
        let jid = cfg.full_jid();
        let password = cfg.password.expose().to_string();
        let stream_jid = jid.clone();
        let fresh_stream = Box::new(move || {
            StanzaStream::new(
                reconnector(connector.clone(), stream_jid.clone(), password.clone()),
                QUEUE_DEPTH,
            )
        });
        Ok(Self {
            stream: fresh_stream(),
            fresh_stream,
            losses_in_a_row: 0,
            jid,
            software,
            hide_os: cfg.hide_os,
            pending: HashMap::new(),
            backlog: Mutex::new(Backlog::default()),
            contacts: Contacts::default(),
            roster_answer: None,
        })
    }

    /// The bound full JID (the requested one until the server says otherwise).
    pub fn jid(&self) -> &FullJid {
        &self.jid
    }

    /// The next event for the bot; `None` once the stream is closed for good.
    pub async fn next(&mut self) -> Option<Incoming> {
        loop {
            let now = std::time::Instant::now();
            discarded::flush(now);
            let summary_due = discarded::due(now).map(tokio::time::Instant::from_std);
            let event = tokio::select! {
                event = self.stream.next() => event?,
                () = sleep_until_some(summary_due) => continue,
                answer = roster_answer(&mut self.roster_answer) => {
                    self.roster_answer = None;
                    match answer {
                        Ok(Ok(Some(payload))) => match Roster::try_from(payload) {
                            Ok(roster) => {
                                self.contacts.load(roster);
                                return Some(Incoming::Roster);
                            }
                            Err(e) => tracing::warn!(error = %e, "The server's roster could not be read."),
                        },
                        Ok(Ok(None)) => {
                            self.contacts.load(Roster { ver: None, items: vec![] });
                            return Some(Incoming::Roster);
                        }
                        Ok(Err(IqFailure::Lost)) | Err(_) => {}
                        Ok(Err(e)) => tracing::warn!(error = %e, "The server refused the roster."),
                    }
                    continue;
                }
            };
            match event {
                StreamEvent::Stream(StreamState::Reset {
                    bound_jid,
                    features,
                }) => {
                    let acks = features.stream_management.is_some();
                    self.with_backlog(|b| b.reset(acks));
                    self.contacts.forget();
                    if let Ok(full) = bound_jid.try_into_full() {
                        self.jid = full;
                    }
                    for (_, pending) in self.pending.drain() {
                        let _ = pending.waiter.send(Err(IqFailure::Lost));
                    }
                    self.losses_in_a_row = 0;
                    tracing::info!(jid = %self.jid, "Session established.");
                    return Some(Incoming::Online { resumed: false });
                }
                StreamEvent::Stream(StreamState::Resumed) => {
                    self.losses_in_a_row = 0;
                    tracing::info!(jid = %self.jid, "Session resumed (XEP-0198).");
                    return Some(Incoming::Online { resumed: true });
                }
                StreamEvent::Stream(StreamState::Suspended) => {
                    self.losses_in_a_row += 1;
                    // WORKAROUND (tokio-xmpp 6.0.0 / xmpp-parsers 0.23): ejabberd answers a
                    // resumption it cannot honour (after a server restart) with `<failed/>`
                    // without the optional `h` attribute; xmpp-parsers refuses that element,
                    // tokio-xmpp treats it as an I/O error and tries to resume again, forever.
                    // A second loss in a row without getting online starts a fresh stream with
                    // no resumption state (a plain bind; the bot re-announces itself on the
                    // `Online { resumed: false }` that follows).
                    if self.losses_in_a_row >= 2 {
                        tracing::info!(jid = %self.jid, "Resumption keeps failing; starting a fresh session.");
                        self.stream = (self.fresh_stream)();
                    }
                    if self.losses_in_a_row > 2 {
                        // Already reported as lost; the bot's state needs no second notice.
                        continue;
                    }
                    tracing::warn!(jid = %self.jid, "Connection lost; reconnecting.");
                    return Some(Incoming::Suspended);
                }
                StreamEvent::Stanza(Stanza::Presence(p)) => return Some(Incoming::Presence(p)),
                StreamEvent::Stanza(Stanza::Message(m)) => return Some(Incoming::Message(m)),
                StreamEvent::Stanza(Stanza::Iq(iq)) => {
                    if let Some(req) = self.route_iq(iq).await {
                        return Some(Incoming::Iq(req));
                    }
                }
            }
        }
    }

    /// Answers responses and built-in requests; returns what the bot must handle.
    async fn route_iq(&mut self, iq: Iq) -> Option<IqRequest> {
        match iq {
            Iq::Result {
                from, id, payload, ..
            } => {
                if let Some(waiter) = self.take_pending(&id, from.as_ref(), "result") {
                    let _ = waiter.send(Ok(payload));
                }
                None
            }
            Iq::Error {
                from, id, error, ..
            } => {
                if let Some(waiter) = self.take_pending(&id, from.as_ref(), "error") {
                    let _ = waiter.send(Err(IqFailure::Error(Box::new(error))));
                }
                None
            }
            Iq::Get {
                from, id, payload, ..
            } => {
                let req = IqRequest {
                    from,
                    id,
                    set: false,
                    payload,
                };
                if req.payload.is("ping", xmpp_parsers::ns::PING) {
                    self.reply(&req, Ok(None)).await;
                    None
                } else if VersionQuery::try_from(req.payload.clone()).is_ok() {
                    let os = (!self.hide_os).then(|| std::env::consts::OS.to_string());
                    let result = VersionResult {
                        name: self.software.name.clone(),
                        version: self.software.version.clone(),
                        os,
                    };
                    self.reply(&req, Ok(Some(result.into()))).await;
                    None
                } else {
                    Some(req)
                }
            }
            Iq::Set {
                from, id, payload, ..
            } => {
                let req = IqRequest {
                    from,
                    id,
                    set: true,
                    payload,
                };
                // RFC 6121 §2.1.6: acknowledge roster pushes from our own account.
                let own = req
                    .from
                    .as_ref()
                    .is_none_or(|f| f.to_bare() == self.jid.to_bare());
                if own && req.payload.is("query", xmpp_parsers::ns::ROSTER) {
                    match Roster::try_from(req.payload.clone()) {
                        Ok(push) => self.contacts.push(push),
                        Err(e) => tracing::warn!(error = %e, "A roster push could not be read."),
                    }
                    self.reply(&req, Ok(None)).await;
                    return None;
                }
                Some(req)
            }
        }
    }

    /// The waiter of the request `id` when `from` may answer it; an answer from anyone else
    /// is no answer (the request stays pending) and is only counted in [`discarded`].
    fn take_pending(
        &mut self,
        id: &str,
        from: Option<&Jid>,
        kind: &'static str,
    ) -> Option<oneshot::Sender<IqOutcome>> {
        let pending = self.pending.get(id)?;
        if !answered_by(&self.jid, pending.to.as_ref(), from) {
            let sender = from.map(|f| f.to_string());
            tracing::debug!(id, from = ?sender, "Ignored an IQ {kind} from an entity that was not asked.");
            discarded::record(
                discarded::Kind::UnaskedAnswer,
                sender.as_deref().unwrap_or("(no from)"),
            );
            return None;
        }
        self.pending.remove(id).map(|p| p.waiter)
    }

    /// Asks for the roster, which makes this resource "interested" (RFC 6121 §2.1.6):
    /// only then does the server deliver subscription approvals and roster pushes to it.
    /// [`Incoming::Roster`] says when the answer is in [`Session::contacts`].
    pub async fn request_roster(&mut self) {
        let query = Roster {
            ver: None,
            items: vec![],
        };
        self.roster_answer = Some(self.request(None, false, query.into()).await);
    }

    /// Our roster's subscription states, from the last roster result and the pushes since.
    pub fn contacts(&self) -> &Contacts {
        &self.contacts
    }

    /// Queues a stanza for sending. Returns once it is queued (not once it is written), so a
    /// slow server applies back-pressure only when the [`QUEUE_DEPTH`]-deep queue is full; a
    /// bot that must not wait watches [`Session::backlog`] and holds back what can wait.
    pub async fn send(&self, stanza: impl Into<Stanza>) {
        let token = self.stream.send(Box::new(stanza.into())).await;
        self.with_backlog(|b| b.push(token));
    }

    /// Stanzas we sent that the server has not taken yet: queued, or written and not yet
    /// acknowledged (XEP-0198). It grows while the server reads slowly (its rate limit).
    pub fn backlog(&self) -> usize {
        self.with_backlog(|b| b.len())
    }

    fn with_backlog<R>(&self, f: impl FnOnce(&mut Backlog<StanzaToken>) -> R) -> R {
        let mut guard = self.backlog.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    /// Answers an IQ request with a payload, an empty result, or an error.
    pub async fn reply(&self, req: &IqRequest, outcome: Result<Option<Element>, StanzaError>) {
        let Some(to) = req.from.clone() else {
            // From our own account/server: answer without a `to`.
            return self.send(build_reply(None, &req.id, outcome)).await;
        };
        self.send(build_reply(Some(to), &req.id, outcome)).await
    }

    /// `service-unavailable`: the answer to every IQ nobody handles.
    pub async fn reply_unavailable(&self, req: &IqRequest) {
        self.reply(
            req,
            Err(stanza_error(DefinedCondition::ServiceUnavailable, None)),
        )
        .await
    }

    /// Sends an IQ and returns a receiver for its outcome.
    pub async fn request(
        &mut self,
        to: Option<Jid>,
        set: bool,
        payload: Element,
    ) -> oneshot::Receiver<IqOutcome> {
        let id = random_id();
        let iq = if set {
            Iq::Set {
                from: None,
                to: to.clone(),
                id: id.clone(),
                payload,
            }
        } else {
            Iq::Get {
                from: None,
                to: to.clone(),
                id: id.clone(),
                payload,
            }
        };
        let (waiter, rx) = oneshot::channel();
        self.pending.retain(|_, p| !p.waiter.is_closed());
        self.pending.insert(id, PendingIq { to, waiter });
        self.send(iq).await;
        rx
    }

    /// Sends `last` (e.g. unavailable presence), waits until it is written, then closes the
    /// stream — all bounded by `grace`, since tokio-xmpp's close never returns when the stream
    /// never connected.
    pub async fn close(self, last: Option<Stanza>, grace: Duration) {
        let work = async move {
            if let Some(stanza) = last {
                let mut token = self.stream.send(Box::new(stanza)).await;
                let _ = token.wait_for(StanzaStage::Sent).await;
            }
            self.stream.close().await;
        };
        if tokio::time::timeout(grace, work).await.is_err() {
            tracing::warn!("Stream did not close within {grace:?}; leaving anyway.");
        }
    }
}

/// Sleeps until `at`, or forever.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The roster answer when one is awaited; pending forever otherwise.
async fn roster_answer(
    waiting: &mut Option<oneshot::Receiver<IqOutcome>>,
) -> Result<IqOutcome, oneshot::error::RecvError> {
    match waiting {
        Some(rx) => rx.await,
        None => std::future::pending().await,
    }
}

/// Hands the outcome of an IQ sent with [`Session::request`] to the bot's own channel from a
/// small task, so the bot's loop never waits for an answer. A dropped waiter (stream reset)
/// arrives as [`IqFailure::Lost`].
pub fn forward<T: Send + 'static>(
    rx: oneshot::Receiver<IqOutcome>,
    tx: &tokio::sync::mpsc::UnboundedSender<T>,
    wrap: impl FnOnce(IqOutcome) -> T + Send + 'static,
) {
    let tx = tx.clone();
    tokio::spawn(async move {
        let outcome = rx.await.unwrap_or(Err(IqFailure::Lost));
        let _ = tx.send(wrap(outcome));
    });
}

/// RFC 6120 §8.1.2.1: whether `from` may answer a request this session (`own`) sent to
/// `asked`. The asked entity answers with its own address; a request with no `to` (or to our
/// own bare JID) is answered by our account — its bare JID, the server's domain, this very
/// session or no `from` at all. The server stamps `from` on everything it routes, so
/// nobody else can pass for these.
pub fn answered_by(own: &FullJid, asked: Option<&Jid>, from: Option<&Jid>) -> bool {
    let to_own_account = match asked {
        None => true,
        Some(a) => a.resource().is_none() && a.to_bare() == own.to_bare(),
    };
    if !to_own_account {
        return from == asked;
    }
    match from {
        None => true,
        Some(f) if f.node().is_none() && f.resource().is_none() => f.domain() == own.domain(),
        Some(f) => match f.resource() {
            None => f.to_bare() == own.to_bare(),
            Some(_) => f.try_as_full().is_ok_and(|full| full == own),
        },
    }
}

/// An IQ id nobody can guess: 128 bits from the system's CSPRNG (through rustls's ring
/// provider, already linked for TLS), so that a stranger cannot answer a request he did not
/// see. Falls back to the randomly keyed std hasher if the system refuses randomness.
fn random_id() -> String {
    let mut bytes = [0u8; 16];
    let provider = tokio_rustls::rustls::crypto::ring::default_provider();
    if provider.secure_random.fill(&mut bytes).is_err() {
        let (a, b) = (backoff::random_unit(), backoff::random_unit());
        bytes[..8].copy_from_slice(&a.to_bits().to_le_bytes());
        bytes[8..].copy_from_slice(&b.to_bits().to_le_bytes());
    }
    let mut id = String::with_capacity(34);
    id.push_str("jm");
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// Builds an IQ reply.
pub fn build_reply(to: Option<Jid>, id: &str, outcome: Result<Option<Element>, StanzaError>) -> Iq {
    match outcome {
        Ok(payload) => Iq::Result {
            from: None,
            to,
            id: id.to_string(),
            payload,
        },
        Err(error) => Iq::Error {
            from: None,
            to,
            id: id.to_string(),
            error,
            payload: None,
        },
    }
}

/// A stanza error of the usual type for `condition`, with an optional English text.
pub fn stanza_error(condition: DefinedCondition, text: Option<&str>) -> StanzaError {
    let type_ = match condition {
        DefinedCondition::BadRequest | DefinedCondition::NotAcceptable => ErrorType::Modify,
        DefinedCondition::Forbidden | DefinedCondition::NotAuthorized => ErrorType::Auth,
        DefinedCondition::ResourceConstraint => ErrorType::Wait,
        _ => ErrorType::Cancel,
    };
    let mut err = StanzaError::new(type_, condition, "en", text.unwrap_or(""));
    if text.is_none() {
        err.texts.clear();
    }
    err
}

/// The connector closure handed to the stanza stream: one login attempt after another with
/// [`Backoff`], each failure logged once in words an operator can act on.
fn reconnector(
    connector: Connector,
    jid: FullJid,
    password: String,
) -> Box<dyn FnMut(Option<String>, oneshot::Sender<Connection>) + Send + 'static> {
    let backoff = Arc::new(Mutex::new(Backoff::default()));
    Box::new(move |_preferred, slot: oneshot::Sender<Connection>| {
        let (connector, jid, password, backoff) = (
            connector.clone(),
            jid.clone(),
            password.clone(),
            backoff.clone(),
        );
        tokio::spawn(async move {
            let identity = Jid::from(jid.clone());
            loop {
                if slot.is_closed() {
                    return;
                }
                match connector::login(&connector, &identity, &password, Timeouts::tight()).await {
                    Ok((features, stream)) => {
                        backoff.lock().map(|mut b| b.reset()).ok();
                        let _ = slot.send(Connection {
                            stream: stream.box_stream(),
                            features,
                            identity,
                        });
                        return;
                    }
                    Err(e) => {
                        let delay = backoff
                            .lock()
                            .map(|mut b| b.next_delay(backoff::random_unit()))
                            .unwrap_or(Duration::from_secs(60));
                        match &e {
                            tokio_xmpp::Error::Auth(_) => tracing::error!(
                                %jid, retry_in = ?delay,
                                "Authentication failed: {e}. Check the account and its password."
                            ),
                            _ => tracing::warn!(
                                %jid, retry_in = ?delay, "Could not connect: {e}."
                            ),
                        }
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        });
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> Jid {
        Jid::new(s).unwrap()
    }

    #[test]
    fn an_answer_comes_from_the_asked_entity() {
        let own = FullJid::new("hub@example.org/hub").unwrap();
        let peer = jid("c1@example.org/jabmon");
        assert!(answered_by(&own, Some(&peer), Some(&peer)));
        for other in [
            "eve@example.org/jabmon",
            "c1@example.org/other",
            "c1@example.org",
            "example.org",
            "hub@example.org",
        ] {
            assert!(
                !answered_by(&own, Some(&peer), Some(&jid(other))),
                "{other}"
            );
        }
        assert!(
            !answered_by(&own, Some(&peer), None),
            "no from: our server, not the peer"
        );
        let server = jid("example.org");
        assert!(answered_by(&own, Some(&server), Some(&server)));
        assert!(!answered_by(
            &own,
            Some(&server),
            Some(&jid("eve@example.org"))
        ));
    }

    #[test]
    fn a_request_to_our_account_is_answered_by_it() {
        let own = FullJid::new("hub@example.org/hub").unwrap();
        for asked in [None, Some(jid("hub@example.org"))] {
            for from in [
                None,
                Some("hub@example.org"),
                Some("example.org"),
                Some("hub@example.org/hub"),
            ] {
                let from = from.map(jid);
                assert!(answered_by(&own, asked.as_ref(), from.as_ref()), "{from:?}");
            }
            for from in [
                "eve@example.org",
                "eve@example.org/hub",
                "hub@example.org/other",
                "other.org",
                "example.org/x",
                "hub@other.org",
            ] {
                assert!(
                    !answered_by(&own, asked.as_ref(), Some(&jid(from))),
                    "{from}"
                );
            }
        }
    }

    #[test]
    fn ids_are_unpredictable() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| random_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| id.len() == 34 && id.starts_with("jm")));
    }

    #[test]
    fn reply_shapes() {
        let ok = build_reply(Some(Jid::new("a@b/c").unwrap()), "7", Ok(None));
        let el: Element = ok.into();
        assert_eq!(el.attr("type"), Some("result"));
        assert_eq!(el.attr("id"), Some("7"));
        let err = build_reply(
            None,
            "8",
            Err(stanza_error(DefinedCondition::ServiceUnavailable, None)),
        );
        let el: Element = err.into();
        assert_eq!(el.attr("type"), Some("error"));
        let e = el.get_child("error", xmpp_parsers::ns::DEFAULT_NS).unwrap();
        assert_eq!(e.attr("type"), Some("cancel"));
        assert!(e.has_child("service-unavailable", xmpp_parsers::ns::XMPP_STANZAS));
    }
}
