//! A test client in a MUC room (XEP-0045): joining (creating and configuring the room when
//! it is new: persistent, real JIDs shown to everyone), speaking, destroying it, the
//! messages seen there and those its archive (XEP-0313) keeps.

use jabmon_shared::session::Incoming;
use minidom::Element;
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field};
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::mam::{Query, QueryId, Result_ as ArchiveResult};
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::muc::muc::History;
use xmpp_parsers::muc::user::{MucUser, Status};
use xmpp_parsers::muc::Muc;
use xmpp_parsers::presence::{Presence, Type as PresenceType};

use crate::client::{TestClient, WAIT};

/// The MUC service of both test servers.
pub const SERVICE: &str = "conference.localhost";
const MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
const MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";

/// `name@conference.localhost`.
pub fn room_jid(name: &str) -> BareJid {
    BareJid::new(&format!("{name}@{SERVICE}")).unwrap()
}

/// A groupchat message seen in a room.
#[derive(Debug, Clone)]
pub struct Said {
    pub nick: String,
    pub body: String,
    pub id: Option<String>,
    /// The room's stanza id (XEP-0359), when it stamps one.
    pub stanza_id: Option<String>,
}

/// What `e` says in `room`, if it is a live groupchat message there.
pub fn said(e: &Incoming, room: &BareJid) -> Option<Said> {
    let Incoming::Message(m) = e else { return None };
    if m.type_ != MessageType::Groupchat || m.from.as_ref()?.to_bare() != *room {
        return None;
    }
    if m.payloads
        .iter()
        .any(|p| p.is("delay", xmpp_parsers::ns::DELAY))
    {
        return None;
    }
    let stanza_id = m
        .payloads
        .iter()
        .filter(|p| p.is("stanza-id", xmpp_parsers::ns::SID))
        .find(|p| p.attr("by") == Some(room.as_str()))
        .and_then(|p| p.attr("id").map(str::to_owned));
    Some(Said {
        nick: m.from.as_ref()?.resource()?.to_string(),
        body: m.bodies.values().next()?.clone(),
        id: m.id.as_ref().map(|i| i.0.clone()),
        stanza_id,
    })
}

/// The nickname the hub uses in the test rooms.
pub const HUB_NICK: &str = "jabmon";

/// What the hub says in `room`, if `e` is a live line of the hub's there containing `want`.
pub fn hub_said(e: &Incoming, room: &BareJid, want: &str) -> Option<Said> {
    said(e, room).filter(|s| s.nick == HUB_NICK && s.body.contains(want))
}

/// Whether `e` is `nick` becoming available in `room`.
pub fn joined(e: &Incoming, room: &BareJid, nick: &str) -> bool {
    matches!(e, Incoming::Presence(p) if p.type_ == PresenceType::None
        && p.from.as_ref().is_some_and(|f| f.to_bare() == *room
            && f.resource().is_some_and(|r| r.as_str() == nick)))
}

impl TestClient {
    /// Joins `room` as `nick`; a room this creates is configured persistent and non-anonymous.
    pub async fn join_room(&mut self, room: &BareJid, nick: &str) {
        let to = room.with_resource_str(nick).unwrap();
        let join = Presence::available()
            .with_to(to.clone())
            .with_payload(Muc::new().with_history(History::new().with_maxstanzas(0)));
        self.session.send(join).await;
        let statuses = self
            .next_matching(WAIT, "our own presence in the room", |e| match e {
                Incoming::Presence(p)
                    if p.from.as_ref() == Some(&Jid::from(to.clone()))
                        && p.type_ != PresenceType::Unavailable =>
                {
                    assert_ne!(p.type_, PresenceType::Error, "could not join {room}: {p:?}");
                    let user = p
                        .payloads
                        .iter()
                        .find_map(|x| MucUser::try_from(x.clone()).ok())?;
                    user.status
                        .contains(&Status::SelfPresence)
                        .then_some(user.status)
                }
                _ => None,
            })
            .await;
        if statuses.contains(&Status::RoomHasBeenCreated) {
            self.configure_room(room).await;
        }
    }

