//! Stanzas the session drops — IQ answers from someone who was not asked, and stanzas
//! tokio-xmpp could not parse — counted per kind and sender and logged as one summary line per
//! minute at most, so that a stranger cannot fill the log one line per stanza he sends.
//!
//! WORKAROUND (tokio-xmpp 6.0.0 drops invalid stanzas itself): its stanza stream's worker
//! (src/stanzastream/connected.rs ~l.605) consumes `StreamElementError::InvalidStanza`,
//! logs it through `log` with one WARN line each and never hands it on, so the session sees
//! neither the stanza nor its header (`from`, `id`). [`InvalidStanzaLines`], installed by
//! `logging::init`, is the one place that works around it: it swallows those lines and counts
//! them here by stanza kind and parse error; the sender is not in the line, and an IQ get/set
//! among them cannot be answered with `bad-request`, since its id never leaves the crate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// At most one summary line per this interval.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Distinct (kind, sender) pairs kept per interval; the rest are counted together.
const MAX_KEYS: usize = 32;

/// Longest kind or sender text kept (both may be chosen by a stranger).
const MAX_TEXT: usize = 160;

/// Why a stanza was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// An IQ result or error carrying a pending id, from an entity the request was not sent to.
    UnaskedAnswer,
    /// A stanza tokio-xmpp failed to parse: its element name and the parse error.
    Invalid { stanza: String, error: String },
}

impl Kind {
    fn label(&self) -> String {
        match self {
            Self::UnaskedAnswer => "IQ answer from an entity not asked".into(),
            Self::Invalid { stanza, error } => format!("invalid {stanza} ({error})"),
        }
    }
}

/// The counts of one summary interval. Pure: the clock is an argument.
#[derive(Debug, Default)]
pub struct Tally {
    counts: BTreeMap<(String, String), u64>,
    /// No summary before this instant (`None`: the next one may go out at once).
    quiet_until: Option<Instant>,
}

impl Tally {
    pub const fn new() -> Self {
        Self {
            counts: BTreeMap::new(),
            quiet_until: None,
        }
    }

    /// Counts one dropped stanza.
    pub fn record(&mut self, kind: &Kind, sender: &str) {
        let mut key = (clip(&kind.label()), clip(sender));
        if !self.counts.contains_key(&key) && self.counts.len() >= MAX_KEYS {
            key = ("other".into(), "others".into());
        }
        *self.counts.entry(key).or_default() += 1;
    }

    /// When the next summary is due; `None` when nothing was counted.
    pub fn due(&self, now: Instant) -> Option<Instant> {
        if self.counts.is_empty() {
            return None;
        }
        Some(self.quiet_until.map_or(now, |q| q.max(now)))
    }

