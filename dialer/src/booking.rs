//! Books a recorded call in the metadata database and queues its transcription once its
//! recording is in the store: one row per call id and one job, whoever gets there first.

use std::path::Path;
use std::sync::Arc;

use callqa_ingest::booking;
use callqa_ingest::db::{now_rfc3339, status, CallRow, Db};
use callqa_ingest::error::IngestError;
use callqa_ingest::queue::JobQueue;

use crate::call::CallReport;
use crate::error::DialerError;
use crate::recording;

/// The metadata database and the job queue, as the dialers, the spool drain and crash
/// recovery need them.
#[derive(Clone)]
pub struct CallBook {
    pub db: Db,
    pub queue: Arc<dyn JobQueue>,
}

impl CallBook {
    pub fn new(db: Db, queue: Arc<dyn JobQueue>) -> Self {
        Self { db, queue }
    }

    fn err(call_id: &str, source: IngestError) -> DialerError {
        DialerError::Booking {
            call_id: call_id.to_string(),
            source: Box::new(source),
        }
    }

    /// Inserts `row` unless a row with its call id exists; true when this call inserted it.
    /// Two processes racing on one call id leave one row: the loser's insert fails and it finds
    /// the winner's row.
    pub async fn ensure_row(&self, row: &CallRow) -> Result<bool, DialerError> {
        let id = row.call_id.as_str();
        if self
            .db
            .get_call(id)
            .await
            .map_err(|e| Self::err(id, e))?
            .is_some()
        {
            return Ok(false);
        }
        match self.db.insert_call(row).await {
            Ok(()) => Ok(true),
            Err(e) => match self.db.get_call(id).await {
                Ok(Some(_)) => Ok(false),
                _ => Err(Self::err(id, e)),
            },
        }
    }

    /// Books an answered call once its recording is finished, as `callqa dial` and the
    /// campaign runner do: a spooled recording as `spooled` (the drain queues it once stored),
    /// a stored one through [`callqa_ingest::booking::book_stored`]. Then it releases the
    /// recording's in-progress marker, which until the row exists lets crash recovery book the
    /// call. Nothing to do for a call without a recording.
    pub async fn book_answered(
        &self,
        report: &CallReport,
        campaign: Option<String>,
        spool_dir: &Path,
    ) -> Result<(), DialerError> {
        let Some(rec) = &report.recording else {
            return Ok(());
        };
        let id = report.call_id.as_str();
        let ts = now_rfc3339();
        let row = CallRow {
            call_id: id.to_string(),
            status: status::SPOOLED.into(),
            campaign,
            // The agent who took the call; the prompt for calls without one (or abandoned).
            agent: Some(
                report
                    .agent
                    .as_ref()
                    .and_then(|a| a.agent.clone())
                    .unwrap_or_else(|| "prompt".into()),
            ),
            customer: Some(report.number.clone()),
            started_at: report
                .started_at
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string(),
            duration_ms: Some(report.duration_ms as i64),
            recording_key: rec.key.clone(),
            recording_bytes: rec.bytes as i64,
            source_name: Some(format!("{id}.wav")),
            created_at: ts.clone(),
            updated_at: ts,
            ..Default::default()
        };
        let booked = if rec.spooled {
            self.db.insert_call(&row).await
        } else {
            booking::book_stored(&self.db, self.queue.as_ref(), &row).await
        };
        // A row without its job is booked: the workers queue it.
        if matches!(booked, Ok(()) | Err(IngestError::NotQueued { .. })) {
            recording::release(spool_dir, id, rec).await?;
        }
        booked.map_err(|e| Self::err(id, e))
    }

    /// Queues the transcription of a call whose recording is now in the store. Only the
    /// process that moves the row from `spooled` to `stored` publishes, so reruns and
    /// concurrent drains queue one job; one that crashes or fails to publish leaves the row
    /// `stored`, and the workers' sweep queues it. `Ok(false)` when the call has no row yet
    /// (its dialer books it after hangup).
    pub async fn queue_stored(&self, call_id: &str) -> Result<bool, DialerError> {
        let Some(row) = self
            .db
            .get_call(call_id)
            .await
            .map_err(|e| Self::err(call_id, e))?
        else {
            return Ok(false);
        };
        if row.status != status::SPOOLED {
            return Ok(true);
        }
        let won = self
            .db
            .transition(call_id, status::SPOOLED, status::STORED)
            .await
            .map_err(|e| Self::err(call_id, e))?;
        if !won {
            return Ok(true);
        }
        booking::publish_stored(&self.db, self.queue.as_ref(), call_id)
            .await
            .map_err(|e| Self::err(call_id, e))?;
        tracing::info!(%call_id, "spooled call queued for transcription");
        Ok(true)
    }
}
