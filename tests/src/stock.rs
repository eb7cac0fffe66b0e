//! The servers as the distribution ships them: Debian's own `/etc/prosody/prosody.cfg.lua` and
//! `/etc/ejabberd/ejabberd.yml`, with only what a private test server must change — ports,
//! listening address, paths and certificates — and every limit, shaper and module kept. With
//! [`Snippet::Jabmon`] the repository's own snippet for the server (`configs/prosody/` or
//! `configs/ejabberd/`) is added the way an operator adds it, its example JIDs replaced by the
//! test's bots.
//!
//! The text edits are pure functions, unit-tested below against the files as Debian ships them.

use std::path::{Path, PathBuf};

/// Debian's Prosody configuration.
pub const PROSODY_STOCK: &str = "/etc/prosody/prosody.cfg.lua";
/// Debian's ejabberd configuration.
pub const EJABBERD_STOCK: &str = "/etc/ejabberd/ejabberd.yml";

/// The domain the repository's snippets use in their example JIDs.
const EXAMPLE_DOMAIN: &str = "example.org";

/// What is added to the stock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Snippet {
    /// Nothing: the file as shipped.
    None,
    /// The repository's snippet for the server, for these bots' bare JIDs.
    Jabmon(Vec<String>),
}

/// The repository's snippet for Prosody (a file for `/etc/prosody/conf.d/`).
pub fn prosody_snippet_path() -> PathBuf {
    repo_configs().join("prosody/jabmon.cfg.lua")
}

/// The repository's snippet for ejabberd (a file for `include_config_file`).
pub fn ejabberd_snippet_path() -> PathBuf {
    repo_configs().join("ejabberd/jabmon.yml")
}

fn repo_configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

/// Reads a stock file; panics with the package to install when it is missing.
pub fn read_stock(path: &str, package: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("{path}: {e} (it comes with Debian's `{package}` package: apt-get install -y {package})")
    })
}

/// A snippet made concrete: every line naming an example JID (`…@example.org`) is repeated
/// once per bot with the bot's JID in its place, and the example domain elsewhere becomes the
/// test's `domain`.
pub fn fill_snippet(snippet: &str, bots: &[String], domain: &str) -> String {
    let mut out = String::new();
    let mut filled = false;
    for line in snippet.lines() {
        if let Some(example) = example_jid(line) {
            if !filled {
                for bot in bots {
                    out.push_str(&line.replace(&example, bot));
                    out.push('\n');
                }
                filled = true;
            }
            continue;
        }
        out.push_str(&line.replace(EXAMPLE_DOMAIN, domain));
        out.push('\n');
    }
    out
}

/// The example JID a snippet line names, if it is not a comment.
fn example_jid(line: &str) -> Option<String> {
    let trimmed = line.trim_start();
    if trimmed.starts_with("--") || trimmed.starts_with('#') {
        return None;
    }
    let at = line.find(&format!("@{EXAMPLE_DOMAIN}"))?;
    let start = line[..at]
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .map_or(0, |i| i + 1);
    Some(line[start..at + 1 + EXAMPLE_DOMAIN.len()].to_string())
}

