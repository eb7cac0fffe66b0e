//! Running the bots under test: in-process (fast, for most tests) or as real processes (for
//! signals and crashes).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::Server;

/// Writes a collector config for `jid` on `server` (plaintext to loopback unless the server requires TLS) plus `extra` TOML
/// (appended verbatim; sections must not repeat the generated ones).
pub fn collector_toml(server: &Server, user: &str, password: &str, sections: &str) -> PathBuf {
    let path = server.scratch().join(format!("{user}.toml"));
    let text = format!(
        "[xmpp]\njid = \"{user}@localhost\"\npassword = \"{password}\"\nresource = \"jabmon\"\nserver = \"{}\"\n{}\n\n{sections}\n",
        server.addr(),
        server.tls_toml()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// Writes a hub config (`hub@localhost`; plaintext to loopback unless the server requires TLS) plus `sections`.
pub fn hub_toml(server: &Server, sections: &str) -> PathBuf {
    let path = server.scratch().join("hub.toml");
    let text = format!(
        "[xmpp]\njid = \"hub@localhost\"\npassword = \"pw-hub\"\nresource = \"hub\"\nserver = \"{}\"\n{}\n\n{sections}\n",
        server.addr(),
        server.tls_toml()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// A collector running inside the test process.
pub struct InProcess {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl InProcess {
    /// Loads `config` and runs the collector on the current runtime.
    pub fn collector(config: &std::path::Path) -> Self {
        let cfg = jabmon_collector::Config::load(Some(config)).unwrap_or_else(|p| panic!("{p}"));
        Self::spawn(move |stop| async move {
            jabmon_collector::run(cfg, stop)
                .await
                .expect("collector run")
        })
    }

    /// Loads `config` and runs the hub on the current runtime.
    pub fn hub(config: &std::path::Path) -> Self {
        let cfg = jabmon_hub::Config::load(Some(config)).unwrap_or_else(|p| panic!("{p}"));
        Self::spawn(move |stop| async move { jabmon_hub::run(cfg, stop).await.expect("hub run") })
    }

    fn spawn<F, Fut>(bot: F) -> Self
    where
        F: FnOnce(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(bot(Box::pin(async move {
            let _ = rx.await;
        })));
        Self {
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Asks the bot to stop and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A bot binary running as a child process (killed on drop).
pub struct Process {
    pub child: Child,
    pub stderr: PathBuf,
}

impl Process {
    /// Starts workspace binary `bin` with `--config config`.
    pub fn start(bin: &str, config: &std::path::Path) -> Self {
        let stderr = config.with_extension("log");
        let file = std::fs::File::create(&stderr).expect("log file");
        let child = Command::new(crate::workspace_bin(bin))
            .arg("--config")
            .arg(config)
            .env(
                "RUST_LOG",
                std::env::var("BOTS_RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start bot");
        Self { child, stderr }
    }

    /// What the bot logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends a signal by PID.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status();
        assert!(ok.map(|s| s.success()).unwrap_or(false), "kill -{sig}");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- log of {} ---\n{}", self.stderr.display(), self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
