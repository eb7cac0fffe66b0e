//! PEP notifications from collectors → metric events for the query engine (pure).
//!
//! A stats item is fed only when it is fresh (see [`crate::collectors`]); a fresh item from a
//! collector believed dead that has an available resource revives it (the unavailable
//! presence that killed it was a stale one). An event item is fed once: servers notify the
//! bare and the full JID alike and replay items to new subscribers, so item ids already seen
//! are skipped, in a bounded set that forgets the oldest first.

use std::collections::{HashSet, VecDeque};

use jabmon_shared::metric;
use jabmon_shared::ns;
use jabmon_shared::payload::{Event, Stats};
use xmpp_parsers::jid::BareJid;
use xmpp_parsers::pubsub::event::{Event as PubSubEvent, Payload};

use crate::collectors::{Change, Registry, Seen, STALE_AFTER};
use crate::roster::Roster;

/// Event item ids remembered per hub, to skip duplicates and replays.
pub const SEEN_EVENTS: usize = 10_000;

/// One metric event: what [`crate::query::Engine::feed`] takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Feed {
    pub name: String,
    pub timestamp: f64,
    pub value: f64,
}

/// What one notification produced.
#[derive(Debug, Default, PartialEq)]
pub struct Ingested {
    /// Status changes (revived collectors), to handle before the feeds.
    pub changes: Vec<Change>,
    pub feeds: Vec<Feed>,
}

/// A bounded set that forgets its oldest entry when full.
#[derive(Debug)]
pub struct RecentSet<T> {
    cap: usize,
    order: VecDeque<T>,
    set: HashSet<T>,
}

