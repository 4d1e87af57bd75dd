//! One campaign's scorecard: the TOML it is scored with and the versions saved. Admins
//! edit it in place, check it with the scoring stage's parser (the fault's line is shown
//! and selected) and save it as a new version; others read it.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{enc, frame, Ctx};
use crate::api::scorecards::{card_text, save_card};
use crate::api::{opt, opt_num};
use crate::auth::Role;
use crate::error::WebError;
use crate::scorecard_files::{self, Problem};
use crate::WebState;

/// Lines of context shown around a faulty line.
const CONTEXT_LINES: usize = 2;

#[derive(Debug, Default, Deserialize)]
pub struct PageParams {
    /// A saved version to show instead of the one in force.
    pub version: Option<String>,
    /// What just happened: `saved`.
    pub msg: Option<String>,
    /// The version just saved.
    pub v: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct EditForm {
    pub toml: String,
    /// `check` or `save`.
    pub action: Option<String>,
}

/// What to say above the editor.
enum Note {
    Saved(String),
    Valid {
        id: String,
        version: u32,
        items: usize,
    },
    Invalid(Problem),
    Error(String),
}

/// The faulty line with a little context, numbered, the fault marked.
fn excerpt(text: &str, line: usize) -> Markup {
    let lines: Vec<&str> = text.lines().collect();
    let from = line.saturating_sub(CONTEXT_LINES + 1);
    let to = (line + CONTEXT_LINES).min(lines.len());
    html! {
        pre.excerpt {
            @for (i, l) in lines.iter().enumerate().take(to).skip(from) {
                @let n = i + 1;
                span class=(if n == line { "ln bad" } else { "ln" }) { (format!("{n:>4} │ ")) (l) "\n" }
            }
        }
    }
}

async fn render(
    state: &WebState,
    ctx: &Ctx,
    campaign: &str,
    version: Option<u32>,
    edited: Option<&str>,
    note: Option<Note>,
) -> Result<(String, Markup), WebError> {
    let (card, versions) = card_text(state, &ctx.user, campaign, version).await?;
    let admin = ctx.user.role >= Role::Admin;
    let text = edited.unwrap_or(&card.toml);
    // The saved version the scoring stage reads now; none while the default card is used.
    let in_force = Some(scorecard_files::current(scorecard_files::dir_of(state)?, campaign).await?)
        .filter(|c| !c.builtin)
        .map(|c| c.version);
    let bad_line = match &note {
        Some(Note::Invalid(p)) => p.line,
        _ => None,
    };
    let body = html! {
        p { a href="/scorecards" { "← " (ctx.t("nav.scorecards")) } }
        @match &note {
            Some(Note::Saved(v)) => { div.alert.ok role="status" { (ctx.t("sc.saved")) " v" (v) } }
            Some(Note::Valid { id, version, items }) => {
                div.alert.ok.valid role="status" { (ctx.t("sc.valid")) ": " (id) " v" (version) ", " (items) " " (ctx.t("sc.items")) }
            }
            Some(Note::Invalid(p)) => {
                div.alert.error.problem role="alert" data-line=[p.line] {
                    strong { (ctx.t("sc.invalid")) }
                    @if let Some(l) = p.line {
                        " — " (ctx.t("sc.line")) " " span.line { (l) }
                        @if let Some(c) = p.column { ", " (ctx.t("sc.column")) " " (c) }
                    }
                    ": " (p.message)
                }
                @if let Some(l) = p.line { (excerpt(text, l)) }
            }
            Some(Note::Error(e)) => { div.alert.error role="alert" { (e) } }
            None => {}
        }
        dl.meta {
            dt { (ctx.t("sc.name")) } dd { (card.scorecard) @if !card.name.is_empty() { " — " (card.name) } }
            dt { (ctx.t("sc.version")) } dd.version { "v" (card.version)
                @if version.is_some() && Some(card.version) != in_force { " (" (ctx.t("sc.viewing")) ")" } }
            dt { (ctx.t("sc.item_count")) } dd { (card.items) }
            dt { (ctx.t("sc.source")) } dd { (if card.builtin { ctx.t("sc.builtin") } else { ctx.t("sc.file") }) }
        }
        @if admin {
            form.scorecard method="post" action=(format!("/scorecards/{}", enc(campaign))) {
                textarea.code name="toml" rows="30" spellcheck="false" aria-label=(ctx.t("nav.scorecards"))
                    data-error-line=[bad_line] { (text) }
                div.row {
                    button.secondary type="submit" name="action" value="check" { (ctx.t("sc.check")) }
                    " "
                    button type="submit" name="action" value="save" { (ctx.t("sc.save")) }
                }
            }
        } @else {
            pre.code { (text) }
        }
        h2 { (ctx.t("sc.history")) }
        @if versions.is_empty() {
            div.empty { (ctx.t("sc.history_empty")) }
        } @else {
            ul.versions {
                @for v in &versions {
                    li {
                        a href=(format!("/scorecards/{}?version={v}", enc(campaign))) { "v" (v) }
                        @if Some(*v) == in_force { " · " (ctx.t("sc.in_force")) }
                    }
                }
            }
        }
    };
    Ok((format!("{} · {}", ctx.t("nav.scorecards"), campaign), body))
}

pub async fn page(
    State(state): State<Arc<WebState>>,
    ctx: Ctx,
    Path(campaign): Path<String>,
    Query(p): Query<PageParams>,
) -> Response {
    if let Err(r) = ctx.require(Role::Viewer) {
        return *r;
    }
    let version = match opt_num::<u32>("version", &p.version) {
        Ok(v) => v,
        Err(e) => return ctx.fail(e),
    };
    let note =
        (opt(&p.msg) == Some("saved")).then(|| Note::Saved(opt(&p.v).unwrap_or("?").to_string()));
    match render(&state, &ctx, &campaign, version, None, note).await {
        Ok((title, body)) => frame(&ctx, &title, body).into_response(),
        Err(e) => ctx.fail(e),
    }
}

/// Checks or saves the edited text; a refused text comes back in the editor with the fault.
pub async fn submit(
    State(state): State<Arc<WebState>>,
    ctx: Ctx,
    Path(campaign): Path<String>,
    Form(f): Form<EditForm>,
) -> Response {
    if let Err(r) = ctx.require(Role::Admin) {
        return *r;
    }
    // Browsers send a textarea with CRLF line ends; the files use LF.
    let text = f.toml.replace("\r\n", "\n");
    let (status, note) = if opt(&f.action) == Some("check") {
        match scorecard_files::check(&text) {
            Ok(card) => (
                StatusCode::OK,
                Note::Valid {
                    id: card.id,
                    version: card.version,
                    items: card.items.len(),
                },
            ),
            Err(p) => (StatusCode::BAD_REQUEST, Note::Invalid(p)),
        }
    } else {
        match save_card(&state, &ctx.user, &campaign, &text).await {
            Ok(saved) => {
                return Redirect::to(&format!(
                    "/scorecards/{}?msg=saved&v={}",
                    enc(&campaign),
                    saved.version
                ))
                .into_response()
            }
            Err(WebError::InvalidScorecard(p)) => (StatusCode::BAD_REQUEST, Note::Invalid(p)),
            Err(e) if e.status() == StatusCode::FORBIDDEN || e.status().is_server_error() => {
                return ctx.fail(e)
            }
            Err(e) => (e.status(), Note::Error(e.to_string())),
        }
    };
    match render(&state, &ctx, &campaign, None, Some(&text), Some(note)).await {
        Ok((title, body)) => (status, frame(&ctx, &title, body)).into_response(),
        Err(e) => ctx.fail(e),
    }
}
