//! The engine the hub drives: requests in, replies out; events in, per-user outputs out.
//!
//! Matching an event is one lookup in the name cache (`names`): the first time a name is seen,
//! the chunked `RegexSet`s answer which registrations match it, and the answer is cached per
//! name — as an entry with the pipeline state of each (registration, name) pair, or as
//! "nothing tracks it", which costs a few bytes. Adding a registration tests its one regex
//! against the cached names; deleting one removes its states. The cache and the states are
//! bounded by [`Limits::max_names`] and [`Limits::max_names_per_registration`].

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::command::{self, Format, Statement};
use super::error::QueryError;
use super::eval::{self, PipeState};
use super::key::{self, MIN_PREFIX};
use super::matcher::{self, Matcher};
use super::names::{Lookup, NameCache};
use super::people;
use super::proc::Proc;
use super::registry::{RegId, Registration, RegistrationTable};
use super::reply::{self, Reply};

/// Input limits (docs/protocol.md §7) and state bounds. Over an input limit: 413.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest proc, in characters of its canonical text.
    pub max_proc_chars: usize,
    /// Most stages in a proc, counting those inside window bodies.
    pub max_proc_stages: usize,
    /// Longest regex, in bytes.
    pub max_regex_bytes: usize,
    /// Compiled-size limit of one regex (`regex::RegexBuilder::size_limit`), in bytes.
    pub regex_size_limit: usize,
    /// Registrations per bare JID (`hub.max_queries_per_user`).
    pub max_queries_per_user: usize,
    /// Distinct event names tracked; events of further new names are dropped and counted.
    pub max_names: usize,
    /// Distinct event names one registration keeps state for; further names are ignored by
    /// that registration and counted.
    pub max_names_per_registration: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 4096,
            max_proc_chars: 1024,
            max_proc_stages: 64,
            max_regex_bytes: 1024,
            regex_size_limit: 256 * 1024,
            max_queries_per_user: 100,
            max_names: 1_000_000,
            max_names_per_registration: 100_000,
        }
    }
}

/// One output event for one user's registration.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The owner's bare JID.
    pub user: Arc<str>,
    pub key: Arc<str>,
    /// The name of the event that produced it.
    pub name: Arc<str>,
    /// The timestamp of the event that triggered it (for `absent`: the tick's clock).
    pub timestamp: f64,
    pub value: f64,
}

impl Output {
    /// The message body the hub sends for this output.
    pub fn message_body(&self) -> String {
        reply::event_message(&self.key, &self.name, self.timestamp, self.value)
    }
}

/// A registration as persisted by the hub: re-parsed by [`Engine::restore`] at start-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    pub user: String,
    /// The canonical command, `SELECT <proc> FROM <regex>;`.
    pub cmd: String,
    pub key: String,
}

/// Counters of what the bounds cut off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Untracked {
    /// Events dropped because their name was new and `max_names` names were tracked.
    pub events: u64,
    /// (registration, name) pairs not tracked because of `max_names_per_registration`.
    pub pairs: u64,
}

#[derive(Debug)]
pub struct Engine {
    limits: Limits,
    registry: RegistrationTable,
    matcher: Matcher,
    names: NameCache,
    /// The names some registration tracks, indexed by the cache's entry numbers.
    entries: Vec<NameEntry>,
    /// Per registration id: how many names it keeps state for.
    tracked: Vec<usize>,
    /// Registrations whose proc has `absent` (ticks are free while there are none).
    absent_regs: usize,
    untracked: Untracked,
    scratch: Vec<RegId>,
    /// Users who chose `FORMAT text` (everyone else gets JSON).
    text_users: HashSet<Arc<str>>,
    /// Bumped whenever what [`Engine::registrations`] returns changes (so it is saved).
    saved_version: u64,
}

#[derive(Debug)]
struct NameEntry {
    name: Arc<str>,
    slots: Vec<Slot>,
}

#[derive(Debug)]
struct Slot {
    reg: Arc<Registration>,
    state: PipeState,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new(Limits::default())
    }
}

