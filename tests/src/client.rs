//! A test client: a real XMPP account on the test server, driven through the project's own
//! session layer (the same code the bots run on).

use std::collections::VecDeque;
use std::time::Duration;

use jabmon_shared::config::{Secret, ServerAddr, TlsMode, XmppConfig};
use jabmon_shared::session::{Incoming, IqOutcome, Session, Software};
use minidom::Element;
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::presence::Presence;

use crate::Server;

/// Default time a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(10);

/// Settings for a session to the test server.
pub fn xmpp_config(server: &Server, jid: &str, password: &str, resource: &str) -> XmppConfig {
    XmppConfig {
        jid: BareJid::new(jid).expect("test JID"),
        resource: resource.to_string(),
        password: Secret::new(password),
        server: ServerAddr::Explicit {
            host: "127.0.0.1".into(),
            port: server.port(),
        },
        tls: if server.tls_required() {
            TlsMode::Required
        } else {
            TlsMode::None
        },
        ca_file: server.tls_required().then(|| server.ca_file()),
        hide_os: false,
    }
}

/// A connected test account.
pub struct TestClient {
    pub session: Session,
    pub jid: BareJid,
    inbox: VecDeque<Incoming>,
    /// What this client answers to disco#info (set by [`TestClient::advertise`]).
    disco: Option<xmpp_parsers::disco::DiscoInfoResult>,
}

/// The caps node test clients use.
pub const TEST_CAPS_NODE: &str = "urn:jabmon:test";

impl TestClient {
    /// Connects `jid` (already registered) and waits until it is online.
    pub async fn connect(server: &Server, jid: &str, password: &str) -> Self {
        Self::connect_with(xmpp_config(server, jid, password, "test")).await
    }

    /// Connects with explicit settings and waits until online.
    pub async fn connect_with(cfg: XmppConfig) -> Self {
        let software = Software {
            name: "jabmon-test".into(),
            version: "0".into(),
        };
        let session = Session::start(&cfg, software).expect("session");
        let mut c = Self {
            session,
            jid: cfg.jid.clone(),
            inbox: VecDeque::new(),
            disco: None,
        };
        c.next_matching(WAIT, "online", |e| {
            matches!(e, Incoming::Online { .. }).then_some(())
        })
        .await;
        c.session.request_roster().await;
        c
    }

    /// Sends an available presence (so that the server routes presence and PEP to us).
    pub async fn available(&mut self) {
        self.session.send(Presence::available()).await;
    }

    /// Sends available presence with XEP-0115 caps for `features` (e.g.
    /// `urn:jabmon:events:0+notify`) and answers disco#info for them from then on, as
    /// `mod_pep` asks before it notifies.
    pub async fn advertise(&mut self, features: &[&str]) {
        let mut all: std::collections::BTreeSet<String> =
            features.iter().map(|f| f.to_string()).collect();
        all.insert("http://jabber.org/protocol/disco#info".into());
        all.insert("http://jabber.org/protocol/caps".into());
        let info = xmpp_parsers::disco::DiscoInfoResult {
            node: None,
            identities: vec![xmpp_parsers::disco::Identity::new(
                "client",
                "bot",
                "en",
                "jabmon test",
            )],
            features: all,
            extensions: vec![],
        };
        let caps = jabmon_shared::caps::caps(TEST_CAPS_NODE, &info);
        self.disco = Some(info);
        self.session
            .send(Presence::available().with_payload(caps))
            .await;
    }

    /// Answers an IQ the test did not ask about: disco#info when advertising, else
    /// `service-unavailable`.
    async fn answer(&mut self, req: &jabmon_shared::session::IqRequest) {
        if let (false, Some(info)) = (req.set, &self.disco) {
            if let Ok(q) = xmpp_parsers::disco::DiscoInfoQuery::try_from(req.payload.clone()) {
                let mut info = info.clone();
                info.node = q.node;
                return self.session.reply(req, Ok(Some(info.into()))).await;
            }
        }
        self.session.reply_unavailable(req).await
    }

