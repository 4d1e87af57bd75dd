//! `callqa calls show|list`: a call's metadata, transcript and QA result.

use crate::app::App;
use crate::config::Config;
use anyhow::{Context, Result};
use callqa_ingest::db::CallRow;
use serde_json::{json, Value};
use std::path::Path;

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// One call with its transcript segments and QA result.
    Show {
        call_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Recent calls.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cfg: Config, data_dir: &Path, cmd: Cmd) -> Result<i32> {
    let app = App::open(cfg, data_dir).await?;
    match cmd {
        Cmd::Show { call_id, json } => {
            let Some(row) = app.db.get_call(&call_id).await? else {
                eprintln!("error: no call {call_id} (see `callqa calls list`)");
                return Ok(1);
            };
            // One builder for this and `GET /api/calls/{id}`.
            let v = callqa_web::call_json(&app.storage, app.db.pool(), &row)
                .await
                .with_context(|| format!("cannot read call {call_id}"))?;
            if json {
                crate::commands::print_json(&v)?;
            } else {
                print_human(&v);
            }
            Ok(0)
        }
        Cmd::List {
            status,
            limit,
            json,
        } => {
            let rows = app.db.list_calls(status.as_deref(), limit).await?;
            if json {
                let calls: Vec<Value> = rows.iter().map(summary_json).collect();
                crate::commands::print_json(&json!({ "calls": calls }))?;
            } else {
                for r in rows {
                    println!(
                        "{}  {:<11} {}  {}",
                        r.call_id,
                        r.status,
                        r.started_at,
                        r.source_name.unwrap_or_default()
                    );
                }
            }
            Ok(0)
        }
    }
}

pub fn summary_json(r: &CallRow) -> Value {
    json!({
        "call_id": r.call_id, "status": r.status, "campaign": r.campaign, "agent": r.agent,
        "customer": r.customer, "started_at": r.started_at, "duration_ms": r.duration_ms,
        "language": r.language, "error": r.error, "file": r.source_name,
    })
}

fn print_human(v: &Value) {
    let s = |k: &str| v[k].as_str().unwrap_or("-").to_string();
    println!(
        "call {}  status {}  started {}",
        s("call_id"),
        s("status"),
        s("started_at")
    );
    println!(
        "campaign {}  agent {}  customer {}  language {}",
        s("campaign"),
        s("agent"),
        s("customer"),
        s("language")
    );
    if let Some(e) = v["error"].as_str() {
        println!("error: {e}");
    }
    if let Some(score) = v["qa"]["score"].as_f64() {
        println!("QA score {score:.1}  flags {}", v["qa"]["flags"]);
    }
    for seg in v["segments"].as_array().into_iter().flatten() {
        let ms = seg["start_ms"].as_u64().unwrap_or(0);
        println!(
            "[{:02}:{:02}.{}] {:<8} {}",
            ms / 60_000,
            (ms / 1000) % 60,
            (ms % 1000) / 100,
            seg["speaker"].as_str().unwrap_or(""),
            seg["text"].as_str().unwrap_or("")
        );
    }
}