impl Engine {
    pub fn new(limits: Limits) -> Self {
        Engine {
            matcher: Matcher::new(&limits),
            limits,
            registry: RegistrationTable::default(),
            names: NameCache::default(),
            entries: Vec::new(),
            tracked: Vec::new(),
            absent_regs: 0,
            untracked: Untracked::default(),
            scratch: Vec::new(),
            text_users: HashSet::new(),
            saved_version: 0,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn untracked(&self) -> &Untracked {
        &self.untracked
    }

    /// Number of registrations of all users.
    pub fn len(&self) -> usize {
        self.registry.len()
    }

    pub fn is_empty(&self) -> bool {
        self.registry.len() == 0
    }

    /// Number of distinct event names seen and cached.
    pub fn names_tracked(&self) -> usize {
        self.names.len()
    }

    /// Changes whenever the state to persist ([`Engine::registrations`]) changes.
    pub fn saved_version(&self) -> u64 {
        self.saved_version
    }

    /// How `user`'s events and replies are written.
    pub fn format(&self, user: &str) -> Format {
        match self.text_users.contains(user) {
            true => Format::Text,
            false => Format::Json,
        }
    }

    fn set_format(&mut self, user: &str, format: Format) {
        let changed = match format {
            Format::Text => self.text_users.insert(user.into()),
            Format::Json => self.text_users.remove(user),
        };
        if changed {
            self.saved_version += 1;
        }
    }

    /// The message body answering `reply` for `user`: the usage text for `help`, otherwise
    /// the reply in the user's format (JSON unless they chose `FORMAT text`).
    pub fn render(&self, user: &str, reply: &Reply) -> String {
        if let Some(help) = people::help_of(reply) {
            return help.to_string();
        }
        match self.format(user) {
            Format::Json => reply.to_json(),
            Format::Text => people::reply_text(reply, key::short_keys),
        }
    }

    /// The message body of an output event, in its owner's format.
    pub fn event_body(&self, o: &Output) -> String {
        match self.format(&o.user) {
            Format::Json => o.message_body(),
            Format::Text => people::event_line(&o.name, o.timestamp, o.value),
        }
    }

    /// The message body reporting `dropped` events of `key`, in `user`'s format.
    pub fn dropped_body(&self, user: &str, key: &str, dropped: u64) -> String {
        match self.format(user) {
            Format::Json => reply::dropped_message(key, dropped),
            Format::Text => people::dropped_line(key, dropped),
        }
    }

    /// Answers one request body from `user` (a bare JID the hub has authorised).
    pub fn handle(&mut self, user: &str, body: &str) -> Reply {
        self.handle_holding(user, body, 0)
    }

    /// [`Engine::handle`] for a user who already holds `elsewhere` registrations outside this
    /// engine (the hub's chat alert rules), counted against `max_queries_per_user` too.
    pub fn handle_holding(&mut self, user: &str, body: &str, elsewhere: usize) -> Reply {
        if body.len() > self.limits.max_body_bytes {
            let err = QueryError::TooLarge {
                what: "request body (bytes)",
                limit: self.limits.max_body_bytes,
            };
            // Echo no more than the limit: a reply is never much larger than what is allowed in.
            let mut end = self.limits.max_body_bytes;
            while !body.is_char_boundary(end) {
                end -= 1;
            }
            return Reply::error(&body[..end], &err);
        }
        match self.execute(user, body, elsewhere) {
            Ok(results) => Reply::ok(body, results),
            Err(e) => Reply::error(body, &e),
        }
    }

    fn execute(&mut self, user: &str, body: &str, elsewhere: usize) -> Result<Value, QueryError> {
        match command::parse(body, &self.limits)? {
            Statement::List => Ok(Value::Array(
                self.list(user)
                    .into_iter()
                    .map(|(cmd, key)| json!({"cmd": cmd, "key": key}))
                    .collect(),
            )),
            Statement::Register {
                proc,
                regex,
                regex_column,
            } => {
                let key = self.register(user, proc, regex, regex_column, Some(elsewhere))?;
                Ok(json!({ "key": key }))
            }
            Statement::DeleteAll => Ok(Value::Array(
                self.delete_all(user)
                    .into_iter()
                    .map(|key| json!({ "key": key }))
                    .collect(),
            )),
            Statement::Delete { key } => {
                let key = self.delete(user, &key)?;
                Ok(json!({ "key": key }))
            }
            Statement::Format(format) => {
                self.set_format(user, format);
                Ok(json!({ "format": format.as_str() }))
            }
            Statement::Help => Ok(json!({ "help": people::HELP })),
        }
    }

    /// How many registrations `user` holds.
    pub fn count_of(&self, user: &str) -> usize {
        self.registry.of_user(user).len()
    }

    /// The user's registrations as (canonical command, key), in registration order.
    pub fn list(&self, user: &str) -> Vec<(String, String)> {
        self.registry
            .of_user(user)
            .iter()
            .filter_map(|id| self.registry.get(*id))
            .map(|r| (r.cmd(), r.key.to_string()))
            .collect()
    }

    /// Deletes one registration of `user`, named by its key or by a prefix of at least
    /// [`MIN_PREFIX`] hex digits that only one of the user's keys starts with; returns the full
    /// key. 404 if the user has no such key, 400 (listing them) if several keys start so.
    pub fn delete(&mut self, user: &str, key: &str) -> Result<String, QueryError> {
        let key = key.to_ascii_lowercase();
        let id = match self.registry.find(user, &key) {
            Some(id) => id,
            None => self.find_prefix(user, &key)?,
        };
        let full = self
            .registry
            .get(id)
            .map(|r| r.key.to_string())
            .unwrap_or(key);
        self.remove_ids(&[id]);
        Ok(full)
    }

    fn find_prefix(&self, user: &str, prefix: &str) -> Result<RegId, QueryError> {
        let not_found = || QueryError::NoSuchKey {
            key: prefix.to_owned(),
        };
        if prefix.len() < MIN_PREFIX || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let matching: Vec<_> = self
            .registry
            .of_user(user)
            .iter()
            .filter_map(|id| self.registry.get(*id))
            .filter(|r| r.key.starts_with(prefix))
            .collect();
        match matching.as_slice() {
            [] => Err(not_found()),
            [one] => Ok(one.id),
            many => Err(QueryError::AmbiguousKey {
                prefix: prefix.to_owned(),
                candidates: many
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {}",
                            &r.key[..(prefix.len() + 4).min(r.key.len())],
                            r.cmd()
                        )
                    })
                    .collect(),
            }),
        }
    }

    /// Deletes every registration of `user`; returns their keys.
    pub fn delete_all(&mut self, user: &str) -> Vec<String> {
        let ids = self.registry.of_user(user).to_vec();
        let keys = ids
            .iter()
            .filter_map(|id| self.registry.get(*id))
            .map(|r| r.key.to_string())
            .collect();
        self.remove_ids(&ids);
        keys
    }

    /// Every registration of every user, for persistence — and, as one more entry each, the
    /// users who chose `FORMAT text` (`cmd` = `FORMAT text;`, `key` = `format`): the saved
    /// state is a list of commands to replay, so a hub that does not know FORMAT drops those
    /// entries and keeps the rest.
    pub fn registrations(&self) -> Vec<Saved> {
        let mut saved: Vec<Saved> = self
            .registry
            .iter()
            .map(|r| Saved {
                user: r.user.to_string(),
                cmd: r.cmd(),
                key: r.key.to_string(),
            })
            .collect();
        let mut text: Vec<&Arc<str>> = self.text_users.iter().collect();
        text.sort();
        saved.extend(text.into_iter().map(|u| Saved {
            user: u.to_string(),
            cmd: "FORMAT text;".to_string(),
            key: "format".to_string(),
        }));
        saved
    }

    /// Re-registers a saved registration at start-up. The per-user limit is not applied (the
    /// registration was accepted before); parse and size limits are. Returns the key, which
    /// differs from `saved.key` only if the canonical form changed between versions.
    pub fn restore(&mut self, saved: &Saved) -> Result<String, QueryError> {
        match command::parse(&saved.cmd, &self.limits)? {
            Statement::Register {
                proc,
                regex,
                regex_column,
            } => self.register(&saved.user, proc, regex, regex_column, None),
            Statement::Format(format) => {
                self.set_format(&saved.user, format);
                Ok(saved.key.clone())
            }
            _ => Err(QueryError::Parse(super::error::ParseError::Expected {
                column: 1,
                expected: "SELECT <proc> FROM <regex>".into(),
                found: format!("{:?}", saved.cmd),
            })),
        }
    }

    fn register(
        &mut self,
        user: &str,
        proc: Proc,
        regex: String,
        regex_column: usize,
        // `Some(n)`: enforce the per-user limit, `n` registrations being held elsewhere.
        user_limit_elsewhere: Option<usize>,
    ) -> Result<String, QueryError> {
        let key = key::key(user, &proc.to_string(), &regex);
        if self.registry.find(user, &key).is_some() {
            return Ok(key);
        }
        let limit = self.limits.max_queries_per_user;
        if user_limit_elsewhere
            .is_some_and(|elsewhere| self.registry.of_user(user).len() + elsewhere >= limit)
        {
            return Err(QueryError::TooManyQueries { limit });
        }
        let re = matcher::compile(&regex, regex_column, &self.limits)?;
        let reg = self.registry.insert(user, key.clone(), proc, regex);
        self.saved_version += 1;
        let id = reg.id as usize;
        if self.tracked.len() <= id {
            self.tracked.resize(id + 1, 0);
        }
        self.tracked[id] = 0;
        self.matcher.insert(reg.id, reg.regex.clone());
        if reg.proc.has_absent() {
            self.absent_regs += 1;
        }
        // Names already cached learn about the new registration now.
        let cap = self.limits.max_names_per_registration;
        let (tracked, untracked) = (&mut self.tracked[id], &mut self.untracked);
        let mut take = |name: &str| {
            if !re.is_match(name) {
                return None;
            }
            if *tracked >= cap {
                untracked.pairs += 1;
                return None;
            }
            *tracked += 1;
            Some(Slot {
                state: PipeState::new(&reg.proc),
                reg: reg.clone(),
            })
        };
        for entry in &mut self.entries {
            entry.slots.extend(take(&entry.name));
        }
        let entries = &mut self.entries;
        self.names.assign_untracked(|name| {
            let slot = take(name)?;
            entries.push(NameEntry {
                name: name.into(),
                slots: vec![slot],
            });
            Some(entries.len() as u32 - 1)
        });
        Ok(key)
    }

    fn remove_ids(&mut self, ids: &[RegId]) {
        let mut any = false;
        for &id in ids {
            if let Some(reg) = self.registry.remove(id) {
                any = true;
                self.saved_version += 1;
                self.matcher.remove(id);
                if reg.proc.has_absent() {
                    self.absent_regs -= 1;
                }
            }
        }
        if any {
            for entry in &mut self.entries {
                entry.slots.retain(|s| !ids.contains(&s.reg.id));
            }
        }
    }

    /// Runs one event through every matching registration; outputs are appended to `out`.
    pub fn feed(&mut self, name: &str, timestamp: f64, value: f64, out: &mut Vec<Output>) {
        if self.registry.len() == 0 {
            return; // nothing to match, nothing to cache
        }
        match self.names.get(name) {
            Lookup::Entry(i) => {
                if let Some(entry) = self.entries.get_mut(i as usize) {
                    run_entry(entry, timestamp, value, out);
                }
                return;
            }
            Lookup::Nothing => return,
            Lookup::Unknown => {}
        }
        if self.names.len() >= self.limits.max_names {
            self.untracked.events += 1;
            return;
        }
        let mut entry = self.new_entry(name);
        if entry.slots.is_empty() {
            self.names.insert(name, None);
            return;
        }
        run_entry(&mut entry, timestamp, value, out);
        self.names.insert(name, Some(self.entries.len() as u32));
        self.entries.push(entry);
    }

    /// Builds the cache entry of a name seen for the first time.
    fn new_entry(&mut self, name: &str) -> NameEntry {
        self.scratch.clear();
        self.matcher.matches(name, &mut self.scratch);
        let cap = self.limits.max_names_per_registration;
        let mut slots = Vec::with_capacity(self.scratch.len());
        for &id in &self.scratch {
            let Some(reg) = self.registry.get(id) else {
                continue;
            };
            match self.tracked.get_mut(id as usize) {
                Some(n) if *n < cap => {
                    *n += 1;
                    slots.push(Slot {
                        state: PipeState::new(&reg.proc),
                        reg: reg.clone(),
                    });
                }
                _ => self.untracked.pairs += 1,
            }
        }
        NameEntry {
            name: name.into(),
            slots,
        }
    }

    /// Advances `absent` stages to the hub's clock `now` (seconds since the epoch); call it
    /// periodically (e.g. every second). Outputs are appended to `out`, timestamped `now`.
    pub fn tick(&mut self, now: f64, out: &mut Vec<Output>) {
        if self.absent_regs == 0 {
            return;
        }
        for entry in &mut self.entries {
            for slot in &mut entry.slots {
                if !slot.reg.proc.has_absent() {
                    continue;
                }
                let reg = &slot.reg;
                eval::tick(&reg.proc, &mut slot.state, now, |value| {
                    out.push(Output {
                        user: reg.user.clone(),
                        key: reg.key.clone(),
                        name: entry.name.clone(),
                        timestamp: now,
                        value,
                    });
                });
            }
        }
    }
}

