//! Who is online and who is a collector (pure): users' and collectors' available resources,
//! the XEP-0115 caps cache that tells a collector from any other client of an allowed
//! account, and the rule for a bare-JID unavailable presence.

use std::collections::{HashMap, HashSet, VecDeque};

use jabmon_shared::{caps, ns};
use xmpp_parsers::caps::Caps;
use xmpp_parsers::disco::DiscoInfoResult;
use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::presence::{Presence, Show};

use crate::collectors::Seen;

/// Caps lookups in flight at once. Each collector's caps `ver` is its own (the host form
/// differs per host), so a fleet coming online asks one disco#info per collector: the rest wait
/// in a queue, sent as answers come back.
pub const MAX_CAPS_IN_FLIGHT: usize = 32;

/// The status text a collector announces while it starts.
const STARTING_STATUS: &str = "Starting up";

/// What an available presence of a collector account calls for.
#[derive(Debug, Clone, PartialEq)]
pub enum CollectorCheck {
    /// It is a collector: record what the presence said.
    Seen(FullJid, Seen),
    /// Unknown caps: ask the entity's disco#info at `node`, then call [`Roster::caps_answer`].
    Ask {
        to: FullJid,
        node: String,
        ver: String,
    },
    /// Not a collector, or an answer for its caps is already awaited.
    Nothing,
}

/// What a disco#info answer to a caps lookup settled.
#[derive(Debug, Clone, PartialEq)]
pub struct CapsAnswer {
    /// Whether the entity publishes stats (has the `urn:jabmon:stats:0` feature).
    pub is_collector: bool,
    /// Presences that waited for this answer; to record when `is_collector`.
    pub waiting: Vec<(FullJid, Seen)>,
    /// Queued lookups ([`CollectorCheck::Ask`]) to send now that one is done.
    pub next: Vec<CollectorCheck>,
}

/// Available resources and the caps cache.
#[derive(Debug, Default)]
pub struct Roster {
    /// XEP-0115 ver → whether that entity is a collector (only verified hashes).
    caps_cache: HashMap<String, bool>,
    /// Presences waiting for a caps lookup, by ver.
    caps_waiting: HashMap<String, Vec<(FullJid, Seen)>>,
    collectors: HashMap<BareJid, HashSet<String>>,
    users: HashMap<BareJid, HashSet<String>>,
    /// Caps lookups sent and not yet answered.
    in_flight: usize,
    /// Lookups waiting for a free slot.
    queued: VecDeque<CollectorCheck>,
}

/// What an available presence says about a collector.
pub fn seen(p: &Presence) -> Seen {
    let status = p.statuses.values().next().map_or("", String::as_str);
    Seen::Available {
        away: matches!(p.show, Some(Show::Away) | Some(Show::Xa)),
        dnd: p.show == Some(Show::Dnd),
        starting: status == STARTING_STATUS,
    }
}

/// What an unavailable presence says about a collector: planned when its status is the
/// goodbye's `Stopping`.
pub fn gone(p: &Presence) -> Seen {
    let status = p.statuses.values().next().map_or("", String::as_str);
    Seen::Unavailable {
        planned: status == jabmon_shared::presence::GOODBYE_STATUS,
    }
}

/// The host facts of a collector's disco#info: its `urn:jabmon:host:0` form, without
/// `FORM_TYPE`.
pub fn host_facts(info: &DiscoInfoResult) -> Vec<(String, String)> {
    info.extensions
        .iter()
        .filter(|f| f.form_type() == Some(ns::HOST))
        .flat_map(|f| &f.fields)
        .filter_map(|f| Some((f.var.clone()?, f.values.first()?.clone())))
        .filter(|(k, _)| k != "FORM_TYPE")
        .collect()
}

fn ver_of(c: &Caps) -> String {
    xmpp_parsers::hashes::Hash::new(c.hash.clone(), c.ver.clone()).to_base64()
}

