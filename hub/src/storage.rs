//! Where registrations survive restarts: a JSON file written atomically (`storage = "file"`)
//! or a private XEP-0223 PEP node on the hub's own account (`storage = "pep"`), whose payload
//! is typed here.

use std::io::Write;
use std::path::Path;

use xso::{AsXml, FromXml};

use crate::query::Saved;

/// Namespace and node name of the private registrations node.
pub const NS: &str = "urn:jabmon:hub:registrations:0";

/// The PEP item: every registration.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq, Default)]
#[xml(namespace = NS, name = "registrations")]
pub struct PepRegistrations {
    #[xml(child(n = ..))]
    pub items: Vec<PepRegistration>,
}

/// One registration.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS, name = "registration")]
pub struct PepRegistration {
    #[xml(attribute)]
    pub user: String,
    #[xml(attribute)]
    pub cmd: String,
    #[xml(attribute)]
    pub key: String,
}

impl From<&[Saved]> for PepRegistrations {
    fn from(saved: &[Saved]) -> Self {
        Self {
            items: saved
                .iter()
                .map(|s| PepRegistration {
                    user: s.user.clone(),
                    cmd: s.cmd.clone(),
                    key: s.key.clone(),
                })
                .collect(),
        }
    }
}

impl PepRegistrations {
    pub fn into_saved(self) -> Vec<Saved> {
        self.items
            .into_iter()
            .map(|r| Saved {
                user: r.user,
                cmd: r.cmd,
                key: r.key,
            })
            .collect()
    }
}

/// Reads the state file; a missing file is an empty state.
pub fn load_file(path: &Path) -> Result<Vec<Saved>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not a jabmon state file: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes the state file atomically: a temp file beside it, fsync, rename.
pub fn save_file(path: &Path, saved: &[Saved]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(saved).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use minidom::Element;

    fn saved() -> Vec<Saved> {
        vec![Saved {
            user: "u@x".into(),
            cmd: "SELECT id FROM ^a$;".into(),
            key: "k".into(),
        }]
    }

    #[test]
    fn file_round_trip_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.json");
        assert_eq!(load_file(&path).unwrap(), vec![]);
        save_file(&path, &saved()).unwrap();
        assert_eq!(load_file(&path).unwrap(), saved());
        assert!(
            !path.with_extension("json.tmp").exists(),
            "the temp file is renamed into place"
        );
        std::fs::write(&path, "garbage").unwrap();
        assert!(load_file(&path)
            .unwrap_err()
            .contains("not a jabmon state file"));
    }

    #[test]
    fn pep_payload_four_ways() {
        let xml = "<registrations xmlns='urn:jabmon:hub:registrations:0'><registration user='u@x' cmd='SELECT id FROM ^a$;' key='k'/></registrations>";
        let el: Element = xml.parse().unwrap();
        let parsed = PepRegistrations::try_from(el.clone()).unwrap();
        assert_eq!(parsed.clone().into_saved(), saved());
        assert_eq!(
            Element::from(PepRegistrations::from(saved().as_slice())),
            el
        );
        let broken: Element = "<registrations xmlns='urn:jabmon:hub:registrations:0'><registration user='u'/></registrations>".parse().unwrap();
        assert_eq!(
            PepRegistrations::try_from(broken).unwrap_err().to_string(),
            "Required attribute field 'cmd' on PepRegistration element missing."
        );
        assert_eq!(
            PepRegistrations::try_from(Element::from(parsed.clone())).unwrap(),
            parsed
        );
    }
}
