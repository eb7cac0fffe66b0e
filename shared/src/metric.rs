//! Metric naming (docs/protocol.md §3): `GROUP.TYPE.INSTANCE` inside a collector, `HOST.` in front
//! everywhere else; lower-case `[a-z0-9_-]` between the dots.

/// `HOST.jabmon.status.alive`: 1 while the hub believes the collector up, else 0.
pub const STATUS_ALIVE: &str = "jabmon.status.alive";
/// `HOST.jabmon.status.busy`: 1 while the collector reports load (`away`/`dnd`), else 0.
pub const STATUS_BUSY: &str = "jabmon.status.busy";
/// `HOST.jabmon.event.KIND`: 1 for each event item of that kind.
pub const EVENT_PREFIX: &str = "jabmon.event";

/// CPU idle % over all cores.
pub const CPU_IDLE: &str = "cpu.cpu.idle";
/// Load averages over 1, 5 and 15 minutes.
pub const LOAD_SHORTTERM: &str = "load.load.shortterm";
pub const LOAD_MIDTERM: &str = "load.load.midterm";
pub const LOAD_LONGTERM: &str = "load.load.longterm";
/// Memory used, % of the total.
pub const MEMORY_PERCENT_USED: &str = "memory.percent.used";

/// Used % of the filesystem mounted at `mount` (a [`mount`] component): `df-root.percent.used`.
pub fn disk_percent_used(mount: &str) -> String {
    format!("df-{mount}.percent.used")
}

/// The mount component of a [`disk_percent_used`] name; `None` for any other metric.
pub fn disk_percent_used_mount(name: &str) -> Option<&str> {
    name.strip_prefix("df-")?.strip_suffix(".percent.used")
}

/// Escapes one name component: lower-case, anything outside `[a-z0-9_-]` becomes `_`.
pub fn component(text: &str) -> String {
    let s: String = text
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "_".into()
    } else {
        s
    }
}

/// A mount point as a name component: `/` → `root`, `/var/lib` → `var-lib`.
pub fn mount(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return "root".into();
    }
    component(&trimmed.replace('/', "-"))
}

/// A host label: the short host name with dots turned into `_`.
pub fn host_label(hostname: &str) -> String {
    component(hostname.split('.').next().unwrap_or(hostname))
}

/// True when `name` is a valid metric name (dot-separated valid components).
pub fn is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts() {
        assert_eq!(mount("/"), "root");
        assert_eq!(mount("/var/lib"), "var-lib");
        assert_eq!(mount("/boot/efi/"), "boot-efi");
        assert_eq!(mount("/mnt/My Disk"), "mnt-my_disk");
    }

    #[test]
    fn disk_names_round_trip() {
        assert_eq!(disk_percent_used("var-lib"), "df-var-lib.percent.used");
        assert_eq!(
            disk_percent_used_mount("df-var-lib.percent.used"),
            Some("var-lib")
        );
        assert_eq!(disk_percent_used_mount("df-root.df.used"), None);
        assert_eq!(disk_percent_used_mount(MEMORY_PERCENT_USED), None);
    }

    #[test]
    fn components_and_hosts() {
        assert_eq!(component("eth0"), "eth0");
        assert_eq!(component("Wlan.1"), "wlan_1");
        assert_eq!(component(""), "_");
        assert_eq!(host_label("web1.example.org"), "web1");
        assert!(is_valid("cpu-0.cpu.idle"));
        assert!(!is_valid("cpu..idle"));
        assert!(!is_valid("CPU.cpu.idle"));
    }
}