    /// The summary line when one is due at `now`, starting a new interval.
    pub fn summary(&mut self, now: Instant) -> Option<String> {
        if self.due(now)? > now {
            return None;
        }
        self.quiet_until = Some(now + SUMMARY_EVERY);
        let mut by_count: Vec<_> = std::mem::take(&mut self.counts).into_iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let total: u64 = by_count.iter().map(|(_, n)| n).sum();
        let mut line = format!("{total} stanza(s) dropped:");
        for (i, ((kind, sender), n)) in by_count.iter().enumerate() {
            let sep = if i == 0 { " " } else { "; " };
            let _ = write!(line, "{sep}{n} × {kind} from {sender}");
        }
        Some(line)
    }
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_TEXT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// The process's tally: sessions and the log layer feed it, every session flushes it.
static TALLY: Mutex<Tally> = Mutex::new(Tally::new());

/// Counts one dropped stanza in the process's tally.
pub fn record(kind: Kind, sender: &str) {
    if let Ok(mut t) = TALLY.lock() {
        t.record(&kind, sender);
    }
}

/// When the process's next summary is due.
pub fn due(now: Instant) -> Option<Instant> {
    TALLY.lock().ok()?.due(now)
}

/// Logs the process's summary if one is due.
pub fn flush(now: Instant) {
    let line = TALLY.lock().ok().and_then(|mut t| t.summary(now));
    if let Some(line) = line {
        tracing::warn!(every = ?SUMMARY_EVERY, "{line}.");
    }
}

/// Reads tokio-xmpp's per-stanza line, `Received invalid stanza: invalid stanza received:
/// <{ns}kind/> (error); discarding silently.`, into (kind, error).
pub fn parse_invalid_stanza_line(message: &str) -> Option<(String, String)> {
    let rest = message.strip_prefix("Received invalid stanza: invalid stanza received: <")?;
    let rest = rest.strip_suffix("; discarding silently.")?;
    let (name, error) = rest.split_once("/> (")?;
    let stanza = name.rsplit_once('}').map_or(name, |(_, local)| local);
    let error = error.strip_suffix(')').unwrap_or(error);
    Some((stanza.to_string(), error.to_string()))
}

/// The tracing layer that turns tokio-xmpp's invalid-stanza lines into counts (see the module
/// documentation): those events are disabled for every layer and recorded in the tally.
#[derive(Debug, Default, Clone, Copy)]
pub struct InvalidStanzaLines;

/// The fields tracing-log gives a bridged `log` record.
#[derive(Default)]
struct LogRecord {
    target: String,
    message: String,
}

impl Visit for LogRecord {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "log.target" {
            self.target = value.to_string();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

/// Where tokio-xmpp logs a dropped invalid stanza.
const INVALID_STANZA_TARGET: &str = "tokio_xmpp::stanzastream::connected";

impl<S: Subscriber> Layer<S> for InvalidStanzaLines {
    fn event_enabled(&self, event: &Event<'_>, _cx: Context<'_, S>) -> bool {
        if event.metadata().level() != &tracing::Level::WARN {
            return true;
        }
        let mut fields = LogRecord::default();
        event.record(&mut fields);
        if fields.target != INVALID_STANZA_TARGET {
            return true;
        }
        match parse_invalid_stanza_line(&fields.message) {
            Some((stanza, error)) => {
                record(Kind::Invalid { stanza, error }, "(sender unknown)");
                false
            }
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_summary_at_once_then_one_per_interval() {
        let t0 = Instant::now();
        let mut t = Tally::new();
        assert_eq!(t.due(t0), None);
        assert_eq!(t.summary(t0), None);
        t.record(&Kind::UnaskedAnswer, "eve@x/y");
        assert_eq!(
            t.summary(t0).as_deref(),
            Some("1 stanza(s) dropped: 1 × IQ answer from an entity not asked from eve@x/y")
        );
        for _ in 0..3 {
            t.record(&Kind::UnaskedAnswer, "eve@x/y");
        }
        t.record(&Kind::UnaskedAnswer, "mallory@x/y");
        let later = t0 + Duration::from_secs(10);
        assert_eq!(t.due(later), Some(t0 + SUMMARY_EVERY));
        assert_eq!(t.summary(later), None);
        assert_eq!(
            t.summary(t0 + SUMMARY_EVERY).as_deref(),
            Some(
                "4 stanza(s) dropped: 3 × IQ answer from an entity not asked from eve@x/y; \
                 1 × IQ answer from an entity not asked from mallory@x/y"
            )
        );
        assert_eq!(t.due(t0 + SUMMARY_EVERY * 5), None);
    }

    #[test]
    fn keys_and_texts_are_bounded() {
        let mut t = Tally::new();
        for i in 0..1000 {
            t.record(&Kind::UnaskedAnswer, &format!("s{i}@x/{}", "r".repeat(500)));
        }
        assert_eq!(t.counts.len(), MAX_KEYS + 1);
        assert_eq!(
            t.counts[&("other".into(), "others".into())],
            1000 - MAX_KEYS as u64
        );
        assert!(t
            .counts
            .keys()
            .all(|(_, s)| s.chars().count() <= MAX_TEXT + 1));
    }

    #[test]
    fn reads_the_invalid_stanza_line() {
        let line = "Received invalid stanza: invalid stanza received: <{jabber:client}presence/> \
                    (invalid digit found in string); discarding silently.";
        assert_eq!(
            parse_invalid_stanza_line(line),
            Some(("presence".into(), "invalid digit found in string".into()))
        );
        assert_eq!(
            parse_invalid_stanza_line("Received unsupported stream element"),
            None
        );
    }
}
