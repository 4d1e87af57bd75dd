//! The JSON API under `/api/`: every route authenticates (bearer token or session cookie)
//! and checks the role before doing anything.

pub mod admin;
pub mod blacklist;
pub mod calls;
pub mod campaigns;
pub mod consents;
pub mod reports;
pub mod scorecards;
pub mod search;

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::routing::{delete, get, post};
use axum::Router;
use serde::de::DeserializeOwned;

use crate::error::WebError;
use crate::WebState;

pub(crate) fn routes() -> Router<Arc<WebState>> {
    Router::new()
        .route("/api/openapi.json", get(crate::openapi::openapi_json))
        .route("/api/search", get(search::search))
        .route("/api/calls", get(calls::list))
        .route("/api/calls/{id}", get(calls::show))
        .route("/api/calls/{id}/audio", get(calls::audio))
        .route("/api/calls/{id}/retry", post(calls::retry))
        .route("/api/dead-letters", get(calls::dead_letters))
        .route("/api/reports/qa", get(reports::qa))
        .route("/api/reports/complaints", get(reports::complaints))
        .route("/api/blacklist", get(blacklist::list).post(blacklist::add))
        .route("/api/blacklist/import", post(blacklist::import))
        .route("/api/blacklist/{number}", delete(blacklist::remove))
        .route("/api/campaigns", get(campaigns::list))
        .route("/api/campaigns/{name}", get(campaigns::show))
        .route("/api/campaigns/{name}/start", post(campaigns::start))
        .route("/api/campaigns/{name}/pause", post(campaigns::pause))
        .route("/api/consents", get(consents::list))
        .route("/api/consents/import", post(consents::import))
        .route("/api/scorecards", get(scorecards::list))
        .route(
            "/api/scorecards/{name}",
            get(scorecards::show).put(scorecards::save),
        )
        .route("/api/audit", get(admin::audit))
        .route("/api/users", get(admin::users).post(admin::add))
}

/// Query-string extractor whose rejection is our JSON 400, not axum's plain text.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, WebError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Params(v))
            .map_err(|e: QueryRejection| WebError::BadRequest(e.body_text()))
    }
}

/// An optional parameter, with the empty value an HTML form sends meaning "not set".
pub(crate) fn opt(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Parses an optional number parameter; `name` names it in the 400 message.
pub(crate) fn opt_num<T: std::str::FromStr>(
    name: &str,
    v: &Option<String>,
) -> Result<Option<T>, WebError> {
    opt(v)
        .map(|s| {
            s.parse::<T>()
                .map_err(|_| WebError::BadRequest(format!("{name}={s:?} is not a number")))
        })
        .transpose()
}
