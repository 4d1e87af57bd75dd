//! The QA crate's error type: every variant names the thing that failed.

use thiserror::Error;

use crate::number::NumberError;
use crate::scorecard::ScorecardError;

/// Errors from storing results, the blacklist and reports.
#[derive(Debug, Error)]
pub enum QaError {
    #[error("database: {context}: {source}")]
    Db {
        context: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("JSON of {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid phone number: {0}")]
    Number(#[from] NumberError),
    #[error("scorecard: {0}")]
    Scorecard(#[from] ScorecardError),
    #[error("invalid timestamp {value:?} in {field}: expected RFC 3339 (2024-05-01T09:30:00Z)")]
    Timestamp { field: String, value: String },
    #[error("CSV: {0}")]
    Csv(String),
}

impl QaError {
    /// Wraps a sqlx error with what was being done, for `map_err`.
    pub(crate) fn db(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> QaError {
        let context = context.into();
        move |source| QaError::Db { context, source }
    }

    pub(crate) fn json(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> QaError {
        let what = what.into();
        move |source| QaError::Json { what, source }
    }
}
