//! The query language for people typing in a chat window (docs/query-language.md, "For
//! people"): the `help` text, and the `FORMAT text` rendering — one short line per event
//! (`web1.cpu.cpu.idle 97.5 @ 12:00:03`, UTC) and replies as sentences with short keys.
//! Programs keep Leela's JSON, the default.

use jabmon_shared::human;
use serde_json::Value;

use super::reply::Reply;

/// The answer to `help`.
pub(super) const HELP: &str = "\
jabmon hub: send one command per message (keywords in any case, the final ; optional).
• SELECT <proc> FROM <regex>; — register a query; its events arrive here. \
Examples: SELECT id FROM ^web1\\.cpu\\.cpu\\.idle$; and SELECT window 5 (mean) | [> 90] FROM \\.cpu\\.cpu\\.user$;
• SELECT * FROM leela.xmpp; — list your queries and their keys.
• DELETE FROM leela.xmpp WHERE key=<key>; — delete one (its first 8 or more hex digits do).
• DELETE FROM leela.xmpp; — delete all yours.
• FORMAT text; — events and replies as short lines (times in UTC). FORMAT json; — JSON, for programs (the default).
• help — this text.
Procs: id, mean, median, sum, count, window N (…), sma N, ewma A, rate, changed, [> V], (* V), \
throttle N/DUR, absent DUR, … joined with |.";

/// The usage text, when `reply` answers `help`.
pub(super) fn help_of(reply: &Reply) -> Option<&str> {
    reply.results.as_ref()?.get("help")?.as_str()
}

/// One event as a line: `web1.cpu.cpu.idle 97.5 @ 12:00:03`.
pub(super) fn event_line(name: &str, timestamp: f64, value: f64) -> String {
    format!(
        "{name} {} @ {}",
        human::trimmed(value, 3),
        human::utc_time(timestamp)
    )
}

/// The report of dropped events as a line.
pub(super) fn dropped_line(key: &str, dropped: u64) -> String {
    format!(
        "{dropped} events of query {} were dropped (over the rate or while you were away).",
        short(key)
    )
}

fn short(key: &str) -> &str {
    key.get(..super::key::MIN_PREFIX).unwrap_or(key)
}

/// A reply as people read it. `short_keys` shortens a list of keys (see `key::short_keys`).
pub(super) fn reply_text(reply: &Reply, short_keys: impl Fn(&[String]) -> Vec<String>) -> String {
    let Some(results) = reply.results.as_ref().filter(|_| reply.status == 200) else {
        let reason = reply.reason.as_deref().unwrap_or("");
        let hint = if reply.status == 400 && reason.contains("at column 1,") {
            " (send help for the commands)"
        } else {
            ""
        };
        return format!("{} {reason}{hint}", reply.status);
    };
    let deleting = reply
        .debug
        .request
        .trim_start()
        .get(..6)
        .is_some_and(|w| w.eq_ignore_ascii_case("delete"));
    if let Some(format) = results.get("format").and_then(Value::as_str) {
        return match format {
            "text" => "Events now arrive as one line each: NAME VALUE @ HH:MM:SS (UTC). FORMAT json; switches back.".to_string(),
            _ => "Events now arrive as JSON.".to_string(),
        };
    }
    if let Some(key) = results.get("key").and_then(Value::as_str) {
        return match deleting {
            true => format!("Deleted query {}.", short(key)),
            false => format!(
                "Registered as query {}; its events arrive here.",
                short(key)
            ),
        };
    }
    let Some(rows) = results.as_array() else {
        return results.to_string();
    };
    let key_of = |v: &Value| {
        v.get("key")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    if deleting {
        return format!("Deleted {} queries.", rows.len());
    }
    if rows.is_empty() {
        return "You have no queries.".to_string();
    }
    let keys: Vec<String> = rows.iter().map(key_of).collect();
    let mut lines = vec![format!("You have {} queries:", rows.len())];
    for (row, k) in rows.iter().zip(short_keys(&keys)) {
        let cmd = row.get("cmd").and_then(Value::as_str).unwrap_or("");
        lines.push(format!("{k}  {cmd}"));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn short8(keys: &[String]) -> Vec<String> {
        keys.iter().map(|k| short(k).to_string()).collect()
    }

    #[test]
    fn events_and_drops_as_lines() {
        assert_eq!(
            event_line("web1.cpu.cpu.idle", 1_763_812_803.25, 97.5),
            "web1.cpu.cpu.idle 97.5 @ 12:00:03"
        );
        assert_eq!(event_line("n", 0.0, f64::INFINITY), "n inf @ 00:00:00");
        let key = "3f1c2a9b".repeat(16);
        assert!(dropped_line(&key, 7).starts_with("7 events of query 3f1c2a9b were dropped"));
    }

    #[test]
    fn replies_as_sentences() {
        let key = "3f1c2a9b".repeat(16);
        let text = |r: Reply| reply_text(&r, short8);
        assert_eq!(
            text(Reply::ok("SELECT id FROM a", json!({"key": key}))),
            "Registered as query 3f1c2a9b; its events arrive here."
        );
        assert_eq!(
            text(Reply::ok(
                "delete from leela.xmpp where key=3f1c2a9b",
                json!({"key": key})
            )),
            "Deleted query 3f1c2a9b."
        );
        assert_eq!(
            text(Reply::ok(
                "SELECT * FROM leela.xmpp",
                json!([{"cmd": "SELECT id FROM a;", "key": key}])
            )),
            "You have 1 queries:\n3f1c2a9b  SELECT id FROM a;"
        );
        assert_eq!(
            text(Reply::ok("SELECT * FROM leela.xmpp", json!([]))),
            "You have no queries."
        );
        assert_eq!(
            text(Reply::ok("DELETE FROM leela.xmpp", json!([{"key": key}]))),
            "Deleted 1 queries."
        );
        assert_eq!(
            text(Reply::status(400, "expected SELECT, DELETE, FORMAT or help at column 1, found \"hi\"", "hi")),
            "400 expected SELECT, DELETE, FORMAT or help at column 1, found \"hi\" (send help for the commands)"
        );
        assert_eq!(
            text(Reply::forbidden("x")),
            "403 not an approved subscriber of this hub"
        );
        assert!(text(Reply::ok("FORMAT text", json!({"format": "text"}))).contains("@ HH:MM:SS"));
    }

    #[test]
    fn help_names_every_command() {
        for word in [
            "SELECT <proc>",
            "SELECT *",
            "WHERE key=",
            "DELETE FROM leela.xmpp;",
            "FORMAT text",
            "FORMAT json",
            "help",
        ] {
            assert!(HELP.contains(word), "{word}");
        }
        let reply = Reply::ok("help", json!({"help": HELP}));
        assert_eq!(help_of(&reply), Some(HELP));
        assert_eq!(help_of(&Reply::ok("x", json!({"key": "k"}))), None);
    }
}
