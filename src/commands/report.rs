//! `callqa report qa|complaints`: QA scores and complaint rates grouped by agent,
//! campaign, day or number, as JSON or CSV.

use crate::app::App;
use crate::config::Config;
use anyhow::{Context, Result};
use callqa_qa::{complaints_report, qa_report, to_csv, ReportBy};
use serde_json::json;
use std::path::Path;

#[derive(clap::Args)]
pub struct Opts {
    /// agent, campaign, day (or number)
    #[arg(long, default_value = "campaign")]
    by: String,
    #[arg(long)]
    from: Option<String>,
    #[arg(long)]
    to: Option<String>,
    /// json or csv
    #[arg(long, default_value = "json")]
    format: String,
}

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Scores, auto-fails and flags per group.
    Qa(Opts),
    /// Complaint counts and rates per group.
    Complaints(Opts),
}

pub async fn run(cfg: Config, data_dir: &Path, cmd: Cmd) -> Result<i32> {
    let app = App::open(cfg, data_dir).await?;
    let (kind, o) = match cmd {
        Cmd::Qa(o) => ("qa", o),
        Cmd::Complaints(o) => ("complaints", o),
    };
    let by: ReportBy = match o.by.parse() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(2);
        }
    };
    if o.format != "json" && o.format != "csv" {
        eprintln!("error: --format must be json or csv");
        return Ok(2);
    }
    let pool = app.db.pool();
    let (from, to) = (o.from.as_deref(), o.to.as_deref());
    let out = if kind == "qa" {
        let rows = qa_report(pool, by, from, to)
            .await
            .context("QA report failed")?;
        if o.format == "csv" {
            to_csv(&rows)?
        } else {
            serde_json::to_string(&json!({"by": by, "from": from, "to": to, "rows": rows}))?
        }
    } else {
        let rows = complaints_report(pool, by, from, to)
            .await
            .context("complaints report failed")?;
        if o.format == "csv" {
            to_csv(&rows)?
        } else {
            serde_json::to_string(&json!({"by": by, "from": from, "to": to, "rows": rows}))?
        }
    };
    println!("{}", out.trim_end());
    Ok(0)
}
