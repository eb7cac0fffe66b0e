//! The test server, whichever it is: a private Prosody or a private ejabberd, with one API so
//! that one test body runs against both ([`server_matrix!`](crate::server_matrix)).

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ejabberd::Ejabberd;
use crate::prosody::Prosody;

/// The XMPP domain of every test server.
pub const DOMAIN: &str = "localhost";

/// Which server a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Prosody,
    Ejabberd,
}

impl Kind {
    /// `prosody` or `ejabberd` (also what `--server` takes in the measurement tools).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prosody => "prosody",
            Kind::Ejabberd => "ejabberd",
        }
    }

    /// Parses [`Kind::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "prosody" => Some(Kind::Prosody),
            "ejabberd" => Some(Kind::Ejabberd),
            _ => None,
        }
    }

    /// `--server prosody|ejabberd` from the command line of a measurement tool; Prosody by
    /// default.
    pub fn from_args() -> Self {
        match std::env::args().skip_while(|a| a != "--server").nth(1) {
            None => Kind::Prosody,
            Some(name) => Kind::from_name(&name)
                .unwrap_or_else(|| panic!("--server {name}: expected prosody or ejabberd")),
        }
    }
}

/// A running private server; stopped (by PID) on drop.
pub enum Server {
    Prosody(Prosody),
    Ejabberd(Ejabberd),
}

impl Server {
    /// Starts a server of `kind`; panics with a clear message when it is not installed.
    pub fn start(kind: Kind) -> Self {
        Self::start_with(kind, "")
    }

    /// Starts a server of `kind` with extra settings: Lua lines for Prosody's global section,
    /// top-level YAML lines for ejabberd.
    pub fn start_with(kind: Kind, extra: &str) -> Self {
        match kind {
            Kind::Prosody => Server::Prosody(Prosody::start_with(extra)),
            Kind::Ejabberd => Server::Ejabberd(Ejabberd::start_with(extra)),
        }
    }

    /// Starts a server of `kind` from the distribution's own configuration file, with
    /// `snippet` added (see [`crate::stock`]). Clients must use STARTTLS with [`Server::ca_file`].
    pub fn start_stock(kind: Kind, snippet: &crate::stock::Snippet) -> Self {
        match kind {
            Kind::Prosody => Server::Prosody(Prosody::start_stock(snippet)),
            Kind::Ejabberd => Server::Ejabberd(Ejabberd::start_stock(snippet)),
        }
    }

    /// Whether clients must use TLS: the stock configurations require it; the lab ones allow
    /// plaintext on loopback.
    pub fn tls_required(&self) -> bool {
        match self {
            Server::Prosody(s) => s.tls_required,
            Server::Ejabberd(s) => s.tls_required,
        }
    }

    /// The `[xmpp]` lines for `tls` and `ca_file` a bot needs on this server.
    pub fn tls_toml(&self) -> String {
        if self.tls_required() {
            format!(
                "tls = \"required\"\nca_file = \"{}\"",
                self.ca_file().display()
            )
        } else {
            "tls = \"none\"".to_string()
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Server::Prosody(_) => Kind::Prosody,
            Server::Ejabberd(_) => Kind::Ejabberd,
        }
    }

    /// The c2s port (plaintext or STARTTLS).
    pub fn port(&self) -> u16 {
        match self {
            Server::Prosody(s) => s.port,
            Server::Ejabberd(s) => s.port,
        }
    }

    /// The XEP-0368 direct TLS port.
    pub fn tls_port(&self) -> u16 {
        match self {
            Server::Prosody(s) => s.tls_port,
            Server::Ejabberd(s) => s.tls_port,
        }
    }

    /// `host:port` for `[xmpp] server`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    /// The PEM file of the private test CA (for `ca_file`).
    pub fn ca_file(&self) -> PathBuf {
        self.dir().join("ca.pem")
    }

    /// A directory for the test's own files (configs, markers).
    pub fn scratch(&self) -> PathBuf {
        let d = self.dir().join("scratch");
        fs::create_dir_all(&d).expect("scratch dir");
        d
    }

    fn dir(&self) -> &Path {
        match self {
            Server::Prosody(s) => s.dir(),
            Server::Ejabberd(s) => s.dir(),
        }
    }

    /// Creates the account `user@localhost`; returns its JID.
    pub fn register(&self, user: &str, password: &str) -> String {
        match self {
            Server::Prosody(s) => s.register(user, password),
            Server::Ejabberd(s) => s.register(user, password),
        }
    }

    /// Creates many accounts at once, faster than [`Server::register`] one by one.
    pub fn register_many(&self, accounts: &[(String, String)]) {
        match self {
            Server::Prosody(s) => s.register_many(accounts),
            Server::Ejabberd(s) => s.register_many(accounts),
        }
    }

    /// Mutual subscriptions between `hub` and each of `contacts` (user parts), written
    /// through the server's own store or API instead of a handshake each.
    pub fn subscribe_both(&self, hub: &str, contacts: &[String]) {
        match self {
            Server::Prosody(s) => s.subscribe_both(hub, contacts),
            Server::Ejabberd(s) => s.subscribe_both(hub, contacts),
        }
    }

    /// The server process's PID (for CPU and memory figures).
    pub fn pid(&self) -> Option<u32> {
        match self {
            Server::Prosody(s) => s.pid(),
            Server::Ejabberd(s) => s.pid(),
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        match self {
            Server::Prosody(s) => s.log(),
            Server::Ejabberd(s) => s.log(),
        }
    }

    /// Stops the server (SIGTERM to its PID, SIGKILL after 5 s).
    pub fn stop(&mut self) {
        match self {
            Server::Prosody(s) => s.stop(),
            Server::Ejabberd(s) => s.stop(),
        }
    }

    /// Starts the server again on the same ports with the same data.
    pub fn restart(&mut self) {
        match self {
            Server::Prosody(s) => s.restart(),
            Server::Ejabberd(s) => s.restart(),
        }
    }
}

/// Runs one test body against each server: `server_matrix!(#[tokio::test] name);` beside
/// `async fn name(kind: Kind)` gives the tests `name::prosody` and `name::ejabberd` (filter
/// with `cargo nextest run -E 'test(ejabberd)'`).
#[macro_export]
macro_rules! server_matrix {
    ($(#[$attr:meta])+ $name:ident) => {
        mod $name {
            $(#[$attr])+
            async fn prosody() {
                super::$name($crate::Kind::Prosody).await
            }
            $(#[$attr])+
            async fn ejabberd() {
                super::$name($crate::Kind::Ejabberd).await
            }
        }
    };
}

/// A free loopback port (bound and released; the server binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Whether the tests run as root (servers then drop privileges to their own users).
pub fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// Hands `path` (recursively) to `user` when we are root, so the server can write there.
pub fn chown(path: &Path, user: &str) {
    if is_root() {
        let ok = Command::new("chown")
            .arg("-R")
            .arg(format!("{user}:{user}"))
            .arg(path)
            .status();
        assert!(
            ok.map(|s| s.success()).unwrap_or(false),
            "chown {user} {}",
            path.display()
        );
    }
}

/// Writes a small private CA (`ca.pem`) and a CA:FALSE leaf for `localhost`
/// (`localhost.crt`, `localhost.key`) into `dir` (rustls rejects a bare self-signed CA
/// certificate as a server certificate).
pub fn write_test_ca(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=jabmon test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "localhost.key",
        "-out",
        "localhost.csr",
        "-subj",
        "/CN=localhost",
    ]);
    fs::write(dir.join("leaf.ext"), "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n").expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "localhost.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "localhost.crt",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ]);
}