/// Debian's Prosody file with `overrides` (Lua lines) placed at the end of its global section,
/// so that they win over the stock values of the same options, and its `Include` of
/// `conf.d/*.cfg.lua` kept (relative to the file, so it reads the test's own `conf.d`).
pub fn prosody_config(stock: &str, overrides: &str) -> String {
    let mut out = String::new();
    let mut placed = false;
    for line in stock.lines() {
        let t = line.trim_start();
        if !placed && (t.starts_with("VirtualHost") || t.starts_with("Component")) {
            out.push_str("-- jabmon test server: ports, paths and certificates\n");
            out.push_str(overrides);
            out.push('\n');
            placed = true;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !placed {
        out.push_str(overrides);
        out.push('\n');
    }
    out
}

/// `mod_pres_counter` in Debian's `ejabberd.yml` ...
pub const EJABBERD_PRES_COUNTER_STOCK: &str =
    "  mod_pres_counter:\n    count: 5\n    interval: 60\n";
/// ... and as `configs/ejabberd/jabmon.yml` says to change it in `ejabberd.yml` itself.
pub const EJABBERD_PRES_COUNTER_JABMON: &str =
    "  mod_pres_counter:\n    count: 1000\n    interval: 60\n";

/// Debian's `ejabberd.yml` with the one change the snippet asks for in the file itself
/// ([`EJABBERD_PRES_COUNTER_JABMON`]); panics when the stock lines are not there.
pub fn raise_pres_counter(yaml: &str) -> String {
    assert!(
        yaml.contains(EJABBERD_PRES_COUNTER_STOCK),
        "Debian's ejabberd.yml no longer has {EJABBERD_PRES_COUNTER_STOCK:?}: update configs/ejabberd/jabmon.yml and docs/operations.md"
    );
    yaml.replace(EJABBERD_PRES_COUNTER_STOCK, EJABBERD_PRES_COUNTER_JABMON)
}

/// Replaces the top-level YAML option `key` (its line and every indented or comment line
/// under it) with `block`, or appends `block` when the file has no such option.
pub fn replace_yaml_option(yaml: &str, key: &str, block: &str) -> String {
    let head = format!("{key}:");
    let mut out = String::new();
    let mut skipping = false;
    let mut replaced = false;
    for line in yaml.lines() {
        let top_level = line
            .chars()
            .next()
            .is_some_and(|c| !c.is_whitespace() && c != '#');
        if top_level {
            skipping = false;
            if !replaced && line.starts_with(&head) {
                out.push_str(block.trim_end());
                out.push('\n');
                skipping = true;
                replaced = true;
                continue;
            }
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !replaced {
        out.push_str(block.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snippet_names_each_bot_where_it_named_the_examples() {
        let snippet = "-- hub@example.org is an example\nunlimited_jids = {\n    \"hub@example.org\";\n    \"web1@example.org\";\n}\nVirtualHost \"example.org\"\n";
        let bots = vec!["hub@localhost".to_string(), "c1@localhost".to_string()];
        assert_eq!(
            fill_snippet(snippet, &bots, "localhost"),
            "-- hub@localhost is an example\nunlimited_jids = {\n    \"hub@localhost\";\n    \"c1@localhost\";\n}\nVirtualHost \"localhost\"\n"
        );
        let yaml = "acl:\n  jabmon_bots:\n    user:\n      - \"hub@example.org\"\n      - \"web1@example.org\"\n";
        assert_eq!(
            fill_snippet(yaml, &bots[1..], "localhost"),
            "acl:\n  jabmon_bots:\n    user:\n      - \"c1@localhost\"\n"
        );
    }

    #[test]
    fn prosody_overrides_go_before_the_first_host() {
        let stock = "admins = { }\npidfile = \"/run/prosody/prosody.pid\";\nVirtualHost \"localhost\"\nInclude \"conf.d/*.cfg.lua\"\n";
        let out = prosody_config(stock, "pidfile = \"/tmp/p.pid\"");
        let over = out.find("/tmp/p.pid").unwrap();
        assert!(out.find("/run/prosody").unwrap() < over);
        assert!(over < out.find("VirtualHost").unwrap());
        assert!(out.ends_with("Include \"conf.d/*.cfg.lua\"\n"));
    }

    #[test]
    fn a_yaml_option_is_replaced_whole_and_the_rest_kept() {
        let stock = "hosts:\n  - localhost\nlisten:\n  -\n    port: 5222\n# a comment\n  -\n    port: 5269\nshaper:\n  normal: 3000\n";
        let out = replace_yaml_option(stock, "listen", "listen:\n  - port: 1\n");
        assert_eq!(
            out,
            "hosts:\n  - localhost\nlisten:\n  - port: 1\nshaper:\n  normal: 3000\n"
        );
        let appended = replace_yaml_option(&out, "include_config_file", "include_config_file: /x");
        assert!(appended.ends_with("normal: 3000\ninclude_config_file: /x\n"));
    }

    /// The edits find their places in the files Debian ships (when installed here).
    #[test]
    fn the_installed_stock_files_take_the_edits() {
        if let Ok(stock) = std::fs::read_to_string(PROSODY_STOCK) {
            let out = prosody_config(&stock, "c2s_ports = { 1 }");
            let host = out.find("\nVirtualHost").expect("a VirtualHost line");
            assert!(out.find("c2s_ports = { 1 }").unwrap() < host);
            assert!(out.contains("rate = \"10kb/s\""), "the stock limit is kept");
        }
        if let Ok(stock) = std::fs::read_to_string(EJABBERD_STOCK) {
            assert!(raise_pres_counter(&stock).contains("count: 1000"));
            let out = replace_yaml_option(&stock, "listen", "listen: []");
            assert!(!out.contains("port: 5222"));
            assert!(out.contains("c2s_shaper"), "the stock shaper is kept");
            assert!(out.contains("\nmodules:\n"));
        }
    }
}
