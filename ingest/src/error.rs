//! The ingest crate's error type: every variant names the thing that failed.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum IngestError {
    #[error("storage: {op} {key}: {source}")]
    Storage {
        op: &'static str,
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("storage configuration: {0}")]
    StorageConfig(String),
    #[error("database: {context}: {source}")]
    Db {
        context: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("queue: {context}: {reason}")]
    Queue { context: String, reason: String },
    #[error("cannot decode {name}: {reason}")]
    Decode { name: String, reason: String },
    #[error("transcription of {call_id} failed: {reason}")]
    Transcribe { call_id: String, reason: String },
    #[error("whisper model {path}: {reason}")]
    Model { path: String, reason: String },
    #[error("call {0} not found")]
    CallNotFound(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "call {call_id} is booked but its transcription job was not queued ({source}); the \
         workers queue it once the queue is reachable"
    )]
    NotQueued {
        call_id: String,
        #[source]
        source: Box<IngestError>,
    },
    #[error("bad data in {what}: {reason}")]
    BadData { what: String, reason: String },
}

impl IngestError {
    pub(crate) fn db(context: impl Into<String>, source: sqlx::Error) -> Self {
        IngestError::Db {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        IngestError::Io {
            path: path.to_string(),
            source,
        }
    }

    /// Errors that another attempt cannot fix (bad input): they go straight to the
    /// dead-letter queue instead of being retried.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            IngestError::Decode { .. } | IngestError::BadData { .. } | IngestError::CallNotFound(_)
        )
    }
}

pub type Result<T, E = IngestError> = std::result::Result<T, E>;
