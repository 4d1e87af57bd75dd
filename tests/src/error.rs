//! The harness's error type: each variant names the tool, file or server
//! that failed, so a red test says what to fix.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("cannot run `{tool}` ({source}); install it with: {install}")]
    ToolMissing {
        tool: String,
        install: String,
        source: std::io::Error,
    },

    #[error("`{command}` failed with {status}: {stderr}")]
    ToolFailed {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("WAV {path}: {source}")]
    Wav { path: PathBuf, source: hound::Error },

    #[error("WAV {path}: expected {expected}, found {found}")]
    WavFormat {
        path: PathBuf,
        expected: String,
        found: String,
    },

    #[error("Garage binary not found at {path}; build it once with: cargo install garage@2.5.0 --locked --root $HOME/.cache/callqa/garage-2.5.0 (or set CALLQA_GARAGE_BIN)")]
    GarageMissing { path: PathBuf },

    #[error("Garage did not become ready: {reason}; log {log}:\n{log_tail}")]
    GarageNotReady {
        reason: String,
        log: PathBuf,
        log_tail: String,
    },

    #[error("S3 client for Garage: {0}")]
    S3(#[from] object_store::Error),
}

impl HarnessError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        HarnessError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn wav(path: impl Into<PathBuf>, source: hound::Error) -> Self {
        HarnessError::Wav {
            path: path.into(),
            source,
        }
    }
}
