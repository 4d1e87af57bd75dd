//! The report page: QA scores or complaint rates by agent, campaign or day, as a table,
//! a server-drawn SVG bar chart and a CSV download link.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use super::chart::bar_chart;
use super::layout::{frame, query, Ctx};
use crate::api::opt;
use crate::api::reports::{rows, Kind, ReportParams};
use crate::WebState;

#[derive(Debug, Default, Deserialize)]
pub struct PageParams {
    /// `qa` (default) or `complaints`.
    pub kind: Option<String>,
    pub by: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

pub async fn page(
    State(state): State<Arc<WebState>>,
    ctx: Ctx,
    Query(p): Query<PageParams>,
) -> Response {
    let kind = if opt(&p.kind) == Some("complaints") {
        Kind::Complaints
    } else {
        Kind::Qa
    };
    let kind_s = if kind == Kind::Qa { "qa" } else { "complaints" };
    let rp = ReportParams {
        by: p.by.clone(),
        from: p.from.clone(),
        to: p.to.clone(),
        format: None,
    };
    let data = match rows(&state, &ctx.user, kind, &rp)
        .await
        .and_then(|r| r.values())
    {
        Ok(r) => r,
        Err(e) => return ctx.fail(e),
    };
    let by = opt(&p.by).unwrap_or("agent").to_string();
    let (from, to) = (
        opt(&p.from).unwrap_or("").to_string(),
        opt(&p.to).unwrap_or("").to_string(),
    );
    let csv = format!(
        "/api/reports/{kind_s}{}",
        query(&[
            ("by", by.clone()),
            ("from", from.clone()),
            ("to", to.clone()),
            ("format", "csv".into())
        ])
    );
    let num = |r: &Value, k: &str| r.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let key = |r: &Value| {
        r.get("key")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let chart = if kind == Kind::Qa {
        let bars: Vec<(String, f64, bool)> = data
            .iter()
            .map(|r| (key(r), num(r, "avg_score"), num(r, "avg_score") < 60.0))
            .collect();
        bar_chart(ctx.t("avg_score"), &bars, Some(100.0), |v| {
            format!("{v:.1}")
        })
    } else {
        let bars: Vec<(String, f64, bool)> = data
            .iter()
            .map(|r| {
                (
                    key(r),
                    num(r, "complaint_rate") * 100.0,
                    num(r, "complaint_rate") >= 0.1,
                )
            })
            .collect();
        bar_chart(ctx.t("complaint_rate"), &bars, None, |v| format!("{v:.1}%"))
    };
    let columns: Vec<(&str, &'static str)> = if kind == Kind::Qa {
        vec![
            ("calls", "calls"),
            ("avg_score", "avg_score"),
            ("min_score", "min"),
            ("max_score", "max"),
            ("complaints", "complaints"),
            ("complaint_rate", "complaint_rate"),
            ("refunds", "refunds"),
            ("opt_outs", "opt_outs"),
        ]
    } else {
        vec![
            ("calls", "calls"),
            ("complaints", "complaints"),
            ("complaint_rate", "complaint_rate"),
            ("opt_outs", "opt_outs"),
            ("legal_threats", "legal_threats"),
        ]
    };
    let cell = |r: &Value, k: &str| match r.get(k) {
        Some(Value::Number(n)) if k == "complaint_rate" => {
            format!("{:.1}%", n.as_f64().unwrap_or(0.0) * 100.0)
        }
        Some(Value::Number(n)) if n.is_f64() => format!("{:.1}", n.as_f64().unwrap_or(0.0)),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let title = ctx.t(if kind == Kind::Qa {
        "report.qa"
    } else {
        "report.complaints"
    });
    let body = html! {
        form.inline method="get" action="/reports" {
            label { (ctx.t("nav.reports")) br;
                select name="kind" {
                    option value="qa" selected[kind == Kind::Qa] { (ctx.t("report.qa")) }
                    option value="complaints" selected[kind == Kind::Complaints] { (ctx.t("report.complaints")) }
                }
            }
            label { (ctx.t("by")) br;
                select name="by" {
                    @for b in ["agent", "campaign", "day"] {
                        option value=(b) selected[by == b] { (ctx.t(match b { "agent" => "by.agent", "campaign" => "by.campaign", _ => "by.day" })) }
                    }
                }
            }
            label { (ctx.t("from")) br; input type="date" name="from" value=(from); }
            label { (ctx.t("to")) br; input type="date" name="to" value=(to); }
            button type="submit" { (ctx.t("show")) }
            a.button href=(csv) download { (ctx.t("csv")) }
        }
        @if data.is_empty() {
            div.empty { (ctx.t("no_rows")) }
        } @else {
            figure { (chart) }
            table {
                thead { tr { th { (ctx.t(match by.as_str() { "campaign" => "by.campaign", "day" => "by.day", _ => "by.agent" })) }
                    @for (_, label) in &columns { th.num { (ctx.t(label)) } } } }
                tbody {
                    @for r in &data {
                        tr { td { (key(r)) } @for (k, _) in &columns { td.num { (cell(r, k)) } } }
                    }
                }
            }
        }
    };
    frame(&ctx, title, body).into_response()
}
