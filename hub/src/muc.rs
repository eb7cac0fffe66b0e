//! The MUC rooms (XEP-0045) the hub posts alerts to — pure: joining with a password, a
//! nickname conflict, staying in after a kick, a room's destruction or a reconnect, who each
//! occupant is, and alert messages held until the hub is in. The bot sends the presences
//! returned here and tells this module every presence from a room. Operator's view:
//! docs/alerts.md, "Rooms".
//!
//! Rules the module keeps:
//! - the hub never creates a room: a join that creates one (status 201) is left at once (a
//!   room never configured vanishes) and tried again later;
//! - a refusal (wrong password, members-only, banned) or being put out (kick, ban, room
//!   destroyed, service shut down) is retried with backoff, 5 s doubling to 5 min;
//! - a nickname in use gets `-2`, `-3`, … (up to `-9`), then backoff with the configured one;
//! - the hub's own messages reflected by the room are never taken as commands.

use std::collections::{HashMap, VecDeque};

use serde::Deserialize;
use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::message::Message;
use xmpp_parsers::muc::muc::History;
use xmpp_parsers::muc::user::{MucUser, Status};
use xmpp_parsers::muc::Muc;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

/// The nickname when `[[rooms]]` gives none.
pub const DEFAULT_NICK: &str = "jabmon";
/// Alert messages held per room until the hub is in; the oldest go first beyond this.
pub const HOLD_CAP: usize = 50;
const RETRY_FIRST: f64 = 5.0;
const RETRY_MAX: f64 = 300.0;
const MAX_NICK_SUFFIX: u32 = 9;

/// One `[[rooms]]` entry as written.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoomSection {
    /// The room's bare JID, `ops@conference.example.org`.
    pub jid: String,
    /// The hub's nickname there (`jabmon`).
    #[serde(default)]
    pub nick: Option<String>,
    /// For a password-protected room.
    #[serde(default)]
    pub password: Option<String>,
}

/// A room to join, validated.
#[derive(Clone, PartialEq)]
pub struct RoomSettings {
    pub jid: BareJid,
    pub nick: String,
    pub password: Option<String>,
}

impl std::fmt::Debug for RoomSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomSettings")
            .field("jid", &self.jid)
            .field("nick", &self.nick)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// Validates `[[rooms]]` and adds, with the default nickname, every room an alert route names
