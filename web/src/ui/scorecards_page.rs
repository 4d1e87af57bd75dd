//! The scorecards page: each scorecard version with the calls it scored, their mean
//! score and how many calls it is the current result of.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout::{frame, Ctx};
use crate::api::scorecards::versions;
use crate::auth::Role;
use crate::WebState;

pub async fn page(State(state): State<Arc<WebState>>, ctx: Ctx) -> Response {
    if let Err(r) = ctx.require(Role::Viewer) {
        return *r;
    }
    let rows = match versions(&state).await {
        Ok(r) => r,
        Err(e) => return ctx.fail(e),
    };
    let body = html! {
        @if rows.is_empty() {
            div.empty { (ctx.t("sc.empty")) }
        } @else {
            table {
                thead { tr {
                    th { (ctx.t("sc.name")) } th { (ctx.t("sc.version")) } th { (ctx.t("calls")) }
                    th { (ctx.t("sc.mean")) } th { (ctx.t("sc.current")) } th { (ctx.t("sc.last")) }
                } }
                tbody {
                    @for v in &rows {
                        tr {
                            td { (v.scorecard) } td { "v" (v.version) } td { (v.calls) }
                            td { (format!("{:.2}", v.mean_score)) } td { (v.current) }
                            td { (v.last_scored_at.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            }
        }
    };
    frame(&ctx, ctx.t("nav.scorecards"), body).into_response()
}
