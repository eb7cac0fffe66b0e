//! A private Prosody on a free loopback port.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::server::{free_port, is_root, write_test_ca, DOMAIN};
use crate::stock::{self, Snippet};

/// A running Prosody; stopped (by PID) on drop.
pub struct Prosody {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
    /// XEP-0368 direct TLS port.
    pub tls_port: u16,
    config: PathBuf,
    /// Whether clients must use TLS (the stock configuration requires it).
    pub tls_required: bool,
}

fn chown_prosody(path: &Path) {
    crate::server::chown(path, "prosody");
}

impl Prosody {
    /// Starts a server; panics with a clear message when Prosody is missing.
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// Starts a server with `extra` Lua lines in its global section (e.g.
    /// `pep_service_cache_size = 20000`).
    pub fn start_with(extra: &str) -> Self {
        Self::start_from(false, |d, port, tls_port| {
            config_text(d, port, tls_port, extra)
        })
    }

    /// Starts a server from Debian's own configuration file (see [`crate::stock`]): its
    /// limits and modules kept, STARTTLS required; `snippet` goes into the test's `conf.d/`,
    /// which the stock file includes.
    pub fn start_stock(snippet: &Snippet) -> Self {
        let stock = stock::read_stock(stock::PROSODY_STOCK, "prosody");
        Self::start_from(true, |d, port, tls_port| {
            let conf_d = d.join("conf.d");
            fs::create_dir_all(&conf_d).expect("conf.d");
            if let Snippet::Jabmon(bots) = snippet {
                let text = stock::read_stock(
                    &stock::prosody_snippet_path().display().to_string(),
                    "prosody",
                );
                fs::write(
                    conf_d.join("jabmon.cfg.lua"),
                    stock::fill_snippet(&text, bots, DOMAIN),
                )
                .expect("snippet");
            }
            stock::prosody_config(&stock, &stock_overrides(d, port, tls_port))
        })
    }

