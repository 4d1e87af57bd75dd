//! The campaign pages: every campaign's state and pacing figures, and one campaign's
//! refusals grouped by reason with the latest ones. Viewers see masked numbers.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout::{enc, frame, Ctx};
use crate::api::campaigns::{detail, statuses};
use crate::auth::Role;
use crate::mask::{mask_number, mask_text};
use crate::WebState;

fn pct(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

pub async fn list(State(state): State<Arc<WebState>>, ctx: Ctx) -> Response {
    if let Err(r) = ctx.require(Role::Viewer) {
        return *r;
    }
    let rows = match statuses(&state).await {
        Ok(r) => r,
        Err(e) => return ctx.fail(e),
    };
    let body = html! {
        @if rows.is_empty() {
            div.empty { (ctx.t("camp.empty")) }
        } @else {
            table {
                thead { tr {
                    th { (ctx.t("campaign")) } th { (ctx.t("camp.state")) } th { (ctx.t("camp.placed")) }
                    th { (ctx.t("camp.answered")) } th { (ctx.t("camp.abandoned")) } th { (ctx.t("camp.abandon_rate")) }
                    th { (ctx.t("camp.contacts")) } th { (ctx.t("camp.refused")) }
                } }
                tbody {
                    @for s in &rows {
                        @let r = &s.refused;
                        tr {
                            td { a href=(format!("/campaigns/{}", enc(&s.name))) { (s.name) } }
                            td { span.badge { (s.state.as_str()) } }
                            td { (s.placed) } td { (s.answered) } td { (s.abandoned) } td { (pct(s.abandon_rate)) }
                            td { (s.contacts_done) " / " (s.contacts) }
                            td { (r.blacklist + r.no_consent + r.outside_hours + r.caller_id + r.invalid_number + r.attempts) }
                        }
                    }
                }
            }
        }
    };
    frame(&ctx, ctx.t("nav.campaigns"), body).into_response()
}

pub async fn show(
    State(state): State<Arc<WebState>>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> Response {
    if let Err(r) = ctx.require(Role::Viewer) {
        return *r;
    }
    let d = match detail(&state, &name).await {
        Ok(d) => d,
        Err(e) => return ctx.fail(e),
    };
    let full = ctx.user.sees_numbers();
    let s = &d.status;
    let r = &s.refused;
    let by_rule = [
        ("blacklist", r.blacklist),
        ("no_consent", r.no_consent),
        ("outside_hours", r.outside_hours),
        ("caller_id", r.caller_id),
        ("invalid_number", r.invalid_number),
        ("attempts", r.attempts),
    ];
    let body = html! {
        p { a href="/campaigns" { "← " (ctx.t("nav.campaigns")) } }
        dl.facts {
            dt { (ctx.t("camp.state")) } dd { span.badge { (s.state.as_str()) } }
            dt { (ctx.t("camp.placed")) } dd { (s.placed) }
            dt { (ctx.t("camp.answered")) } dd { (s.answered) }
            dt { (ctx.t("camp.abandoned")) } dd { (s.abandoned) }
            dt { (ctx.t("camp.abandon_rate")) } dd { (pct(s.abandon_rate)) }
            dt { (ctx.t("camp.contacts")) } dd { (s.contacts_done) " / " (s.contacts) }
            dt { (ctx.t("camp.invalid")) } dd { (s.invalid_numbers) }
        }
        h2 { (ctx.t("camp.refused")) }
        table {
            thead { tr { th { (ctx.t("camp.rule")) } th { (ctx.t("calls")) } } }
            tbody { @for (kind, n) in &by_rule { tr { td { (kind) } td.refused-count data-kind=(kind) { (n) } } } }
        }
        h2 { (ctx.t("camp.by_reason")) }
        @if d.refusals_by_reason.is_empty() {
            div.empty { (ctx.t("camp.no_refusals")) }
        } @else {
            table {
                thead { tr { th { (ctx.t("camp.rule")) } th { (ctx.t("reason")) } th { (ctx.t("calls")) } } }
                tbody {
                    @for g in &d.refusals_by_reason {
                        tr { td { (g.kind) } td { (if full { g.reason.clone() } else { mask_text(&g.reason) }) } td { (g.count) } }
                    }
                }
            }
            h2 { (ctx.t("camp.recent")) }
            table {
                thead { tr { th { (ctx.t("camp.at")) } th { (ctx.t("number")) } th { (ctx.t("camp.rule")) } th { (ctx.t("reason")) } } }
                tbody {
                    @for x in &d.recent_refusals {
                        tr {
                            td { (x.at) }
                            td { (if full { x.number.clone() } else { mask_number(&x.number) }) }
                            td { (x.kind) }
                            td { (if full { x.reason.clone() } else { mask_text(&x.reason) }) }
                        }
                    }
                }
            }
        }
    };
    frame(&ctx, &format!("{} · {}", ctx.t("campaign"), s.name), body).into_response()
}
