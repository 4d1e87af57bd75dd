//! The campaign pages: every campaign's state and pacing figures, and one campaign's
//! refusals grouped by reason with the latest ones. Viewers see masked numbers; admins
//! start and pause campaigns here.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use callqa_dialer::CampaignState;
use maud::{html, Markup};
use serde::Deserialize;

use super::chart::bar_chart;
use super::layout::{enc, frame, Ctx};
use crate::api::campaigns::{detail, pause_campaign, start_campaign, statuses};
use crate::api::opt;
use crate::auth::Role;
use crate::error::WebError;
use crate::mask::{mask_number, mask_text};
use crate::WebState;

#[derive(Debug, Default, Deserialize)]
pub struct PageParams {
    /// What just happened: `started`, `paused`.
    pub msg: Option<String>,
}

/// Start or pause buttons for the campaign's state (admins only).
fn controls(ctx: &Ctx, name: &str, state: CampaignState) -> Markup {
    html! {
        @if ctx.user.role >= Role::Admin {
            @match state {
                CampaignState::Loaded | CampaignState::Paused => {
                    form.row method="post" action=(format!("/campaigns/{}/start", enc(name))) {
                        button.start type="submit" { (ctx.t("camp.start")) }
                    }
                }
                CampaignState::Running => {
                    form.row method="post" action=(format!("/campaigns/{}/pause", enc(name))) {
                        button.pause.secondary type="submit" { (ctx.t("camp.pause")) }
                    }
                }
                CampaignState::Done => { span.muted { (ctx.t("camp.all_done")) } }
            }
        }
    }
}

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
                    @if ctx.user.role >= Role::Admin { th { (ctx.t("camp.actions")) } }
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
                            @if ctx.user.role >= Role::Admin { td { (controls(&ctx, &s.name, s.state)) } }
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
    Query(p): Query<PageParams>,
) -> Response {
    if let Err(r) = ctx.require(Role::Viewer) {
        return *r;
    }
    let msg = match opt(&p.msg) {
        Some("started") => Some(ctx.t("camp.started")),
        Some("paused") => Some(ctx.t("camp.paused")),
        _ => None,
    };
    match render_detail(&state, &ctx, &name, msg, None).await {
        Ok((title, body)) => frame(&ctx, &title, body).into_response(),
        Err(e) => ctx.fail(e),
    }
}

/// One campaign's page: state with the admin's controls, figures and refusals.
async fn render_detail(
    state: &WebState,
    ctx: &Ctx,
    name: &str,
    msg: Option<&str>,
    error: Option<String>,
) -> Result<(String, Markup), WebError> {
    let d = detail(state, name).await?;
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
    let hourly = hourly_rows(&s.attempts_by_hour, &s.answer_rate_by_hour);
    let body = html! {
        p { a href="/campaigns" { "← " (ctx.t("nav.campaigns")) } }
        @if let Some(m) = msg { div.alert.ok role="status" { (m) } }
        @if let Some(e) = error { div.alert.error role="alert" { (e) } }
        dl.facts {
            dt { (ctx.t("camp.state")) } dd.state { span.badge data-state=(s.state.as_str()) { (s.state.as_str()) } " " (controls(ctx, &s.name, s.state)) }
            dt { (ctx.t("camp.placed")) } dd { (s.placed) }
            dt { (ctx.t("camp.answered")) } dd { (s.answered) }
            dt { (ctx.t("camp.abandoned")) } dd { (s.abandoned) }
            dt { (ctx.t("camp.abandon_rate")) } dd { (pct(s.abandon_rate)) }
            dt { (ctx.t("camp.contacts")) } dd { (s.contacts_done) " / " (s.contacts) }
            dt { (ctx.t("camp.invalid")) } dd { (s.invalid_numbers) }
        }
        h2 { (ctx.t("camp.by_hour")) }
        @if hourly.is_empty() {
            div.empty { (ctx.t("camp.no_dials")) }
        } @else {
            (bar_chart(ctx.t("camp.by_hour"), &hourly, Some(1.0), pct))
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
    Ok((format!("{} · {}", ctx.t("campaign"), s.name), body))
}

/// One bar per local hour that has dials: `HH:00 (n)` and the learned answer rate.
fn hourly_rows(attempts: &[u64], rates: &[f64]) -> Vec<(String, f64, bool)> {
    attempts
        .iter()
        .zip(rates)
        .enumerate()
        .filter(|(_, (n, _))| **n > 0)
        .map(|(h, (n, r))| (format!("{h:02}:00 ({n})"), *r, false))
        .collect()
}

/// After a refused start or pause: the campaign's page with the reason, as the error's status.
async fn failed(state: &WebState, ctx: &Ctx, name: &str, e: WebError) -> Response {
    let status = e.status();
    if status == StatusCode::FORBIDDEN
        || status == StatusCode::NOT_FOUND
        || status.is_server_error()
    {
        return ctx.fail(e);
    }
    match render_detail(state, ctx, name, None, Some(e.to_string())).await {
        Ok((title, body)) => (status, frame(ctx, &title, body)).into_response(),
        Err(e2) => ctx.fail(e2),
    }
}

pub async fn start(
    State(state): State<Arc<WebState>>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> Response {
    match start_campaign(&state, &ctx.user, &name).await {
        Ok(_) => Redirect::to(&format!("/campaigns/{}?msg=started", enc(&name))).into_response(),
        Err(e) => failed(&state, &ctx, &name, e).await,
    }
}

pub async fn pause(
    State(state): State<Arc<WebState>>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> Response {
    match pause_campaign(&state, &ctx.user, &name).await {
        Ok(_) => Redirect::to(&format!("/campaigns/{}?msg=paused", enc(&name))).into_response(),
        Err(e) => failed(&state, &ctx, &name, e).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hourly_rows_skip_hours_without_dials() {
        let mut attempts = vec![0u64; 24];
        attempts[9] = 20;
        attempts[15] = 4;
        let mut rates = vec![0.5; 24];
        rates[9] = 0.25;
        rates[15] = 0.75;
        let rows = hourly_rows(&attempts, &rates);
        assert_eq!(
            rows,
            vec![
                ("09:00 (20)".to_string(), 0.25, false),
                ("15:00 (4)".to_string(), 0.75, false)
            ]
        );
        assert!(hourly_rows(&[0; 24], &[0.5; 24]).is_empty());
    }
}
