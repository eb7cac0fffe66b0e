//! A private ejabberd on free loopback ports.
//!
//! `ejabberdctl --config-dir DIR foreground` with everything in DIR: `ejabberd.yml`,
//! `ejabberdctl.cfg` (its own Erlang node name, cookie, spool, logs, pid file and distribution
//! port — `ERL_DIST_PORT` runs the node without epmd, so no state is shared with any other
//! node) and `inetrc`. ejabberdctl must run as root (it switches to the `ejabberd` user) and
//! does not exec the VM, so the harness stops the VM by the PID in the pid file. Accounts are
//! created through `mod_http_api` on a loopback HTTP port: one request each, no VM boot
//! (`ejabberdctl register` boots one per account, 0.3–0.8 s).
//!
//! [`Cluster`] is two such nodes joined with `join_cluster`; they find each other through a
//! private epmd on its own port instead of a fixed distribution port.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::server::{chown, free_port, is_root, write_test_ca, Server, DOMAIN};
use crate::stock::{self, Snippet};

const EJABBERDCTL: &str = "/usr/sbin/ejabberdctl";

/// Whether nodes started from now on are for thousands of clients (set by `jabmon-loadgen`).
static MANY_CLIENTS: AtomicBool = AtomicBool::new(false);

/// Makes the nodes this process starts from now on take thousands of connections: run by
/// root, ejabberdctl changes user with `su`, whose PAM session puts the open-files limit back
/// to 1,024, and a fleet of a thousand synthetic collectors then exhausts it (every accept
/// fails and the node stops). Such nodes are started with setpriv instead, which keeps the
/// caller's limit. Only the fleet tool asks for it: with setpriv, the hardening test
/// `guessed_answers_change_nothing_at_the_hub` lost the query it sends while the hub logs in
/// in 5 of 12 runs on ejabberd (0 of 12 with `su`), for a reason not found yet.
pub fn allow_many_clients() {
    MANY_CLIENTS.store(true, Ordering::Relaxed);
}

/// `ejabberdctl`, run through setpriv as the `ejabberd` user after [`allow_many_clients`].
fn ejabberdctl() -> Command {
    if !is_root() || !MANY_CLIENTS.load(Ordering::Relaxed) {
        return Command::new(EJABBERDCTL);
    }
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid=ejabberd",
        "--regid=ejabberd",
        "--init-groups",
        EJABBERDCTL,
    ])
    .env("HOME", "/var/lib/ejabberd");
    c
}

/// How long a node may take to come up on a loaded machine.
const START_LIMIT: Duration = Duration::from_secs(30);

/// A running ejabberd; stopped (by PID) on drop.
pub struct Ejabberd {
    ctl: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
    /// XEP-0368 direct TLS port.
    pub tls_port: u16,
    /// `mod_http_api`, for creating accounts.
    pub http_port: u16,
    /// The Erlang node name, `jabmon…@localhost`.
    pub node: String,
    /// Whether clients must use TLS (the stock configuration requires it).
    pub tls_required: bool,
}

impl Ejabberd {
    /// Starts a server; panics with a clear message when ejabberd is missing or we are not
    /// root.
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// Starts a server with `extra` top-level YAML lines added to the lab configuration
    /// (`jabmon-loadgen --server-extra`, e.g. `cache_size: 20000`).
    pub fn start_with(extra: &str) -> Self {
        Self::start_node(Distribution::Alone, Err(extra))
    }

    /// Starts a server from Debian's own `ejabberd.yml` (see [`crate::stock`]): its shapers,
    /// access rules and modules kept, STARTTLS required; `snippet` is added with
    /// `include_config_file`, with the one edit of `ejabberd.yml` it asks for
    /// ([`stock::raise_pres_counter`]).
    pub fn start_stock(snippet: &Snippet) -> Self {
        let stock = stock::read_stock(stock::EJABBERD_STOCK, "ejabberd");
        let snippet = match snippet {
            Snippet::None => None,
            Snippet::Jabmon(bots) => {
                let path = stock::ejabberd_snippet_path();
                let text = stock::read_stock(&path.display().to_string(), "ejabberd");
                Some(stock::fill_snippet(&text, bots, DOMAIN))
            }
        };
        Self::start_node(Distribution::Alone, Ok((stock, snippet)))
    }

