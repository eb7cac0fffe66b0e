//! The integration-test harness: a private server per test — Prosody or ejabberd — test
//! clients on the project's own session layer, and helpers to run the bots in-process or as
//! processes.
//!
//! Every test that needs a server calls [`Server::start`] with a [`Kind`], and
//! [`server_matrix!`] runs one test body against both. Each server gets its own temp directory
//! (config, data, log, pid, private CA) and free loopback ports, and is stopped by its own PID
//! when the handle drops:
//! - [`prosody`]: the Debian `prosody` binary; accounts are written straight into its data
//!   store (instant, versus ~60 ms per `prosodyctl register`).
//! - [`ejabberd`]: `ejabberdctl --config-dir` with its own Erlang node, cookie and
//!   distribution port; accounts through its HTTP API.
//! - [`loadgen`]: thousands of synthetic collectors and users against a real hub (the
//!   `jabmon-loadgen` tool).

// The harness is test code: a setup step that fails should stop the test at once.
#![allow(clippy::unwrap_used)]

pub mod bots;
pub mod chat;
pub mod client;
pub mod ejabberd;
pub mod loadgen;
pub mod muc;
pub mod pep;
pub mod prosody;
pub mod server;
pub mod stock;

pub use client::TestClient;
pub use server::{Kind, Server};

use std::future::Future;
use std::time::Duration;

/// Waits for `cond` to become `Some`, polling every 20 ms, for at most `limit`.
pub async fn wait_for<T, F, Fut>(limit: Duration, what: &str, mut cond: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = cond().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Path of a workspace binary built by `cargo build --bins` (the README's test command does
/// that first): Cargo only gives integration tests the binaries of their own package.
/// `BOTS_BIN_DIR` overrides the directory (e.g. `target/small` for the measurement tools; not
/// `JABMON_…`, which the bots would read as configuration).
pub fn workspace_bin(name: &str) -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("BOTS_BIN_DIR") {
        return std::path::Path::new(&dir).join(name);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> or target/<profile>/<bin> → target/<profile>/<name>
    let mut dir = exe.parent().expect("target dir");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("profile dir");
    }
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} not found: run `cargo build --bins` before the integration tests",
        bin.display()
    );
    bin
}

/// Keeps a core busy while alive, so the load average cannot read 0.00.
pub struct Burner(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Burner {
    pub fn start() -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        std::thread::spawn(move || {
            let mut x = 0u64;
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        });
        Self(stop)
    }
}

impl Drop for Burner {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
