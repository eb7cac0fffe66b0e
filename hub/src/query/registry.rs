//! The registrations of all users (pure bookkeeping; matching and state live in the engine).
//!
//! Keys are unique across users because the user's bare JID is hashed into them; each user
//! sees only their own (`find` checks the owner).

use std::collections::HashMap;
use std::sync::Arc;

use super::proc::Proc;

/// Dense index of a registration, reused after deletion.
pub(crate) type RegId = u32;

/// One `SELECT <proc> FROM <regex>;` of one user.
#[derive(Debug)]
pub struct Registration {
    pub(crate) id: RegId,
    /// The owner's bare JID.
    pub user: Arc<str>,
    /// The 128-hex-digit key.
    pub key: Arc<str>,
    pub proc: Proc,
    /// Canonical proc text.
    pub proc_text: String,
    /// Canonical (trimmed) regex text.
    pub regex: String,
}

impl Registration {
    /// The canonical command: `SELECT <proc> FROM <regex>;`.
    pub fn cmd(&self) -> String {
        format!("SELECT {} FROM {};", self.proc_text, self.regex)
    }
}

#[derive(Debug, Default)]
pub(crate) struct RegistrationTable {
    slots: Vec<Option<Arc<Registration>>>,
    free: Vec<RegId>,
    by_key: HashMap<Arc<str>, RegId>,
    /// Each user's registrations in the order they were made.
    by_user: HashMap<Arc<str>, Vec<RegId>>,
}

impl RegistrationTable {
    pub(crate) fn get(&self, id: RegId) -> Option<&Arc<Registration>> {
        self.slots.get(id as usize)?.as_ref()
    }

    /// The registration `key` of `user`, if that user has it.
    pub(crate) fn find(&self, user: &str, key: &str) -> Option<RegId> {
        let id = *self.by_key.get(key)?;
        (&*self.get(id)?.user == user).then_some(id)
    }

    pub(crate) fn of_user(&self, user: &str) -> &[RegId] {
        self.by_user.get(user).map_or(&[], Vec::as_slice)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Every registration, user by user, each user's in registration order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<Registration>> {
        let mut users: Vec<&Arc<str>> = self.by_user.keys().collect();
        users.sort();
        users
            .into_iter()
            .flat_map(|u| self.of_user(u))
            .filter_map(|id| self.get(*id))
    }

    /// Stores a new registration (the caller checked that `key` is new).
    pub(crate) fn insert(
        &mut self,
        user: &str,
        key: String,
        proc: Proc,
        regex: String,
    ) -> Arc<Registration> {
        let id = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            (self.slots.len() - 1) as RegId
        });
        let user: Arc<str> = match self.by_user.get_key_value(user) {
            Some((u, _)) => u.clone(),
            None => user.into(),
        };
        let reg = Arc::new(Registration {
            id,
            user: user.clone(),
            key: key.into(),
            proc_text: proc.to_string(),
            proc,
            regex,
        });
        if let Some(slot) = self.slots.get_mut(id as usize) {
            *slot = Some(reg.clone());
        }
        self.by_key.insert(reg.key.clone(), id);
        self.by_user.entry(user).or_default().push(id);
        reg
    }

    pub(crate) fn remove(&mut self, id: RegId) -> Option<Arc<Registration>> {
        let reg = self.slots.get_mut(id as usize)?.take()?;
        self.by_key.remove(&*reg.key);
        if let Some(ids) = self.by_user.get_mut(&*reg.user) {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                self.by_user.remove(&*reg.user);
            }
        }
        self.free.push(id);
        Some(reg)
    }
}

#[cfg(test)]
mod tests {
    use super::super::proc::parse;
    use super::*;

    #[test]
    fn insert_find_remove_reuses_ids() {
        let mut r = RegistrationTable::default();
        let a = r.insert("u", "ka".into(), parse("id").unwrap(), "^a$".into());
        let b = r.insert("u", "kb".into(), parse("mean").unwrap(), "^b$".into());
        let c = r.insert("v", "kc".into(), parse("id").unwrap(), "^c$".into());
        assert_eq!(r.len(), 3);
        assert_eq!(r.find("u", "ka"), Some(a.id));
        assert_eq!(r.find("v", "ka"), None, "keys are invisible to other users");
        assert_eq!(r.of_user("u"), [a.id, b.id]);
        assert_eq!(b.cmd(), "SELECT mean FROM ^b$;");
        let listed: Vec<&str> = r.iter().map(|x| &*x.key).collect();
        assert_eq!(listed, ["ka", "kb", "kc"]);
        assert_eq!(r.remove(a.id).map(|x| x.key.clone()), Some("ka".into()));
        assert!(r.remove(a.id).is_none());
        assert_eq!(r.find("u", "ka"), None);
        let d = r.insert("v", "kd".into(), parse("id").unwrap(), "^d$".into());
        assert_eq!(d.id, a.id);
        assert_eq!(r.of_user("v"), [c.id, d.id]);
        r.remove(b.id);
        assert!(r.of_user("u").is_empty());
        assert!(r.get(99).is_none());
    }
}