    /// `config`: the stock file and the snippet to include, or extra lines for the lab
    /// configuration.
    fn start_node(
        distribution: Distribution<'_>,
        config: Result<(String, Option<String>), &str>,
    ) -> Self {
        jabmon_shared::logging::init(&jabmon_shared::config::LogConfig::default());
        assert!(
            Path::new(EJABBERDCTL).exists(),
            "ejabberd is not installed: run `apt-get install -y ejabberd` (scripts/setup-deps does)"
        );
        assert!(
            is_root(),
            "the ejabberd tests run as root: ejabberdctl starts the server as the `ejabberd` user only from root"
        );
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let node = format!(
            "jabmon{}x{}@localhost",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::Builder::new()
            .prefix("jabmon-ejabberd-")
            .tempdir()
            .expect("temp dir");
        let d = dir.path();
        fs::set_permissions(d, fs::Permissions::from_mode(0o755)).expect("chmod");
        for sub in ["spool", "logs"] {
            fs::create_dir_all(d.join(sub)).expect("spool and log dirs");
        }
        let (port, tls_port, http_port) = (free_port(), free_port(), free_port());
        let tls_required = config.is_ok();
        let config = match config {
            Err(extra) => config_text(d, port, tls_port, http_port) + extra,
            Ok((stock, snippet)) => {
                let mut yml = stock_config(&stock, d, port, tls_port, http_port);
                if let Some(snippet) = snippet {
                    yml = stock::raise_pres_counter(&yml);
                    let path = d.join("jabmon.yml");
                    fs::write(&path, snippet).expect("snippet");
                    let include = format!("include_config_file:\n  - \"{}\"\n", path.display());
                    yml = stock::replace_yaml_option(&yml, "include_config_file", &include);
                }
                yml
            }
        };
        fs::write(d.join("ejabberd.yml"), config).expect("ejabberd.yml");
        let (cookie, network) = match distribution {
            Distribution::Alone => (cookie(), format!("ERL_DIST_PORT={}\n", free_port())),
            Distribution::Cluster { epmd_port, cookie } => (
                cookie.to_string(),
                format!("export ERL_EPMD_PORT={epmd_port}\n"),
            ),
        };
        fs::write(
            d.join("ejabberdctl.cfg"),
            ctl_config_text(d, &node, &cookie, &network),
        )
        .expect("ejabberdctl.cfg");
        fs::write(
            d.join("inetrc"),
            "{lookup,[\"file\",\"native\"]}.\n{host,{127,0,0,1}, [\"localhost\"]}.\n",
        )
        .expect("inetrc");
        write_test_ca(d);
        chown(d, "ejabberd");
        let mut e = Self {
            ctl: None,
            dir,
            port,
            tls_port,
            http_port,
            node,
            tls_required,
        };
        e.spawn();
        e
    }

    /// Its temp directory (config, spool, logs, CA).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn pid_file(&self) -> std::path::PathBuf {
        self.dir().join("ejabberd.pid")
    }

