//! The blacklist page: search, add and remove with a reason, CSV import, and links to
//! the calls that put a number on the list. Analysts read; admins change.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{enc, frame, Ctx};
use crate::api::blacklist::{add_entry, entries, import_csv, remove_entry, AddBody};
use crate::api::opt;
use crate::auth::Role;
use crate::error::WebError;
use crate::WebState;

#[derive(Debug, Default, Deserialize)]
pub struct PageParams {
    pub q: Option<String>,
    /// What just happened: `added`, `removed`, `imported`.
    pub msg: Option<String>,
    pub imported: Option<String>,
    pub errors: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    pub number: String,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
pub struct ImportForm {
    pub csv: String,
}

async fn render(
    state: &WebState,
    ctx: &Ctx,
    p: &PageParams,
    error: Option<String>,
) -> Result<Markup, WebError> {
    let list = entries(state, opt(&p.q)).await?;
    let admin = ctx.user.role >= Role::Admin;
    let msg = match opt(&p.msg) {
        Some("added") => Some(ctx.t("bl.added").to_string()),
        Some("removed") => Some(ctx.t("bl.removed").to_string()),
        Some("imported") => Some(format!(
            "{} {} ✓ {} ✗",
            ctx.t("bl.imported"),
            opt(&p.imported).unwrap_or("0"),
            opt(&p.errors).unwrap_or("0")
        )),
        _ => None,
    };
    Ok(html! {
        @if let Some(m) = msg { div.alert.ok role="status" { (m) } }
        @if let Some(e) = error { div.alert.error role="alert" { (e) } }
        form.inline method="get" action="/blacklist" {
            input type="search" name="q" value=(opt(&p.q).unwrap_or("")) placeholder=(ctx.t("bl.filter")) aria-label=(ctx.t("bl.filter"));
            button type="submit" { (ctx.t("search.button")) }
        }
        @if admin {
            div.cols {
                section {
                    h2 { (ctx.t("bl.add_title")) }
                    form.inline method="post" action="/blacklist/add" {
                        label { (ctx.t("number")) br; input name="number" required placeholder="+8613800138000"; }
                        label { (ctx.t("reason")) br; input name="reason" required; }
                        label { (ctx.t("expires")) br; input type="date" name="expires_at"; }
                        button type="submit" { (ctx.t("add")) }
                    }
                }
                section {
                    h2 { (ctx.t("bl.import_title")) }
                    form method="post" action="/blacklist/import" {
                        input #csvfile type="file" accept=".csv,text/csv";
                        textarea #csvtext name="csv" required placeholder="+8613800138000,客户要求不再来电" {}
                        button type="submit" { (ctx.t("bl.import")) }
                    }
                }
            }
        }
        h2 { (ctx.t("nav.blacklist")) " (" (list.len()) ")" }
        @if list.is_empty() {
            div.empty { (ctx.t("bl.empty")) }
        } @else {
            table {
                thead { tr {
                    th { (ctx.t("number")) } th { (ctx.t("reason")) } th { (ctx.t("source")) } th { (ctx.t("source_calls")) }
                    th { (ctx.t("added")) } th { (ctx.t("expires")) } @if admin { th { (ctx.t("remove")) } }
                } }
                tbody {
                    @for e in &list {
                        tr {
                            td { (e.number) } td { (e.reason) } td { span.badge { (e.source.as_str()) } }
                            td { @for c in &e.calls { a href=(format!("/calls/{}", enc(c))) { (c) } br; } }
                            td { (e.added_at) } td { (e.expires_at.as_deref().unwrap_or(ctx.t("never"))) }
                            @if admin {
                                td {
                                    form.row method="post" action="/blacklist/remove" {
                                        input type="hidden" name="number" value=(e.number);
                                        input name="reason" required placeholder=(ctx.t("bl.remove_reason")) aria-label=(ctx.t("bl.remove_reason"));
                                        button.danger type="submit" { (ctx.t("remove")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

pub async fn page(
    State(state): State<Arc<WebState>>,
    ctx: Ctx,
    Query(p): Query<PageParams>,
) -> Response {
    if let Err(r) = ctx.require(Role::Analyst) {
        return *r;
    }
    match render(&state, &ctx, &p, None).await {
        Ok(body) => frame(&ctx, ctx.t("nav.blacklist"), body).into_response(),
        Err(e) => ctx.fail(e),
    }
}

/// After a failed change: the page again, with the reason, as a 400 (or the error's status).
async fn failed(state: &WebState, ctx: &Ctx, e: WebError) -> Response {
    let status = e.status();
    if status == StatusCode::FORBIDDEN || status.is_server_error() {
        return ctx.fail(e);
    }
    match render(state, ctx, &PageParams::default(), Some(e.to_string())).await {
        Ok(body) => (status, frame(ctx, ctx.t("nav.blacklist"), body)).into_response(),
        Err(e2) => ctx.fail(e2),
    }
}

pub async fn add(State(state): State<Arc<WebState>>, ctx: Ctx, Form(f): Form<AddBody>) -> Response {
    match add_entry(&state, &ctx.user, &f).await {
        Ok(e) => {
            Redirect::to(&format!("/blacklist?msg=added&q={}", enc(&e.number))).into_response()
        }
        Err(e) => failed(&state, &ctx, e).await,
    }
}

pub async fn remove(
    State(state): State<Arc<WebState>>,
    ctx: Ctx,
    Form(f): Form<RemoveForm>,
) -> Response {
    let reason = f.reason.trim();
    match remove_entry(
        &state,
        &ctx.user,
        &f.number,
        (!reason.is_empty()).then_some(reason),
    )
    .await
    {
        Ok(()) => Redirect::to("/blacklist?msg=removed").into_response(),
        Err(e) => failed(&state, &ctx, e).await,
    }
}

pub async fn import(
    State(state): State<Arc<WebState>>,
    ctx: Ctx,
    Form(f): Form<ImportForm>,
) -> Response {
    match import_csv(&state, &ctx.user, &f.csv).await {
        Ok(r) => Redirect::to(&format!(
            "/blacklist?msg=imported&imported={}&errors={}",
            r.imported,
            r.errors.len()
        ))
        .into_response(),
        Err(e) => failed(&state, &ctx, e).await,
    }
}
