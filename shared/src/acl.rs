//! Access lists: entries are a bare JID (`ops@example.org`) or a whole domain (`@example.org`).
//! Lookups are hash lookups, not scans: a hub checks every stanza of a fleet against lists of
//! thousands of collectors.

use std::collections::HashSet;

use xmpp_parsers::jid::BareJid;

/// A parsed access list. Matching is on the bare JID as stamped by the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    jids: HashSet<BareJid>,
    domains: HashSet<String>,
}

impl Acl {
    /// Parses entries; returns the entries that are not valid.
    pub fn parse(entries: &[String]) -> Result<Self, Vec<String>> {
        let mut acl = Acl::default();
        let mut bad = Vec::new();
        for entry in entries {
            let e = entry.trim();
            if let Some(domain) = e.strip_prefix('@') {
                match BareJid::new(domain) {
                    Ok(j) if j.node().is_none() => {
                        acl.domains.insert(j.domain().to_string());
                    }
                    _ => bad.push(entry.clone()),
                }
            } else {
                match BareJid::new(e) {
                    Ok(j) if j.node().is_some() => {
                        acl.jids.insert(j);
                    }
                    _ => bad.push(entry.clone()),
                }
            }
        }
        if bad.is_empty() {
            Ok(acl)
        } else {
            Err(bad)
        }
    }

    /// Adds one JID (e.g. the configured hub).
    pub fn allow(&mut self, jid: BareJid) {
        self.jids.insert(jid);
    }

    /// Whether `jid` is allowed.
    pub fn allows(&self, jid: &BareJid) -> bool {
        self.jids.contains(jid)
            || (jid.node().is_some() && self.domains.contains(jid.domain().as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(s: &str) -> BareJid {
        BareJid::new(s).unwrap()
    }

    #[test]
    fn jid_and_domain_entries() {
        let acl = Acl::parse(&["ops@example.org".into(), "@corp.example".into()]).unwrap();
        assert!(acl.allows(&j("ops@example.org")));
        assert!(acl.allows(&j("OPS@example.org")));
        assert!(!acl.allows(&j("dev@example.org")));
        assert!(acl.allows(&j("anyone@corp.example")));
        assert!(
            !acl.allows(&j("corp.example")),
            "a server itself is not a user"
        );
        assert!(!acl.allows(&j("x@evil-corp.example")));
    }

    #[test]
    fn a_fleet_sized_list_matches_exactly() {
        let entries: Vec<String> = (0..10_000).map(|i| format!("web{i}@example.org")).collect();
        let acl = Acl::parse(&entries).unwrap();
        assert!(acl.allows(&j("web0@example.org")));
        assert!(acl.allows(&j("WEB9999@example.org")));
        assert!(!acl.allows(&j("web10000@example.org")));
        assert!(!acl.allows(&j("web1@example.com")));
    }

    #[test]
    fn empty_denies_everyone() {
        assert!(!Acl::default().allows(&j("a@b")));
    }

    #[test]
    fn bad_entries_reported() {
        assert_eq!(
            Acl::parse(&["@".into(), "ok@x".into(), "x".into()]).unwrap_err(),
            vec!["@".to_string(), "x".to_string()]
        );
    }
}
