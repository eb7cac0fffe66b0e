//! jabmon's shared crate: everything both bots need.
//!
//! - [`config`]: loading TOML + `JABMON_SECTION__KEY` overrides, common sections, validation.
//! - [`acl`]: JID / `@domain` access lists.
//! - [`logging`]: tracing set-up (with the `log` bridge).
//! - [`session`]: the XMPP session layer (connect, reconnect, IQ routing, ping, version).
//! - [`caps`]: XEP-0115 entity capabilities.
//! - [`cli`]: the bots' two command-line flags.
//! - [`forms`]: XEP-0004 field helpers (every field typed and labelled).
//! - [`metric`]: metric naming rules.
//! - [`human`]: values as people read them (binary units, durations, UTC times).
//! - [`adhoc`]: XEP-0050 command elements.
//! - [`disco`]: XEP-0030 answers both bots give alike (caps node, command nodes).
//! - [`presence`]: subscription answers under an access list, and the goodbye presence.
//! - [`payload`]: the `urn:jabmon:stats:0` and `urn:jabmon:events:0` payloads.
//! - [`pep`]: XEP-0163 publish requests with publish-options.
#![forbid(unsafe_code)]

pub mod acl;
pub mod adhoc;
pub mod caps;
pub mod cli;
pub mod config;
pub mod disco;
pub mod forms;
pub mod human;
pub mod logging;
pub mod metric;
pub mod ns;
pub mod payload;
pub mod pep;
pub mod presence;
pub mod session;

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("a SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// The common body of a bot's `main` after flag parsing: report an invalid configuration
/// (every problem, exit 64), or `--check-config`, or set up logging and run the bot on a
/// current-thread runtime until SIGTERM/SIGINT (exit 1 on a fatal error).
pub fn bot_main<C, E, Fut>(
    loaded: Result<C, config::Problems>,
    check_only: bool,
    log: impl Fn(&C) -> &config::LogConfig,
    run: impl FnOnce(C, std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>) -> Fut,
) where
    E: std::fmt::Display,
    Fut: std::future::Future<Output = Result<(), E>>,
{
    let cfg = match loaded {
        Ok(cfg) => cfg,
        Err(problems) => {
            eprintln!("{problems}");
            std::process::exit(config::EXIT_CONFIG);
        }
    };
    if check_only {
        println!("configuration OK");
        return;
    }
    logging::init(log(&cfg));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if let Err(e) = runtime.block_on(run(cfg, Box::pin(shutdown_signal()))) {
        tracing::error!("{e}");
        std::process::exit(1);
    }
}

/// Wall-clock seconds since the epoch, as payloads and events carry them.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
