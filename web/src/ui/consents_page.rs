//! The consent records page: the newest records, and for analysts a lookup by number.
//! Viewers see masked numbers and no lookup box.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout::{frame, Ctx};
use crate::api::consents::{records, ConsentParams};
use crate::api::opt;
use crate::auth::Role;
use crate::mask::mask_number;
use crate::WebState;

pub async fn page(
    State(state): State<Arc<WebState>>,
    ctx: Ctx,
    Query(p): Query<ConsentParams>,
) -> Response {
    if let Err(r) = ctx.require(Role::Viewer) {
        return *r;
    }
    let rows = match records(&state, &ctx.user, opt(&p.number)).await {
        Ok(r) => r,
        Err(e) => return ctx.fail(e),
    };
    let full = ctx.user.sees_numbers();
    let body = html! {
        @if ctx.user.role >= Role::Analyst {
            form.inline method="get" action="/consents" {
                input type="search" name="number" value=(opt(&p.number).unwrap_or("")) placeholder="+8613800138000" aria-label=(ctx.t("number"));
                button type="submit" { (ctx.t("search.button")) }
            }
        }
        @if rows.is_empty() {
            div.empty { (ctx.t("consent.empty")) }
        } @else {
            table {
                thead { tr {
                    th { (ctx.t("number")) } th { (ctx.t("consent.scope")) } th { (ctx.t("consent.proof")) }
                    th { (ctx.t("consent.granted")) } th { (ctx.t("expires")) }
                } }
                tbody {
                    @for c in &rows {
                        tr {
                            td.number { (if full { c.number.clone() } else { mask_number(&c.number) }) }
                            td { (c.scope) } td { (c.proof) } td { (c.granted_at) }
                            td { (c.expires_at.as_deref().unwrap_or(ctx.t("never"))) }
                        }
                    }
                }
            }
        }
    };
    frame(&ctx, ctx.t("nav.consents"), body).into_response()
}
