//! Errors of the query engine, each mapped to one status code of docs/protocol.md §6.

use thiserror::Error;

/// A command or proc that does not parse. Columns are 1-based character columns of the body.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// The token at `column` is not one the grammar allows there.
    #[error("expected {expected} at column {column}, found {found}")]
    Expected {
        column: usize,
        expected: String,
        found: String,
    },
    /// The token at `column` has the right shape but an unusable value (`window 0`).
    #[error("{message} at column {column}")]
    Invalid { column: usize, message: String },
}

impl ParseError {
    pub fn column(&self) -> usize {
        match self {
            ParseError::Expected { column, .. } | ParseError::Invalid { column, .. } => *column,
        }
    }
}

/// Why a request was refused. [`QueryError::status`] gives its status code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QueryError {
    /// 400: the command or proc does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// 400: the regex does not parse (`column` is the column in the body).
    #[error("invalid regex at column {column}: {message}")]
    Regex { column: usize, message: String },
    /// 413: the body, proc or regex is over a size limit.
    #[error("{what} is over the limit of {limit}")]
    TooLarge { what: &'static str, limit: usize },
    /// 413: the user already has `limit` registrations (queries and chat alert rules).
    #[error("too many queries and alert rules: the limit is {limit} per user")]
    TooManyQueries { limit: usize },
    /// 404: the user has no registration with this key (or key prefix).
    #[error("no such key: {key}")]
    NoSuchKey { key: String },
    /// 400: a key prefix that several of the user's keys start with.
    #[error("key prefix {prefix} matches {} queries, give more digits: {}", candidates.len(), candidates.join("; "))]
    AmbiguousKey {
        prefix: String,
        /// Each candidate's longer key prefix and query.
        candidates: Vec<String>,
    },
}

impl QueryError {
    /// The status code of the reply for this error.
    pub fn status(&self) -> u16 {
        match self {
            QueryError::Parse(_) | QueryError::Regex { .. } | QueryError::AmbiguousKey { .. } => {
                400
            }
            QueryError::TooLarge { .. } | QueryError::TooManyQueries { .. } => 413,
            QueryError::NoSuchKey { .. } => 404,
        }
    }
}
