//! `callqa dial`: one test call through a trunk, playing a prompt. Compliance gates run
//! first; an answered call's stereo recording is stored (or spooled) and queued for
//! transcription like any ingested one.

use crate::app::App;
use crate::config::Config;
use anyhow::{Context, Result};
use callqa_dialer::{dial_checked, CallBook, ComplianceLookup, DialRequest, Outcome};
use callqa_ingest::storage::recording_key;
use callqa_qa::Blacklist;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    number: String,
    #[arg(long)]
    trunk: String,
    /// Caller ID to present (must be registered in [dialer] caller_ids).
    #[arg(long)]
    caller_id: Option<String>,
    /// WAV prompt played when the call is answered.
    #[arg(long)]
    play: PathBuf,
    #[arg(long)]
    campaign: Option<String>,
    #[arg(long)]
    json: bool,
}

/// Blacklist answers fetched before the dial (the gate itself is synchronous).
struct Prefetched {
    blacklisted: Option<(String, String)>,
}

impl ComplianceLookup for Prefetched {
    fn blacklisted(&self, number: &str) -> Option<String> {
        self.blacklisted
            .as_ref()
            .filter(|(n, _)| n == number)
            .map(|(_, r)| r.clone())
    }

    fn consent(&self, _number: &str, _scope: &str) -> bool {
        false
    }
}

/// Where recordings wait when the object store is unreachable.
pub fn spool_dir(app: &App) -> PathBuf {
    app.data_dir.join("spool")
}

pub async fn run(cfg: Config, data_dir: &Path, a: Args) -> Result<i32> {
    let app = App::open(cfg, data_dir).await?;
    let bl = Blacklist::new(app.db.pool().clone());
    let blacklisted = match callqa_qa::number::normalize(&a.number) {
        Ok(n) => bl
            .is_blocked(&n, chrono::Utc::now())
            .await?
            .map(|e| (n, format!("{} ({})", e.reason, e.source.as_str()))),
        Err(_) => None, // the gate refuses invalid numbers itself
    };
    let call_id = uuid::Uuid::now_v7().simple().to_string();
    let now = chrono::Utc::now();
    let req = DialRequest {
        number: a.number.clone(),
        trunk: a.trunk.clone(),
        caller_id: a.caller_id.clone(),
        play: a.play.clone(),
        call_id: call_id.clone(),
        recording_key: recording_key(&call_id, now.date_naive(), "wav"),
        campaign: a.campaign.clone(),
    };
    let spool = spool_dir(&app);
    // Calls an earlier dialer left when it died: booked now, uploaded by the workers' drain.
    let book = CallBook::new(app.db.clone(), app.queue.clone());
    if let Err(e) = callqa_dialer::recover_orphans(&spool, &book).await {
        tracing::warn!(error = %e, "crash recovery of recordings failed; workers retry it");
    }
    let report = dial_checked(
        &app.cfg.dialer,
        req,
        &Prefetched { blacklisted },
        None,
        0,
        callqa_dialer::RecordingStore::from_storage(&app.storage),
        &spool,
    )
    .await
    .context("the call failed")?;
    if report.outcome == Outcome::Answered {
        book.book_answered(&report, a.campaign.clone(), &spool)
            .await
            .with_context(|| {
                format!(
                    "call {call_id} was answered but not fully booked; its recording is kept \
                     and the workers finish the booking"
                )
            })?;
    }
    if a.json {
        let mut v = serde_json::to_value(&report)?;
        v["call_id"] = json!(call_id);
        crate::commands::print_json(&v)?;
    } else {
        println!(
            "{call_id}: {:?} {} {}",
            report.outcome,
            report.sip_code.map(|c| c.to_string()).unwrap_or_default(),
            report.reason
        );
    }
    Ok(if matches!(report.outcome, Outcome::Answered) {
        0
    } else {
        1
    })
}

/// Recovers recordings of dialers that died mid-call, uploads spooled recordings whose store
/// is reachable again, and queues each such call once.
pub async fn drain_spool(app: &App) -> Result<usize> {
    let spool = spool_dir(app);
    if !spool.is_dir() {
        return Ok(0);
    }
    let uploaded = callqa_dialer::recover_and_drain(
        callqa_dialer::RecordingStore::from_storage(&app.storage),
        &spool,
        &CallBook::new(app.db.clone(), app.queue.clone()),
    )
    .await
    .context("draining the recording spool")?;
    Ok(uploaded.len())
}
