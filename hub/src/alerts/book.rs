//! The alert book (sans-IO): every open alert, its series state, silences, acks, history, and
//! the flood controls between them and the chat. The bot feeds it metric events, collector
//! signals, chat commands, replies and reactions, each with the hub's clock, and performs the
//! [`Action`]s it returns (docs/alerts.md).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;

use jabmon_shared::payload::Severity;
use serde::{Deserialize, Serialize};

use super::chat::{self, ChatCommand};
use super::collector::Signal;
use super::flood::{id_span, Batch, Item, Kind, RateLimit};
use super::format::{self, Fields, Template};
use super::rule::{Route, Rule, RuleSpec, Settings};
use super::series::{Phase, Series, Step};
use super::silence::Silence;
use crate::query::{Engine, Limits, Output, Saved};

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Target {
    /// 1:1 chat with a bare JID.
    User(String),
    /// Groupchat to a MUC room's bare JID.
    Room(String),
}

/// One message to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub to: Target,
    /// One plain-text line (or a few, for listings).
    pub body: String,
    /// The stanza id to send it with: replies (XEP-0461) and reactions (XEP-0444) to it are
    /// mapped back to its alerts.
    pub id: String,
}

/// What the bot must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Send(Outgoing),
    /// Persisted state changed: save [`Alerts::save`] with the registrations.
    Save,
}

/// Who sent a command, reply or reaction, as the bot established it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sender {
    /// The bare JID, or the room nickname when the room hides real JIDs.
    pub who: String,
    /// Where answers go: the user, or the room the command came from.
    pub reply_to: Target,
    /// Whether the hub's ACL lets this sender ack, silence and define rules.
    pub allowed: bool,
    /// Queries the sender holds in the hub's query engine: they and the sender's chat rules
    /// share the query limit (`max_queries_per_user`).
    pub queries: usize,
}

/// An acknowledgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub by: String,
    pub at: f64,
}

/// One open alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenAlert {
    /// The short id people type: `ack 12`.
    pub id: u32,
    /// The rule's name, or `collector` / `threshold`.
    pub source: String,
    /// The event name (or host) it is about.
    pub series: String,
    #[serde(with = "severity_text")]
    pub severity: Severity,
    /// When the condition began to hold (hub clock).
    pub since: f64,
    pub value: Option<f64>,
    /// The collector's own words, for alerts without rules.
    pub text: String,
    pub ack: Option<Ack>,
    /// Whether its firing message went out (a recovery is told only then).
    pub announced: bool,
    /// When it was last told (repeats count from here).
    pub last_sent: f64,
    /// Held open because its series flaps.
    pub flapping: bool,
    /// While flapping: the condition is currently false.
    pub ok: bool,
}

/// One line of `history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: f64,
    pub text: String,
}

/// A rule defined in chat, saved in the chat syntax.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedRule {
    pub owner: String,
    pub rule: String,
}

/// Everything that survives a restart, as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedAlerts {
    pub open: Vec<OpenAlert>,
    pub silences: Vec<Silence>,
    pub rules: Vec<SavedRule>,
    pub history: Vec<HistoryEntry>,
    /// Message id → the alerts it told.
    pub messages: Vec<(String, Vec<u32>)>,
    pub next_alert: u32,
    pub next_silence: u32,
}

