//! XEP-0115 entity capabilities: the `<c/>` a bot puts in every available presence.
//!
//! WORKAROUND (xmpp-parsers 0.23): `caps::compute_disco` keeps data-form fields in document
//! order, but XEP-0115 §5.1 step 7 sorts them by `var`. We sort a copy before hashing.

use xmpp_parsers::caps::{compute_disco, hash_caps, Caps};
use xmpp_parsers::disco::DiscoInfoResult;
use xmpp_parsers::hashes::Algo;

/// The SHA-1 verification string of a disco#info result, base64 (XEP-0115 §5.1).
pub fn ver(info: &DiscoInfoResult) -> String {
    let hash = hash_caps(&compute_disco(&sorted(info)), Algo::Sha_1)
        .expect("SHA-1 is a supported algorithm");
    hash.to_base64()
}

/// The `<c/>` element for `info` under `node`.
pub fn caps(node: &str, info: &DiscoInfoResult) -> Caps {
    let hash = hash_caps(&compute_disco(&sorted(info)), Algo::Sha_1)
        .expect("SHA-1 is a supported algorithm");
    Caps::new(node, hash)
}

fn sorted(info: &DiscoInfoResult) -> DiscoInfoResult {
    let mut info = info.clone();
    for form in &mut info.extensions {
        // FORM_TYPE is skipped by compute_disco wherever it is; sort the rest by var.
        form.fields.sort_by(|a, b| a.var.cmp(&b.var));
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType};
    use xmpp_parsers::disco::Identity;

    fn features(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// XEP-0115 §5.2, the simple example.
    #[test]
    fn simple_example_vector() {
        let info = DiscoInfoResult {
            node: None,
            identities: vec![Identity::new("client", "pc", "", "Exodus 0.9.1")],
            features: features(&[
                "http://jabber.org/protocol/caps",
                "http://jabber.org/protocol/disco#info",
                "http://jabber.org/protocol/disco#items",
                "http://jabber.org/protocol/muc",
            ]),
            extensions: vec![],
        };
        // Identity::new with an empty lang gives Some(""), which hashes like None.
        assert_eq!(ver(&info), "QgayPKawpkPSDYmwT/WM94uAlu0=");
    }

    /// XEP-0115 §5.3, the complex example with an extended form — fields given out of order
    /// on purpose, which is what compute_disco alone gets wrong.
    #[test]
    fn complex_example_vector_with_unsorted_form() {
        let field = |var: &str, values: &[&str]| {
            let mut f = Field::new(var, FieldType::TextMulti);
            f.values = values.iter().map(|s| s.to_string()).collect();
            f
        };
        let form = DataForm::new(
            DataFormType::Result_,
            "urn:xmpp:dataforms:softwareinfo",
            vec![
                field("software_version", &["0.11"]),
                field("os", &["Mac"]),
                field("ip_version", &["ipv4", "ipv6"]),
                field("software", &["Psi"]),
                field("os_version", &["10.5.1"]),
            ],
        );
        let info = DiscoInfoResult {
            node: None,
            identities: vec![
                Identity::new("client", "pc", "en", "Psi 0.11"),
                Identity::new("client", "pc", "el", "Ψ 0.11"),
            ],
            features: features(&[
                "http://jabber.org/protocol/caps",
                "http://jabber.org/protocol/disco#info",
                "http://jabber.org/protocol/disco#items",
                "http://jabber.org/protocol/muc",
            ]),
            extensions: vec![form],
        };
        assert_eq!(ver(&info), "q07IKJEyjvHSyhy//CH0CxmKi8w=");
        assert_eq!(caps("urn:jabmon", &info).node, "urn:jabmon");
    }
}
