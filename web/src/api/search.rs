//! `GET /api/search`: the CLI's search as JSON, numbers masked for viewers.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::Json;
use callqa_ingest::transcript::Speaker;
use callqa_search::SearchRequest;
use serde::Deserialize;
use serde_json::Value;

use super::{opt, opt_num, Params};
use crate::auth::{Role, User};
use crate::error::WebError;
use crate::WebState;

/// Search parameters; every one optional, an empty value means unset.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Query: words (ANDed), `"phrases"`, `OR`, `AND`, `-word`, `prefix*`, `( )`.
    pub q: Option<String>,
    /// Calls started on or after: `YYYY-MM-DD` or RFC 3339.
    pub from: Option<String>,
    /// Calls started on or before: `YYYY-MM-DD` (whole day) or RFC 3339.
    pub to: Option<String>,
    pub campaign: Option<String>,
    pub agent: Option<String>,
    /// Customer number (E.164).
    pub customer: Option<String>,
    /// `agent`, `customer` or `mixed`: match only words this speaker said.
    pub speaker: Option<String>,
    pub language: Option<String>,
    pub status: Option<String>,
    pub min_score: Option<String>,
    pub max_score: Option<String>,
    /// QA flags the call must carry, comma-separated (`complaint,refund`).
    pub flag: Option<String>,
    /// Hits per page (default 20, at most 1000).
    pub limit: Option<String>,
    pub offset: Option<String>,
}

impl SearchParams {
    /// The index request these parameters describe; a malformed value is a 400.
    pub fn to_request(&self) -> Result<SearchRequest, WebError> {
        let speaker = opt(&self.speaker)
            .map(|s| {
                Speaker::parse(s).ok_or_else(|| {
                    WebError::BadRequest(format!("speaker={s:?}: use agent, customer or mixed"))
                })
            })
            .transpose()?;
        let own = |v: &Option<String>| opt(v).map(str::to_string);
        Ok(SearchRequest {
            query: opt(&self.q).unwrap_or("").to_string(),
            from: own(&self.from),
            to: own(&self.to),
            campaign: own(&self.campaign),
            agent: own(&self.agent),
            customer: own(&self.customer),
            speaker,
            language: own(&self.language),
            status: own(&self.status),
            min_score: opt_num("min_score", &self.min_score)?,
            max_score: opt_num("max_score", &self.max_score)?,
            flags: opt(&self.flag)
                .map(|f| {
                    f.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            limit: opt_num::<usize>("limit", &self.limit)?
                .unwrap_or(20)
                .clamp(1, callqa_search::request::MAX_LIMIT),
            offset: opt_num("offset", &self.offset)?.unwrap_or(0),
            facets: true,
        })
    }
}

/// Runs `req` off the reactor (tantivy is blocking) and returns the response JSON as
/// `user` may see it.
pub(crate) async fn run(
    state: &WebState,
    user: &User,
    req: SearchRequest,
) -> Result<Value, WebError> {
    let index = state.index.clone();
    let started = Instant::now();
    let found = tokio::task::spawn_blocking(move || index.search(&req))
        .await
        .map_err(|e| WebError::Task(e.to_string()))?;
    crate::metrics::observe_search(started.elapsed().as_secs_f64(), found.is_ok());
    let mut v = serde_json::to_value(found?).map_err(|source| WebError::Json {
        what: "search response".into(),
        source,
    })?;
    if !user.sees_numbers() {
        crate::mask::redact(&mut v);
    }
    Ok(v)
}

/// Searches transcripts: `{"total", "hits": [{"call_id", "score", "snippets", ...}], "facets"}`.
#[utoipa::path(get, path = "/api/search", tag = "search", params(SearchParams),
    responses((status = 200, description = "Matching calls, one page, with facet counts"),
        (status = 400, description = "The query or a filter does not parse: {\"error\"}"),
        (status = 401, description = "Not logged in")),
    security(("bearer" = [])))]
pub async fn search(
    State(state): State<Arc<WebState>>,
    user: User,
    Params(p): Params<SearchParams>,
) -> Result<Json<Value>, WebError> {
    user.require(Role::Viewer, "search")?;
    Ok(Json(run(&state, &user, p.to_request()?).await?))
}