mod severity_text {
    use jabmon_shared::payload::Severity;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(s: &Severity, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_str(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Severity, D::Error> {
        let text = String::deserialize(de)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Message ids remembered for replies and reactions.
pub(crate) const MAX_MESSAGES: usize = 1000;
/// Silences in force at once.
pub(crate) const MAX_SILENCES: usize = 1000;
/// Lines `alerts` lists before "and N more".
pub(crate) const MAX_LISTED: usize = 30;

/// Firing text of collector alerts: `🔥 web1 collector dead (collector) #5`.
const COLLECTOR_FIRING: &str = "{icon} {host} {text} ({rule}) #{id}";
/// Recovery text of collector alerts: `✅ web1 collector alive after 3 min (collector)`.
const COLLECTOR_RESOLVED: &str = "{icon} {host} {text} after {duration} ({rule})";

fn icon(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "🔥",
        Severity::Warning => "⚠️",
        Severity::Info => "ℹ️",
    }
}

const RESOLVED_ICON: &str = "✅";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The rule's query: an output means the condition holds.
    Condition,
    /// The rule's proc without its filters ([`Rule::measure_proc`]): an output without one
    /// of the condition means the condition was judged and failed.
    Measure,
}

#[derive(Debug)]
struct RuleEntry {
    rule: Rule,
    condition: String,
}

/// The alert book. See the module documentation.
#[derive(Debug)]
pub struct Alerts {
    settings: Settings,
    limits: Limits,
    engine: Engine,
    rules: BTreeMap<String, RuleEntry>,
    roles: HashMap<String, (String, Role)>,
    series: HashMap<String, HashMap<String, Series>>,
    open: BTreeMap<u32, OpenAlert>,
    silences: Vec<Silence>,
    history: VecDeque<HistoryEntry>,
    messages: VecDeque<(String, Vec<u32>)>,
    batches: Vec<Batch>,
    limit: RateLimit,
    next_alert: u32,
    next_silence: u32,
    next_message: u64,
    message_prefix: String,
    scratch: Vec<Output>,
    dirty: bool,
}

impl Alerts {
    /// A book with the rules of `hub.toml`; `now` (the start time) makes message ids unique
    /// across restarts.
    pub fn new(
        settings: Settings,
        limits: Limits,
        rules: Vec<Rule>,
        now: f64,
    ) -> Result<Alerts, Vec<String>> {
        let mut book = Alerts {
            limit: RateLimit::new(settings.route_per_minute, settings.route_burst),
            settings,
            engine: Engine::new(limits.clone()),
            limits,
            rules: BTreeMap::new(),
            roles: HashMap::new(),
            series: HashMap::new(),
            open: BTreeMap::new(),
            silences: Vec::new(),
            history: VecDeque::new(),
            messages: VecDeque::new(),
            batches: Vec::new(),
            next_alert: 1,
            next_silence: 1,
            next_message: 0,
            message_prefix: format!("jabmon-alert-{:x}", now.max(0.0) as u64),
            scratch: Vec::new(),
            dirty: false,
        };
        let problems: Vec<String> = rules
            .into_iter()
            .filter_map(|r| book.add_rule(r).err())
            .collect();
        if problems.is_empty() {
            Ok(book)
        } else {
            Err(problems)
        }
    }

    /// The rules, by name.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.values().map(|e| &e.rule)
    }

    /// The open alerts, by id.
    pub fn open_alerts(&self) -> impl Iterator<Item = &OpenAlert> {
        self.open.values()
    }

    pub fn silences(&self) -> &[Silence] {
        &self.silences
    }

    /// Rules `owner` defined in chat (to count against their limits).
    pub fn rules_of(&self, owner: &str) -> usize {
        self.rules()
            .filter(|r| r.owner.as_deref() == Some(owner))
            .count()
    }

    fn add_rule(&mut self, rule: Rule) -> Result<(), String> {
        let name = rule.name.clone();
        let condition = self
            .engine
            .restore(&Saved {
                user: format!("alert:{name}"),
                cmd: rule.query(),
                key: String::new(),
            })
            .map_err(|e| format!("alert `{name}`: query: {e}"))?;
        let measure = self
            .engine
            .restore(&Saved {
                user: format!("alert-measure:{name}"),
                cmd: format!("SELECT {} FROM {};", rule.measure_proc(), rule.regex),
                key: String::new(),
            })
            .map_err(|e| format!("alert `{name}`: query: {e}"))?;
        self.roles
            .insert(condition, (name.clone(), Role::Condition));
        self.roles.insert(measure, (name.clone(), Role::Measure));
        let condition = rule.condition();
        self.rules.insert(name, RuleEntry { rule, condition });
        Ok(())
    }

    /// Removes a rule, its series and its open alerts (told in the history only).
    fn remove_rule(&mut self, name: &str, now: f64) {
        self.engine.delete_all(&format!("alert:{name}"));
        self.engine.delete_all(&format!("alert-measure:{name}"));
        self.roles.retain(|_, (rule, _)| rule != name);
        self.rules.remove(name);
        self.series.remove(name);
        let ids: Vec<u32> = self
            .open
            .values()
            .filter(|a| a.source == name)
            .map(|a| a.id)
            .collect();
        for id in &ids {
            self.open.remove(id);
        }
        self.batches.retain(|b| b.source != name);
        if !ids.is_empty() {
            self.record(
                now,
                format!("rule {name} removed with {} open alerts", ids.len()),
            );
        }
        self.dirty = true;
    }

    // -----------------------------------------------------------------------------------------
    // Inputs

    /// One metric event (the same the query engine is fed), with the hub's clock.
    pub fn on_metric(&mut self, name: &str, timestamp: f64, value: f64, now: f64) -> Vec<Action> {
        self.scratch.clear();
        self.engine.feed(name, timestamp, value, &mut self.scratch);
        if self.scratch.is_empty() {
            return Vec::new();
        }
        let outputs = std::mem::take(&mut self.scratch);
        // Per rule: (the measure's value, the condition's value).
        let mut seen: Vec<(String, Option<f64>, Option<f64>)> = Vec::new();
        for o in &outputs {
            let Some((rule, role)) = self.roles.get(&*o.key) else {
                continue;
            };
            let slot = match seen.iter().position(|(r, ..)| r == rule) {
                Some(i) => i,
                None => {
                    seen.push((rule.clone(), None, None));
                    seen.len() - 1
                }
            };
            match role {
                Role::Measure => seen[slot].1 = Some(o.value),
                Role::Condition => seen[slot].2 = Some(o.value),
            }
        }
        self.scratch = outputs;
        for (rule, measured, cond) in seen {
            // Neither: the proc swallowed the event (a window filling up), which is no news.
            if measured.is_some() || cond.is_some() {
                let judged = measured.unwrap_or(value);
                self.observe(&rule, name, cond, timestamp, judged, now);
            }
        }
        self.finish(now, Vec::new())
    }

    /// A collector signal (see [`super::collector`]).
    pub fn on_collector(&mut self, signal: Signal, now: f64) -> Vec<Action> {
        match signal {
            Signal::Open {
                source,
                series,
                severity,
                value,
                text,
            } => {
                let entry = self.series_entry(source, &series);
                match entry.open {
                    Some(id) => {
                        if let Some(a) = self.open.get_mut(&id) {
                            a.value = value.or(a.value);
                            if severity_rank(severity) > severity_rank(a.severity) {
                                a.severity = severity;
                                a.text = text;
                            }
                            a.ok = false;
                        }
                    }
                    None => self.transition_open(source, &series, severity, now, value, text, now),
                }
            }
            Signal::Resolve {
                source,
                series,
                value,
                text,
            } => self.transition_resolve(source, &series, value, text, now),
            Signal::Notice {
                source,
                series,
                text,
            } => {
                let line = format!("ℹ️ {series} {text} ({source})");
                self.record(now, line.clone());
                let route = self.settings.collector_route.clone();
                self.enqueue(
                    Kind::Notice,
                    source,
                    route,
                    Item {
                        id: None,
                        icon: "ℹ️",
                        line,
                        short: format!("{series} {text}"),
                    },
                    now,
                );
            }
        }
        self.finish(now, Vec::new())
    }

    /// The clock: `absent` rules, expired silences, the end of flapping, repeats, grouped
    /// messages that are due and rate-limit reports. Call it every second or so.
    pub fn tick(&mut self, now: f64) -> Vec<Action> {
        let mut out = Vec::new();
        self.scratch.clear();
        self.engine.tick(now, &mut self.scratch);
        let outputs = std::mem::take(&mut self.scratch);
        for o in &outputs {
            if let Some((rule, Role::Condition)) = self.roles.get(&*o.key).cloned() {
                self.observe(&rule, &o.name, Some(o.value), now, o.value, now);
            }
        }
        self.scratch = outputs;
        let before = self.silences.len();
        let expired: Vec<Silence> = self
            .silences
            .iter()
            .filter(|s| s.until <= now)
            .cloned()
            .collect();
        self.silences.retain(|s| s.until > now);
        for s in expired {
            self.record(
                now,
                format!("🔔 silence s{} on {} expired", s.id, s.matcher),
            );
        }
        if self.silences.len() != before {
            self.dirty = true;
            self.announce_unsilenced(now);
        }
        self.end_flapping(now);
        self.repeats(now);
        self.report_held(now, &mut out);
        // Idle series are forgotten once their changes are older than a flap window.
        let window = self.settings.flap_window_secs;
        self.series.retain(|_, m| {
            m.retain(|_, s| {
                !(s.phase == Phase::Ok
                    && s.open.is_none()
                    && s.flaps.back().is_none_or(|t| *t < now - window))
            });
            !m.is_empty()
        });
        self.finish(now, out)
    }

    /// A chat command from `sender`.
    pub fn on_command(&mut self, sender: &Sender, cmd: ChatCommand, now: f64) -> Vec<Action> {
        let mut out = Vec::new();
        let mutating = matches!(
            cmd,
            ChatCommand::Define(_)
                | ChatCommand::Drop { .. }
                | ChatCommand::Ack { .. }
                | ChatCommand::Silence { .. }
                | ChatCommand::Unsilence { .. }
        );
        if mutating && !sender.allowed {
            self.refuse(sender, &mut out);
            return self.finish(now, out);
        }
        match cmd {
            ChatCommand::Define(spec) => {
                let text = self.define(sender, &spec, now);
                self.reply(sender, text, &mut out);
            }
            ChatCommand::Drop { name } => {
                let text = match self.rules.get(&name).map(|e| e.rule.owner.clone()) {
                    None => format!("❌ no rule named {name}"),
                    Some(None) => format!("❌ rule {name} comes from hub.toml and stays"),
                    Some(Some(owner)) if owner != sender.who => {
                        format!("❌ rule {name} belongs to {owner}")
                    }
                    Some(Some(_)) => {
                        self.remove_rule(&name, now);
                        format!("🗑 rule {name} dropped")
                    }
                };
                self.reply(sender, text, &mut out);
            }
            ChatCommand::Rules => {
                let text = self.list_rules();
                self.reply(sender, text, &mut out);
            }
            ChatCommand::Ack { ids } => self.ack(sender, &ids, now, true, &mut out),
            ChatCommand::Silence {
                secs,
                matcher,
                comment,
            } => {
                let text = self.silence(sender, secs, matcher, comment, now);
                self.reply(sender, text, &mut out);
            }
            ChatCommand::Unsilence { id } => {
                let text = match self.silences.iter().position(|s| s.id == id) {
                    None => format!("❌ no silence s{id}"),
                    Some(i) => {
                        let s = self.silences.remove(i);
                        let text = format!(
                            "🔔 silence s{id} on {} removed by {}",
                            s.matcher, sender.who
                        );
                        self.record(now, text.clone());
                        self.dirty = true;
                        self.announce_unsilenced(now);
                        text
                    }
                };
                self.reply(sender, text, &mut out);
            }
            ChatCommand::Silences => {
                let text = self.list_silences(now);
                self.reply(sender, text, &mut out);
            }
            ChatCommand::Alerts => {
                let text = self.list_open(now);
                self.reply(sender, text, &mut out);
            }
            ChatCommand::History { count } => {
                let text = self.list_history(count, now);
                self.reply(sender, text, &mut out);
            }
        }
        self.finish(now, out)
    }

    /// A silence set through the ad-hoc `silence` form: the answer's text (for the form's
    /// note, not sent as a message) and what to do (a save).
    pub fn silence_from_form(
        &mut self,
        sender: &Sender,
        secs: f64,
        matcher: String,
        comment: String,
        now: f64,
    ) -> (String, Vec<Action>) {
        if !sender.allowed {
            let text = format!(
                "⛔ {} may not silence alerts: only the hub's users and admins may",
                sender.who
            );
            return (text, self.finish(now, vec![]));
        }
        let text = self.silence(sender, secs, matcher, comment, now);
        (text, self.finish(now, vec![]))
    }

    /// A reply (XEP-0461) to message `message_id`: acks the alerts that message told. `None`
    /// when the message was not an alert (the caller handles the reply as usual).
    pub fn on_reply(&mut self, sender: &Sender, message_id: &str, now: f64) -> Option<Vec<Action>> {
        let ids = self.message_alerts(message_id)?;
        let mut out = Vec::new();
        if sender.allowed {
            self.ack(sender, &ids, now, false, &mut out);
        } else {
            self.refuse(sender, &mut out);
        }
        Some(self.finish(now, out))
    }

    /// A reaction (XEP-0444) to message `message_id`: any reaction acks the alerts that
    /// message told; an empty set (reactions withdrawn) changes nothing. `None` when the
    /// message was not an alert.
    pub fn on_reaction(
        &mut self,
        sender: &Sender,
        message_id: &str,
        reactions: &[String],
        now: f64,
    ) -> Option<Vec<Action>> {
        if reactions.is_empty() {
            return self.message_alerts(message_id).map(|_| Vec::new());
        }
        self.on_reply(sender, message_id, now)
    }

    /// A room gave our message `our_id` the stanza id `room_id` (XEP-0359, in the reflected
    /// copy): replies and reactions in rooms refer to that one.
    pub fn note_stanza_id(&mut self, our_id: &str, room_id: &str) {
        if let Some(ids) = self.message_alerts(our_id) {
            self.remember(room_id.to_owned(), ids);
        }
    }

    fn message_alerts(&self, message_id: &str) -> Option<Vec<u32>> {
        self.messages
            .iter()
            .rev()
            .find(|(m, _)| m == message_id)
            .map(|(_, ids)| ids.clone())
    }

    fn remember(&mut self, message_id: String, ids: Vec<u32>) {
        if self.messages.len() >= MAX_MESSAGES {
            self.messages.pop_front();
        }
        self.messages.push_back((message_id, ids));
        self.dirty = true;
    }

    // -----------------------------------------------------------------------------------------
    // Persistence

    /// The state to keep across a restart.
    pub fn save(&self) -> SavedAlerts {
        SavedAlerts {
            open: self.open.values().cloned().collect(),
            silences: self.silences.clone(),
            rules: self
                .rules()
                .filter_map(|r| {
                    r.owner.as_ref().map(|owner| SavedRule {
                        owner: owner.clone(),
                        rule: r.to_chat(),
                    })
                })
                .collect(),
            history: self.history.iter().cloned().collect(),
            messages: self.messages.iter().cloned().collect(),
            next_alert: self.next_alert,
            next_silence: self.next_silence,
        }
    }

    /// Takes back saved state at start-up without telling anything again: open alerts stay
    /// open (and are not resolved for `restore_grace`, while pipelines refill), their repeat
    /// clock restarts at `now`. Returns what could not be restored (rules that no longer
    /// parse, alerts of rules that are gone).
    pub fn restore(&mut self, saved: SavedAlerts, now: f64) -> Vec<String> {
        let mut problems = Vec::new();
        for r in saved.rules {
            let spec = match chat::parse(&r.rule, &self.limits) {
                Some(Ok(ChatCommand::Define(spec))) => spec,
                Some(Err(e)) => {
                    problems.push(format!("saved rule of {}: {e}", r.owner));
                    continue;
                }
                _ => {
                    problems.push(format!("saved rule of {}: not a rule", r.owner));
                    continue;
                }
            };
            if self.rules.contains_key(&spec.name) {
                problems.push(format!(
                    "saved rule {} of {}: the name is taken",
                    spec.name, r.owner
                ));
                continue;
            }
            match spec.validate(Some(&r.owner), &self.settings, &self.limits) {
                Ok(rule) => {
                    if let Err(e) = self.add_rule(rule) {
                        problems.push(e);
                    }
                }
                Err(p) => problems.extend(p),
            }
        }
        let mut next = saved.next_alert.max(1);
        for mut a in saved.open {
            let known = self.rules.contains_key(&a.source)
                || [super::collector::COLLECTOR, super::collector::THRESHOLD]
                    .contains(&a.source.as_str());
            if !known {
                problems.push(format!(
                    "open alert #{} of rule {}: the rule is gone",
                    a.id, a.source
                ));
                continue;
            }
            next = next.max(a.id + 1);
            a.last_sent = now;
            let grace = self.settings.restore_grace_secs;
            // Collector alerts have no condition of their own: their series stay `Ok`.
            let by_rule = self.rules.contains_key(&a.source);
            let entry = self.series_entry(&a.source, &a.series);
            if by_rule {
                entry.phase = Phase::Firing;
            }
            entry.open = Some(a.id);
            entry.hold_until = now + grace;
            if a.flapping {
                entry.flaps.push_back(now);
            }
            self.open.insert(a.id, a);
        }
        self.silences = saved
            .silences
            .into_iter()
            .filter(|s| s.until > now)
            .collect();
        self.next_silence = saved
            .next_silence
            .max(self.silences.iter().map(|s| s.id + 1).max().unwrap_or(1));
        self.next_alert = next;
        self.history = saved.history.into_iter().collect();
        while self.history.len() > self.settings.history {
            self.history.pop_front();
        }
        self.messages = saved.messages.into_iter().collect();
        while self.messages.len() > MAX_MESSAGES {
            self.messages.pop_front();
        }
        problems
    }

    // -----------------------------------------------------------------------------------------
    // Series and transitions

    fn series_entry(&mut self, source: &str, series: &str) -> &mut Series {
        if !self.series.contains_key(source) {
            self.series.insert(source.to_owned(), HashMap::new());
        }
        let map = self.series.get_mut(source).expect("inserted above");
        if !map.contains_key(series) {
            map.insert(series.to_owned(), Series::new());
        }
        map.get_mut(series).expect("inserted above")
    }

    fn observe(
        &mut self,
        rule: &str,
        name: &str,
        cond: Option<f64>,
        t: f64,
        measured: f64,
        now: f64,
    ) {
        let Some(entry) = self.rules.get(rule) else {
            return;
        };
        let (for_secs, severity) = (entry.rule.for_secs, entry.rule.severity);
        let exists = self.series.get(rule).is_some_and(|m| m.contains_key(name));
        if cond.is_none() && !exists {
            return;
        }
        let s = self.series_entry(rule, name);
        if cond.is_none() && now < s.hold_until {
            return;
        }
        match s.phase.step(cond.is_some(), t, for_secs) {
            Some(Step::Open { held_since }) => {
                let since = (now - (t - held_since).max(0.0)).min(now);
                let value = cond.unwrap_or(measured);
                self.transition_open(rule, name, severity, since, Some(value), String::new(), now);
            }
            Some(Step::Resolve) => {
                self.transition_resolve(rule, name, Some(measured), String::new(), now);
            }
            None => {
                if let (Some(v), Some(id)) = (cond, s.open) {
                    if let Some(a) = self.open.get_mut(&id) {
                        a.value = Some(v);
                    }
                }
            }
        }
    }

    /// Counts a change of `series`; true when it makes the series flap.
    fn flap(&mut self, source: &str, series: &str, now: f64) -> bool {
        let (window, max) = (self.settings.flap_window_secs, self.settings.flap_changes);
        self.series_entry(source, series)
            .count_change(now, window, max)
    }

    #[allow(clippy::too_many_arguments)]
    fn transition_open(
        &mut self,
        source: &str,
        series: &str,
        severity: Severity,
        since: f64,
        value: Option<f64>,
        text: String,
        now: f64,
    ) {
        let flapping = self.flap(source, series, now);
        if let Some(id) = self.series_entry(source, series).open {
            // Held open by flapping: the condition holds again.
            if let Some(a) = self.open.get_mut(&id) {
                a.ok = false;
                a.value = value.or(a.value);
            }
            return;
        }
        let id = self.next_alert;
        self.next_alert += 1;
        self.series_entry(source, series).open = Some(id);
        let alert = OpenAlert {
            id,
            source: source.to_owned(),
            series: series.to_owned(),
            severity,
            since,
            value,
            text,
            ack: None,
            announced: false,
            last_sent: now,
            flapping: false,
            ok: false,
        };
        let line = self.render(&alert, false, now);
        self.record(now, line.clone());
        self.open.insert(id, alert);
        self.dirty = true;
        if flapping {
            self.start_flapping(id, now);
        } else {
            let item = self.item(id, false, now);
            let route = self.route_of(source);
            self.enqueue(Kind::Firing, source, route, item, now);
        }
    }

    fn transition_resolve(
        &mut self,
        source: &str,
        series: &str,
        value: Option<f64>,
        text: String,
        now: f64,
    ) {
        let Some(id) = self
            .series
            .get(source)
            .and_then(|m| m.get(series))
            .and_then(|s| s.open)
        else {
            return;
        };
        let flapping = self.flap(source, series, now);
        let Some(a) = self.open.get_mut(&id) else {
            return;
        };
        a.value = value.or(a.value);
        if !text.is_empty() {
            a.text = text;
        }
        if a.flapping {
            a.ok = true;
            return;
        }
        if flapping {
            a.ok = true;
            self.start_flapping(id, now);
            return;
        }
        self.close(id, now);
    }

    /// Closes alert `id` and tells its recovery if its firing was told.
    fn close(&mut self, id: u32, now: f64) {
        let Some(a) = self.open.remove(&id) else {
            return;
        };
        if let Some(s) = self
            .series
            .get_mut(&a.source)
            .and_then(|m| m.get_mut(&a.series))
        {
            s.open = None;
        }
        let line = self.render(&a, true, now);
        self.record(now, line.clone());
        self.dirty = true;
        if a.announced && !self.silenced(&a.source, &a.series, now) {
            let route = self.route_of(&a.source);
            let (host, metric) = format::split_series(&a.series);
            self.enqueue(
                Kind::Resolved,
                &a.source,
                route,
                Item {
                    id: Some(id),
                    icon: RESOLVED_ICON,
                    line,
                    short: format!("{host} {metric}").trim().to_owned(),
                },
                now,
            );
        }
    }

    fn start_flapping(&mut self, id: u32, now: f64) {
        let Some(a) = self.open.get_mut(&id) else {
            return;
        };
        a.flapping = true;
        let (host, metric) = format::split_series(&a.series);
        let short = format!("{host} {metric}").trim().to_owned();
        let line = format!(
            "🔁 {short} is flapping: more than {} changes in {}; held open until it settles ({}) #{id}",
            self.settings.flap_changes,
            format::duration(self.settings.flap_window_secs),
            a.source
        );
        let source = a.source.clone();
        self.record(now, line.clone());
        self.dirty = true;
        let route = self.route_of(&source);
        self.enqueue(
            Kind::Flapping,
            &source,
            route,
            Item {
                id: Some(id),
                icon: "🔁",
                line,
                short,
            },
            now,
        );
    }

    /// Series quiet for a whole flap window stop flapping: the alert closes if the condition
    /// is false, and is told again as firing if it holds.
    fn end_flapping(&mut self, now: f64) {
        let window = self.settings.flap_window_secs;
        let settled: Vec<(u32, bool)> = self
            .open
            .values()
            .filter(|a| a.flapping)
            .filter(|a| {
                self.series
                    .get(&a.source)
                    .and_then(|m| m.get(&a.series))
                    .and_then(|s| s.flaps.back())
                    .is_none_or(|t| *t < now - window)
            })
            .map(|a| (a.id, a.ok))
            .collect();
        for (id, ok) in settled {
            if let Some(a) = self.open.get_mut(&id) {
                a.flapping = false;
                a.announced = true;
            }
            self.dirty = true;
            if ok {
                self.close(id, now);
            } else {
                let source = self.open[&id].source.clone();
                let item = self.item(id, false, now);
                let route = self.route_of(&source);
                self.enqueue(Kind::Firing, &source, route, item, now);
            }
        }
    }

    fn repeats(&mut self, now: f64) {
        let due: Vec<u32> = self
            .open
            .values()
            .filter(|a| a.announced && a.ack.is_none() && !a.flapping && !a.ok)
            .filter(|a| {
                self.repeat_of(&a.source)
                    .is_some_and(|r| now - a.last_sent >= r)
            })
            .filter(|a| !self.silenced(&a.source, &a.series, now))
            .map(|a| a.id)
            .collect();
        for id in due {
            let source = self.open[&id].source.clone();
            self.open.get_mut(&id).expect("listed above").last_sent = now;
            let item = self.item(id, false, now);
            let route = self.route_of(&source);
            self.enqueue(Kind::Repeat, &source, route, item, now);
        }
    }

    /// Open alerts never told (they opened under a silence) are told once no silence covers
    /// them.
    fn announce_unsilenced(&mut self, now: f64) {
        let pending: Vec<u32> = self
            .open
            .values()
            .filter(|a| !a.announced && !a.flapping && !a.ok)
            .filter(|a| !self.silenced(&a.source, &a.series, now))
            .filter(|a| {
                !self
                    .batches
                    .iter()
                    .any(|b| b.items.iter().any(|i| i.id == Some(a.id)))
            })
            .map(|a| a.id)
            .collect();
        for id in pending {
            let source = self.open[&id].source.clone();
            let item = self.item(id, false, now);
            let route = self.route_of(&source);
            self.enqueue(Kind::Firing, &source, route, item, now);
        }
    }

    fn silenced(&self, source: &str, series: &str, now: f64) -> bool {
        self.silences
            .iter()
            .any(|s| s.until > now && s.matches(source, series))
    }

    fn route_of(&self, source: &str) -> Route {
        match self.rules.get(source) {
            Some(e) => e.rule.route.clone(),
            None => self.settings.collector_route.clone(),
        }
    }

    fn repeat_of(&self, source: &str) -> Option<f64> {
        match self.rules.get(source) {
            Some(e) => e.rule.repeat_secs,
            None => self.settings.default_repeat_secs,
        }
    }

    // -----------------------------------------------------------------------------------------
    // Rendering

    fn fields(&self, a: &OpenAlert, resolved: bool, now: f64) -> Fields {
        let (host, metric) = format::split_series(&a.series);
        let rule = self.rules.get(&a.source);
        let unit = rule.map_or("", |e| e.rule.unit.as_str());
        Fields {
            icon: if resolved {
                RESOLVED_ICON
            } else {
                icon(a.severity)
            }
            .to_owned(),
            host: host.to_owned(),
            metric,
            name: a.series.clone(),
            value: a
                .value
                .map(|v| format::value_with_unit(v, unit))
                .unwrap_or_default(),
            condition: rule.map(|e| e.condition.clone()).unwrap_or_default(),
            rule: a.source.clone(),
            severity: a.severity.to_string(),
            duration: format::duration(now - a.since),
            held_for: if now - a.since < 1.0 {
                String::new()
            } else {
                format!("for {}", format::duration(now - a.since))
            },
            id: a.id.to_string(),
            text: a.text.clone(),
        }
    }

    fn render(&self, a: &OpenAlert, resolved: bool, now: f64) -> String {
        let fields = self.fields(a, resolved, now);
        match self.rules.get(&a.source) {
            Some(e) if resolved => e.rule.resolved.render(&fields),
            Some(e) => e.rule.firing.render(&fields),
            None => Template::parse(if resolved {
                COLLECTOR_RESOLVED
            } else {
                COLLECTOR_FIRING
            })
            .expect("the collector templates parse")
            .render(&fields),
        }
    }

    fn item(&self, id: u32, resolved: bool, now: f64) -> Item {
        let a = &self.open[&id];
        let f = self.fields(a, resolved, now);
        let short = if self.rules.contains_key(&a.source) {
            format!("{} {} {}", f.host, f.metric, f.value)
        } else {
            format!("{} {}", f.host, f.text)
        };
        Item {
            id: Some(id),
            icon: icon(a.severity),
            line: self.render(a, resolved, now),
            short: short.split_whitespace().collect::<Vec<_>>().join(" "),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Flood control: grouping and per-target rate limits

    fn enqueue(&mut self, kind: Kind, source: &str, route: Route, item: Item, now: f64) {
        if let Some(b) = self
            .batches
            .iter_mut()
            .find(|b| b.kind == kind && b.source == source)
        {
            b.items.push(item);
            return;
        }
        self.batches.push(Batch {
            source: source.to_owned(),
            kind,
            due: now + self.settings.group_wait_secs,
            route,
            items: vec![item],
        });
    }

    /// Sends the batches that are due, then queues `Save` if anything persisted changed.
    fn finish(&mut self, now: f64, mut out: Vec<Action>) -> Vec<Action> {
        let (due, wait): (Vec<Batch>, Vec<Batch>) =
            self.batches.drain(..).partition(|b| b.due <= now);
        self.batches = wait;
        for batch in due {
            self.flush(batch, now, &mut out);
        }
        if self.dirty {
            self.dirty = false;
            out.push(Action::Save);
        }
        out
    }

    fn flush(&mut self, mut batch: Batch, now: f64, out: &mut Vec<Action>) {
        // What changed while the batch waited: resolved, acked or silenced alerts drop out.
        batch.items.retain(|item| {
            let Some(id) = item.id else { return true };
            match (batch.kind, self.open.get(&id)) {
                // Resolutions were decided when they were queued.
                (Kind::Resolved, _) => true,
                (_, None) => false,
                (Kind::Flapping | Kind::Notice, Some(a)) => {
                    !self.silenced(&a.source, &a.series, now)
                }
                (Kind::Repeat, Some(a)) => {
                    a.ack.is_none() && !a.flapping && !self.silenced(&a.source, &a.series, now)
                }
                (Kind::Firing, Some(a)) => !a.flapping && !self.silenced(&a.source, &a.series, now),
            }
        });
        if batch.items.is_empty() {
            return;
        }
        let ids: Vec<u32> = batch.items.iter().filter_map(|i| i.id).collect();
        if matches!(batch.kind, Kind::Firing | Kind::Flapping | Kind::Repeat) {
            for id in &ids {
                if let Some(a) = self.open.get_mut(id) {
                    a.announced = true;
                    a.last_sent = now;
                }
            }
            self.dirty = true;
        }
        let body = batch.text(self.settings.group_names);
        let targets = targets(&batch.route);
        for to in targets {
            self.send_limited(to, body.clone(), &ids, now, out);
        }
    }

    fn next_id(&mut self) -> String {
        self.next_message += 1;
        format!("{}-{}", self.message_prefix, self.next_message)
    }

    /// One alert message to one target, under the target's token bucket; what the bucket
    /// refuses is counted and reported once it refills.
    fn send_limited(
        &mut self,
        to: Target,
        body: String,
        ids: &[u32],
        now: f64,
        out: &mut Vec<Action>,
    ) {
        if !self.limit.take(&to, now) {
            return;
        }
        let id = self.next_id();
        if !ids.is_empty() {
            self.remember(id.clone(), ids.to_vec());
        }
        out.push(Action::Send(Outgoing { to, body, id }));
    }

    fn report_held(&mut self, now: f64, out: &mut Vec<Action>) {
        for (to, n) in self.limit.release_held(now) {
            let body = format!(
                "⏸ {n} alert messages here were held back by the rate limit ({} per minute); `alerts` lists what is open",
                self.limit.per_minute()
            );
            let id = self.next_id();
            out.push(Action::Send(Outgoing { to, body, id }));
        }
    }

    // -----------------------------------------------------------------------------------------
    // Commands

    fn reply(&mut self, sender: &Sender, body: String, out: &mut Vec<Action>) {
        let id = self.next_id();
        out.push(Action::Send(Outgoing {
            to: sender.reply_to.clone(),
            body,
            id,
        }));
    }

    fn refuse(&mut self, sender: &Sender, out: &mut Vec<Action>) {
        let text = format!(
            "⛔ {} may not ack, silence or define alerts: only the hub's users and admins may",
            sender.who
        );
        self.reply(sender, text, out);
    }

    fn record(&mut self, now: f64, text: String) {
        if self.history.len() >= self.settings.history {
            self.history.pop_front();
        }
        self.history.push_back(HistoryEntry { at: now, text });
    }

    fn ack(
        &mut self,
        sender: &Sender,
        ids: &[u32],
        now: f64,
        explicit: bool,
        out: &mut Vec<Action>,
    ) {
        let mut acked = Vec::new();
        let mut problems = Vec::new();
        for &id in ids {
            match self.open.get_mut(&id) {
                None if explicit => problems.push(format!("#{id} is not open")),
                None => {}
                Some(a) => match &a.ack {
                    Some(ack) => problems.push(format!("#{id} was acked by {}", ack.by)),
                    None => {
                        a.ack = Some(Ack {
                            by: sender.who.clone(),
                            at: now,
                        });
                        acked.push(id);
                    }
                },
            }
        }
        if acked.is_empty() {
            let text = if problems.is_empty() {
                "nothing to ack: those alerts are closed".to_owned()
            } else {
                format!("❌ {}", problems.join("; "))
            };
            self.reply(sender, text, out);
            return;
        }
        self.dirty = true;
        let text = if let [id] = acked[..] {
            let a = &self.open[&id];
            let (host, metric) = format::split_series(&a.series);
            format!(
                "👀 {} acked #{id} {host} {metric} ({})",
                sender.who, a.source
            )
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
        } else {
            format!(
                "👀 {} acked {} alerts: {}",
                sender.who,
                acked.len(),
                id_span(&acked)
            )
        };
        let text = if problems.is_empty() {
            text
        } else {
            format!("{text} ({})", problems.join("; "))
        };
        self.record(now, text.clone());
        let mut to: Vec<Target> = acked
            .iter()
            .flat_map(|id| targets(&self.route_of(&self.open[id].source)))
            .collect();
        to.push(sender.reply_to.clone());
        to.sort();
        to.dedup();
        for t in to {
            let id = self.next_id();
            out.push(Action::Send(Outgoing {
                to: t,
                body: text.clone(),
                id,
            }));
        }
    }

    fn silence(
        &mut self,
        sender: &Sender,
        secs: f64,
        matcher: String,
        comment: String,
        now: f64,
    ) -> String {
        if self.silences.len() >= MAX_SILENCES {
            return format!("❌ too many silences: the limit is {MAX_SILENCES}");
        }
        if secs > self.settings.max_silence_secs {
            return format!(
                "❌ a silence may last at most {}",
                format::duration(self.settings.max_silence_secs)
            );
        }
        let id = self.next_silence;
        self.next_silence += 1;
        let s = Silence {
            id,
            matcher,
            until: now + secs,
            by: sender.who.clone(),
            comment,
            created: now,
        };
        let matching = self
            .open
            .values()
            .filter(|a| s.matches(&a.source, &a.series))
            .count();
        let matching = match matching {
            0 => "no open alert matches".to_owned(),
            1 => "1 open alert matches".to_owned(),
            n => format!("{n} open alerts match"),
        };
        let mut text = format!(
            "🔕 silence s{id} on {} for {} by {} ({matching})",
            s.matcher,
            format::duration(secs),
            s.by
        );
        if !s.comment.is_empty() {
            let _ = write!(text, ": {}", s.comment);
        }
        self.record(now, text.clone());
        self.silences.push(s);
        self.dirty = true;
        text
    }

    fn define(&mut self, sender: &Sender, spec: &RuleSpec, now: f64) -> String {
        let rule = match spec.validate(Some(&sender.who), &self.settings, &self.limits) {
            Ok(rule) => rule,
            Err(p) => return format!("❌ {}", p.join("; ")),
        };
        let replacing = match self.rules.get(&rule.name).map(|e| e.rule.owner.clone()) {
            Some(None) => return format!("❌ rule {} comes from hub.toml", rule.name),
            Some(Some(owner)) if owner != sender.who => {
                return format!("❌ rule {} belongs to {owner}", rule.name)
            }
            Some(Some(_)) => true,
            None => false,
        };
        let rules = self.rules_of(&sender.who);
        if !replacing && rules >= self.settings.max_rules_per_user {
            return format!(
                "❌ too many rules: the limit is {} per user",
                self.settings.max_rules_per_user
            );
        }
        if !replacing && rules + sender.queries >= self.limits.max_queries_per_user {
            return format!(
                "❌ too many queries and alert rules: the limit is {} per user ({}, {})",
                self.limits.max_queries_per_user,
                counted(sender.queries, "query", "queries"),
                counted(rules, "rule", "rules")
            );
        }
        if replacing {
            self.remove_rule(&rule.name, now);
        }
        let text = format!("📝 rule {} saved: {}", rule.name, rule.to_chat());
        if let Err(e) = self.add_rule(rule) {
            return format!("❌ {e}");
        }
        self.record(now, text.clone());
        self.dirty = true;
        text
    }

    fn list_rules(&self) -> String {
        if self.rules.is_empty() {
            return "No alert rules.".to_owned();
        }
        self.rules()
            .map(|r| match &r.owner {
                None => format!("{} (hub.toml)", r.to_chat()),
                Some(o) => format!("{} (by {o})", r.to_chat()),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn list_open(&self, now: f64) -> String {
        if self.open.is_empty() {
            return "No open alerts.".to_owned();
        }
        let mut lines: Vec<String> = self
            .open
            .values()
            .take(MAX_LISTED)
            .map(|a| {
                let f = self.fields(a, false, now);
                let mut line = format!("#{} {} {} {} {}", a.id, f.icon, f.host, f.metric, f.value);
                if f.metric.is_empty() {
                    let _ = write!(line, " {}", f.text);
                }
                let _ = write!(line, " ({}) for {}", a.source, f.duration);
                if let Some(ack) = &a.ack {
                    let _ = write!(line, " · acked by {}", ack.by);
                }
                if self.silenced(&a.source, &a.series, now) {
                    line.push_str(" · silenced");
                }
                if a.flapping {
                    line.push_str(" · flapping");
                }
                line.split_whitespace().collect::<Vec<_>>().join(" ")
            })
            .collect();
        if self.open.len() > MAX_LISTED {
            lines.push(format!("… and {} more", self.open.len() - MAX_LISTED));
        }
        lines.join("\n")
    }

    /// The silences in force, one line each (`silences` in chat), or `No silences.`
    pub fn list_silences(&self, now: f64) -> String {
        let active: Vec<String> = self
            .silences
            .iter()
            .filter(|s| s.until > now)
            .map(|s| {
                let mut line = format!(
                    "s{} {} for {} more, by {}",
                    s.id,
                    s.matcher,
                    format::duration(s.until - now),
                    s.by
                );
                if !s.comment.is_empty() {
                    let _ = write!(line, ": {}", s.comment);
                }
                line
            })
            .collect();
        if active.is_empty() {
            "No silences.".to_owned()
        } else {
            active.join("\n")
        }
    }

    fn list_history(&self, count: usize, now: f64) -> String {
        if self.history.is_empty() {
            return "No history yet.".to_owned();
        }
        let skip = self.history.len().saturating_sub(count);
        self.history
            .iter()
            .skip(skip)
            .map(|h| format!("{} ago: {}", format::duration(now - h.at), h.text))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn severity_rank(s: Severity) -> u8 {
    match s {
        Severity::Info => 0,
        Severity::Warning => 1,
        Severity::Critical => 2,
    }
}

fn targets(route: &Route) -> Vec<Target> {
    route
        .rooms
        .iter()
        .map(|r| Target::Room(r.clone()))
        .chain(route.users.iter().map(|u| Target::User(u.clone())))
        .collect()
}

/// `n` and the noun in the number `n` takes: `1 rule`, `0 rules`.
fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::collector::{self, Signal};
    use crate::alerts::rule::{validate_rules, AlertingSection, RuleConfig};
    use crate::collectors::Change;
    use jabmon_shared::payload::CollectorState as Status;
    use jabmon_shared::payload::{Event, EventKind};

    const ROOM: &str = "ops@conference.example.org";
    const ALICE: &str = "alice@example.org";

    fn cpu_rule() -> RuleConfig {
        RuleConfig {
            name: "cpu-high".into(),
            query: r"SELECT [< 10] FROM ^web.*\.cpu\.cpu\.idle$".into(),
            severity: Some("critical".into()),
            for_: Some("5m".into()),
            repeat: Some("1h".into()),
            unit: Some("%".into()),
            rooms: vec![ROOM.into()],
            ..RuleConfig::default()
        }
    }

    fn settings(group_wait: &str) -> Settings {
        AlertingSection {
            group_wait: group_wait.into(),
            collector_rooms: vec![ROOM.into()],
            ..AlertingSection::default()
        }
        .validate()
        .unwrap()
    }

    fn book_with(rules: &[RuleConfig], settings: Settings) -> Alerts {
        let limits = Limits::default();
        let rules = validate_rules(rules, &settings, &limits).unwrap();
        Alerts::new(settings, limits, rules, 1_000.0).unwrap()
    }

    fn book(rules: &[RuleConfig]) -> Alerts {
        book_with(rules, settings("0"))
    }

    fn sent(actions: &[Action]) -> Vec<(Target, String)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(o) => Some((o.to.clone(), o.body.clone())),
                Action::Save => None,
            })
            .collect()
    }

    fn bodies(actions: &[Action]) -> Vec<String> {
        sent(actions).into_iter().map(|(_, b)| b).collect()
    }

    fn message_id(actions: &[Action]) -> String {
        actions
            .iter()
            .find_map(|a| match a {
                Action::Send(o) => Some(o.id.clone()),
                Action::Save => None,
            })
            .expect("a message")
    }

    fn alice(allowed: bool) -> Sender {
        Sender {
            who: ALICE.into(),
            reply_to: Target::Room(ROOM.into()),
            allowed,
            queries: 0,
        }
    }

    fn command(b: &mut Alerts, sender: &Sender, body: &str, now: f64) -> Vec<Action> {
        let cmd = chat::parse(body, &Limits::default()).unwrap().unwrap();
        b.on_command(sender, cmd, now)
    }

    /// Fires `web1` at t = 0..=300 (hub clock = event time); returns the actions of the firing.
    fn fire_web1(b: &mut Alerts) -> Vec<Action> {
        assert!(sent(&b.on_metric("web1.cpu.cpu.idle", 0.0, 3.2, 0.0)).is_empty());
        b.on_metric("web1.cpu.cpu.idle", 300.0, 3.2, 300.0)
    }

    #[test]
    fn a_rule_fires_once_and_resolves_with_readable_lines() {
        let mut b = book(&[cpu_rule()]);
        assert!(b.on_metric("db1.cpu.cpu.idle", 0.0, 1.0, 0.0).is_empty());
        // A passing value that never fired leaves no state behind.
        assert!(b.on_metric("web2.cpu.cpu.idle", 0.0, 50.0, 0.0).is_empty());
        assert!(b
            .series
            .get("cpu-high")
            .is_none_or(|m| !m.contains_key("web2.cpu.cpu.idle")));
        let actions = fire_web1(&mut b);
        assert_eq!(
            sent(&actions),
            [(
                Target::Room(ROOM.into()),
                "🔥 web1 cpu idle 3.2 % < 10 % for 5 min (cpu-high) #1".into()
            )]
        );
        assert!(actions.contains(&Action::Save));
        for t in [310.0, 320.0, 330.0] {
            assert!(sent(&b.on_metric("web1.cpu.cpu.idle", t, 2.0, t)).is_empty());
        }
        assert!(sent(&b.on_metric("web1.cpu.cpu.idle", 420.0, 45.0, 420.0)).is_empty());
        assert_eq!(b.open_alerts().count(), 1);
        let actions = b.on_metric("web1.cpu.cpu.idle", 720.0, 45.0, 720.0);
        assert_eq!(
            bodies(&actions),
            ["✅ web1 cpu idle back to 45 % after 12 min (cpu-high)"]
        );
        assert_eq!(b.open_alerts().count(), 0);
    }

    #[test]
    fn many_series_at_once_become_one_grouped_message() {
        let rule = RuleConfig {
            for_: None,
            users: vec![ALICE.into()],
            ..cpu_rule()
        };
        let mut b = book_with(&[rule], settings("10s"));
        for i in 0..50 {
            let name = format!("web{i:02}.cpu.cpu.idle");
            assert!(sent(&b.on_metric(&name, 0.0, 1.0 + i as f64 / 10.0, 0.0)).is_empty());
        }
        assert!(sent(&b.tick(9.0)).is_empty());
        let actions = b.tick(10.0);
        let text = "🔥 50 firing (cpu-high): web00 cpu idle 1 %, web01 cpu idle 1.1 %, web02 cpu idle 1.2 % and 47 more #1–#50";
        assert_eq!(
            sent(&actions),
            [
                (Target::Room(ROOM.into()), text.to_owned()),
                (Target::User(ALICE.into()), text.to_owned()),
            ]
        );
        // A reply to the grouped message acks all fifty.
        let id = message_id(&actions);
        let acks = b.on_reply(&alice(true), &id, 20.0).unwrap();
        assert_eq!(
            bodies(&acks)[0],
            "👀 alice@example.org acked 50 alerts: #1–#50"
        );
        assert!(b.open_alerts().all(|a| a.ack.is_some()));
        // Recovery of all of them: one grouped message too, after the wait.
        for i in 0..50 {
            b.on_metric(&format!("web{i:02}.cpu.cpu.idle"), 30.0, 50.0, 30.0);
        }
        let actions = b.tick(40.0);
        assert_eq!(
            bodies(&actions)[0],
            "✅ 50 resolved (cpu-high): web00 cpu idle, web01 cpu idle, web02 cpu idle and 47 more"
        );
    }

    #[test]
    fn an_alert_closed_before_it_was_told_is_never_told() {
        let rule = RuleConfig {
            for_: None,
            ..cpu_rule()
        };
        let mut b = book_with(&[rule], settings("10s"));
        assert!(sent(&b.on_metric("web1.cpu.cpu.idle", 0.0, 1.0, 0.0)).is_empty());
        assert!(sent(&b.on_metric("web1.cpu.cpu.idle", 5.0, 50.0, 5.0)).is_empty());
        assert!(sent(&b.tick(10.0)).is_empty());
        assert!(sent(&b.tick(20.0)).is_empty());
        // It is in the history all the same.
        let h = bodies(&command(&mut b, &alice(false), "history", 30.0)).remove(0);
        assert_eq!(h.lines().count(), 2, "{h}");
    }

    #[test]
    fn repeats_until_acked_by_id() {
        let mut b = book(&[cpu_rule()]);
        fire_web1(&mut b);
        assert!(sent(&b.tick(300.0 + 3599.0)).is_empty());
        let actions = b.tick(300.0 + 3600.0);
        assert_eq!(
            bodies(&actions),
            ["🔥 web1 cpu idle 3.2 % < 10 % for 1 h 5 min (cpu-high) #1"]
        );
        let actions = command(&mut b, &alice(true), "ack 1", 4000.0);
        assert_eq!(
            sent(&actions),
            [(
                Target::Room(ROOM.into()),
                "👀 alice@example.org acked #1 web1 cpu idle (cpu-high)".into()
            )]
        );
        assert!(actions.contains(&Action::Save));
        for now in [8000.0, 20_000.0] {
            assert!(sent(&b.tick(now)).is_empty(), "acked alerts do not repeat");
        }
        let again = command(&mut b, &alice(true), "ack 1 9", 20_001.0);
        assert_eq!(
            bodies(&again),
            ["❌ #1 was acked by alice@example.org; #9 is not open"]
        );
    }

    #[test]
    fn a_flapping_series_is_held_with_one_message() {
        let rule = RuleConfig {
            for_: None,
            ..cpu_rule()
        };
        let mut b = book(&[rule]);
        let mut messages = Vec::new();
        for i in 0..40 {
            let t = i as f64 * 10.0;
            let v = if i % 2 == 0 { 1.0 } else { 50.0 };
            messages.extend(bodies(&b.on_metric("web1.cpu.cpu.idle", t, v, t)));
        }
        let flapping: Vec<&String> = messages.iter().filter(|m| m.starts_with("🔁")).collect();
        assert_eq!(
            flapping,
            ["🔁 web1 cpu idle is flapping: more than 6 changes in 10 min; held open until it settles (cpu-high) #4"]
        );
        // Six changes told (three opens, three recoveries), then one flapping message.
        assert_eq!(messages.len(), 7, "{messages:#?}");
        assert_eq!(b.open_alerts().count(), 1);
        // Quiet for a flap window while passing: the held alert resolves.
        assert!(sent(&b.tick(390.0 + 599.0)).is_empty());
        let actions = b.tick(390.0 + 601.0);
        assert_eq!(bodies(&actions).len(), 1);
        assert!(bodies(&actions)[0].starts_with("✅ web1 cpu idle back to 50 %"));
        assert_eq!(b.open_alerts().count(), 0);
    }

    #[test]
    fn each_route_target_is_rate_limited_and_told_what_was_held() {
        let s = AlertingSection {
            group_wait: "0".into(),
            route_per_minute: 6,
            route_burst: 2,
            ..AlertingSection::default()
        }
        .validate()
        .unwrap();
        let rules: Vec<RuleConfig> = (0..5)
            .map(|i| RuleConfig {
                name: format!("r{i}"),
                query: format!("SELECT [> 0] FROM ^m{i}$"),
                rooms: vec![ROOM.into()],
                ..RuleConfig::default()
            })
            .collect();
        let mut b = book_with(&rules, s);
        let mut told = 0;
        for i in 0..5 {
            told += sent(&b.on_metric(&format!("m{i}"), 0.0, 1.0, 0.0)).len();
        }
        assert_eq!(told, 2);
        assert!(sent(&b.tick(9.0)).is_empty(), "no token yet");
        assert_eq!(
            bodies(&b.tick(10.0)),
            ["⏸ 3 alert messages here were held back by the rate limit (6 per minute); `alerts` lists what is open"]
        );
        // Command replies are answers, not alerts: never limited.
        for _ in 0..5 {
            assert_eq!(
                sent(&command(&mut b, &alice(true), "alerts", 11.0)).len(),
                1
            );
        }
    }

    #[test]
    fn silences_suppress_until_they_expire_and_are_listed() {
        let rule = RuleConfig {
            for_: None,
            repeat: Some("never".into()),
            ..cpu_rule()
        };
        let mut b = book(&[rule]);
        let reply = command(&mut b, &alice(true), "silence 2h web1.* kernel update", 0.0);
        assert_eq!(
            bodies(&reply),
            ["🔕 silence s1 on web1.* for 2 h by alice@example.org (no open alert matches): kernel update"]
        );
        assert!(sent(&b.on_metric("web1.cpu.cpu.idle", 10.0, 1.0, 10.0)).is_empty());
        assert_eq!(
            bodies(&b.on_metric("web2.cpu.cpu.idle", 10.0, 1.0, 10.0)),
            ["🔥 web2 cpu idle 1 % < 10 % (cpu-high) #2"]
        );
        assert_eq!(
            bodies(&command(&mut b, &alice(false), "silences", 60.0)),
            ["s1 web1.* for 1 h 59 min more, by alice@example.org: kernel update"]
        );
        let listing = bodies(&command(&mut b, &alice(false), "alerts", 60.0)).remove(0);
        assert!(
            listing.contains("#1 🔥 web1 cpu idle 1 % (cpu-high) for 50 s · silenced"),
            "{listing}"
        );
        // Expiry: the alert that opened under the silence is told now.
        assert!(sent(&b.tick(7199.0)).is_empty());
        let actions = b.tick(7200.0);
        assert_eq!(
            bodies(&actions),
            ["🔥 web1 cpu idle 1 % < 10 % for 1 h 59 min (cpu-high) #1"]
        );
        assert!(b.silences().is_empty());
        assert_eq!(
            bodies(&command(&mut b, &alice(false), "silences", 7300.0)),
            ["No silences."]
        );
        // A silence by rule name, removed by hand.
        command(&mut b, &alice(true), "silence 1h cpu-high", 7400.0);
        assert!(b.silenced("cpu-high", "web9.cpu.cpu.idle", 7401.0));
        assert_eq!(
            bodies(&command(&mut b, &alice(true), "unsilence s2", 7402.0)),
            ["🔔 silence s2 on cpu-high removed by alice@example.org"]
        );
        assert_eq!(
            bodies(&command(&mut b, &alice(true), "unsilence 2", 7403.0)),
            ["❌ no silence s2"]
        );
        assert_eq!(
            bodies(&command(&mut b, &alice(true), "silence 400d x", 7404.0)),
            ["❌ a silence may last at most 30 d"]
        );
    }

    #[test]
    fn only_allowed_senders_ack_silence_or_define() {
        let mut b = book(&[cpu_rule()]);
        let actions = fire_web1(&mut b);
        let id = message_id(&actions);
        let refusal =
            "⛔ alice@example.org may not ack, silence or define alerts: only the hub's users and admins may";
        for body in [
            "ack 1",
            "silence 1h *",
            "unsilence 1",
            "ALERT x SELECT id FROM a",
            "drop alert cpu-high",
        ] {
            let out = command(&mut b, &alice(false), body, 400.0);
            assert_eq!(
                sent(&out),
                [(Target::Room(ROOM.into()), refusal.to_owned())],
                "{body}"
            );
        }
        assert_eq!(
            bodies(&b.on_reply(&alice(false), &id, 400.0).unwrap()),
            [refusal]
        );
        assert_eq!(
            bodies(
                &b.on_reaction(&alice(false), &id, &["👍".into()], 400.0)
                    .unwrap()
            ),
            [refusal]
        );
        assert!(b.open_alerts().all(|a| a.ack.is_none()));
        assert!(b.silences().is_empty());
        // Reading is open to everyone.
        assert_eq!(
            bodies(&command(&mut b, &alice(false), "history 1", 400.0)).len(),
            1
        );
    }

    #[test]
    fn ack_by_reaction_and_by_reply_to_the_rooms_stanza_id() {
        let mut b = book(&[cpu_rule()]);
        let actions = fire_web1(&mut b);
        let ours = message_id(&actions);
        assert!(ours.starts_with("jabmon-alert-3e8-"), "{ours}");
        b.note_stanza_id(&ours, "room-assigned-1");
        assert_eq!(b.on_reply(&alice(true), "some-other-message", 301.0), None);
        // Withdrawing reactions acks nothing.
        assert_eq!(b.on_reaction(&alice(true), &ours, &[], 301.0), Some(vec![]));
        let out = b
            .on_reaction(&alice(true), "room-assigned-1", &["👀".into()], 302.0)
            .unwrap();
        assert_eq!(
            bodies(&out),
            ["👀 alice@example.org acked #1 web1 cpu idle (cpu-high)"]
        );
        assert_eq!(
            b.open_alerts().next().unwrap().ack.as_ref().unwrap().by,
            ALICE
        );
        // Acking again by reply says so to the asker.
        let out = b.on_reply(&alice(true), &ours, 303.0).unwrap();
        assert_eq!(bodies(&out), ["❌ #1 was acked by alice@example.org"]);
        // A 1:1 ack is also answered to the asker when the alert went to a room only.
        let mut b = book(&[cpu_rule()]);
        fire_web1(&mut b);
        let bob = Sender {
            who: "bob@example.org".into(),
            reply_to: Target::User("bob@example.org".into()),
            allowed: true,
            queries: 0,
        };
        let targets: Vec<Target> = sent(&command(&mut b, &bob, "ack #1", 301.0))
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(
            targets,
            [
                Target::User("bob@example.org".into()),
                Target::Room(ROOM.into())
            ]
        );
    }

    fn event(kind: EventKind) -> Event {
        Event {
            host: "web1".into(),
            timestamp: 0.0,
            kind,
            severity: None,
            boot: None,
            metric: None,
            command: None,
            text: None,
        }
    }

    fn status_change(from: Status, to: Status) -> Signal {
        collector::from_status(&Change {
            jid: "web1@example.org".parse().unwrap(),
            host: "web1".into(),
            from,
            to,
        })
        .unwrap()
    }

    fn dead_signal() -> Signal {
        status_change(Status::Alive, Status::Dead)
    }

    fn alive_signal() -> Signal {
        status_change(Status::Dead, Status::Alive)
    }

    #[test]
    fn collector_events_open_and_resolve_without_rules() {
        let mut b = book(&[]);
        let mut out = Vec::new();
        for s in collector::from_event(&event(EventKind::Stopping)) {
            out.extend(bodies(&b.on_collector(s, 0.0)));
        }
        let dead = crate::collectors::Change {
            jid: "web1@example.org".parse().unwrap(),
            host: "web1".into(),
            from: jabmon_shared::payload::CollectorState::Alive,
            to: jabmon_shared::payload::CollectorState::Dead,
        };
        out.extend(bodies(
            &b.on_collector(collector::from_status(&dead).unwrap(), 5.0),
        ));
        assert_eq!(out, ["⚠️ web1 collector stopping (collector) #1"]);
        assert_eq!(b.open_alerts().next().unwrap().severity, Severity::Critical);
        let mut out = Vec::new();
        for s in collector::from_event(&event(EventKind::Rebooted)) {
            out.extend(bodies(&b.on_collector(s, 180.0)));
        }
        assert_eq!(
            out,
            [
                "ℹ️ web1 rebooted (collector)",
                "✅ web1 collector started after a reboot after 3 min (collector)"
            ]
        );
        // A threshold crossing and its clearing.
        let open = Signal::Open {
            source: collector::THRESHOLD,
            series: "web1.df-root.percent.used".into(),
            severity: Severity::Warning,
            value: Some(93.1),
            text: "disk / above 90% (93.1%)".into(),
        };
        assert_eq!(
            bodies(&b.on_collector(open, 200.0)),
            ["⚠️ web1 disk / above 90% (93.1%) (threshold) #2"]
        );
        let resolve = Signal::Resolve {
            source: collector::THRESHOLD,
            series: "web1.df-root.percent.used".into(),
            value: Some(84.0),
            text: "disk / back below 85% (84.0%)".into(),
        };
        assert_eq!(
            bodies(&b.on_collector(resolve, 260.0)),
            ["✅ web1 disk / back below 85% (84.0%) after 1 min (threshold)"]
        );
    }

    #[test]
    fn absent_rules_fire_on_the_clock() {
        let rule = RuleConfig {
            name: "gone".into(),
            query: r"SELECT absent 1m FROM jabmon\.status\.alive$".into(),
            message: Some("{icon} {host} silent for {duration} ({rule}) #{id}".into()),
            rooms: vec![ROOM.into()],
            ..RuleConfig::default()
        };
        let mut b = book(&[rule]);
        assert!(sent(&b.on_metric("web1.jabmon.status.alive", 0.0, 1.0, 0.0)).is_empty());
        // `absent` counts on the hub's clock from the first tick after the event.
        assert!(sent(&b.tick(1.0)).is_empty());
        assert!(sent(&b.tick(60.0)).is_empty());
        assert_eq!(bodies(&b.tick(61.0)), ["⚠️ web1 silent for 0 s (gone) #1"]);
        let back = b.on_metric("web1.jabmon.status.alive", 91.0, 1.0, 91.0);
        assert_eq!(
            bodies(&back),
            ["✅ web1 jabmon status alive back to 1 after 30 s (gone)"]
        );
    }

    #[test]
    fn windowed_procs_are_judged_per_window() {
        let rule = RuleConfig {
            name: "mean-low".into(),
            query: r"SELECT window 3 (mean) | [< 10] FROM idle$".into(),
            rooms: vec![ROOM.into()],
            ..RuleConfig::default()
        };
        let mut b = book(&[rule]);
        let feed = |b: &mut Alerts, t: f64, v: f64| bodies(&b.on_metric("web1.idle", t, v, t));
        assert!(feed(&mut b, 0.0, 1.0).is_empty());
        assert!(feed(&mut b, 1.0, 2.0).is_empty());
        assert_eq!(
            feed(&mut b, 2.0, 3.0),
            ["⚠️ web1 idle 2 < 10 (mean-low) #1"]
        );
        // The next window filling up is no news, however high its values.
        assert!(feed(&mut b, 3.0, 30.0).is_empty());
        assert!(feed(&mut b, 4.0, 60.0).is_empty());
        assert_eq!(b.open_alerts().count(), 1);
        // Its mean is judged when it is full, and is the value told.
        assert_eq!(
            feed(&mut b, 5.0, 90.0),
            ["✅ web1 idle back to 60 after 3 s (mean-low)"]
        );
    }

    #[test]
    fn saved_state_restores_without_firing_again() {
        let mut b = book(&[cpu_rule()]);
        fire_web1(&mut b);
        let bob = Sender {
            who: "bob@example.org".into(),
            reply_to: Target::User("bob@example.org".into()),
            allowed: true,
            queries: 0,
        };
        command(
            &mut b,
            &bob,
            "ALERT load-high FOR 1m SELECT [> 4] FROM load$",
            301.0,
        );
        command(&mut b, &alice(true), "silence 1d db*", 302.0);
        command(&mut b, &alice(true), "ack 1", 303.0);
        let json = serde_json::to_string(&b.save()).unwrap();
        let saved: SavedAlerts = serde_json::from_str(&json).unwrap();
        assert_eq!(saved, b.save());

        let mut fresh = book(&[cpu_rule()]);
        assert!(fresh.restore(saved, 1000.0).is_empty());
        assert_eq!(fresh.rules_of("bob@example.org"), 1);
        assert_eq!(fresh.silences().len(), 1);
        assert!(sent(&fresh.tick(1000.0)).is_empty());
        // Still firing: nothing told again.
        assert!(sent(&fresh.on_metric("web1.cpu.cpu.idle", 1001.0, 2.0, 1001.0)).is_empty());
        // Passing within the grace (the pipelines refill) does not count towards `for`.
        for t in [1100.0, 1299.0] {
            assert!(sent(&fresh.on_metric("web1.cpu.cpu.idle", t, 50.0, t)).is_empty());
        }
        assert!(sent(&fresh.on_metric("web1.cpu.cpu.idle", 1400.0, 50.0, 1400.0)).is_empty());
        assert_eq!(fresh.open_alerts().count(), 1);
        assert_eq!(
            fresh.open_alerts().next().unwrap().ack.as_ref().unwrap().by,
            ALICE
        );
        // After it, a real recovery is told.
        let out = fresh.on_metric("web1.cpu.cpu.idle", 1700.0, 50.0, 1700.0);
        assert_eq!(
            bodies(&out),
            ["✅ web1 cpu idle back to 50 % after 28 min (cpu-high)"]
        );
        // New alerts get new ids; the restored chat rule works and goes to its owner.
        fresh.on_metric("web3.load", 1700.0, 5.0, 1700.0);
        let out = fresh.on_metric("web3.load", 1760.0, 5.0, 1760.0);
        assert_eq!(
            sent(&out),
            [(
                Target::User("bob@example.org".into()),
                "⚠️ web3 load 5 > 4 for 1 min (load-high) #2".into()
            )]
        );
        // A restored collector alert resolves by its signal, and its series is then forgotten.
        let mut c = book(&[]);
        c.on_collector(dead_signal(), 0.0);
        let mut c2 = book(&[]);
        assert!(c2.restore(c.save(), 100.0).is_empty());
        let out = c2.on_collector(alive_signal(), 160.0);
        assert_eq!(
            bodies(&out),
            ["✅ web1 collector alive after 2 min (collector)"]
        );
        c2.tick(160.0 + 601.0);
        assert!(c2.series.is_empty(), "{:?}", c2.series);
        // What cannot come back is said.
        let mut lost = book(&[]);
        let problems = lost.restore(b.save(), 1000.0);
        assert_eq!(
            problems,
            ["open alert #1 of rule cpu-high: the rule is gone"]
        );
    }

    #[test]
    fn chat_rules_belong_to_their_owner_and_count() {
        let s = AlertingSection {
            group_wait: "0".into(),
            max_rules_per_user: 1,
            ..AlertingSection::default()
        }
        .validate()
        .unwrap();
        let mut b = book_with(&[cpu_rule()], s);
        let bob = Sender {
            who: "bob@example.org".into(),
            reply_to: Target::User("bob@example.org".into()),
            allowed: true,
            queries: 0,
        };
        let out = command(&mut b, &bob, "ALERT mine SELECT [> 1] FROM ^x$", 0.0);
        assert_eq!(
            bodies(&out),
            ["📝 rule mine saved: ALERT mine SEVERITY warning REPEAT 14400s ROUTE USER bob@example.org SELECT [> 1] FROM ^x$;"]
        );
        // Replacing one's own rule is not a new one.
        let out = command(&mut b, &bob, "ALERT mine FOR 1m SELECT [> 2] FROM ^x$", 1.0);
        assert!(bodies(&out)[0].starts_with("📝 rule mine saved"), "{out:?}");
        assert_eq!(
            bodies(&command(&mut b, &bob, "ALERT other SELECT id FROM y", 2.0)),
            ["❌ too many rules: the limit is 1 per user"]
        );
        assert_eq!(
            bodies(&command(
                &mut b,
                &bob,
                "ALERT cpu-high SELECT id FROM y",
                2.0
            )),
            ["❌ rule cpu-high comes from hub.toml"]
        );
        assert_eq!(
            bodies(&command(&mut b, &alice(true), "DROP ALERT mine", 3.0)),
            ["❌ rule mine belongs to bob@example.org"]
        );
        assert_eq!(
            bodies(&command(&mut b, &bob, "ALERT bad REPEAT 5s SELECT id FROM (", 3.0)),
            ["❌ alert `bad`: invalid regex: unclosed group; alert `bad`: repeat `5s` is shorter than one minute"]
        );
        let rules = bodies(&command(&mut b, &alice(false), "rules", 4.0)).remove(0);
        assert_eq!(rules.lines().count(), 2, "{rules}");
        assert!(rules.contains("(by bob@example.org)") && rules.contains("(hub.toml)"));
        assert_eq!(
            bodies(&command(&mut b, &bob, "drop alert mine", 5.0)),
            ["🗑 rule mine dropped"]
        );
        assert_eq!(b.rules_of("bob@example.org"), 0);
        assert!(b.on_metric("x", 6.0, 9.0, 6.0).is_empty());
        // Rules and queries share the query limit.
        let full = Limits::default().max_queries_per_user;
        let busy = Sender {
            queries: full - 1,
            ..bob.clone()
        };
        assert!(
            bodies(&command(&mut b, &busy, "ALERT one SELECT id FROM y", 7.0))[0]
                .starts_with("📝 rule one saved")
        );
        let full_up = Sender {
            queries: full,
            ..bob
        };
        assert_eq!(
            bodies(&command(&mut b, &full_up, "ALERT one SELECT id FROM z", 8.0)),
            ["📝 rule one saved: ALERT one SEVERITY warning REPEAT 14400s ROUTE USER bob@example.org SELECT id FROM z;"],
            "replacing a rule takes no new place"
        );
        command(&mut b, &busy, "DROP ALERT one", 9.0);
        assert_eq!(
            bodies(&command(&mut b, &full_up, "ALERT two SELECT id FROM y", 10.0)),
            [format!("❌ too many queries and alert rules: the limit is {full} per user ({full} queries, 0 rules)")]
        );
    }

    #[test]
    fn history_and_listings() {
        let mut b = book(&[cpu_rule()]);
        assert_eq!(
            bodies(&command(&mut b, &alice(false), "alerts", 0.0)),
            ["No open alerts."]
        );
        assert_eq!(
            bodies(&command(&mut b, &alice(false), "history", 0.0)),
            ["No history yet."]
        );
        fire_web1(&mut b);
        command(&mut b, &alice(true), "ack 1", 360.0);
        let h = bodies(&command(&mut b, &alice(false), "history 5", 420.0)).remove(0);
        assert_eq!(
            h,
            "2 min ago: 🔥 web1 cpu idle 3.2 % < 10 % for 5 min (cpu-high) #1\n1 min ago: 👀 alice@example.org acked #1 web1 cpu idle (cpu-high)"
        );
        let h = bodies(&command(&mut b, &alice(false), "history 1", 420.0)).remove(0);
        assert_eq!(h.lines().count(), 1);
        let a = bodies(&command(&mut b, &alice(false), "alerts", 420.0)).remove(0);
        assert_eq!(
            a,
            "#1 🔥 web1 cpu idle 3.2 % (cpu-high) for 7 min · acked by alice@example.org"
        );
    }
}
