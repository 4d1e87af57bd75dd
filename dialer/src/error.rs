//! The dialer's error type: every variant names the thing that failed.

use std::path::PathBuf;

/// Errors from placing a call; call *outcomes* (busy, no answer, ...) are not errors but
/// [`crate::Outcome`]s in the call report.
#[derive(Debug, thiserror::Error)]
pub enum DialerError {
    #[error("unknown trunk {name:?}: add it under [[dialer.trunks]] in the config")]
    UnknownTrunk { name: String },
    #[error("trunk {trunk} address {address:?} does not resolve: {source}")]
    TrunkAddress {
        trunk: String,
        address: String,
        source: std::io::Error,
    },
    #[error("network socket for {what}: {source}")]
    Socket {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("prompt {path}: {reason}")]
    Prompt { path: PathBuf, reason: String },
    #[error("recording spool {path}: {source}")]
    Spool {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("recording upload to {key}: {source}")]
    Upload {
        key: String,
        source: object_store::Error,
    },
    #[error("booking call {call_id} (call row or transcription job): {source}")]
    Booking {
        call_id: String,
        /// Boxed: the database error is large and this variant is rare.
        source: Box<callqa_ingest::error::IngestError>,
    },
    #[error("call {call_id}: the dial task failed: {reason}")]
    CallTask { call_id: String, reason: String },
    #[error("calling hours {value:?} must look like \"08:00-21:00\"")]
    CallingHours { value: String },
}