    /// Pumps the session until `pick` accepts an event; other events are kept for later
    /// calls. IQ requests nobody expects get an answer. Panics after `limit`.
    pub async fn next_matching<T>(
        &mut self,
        limit: Duration,
        what: &str,
        pick: impl FnMut(&Incoming) -> Option<T>,
    ) -> T {
        match self.try_next_matching(limit, pick).await {
            Some(v) => v,
            None => panic!("timed out after {limit:?} waiting for {what}"),
        }
    }

    /// As [`TestClient::next_matching`], but `None` when nothing matched within `limit`
    /// (for asserting that something does *not* happen while something else does).
    pub async fn try_next_matching<T>(
        &mut self,
        limit: Duration,
        mut pick: impl FnMut(&Incoming) -> Option<T>,
    ) -> Option<T> {
        if let Some(pos) = self.inbox.iter().position(|e| pick(e).is_some()) {
            let e = self.inbox.remove(pos).expect("index in range");
            return pick(&e);
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let event = match tokio::time::timeout_at(deadline, self.session.next()).await {
                Ok(Some(e)) => e,
                Ok(None) => panic!("session closed"),
                Err(_) => return None,
            };
            if let Some(v) = pick(&event) {
                return Some(v);
            }
            if let Incoming::Iq(req) = &event {
                self.answer(req).await;
                continue;
            }
            self.inbox.push_back(event);
            if self.inbox.len() > 10_000 {
                self.inbox.pop_front();
            }
        }
    }

    /// Sends an IQ and waits for its outcome, pumping the session meanwhile.
    pub async fn iq(&mut self, to: Jid, set: bool, payload: Element) -> IqOutcome {
        let rx = self.session.request(Some(to), set, payload).await;
        self.wait(rx).await
    }

    /// Pings `to` (XEP-0199) until it answers, for at most [`WAIT`]: a bot started a moment ago
    /// may not have bound its resource yet, and the server answers `service-unavailable` for it
    /// until it has. Panics on any other error or when the time is up.
    pub async fn wait_reachable(&mut self, to: Jid) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let rx = self
                .session
                .request(Some(to.clone()), false, xmpp_parsers::ping::Ping.into())
                .await;
            match self.wait_within(rx, left).await {
                Ok(_) => return,
                Err(jabmon_shared::session::IqFailure::Error(e))
                    if e.defined_condition
                        == xmpp_parsers::stanza_error::DefinedCondition::ServiceUnavailable
                        && tokio::time::Instant::now() < deadline => {}
                Err(other) => panic!("{to} is not reachable: {other:?}"),
            }
        }
    }

    /// Waits for the outcome of an IQ sent with `session.request`, pumping meanwhile.
    pub async fn wait(&mut self, rx: tokio::sync::oneshot::Receiver<IqOutcome>) -> IqOutcome {
        self.wait_within(rx, WAIT).await
    }

    /// As [`TestClient::wait`], for at most `limit`.
    pub async fn wait_within(
        &mut self,
        mut rx: tokio::sync::oneshot::Receiver<IqOutcome>,
        limit: Duration,
    ) -> IqOutcome {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            // The answer is delivered while `next()` runs, so race the two.
            let event = tokio::select! {
                outcome = &mut rx => return outcome.expect("the session keeps IQ waiters"),
                event = tokio::time::timeout_at(deadline, self.session.next()) => event,
            };
            match event {
                Ok(Some(Incoming::Iq(req))) => self.answer(&req).await,
                Ok(Some(e)) => self.inbox.push_back(e),
                Ok(None) => panic!("session closed while waiting for an IQ answer"),
                Err(_) => panic!("no IQ answer within {limit:?}"),
            }
        }
    }

    /// Drops every buffered event.
    pub fn clear(&mut self) {
        self.inbox.clear();
    }
}
