//! The pipeline's stages wired to the queue: transcribe -> score -> index. Each stage stores
//! its result before it acks, and is idempotent by call id, so redelivery never duplicates.

use crate::app::App;
use anyhow::{Context, Result};
use callqa_ingest::db::{status, CallRow};
use callqa_ingest::decode::decode;
use callqa_ingest::queue::{Delivery, FailOutcome, Job, Stage};
use callqa_ingest::storage::transcript_key;
use callqa_ingest::transcribe::Transcriber;
use callqa_ingest::transcript::{CallMeta, Transcript};
use callqa_ingest::IngestError;
use callqa_search::{CallDoc, SearchIndex};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Why a job failed, and whether retrying could help.
struct StageError {
    reason: String,
    permanent: bool,
}

impl From<IngestError> for StageError {
    fn from(e: IngestError) -> Self {
        StageError {
            permanent: e.is_permanent(),
            reason: e.to_string(),
        }
    }
}

impl From<anyhow::Error> for StageError {
    fn from(e: anyhow::Error) -> Self {
        StageError {
            permanent: false,
            reason: format!("{e:#}"),
        }
    }
}

/// Runs the given stages until `stop` turns true. Jobs in flight when it stops are left
/// unacknowledged and come back to another worker.
pub async fn run_workers(app: App, stages: &[Stage], stop: watch::Receiver<bool>) -> Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    if stages.contains(&Stage::Transcribe) {
        let (app, stop) = (app.clone(), stop.clone());
        tokio::spawn(spool_loop(app, stop));
    }
    for stage in stages {
        let (app, stop) = (app.clone(), stop.clone());
        match stage {
            Stage::Transcribe => {
                let model = app.model_path();
                let t = tokio::task::spawn_blocking({
                    let cfg = app.cfg.transcribe.clone();
                    move || Transcriber::load(&model, &cfg)
                })
                .await
                .context("model loader panicked")?
                .context("cannot load the whisper model")?;
                let t = Arc::new(t);
                tasks.spawn(async move { transcribe_loop(app, t, stop).await });
            }
            Stage::Score => {
                tasks.spawn(async move { score_loop(app, stop).await });
            }
            Stage::Index => {
                tasks.spawn(async move { index_loop(app, stop).await });
            }
        }
    }
    while let Some(r) = tasks.join_next().await {
        r.context("worker task panicked")??;
    }
    Ok(())
}

