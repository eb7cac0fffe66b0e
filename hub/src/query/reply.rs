//! JSON bodies the hub sends (docs/protocol.md §6): command replies, event messages and dropped
//! reports. Field order follows docs/protocol.md §6. Non-finite numbers (an `inf` from `(/ 0)`)
//! cannot be JSON numbers and are sent as `null`.

use serde::Serialize;
use serde_json::Value;

use super::error::QueryError;

/// The reply to one request: `{"status", "reason"?, "results"?, "debug": {"request"}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply {
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Value>,
    pub debug: ReplyDebug,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplyDebug {
    /// The body as received.
    pub request: String,
}

impl Reply {
    /// 200 with `results`.
    pub fn ok(request: &str, results: Value) -> Reply {
        Reply {
            status: 200,
            reason: None,
            results: Some(results),
            debug: ReplyDebug {
                request: request.to_owned(),
            },
        }
    }

    /// Any status with a reason and no results.
    pub fn status(status: u16, reason: impl Into<String>, request: &str) -> Reply {
        Reply {
            status,
            reason: Some(reason.into()),
            results: None,
            debug: ReplyDebug {
                request: request.to_owned(),
            },
        }
    }

    /// 400, 404 or 413 for an engine error.
    pub fn error(request: &str, err: &QueryError) -> Reply {
        Reply::status(err.status(), err.to_string(), request)
    }

    /// 403: the sender is not an approved subscriber.
    pub fn forbidden(request: &str) -> Reply {
        Reply::status(403, "not an approved subscriber of this hub", request)
    }

    /// 500: an internal error (the hub keeps running).
    pub fn internal(request: &str, reason: impl Into<String>) -> Reply {
        Reply::status(500, reason, request)
    }

    /// 503: shutting down, or the server connection is lost.
    pub fn unavailable(request: &str) -> Reply {
        Reply::status(
            503,
            "the hub is shutting down or has lost its server connection",
            request,
        )
    }

    pub fn to_json(&self) -> String {
        to_json(self)
    }
}

#[derive(Serialize)]
struct KeyedMessage<'a, R> {
    status: u16,
    results: R,
    key: &'a str,
}

#[derive(Serialize)]
struct EventResults<'a> {
    event: EventJson<'a>,
}

#[derive(Serialize)]
struct EventJson<'a> {
    name: &'a str,
    timestamp: f64,
    value: f64,
}

#[derive(Serialize)]
struct DroppedResults {
    dropped: u64,
}

/// `{"status": 200, "results": {"event": {"name": N, "timestamp": T, "value": V}}, "key": K}`
pub fn event_message(key: &str, name: &str, timestamp: f64, value: f64) -> String {
    to_json(&KeyedMessage {
        status: 200,
        results: EventResults {
            event: EventJson {
                name,
                timestamp,
                value,
            },
        },
        key,
    })
}

/// `{"status": 200, "results": {"dropped": N}, "key": K}`
pub fn dropped_message(key: &str, dropped: u64) -> String {
    to_json(&KeyedMessage {
        status: 200,
        results: DroppedResults { dropped },
        key,
    })
}

fn to_json(v: &impl Serialize) -> String {
    // Serialising these plain structs cannot fail; keep a valid reply if it ever does.
    serde_json::to_string(v).unwrap_or_else(|e| {
        format!(
            r#"{{"status":500,"reason":"{}"}}"#,
            e.to_string().escape_default()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replies_in_documented_shape() {
        assert_eq!(
            Reply::ok("SELECT id FROM a;", json!({"key": "k"})).to_json(),
            r#"{"status":200,"results":{"key":"k"},"debug":{"request":"SELECT id FROM a;"}}"#
        );
        let e = QueryError::NoSuchKey { key: "k".into() };
        assert_eq!(
            Reply::error("x\"", &e).to_json(),
            r#"{"status":404,"reason":"no such key: k","debug":{"request":"x\""}}"#
        );
        assert_eq!(Reply::forbidden("x").status, 403);
        assert_eq!(Reply::internal("x", "boom").status, 500);
        assert_eq!(Reply::unavailable("x").status, 503);
    }

    #[test]
    fn event_and_dropped_messages() {
        assert_eq!(
            event_message("k", "web1.cpu.cpu.idle", 1763804400.125, 85.2),
            r#"{"status":200,"results":{"event":{"name":"web1.cpu.cpu.idle","timestamp":1763804400.125,"value":85.2}},"key":"k"}"#
        );
        assert_eq!(
            event_message("k", "n", 1.0, f64::INFINITY),
            r#"{"status":200,"results":{"event":{"name":"n","timestamp":1.0,"value":null}},"key":"k"}"#
        );
        assert_eq!(
            dropped_message("k", 7),
            r#"{"status":200,"results":{"dropped":7},"key":"k"}"#
        );
    }
}
