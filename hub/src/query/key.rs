//! Registration keys (docs/protocol.md §6): `sha512(bare_jid ‖ 0x00 ‖ proc ‖ 0x00 ‖ regex)` in
//! lower-case hex, over the canonical proc and regex texts. The separators keep
//! (`a`, `bc`) and (`ab`, `c`) apart, which Leela's concatenation did not.

use sha2::{Digest, Sha512};

/// The 128-character key of a registration.
pub fn key(bare_jid: &str, proc: &str, regex: &str) -> String {
    let mut h = Sha512::new();
    h.update(bare_jid.as_bytes());
    h.update([0u8]);
    h.update(proc.as_bytes());
    h.update([0u8]);
    h.update(regex.as_bytes());
    hex::encode(h.finalize())
}

/// Fewest hex digits of a key prefix that `DELETE … WHERE key=PREFIX` accepts.
pub const MIN_PREFIX: usize = 8;

/// The shortest prefixes, at least [`MIN_PREFIX`] long, that tell each of `keys` apart from
/// the others (what a person types to delete one of them), in the same order.
pub fn short_keys(keys: &[String]) -> Vec<String> {
    keys.iter()
        .map(|k| {
            let common = keys
                .iter()
                .filter(|o| *o != k)
                .map(|o| k.bytes().zip(o.bytes()).take_while(|(a, b)| a == b).count())
                .max()
                .unwrap_or(0);
            let len = (common + 1).max(MIN_PREFIX).min(k.len());
            k[..len].to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_sha512_hex_with_separators() {
        let k = key("u@example.org", "id", "^a$");
        assert_eq!(k.len(), 128);
        assert!(k
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        let mut h = Sha512::new();
        h.update(b"u@example.org\0id\0^a$");
        assert_eq!(k, hex::encode(h.finalize()));
        // sha512("") as a sanity check of the encoding.
        assert!(hex::encode(Sha512::digest(b"")).starts_with("cf83e1357eefb8bd"));
    }

    #[test]
    fn short_keys_are_unique_and_at_least_eight_digits() {
        let keys = [
            "0123456789aa".to_string(),
            "0123456789ab".to_string(),
            "ffffffffffff".to_string(),
        ];
        assert_eq!(
            short_keys(&keys),
            ["0123456789aa", "0123456789ab", "ffffffff"]
        );
        assert_eq!(
            short_keys(&["abc".to_string()]),
            ["abc"],
            "never past the key"
        );
    }

    #[test]
    fn separators_keep_fields_apart() {
        assert_ne!(key("u", "ab", "c"), key("u", "a", "bc"));
        assert_ne!(key("ua", "b", "c"), key("u", "ab", "c"));
        assert_ne!(key("u", "id", "x"), key("v", "id", "x"));
    }
}
