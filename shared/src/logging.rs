//! tracing set-up for every binary, with the `log` crate bridged in so that what tokio-xmpp
//! reports only through `log` (connection and authentication failures) reaches the operator —
//! except its line per invalid stanza, which `session::discarded` counts instead.
//!
//! Filters use `Targets` (`info`, `jabmon_collector=debug,warn`): the same syntax as
//! `RUST_LOG` without span filters, and without the regex engine `EnvFilter` links in, which
//! is a good part of a collector's resident code.

use std::str::FromStr;

use crate::config::{LogConfig, LogFormat};
use crate::session::discarded::InvalidStanzaLines;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Parses a filter: `level` or `target=level` pairs, comma-separated.
pub fn parse_filter(text: &str) -> Result<Targets, String> {
    Targets::from_str(text).map_err(|e| e.to_string())
}

/// Installs the global subscriber. `RUST_LOG` overrides `[log] level`.
pub fn init(cfg: &LogConfig) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| parse_filter(&v).ok())
        .or_else(|| parse_filter(&cfg.level).ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(true);
    // `try_init` also installs the log→tracing bridge (tracing-log feature).
    let _ = match cfg.format {
        LogFormat::Json => tracing_subscriber::registry()
            .with(InvalidStanzaLines)
            .with(fmt.json())
            .with(filter)
            .try_init(),
        LogFormat::Text => tracing_subscriber::registry()
            .with(InvalidStanzaLines)
            .with(fmt)
            .with(filter)
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_syntax() {
        assert!(parse_filter("info").is_ok());
        assert!(parse_filter("jabmon_collector=debug,tokio_xmpp=warn,info").is_ok());
        assert!(parse_filter("jabmon=loud").is_err());
    }
}
