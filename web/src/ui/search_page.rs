//! The search page: one box, filters, facet counts, highlighted snippets, paging,
//! an empty state and a readable message for a query that does not parse.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use callqa_search::{FacetCount, SearchResponse};
use maud::{html, Markup, PreEscaped};

use super::layout::{clock, frame, query, Ctx};
use crate::api::opt;
use crate::api::search::SearchParams;
use crate::error::WebError;
use crate::WebState;

const FLAGS: [&str; 5] = ["complaint", "refund", "opt_out", "cancel", "legal_threat"];

fn flag_label(ctx: &Ctx, flag: &str) -> String {
    let key = match flag {
        "complaint" => "flag.complaint",
        "refund" => "flag.refund",
        "opt_out" => "flag.opt_out",
        "cancel" => "flag.cancel",
        "legal_threat" => "flag.legal_threat",
        other => return other.to_string(),
    };
    ctx.t(key).to_string()
}

/// The parameters as link pairs, so facet and paging links keep the other filters.
fn pairs(p: &SearchParams) -> Vec<(&'static str, String)> {
    let v = |o: &Option<String>| opt(o).unwrap_or("").to_string();
    vec![
        ("q", v(&p.q)),
        ("from", v(&p.from)),
        ("to", v(&p.to)),
        ("campaign", v(&p.campaign)),
        ("agent", v(&p.agent)),
        ("customer", v(&p.customer)),
        ("speaker", v(&p.speaker)),
        ("language", v(&p.language)),
        ("min_score", v(&p.min_score)),
        ("max_score", v(&p.max_score)),
        ("flag", v(&p.flag)),
        ("limit", v(&p.limit)),
        ("offset", v(&p.offset)),
    ]
}

fn link_with(p: &SearchParams, changes: &[(&str, String)]) -> String {
    let mut ps = pairs(p);
    for (k, val) in changes {
        if let Some(slot) = ps.iter_mut().find(|(name, _)| name == k) {
            slot.1 = val.clone();
        }
    }
    // A new filter starts again at the first page.
    if !changes.iter().any(|(k, _)| *k == "offset") {
        if let Some(slot) = ps.iter_mut().find(|(name, _)| *name == "offset") {
            slot.1 = String::new();
        }
    }
    format!("/search{}", query(&ps))
}

fn form(ctx: &Ctx, p: &SearchParams) -> Markup {
    let v = |o: &Option<String>| opt(o).unwrap_or("").to_string();
    let speaker = v(&p.speaker);
    let flag = v(&p.flag);
    html! {
        form.search method="get" action="/search" {
            div.searchbar {
                input type="search" name="q" value=(v(&p.q)) placeholder=(ctx.t("search.placeholder")) aria-label=(ctx.t("search.button")) autofocus;
                button type="submit" { (ctx.t("search.button")) }
            }
            div.filters {
                label { (ctx.t("from")) input type="date" name="from" value=(v(&p.from)); }
                label { (ctx.t("to")) input type="date" name="to" value=(v(&p.to)); }
                label { (ctx.t("campaign")) input name="campaign" value=(v(&p.campaign)); }
                label { (ctx.t("agent")) input name="agent" value=(v(&p.agent)); }
                label { (ctx.t("speaker"))
                    select name="speaker" {
                        @for (val, key) in [("", "speaker.any"), ("agent", "speaker.agent"), ("customer", "speaker.customer"), ("mixed", "speaker.mixed")] {
                            option value=(val) selected[speaker == val] { (ctx.t(key)) }
                        }
                    }
                }
                label { (ctx.t("min_score")) input type="number" min="0" max="100" step="any" name="min_score" value=(v(&p.min_score)); }
                label { (ctx.t("max_score")) input type="number" min="0" max="100" step="any" name="max_score" value=(v(&p.max_score)); }
                label { (ctx.t("flag"))
                    select name="flag" {
                        option value="" selected[flag.is_empty()] { (ctx.t("flag.any")) }
                        @for f in FLAGS { option value=(f) selected[flag == f] { (flag_label(ctx, f)) } }
                    }
                }
            }
        }
    }
}

