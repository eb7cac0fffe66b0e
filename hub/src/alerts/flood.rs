//! Flood control (docs/alerts.md, "No floods"): what a rule has to say within the group wait
//! goes out as one message, and each user or room has a token bucket.

use std::collections::HashMap;

use super::book::Target;
use super::rule::Route;

/// What a batch says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Firing,
    Repeat,
    Resolved,
    Flapping,
    Notice,
}

/// One alert's part of a batch.
#[derive(Debug)]
pub(super) struct Item {
    /// The alert told (none for a notice).
    pub(super) id: Option<u32>,
    pub(super) icon: &'static str,
    /// The whole message when it goes alone.
    pub(super) line: String,
    /// Its part in a grouped message: `web1 cpu idle 3.2 %`.
    pub(super) short: String,
}

/// What one rule (or collector source) has to say of one kind, due at `due`.
#[derive(Debug)]
pub(super) struct Batch {
    pub(super) source: String,
    pub(super) kind: Kind,
    pub(super) due: f64,
    pub(super) route: Route,
    pub(super) items: Vec<Item>,
}

impl Batch {
    /// The message: the item's own line when alone, else one grouped line naming the first
    /// `names` and counting the rest.
    pub(super) fn text(&self, names: usize) -> String {
        if let [only] = &self.items[..] {
            return only.line.clone();
        }
        let n = self.items.len();
        let shown = names.clamp(1, n);
        let first: Vec<&str> = self.items[..shown]
            .iter()
            .map(|i| i.short.as_str())
            .collect();
        let list = if n > shown {
            format!("{} and {} more", first.join(", "), n - shown)
        } else {
            first.join(", ")
        };
        let what = match self.kind {
            Kind::Firing => "firing",
            Kind::Repeat => "still firing",
            Kind::Resolved => "resolved",
            Kind::Flapping => "flapping",
            Kind::Notice => "notices",
        };
        let icon = self.items[0].icon;
        let mut text = format!("{icon} {n} {what} ({}): {list}", self.source);
        let ids: Vec<u32> = self.items.iter().filter_map(|i| i.id).collect();
        if self.kind != Kind::Resolved && !ids.is_empty() {
            text.push(' ');
            text.push_str(&id_span(&ids));
        }
        text
    }
}

/// `#12–#61` for a run of ids, else the first few: `#3, #7, #9 …`.
pub(super) fn id_span(ids: &[u32]) -> String {
    match (ids.iter().min(), ids.iter().max()) {
        (Some(&lo), Some(&hi)) if lo == hi => format!("#{lo}"),
        (Some(&lo), Some(&hi)) if (hi - lo) as usize + 1 == ids.len() => format!("#{lo}–#{hi}"),
        (Some(_), Some(_)) => {
            let mut s: Vec<String> = ids.iter().take(5).map(|i| format!("#{i}")).collect();
            if ids.len() > 5 {
                s.push("…".to_owned());
            }
            s.join(", ")
        }
        _ => String::new(),
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: f64,
    held: u32,
}

/// A token bucket per target: `per_minute` messages a minute, bursts of `burst`; refused
/// messages are counted to be reported once the bucket refills.
#[derive(Debug)]
pub(super) struct RateLimit {
    per_minute: u32,
    burst: u32,
    buckets: HashMap<Target, Bucket>,
}

impl RateLimit {
    pub(super) fn new(per_minute: u32, burst: u32) -> Self {
        RateLimit {
            per_minute: per_minute.max(1),
            burst: burst.max(1),
            buckets: HashMap::new(),
        }
    }

    pub(super) fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// Takes a token for one message to `to` at `now`; false (and counted as held) when the
    /// bucket is empty.
    pub(super) fn take(&mut self, to: &Target, now: f64) -> bool {
        let ok = self.refill_and_take(to, now);
        if !ok {
            self.buckets.get_mut(to).expect("created by refill").held += 1;
        }
        ok
    }

    /// Targets that had messages held and have a token again, with how many were held: the
    /// caller tells them once (that report takes the token).
    pub(super) fn release_held(&mut self, now: f64) -> Vec<(Target, u32)> {
        let mut held: Vec<Target> = self
            .buckets
            .iter()
            .filter(|(_, b)| b.held > 0)
            .map(|(t, _)| t.clone())
            .collect();
        held.sort();
        let mut released = Vec::new();
        for to in held {
            if self.refill_and_take(&to, now) {
                let n = std::mem::take(&mut self.buckets.get_mut(&to).expect("listed").held);
                released.push((to, n));
            }
        }
        released
    }

    fn refill_and_take(&mut self, to: &Target, now: f64) -> bool {
        let rate = f64::from(self.per_minute) / 60.0;
        let burst = f64::from(self.burst);
        let b = self.buckets.entry(to.clone()).or_insert(Bucket {
            tokens: burst,
            last: now,
            held: 0,
        });
        b.tokens = (b.tokens + (now - b.last).max(0.0) * rate).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: u32) -> Item {
        Item {
            id: Some(id),
            icon: "🔥",
            line: format!("line {id}"),
            short: format!("web{id}"),
        }
    }

    fn batch(kind: Kind, ids: &[u32]) -> Batch {
        Batch {
            source: "cpu-high".into(),
            kind,
            due: 0.0,
            route: Route::default(),
            items: ids.iter().map(|i| item(*i)).collect(),
        }
    }

    #[test]
    fn a_batch_of_one_is_its_line_and_more_are_grouped() {
        assert_eq!(batch(Kind::Firing, &[7]).text(3), "line 7");
        assert_eq!(
            batch(Kind::Firing, &[1, 2]).text(3),
            "🔥 2 firing (cpu-high): web1, web2 #1–#2"
        );
        assert_eq!(
            batch(Kind::Repeat, &[1, 2, 3, 4, 5]).text(2),
            "🔥 5 still firing (cpu-high): web1, web2 and 3 more #1–#5"
        );
        assert_eq!(
            batch(Kind::Resolved, &[4, 9]).text(3),
            "🔥 2 resolved (cpu-high): web4, web9"
        );
    }

    #[test]
    fn id_spans() {
        assert_eq!(id_span(&[]), "");
        assert_eq!(id_span(&[3]), "#3");
        assert_eq!(id_span(&[3, 4, 5]), "#3–#5");
        assert_eq!(id_span(&[3, 7, 9]), "#3, #7, #9");
        assert_eq!(id_span(&[1, 3, 5, 7, 9, 11]), "#1, #3, #5, #7, #9, …");
    }

    #[test]
    fn buckets_are_per_target_and_report_what_they_held() {
        let room = Target::Room("r@c".into());
        let user = Target::User("u@c".into());
        let mut limit = RateLimit::new(6, 2);
        assert!(limit.take(&room, 0.0));
        assert!(limit.take(&room, 0.0));
        assert!(!limit.take(&room, 0.0));
        assert!(!limit.take(&room, 5.0));
        assert!(limit.take(&user, 5.0), "another target has its own bucket");
        assert_eq!(limit.release_held(9.9), []);
        // 6 a minute: one token per 10 s.
        assert_eq!(limit.release_held(10.0), [(room.clone(), 2)]);
        assert_eq!(limit.release_held(100.0), []);
        assert_eq!(limit.per_minute(), 6);
    }
}