impl Roster {
    /// A user's resource came online (or sent a query).
    pub fn user_available(&mut self, user: &BareJid, resource: Option<&str>) {
        if let Some(r) = resource {
            self.users
                .entry(user.clone())
                .or_default()
                .insert(r.to_string());
        }
    }

    /// A user's resource went away; returns whether that was the user's last known one.
    pub fn user_unavailable(&mut self, user: &BareJid, resource: Option<&str>) -> bool {
        let (Some(r), Some(set)) = (resource, self.users.get_mut(user)) else {
            return false;
        };
        set.remove(r);
        set.is_empty()
    }

    /// An available presence from an allowed collector account: a collector when its caps
    /// are known to be one, or — without caps — when the account is already `known`.
    pub fn collector_available(
        &mut self,
        from: FullJid,
        seen: Seen,
        caps: Option<&Caps>,
        known: bool,
    ) -> CollectorCheck {
        let Some(c) = caps else {
            return match known {
                true => CollectorCheck::Seen(from, seen),
                false => CollectorCheck::Nothing,
            };
        };
        let ver = ver_of(c);
        match self.caps_cache.get(&ver) {
            Some(true) => CollectorCheck::Seen(from, seen),
            Some(false) => CollectorCheck::Nothing,
            None => {
                let waiting = self.caps_waiting.entry(ver.clone()).or_default();
                let first = waiting.is_empty();
                waiting.retain(|(j, _)| j != &from);
                waiting.push((from.clone(), seen));
                if !first {
                    return CollectorCheck::Nothing;
                }
                let ask = CollectorCheck::Ask {
                    to: from,
                    node: format!("{}#{ver}", c.node),
                    ver,
                };
                if self.in_flight >= MAX_CAPS_IN_FLIGHT {
                    self.queued.push_back(ask);
                    return CollectorCheck::Nothing;
                }
                self.in_flight += 1;
                ask
            }
        }
    }

    /// The disco#info answer for `ver` (`None` when the lookup failed). The answer is cached
    /// only when its hash checks out (XEP-0115 §5.4).
    pub fn caps_answer(&mut self, ver: &str, info: Option<&DiscoInfoResult>) -> CapsAnswer {
        let is_collector = info.is_some_and(|i| i.features.contains(ns::STATS));
        if let Some(info) = info {
            let mut plain = info.clone();
            plain.node = None;
            if caps::ver(&plain) == ver {
                self.caps_cache.insert(ver.to_string(), is_collector);
            }
        }
        self.in_flight = self.in_flight.saturating_sub(1);
        let mut next = Vec::new();
        while self.in_flight < MAX_CAPS_IN_FLIGHT {
            let Some(ask) = self.queued.pop_front() else {
                break;
            };
            self.in_flight += 1;
            next.push(ask);
        }
        CapsAnswer {
            is_collector,
            waiting: self.caps_waiting.remove(ver).unwrap_or_default(),
            next,
        }
    }

    /// Records a collector's available resource.
    pub fn collector_seen(&mut self, full: &FullJid) {
        self.collectors
            .entry(full.to_bare())
            .or_default()
            .insert(full.resource().to_string());
    }

    /// An unavailable presence from a known collector; returns whether it is now gone (no
    /// available resource left). A bare-JID unavailable (as servers send on subscription
    /// changes) means nothing while a resource is known to be available.
    pub fn collector_unavailable(&mut self, from: &Jid) -> bool {
        let resources = self.collectors.entry(from.to_bare()).or_default();
        match from.resource() {
            Some(r) => {
                resources.remove(r.as_str());
            }
            None if !resources.is_empty() => return false,
            None => {}
        }
        resources.is_empty()
    }

    /// The available full JIDs of a collector, in resource order.
    pub fn collector_resources(&self, jid: &BareJid) -> Vec<FullJid> {
        let mut resources: Vec<&String> = self.collectors.get(jid).into_iter().flatten().collect();
        resources.sort();
        resources
            .into_iter()
            .filter_map(|r| FullJid::new(&format!("{jid}/{r}")).ok())
            .collect()
    }