    async fn configure_room(&mut self, room: &BareJid) {
        let form = DataForm::new(
            DataFormType::Submit,
            "http://jabber.org/protocol/muc#roomconfig",
            vec![
                Field::text_single("muc#roomconfig_persistentroom", "1"),
                Field::text_single("muc#roomconfig_whois", "anyone"),
            ],
        );
        let query = Element::builder("query", MUC_OWNER)
            .append(Element::from(form))
            .build();
        let outcome = self.iq(Jid::from(room.clone()), true, query).await;
        assert!(outcome.is_ok(), "configuring {room}: {outcome:?}");
    }

    /// Reconfigures `room` (we own it) with `fields` of the `muc#roomconfig` form, e.g.
    /// `("muc#roomconfig_passwordprotectedroom", "1")`.
    pub async fn reconfigure_room(&mut self, room: &BareJid, fields: &[(&str, &str)]) {
        let form = DataForm::new(
            DataFormType::Submit,
            "http://jabber.org/protocol/muc#roomconfig",
            fields
                .iter()
                .map(|(k, v)| Field::text_single(k, v))
                .collect(),
        );
        let query = Element::builder("query", MUC_OWNER)
            .append(Element::from(form))
            .build();
        let outcome = self.iq(Jid::from(room.clone()), true, query).await;
        assert!(outcome.is_ok(), "configuring {room}: {outcome:?}");
    }

    /// Makes `member` a member of `room` (we own it).
    pub async fn add_member(&mut self, room: &BareJid, member: &BareJid) {
        let item = Element::builder("item", MUC_ADMIN)
            .attr("affiliation".try_into().expect("a name"), "member")
            .attr("jid".try_into().expect("a name"), member.to_string())
            .build();
        let query = Element::builder("query", MUC_ADMIN).append(item).build();
        let outcome = self.iq(Jid::from(room.clone()), true, query).await;
        assert!(outcome.is_ok(), "adding {member} to {room}: {outcome:?}");
    }

    /// Destroys `room` (we own it).
    pub async fn destroy_room(&mut self, room: &BareJid) {
        let query = Element::builder("query", MUC_OWNER)
            .append(Element::builder("destroy", MUC_OWNER).build())
            .build();
        let outcome = self.iq(Jid::from(room.clone()), true, query).await;
        assert!(outcome.is_ok(), "destroying {room}: {outcome:?}");
    }

    /// The groupchat messages `room`'s archive (XEP-0313) holds, oldest first, as a client
    /// scrolling back receives them: one archive query, the results it forwards until its `fin`.
    pub async fn room_archive(&mut self, room: &BareJid) -> Vec<Message> {
        let queryid = format!("archive-{}", std::process::id());
        let query = Query {
            queryid: Some(QueryId(queryid.clone())),
            node: None,
            form: None,
            set: None,
            flip_page: false,
        };
        let outcome = self.iq(Jid::from(room.clone()), true, query.into()).await;
        assert!(outcome.is_ok(), "querying {room}'s archive: {outcome:?}");
        let mut found = Vec::new();
        // The results came before the answer: the session kept them in the inbox.
        while let Some(m) = self
            .try_next_matching(std::time::Duration::ZERO, |e| {
                let Incoming::Message(m) = e else { return None };
                m.payloads.iter().find_map(|p| {
                    let r = ArchiveResult::try_from(p.clone()).ok()?;
                    (r.queryid.as_ref().map(|q| q.0.as_str()) == Some(queryid.as_str()))
                        .then_some(r.forwarded.message)
                })
            })
            .await
        {
            found.push(m);
        }
        found
    }

    /// Says `body` in `room`; `payloads` go along (a reply, reactions).
    pub async fn say(&mut self, room: &BareJid, body: Option<&str>, payloads: Vec<Element>) {
        let mut m = Message::groupchat(Some(Jid::from(room.clone())));
        if let Some(body) = body {
            m.bodies.insert(Default::default(), body.to_owned());
        }
        m.payloads = payloads;
        self.session.send(m).await;
    }
}
