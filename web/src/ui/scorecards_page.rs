//! The scorecards page: each scorecard version with the calls it scored, their mean
//! score and how many calls it is the current result of; and each campaign's scorecard,
//! with a link to view (or, for admins, edit) it.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;
use sqlx::Row;

use super::layout::{enc, frame, Ctx};
use crate::api::opt;
use crate::api::scorecards::versions;
use crate::auth::Role;
use crate::error::WebError;
use crate::scorecard_files;
use crate::WebState;

#[derive(Debug, Default, Deserialize)]
pub struct PageParams {
    /// Open this campaign's scorecard.
    pub campaign: Option<String>,
}

/// Campaigns worth listing: those with a scorecard file, loaded campaigns and campaigns
/// of scored calls, with the card each is scored with.
async fn campaign_cards(state: &WebState) -> Result<Vec<scorecard_files::CardText>, WebError> {
    let Some(dir) = state.scorecards_dir.as_deref() else {
        return Ok(vec![]);
    };
    let mut names = scorecard_files::campaigns_with_files(dir).await?;
    callqa_dialer::CampaignStore::open(state.db.pool().clone()).await?;
    for sql in [
        "SELECT name FROM campaigns",
        "SELECT DISTINCT campaign FROM qa_results WHERE campaign IS NOT NULL",
    ] {
        let rows = sqlx::query(sql)
            .fetch_all(state.db.pool())
            .await
            .map_err(WebError::db("list campaigns"))?;
        for r in rows {
            let n: String = r.try_get(0).map_err(WebError::db("read campaign name"))?;
            names.push(n);
        }
    }
    names.retain(|n| scorecard_files::valid_campaign(n));
    names.sort();
    names.dedup();
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        out.push(scorecard_files::current(dir, &n).await?);
    }
    Ok(out)
}

async fn render(state: &WebState, ctx: &Ctx) -> Result<Markup, WebError> {
    let rows = versions(state).await?;
    let cards = campaign_cards(state).await?;
    let admin = ctx.user.role >= Role::Admin;
    Ok(html! {
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
        @if state.scorecards_dir.is_some() {
            h2 { (ctx.t("sc.campaigns")) }
            form.inline method="get" action="/scorecards" {
                label { (ctx.t("sc.open_label")) br; input name="campaign" required placeholder="spring"; }
                button type="submit" { (if admin { ctx.t("sc.edit") } else { ctx.t("sc.view") }) }
            }
            @if cards.is_empty() {
                div.empty { (ctx.t("sc.campaigns_empty")) }
            } @else {
                table.campaign-cards {
                    thead { tr {
                        th { (ctx.t("campaign")) } th { (ctx.t("sc.name")) } th { (ctx.t("sc.version")) }
                        th { (ctx.t("sc.source")) } th {}
                    } }
                    tbody {
                        @for c in &cards {
                            tr {
                                td { (c.campaign) } td { (c.scorecard) } td { "v" (c.version) }
                                td { (if c.builtin { ctx.t("sc.default") } else { ctx.t("sc.file") }) }
                                td { a href=(format!("/scorecards/{}", enc(&c.campaign))) {
                                    (if admin { ctx.t("sc.edit") } else { ctx.t("sc.view") }) } }
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
    if let Err(r) = ctx.require(Role::Viewer) {
        return *r;
    }
    if let Some(c) = opt(&p.campaign) {
        return Redirect::to(&format!("/scorecards/{}", enc(c))).into_response();
    }
    match render(&state, &ctx).await {
        Ok(body) => frame(&ctx, ctx.t("nav.scorecards"), body).into_response(),
        Err(e) => ctx.fail(e),
    }
}