    /// Caps `ver`s waiting for a disco#info answer (queued or in flight).
    pub fn caps_pending(&self) -> usize {
        self.caps_waiting.len()
    }

    /// Whether a collector has an available resource.
    pub fn collector_online(&self, jid: &BareJid) -> bool {
        self.collectors.get(jid).is_some_and(|r| !r.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_parsers::disco::Identity;

    const UP: Seen = Seen::Available {
        away: false,
        dnd: false,
        starting: false,
    };

    fn full(s: &str) -> FullJid {
        FullJid::new(s).unwrap()
    }

    fn info(features: &[&str]) -> DiscoInfoResult {
        DiscoInfoResult {
            node: None,
            identities: vec![Identity::new("client", "bot", "en", "x")],
            features: features.iter().map(|s| s.to_string()).collect(),
            extensions: vec![],
        }
    }

    fn caps_of(i: &DiscoInfoResult) -> Caps {
        caps::caps(ns::CAPS_NODE, i)
    }

    #[test]
    fn unknown_caps_are_asked_once_and_verified_answers_cached() {
        let mut r = Roster::default();
        let collector = info(&[ns::STATS]);
        let c = caps_of(&collector);
        let ver = caps::ver(&collector);
        let ask = r.collector_available(full("web1@x/a"), UP, Some(&c), false);
        assert_eq!(
            ask,
            CollectorCheck::Ask {
                to: full("web1@x/a"),
                node: format!("{}#{ver}", ns::CAPS_NODE),
                ver: ver.clone()
            }
        );
        let again = r.collector_available(full("web2@x/b"), UP, Some(&c), false);
        assert_eq!(again, CollectorCheck::Nothing, "one lookup per ver");
        let answer = r.caps_answer(&ver, Some(&collector));
        assert!(answer.is_collector);
        assert_eq!(answer.waiting.len(), 2);
        assert_eq!(
            r.collector_available(full("web3@x/c"), UP, Some(&c), false),
            CollectorCheck::Seen(full("web3@x/c"), UP),
            "cached"
        );
    }

    #[test]
    fn a_caps_storm_is_paced_and_every_lookup_is_sent_once() {
        let mut r = Roster::default();
        let n = MAX_CAPS_IN_FLIGHT * 3 + 5;
        let infos: Vec<DiscoInfoResult> = (0..n)
            .map(|i| {
                let mut inf = info(&[ns::STATS]);
                inf.identities[0].name = Some(format!("collector {i}"));
                inf
            })
            .collect();
        let mut sent = Vec::new();
        for (i, inf) in infos.iter().enumerate() {
            let c = caps_of(inf);
            if let CollectorCheck::Ask { ver, .. } =
                r.collector_available(full(&format!("web{i}@x/a")), UP, Some(&c), false)
            {
                sent.push(ver);
            }
        }
        assert_eq!(sent.len(), MAX_CAPS_IN_FLIGHT, "the rest wait");
        assert_eq!(r.caps_pending(), n);
        let mut answered = 0;
        while let Some(ver) = sent.pop() {
            let inf = infos.iter().find(|i| caps::ver(i) == ver).unwrap();
            let answer = r.caps_answer(&ver, Some(inf));
            assert!(answer.is_collector);
            assert_eq!(answer.waiting.len(), 1);
            answered += 1;
            for next in answer.next {
                let CollectorCheck::Ask { ver, .. } = next else {
                    panic!("only asks are queued");
                };
                sent.push(ver);
            }
            assert!(sent.len() <= MAX_CAPS_IN_FLIGHT);
        }
        assert_eq!(answered, n, "every collector asked exactly once");
        assert_eq!(r.caps_pending(), 0);
    }

    #[test]
    fn a_forged_hash_is_not_cached_and_a_client_is_not_a_collector() {
        let mut r = Roster::default();
        let client = info(&["urn:xmpp:ping"]);
        let c = caps_of(&client);
        let ver = caps::ver(&client);
        r.collector_available(full("web1@x/phone"), UP, Some(&c), true);
        let answer = r.caps_answer(&ver, Some(&client));
        assert!(!answer.is_collector);
        assert_eq!(
            r.collector_available(full("web1@x/phone"), UP, Some(&c), true),
            CollectorCheck::Nothing,
            "cached as not a collector"
        );
        // An answer that does not hash to the ver it was asked for is used once, not cached.
        let forged = "AAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        assert!(
            r.caps_answer(forged, Some(&info(&[ns::STATS])))
                .is_collector
        );
        assert!(!r.caps_cache.contains_key(forged));
        assert!(!r.caps_answer(forged, None).is_collector, "failed lookup");
    }

    #[test]
    fn without_caps_only_a_known_collector_counts() {
        let mut r = Roster::default();
        assert_eq!(
            r.collector_available(full("web1@x/a"), UP, None, false),
            CollectorCheck::Nothing
        );
        assert_eq!(
            r.collector_available(full("web1@x/a"), UP, None, true),
            CollectorCheck::Seen(full("web1@x/a"), UP)
        );
    }

    #[test]
    fn bare_unavailable_is_ignored_while_a_resource_is_available() {
        let mut r = Roster::default();
        let web1 = BareJid::new("web1@x").unwrap();
        r.collector_seen(&full("web1@x/a"));
        r.collector_seen(&full("web1@x/b"));
        assert!(!r.collector_unavailable(&Jid::new("web1@x").unwrap()));
        assert!(!r.collector_unavailable(&Jid::new("web1@x/a").unwrap()));
        assert!(r.collector_online(&web1));
        assert!(r.collector_unavailable(&Jid::new("web1@x/b").unwrap()));
        assert!(!r.collector_online(&web1));
        assert!(
            r.collector_unavailable(&Jid::new("web1@x").unwrap()),
            "a bare unavailable with nothing available: gone"
        );
    }

    #[test]
    fn a_user_is_offline_after_the_last_resource() {
        let mut r = Roster::default();
        let u = BareJid::new("ops@x").unwrap();
        r.user_available(&u, Some("a"));
        r.user_available(&u, Some("b"));
        assert!(!r.user_unavailable(&u, Some("a")));
        assert!(!r.user_unavailable(&u, None), "bare: no resource to remove");
        assert!(r.user_unavailable(&u, Some("b")));
        let never = BareJid::new("new@x").unwrap();
        assert!(!r.user_unavailable(&never, Some("a")), "never seen");
    }

    #[test]
    fn presence_show_and_status_map_to_seen() {
        let mut p = Presence::available();
        assert_eq!(seen(&p), UP);
        p.show = Some(Show::Xa);
        assert!(matches!(seen(&p), Seen::Available { away: true, .. }));
        p.show = Some(Show::Dnd);
        assert!(matches!(seen(&p), Seen::Available { dnd: true, .. }));
        p.show = None;
        p.set_status("", STARTING_STATUS);
        assert!(matches!(seen(&p), Seen::Available { starting: true, .. }));
    }

    #[test]
    fn unavailable_is_planned_only_with_the_goodbye_status() {
        let bye = jabmon_shared::presence::goodbye();
        assert_eq!(gone(&bye), Seen::Unavailable { planned: true });
        let mut other = Presence::unavailable();
        assert_eq!(gone(&other), Seen::Unavailable { planned: false });
        other.set_status("", "Connection reset");
        assert_eq!(gone(&other), Seen::Unavailable { planned: false });
    }

    #[test]
    fn host_facts_come_from_the_host_form_only() {
        use jabmon_shared::forms;
        use xmpp_parsers::data_forms::{DataFormType, FieldType};
        let mut i = info(&[ns::STATS]);
        let f = |var: &str, v: &str| forms::field(var, FieldType::TextSingle, var, vec![v.into()]);
        i.extensions = vec![
            forms::form(DataFormType::Result_, ns::HOST, vec![f("host", "web1")]),
            forms::form(DataFormType::Result_, "urn:other", vec![f("x", "y")]),
        ];
        assert_eq!(host_facts(&i), [("host".to_string(), "web1".to_string())]);
    }
}
