//! Where the hub's state survives restarts — every registration and the alert state
//! (docs/alerts.md) — as one [`Snapshot`]: a JSON file written atomically (`storage = "file"`)
//! or a private XEP-0223 PEP node on the hub's own account (`storage = "pep"`), whose payload
//! is typed here.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use xso::{AsXml, FromXml};

use crate::alerts::SavedAlerts;
use crate::query::Saved;

/// Namespace and node name of the private registrations node.
pub const NS: &str = "urn:jabmon:hub:registrations:0";

/// What the hub keeps across restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub registrations: Vec<Saved>,
    #[serde(default)]
    pub alerts: SavedAlerts,
}

/// The state file as written now, or as written before the alert state was saved (a bare
/// list of registrations).
#[derive(Deserialize)]
#[serde(untagged)]
enum StateFile {
    Snapshot(Snapshot),
    Registrations(Vec<Saved>),
}

/// The PEP item: every registration, and the alert state as JSON text.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq, Default)]
#[xml(namespace = NS, name = "registrations")]
pub struct PepRegistrations {
    #[xml(child(n = ..))]
    pub items: Vec<PepRegistration>,
    /// `<alerts>`: the JSON of [`SavedAlerts`] (absent in items written before it was saved).
    #[xml(extract(default, fields(text(type_ = String))))]
    pub alerts: Option<String>,
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

impl From<&Snapshot> for PepRegistrations {
    fn from(snapshot: &Snapshot) -> Self {
        Self {
            items: snapshot
                .registrations
                .iter()
                .map(|s| PepRegistration {
                    user: s.user.clone(),
                    cmd: s.cmd.clone(),
                    key: s.key.clone(),
                })
                .collect(),
            alerts: serde_json::to_string(&snapshot.alerts).ok(),
        }
    }
}

impl PepRegistrations {
    /// The snapshot, and what was wrong with the alert state if it could not be read (the
    /// registrations are kept then, the alert state starts empty).
    pub fn into_snapshot(self) -> (Snapshot, Option<String>) {
        let (alerts, problem) = match self.alerts.as_deref().map(serde_json::from_str) {
            None => (SavedAlerts::default(), None),
            Some(Ok(alerts)) => (alerts, None),
            Some(Err(e)) => (SavedAlerts::default(), Some(e.to_string())),
        };
        let registrations = self
            .items
            .into_iter()
            .map(|r| Saved {
                user: r.user,
                cmd: r.cmd,
                key: r.key,
            })
            .collect();
        (
            Snapshot {
                registrations,
                alerts,
            },
            problem,
        )
    }
}

/// Reads the state file; a missing file is an empty state.
pub fn load_file(path: &Path) -> Result<Snapshot, String> {
    match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(StateFile::Snapshot(snapshot)) => Ok(snapshot),
            Ok(StateFile::Registrations(registrations)) => Ok(Snapshot {
                registrations,
                alerts: SavedAlerts::default(),
            }),
            Err(e) => Err(format!("{}: not a jabmon state file: {e}", path.display())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Snapshot::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes the state file atomically: a temp file beside it, fsync, rename.
pub fn save_file(path: &Path, snapshot: &Snapshot) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(snapshot).map_err(std::io::Error::other)?)?;
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

    fn snapshot() -> Snapshot {
        let alerts = SavedAlerts {
            next_alert: 7,
            messages: vec![("m1".into(), vec![3, 4])],
            ..Default::default()
        };
        Snapshot {
            registrations: saved(),
            alerts,
        }
    }

    #[test]
    fn file_round_trip_missing_file_and_older_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.json");
        assert_eq!(load_file(&path).unwrap(), Snapshot::default());
        save_file(&path, &snapshot()).unwrap();
        assert_eq!(load_file(&path).unwrap(), snapshot());
        assert!(
            !path.with_extension("json.tmp").exists(),
            "the temp file is renamed into place"
        );
        std::fs::write(&path, serde_json::to_vec(&saved()).unwrap()).unwrap();
        assert_eq!(
            load_file(&path).unwrap(),
            Snapshot {
                registrations: saved(),
                alerts: SavedAlerts::default()
            },
            "a file from before alerts were saved still loads"
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
        assert_eq!(
            parsed.clone().into_snapshot(),
            (
                Snapshot {
                    registrations: saved(),
                    alerts: SavedAlerts::default()
                },
                None
            ),
            "an item from before alerts were saved"
        );
        let written = Element::from(PepRegistrations::from(&snapshot()));
        let back = PepRegistrations::try_from(written).unwrap();
        assert_eq!(back.into_snapshot(), (snapshot(), None));
        let broken: Element = "<registrations xmlns='urn:jabmon:hub:registrations:0'><registration user='u'/></registrations>".parse().unwrap();
        assert_eq!(
            PepRegistrations::try_from(broken).unwrap_err().to_string(),
            "Required attribute field 'cmd' on PepRegistration element missing."
        );
        let garbled: Element = "<registrations xmlns='urn:jabmon:hub:registrations:0'><registration user='u@x' cmd='SELECT id FROM ^a$;' key='k'/><alerts>{nope</alerts></registrations>".parse().unwrap();
        let (kept, problem) = PepRegistrations::try_from(garbled).unwrap().into_snapshot();
        assert_eq!(kept.registrations, saved(), "registrations are kept");
        assert!(problem.is_some());
    }
}