    fn spawn(&mut self) {
        // A port from `free_port` is free when chosen, not when ejabberd binds it: another
        // test's connection may take it in between. Then move to fresh ports and start again.
        for attempt in 1.. {
            let _ = fs::remove_file(self.pid_file());
            let out = fs::File::create(self.dir().join("ejabberdctl.out")).expect("ctl output");
            let ctl = ejabberdctl()
                .arg("--config-dir")
                .arg(self.dir())
                .arg("foreground")
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("ctl output"))
                .stderr(out)
                .spawn()
                .expect("start ejabberdctl");
            self.ctl = Some(ctl);
            match self.wait_ready() {
                Ok(()) => return,
                Err(failure) if failure.contains("eaddrinuse") && attempt < 4 => self.move_ports(),
                Err(failure) => panic!("{failure}"),
            }
        }
    }

    /// Rewrites the configuration's listeners onto fresh ports.
    fn move_ports(&mut self) {
        let path = self.dir().join("ejabberd.yml");
        let mut yml = fs::read_to_string(&path).expect("ejabberd.yml");
        for port in [&mut self.port, &mut self.tls_port, &mut self.http_port] {
            let fresh = free_port();
            yml = yml.replace(&format!("port: {port}\n"), &format!("port: {fresh}\n"));
            *port = fresh;
        }
        fs::write(&path, yml).expect("ejabberd.yml");
    }

    /// Waits until c2s accepts connections and the HTTP API answers `status`; `Err` with the
    /// output and log when ejabberd exited instead.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && self.api("status", &serde_json::json!({})).is_ok()
            {
                return Ok(());
            }
            if let Some(ctl) = self.ctl.as_mut() {
                if let Ok(Some(status)) = ctl.try_wait() {
                    self.ctl = None;
                    return Err(format!(
                        "ejabberd exited at start ({status}); output:\n{}\nlog:\n{}",
                        fs::read_to_string(self.dir().join("ejabberdctl.out")).unwrap_or_default(),
                        self.log()
                    ));
                }
            }
            assert!(
                Instant::now() < deadline,
                "ejabberd was not ready within {START_LIMIT:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `ejabberdctl ARGS` against this node; panics when it fails.
    pub fn ctl(&self, args: &[&str]) -> String {
        let out = ejabberdctl()
            .arg("--config-dir")
            .arg(self.dir())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ejabberdctl");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "ejabberdctl {args:?}: {text}");
        text
    }

    /// `host:port` of its c2s listener.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// One `mod_http_api` call: `POST /api/<command>` with a JSON body; the body of a 200.
    pub fn api(&self, command: &str, args: &serde_json::Value) -> Result<String, String> {
        let body = args.to_string();
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.http_port))
            .map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        write!(
            s,
            "POST /api/{command} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
        let (head, rest) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        if head.starts_with("HTTP/1.1 200") {
            Ok(rest.to_string())
        } else {
            Err(answer)
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir().join("logs/ejabberd.log")).unwrap_or_default()
    }

    /// Creates an account `user@localhost` (one HTTP API request; on the stock configuration,
    /// whose `api_permissions` refuse an unauthenticated request, `ejabberdctl register`).
    pub fn register(&self, user: &str, password: &str) -> String {
        if self.tls_required {
            self.ctl(&["register", user, DOMAIN, password]);
            return format!("{user}@{DOMAIN}");
        }
        let args = serde_json::json!({ "user": user, "host": DOMAIN, "password": password });
        if let Err(e) = self.api("register", &args) {
            panic!("ejabberd refused to register {user}: {e}");
        }
        format!("{user}@{DOMAIN}")
    }

    /// Creates many accounts: HTTP API requests from a few threads at once.
    pub fn register_many(&self, accounts: &[(String, String)]) {
        self.in_parallel(accounts, |(user, password)| {
            let args = serde_json::json!({ "user": user, "host": DOMAIN, "password": password });
            self.api("register", &args).map(|_| ())
        });
    }

    /// Mutual (`both`) roster items between `hub` and each of `contacts`, through the HTTP
    /// API (`add_rosteritem`, from `mod_admin_extra`), as if every subscription handshake had run.
    pub fn subscribe_both(&self, hub: &str, contacts: &[String]) {
        self.in_parallel(contacts, |c| {
            for (owner, other) in [(hub, c.as_str()), (c.as_str(), hub)] {
                if self.tls_required {
                    // The stock `api_permissions` refuse unauthenticated HTTP requests.
                    let (nick, group) = (other, "jabmon");
                    self.ctl(&[
                        "add_rosteritem",
                        owner,
                        DOMAIN,
                        other,
                        DOMAIN,
                        nick,
                        group,
                        "both",
                    ]);
                    continue;
                }
                let args = serde_json::json!({
                    "localuser": owner, "localhost": DOMAIN, "user": other, "host": DOMAIN,
                    "nick": other, "group": "jabmon", "subs": "both"
                });
                self.api("add_rosteritem", &args)?;
            }
            Ok(())
        });
    }

    fn in_parallel<T: Sync>(&self, items: &[T], each: impl Fn(&T) -> Result<(), String> + Sync) {
        let chunk = items.len().div_ceil(8).max(1);
        std::thread::scope(|s| {
            for part in items.chunks(chunk) {
                let each = &each;
                s.spawn(move || {
                    for item in part {
                        if let Err(e) = each(item) {
                            panic!("ejabberd HTTP API: {e}");
                        }
                    }
                });
            }
        });
    }

    /// The server's (the VM's) PID.
    pub fn pid(&self) -> Option<u32> {
        self.vm_pid()
    }

    /// The VM's PID, from the pid file ejabberd writes once it runs.
    fn vm_pid(&self) -> Option<u32> {
        fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Stops the server: SIGTERM to the VM, SIGKILL after 5 s.
    pub fn stop(&mut self) {
        let Some(mut ctl) = self.ctl.take() else {
            return;
        };
        let pid = self.vm_pid();
        let signal = |sig: &str| {
            if let Some(pid) = pid {
                let _ = Command::new("kill")
                    .arg(format!("-{sig}"))
                    .arg(pid.to_string())
                    .status();
            }
        };
        signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = ctl.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        signal("KILL");
        let _ = ctl.kill();
        let _ = ctl.wait();
    }

    /// Starts the server again on the same ports with the same spool.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

/// A private epmd on its own port, for the nodes of one cluster; killed (by PID) on drop.
struct Epmd {
    child: Child,
    port: u16,
}

impl Epmd {
    fn start() -> Self {
        let port = free_port();
        let child = Command::new("/usr/bin/epmd")
            .arg("-port")
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start epmd");
        let deadline = Instant::now() + START_LIMIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "epmd did not listen");
            std::thread::sleep(Duration::from_millis(10));
        }
        Self { child, port }
    }
}

