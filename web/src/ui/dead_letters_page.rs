//! The dead-letter page: calls whose processing failed, each with its reason and a
//! retry button that queues it again from transcription.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use callqa_ingest::db::status;
use maud::html;
use serde::Deserialize;

use super::layout::{enc, frame, Ctx};
use crate::api::opt;
use crate::auth::Role;
use crate::WebState;

#[derive(Debug, Default, Deserialize)]
pub struct PageParams {
    pub msg: Option<String>,
}

pub async fn page(
    State(state): State<Arc<WebState>>,
    ctx: Ctx,
    Query(p): Query<PageParams>,
) -> Response {
    if let Err(r) = ctx.require(Role::Analyst) {
        return *r;
    }
    let rows = match state.db.list_calls(Some(status::FAILED), 1000).await {
        Ok(r) => r,
        Err(e) => return ctx.fail(e.into()),
    };
    let body = html! {
        @if opt(&p.msg) == Some("retried") { div.alert.ok role="status" { (ctx.t("dl.retried")) } }
        @if rows.is_empty() {
            div.empty { (ctx.t("dl.empty")) }
        } @else {
            table {
                thead { tr { th { "ID" } th { (ctx.t("started")) } th { (ctx.t("campaign")) } th { (ctx.t("agent")) } th { (ctx.t("error")) } th {} } }
                tbody {
                    @for r in &rows {
                        tr {
                            td { a href=(format!("/calls/{}", enc(&r.call_id))) { (r.call_id) } }
                            td { (r.started_at) }
                            td { (r.campaign.as_deref().unwrap_or("—")) }
                            td { (r.agent.as_deref().unwrap_or("—")) }
                            td.fail { (r.error.as_deref().unwrap_or("—")) }
                            td {
                                form.row method="post" action=(format!("/dead-letters/{}/retry", enc(&r.call_id))) {
                                    button type="submit" { (ctx.t("dl.retry")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    frame(&ctx, ctx.t("nav.dead"), body).into_response()
}

pub async fn retry(
    State(state): State<Arc<WebState>>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Response {
    match crate::api::calls::retry_call(&state, &ctx.user, &id).await {
        Ok(_) => Redirect::to("/dead-letters?msg=retried").into_response(),
        Err(e) => ctx.fail(e),
    }
}