    /// Starts a server whose configuration `config(dir, c2s port, direct TLS port)` writes.
    fn start_from(tls_required: bool, config_of: impl FnOnce(&Path, u16, u16) -> String) -> Self {
        // Show the bots' logs in failing tests (RUST_LOG=debug for more).
        jabmon_shared::logging::init(&jabmon_shared::config::LogConfig::default());
        assert!(
            Path::new("/usr/bin/prosody").exists(),
            "Prosody is not installed: run `apt-get install -y prosody` (the README's test command does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("jabmon-prosody-")
            .tempdir()
            .expect("temp dir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let port = free_port();
        let tls_port = free_port();
        let data = dir.path().join("data");
        fs::create_dir_all(data.join("localhost").join("accounts")).expect("data dir");
        let config = dir.path().join("prosody.cfg.lua");
        fs::write(&config, config_of(dir.path(), port, tls_port)).expect("write config");
        let mut p = Self {
            child: None,
            dir,
            port,
            tls_port,
            config,
            tls_required,
        };
        write_test_ca(p.dir.path());
        chown_prosody(p.dir.path());
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        // Prosody refuses to run as root; as root, exec it as the `prosody` user (setpriv
        // execs in place, so the child's PID is Prosody's own).
        let mut cmd = if is_root() {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=prosody",
                "--regid=prosody",
                "--clear-groups",
                "/usr/bin/prosody",
            ]);
            c
        } else {
            Command::new("/usr/bin/prosody")
        };
        let child = cmd
            .arg("--config")
            .arg(&self.config)
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prosody");
        self.child = Some(child);
        self.wait_listening();
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("prosody exited at start ({status}); log:\n{}", self.log());
                }
            }
            assert!(
                Instant::now() < deadline,
                "prosody did not listen within 10 s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("prosody.log")).unwrap_or_default()
    }

    /// Its temp directory (config, data, log, CA).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Creates an account `user@localhost` (written into the data store; no restart needed).
    pub fn register(&self, user: &str, password: &str) -> String {
        let path = self
            .dir
            .path()
            .join("data/localhost/accounts")
            .join(format!("{user}.dat"));
        let escaped = password.replace('\\', "\\\\").replace('"', "\\\"");
        fs::write(
            &path,
            format!("return {{\n\t[\"password\"] = \"{escaped}\";\n}};\n"),
        )
        .expect("account");
        chown_prosody(&path);
        format!("{user}@{DOMAIN}")
    }

    /// Creates many accounts at once (files written, then one `chown` of the directory).
    pub fn register_many(&self, accounts: &[(String, String)]) {
        let dir = self.dir.path().join("data/localhost/accounts");
        for (user, password) in accounts {
            let escaped = password.replace('\\', "\\\\").replace('"', "\\\"");
            let text = format!("return {{\n\t[\"password\"] = \"{escaped}\";\n}};\n");
            fs::write(dir.join(format!("{user}.dat")), text).expect("account");
        }
        chown_prosody(&dir);
    }

    /// Writes mutual (`both`) subscriptions between `hub` and each of `contacts` straight
    /// into the roster store, as if every subscription handshake had run (with file storage
    /// each handshake rewrites the hub's whole roster; see docs/performance.md).
    pub fn subscribe_both(&self, hub: &str, contacts: &[String]) {
        let dir = self.dir.path().join("data/localhost/roster");
        fs::create_dir_all(&dir).expect("roster dir");
        let item = |jid: &str| {
            format!("\t[\"{jid}@{DOMAIN}\"] = {{ [\"subscription\"] = \"both\"; [\"groups\"] = {{}}; }};\n")
        };
        let meta = "\t[false] = { [\"version\"] = 1; [\"pending\"] = {}; };\n";
        let mut all = format!("return {{\n{meta}");
        for c in contacts {
            all.push_str(&item(c));
            fs::write(
                dir.join(format!("{c}.dat")),
                format!("return {{\n{meta}{}}};\n", item(hub)),
            )
            .expect("roster");
        }
        all.push_str("};\n");
        fs::write(dir.join(format!("{hub}.dat")), all).expect("roster");
        chown_prosody(&dir);
    }

    /// The server's PID.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- server log ---\n{}", self.log());
        }
        self.stop();
    }
}

fn config_text(dir: &Path, port: u16, tls_port: u16, extra: &str) -> String {
    let d = dir.display();
    format!(
        r#"-- jabmon test server (generated)
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
daemonize = false
log = {{ {{ levels = {{ min = "info" }}, to = "file", filename = "{d}/prosody.log" }} }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
c2s_direct_tls_ports = {{ {tls_port} }}
s2s_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
component_ports = {{ }}
network_settings = {{ nagle = false }}
authentication = "internal_plain"
storage = "internal"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
plugin_paths = {{ }}
modules_enabled = {{ "roster", "saslauth", "tls", "disco", "ping", "pep", "smacks", "adhoc", "private", "version", "posix" }}
modules_disabled = {{ "s2s" }}
ssl = {{ key = "{d}/localhost.key", certificate = "{d}/localhost.crt" }}
{extra}
VirtualHost "localhost"

Component "conference.localhost" "muc"
    -- A destroyed room may be created again at once (Prosody otherwise keeps a tombstone).
    muc_tombstones = false
    -- Rooms keep an archive (XEP-0313), as on a production server.
    modules_enabled = {{ "muc_mam" }}
"#
    )
}

/// What the stock file must change to run privately: its ports on loopback, its paths, and the
/// test CA's certificate for `localhost` (found by name in `certificates`).
fn stock_overrides(dir: &Path, port: u16, tls_port: u16) -> String {
    let d = dir.display();
    format!(
        r#"pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
log = {{ {{ levels = {{ min = "info" }}, to = "file", filename = "{d}/prosody.log" }} }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
c2s_direct_tls_ports = {{ {tls_port} }}
s2s_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
certificates = "{d}"
"#
    )
}
