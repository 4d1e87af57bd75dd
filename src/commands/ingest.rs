//! `callqa ingest`: store each recording, record the call, queue it; with `--wait`, see
//! every call through the whole pipeline and report one JSON line per file.

use crate::app::App;
use crate::config::Config;
use anyhow::{Context, Result};
use callqa_ingest::db::{now_rfc3339, status, CallRow};
use callqa_ingest::queue::Stage;
use callqa_ingest::storage::recording_key;
use serde_json::json;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    campaign: Option<String>,
    #[arg(long)]
    agent: Option<String>,
    /// Customer phone number (stored in E.164 form).
    #[arg(long)]
    customer: Option<String>,
    /// Wait until every file is transcribed, scored and indexed (or failed).
    #[arg(long)]
    wait: bool,
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub async fn run(cfg: Config, data_dir: &Path, a: Args) -> Result<i32> {
    let app = App::open(cfg, data_dir).await?;
    let customer = match &a.customer {
        Some(n) => Some(callqa_qa::number::normalize(n).with_context(|| {
            format!("--customer {n:?} is not a valid phone number (use E.164, e.g. +8613800138000)")
        })?),
        None => None,
    };
    let progress = progress_bar(a.files.len() as u64, "storing");
    let mut ids: Vec<Option<String>> = Vec::new();
    let mut failures = 0;
    for f in &a.files {
        match store_one(
            &app,
            f,
            a.campaign.as_deref(),
            a.agent.as_deref(),
            customer.as_deref(),
        )
        .await
        {
            Ok(id) => {
                if !a.wait {
                    crate::commands::print_json(
                        &json!({"call_id": id, "status": status::QUEUED, "file": f}),
                    )?;
                }
                ids.push(Some(id));
            }
            Err(e) => {
                failures += 1;
                crate::commands::print_json(
                    &json!({"call_id": null, "status": status::FAILED, "file": f, "error": format!("{e:#}")}),
                )?;
                ids.push(None);
            }
        }
        if let Some(p) = &progress {
            p.inc(1);
        }
    }
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    if !a.wait {
        return Ok(if failures > 0 { 1 } else { 0 });
    }
    let wanted: Vec<String> = ids.iter().flatten().cloned().collect();
    wait_for(&app, &wanted, &Stage::ALL).await?;
    for id in wanted {
        let row = app.db.get_call(&id).await?.context("call vanished")?;
        if row.status == status::FAILED {
            failures += 1;
            crate::commands::print_json(
                &json!({"call_id": id, "status": status::FAILED, "error": row.error.unwrap_or_default()}),
            )?;
        } else {
            crate::commands::print_json(&json!({"call_id": id, "status": status::DONE}))?;
        }
    }
    Ok(if failures > 0 { 1 } else { 0 })
}

/// Uploads one file and queues its first job. Storage first, then the row, then the job:
/// a crash leaves at worst an unreferenced object, never a call without its recording, and
/// a call booked without its job is queued by the workers (see `callqa_ingest::booking`).
async fn store_one(
    app: &App,
    file: &Path,
    campaign: Option<&str>,
    agent: Option<&str>,
    customer: Option<&str>,
) -> Result<String> {
    let meta =
        std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    if !meta.is_file() {
        anyhow::bail!("{} is not a file", file.display());
    }
    let call_id = uuid::Uuid::now_v7().simple().to_string();
    let ext = file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("bin")
        .to_ascii_lowercase();
    let now = chrono::Utc::now();
    let key = recording_key(&call_id, now.date_naive(), &ext);
    let bytes = app
        .storage
        .put_file(&key, file)
        .await
        .with_context(|| format!("cannot store {}", file.display()))?;
    let ts = now_rfc3339();
    let row = CallRow {
        call_id: call_id.clone(),
        status: status::STORED.into(),
        campaign: campaign.map(str::to_string),
        agent: agent.map(str::to_string),
        customer: customer.map(str::to_string),
        started_at: ts.clone(),
        recording_key: key,
        recording_bytes: bytes as i64,
        source_name: file.file_name().map(|n| n.to_string_lossy().into_owned()),
        created_at: ts.clone(),
        updated_at: ts,
        ..Default::default()
    };
    callqa_ingest::booking::book_stored(&app.db, app.queue.as_ref(), &row).await?;
    tracing::info!(call_id = %call_id, file = %file.display(), bytes, "stored and queued");
    Ok(call_id)
}

/// Waits until every call is done or failed. With the embedded queue nobody else may be
/// running, so this process works the queue itself meanwhile.
pub async fn wait_for(app: &App, ids: &[String], stages: &[Stage]) -> Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let workers = app.queue.is_embedded().then(|| {
        let app = app.clone();
        let stages = stages.to_vec();
        tokio::spawn(async move { crate::pipeline::run_workers(app, &stages, stop_rx).await })
    });
    let progress = progress_bar(ids.len() as u64, "processing");
    let mut workers = workers;
    loop {
        let mut finished = 0;
        for id in ids {
            if let Some(row) = app.db.get_call(id).await? {
                if row.status == status::DONE || row.status == status::FAILED {
                    finished += 1;
                }
            }
        }
        if let Some(p) = &progress {
            p.set_position(finished);
        }
        if finished as usize == ids.len() {
            break;
        }
        if let Some(w) = &workers {
            if w.is_finished() {
                let w = workers.take().context("worker handle")?;
                w.await.context("worker panicked")??;
                anyhow::bail!("the in-process workers stopped before the calls were done");
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    let _ = stop_tx.send(true);
    if let Some(w) = workers {
        w.await.context("worker panicked")??;
    }
    Ok(())
}

/// A progress bar on stderr, only when a person is watching stdout.
fn progress_bar(len: u64, what: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stdout().is_terminal() || len < 2 {
        return None;
    }
    let p = indicatif::ProgressBar::new(len);
    p.set_message(what.to_string());
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}")
    {
        p.set_style(style);
    }
    Some(p)
}
