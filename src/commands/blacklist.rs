//! `callqa blacklist list|add|remove|import`: the do-not-call list, every change audited.

use crate::app::App;
use crate::config::Config;
use anyhow::{Context, Result};
use callqa_qa::{Blacklist, Source};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand)]
pub enum Cmd {
    List {
        #[arg(long)]
        json: bool,
    },
    Add {
        number: String,
        #[arg(long)]
        reason: String,
        /// Expiry (RFC 3339 or YYYY-MM-DD); default never.
        #[arg(long)]
        expires: Option<String>,
    },
    Remove {
        number: String,
        #[arg(long)]
        reason: String,
    },
    /// CSV with columns number,reason[,expires_at].
    Import { file: PathBuf },
}

/// Who made a manual change, for the audit trail.
fn actor() -> String {
    std::env::var("USER")
        .map(|u| format!("cli:{u}"))
        .unwrap_or_else(|_| "cli".into())
}

fn parse_expiry(s: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .with_context(|| format!("--expires {s:?} is neither YYYY-MM-DD nor RFC 3339"))?;
    Ok(d.and_hms_opt(0, 0, 0).context("bad date")?.and_utc())
}

pub async fn run(cfg: Config, data_dir: &Path, cmd: Cmd) -> Result<i32> {
    let app = App::open(cfg, data_dir).await?;
    let bl = Blacklist::new(app.db.pool().clone());
    match cmd {
        Cmd::List { json } => {
            let entries = bl.list().await?;
            if json {
                crate::commands::print_json(&json!({ "entries": entries }))?;
            } else {
                for e in entries {
                    println!(
                        "{}  {:<10} {}  {}",
                        e.number,
                        e.source.as_str(),
                        e.added_at,
                        e.reason
                    );
                }
            }
        }
        Cmd::Add {
            number,
            reason,
            expires,
        } => {
            let exp = expires.as_deref().map(parse_expiry).transpose()?;
            let e = bl
                .add(&number, &reason, Source::Manual, &[], exp, &actor())
                .await
                .with_context(|| format!("cannot blacklist {number}"))?;
            crate::commands::print_json(&e)?;
        }
        Cmd::Remove { number, reason } => {
            if !bl.remove(&number, &reason, &actor()).await? {
                eprintln!("error: {number} is not on the blacklist");
                return Ok(1);
            }
        }
        Cmd::Import { file } => {
            let f = std::fs::File::open(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let report = bl.import_csv(f, &actor()).await?;
            crate::commands::print_json(&report)?;
            if !report.errors.is_empty() {
                return Ok(1);
            }
        }
    }
    Ok(0)
}
