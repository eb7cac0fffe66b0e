//! A user of the hub as the tests see one: a chat client that sends queries to
//! `hub@localhost` and reads its JSON replies and events, and asks the hub's disco#info for a
//! collector's status.

use std::time::Duration;

use jabmon_shared::session::Incoming;
use serde_json::Value;
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::presence::{Presence, Type as PresenceType};

use crate::client::WAIT;
use crate::{Server, TestClient};

/// The hub's account in every test.
pub const HUB: &str = "hub@localhost";

/// Connects `name@localhost` (password `pw-NAME`) and sends available presence.
pub async fn user(server: &Server, name: &str) -> TestClient {
    let mut c =
        TestClient::connect(server, &format!("{name}@localhost"), &format!("pw-{name}")).await;
    c.available().await;
    c
}

/// A user with a presence subscription to the hub, once the hub is available. A chat sent to
/// a bot that is bound but not yet available is held offline; on ejabberd one sent in the
/// very instant the bot becomes available can stay there until its next login (Prosody hands
/// it over). So users query a hub they see online, as a roster shows it.
pub async fn user_of_hub(server: &Server, name: &str) -> TestClient {
    let mut c = user(server, name).await;
    c.session
        .send(Presence::subscribe().with_to(Jid::new(HUB).unwrap()))
        .await;
    hub_online(&mut c).await;
    c
}

/// Waits for the hub's available presence.
pub async fn hub_online(c: &mut TestClient) {
    c.next_matching(WAIT, "the hub's available presence", |e| match e {
        Incoming::Presence(p)
            if p.type_ == PresenceType::None
                && p.from.as_ref().map(|f| f.to_bare().to_string()).as_deref() == Some(HUB) =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
}

/// A chat line from the hub containing `want`, with its message id.
pub fn hub_says(e: &Incoming, want: &str) -> Option<(String, Option<String>)> {
    let Incoming::Message(m) = e else { return None };
    let body = m.bodies.values().next()?;
    (m.type_ == MessageType::Chat
        && m.from.as_ref()?.to_bare().to_string() == HUB
        && body.contains(want))
    .then(|| (body.clone(), m.id.as_ref().map(|i| i.0.clone())))
}

pub fn body_of(e: &Incoming, from_hub: bool) -> Option<Value> {
    let Incoming::Message(m) = e else { return None };
    let from = m.from.as_ref()?.to_bare().to_string();
    if from_hub && from != HUB {
        return None;
    }
    serde_json::from_str(m.bodies.values().next()?).ok()
}

/// Sends `body` to the hub as a chat message.
pub async fn tell_hub(c: &mut TestClient, body: &str) {
    let mut m = Message::new(Some(Jid::new(HUB).unwrap()));
    m.type_ = MessageType::Chat;
    m.bodies.insert(Default::default(), body.to_string());
    c.session.send(m).await;
}

/// Sends a query and returns the hub's reply (the first JSON reply carrying `debug.request`).
pub async fn query(c: &mut TestClient, body: &str) -> Value {
    tell_hub(c, body).await;
    let want = body.to_string();
    c.next_matching(WAIT, "the hub's reply", move |e| {
        body_of(e, true).filter(|v| v["debug"]["request"].as_str() == Some(want.as_str()))
    })
    .await
}

/// Whether a reply is an event of registration `key`.
pub fn is_event(v: &Value, key: &str) -> bool {
    v["key"].as_str() == Some(key) && v["results"]["event"].is_object()
}

/// The next event of registration `key`.
pub async fn next_event(c: &mut TestClient, key: &str, limit: Duration) -> Value {
    let key = key.to_string();
    c.next_matching(limit, "an event", move |e| {
        body_of(e, true).filter(|v| is_event(v, &key))
    })
    .await
}

/// The first value of field `var` in a disco#info form.
pub fn field(info: &DiscoInfoResult, var: &str) -> Option<String> {
    info.extensions
        .iter()
        .flat_map(|f| &f.fields)
        .find(|f| f.var.as_deref() == Some(var))?
        .values
        .first()
        .cloned()
}

/// The hub's word for `collector` (its disco#info node).
pub async fn collector_status(c: &mut TestClient, collector: &str) -> Option<String> {
    let q = DiscoInfoQuery {
        node: Some(collector.into()),
    };
    let el = c
        .iq(Jid::new("hub@localhost/hub").unwrap(), false, q.into())
        .await
        .ok()??;
    field(&DiscoInfoResult::try_from(el).ok()?, "status")
}
