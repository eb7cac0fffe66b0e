//! The event names the engine has seen, stored by host so that a fleet's names cost a few
//! bytes each.
//!
//! A name is split at its first dot into a host (`web1`) and a suffix (`.cpu.cpu.idle`, the dot
//! included, so that `web1` and `web1.` stay apart). Every host keeps the suffixes it has
//! sent, as ids into one table of distinct suffixes (a fleet's hosts share the same few
//! dozen), each with the engine's entry for the name or [`NOTHING`] when no registration
//! tracks it. A lookup first tries the suffix after the one the host's last event had — stats
//! items list their metrics in the same order every time — so the usual event costs two
//! string comparisons and no hashing. 10,000 hosts × 92 names cost about 8 bytes a name.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// What the cache knows about a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lookup {
    /// Seen before; the engine's entry for it.
    Entry(u32),
    /// Seen before; no registration tracks it.
    Nothing,
    /// Never seen.
    Unknown,
}

const NOTHING: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Known {
    suffix: u32,
    entry: u32,
}

impl Known {
    fn lookup(self) -> Lookup {
        if self.entry == NOTHING {
            Lookup::Nothing
        } else {
            Lookup::Entry(self.entry)
        }
    }
}

#[derive(Debug)]
struct Host {
    name: Box<str>,
    /// Sorted by suffix id.
    known: Vec<Known>,
    /// Where the next lookup for this host looks first.
    cursor: usize,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(super) struct NameCache {
    host_ids: HashMap<Box<str>, u32, BuildHasherDefault<NameHasher>>,
    hosts: Vec<Host>,
    suffix_ids: HashMap<Box<str>, u32, BuildHasherDefault<NameHasher>>,
    suffixes: Vec<Box<str>>,
    /// The host of the latest lookup (events come host by host).
    last_host: Option<usize>,
    len: usize,
}

fn split(name: &str) -> (&str, &str) {
    match name.find('.') {
        Some(i) => name.split_at(i),
        None => (name, ""),
    }
}

impl NameCache {
    /// Names known.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn get(&mut self, name: &str) -> Lookup {
        let (host, suffix) = split(name);
        let Some(h) = self.host_index(host) else {
            return Lookup::Unknown;
        };
        self.last_host = Some(h);
        let seen = &mut self.hosts[h];
        let at = if seen.cursor < seen.known.len() {
            seen.cursor
        } else {
            0
        };
        if let Some(k) = seen.known.get(at) {
            if *self.suffixes[k.suffix as usize] == *suffix {
                seen.cursor = at + 1;
                return k.lookup();
            }
        }
        let Some(&id) = self.suffix_ids.get(suffix) else {
            return Lookup::Unknown;
        };
        match seen.known.binary_search_by_key(&id, |k| k.suffix) {
            Ok(pos) => {
                seen.cursor = pos + 1;
                seen.known[pos].lookup()
            }
            Err(_) => Lookup::Unknown,
        }
    }

    /// Records `name` with the engine's entry for it (`None`: nothing tracks it).
    pub(super) fn insert(&mut self, name: &str, entry: Option<u32>) {
        let (host, suffix) = split(name);
        let h = match self.host_index(host) {
            Some(h) => h,
            None => {
                let h = self.hosts.len();
                self.hosts.push(Host {
                    name: host.into(),
                    known: Vec::new(),
                    cursor: 0,
                });
                self.host_ids.insert(host.into(), h as u32);
                h
            }
        };
        let id = match self.suffix_ids.get(suffix) {
            Some(&id) => id,
            None => {
                let id = self.suffixes.len() as u32;
                self.suffixes.push(suffix.into());
                self.suffix_ids.insert(suffix.into(), id);
                id
            }
        };
        let known = Known {
            suffix: id,
            entry: entry.unwrap_or(NOTHING),
        };
        let host = &mut self.hosts[h];
        let pos = match host.known.binary_search_by_key(&id, |k| k.suffix) {
            Ok(pos) => {
                host.known[pos] = known;
                pos
            }
            Err(pos) => {
                // Exact growth: a host's list is written once and then only read.
                host.known.reserve_exact(1);
                host.known.insert(pos, known);
                self.len += 1;
                pos
            }
        };
        host.cursor = pos + 1;
        self.last_host = Some(h);
    }

