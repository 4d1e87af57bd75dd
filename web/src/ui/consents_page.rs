//! The consent records page: the newest records, for analysts a lookup by number, and for
//! admins a CSV import with a per-line summary. Viewers see masked numbers and no lookup box.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{frame, Ctx};
use crate::api::consents::{import_csv, records, ConsentImportReport, ConsentParams};
use crate::api::opt;
use crate::auth::Role;
use crate::error::WebError;
use crate::mask::mask_number;
use crate::WebState;

#[derive(Debug, Deserialize)]
pub struct ImportForm {
    pub csv: String,
}

async fn render(
    state: &WebState,
    ctx: &Ctx,
    number: Option<&str>,
    report: Option<&ConsentImportReport>,
    error: Option<String>,
) -> Result<Markup, WebError> {
    let rows = records(state, &ctx.user, number).await?;
    let full = ctx.user.sees_numbers();
    Ok(html! {
        @if let Some(e) = error { div.alert.error role="alert" { (e) } }
        @if let Some(r) = report {
            div.alert.ok.import-summary role="status" {
                span.imported { (r.imported) } " " (ctx.t("consent.imported")) "; "
                span.rejected { (r.errors.len()) } " " (ctx.t("consent.rejected"))
            }
            @if !r.errors.is_empty() {
                table.rejected {
                    thead { tr { th { (ctx.t("consent.line")) } th { (ctx.t("reason")) } } }
                    tbody { @for e in &r.errors {
                        tr { td.num { (if e.line > 0 { e.line.to_string() } else { "—".into() }) } td { (e.message) } }
                    } }
                }
            }
        }
        @if ctx.user.role >= Role::Analyst {
            form.inline method="get" action="/consents" {
                input type="search" name="number" value=(number.unwrap_or("")) placeholder="+8613800138000" aria-label=(ctx.t("number"));
                button type="submit" { (ctx.t("search.button")) }
            }
        }
        @if ctx.user.role >= Role::Admin {
            section {
                h2 { (ctx.t("consent.import_title")) }
                form.import method="post" action="/consents/import" {
                    input #csvfile type="file" accept=".csv,text/csv" aria-label=(ctx.t("consent.import_title"));
                    textarea #csvtext name="csv" required
                        placeholder="number,scope,proof,granted_at,expires_at\n+8613800138000,marketing,form-42,2026-01-05T08:00:00Z," {}
                    button type="submit" { (ctx.t("consent.import")) }
                }
            }
        }
        @if rows.is_empty() {
            div.empty { (ctx.t("consent.empty")) }
        } @else {
            table.consents {
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
    })
}

pub async fn page(
    State(state): State<Arc<WebState>>,
    ctx: Ctx,
    Query(p): Query<ConsentParams>,
) -> Response {
    if let Err(r) = ctx.require(Role::Viewer) {
        return *r;
    }
    match render(&state, &ctx, opt(&p.number), None, None).await {
        Ok(body) => frame(&ctx, ctx.t("nav.consents"), body).into_response(),
        Err(e) => ctx.fail(e),
    }
}

/// Imports the pasted or chosen CSV and shows the page with what was imported and which
/// lines were rejected (the summary needs the lines, so this answers with the page itself).
pub async fn import(
    State(state): State<Arc<WebState>>,
    ctx: Ctx,
    Form(f): Form<ImportForm>,
) -> Response {
    let (report, error, status) = match import_csv(&state, &ctx.user, &f.csv).await {
        Ok(r) => (Some(r), None, StatusCode::OK),
        Err(e) if e.status() == StatusCode::FORBIDDEN || e.status().is_server_error() => {
            return ctx.fail(e)
        }
        Err(e) => (None, Some(e.to_string()), e.status()),
    };
    match render(&state, &ctx, None, report.as_ref(), error).await {
        Ok(body) => (status, frame(&ctx, ctx.t("nav.consents"), body)).into_response(),
        Err(e) => ctx.fail(e),
    }
}