impl Drop for Epmd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two ejabberd nodes on loopback joined with `join_cluster`: one Mnesia database (accounts,
/// rosters, PEP items) and one routing table, each node with its own c2s ports. The nodes share
/// a private epmd and a cookie; nothing else on the machine sees them.
pub struct Cluster {
    pub a: Server,
    pub b: Server,
    // Dropped after the nodes (fields drop in order).
    _epmd: Epmd,
}

impl Cluster {
    pub fn start() -> Self {
        let epmd = Epmd::start();
        let cookie = cookie();
        let distribution = || Distribution::Cluster {
            epmd_port: epmd.port,
            cookie: &cookie,
        };
        let a = Ejabberd::start_node(distribution(), Err(""));
        let mut b = Ejabberd::start_node(distribution(), Err(""));
        b.ctl(&["join_cluster", &a.node]);
        if let Err(failure) = b.wait_ready() {
            panic!("node B after join_cluster: {failure}");
        }
        Self {
            a: Server::Ejabberd(a),
            b: Server::Ejabberd(b),
            _epmd: epmd,
        }
    }
}

impl Drop for Ejabberd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- server log ---\n{}", self.log());
        }
        self.stop();
    }
}

/// How a node meets other Erlang nodes.
enum Distribution<'a> {
    /// No other node: it listens on its own distribution port, without epmd.
    Alone,
    /// A cluster's nodes share one private epmd and one cookie.
    Cluster { epmd_port: u16, cookie: &'a str },
}

fn cookie() -> String {
    format!(
        "jabmon{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|t| t.as_nanos())
            .unwrap_or_default()
    )
}