    /// Calls `f` with every known name that nothing tracks; where it returns an entry, the
    /// name has that entry from now on.
    pub(super) fn assign_untracked(&mut self, mut f: impl FnMut(&str) -> Option<u32>) {
        let mut name = String::new();
        for host in &mut self.hosts {
            for k in &mut host.known {
                if k.entry != NOTHING {
                    continue;
                }
                name.clear();
                name.push_str(&host.name);
                name.push_str(&self.suffixes[k.suffix as usize]);
                if let Some(entry) = f(&name) {
                    k.entry = entry;
                }
            }
        }
    }

    fn host_index(&self, host: &str) -> Option<usize> {
        if let Some(h) = self.last_host {
            if *self.hosts[h].name == *host {
                return Some(h);
            }
        }
        self.host_ids.get(host).map(|&h| h as usize)
    }
}

/// A fast hash for hosts and suffixes (multiply-rotate over 8-byte words, splitmix64 finish).
/// Names come from authenticated collectors only, which is why no per-process random seed
/// (HashDoS resistance) is paid for here.
#[derive(Debug, Default, Clone, Copy)]
struct NameHasher(u64);

impl NameHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(w);
            self.add(u64::from_le_bytes(buf));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, b: u8) {
        self.add(u64::from(b));
    }

    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 30;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 27;
        x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_told_apart_by_host_and_suffix() {
        let mut c = NameCache::default();
        let names = [
            "web1.cpu.cpu.idle",
            "web1",
            "web1.",
            "web2.cpu.cpu.idle",
            "",
            ".",
        ];
        for (i, n) in names.iter().enumerate() {
            assert_eq!(c.get(n), Lookup::Unknown, "{n}");
            c.insert(n, Some(i as u32));
        }
        assert_eq!(c.len(), names.len());
        for (i, n) in names.iter().enumerate().rev() {
            assert_eq!(c.get(n), Lookup::Entry(i as u32), "{n}");
        }
        assert_eq!(c.get("web1.cpu.cpu.user"), Lookup::Unknown);
        assert_eq!(c.get("web3.cpu.cpu.idle"), Lookup::Unknown);
        // Overwriting keeps one name.
        c.insert("web1", None);
        assert_eq!((c.get("web1"), c.len()), (Lookup::Nothing, names.len()));
    }

    #[test]
    fn lookups_in_any_order_agree_with_a_map() {
        let mut c = NameCache::default();
        let mut map = std::collections::HashMap::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..20_000u32 {
            let r = next();
            let name = format!("h{}.m.{}", r % 37, (r >> 8) % 53);
            let expected = match map.get(&name) {
                None => Lookup::Unknown,
                Some(None) => Lookup::Nothing,
                Some(Some(e)) => Lookup::Entry(*e),
            };
            assert_eq!(c.get(&name), expected, "{name}");
            if expected == Lookup::Unknown {
                let entry = (round % 3 != 0).then_some(round);
                c.insert(&name, entry);
                map.insert(name, entry);
            }
        }
        assert_eq!(c.len(), map.len());
    }

    #[test]
    fn untracked_names_can_be_assigned_later() {
        let mut c = NameCache::default();
        c.insert("web1.cpu.cpu.idle", None);
        c.insert("web1.load.load.shortterm", Some(0));
        c.insert("web2.cpu.cpu.idle", None);
        let mut offered = Vec::new();
        c.assign_untracked(|n| {
            offered.push(n.to_string());
            n.starts_with("web2").then_some(7)
        });
        offered.sort();
        assert_eq!(offered, ["web1.cpu.cpu.idle", "web2.cpu.cpu.idle"]);
        assert_eq!(c.get("web2.cpu.cpu.idle"), Lookup::Entry(7));
        assert_eq!(c.get("web1.cpu.cpu.idle"), Lookup::Nothing);
        assert_eq!(c.get("web1.load.load.shortterm"), Lookup::Entry(0));
    }

    #[test]
    fn a_fleet_costs_a_few_bytes_a_name() {
        let mut c = NameCache::default();
        for h in 0..1_000 {
            for m in 0..92 {
                c.insert(&format!("host{h}.group{m}.type.instance"), None);
            }
        }
        let per_name: usize = c.hosts.iter().map(|h| h.known.capacity()).sum::<usize>()
            * std::mem::size_of::<Known>()
            / c.len();
        assert_eq!((c.len(), c.suffixes.len(), per_name), (92_000, 92, 8));
    }
}