impl<T: Clone + Eq + std::hash::Hash> RecentSet<T> {
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            order: VecDeque::new(),
            set: HashSet::new(),
        }
    }

    /// Remembers `item`; returns whether it was new.
    pub fn insert(&mut self, item: T) -> bool {
        if self.set.contains(&item) {
            return false;
        }
        if self.order.len() == self.cap {
            if let Some(oldest) = self.order.pop_front() {
                self.set.remove(&oldest);
            }
        }
        self.order.push_back(item.clone());
        self.set.insert(item);
        true
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// The ingest state: event ids seen.
#[derive(Debug)]
pub struct Ingest {
    seen_events: RecentSet<(BareJid, String)>,
}

impl Default for Ingest {
    fn default() -> Self {
        Self {
            seen_events: RecentSet::new(SEEN_EVENTS),
        }
    }
}

impl Ingest {
    /// A PEP notification from `from` (the server-stamped bare JID of an allowed or known
    /// collector).
    pub fn notification(
        &mut self,
        registry: &mut Registry,
        roster: &Roster,
        from: &BareJid,
        event: PubSubEvent,
        now: f64,
    ) -> Ingested {
        let mut out = Ingested::default();
        let Payload::Items {
            node, published, ..
        } = event.payload
        else {
            return out;
        };
        for item in published {
            let Some(payload) = item.payload else {
                continue;
            };
            if node.0 == ns::STATS {
                if let Ok(stats) = Stats::try_from(payload) {
                    stats_item(registry, roster, from, stats, now, &mut out);
                }
            } else if node.0 == ns::EVENTS {
                if let Ok(ev) = Event::try_from(payload) {
                    let id = item.id.map(|i| i.0).unwrap_or_default();
                    out.feeds
                        .extend(self.event_item(registry, from, id, ev, now));
                }
            }
        }
        out
    }

    fn event_item(
        &mut self,
        registry: &Registry,
        from: &BareJid,
        id: String,
        ev: Event,
        now: f64,
    ) -> Option<Feed> {
        if now - ev.timestamp > STALE_AFTER || !self.seen_events.insert((from.clone(), id)) {
            return None;
        }
        let host = registry
            .get(from)
            .map(|c| c.host.clone())
            .unwrap_or_else(|| metric::host_label(&ev.host));
        Some(Feed {
            name: format!("{host}.{}.{}", metric::EVENT_PREFIX, ev.kind),
            timestamp: ev.timestamp,
            value: 1.0,
        })
    }
}

fn stats_item(
    registry: &mut Registry,
    roster: &Roster,
    from: &BareJid,
    stats: Stats,
    now: f64,
    out: &mut Ingested,
) {
    if !registry.record_stats(from, &stats.host, stats.timestamp, now) {
        return; // a replay or a duplicate
    }
    let host = registry
        .get(from)
        .map(|c| c.host.clone())
        .unwrap_or_default();
    out.feeds.extend(stats.stats.iter().map(|s| Feed {
        name: format!("{host}.{}", s.name),
        timestamp: stats.timestamp,
        value: s.value,
    }));
    let dead = registry.get(from).is_some_and(|c| !c.status.is_alive());
    if dead && roster.collector_online(from) {
        let up = Seen::Available {
            away: false,
            dnd: false,
            starting: false,
        };
        out.changes.extend(registry.presence(from, up, now));
    }
}

/// The metric events of a status change: `HOST.jabmon.status.alive` and `.busy`.
pub fn status_feeds(change: &Change, now: f64) -> [Feed; 2] {
    let flag = |on: bool| if on { 1.0 } else { 0.0 };
    [
        Feed {
            name: format!("{}.{}", change.host, metric::STATUS_ALIVE),
            timestamp: now,
            value: flag(change.to.is_alive()),
        },
        Feed {
            name: format!("{}.{}", change.host, metric::STATUS_BUSY),
            timestamp: now,
            value: flag(change.to.is_busy()),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::CollectorState;
    use minidom::Element;
    use xmpp_parsers::jid::FullJid;

    fn web1() -> BareJid {
        BareJid::new("web1@x").unwrap()
    }

    fn notification(node: &str, items: &[(&str, String)]) -> PubSubEvent {
        let items: String = items
            .iter()
            .map(|(id, xml)| format!("<item id='{id}'>{xml}</item>"))
            .collect();
        let xml = format!(
            "<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='{node}'>{items}</items></event>"
        );
        PubSubEvent::try_from(xml.parse::<Element>().unwrap()).unwrap()
    }

    fn stats(t: f64) -> PubSubEvent {
        let xml = format!("<stats xmlns='urn:jabmon:stats:0' host='web1.example' timestamp='{t}'><stat name='cpu.cpu.idle' value='85'/></stats>");
        notification(ns::STATS, &[("current", xml)])
    }

    fn event(id: &str, t: f64) -> PubSubEvent {
        let xml = format!(
            "<event xmlns='urn:jabmon:events:0' host='web1' timestamp='{t}' kind='rebooted'/>"
        );
        notification(ns::EVENTS, &[(id, xml)])
    }

    #[test]
    fn fresh_stats_are_fed_with_the_host_label_and_replays_are_not() {
        let (mut reg, roster, mut ingest) =
            (Registry::default(), Roster::default(), Ingest::default());
        let out = ingest.notification(&mut reg, &roster, &web1(), stats(100.0), 100.0);
        assert_eq!(
            out.feeds,
            [Feed {
                name: "web1.cpu.cpu.idle".into(),
                timestamp: 100.0,
                value: 85.0
            }]
        );
        let again = ingest.notification(&mut reg, &roster, &web1(), stats(100.0), 101.0);
        assert_eq!(again, Ingested::default(), "the same item twice");
        let old = ingest.notification(&mut reg, &roster, &web1(), stats(10.0), 101.0);
        assert_eq!(old, Ingested::default(), "older than a minute");
    }

    #[test]
    fn fresh_stats_revive_a_dead_collector_only_with_an_available_resource() {
        let (mut reg, mut roster, mut ingest) =
            (Registry::default(), Roster::default(), Ingest::default());
        reg.presence(&web1(), Seen::Unavailable { planned: false }, 0.0);
        let out = ingest.notification(&mut reg, &roster, &web1(), stats(1.0), 1.0);
        assert!(out.changes.is_empty(), "no resource: stays dead");
        roster.collector_seen(&FullJid::new("web1@x/a").unwrap());
        let out = ingest.notification(&mut reg, &roster, &web1(), stats(2.0), 2.0);
        assert_eq!(out.changes.len(), 1);
        assert_eq!(
            (out.changes[0].from, out.changes[0].to),
            (CollectorState::Dead, CollectorState::Alive)
        );
        let out = ingest.notification(&mut reg, &roster, &web1(), stats(3.0), 3.0);
        assert!(out.changes.is_empty(), "alive already");
    }

    #[test]
    fn events_are_fed_once_per_item_id_and_stale_ones_never() {
        let (mut reg, roster, mut ingest) =
            (Registry::default(), Roster::default(), Ingest::default());
        let out = ingest.notification(&mut reg, &roster, &web1(), event("e1", 100.0), 100.0);
        assert_eq!(
            out.feeds,
            [Feed {
                name: "web1.jabmon.event.rebooted".into(),
                timestamp: 100.0,
                value: 1.0
            }]
        );
        assert!(ingest
            .notification(&mut reg, &roster, &web1(), event("e1", 100.0), 100.0)
            .feeds
            .is_empty());
        assert_eq!(
            ingest
                .notification(&mut reg, &roster, &web1(), event("e2", 100.0), 100.0)
                .feeds
                .len(),
            1
        );
        assert!(ingest
            .notification(&mut reg, &roster, &web1(), event("e3", 10.0), 100.0)
            .feeds
            .is_empty());
        let web2 = BareJid::new("web2@x").unwrap();
        assert_eq!(
            ingest
                .notification(&mut reg, &roster, &web2, event("e1", 100.0), 100.0)
                .feeds
                .len(),
            1,
            "ids are per collector"
        );
    }

    #[test]
    fn the_recent_set_forgets_the_oldest_first() {
        let mut s = RecentSet::new(3);
        assert!(s.insert(1) && s.insert(2) && s.insert(3));
        assert!(!s.insert(1));
        assert!(s.insert(4), "evicts 1");
        assert_eq!(s.len(), 3);
        assert!(
            !s.insert(2) && !s.insert(3) && !s.insert(4),
            "the newest are kept"
        );
        assert!(s.insert(1), "1 was forgotten");
    }

    #[test]
    fn status_changes_become_alive_and_busy_metrics() {
        let change = Change {
            jid: web1(),
            host: "web1".into(),
            from: CollectorState::Alive,
            to: CollectorState::Critical,
        };
        let [alive, busy] = status_feeds(&change, 7.0);
        assert_eq!(
            (alive.name.as_str(), alive.value),
            ("web1.jabmon.status.alive", 1.0)
        );
        assert_eq!(
            (busy.name.as_str(), busy.value, busy.timestamp),
            ("web1.jabmon.status.busy", 1.0, 7.0)
        );
    }
}