fn ctl_config_text(dir: &Path, node: &str, cookie: &str, network: &str) -> String {
    let d = dir.display();
    format!(
        "# jabmon test server (generated)\nERLANG_NODE={node}\nSPOOL_DIR={d}/spool\nLOGS_DIR={d}/logs\nEJABBERD_PID_PATH={d}/ejabberd.pid\nEJABBERD_CONFIG_PATH={d}/ejabberd.yml\nCONTRIB_MODULES_CONF_DIR={d}/modules.d\n{network}INET_DIST_INTERFACE=127.0.0.1\nERL_OPTIONS=\"-setcookie {cookie} -env ERL_CRASH_DUMP_BYTES 0\"\nEJABBERD_BYPASS_WARNINGS=true\n"
    )
}

fn config_text(dir: &Path, port: u16, tls_port: u16, http_port: u16) -> String {
    let d = dir.display();
    format!(
        r#"# jabmon test server (generated). mod_offline as in Prosody, where it is always loaded: a
# message to a bot that is still connecting waits for it.
hosts: [localhost]
loglevel: info
log_rotate_count: 0
certfiles:
  - "{d}/localhost.crt"
  - "{d}/localhost.key"
auth_method: internal
auth_password_format: plain
listen:
  # backlog: ejabberd 23.01 listens with a queue of 5 by default; a fleet logging in
  # (jabmon-loadgen, 100 at a time) overflows it and connections stall (docs/operations.md).
  - port: {port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    starttls: true
    backlog: 1024
  - port: {tls_port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    tls: true
    backlog: 1024
  - port: {http_port}
    ip: "127.0.0.1"
    module: ejabberd_http
    request_handlers:
      /api: mod_http_api
acl:
  loopback:
    ip: [127.0.0.0/8]
api_permissions:
  "console commands":
    from: [ejabberd_ctl]
    who: all
    what: "*"
  "test harness":
    from: [mod_http_api]
    who:
      acl: loopback
    what: [register, status, add_rosteritem]
modules:
  mod_adhoc: {{}}
  mod_admin_extra: {{}}
  mod_caps: {{}}
  mod_disco: {{}}
  mod_http_api: {{}}
  mod_mam: {{}}
  mod_muc:
    host: "conference.localhost"
    # Rooms keep an archive (XEP-0313), as on a production server.
    default_room_options:
      mam: true
  mod_offline: {{}}
  mod_ping: {{}}
  mod_private: {{}}
  mod_pubsub:
    plugins: [flat, pep]
  mod_roster: {{}}
  mod_stream_mgmt: {{}}
  mod_version: {{}}
"#
    )
}

/// Debian's `ejabberd.yml` with its listeners moved to private loopback ports (the stock
/// c2s options kept: `starttls_required`, the `c2s_shaper`, `access: c2s`; plus a plain
/// HTTP API listener for creating accounts, which the stock `api_permissions` allow from
/// loopback) and the test CA's certificate.
fn stock_config(stock: &str, dir: &Path, port: u16, tls_port: u16, http_port: u16) -> String {
    let d = dir.display();
    let certfiles = format!("certfiles:\n  - \"{d}/localhost.crt\"\n  - \"{d}/localhost.key\"\n");
    let c2s = |port: u16, tls: &str| {
        format!(
            "  -\n    port: {port}\n    ip: \"127.0.0.1\"\n    module: ejabberd_c2s\n    max_stanza_size: 262144\n    shaper: c2s_shaper\n    access: c2s\n    {tls}\n    protocol_options: 'TLS_OPTIONS'\n"
        )
    };
    let listen = format!(
        "listen:\n{}{}  -\n    port: {http_port}\n    ip: \"127.0.0.1\"\n    module: ejabberd_http\n    request_handlers:\n      /api: mod_http_api\n",
        c2s(port, "starttls_required: true"),
        c2s(tls_port, "tls: true"),
    );
    let yml = stock::replace_yaml_option(stock, "certfiles", &certfiles);
    stock::replace_yaml_option(&yml, "listen", &listen)
}