/// (`routed`) that the section does not list. `Err`: every problem.
pub fn validate_rooms(
    sections: &[RoomSection],
    routed: &[String],
) -> Result<Vec<RoomSettings>, Vec<String>> {
    let mut problems = Vec::new();
    let mut rooms: Vec<RoomSettings> = Vec::new();
    for (i, s) in sections.iter().enumerate() {
        let at = format!("[[rooms]] #{} ({})", i + 1, s.jid);
        let jid = match BareJid::new(&s.jid) {
            Ok(jid) if jid.node().is_some() => jid,
            _ => {
                problems.push(format!("{at}: jid must be a room's bare JID, room@service"));
                continue;
            }
        };
        let nick = s.nick.clone().unwrap_or_else(|| DEFAULT_NICK.to_owned());
        if jid.with_resource_str(&nick).is_err() || nick.chars().count() > 64 {
            problems.push(format!(
                "{at}: nick must be 1-64 characters a JID resource allows"
            ));
        }
        if rooms.iter().any(|r| r.jid == jid) {
            problems.push(format!("{at}: listed twice"));
        }
        if s.password.as_deref() == Some("") {
            problems.push(format!(
                "{at}: password is empty (leave it out for no password)"
            ));
        }
        rooms.push(RoomSettings {
            jid,
            nick,
            password: s.password.clone(),
        });
    }
    for r in routed {
        match BareJid::new(r) {
            Ok(jid) if jid.node().is_some() => {
                if !rooms.iter().any(|s| s.jid == jid) {
                    rooms.push(RoomSettings {
                        jid,
                        nick: DEFAULT_NICK.to_owned(),
                        password: None,
                    });
                }
            }
            _ => problems.push(format!("route room {r}: not a room's bare JID")),
        }
    }
    if problems.is_empty() {
        Ok(rooms)
    } else {
        Err(problems)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not in; join at `retry_at`.
    Out,
    Joining,
    Joined,
}

#[derive(Debug)]
struct Room {
    settings: RoomSettings,
    /// The nickname in use or being tried.
    nick: String,
    suffix: u32,
    state: State,
    retry_at: f64,
    delay: f64,
    /// Occupants by nickname → their real JID where the room shows it.
    occupants: HashMap<String, Option<BareJid>>,
    /// Alert messages waiting for the hub to be in.
    held: VecDeque<Message>,
}

impl Room {
    fn join(&mut self) -> Presence {
        self.state = State::Joining;
        let mut muc = Muc::new().with_history(History::new().with_maxstanzas(0));
        muc.password = self.settings.password.clone();
        Presence::available()
            .with_to(self.full(&self.nick))
            .with_payload(muc)
    }

    fn full(&self, nick: &str) -> Jid {
        self.settings
            .jid
            .with_resource_str(nick)
            .map(Jid::from)
            .unwrap_or_else(|_| Jid::from(self.settings.jid.clone()))
    }

    fn put_out(&mut self, now: f64) {
        self.state = State::Out;
        self.occupants.clear();
        self.retry_at = now + self.delay;
        self.delay = (self.delay * 2.0).min(RETRY_MAX);
    }
}

/// Who wrote a groupchat message.
#[derive(Debug, Clone, PartialEq)]
pub struct Occupant {
    pub room: BareJid,
    pub nick: String,
    /// Their real JID, where the room shows it to the hub.
    pub real: Option<BareJid>,
}

/// What a groupchat message from a room is.
#[derive(Debug, Clone, PartialEq)]
pub enum FromRoom {
    /// The room's copy of the hub's own message: its id and the room's stanza id (XEP-0359)
    /// when the room stamps one.
    Reflection {
        id: Option<String>,
        stanza_id: Option<String>,
    },
    /// Someone else's message, live (history and subject changes are `Ignored`).
    Occupant(Occupant),
    Ignored,
}

/// Every room, by bare JID.
#[derive(Debug, Default)]
pub struct Rooms {
    rooms: HashMap<BareJid, Room>,
}

impl Rooms {
    pub fn new(settings: Vec<RoomSettings>) -> Self {
        let rooms = settings
            .into_iter()
            .map(|s| {
                let room = Room {
                    nick: s.nick.clone(),
                    suffix: 1,
                    state: State::Out,
                    retry_at: f64::INFINITY,
                    delay: RETRY_FIRST,
                    occupants: HashMap::new(),
                    held: VecDeque::new(),
                    settings: s,
                };
                (room.settings.jid.clone(), room)
            })
            .collect();
        Self { rooms }
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Whether the hub is in `room`.
    pub fn joined(&self, room: &BareJid) -> bool {
        self.rooms
            .get(room)
            .is_some_and(|r| r.state == State::Joined)
    }

    /// A fresh stream (the server forgot the hub's occupancy): join every room.
    pub fn on_online(&mut self) -> Vec<Presence> {
        self.rooms
            .values_mut()
            .map(|r| {
                r.occupants.clear();
                r.delay = RETRY_FIRST;
                r.join()
            })
            .collect()
    }

    /// Rooms due for another try.
    pub fn tick(&mut self, now: f64) -> Vec<Presence> {
        self.rooms
            .values_mut()
            .filter(|r| r.state == State::Out && r.retry_at <= now)
            .map(Room::join)
            .collect()
    }

    /// A presence: `None` when it is not from a room of ours; else what to send (a rejoin,
    /// a leave, the held messages once in).
    pub fn on_presence(&mut self, p: &Presence, now: f64) -> Option<RoomOutput> {
        let from = p.from.as_ref()?;
        let room = self.rooms.get_mut(&from.to_bare())?;
        let mut out = RoomOutput::default();
        let nick = from.resource().map(|r| r.as_str().to_owned());
        if p.type_ == PresenceType::Error {
            let error = p
                .payloads
                .iter()
                .find_map(|e| StanzaError::try_from(e.clone()).ok());
            let condition = error.as_ref().map(|e| e.defined_condition.clone());
            if room.state != State::Joining {
                return Some(out);
            }
            if condition == Some(DefinedCondition::Conflict) && room.suffix < MAX_NICK_SUFFIX {
                room.suffix += 1;
                room.nick = format!("{}-{}", room.settings.nick, room.suffix);
                tracing::warn!(room = %room.settings.jid, nick = %room.nick, "Nickname in use in the room; trying another.");
                out.presences.push(room.join());
                return Some(out);
            }
            let why = match condition {
                Some(DefinedCondition::NotAuthorized) => {
                    "wrong or missing password ([[rooms]] password)"
                }
                Some(DefinedCondition::RegistrationRequired) => {
                    "members-only: make the hub's JID a member"
                }
                Some(DefinedCondition::Forbidden) => "the hub is banned",
                Some(DefinedCondition::Conflict) => "every nickname tried is in use",
                Some(DefinedCondition::ServiceUnavailable) => "the room is full",
                _ => "refused",
            };
            room.nick = room.settings.nick.clone();
            room.suffix = 1;
            room.put_out(now);
            tracing::warn!(room = %room.settings.jid, reason = why, error = ?error.map(|e| e.defined_condition), retry_in = room.retry_at - now, "Could not join the room.");
            return Some(out);
        }
        let user = p
            .payloads
            .iter()
            .find(|e| e.is("x", xmpp_parsers::ns::MUC_USER));
        let muc_user = user.and_then(|e| MucUser::try_from(e.clone()).ok());
        let statuses = muc_user
            .as_ref()
            .map(|u| u.status.as_slice())
            .unwrap_or(&[]);
        let is_self =
            statuses.contains(&Status::SelfPresence) || nick.as_deref() == Some(&room.nick);
        let Some(nick) = nick else {
            return Some(out);
        };
        if !is_self {
            if p.type_ == PresenceType::Unavailable {
                room.occupants.remove(&nick);
            } else {
                let real = muc_user
                    .as_ref()
                    .and_then(|u| u.items.iter().find_map(|i| i.jid.clone()))
                    .map(|j: FullJid| j.to_bare());
                room.occupants.insert(nick, real);
            }
            return Some(out);
        }
        if p.type_ == PresenceType::Unavailable {
            if statuses.contains(&Status::NewNick) {
                if let Some(new) = muc_user
                    .as_ref()
                    .and_then(|u| u.items.iter().find_map(|i| i.nick.clone()))
                {
                    room.nick = new;
                }
                return Some(out);
            }
            let destroyed =
                user.is_some_and(|e| e.has_child("destroy", xmpp_parsers::ns::MUC_USER));
            let why = if destroyed {
                "the room was destroyed"
            } else if statuses.contains(&Status::Kicked) {
                "kicked"
            } else if statuses.contains(&Status::Banned) {
                "banned"
            } else if statuses.contains(&Status::ServiceShutdown) {
                "the MUC service is shutting down"
            } else {
                "removed"
            };
            room.put_out(now);
            tracing::warn!(room = %room.settings.jid, reason = why, retry_in = room.retry_at - now, "Out of the room; joining again.");
            return Some(out);
        }
        if statuses.contains(&Status::RoomHasBeenCreated) {
            // Joining made the room: leave it unconfigured (so it vanishes), try again later.
            out.presences
                .push(Presence::unavailable().with_to(room.full(&room.nick)));
            room.put_out(now);
            tracing::warn!(room = %room.settings.jid, retry_in = room.retry_at - now, "The room does not exist (the hub does not create rooms); joining again later.");
            return Some(out);
        }
        if room.state != State::Joined {
            if let Some(assigned) = statuses
                .contains(&Status::AssignedNick)
                .then(|| nick.clone())
            {
                room.nick = assigned;
            }
            room.state = State::Joined;
            room.delay = RETRY_FIRST;
            tracing::info!(room = %room.settings.jid, nick = %room.nick, "Joined the room.");
            out.messages.extend(room.held.drain(..));
        }
        Some(out)
    }

    /// An alert message for `room`: sent now when the hub is in, else held (`None`). A room
    /// that is not configured gets nothing (logged).
    pub fn send_or_hold(&mut self, room: &BareJid, m: Message) -> Option<Message> {
        let Some(r) = self.rooms.get_mut(room) else {
            tracing::warn!(%room, "Alert for a room not in [[rooms]] nor in a configured route; dropped.");
            return None;
        };
        if r.state == State::Joined {
            return Some(m);
        }
        if r.held.len() >= HOLD_CAP {
            r.held.pop_front();
            tracing::warn!(%room, "Too many alert messages held for the room; dropped the oldest.");
        }
        r.held.push_back(m);
        None
    }

    /// What a groupchat message is; `None` when it is not from a room of ours.
    pub fn classify(&self, m: &Message) -> Option<FromRoom> {
        let from = m.from.as_ref()?;
        let room = self.rooms.get(&from.to_bare())?;
        let Some(nick) = from.resource().map(|r| r.as_str().to_owned()) else {
            return Some(FromRoom::Ignored);
        };
        if nick == room.nick {
            let stanza_id = m
                .payloads
                .iter()
                .filter(|e| e.is("stanza-id", xmpp_parsers::ns::SID))
                .find(|e| e.attr("by") == Some(room.settings.jid.as_str()))
                .and_then(|e| e.attr("id").map(str::to_owned));
            return Some(FromRoom::Reflection {
                id: m.id.as_ref().map(|i| i.0.clone()),
                stanza_id,
            });
        }
        let history = m
            .payloads
            .iter()
            .any(|e| e.is("delay", xmpp_parsers::ns::DELAY));
        if history {
            return Some(FromRoom::Ignored);
        }
        Some(FromRoom::Occupant(Occupant {
            room: room.settings.jid.clone(),
            real: room.occupants.get(&nick).cloned().flatten(),
            nick,
        }))
    }
}

/// What to send after a room's presence.
#[derive(Debug, Default)]
pub struct RoomOutput {
    pub presences: Vec<Presence>,
    pub messages: Vec<Message>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use jabmon_shared::session::stanza_error;
    use minidom::Element;

    const ROOM: &str = "ops@conference.x";

    /// A `<x xmlns='http://jabber.org/protocol/muc#user'/>` for a test presence.
    fn muc_user(statuses: &[u16], item_jid: Option<&str>) -> Element {
        let jid = item_jid.map(|j| format!(" jid='{j}'")).unwrap_or_default();
        let codes: String = statuses
            .iter()
            .map(|c| format!("<status code='{c}'/>"))
            .collect();
        format!("<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'{jid}/>{codes}</x>")
            .parse()
            .unwrap()
    }

    fn rooms() -> Rooms {
        Rooms::new(
            validate_rooms(
                &[RoomSection {
                    jid: ROOM.into(),
                    nick: None,
                    password: Some("s3cret".into()),
                }],
                &[],
            )
            .unwrap(),
        )
    }

    fn presence(from: &str, type_: PresenceType, payloads: Vec<Element>) -> Presence {
        let mut p = Presence::new(type_).with_payloads(payloads);
        p.from = Some(Jid::new(from).unwrap());
        p
    }

    fn room() -> BareJid {
        BareJid::new(ROOM).unwrap()
    }

    fn alert() -> Message {
        Message::groupchat(Some(Jid::from(room())))
    }

    #[test]
    fn joins_with_password_and_no_history_then_sends_what_was_held() {
        let mut r = rooms();
        assert!(r.send_or_hold(&room(), alert()).is_none(), "held until in");
        let joins = r.on_online();
        assert_eq!(joins.len(), 1);
        let text = String::from(&Element::from(joins[0].clone()));
        assert!(text.contains("ops@conference.x/jabmon"), "{text}");
        assert!(
            text.contains("<password>s3cret</password>") && text.contains("maxstanzas='0'"),
            "{text}"
        );
        let out = r
            .on_presence(
                &presence(
                    "ops@conference.x/jabmon",
                    PresenceType::None,
                    vec![muc_user(&[110], None)],
                ),
                0.0,
            )
            .unwrap();
        assert!(r.joined(&room()));
        assert_eq!(out.messages.len(), 1, "the held alert goes out");
        assert!(r.send_or_hold(&room(), alert()).is_some());
        let elsewhere = presence("bob@x/r", PresenceType::None, vec![]);
        assert!(
            r.on_presence(&elsewhere, 0.0).is_none(),
            "not a room of ours"
        );
    }

    #[test]
    fn a_nickname_conflict_tries_another_and_refusals_back_off() {
        let mut r = rooms();
        r.on_online();
        let conflict = presence(
            "ops@conference.x/jabmon",
            PresenceType::Error,
            vec![stanza_error(DefinedCondition::Conflict, None).into()],
        );
        let out = r.on_presence(&conflict, 0.0).unwrap();
        let text = String::from(&Element::from(out.presences[0].clone()));
        assert!(text.contains("ops@conference.x/jabmon-2"), "{text}");
        let refused = presence(
            "ops@conference.x/jabmon-2",
            PresenceType::Error,
            vec![stanza_error(DefinedCondition::NotAuthorized, None).into()],
        );
        assert!(r.on_presence(&refused, 10.0).unwrap().presences.is_empty());
        assert!(r.tick(14.0).is_empty(), "waits 5 s");
        let again = r.tick(15.0);
        let text = String::from(&Element::from(again[0].clone()));
        assert!(
            text.contains("ops@conference.x/jabmon'"),
            "back to the configured nick: {text}"
        );
        r.on_presence(&refused, 15.0);
        assert!(r.tick(24.0).is_empty(), "then 10 s");
        assert_eq!(r.tick(25.0).len(), 1);
    }

    #[test]
    fn kicked_or_destroyed_rejoins_and_a_created_room_is_left() {
        let mut r = rooms();
        r.on_online();
        let joined = presence(
            "ops@conference.x/jabmon",
            PresenceType::None,
            vec![muc_user(&[110], None)],
        );
        r.on_presence(&joined, 0.0);
        let kicked = presence(
            "ops@conference.x/jabmon",
            PresenceType::Unavailable,
            vec![muc_user(&[110, 307], None)],
        );
        r.on_presence(&kicked, 1.0);
        assert!(!r.joined(&room()));
        assert!(r.send_or_hold(&room(), alert()).is_none());
        assert_eq!(r.tick(6.0).len(), 1, "rejoined 5 s later");
        let created = presence(
            "ops@conference.x/jabmon",
            PresenceType::None,
            vec![muc_user(&[110, 201], None)],
        );
        let out = r.on_presence(&created, 6.5).unwrap();
        assert_eq!(out.presences.len(), 1, "left at once");
        assert_eq!(out.presences[0].type_, PresenceType::Unavailable);
        assert!(out.messages.is_empty() && !r.joined(&room()));
        assert_eq!(r.tick(16.5).len(), 1, "and tried again");
        r.on_presence(&joined, 17.0);
        let destroy: Element =
            "<x xmlns='http://jabber.org/protocol/muc#user'><destroy/><status code='110'/></x>"
                .parse()
                .unwrap();
        r.on_presence(
            &presence(
                "ops@conference.x/jabmon",
                PresenceType::Unavailable,
                vec![destroy],
            ),
            18.0,
        );
        assert!(!r.joined(&room()));
        assert_eq!(
            r.tick(23.0).len(),
            1,
            "joins again once the room may be back"
        );
        assert_eq!(r.on_online().len(), 1, "a new stream joins at once");
    }

    #[test]
    fn messages_are_told_apart_and_occupants_known_by_real_jid() {
        let mut r = rooms();
        r.on_online();
        r.on_presence(
            &presence(
                "ops@conference.x/jabmon",
                PresenceType::None,
                vec![muc_user(&[110], None)],
            ),
            0.0,
        );
        r.on_presence(
            &presence(
                "ops@conference.x/alice",
                PresenceType::None,
                vec![muc_user(&[], Some("alice@x/phone"))],
            ),
            0.0,
        );
        let mut from_alice = Message::groupchat(None);
        from_alice.from = Some(Jid::new("ops@conference.x/alice").unwrap());
        assert_eq!(
            r.classify(&from_alice),
            Some(FromRoom::Occupant(Occupant {
                room: room(),
                nick: "alice".into(),
                real: Some(BareJid::new("alice@x").unwrap()),
            }))
        );
        let mut from_bob = from_alice.clone();
        from_bob.from = Some(Jid::new("ops@conference.x/bob").unwrap());
        assert!(matches!(
            r.classify(&from_bob),
            Some(FromRoom::Occupant(Occupant { real: None, .. }))
        ));
        let mut own = Message::groupchat(None);
        own.from = Some(Jid::new("ops@conference.x/jabmon").unwrap());
        own.id = Some(xmpp_parsers::message::Id("a1".into()));
        own.payloads.push(
            "<stanza-id xmlns='urn:xmpp:sid:0' id='room-9' by='ops@conference.x'/>"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            r.classify(&own),
            Some(FromRoom::Reflection {
                id: Some("a1".into()),
                stanza_id: Some("room-9".into())
            })
        );
        let mut old = from_alice.clone();
        old.payloads.push(
            "<delay xmlns='urn:xmpp:delay' stamp='2026-01-01T00:00:00Z'/>"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            r.classify(&old),
            Some(FromRoom::Ignored),
            "history is not a command"
        );
        r.on_presence(
            &presence("ops@conference.x/alice", PresenceType::Unavailable, vec![]),
            1.0,
        );
        assert!(matches!(
            r.classify(&from_alice),
            Some(FromRoom::Occupant(Occupant { real: None, .. }))
        ));
    }

    #[test]
    fn validation_lists_every_problem_and_adds_routed_rooms() {
        let bad = [
            RoomSection {
                jid: "conference.x".into(),
                nick: None,
                password: None,
            },
            RoomSection {
                jid: ROOM.into(),
                nick: Some(String::new()),
                password: Some(String::new()),
            },
            RoomSection {
                jid: ROOM.into(),
                nick: None,
                password: None,
            },
        ];
        let problems = validate_rooms(&bad, &["not a jid@".into()]).unwrap_err();
        assert_eq!(problems.len(), 5, "{problems:?}");
        let ok = validate_rooms(&[], &["team@conference.x".into()]).unwrap();
        assert_eq!(ok[0].nick, DEFAULT_NICK);
        let shown = format!("{:?}", rooms());
        assert!(
            !shown.contains("s3cret"),
            "passwords are never shown: {shown}"
        );
    }
}
