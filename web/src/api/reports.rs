//! QA and complaint reports by agent, campaign or day, as JSON or CSV. Every CSV export
//! is written to the audit log.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use callqa_qa::ReportBy;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{opt, Params};
use crate::auth::{Role, User};
use crate::error::WebError;
use crate::WebState;

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// `agent` (default), `campaign`, `day` or `number`.
    pub by: Option<String>,
    /// `YYYY-MM-DD` or RFC 3339; open when absent.
    pub from: Option<String>,
    pub to: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Qa,
    Complaints,
}

impl ReportParams {
    pub(crate) fn by(&self) -> Result<ReportBy, WebError> {
        opt(&self.by)
            .unwrap_or("agent")
            .parse()
            .map_err(WebError::BadRequest)
    }
}

/// Rows of one report, numbers already masked for the user.
pub(crate) enum Rows {
    Qa(Vec<callqa_qa::ReportRow>),
    Complaints(Vec<callqa_qa::ComplaintRow>),
}

impl Rows {
    /// The rows as JSON objects (for the API and the report page).
    pub(crate) fn values(&self) -> Result<Vec<Value>, WebError> {
        let v = match self {
            Rows::Qa(r) => serde_json::to_value(r),
            Rows::Complaints(r) => serde_json::to_value(r),
        }
        .map_err(|source| WebError::Json {
            what: "report rows".into(),
            source,
        })?;
        Ok(match v {
            Value::Array(a) => a,
            _ => Vec::new(),
        })
    }

    /// CSV with the columns in the rows' field order.
    fn csv(&self) -> Result<String, WebError> {
        Ok(match self {
            Rows::Qa(r) => callqa_qa::to_csv(r)?,
            Rows::Complaints(r) => callqa_qa::to_csv(r)?,
        })
    }
}

/// The report `p` asks for, keys masked when grouped by number for a viewer.
pub(crate) async fn rows(
    state: &WebState,
    user: &User,
    kind: Kind,
    p: &ReportParams,
) -> Result<Rows, WebError> {
    let by = p.by()?;
    let pool = state.db.pool();
    let (from, to) = (opt(&p.from), opt(&p.to));
    let mask = by == ReportBy::Number && !user.sees_numbers();
    let hide = |k: &mut String| {
        if mask {
            *k = crate::mask::mask_text(k);
        }
    };
    Ok(match kind {
        Kind::Qa => {
            let mut r = callqa_qa::qa_report(pool, by, from, to).await?;
            r.iter_mut().for_each(|x| hide(&mut x.key));
            Rows::Qa(r)
        }
        Kind::Complaints => {
            let mut r = callqa_qa::complaints_report(pool, by, from, to).await?;
            r.iter_mut().for_each(|x| hide(&mut x.key));
            Rows::Complaints(r)
        }
    })
}

async fn answer(
    state: &WebState,
    user: User,
    kind: Kind,
    p: ReportParams,
) -> Result<Response, WebError> {
    user.require(Role::Viewer, "read reports")?;
    let rows = rows(state, &user, kind, &p).await?;
    let name = match kind {
        Kind::Qa => "qa",
        Kind::Complaints => "complaints",
    };
    let by = opt(&p.by).unwrap_or("agent").to_string();
    match opt(&p.format).unwrap_or("json") {
        "json" => Ok(Json(
            json!({ "by": by, "from": opt(&p.from), "to": opt(&p.to), "rows": rows.values()? }),
        )
        .into_response()),
        "csv" => {
            let detail = format!(
                "by={by} from={} to={}",
                opt(&p.from).unwrap_or(""),
                opt(&p.to).unwrap_or("")
            );
            crate::audit::record(
                state.db.pool(),
                &user.name,
                "export",
                &format!("report/{name}"),
                &detail,
            )
            .await?;
            crate::metrics::count_export();
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"callqa-{name}-by-{by}.csv\""),
                    ),
                ],
                rows.csv()?,
            )
                .into_response())
        }
        other => Err(WebError::BadRequest(format!(
            "format={other:?}: use json or csv"
        ))),
    }
}

/// QA scores per group: `{"by", "from", "to", "rows": [{"key", "calls", "avg_score", ...}]}` or CSV.
#[utoipa::path(get, path = "/api/reports/qa", tag = "reports", params(ReportParams),
    responses((status = 200, description = "Report rows as JSON, or CSV with format=csv"),
        (status = 400, description = "Bad grouping, date or format"), (status = 401, description = "Not logged in")),
    security(("bearer" = [])))]
pub async fn qa(
    State(state): State<Arc<WebState>>,
    user: User,
    Params(p): Params<ReportParams>,
) -> Result<Response, WebError> {
    answer(&state, user, Kind::Qa, p).await
}

/// Complaint counts and rates per group, as JSON or CSV.
#[utoipa::path(get, path = "/api/reports/complaints", tag = "reports", params(ReportParams),
    responses((status = 200, description = "Report rows as JSON, or CSV with format=csv"),
        (status = 400, description = "Bad grouping, date or format"), (status = 401, description = "Not logged in")),
    security(("bearer" = [])))]
pub async fn complaints(
    State(state): State<Arc<WebState>>,
    user: User,
    Params(p): Params<ReportParams>,
) -> Result<Response, WebError> {
    answer(&state, user, Kind::Complaints, p).await
}
