//! The one error type of callqa-search; each variant names what failed.

use std::path::PathBuf;

/// Everything that can go wrong opening, writing or querying the index.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The user's query text does not parse. The web layer answers 400, the CLI exits 2.
    #[error("query {query:?} does not parse: {reason}")]
    BadQuery { query: String, reason: String },

    /// A filter value (a date, a score) is malformed. Also the user's fault: 400 / exit 2.
    #[error("filter {name}={value:?} is invalid: {reason}")]
    BadFilter {
        name: &'static str,
        value: String,
        reason: String,
    },

    /// A call document cannot be indexed (its metadata is malformed).
    #[error("call {call_id} cannot be indexed: {reason}")]
    BadDocument { call_id: String, reason: String },

    /// Another process (or another writer in this one) holds the index's writer lock.
    #[error(
        "the search index at {dir} is locked by another writer; stop the other callqa \
         worker/serve process using this data dir, or point this one at another --data-dir"
    )]
    WriterLocked { dir: String },

    /// The index on disk was built with another schema (an older callqa).
    #[error(
        "the search index at {dir} has an incompatible schema ({reason}); delete that directory \
         and run `callqa reindex` to rebuild it from the stored transcripts"
    )]
    SchemaMismatch { dir: PathBuf, reason: String },

    /// Creating the index directory failed.
    #[error("cannot create the search index directory {dir}: {source}")]
    CreateDir {
        dir: PathBuf,
        source: std::io::Error,
    },

    /// Any other failure inside tantivy (I/O on the index files, a corrupt segment, ...).
    #[error("search index {operation} failed: {source}")]
    Tantivy {
        operation: &'static str,
        source: tantivy::TantivyError,
    },
}

impl SearchError {
    /// True when the caller sent something invalid (HTTP 400 / exit code 2),
    /// false when the index itself failed (HTTP 500 / exit code 1).
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            SearchError::BadQuery { .. } | SearchError::BadFilter { .. }
        )
    }

    pub(crate) fn tantivy(operation: &'static str) -> impl FnOnce(tantivy::TantivyError) -> Self {
        move |source| SearchError::Tantivy { operation, source }
    }
}