fn facet_list(
    ctx: &Ctx,
    p: &SearchParams,
    title: &'static str,
    param: &str,
    counts: &[FacetCount],
) -> Markup {
    html! {
        @if !counts.is_empty() {
            h3 { (ctx.t(title)) }
            ul {
                @for c in counts.iter().take(12) {
                    @let href = if param == "day" {
                        link_with(p, &[("from", c.value.clone()), ("to", c.value.clone())])
                    } else {
                        link_with(p, &[(param, c.value.clone())])
                    };
                    li { a href=(href) { (c.value) } span.count { (c.count) } }
                }
            }
        }
    }
}

fn results(ctx: &Ctx, p: &SearchParams, r: &SearchResponse, offset: usize, limit: usize) -> Markup {
    let q = opt(&p.q).unwrap_or("").to_string();
    html! {
        div.layout {
            aside.facets {
                (facet_list(ctx, p, "facet.campaign", "campaign", &r.facets.campaign))
                (facet_list(ctx, p, "facet.agent", "agent", &r.facets.agent))
                (facet_list(ctx, p, "facet.day", "day", &r.facets.day))
            }
            section {
                p.count { (r.total) " " (ctx.t("results")) }
                @if r.hits.is_empty() {
                    div.empty { (ctx.t("no_results")) }
                }
                @for h in &r.hits {
                    article.hit {
                        a.callid href=(format!("/calls/{}{}", super::layout::enc(&h.call_id), query(&[("q", q.clone())]))) { strong { (h.call_id) } }
                        div.meta {
                            span { (h.started_at) }
                            @if let Some(c) = &h.campaign { span { (ctx.t("campaign")) ": " (c) } }
                            @if let Some(a) = &h.agent { span { (ctx.t("agent")) ": " (a) } }
                            @if let Some(c) = &h.customer { span { (ctx.t("customer")) ": " (c) } }
                            @if let Some(s) = h.qa_score { span { (ctx.t("score")) ": " (format!("{s:.0}")) } }
                            @for f in &h.flags { span.badge.flag { (flag_label(ctx, f)) } }
                        }
                        @for s in &h.snippets {
                            // Snippet text is HTML built by the search crate: escaped, with <b> around hits.
                            p.snip { span.t { (clock(s.start_ms)) " " (ctx.t(match s.speaker.as_str() { "agent" => "speaker.agent", "customer" => "speaker.customer", _ => "speaker.mixed" })) } (PreEscaped(&s.text)) }
                        }
                    }
                }
                @if r.total > limit {
                    nav.pager {
                        @if offset > 0 {
                            a.button href=(link_with(p, &[("offset", offset.saturating_sub(limit).to_string())])) { (ctx.t("prev")) }
                        }
                        span { (ctx.t("page")) " " (offset / limit + 1) " / " (r.total.div_ceil(limit)) }
                        @if offset + limit < r.total {
                            a.button href=(link_with(p, &[("offset", (offset + limit).to_string())])) { (ctx.t("next")) }
                        }
                    }
                }
            }
        }
    }
}

pub async fn page(
    State(state): State<Arc<WebState>>,
    ctx: Ctx,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Response {
    let p = match params {
        Ok(Query(p)) => p,
        Err(e) => return ctx.fail(WebError::BadRequest(e.body_text())),
    };
    let title = ctx.t("nav.search");
    let outcome = match p.to_request() {
        Ok(req) => {
            let (offset, limit) = (req.offset, req.limit);
            crate::api::search::run(&state, &ctx.user, req)
                .await
                .and_then(|v| {
                    serde_json::from_value::<SearchResponse>(v)
                        .map(|r| (r, offset, limit))
                        .map_err(|source| WebError::Json {
                            what: "search response".into(),
                            source,
                        })
                })
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok((r, offset, limit)) => frame(
            &ctx,
            title,
            html! { (form(&ctx, &p)) (results(&ctx, &p, &r, offset, limit)) },
        )
        .into_response(),
        Err(e) if e.status() == StatusCode::BAD_REQUEST => {
            let body = html! {
                (form(&ctx, &p))
                div.alert.error role="alert" { strong { (ctx.t("bad_query")) } ": " (e.to_string()) }
            };
            (StatusCode::BAD_REQUEST, frame(&ctx, title, body)).into_response()
        }
        Err(e) => ctx.fail(e),
    }
}
