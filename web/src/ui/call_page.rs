//! The call page: metadata, the recording player, the transcript as the two speakers'
//! turns (click to seek, query words highlighted) and the QA result with its evidence.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use callqa_ingest::transcript::{Segment, Speaker};
use callqa_qa::QaResult;
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{clock, enc, frame, Ctx};
use crate::auth::Role;
use crate::error::WebError;
use crate::WebState;

#[derive(Debug, Default, Deserialize)]
pub struct CallParams {
    /// The search that led here; its words are highlighted.
    pub q: Option<String>,
}

/// Plain words of a query, without operators, quotes, negations or wildcards.
pub fn query_terms(q: &str) -> Vec<String> {
    q.split(|c: char| c.is_whitespace() || matches!(c, '"' | '(' | ')'))
        .filter(|w| !matches!(*w, "AND" | "OR" | "NOT" | "") && !w.starts_with('-'))
        .map(|w| w.trim_end_matches('*').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// `text` with every occurrence of a term in `<mark>` (ASCII case-insensitive), escaped.
pub fn highlight(text: &str, terms: &[String]) -> Markup {
    let mut pieces: Vec<(bool, &str)> = Vec::new();
    let mut plain_from = 0;
    let mut i = 0;
    while i < text.len() {
        let hit = terms.iter().find(|t| {
            text.get(i..i + t.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(t))
        });
        match hit {
            Some(t) => {
                pieces.push((false, &text[plain_from..i]));
                pieces.push((true, &text[i..i + t.len()]));
                i += t.len();
                plain_from = i;
            }
            None => i += text[i..].chars().next().map_or(1, char::len_utf8),
        }
    }
    pieces.push((false, &text[plain_from..]));
    html! { @for (marked, s) in pieces { @if marked { mark { (s) } } @else { (s) } } }
}

fn speaker_key(s: Speaker) -> &'static str {
    match s {
        Speaker::Agent => "speaker.agent",
        Speaker::Customer => "speaker.customer",
        Speaker::Mixed => "speaker.mixed",
    }
}

/// Index of the segment an evidence span points at: the one containing its start.
fn segment_of(segments: &[Segment], start_ms: u64) -> Option<usize> {
    segments
        .iter()
        .position(|s| s.start_ms == start_ms)
        .or_else(|| {
            segments
                .iter()
                .position(|s| s.start_ms <= start_ms && start_ms < s.end_ms)
        })
}

fn qa_section(ctx: &Ctx, qa: &QaResult, segments: &[Segment]) -> Markup {
    html! {
        p {
            strong { (ctx.t("score")) ": " (format!("{:.1}", qa.score)) }
            " · " (qa.scorecard) " v" (qa.version)
        }
        @if qa.auto_failed { div.alert.error { (ctx.t("auto_failed")) } }
        @if !qa.flags.is_empty() {
            p { (ctx.t("flags")) ": " @for f in &qa.flags { span.badge.flag { (f) } } }
        }
        table.qa {
            thead { tr { th { (ctx.t("item")) } th { (ctx.t("result")) } th.num { (ctx.t("points")) } th { (ctx.t("evidence")) } } }
            tbody {
                @for item in &qa.items {
                    tr {
                        td { (item.label) br; small.count { (item.detail) } }
                        td { @if item.passed { span.pass { "✓ " (ctx.t("passed")) } } @else { span.fail { "✗ " (ctx.t("failed")) } } }
                        td.num { (format!("{:.0}/{:.0}", item.points, item.max_points)) }
                        td {
                            @for ev in &item.evidence {
                                @let anchor = segment_of(segments, ev.start_ms).map_or_else(String::new, |i| format!("#seg-{i}"));
                                a.ev href=(anchor) data-start=(ev.start_ms) { (clock(ev.start_ms)) " " (ev.text) }
                            }
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
    Path(id): Path<String>,
    Query(p): Query<CallParams>,
) -> Response {
    match render(&state, &ctx, &id, p.q.as_deref().unwrap_or("")).await {
        Ok(r) => r,
        Err(e) => ctx.fail(e),
    }
}

async fn render(state: &WebState, ctx: &Ctx, id: &str, q: &str) -> Result<Response, WebError> {
    let row = crate::api::calls::get_row(state, id).await?;
    let mut v = crate::api::calls::call_json(&state.storage, state.db.pool(), &row).await?;
    if !ctx.user.sees_numbers() {
        crate::mask::redact(&mut v);
    }
    fn json(what: &'static str) -> impl FnOnce(serde_json::Error) -> WebError {
        move |source| WebError::Json {
            what: what.to_string(),
            source,
        }
    }
    let segments: Vec<Segment> =
        serde_json::from_value(v["segments"].take()).map_err(json("segments"))?;
    let qa: Option<QaResult> = serde_json::from_value(v["qa"].take()).map_err(json("QA result"))?;
    let text = |k: &str| v[k].as_str().unwrap_or("—").to_string();
    let terms = query_terms(q);
    let body = html! {
        dl.meta {
            dt { (ctx.t("status")) } dd { (text("status")) }
            dt { (ctx.t("started")) } dd { (text("started_at")) }
            dt { (ctx.t("duration")) } dd { (v["duration_ms"].as_u64().map_or("—".to_string(), clock)) }
            dt { (ctx.t("campaign")) } dd { (text("campaign")) }
            dt { (ctx.t("agent")) } dd { (text("agent")) }
            dt { (ctx.t("customer")) } dd { (text("customer")) }
            dt { (ctx.t("language")) } dd { (text("language")) }
            @if let Some(e) = v["error"].as_str() { dt { (ctx.t("error")) } dd.fail { (e) } }
        }
        @if ctx.user.role >= Role::Analyst {
            audio #player controls preload="metadata" src=(format!("/api/calls/{}/audio", enc(id))) {}
        } @else {
            p.alert.error { (ctx.t("no_audio_role")) }
        }
        div.cols {
            section {
                h2 { (ctx.t("transcript")) }
                @if segments.is_empty() {
                    div.empty { (ctx.t("no_transcript")) }
                } @else {
                    p.count { (ctx.t("click_to_seek")) }
                    div.transcript {
                        @for (i, s) in segments.iter().enumerate() {
                            div class=(format!("seg {}", s.speaker.as_str())) id=(format!("seg-{i}")) data-start=(s.start_ms) data-end=(s.end_ms) {
                                span.who { (clock(s.start_ms)) " " (ctx.t(speaker_key(s.speaker))) }
                                p { (highlight(&s.text, &terms)) }
                            }
                        }
                    }
                }
            }
            section {
                h2 { (ctx.t("qa")) }
                @match &qa {
                    Some(qa) => (qa_section(ctx, qa, &segments)),
                    None => div.empty { (ctx.t("not_scored")) },
                }
            }
        }
    };
    Ok(frame(ctx, &row.call_id, body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_drop_operators() {
        assert_eq!(
            query_terms("refund AND \"我要投诉\" -spam pay*"),
            vec!["refund", "我要投诉", "pay"]
        );
    }

    #[test]
    fn highlight_marks_and_escapes() {
        let out =
            highlight("我要退款 <now> Refund", &["退款".into(), "refund".into()]).into_string();
        assert_eq!(out, "我要<mark>退款</mark> &lt;now&gt; <mark>Refund</mark>");
    }

    #[test]
    fn evidence_finds_its_segment() {
        let seg = |a, b| Segment {
            speaker: Speaker::Agent,
            start_ms: a,
            end_ms: b,
            text: String::new(),
        };
        let segs = vec![seg(0, 1000), seg(1000, 2500), seg(2600, 4000)];
        assert_eq!(segment_of(&segs, 1000), Some(1));
        assert_eq!(segment_of(&segs, 3000), Some(2));
        assert_eq!(segment_of(&segs, 2550), None);
    }
}