async fn next_or_stop(
    consumer: &mut Box<dyn callqa_ingest::queue::Consumer>,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<Delivery>> {
    if *stop.borrow() {
        return Ok(None);
    }
    tokio::select! {
        d = consumer.next() => Ok(Some(d?)),
        _ = stop.changed() => Ok(None),
    }
}

async fn transcribe_loop(
    app: App,
    t: Arc<Transcriber>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let mut consumer = app.queue.consumer(Stage::Transcribe).await?;
    while let Some(d) = next_or_stop(&mut consumer, &mut stop).await? {
        let r = transcribe_call(&app, &t, &d.job).await;
        finish(&app, d, r).await?;
    }
    Ok(())
}

async fn score_loop(app: App, mut stop: watch::Receiver<bool>) -> Result<()> {
    let mut consumer = app.queue.consumer(Stage::Score).await?;
    while let Some(d) = next_or_stop(&mut consumer, &mut stop).await? {
        let r = score_call(&app, &d.job).await;
        finish(&app, d, r).await?;
    }
    Ok(())
}

/// Acks a handled job and queues the next stage; or retries / dead-letters a failed one.
async fn finish(app: &App, d: Delivery, r: Result<(), StageError>) -> Result<()> {
    let call_id = d.job.call_id.clone();
    let stage = d.job.stage;
    match r {
        Ok(()) => {
            if let Some(next) = stage.next() {
                // Published before the ack: a crash between the two repeats this stage
                // (idempotent), never skips the next.
                app.queue.publish(&Job::new(&call_id, next)).await?;
            }
            d.ack().await?;
        }
        Err(e) => {
            let outcome = d.fail(&e.reason, e.permanent, &app.cfg.queue).await?;
            match outcome {
                FailOutcome::Retried => {
                    tracing::warn!(call_id = %call_id, stage = stage.as_str(), reason = %e.reason, "job failed; will retry")
                }
                FailOutcome::DeadLettered => {
                    tracing::error!(call_id = %call_id, stage = stage.as_str(), reason = %e.reason, "job failed; moved to the dead-letter queue");
                    app.db
                        .set_status(&call_id, status::FAILED, Some(&e.reason))
                        .await?;
                }
            }
        }
    }
    Ok(())
}

async fn load_call(app: &App, call_id: &str) -> Result<CallRow, StageError> {
    app.db
        .get_call(call_id)
        .await?
        .ok_or_else(|| IngestError::CallNotFound(call_id.to_string()).into())
}

pub fn call_day(row: &CallRow) -> chrono::NaiveDate {
    chrono::DateTime::parse_from_rfc3339(&row.started_at)
        .map(|d| d.date_naive())
        .unwrap_or_else(|_| chrono::Utc::now().date_naive())
}

async fn transcribe_call(app: &App, t: &Arc<Transcriber>, job: &Job) -> Result<(), StageError> {
    let row = load_call(app, &job.call_id).await?;
    if row.transcript_key.is_some() {
        tracing::info!(call_id = %row.call_id, "transcript exists; skipping (redelivery)");
        return Ok(());
    }
    let started = Instant::now();
    tracing::info!(call_id = %row.call_id, "transcription started");
    let bytes = app.storage.get(&row.recording_key).await?;
    let name = row
        .source_name
        .clone()
        .unwrap_or_else(|| row.recording_key.clone());
    let (t2, call_id) = (t.clone(), row.call_id.clone());
    let transcript = tokio::task::spawn_blocking(move || -> Result<Transcript, IngestError> {
        let audio = decode(bytes.to_vec(), &name)?;
        t2.transcribe(&call_id, &audio, None)
    })
    .await
    .map_err(|e| anyhow::anyhow!("transcription task panicked: {e}"))??;
    let key = transcript_key(&row.call_id, call_day(&row));
    let json = serde_json::to_vec(&transcript).map_err(|e| anyhow::anyhow!(e))?;
    app.storage.put_bytes(&key, json.into()).await?;
    app.db
        .set_transcribed(
            &row.call_id,
            &key,
            transcript.duration_ms as i64,
            transcript.language.as_deref(),
        )
        .await?;
    let secs = started.elapsed().as_secs_f64();
    callqa_ingest::metrics::observe_transcription(transcript.duration_ms as f64 / 1000.0, secs);
    tracing::info!(call_id = %row.call_id, segments = transcript.segments.len(),
        audio_s = transcript.duration_ms as f64 / 1000.0, wall_s = secs, "transcription stored");
    Ok(())
}

/// Reads a call's stored transcript.
pub async fn load_transcript(app: &App, row: &CallRow) -> Result<Transcript> {
    let key = row
        .transcript_key
        .as_deref()
        .with_context(|| format!("call {} has no transcript yet", row.call_id))?;
    let bytes = app.storage.get(key).await?;
    serde_json::from_slice(&bytes).with_context(|| format!("transcript {key} is not valid JSON"))
}

pub fn call_meta(row: &CallRow, t: Option<&Transcript>) -> CallMeta {
    CallMeta {
        call_id: row.call_id.clone(),
        campaign: row.campaign.clone(),
        agent: row.agent.clone(),
        customer: row.customer.clone(),
        started_at: row.started_at.clone(),
        duration_ms: t
            .map(|t| t.duration_ms)
            .or(row.duration_ms.map(|d| d.max(0) as u64))
            .unwrap_or(0),
        language: t.and_then(|t| t.language.clone()).or(row.language.clone()),
    }
}

async fn score_call(app: &App, job: &Job) -> Result<(), StageError> {
    let row = load_call(app, &job.call_id).await?;
    let t = load_transcript(app, &row).await?;
    let meta = call_meta(&row, Some(&t));
    crate::qa::score_and_store(app, &meta, &t).await?;
    app.db
        .set_status(&row.call_id, status::SCORED, None)
        .await?;
    Ok(())
}

/// Builds the search document of a call from its stored transcript and QA result.
pub async fn call_doc(app: &App, row: &CallRow) -> Result<CallDoc> {
    let t = load_transcript(app, row).await?;
    let meta = call_meta(row, Some(&t));
    let qa = callqa_qa::load_result(app.db.pool(), &row.call_id)
        .await
        .with_context(|| format!("cannot read the QA result of {}", row.call_id))?;
    Ok(CallDoc {
        meta,
        transcript: t,
        status: status::DONE.to_string(),
        qa_score: qa.as_ref().map(|q| q.score),
        flags: qa.map(|q| q.flags).unwrap_or_default(),
    })
}

/// Adds one call's document to the uncommitted batch, or fails its job.
async fn index_one(
    app: &App,
    writer: &mut callqa_search::IndexWriter,
    d: Delivery,
    added: &mut Vec<Delivery>,
) -> Result<()> {
    let r: Result<(), StageError> = async {
        let row = load_call(app, &d.job.call_id).await?;
        let doc = call_doc(app, &row).await?;
        writer.upsert(&doc).map_err(|e| anyhow::anyhow!(e))?;
        tracing::info!(call_id = %row.call_id, "indexing (uncommitted)");
        Ok(())
    }
    .await;
    match r {
        Ok(()) => added.push(d),
        Err(e) => finish(app, d, Err(e)).await?,
    }
    Ok(())
}

/// The single index writer: batches calls and commits on a bounded delay, acking each
/// job only after the commit made it durable.
async fn index_loop(app: App, mut stop: watch::Receiver<bool>) -> Result<()> {
    let index = SearchIndex::open(&app.index_dir()).context("cannot open the search index")?;
    // One writer per index: if another process (a `serve`, another worker on this data dir)
    // holds it, that process indexes and this one leaves the stage alone.
    let mut writer = match index.writer() {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "not indexing in this process: the index writer is taken");
            return Ok(());
        }
    };
    let mut consumer = app.queue.consumer(Stage::Index).await?;
    let interval = Duration::from_millis(app.cfg.search.commit_interval_ms.max(10));
    let max_batch = app.cfg.search.batch.max(1);
    loop {
        let Some(first) = next_or_stop(&mut consumer, &mut stop).await? else {
            return Ok(());
        };
        let deadline = tokio::time::Instant::now() + interval;
        // Each call is added to the index as it arrives; the batch is committed when it is
        // full or the delay is up, and only then are its jobs acknowledged.
        let mut added = Vec::new();
        index_one(&app, &mut writer, first, &mut added).await?;
        while added.len() < max_batch {
            tokio::select! {
                d = consumer.next() => index_one(&app, &mut writer, d?, &mut added).await?,
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        if added.is_empty() {
            continue;
        }
        let commit = tokio::task::block_in_place(|| writer.commit());
        if let Err(e) = commit {
            // Nothing of this batch is durable: drop it and let every job come back.
            let reason = format!("index commit failed: {e}");
            if let Err(e) = writer.rollback() {
                tracing::error!(error = %e, "index rollback failed");
            }
            for d in added {
                finish(
                    &app,
                    d,
                    Err(StageError {
                        reason: reason.clone(),
                        permanent: false,
                    }),
                )
                .await?;
            }
            continue;
        }
        for d in added {
            app.db
                .set_status(&d.job.call_id, status::DONE, None)
                .await?;
            notify_crm(&app, &d.job.call_id).await;
            finish(&app, d, Ok(())).await?;
        }
    }
}

/// Pushes a finished call's result to the configured CRM webhook (signed, retried) in the
/// background; a CRM outage never holds up the pipeline.
async fn notify_crm(app: &App, call_id: &str) {
    if app.cfg.web.webhook_url.is_none() {
        return;
    }
    let qa = callqa_qa::load_result(app.db.pool(), call_id)
        .await
        .ok()
        .flatten();
    let row = app.db.get_call(call_id).await.ok().flatten();
    let summary = match &row {
        Some(r) => load_transcript(app, r)
            .await
            .map(|t| t.full_text().chars().take(500).collect::<String>())
            .unwrap_or_default(),
        None => String::new(),
    };
    let payload = serde_json::json!({
        "event": "call.done",
        "call_id": call_id,
        "campaign": row.as_ref().and_then(|r| r.campaign.clone()),
        "agent": row.as_ref().and_then(|r| r.agent.clone()),
        "customer": row.as_ref().and_then(|r| r.customer.clone()),
        "transcript_summary": summary,
        "qa_score": qa.as_ref().map(|q| q.score),
        "flags": qa.map(|q| q.flags).unwrap_or_default(),
    });
    let cfg = app.cfg.web.clone();
    let id = call_id.to_string();
    tokio::spawn(async move {
        if let Err(e) = callqa_web::send_webhook(&cfg, &payload).await {
            tracing::warn!(call_id = %id, error = %e, "CRM webhook failed after retries");
        }
    });
}

/// Housekeeping next to transcription, at start and every 10 s: uploads recordings the dialer
/// spooled while storage was down and queues them, and queues calls whose booker crashed (or
/// lost the queue) between booking the row and publishing the job.
pub async fn spool_loop(app: App, mut stop: watch::Receiver<bool>) {
    let grace = Duration::from_millis(app.cfg.queue.requeue_after_ms);
    loop {
        match crate::commands::dial::drain_spool(&app).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(recordings = n, "uploaded spooled recordings"),
            Err(e) => tracing::debug!(error = %format!("{e:#}"), "spool not drained yet"),
        }
        if let Err(e) =
            callqa_ingest::booking::requeue_stale(&app.db, app.queue.as_ref(), grace).await
        {
            tracing::warn!(error = %e, "calls booked without their job not queued yet; retried in 10 s");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
            _ = stop.changed() => return,
        }
    }
}
