//! The web crate's error type, and how each variant becomes an HTTP answer:
//! the status that says whose fault it was and a `{"error": "..."}` body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use callqa_dialer::CampaignError;
use callqa_ingest::IngestError;
use callqa_qa::QaError;
use callqa_search::SearchError;

/// Everything that can fail while serving the UI and API.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No session cookie or bearer token, or one that is unknown or expired.
    #[error("not logged in: log in at /login, or send `Authorization: Bearer TOKEN` (`callqa user add` prints a token)")]
    Unauthorized,

    /// Logged in, but the role may not do this.
    #[error("the {role} role may not {action}; ask an admin for a role that may")]
    Forbidden {
        role: &'static str,
        action: &'static str,
    },

    #[error("{0} not found")]
    NotFound(String),

    /// The request itself is malformed (a parameter, a body).
    #[error("{0}")]
    BadRequest(String),

    /// The request is valid but the thing is in the wrong state (retrying a call that did not fail).
    #[error("{0}")]
    Conflict(String),

    #[error("user {0:?} already exists; pick another name")]
    UserExists(String),

    #[error("database: {context}: {source}")]
    Db {
        context: String,
        #[source]
        source: sqlx::Error,
    },

    #[error(transparent)]
    Ingest(#[from] IngestError),

    #[error(transparent)]
    Search(#[from] SearchError),

    #[error(transparent)]
    Qa(#[from] QaError),

    /// Campaign and consent tables (the dialer's store).
    #[error(transparent)]
    Campaign(#[from] CampaignError),

    #[error("password hashing failed: {0}")]
    PasswordHash(String),

    #[error("stored JSON of {what} is unreadable: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("cannot listen on {addr}: {source}; pick a free address with --listen")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },

    #[error("the HTTP server stopped: {0}")]
    Serve(#[source] std::io::Error),

    #[error("webhook POST to {url} failed after {attempts} attempts: {reason}")]
    Webhook {
        url: String,
        attempts: u32,
        reason: String,
    },

    #[error("a background task failed: {0}")]
    Task(String),

    /// A scorecard text the qa crate's parser refused (with the line when known).
    #[error("the scorecard is invalid: {0}")]
    InvalidScorecard(crate::scorecard_files::Problem),

    #[error("file {path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl WebError {
    /// Wraps a sqlx error with what was being done, for `map_err`.
    pub(crate) fn db(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> WebError {
        let context = context.into();
        move |source| WebError::Db { context, source }
    }

    /// The HTTP status that tells the client whose fault this was.
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::Unauthorized => StatusCode::UNAUTHORIZED,
            WebError::Forbidden { .. } => StatusCode::FORBIDDEN,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) | WebError::InvalidScorecard(_) => StatusCode::BAD_REQUEST,
            WebError::Conflict(_) | WebError::UserExists(_) => StatusCode::CONFLICT,
            WebError::Search(e) if e.is_user_error() => StatusCode::BAD_REQUEST,
            WebError::Campaign(CampaignError::Unknown { .. }) => StatusCode::NOT_FOUND,
            WebError::Qa(QaError::Number(_) | QaError::Timestamp { .. } | QaError::Csv(_)) => {
                StatusCode::BAD_REQUEST
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!("request failed: {self}");
        }
        let mut body = serde_json::json!({ "error": self.to_string() });
        if let WebError::InvalidScorecard(p) = &self {
            // Where the fault is, so an editor can point at it.
            body["line"] = serde_json::json!(p.line);
            body["column"] = serde_json::json!(p.column);
        }
        let mut res = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        res
    }
}