fn run_entry(entry: &mut NameEntry, timestamp: f64, value: f64, out: &mut Vec<Output>) {
    for slot in &mut entry.slots {
        if let Some(value) = eval::push(&slot.reg.proc, &mut slot.state, timestamp, value) {
            out.push(Output {
                user: slot.reg.user.clone(),
                key: slot.reg.key.clone(),
                name: entry.name.clone(),
                timestamp,
                value,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const U: &str = "alice@example.org";
    const V: &str = "bob@example.org";

    fn json_of(r: &Reply) -> Value {
        serde_json::from_str(&r.to_json()).unwrap()
    }

    fn key_of(e: &mut Engine, user: &str, body: &str) -> String {
        let r = e.handle(user, body);
        assert_eq!(r.status, 200, "{body}: {:?}", r.reason);
        r.results.unwrap()["key"].as_str().unwrap().to_owned()
    }

    fn feed(e: &mut Engine, name: &str, t: f64, x: f64) -> Vec<Output> {
        let mut out = vec![];
        e.feed(name, t, x, &mut out);
        out
    }

    #[test]
    fn register_list_delete_round() {
        let mut e = Engine::default();
        let body = r"select ID from ^.*\.cpu\.cpu\.idle$";
        let k = key_of(&mut e, U, body);
        assert_eq!(k, key::key(U, "id", r"^.*\.cpu\.cpu\.idle$"));
        let r = e.handle(U, "SELECT * FROM leela.xmpp;");
        assert_eq!(
            json_of(&r),
            json!({"status": 200, "results": [{"cmd": r"SELECT id FROM ^.*\.cpu\.cpu\.idle$;", "key": k}],
                   "debug": {"request": "SELECT * FROM leela.xmpp;"}})
        );
        // Other users see nothing and cannot delete it.
        assert_eq!(
            json_of(&e.handle(V, "SELECT * FROM leela.xmpp"))["results"],
            json!([])
        );
        let del = format!("DELETE FROM leela.xmpp WHERE key={k};");
        let r = e.handle(V, &del);
        assert_eq!(r.status, 404);
        assert_eq!(
            r.reason.as_deref(),
            Some(format!("no such key: {k}").as_str())
        );
        assert_eq!(json_of(&e.handle(U, &del))["results"], json!({"key": k}));
        assert_eq!(e.handle(U, &del).status, 404);
        assert!(e.is_empty());
    }

    #[test]
    fn keys_are_stable_across_whitespace_and_case() {
        let mut e = Engine::default();
        let k = key_of(&mut e, U, "SELECT mean | (* 100) | [> 50] FROM ^web1\\.;");
        for body in [
            "SELECT mean|(*100)|[>50] FROM ^web1\\.",
            "  select   MEAN |( *  100 )| [ >  50.0 ]   from   ^web1\\.  ;  ",
            "SELECT\nmean\t|\t(* 1e2)\n|[>5e1]\nFROM\n^web1\\.\n;",
        ] {
            assert_eq!(key_of(&mut e, U, body), k, "{body}");
        }
        assert_eq!(e.len(), 1, "re-registration is idempotent");
        assert_ne!(
            key_of(&mut e, V, "SELECT mean | (* 100) | [> 50] FROM ^web1\\."),
            k
        );
    }

    #[test]
    fn delete_all_removes_every_registration_of_the_caller() {
        let mut e = Engine::default();
        let a = key_of(&mut e, U, "SELECT id FROM a");
        let b = key_of(&mut e, U, "SELECT count FROM b");
        let c = key_of(&mut e, V, "SELECT id FROM a");
        let r = e.handle(U, "DELETE FROM leela.xmpp;");
        assert_eq!(json_of(&r)["results"], json!([{"key": a}, {"key": b}]));
        assert_eq!(
            json_of(&e.handle(U, "DELETE FROM leela.xmpp"))["results"],
            json!([])
        );
        assert_eq!(e.list(V), [("SELECT id FROM a;".to_owned(), c)]);
        let out = feed(&mut e, "a", 1.0, 1.0);
        assert_eq!(out.len(), 1);
        assert_eq!(&*out[0].user, V);
    }

    #[test]
    fn statuses_for_bad_requests() {
        let mut e = Engine::new(Limits {
            max_queries_per_user: 2,
            max_body_bytes: 64,
            ..Limits::default()
        });
        let r = e.handle(U, "SELECT id FRM a");
        assert_eq!(
            json_of(&r),
            json!({"status": 400, "reason": "expected | or FROM at column 11, found \"FRM\"",
                   "debug": {"request": "SELECT id FRM a"}})
        );
        let r = e.handle(U, "SELECT id FROM web(");
        assert_eq!(r.status, 400);
        assert_eq!(
            r.reason.as_deref(),
            Some("invalid regex at column 19: unclosed group")
        );
        assert_eq!(e.handle(U, "SELECT id FROM \\w{999}").status, 413);
        let long = format!("SELECT id FROM {}é", "a".repeat(60));
        let r = e.handle(U, &long);
        assert_eq!(r.status, 413);
        assert_eq!(r.debug.request.len(), 64);
        key_of(&mut e, U, "SELECT id FROM a");
        key_of(&mut e, U, "SELECT id FROM b");
        let r = e.handle(U, "SELECT id FROM c");
        assert_eq!(r.status, 413);
        assert_eq!(
            r.reason.as_deref(),
            Some("too many queries and alert rules: the limit is 2 per user")
        );
        // Re-registering an existing query at the limit is still fine.
        key_of(&mut e, U, "SELECT id FROM b");
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn events_flow_to_matching_registrations_only() {
        let mut e = Engine::default();
        let idle = key_of(&mut e, U, r"SELECT id FROM ^.*\.cpu\.cpu\.idle$");
        let web1 = key_of(&mut e, V, r"SELECT window 2 (sum) FROM ^web1\.");
        let out = feed(&mut e, "web1.cpu.cpu.idle", 10.0, 85.0);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (&*out[0].key, &*out[0].name, out[0].timestamp, out[0].value),
            (idle.as_str(), "web1.cpu.cpu.idle", 10.0, 85.0)
        );
        assert_eq!(
            out[0].message_body(),
            format!(
                r#"{{"status":200,"results":{{"event":{{"name":"web1.cpu.cpu.idle","timestamp":10.0,"value":85.0}}}},"key":"{idle}"}}"#
            )
        );
        let out = feed(&mut e, "web1.cpu.cpu.idle", 11.0, 80.0);
        assert_eq!(out.len(), 2);
        assert_eq!((&*out[1].key, out[1].value), (web1.as_str(), 165.0));
        // State is per name: the window of another name starts empty.
        assert_eq!(feed(&mut e, "web1.load.load.shortterm", 11.0, 1.0).len(), 0);
        assert!(feed(&mut e, "web2.load.load.shortterm", 11.0, 1.0).is_empty());
        assert_eq!(e.names_tracked(), 3);
    }

    #[test]
    fn registrations_added_and_removed_while_names_are_cached() {
        let mut e = Engine::default();
        assert!(feed(&mut e, "web1.cpu.cpu.idle", 1.0, 1.0).is_empty());
        let k = key_of(&mut e, U, "SELECT count FROM idle$");
        assert_eq!(feed(&mut e, "web1.cpu.cpu.idle", 2.0, 1.0)[0].value, 1.0);
        assert_eq!(feed(&mut e, "web1.cpu.cpu.idle", 3.0, 1.0)[0].value, 2.0);
        e.delete(U, &k.to_uppercase()).unwrap();
        assert!(feed(&mut e, "web1.cpu.cpu.idle", 4.0, 1.0).is_empty());
        // Deleted and added again: fresh state.
        key_of(&mut e, U, "SELECT count FROM idle$");
        assert_eq!(feed(&mut e, "web1.cpu.cpu.idle", 5.0, 1.0)[0].value, 1.0);
    }

    #[test]
    fn name_bounds_are_enforced_and_counted() {
        let mut e = Engine::new(Limits {
            max_names: 3,
            max_names_per_registration: 2,
            ..Limits::default()
        });
        key_of(&mut e, U, "SELECT id FROM .");
        assert_eq!(feed(&mut e, "a", 0.0, 0.0).len(), 1);
        assert_eq!(feed(&mut e, "b", 0.0, 0.0).len(), 1);
        assert_eq!(feed(&mut e, "c", 0.0, 0.0).len(), 0);
        assert_eq!(feed(&mut e, "d", 0.0, 0.0).len(), 0);
        assert_eq!(feed(&mut e, "a", 0.0, 0.0).len(), 1);
        assert_eq!(
            e.untracked(),
            &Untracked {
                events: 1,
                pairs: 1
            }
        );
        // A new registration picks up cached names, up to its own cap.
        key_of(&mut e, V, "SELECT id FROM .");
        let for_v = ["a", "b", "c"]
            .iter()
            .flat_map(|n| feed(&mut e, n, 0.0, 0.0))
            .filter(|o| &*o.user == V)
            .count();
        assert_eq!(for_v, 2);
        assert_eq!(e.untracked().pairs, 2);
    }

    #[test]
    fn absent_is_driven_by_tick() {
        let mut e = Engine::default();
        let k = key_of(&mut e, U, "SELECT absent 1m FROM jabmon\\.status\\.alive$");
        key_of(&mut e, U, "SELECT id FROM zzz");
        assert!(feed(&mut e, "web1.jabmon.status.alive", 100.0, 1.0).is_empty());
        let mut out = vec![];
        e.tick(1000.0, &mut out);
        e.tick(1059.0, &mut out);
        assert!(out.is_empty());
        e.tick(1060.0, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (&*out[0].key, &*out[0].name, out[0].timestamp, out[0].value),
            (k.as_str(), "web1.jabmon.status.alive", 1060.0, 1.0)
        );
        e.delete_all(U);
        e.tick(5000.0, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn export_and_restore() {
        let mut e = Engine::new(Limits {
            max_queries_per_user: 1,
            ..Limits::default()
        });
        let k1 = key_of(&mut e, U, "select  WINDOW 5(mean) from ^a$;");
        let k2 = key_of(&mut e, V, "select changed from b");
        let saved = e.registrations();
        assert_eq!(saved.len(), 2);
        assert_eq!(
            saved[0],
            Saved {
                user: U.into(),
                cmd: "SELECT window 5 (mean) FROM ^a$;".into(),
                key: k1.clone()
            }
        );
        let text = serde_json::to_string(&saved).unwrap();
        let saved: Vec<Saved> = serde_json::from_str(&text).unwrap();
        let mut fresh = Engine::new(Limits {
            max_queries_per_user: 0,
            ..Limits::default()
        });
        for s in &saved {
            assert_eq!(fresh.restore(s).unwrap(), s.key);
        }
        assert_eq!(fresh.list(V), [("SELECT changed FROM b;".to_owned(), k2)]);
        assert_eq!(fresh.registrations(), saved);
        let bad = Saved {
            user: U.into(),
            cmd: "DELETE FROM leela.xmpp".into(),
            key: String::new(),
        };
        assert_eq!(fresh.restore(&bad).unwrap_err().status(), 400);
    }

    #[test]
    fn delete_by_a_unique_prefix_of_eight_or_more_digits() {
        let mut e = Engine::default();
        let k = key_of(&mut e, U, "SELECT id FROM ^a$;");
        let r = json_of(&e.handle(U, &format!("DELETE FROM leela.xmpp WHERE key={};", &k[..8])));
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["results"]["key"], k.as_str(), "the full key comes back");
        assert!(e.list(U).is_empty());
        let k = key_of(&mut e, U, "SELECT id FROM ^a$;");
        for short in [&k[..7], "zzzzzzzz"] {
            let r = json_of(&e.handle(U, &format!("DELETE FROM leela.xmpp WHERE key={short}")));
            assert_eq!(r["status"], 404, "{short}: {r}");
        }
        let other = json_of(&e.handle(V, &format!("DELETE FROM leela.xmpp WHERE key={}", &k[..8])));
        assert_eq!(other["status"], 404, "another user's key stays invisible");
        assert_eq!(e.list(U).len(), 1);
    }

    #[test]
    fn an_ambiguous_prefix_is_400_listing_the_candidates() {
        let mut e = Engine::default();
        // Keys sharing 8 digits are needed: put two such into the table directly.
        let proc = super::super::proc::parse("id").unwrap();
        let (a, b) = (
            "3f1c2a9b01".to_string() + &"0".repeat(118),
            "3f1c2a9b02".to_string() + &"0".repeat(118),
        );
        e.registry.insert(U, a.clone(), proc.clone(), "^a$".into());
        e.registry.insert(U, b.clone(), proc, "^b$".into());
        let r = json_of(&e.handle(U, "DELETE FROM leela.xmpp WHERE key=3f1c2a9b"));
        assert_eq!(r["status"], 400, "{r}");
        let reason = r["reason"].as_str().unwrap();
        assert!(
            reason.contains("3f1c2a9b01")
                && reason.contains("SELECT id FROM ^a$;")
                && reason.contains("SELECT id FROM ^b$;"),
            "{reason}"
        );
        assert_eq!(e.registry.of_user(U).len(), 2, "nothing deleted");
        let r = json_of(&e.handle(U, "DELETE FROM leela.xmpp WHERE key=3f1c2a9b02"));
        assert_eq!(r["results"]["key"], b.as_str(), "{r}");
        let e2 = QueryError::AmbiguousKey {
            prefix: "3f1c2a9b".into(),
            candidates: vec![
                "3f1c2a9b01ab SELECT id FROM a;".into(),
                "3f1c2a9b02cd SELECT id FROM b;".into(),
            ],
        };
        assert_eq!(e2.status(), 400);
        assert_eq!(
            e2.to_string(),
            "key prefix 3f1c2a9b matches 2 queries, give more digits: 3f1c2a9b01ab SELECT id FROM a;; 3f1c2a9b02cd SELECT id FROM b;"
        );
    }

    #[test]
    fn format_text_changes_events_and_replies_of_that_user_only_and_is_saved() {
        let mut e = Engine::default();
        let k = key_of(&mut e, U, "SELECT id FROM ^a$;");
        let version = e.saved_version();
        let r = e.handle(U, "FORMAT text;");
        assert_eq!(json_of(&r)["results"]["format"], "text");
        assert!(e.saved_version() > version, "a change to save");
        assert!(e
            .render(U, &r)
            .starts_with("Events now arrive as one line each"));
        key_of(&mut e, V, "SELECT id FROM ^a$;");
        let out = feed(&mut e, "a", 1_763_812_803.0, 97.5);
        let bodies: Vec<(String, String)> = out
            .iter()
            .map(|o| (o.user.to_string(), e.event_body(o)))
            .collect();
        assert!(
            bodies.contains(&(U.into(), "a 97.5 @ 12:00:03".into())),
            "{bodies:?}"
        );
        let json = bodies.iter().find(|(u, _)| u == V).unwrap();
        assert!(
            json.1.starts_with(r#"{"status":200,"results":{"event""#),
            "JSON stays the default"
        );
        assert!(e.dropped_body(U, &k, 3).starts_with("3 events of query"));
        assert_eq!(e.dropped_body(V, &k, 3), reply::dropped_message(&k, 3));
        let list = e.handle(U, "SELECT * FROM leela.xmpp");
        assert_eq!(
            e.render(U, &list),
            format!("You have 1 queries:\n{}  SELECT id FROM ^a$;", &k[..8])
        );
        assert!(
            e.render(V, &list).starts_with('{'),
            "JSON for the other user"
        );
        // Saved with the registrations, restored, and back to JSON on request.
        let saved = e.registrations();
        assert!(saved.iter().any(|s| s.user == U && s.cmd == "FORMAT text;"));
        let mut fresh = Engine::default();
        for s in &saved {
            fresh.restore(s).unwrap();
        }
        assert_eq!(fresh.format(U), Format::Text);
        assert_eq!(fresh.format(V), Format::Json);
        fresh.handle(U, "format json");
        assert_eq!(fresh.format(U), Format::Json);
        assert!(fresh.registrations().iter().all(|s| s.key != "format"));
    }

    #[test]
    fn help_is_plain_text_for_everyone() {
        let mut e = Engine::default();
        let r = e.handle(U, "help");
        assert_eq!(r.status, 200);
        let text = e.render(U, &r);
        assert!(
            text.starts_with("jabmon hub: send one command per message"),
            "{text}"
        );
        assert!(!text.starts_with('{'));
        e.handle(U, "FORMAT text");
        let again = e.handle(U, "HELP;");
        assert_eq!(e.render(U, &again), text);
    }
}
