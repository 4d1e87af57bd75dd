//! Books a recorded call in the metadata database and queues its transcription once its
//! recording is in the store: one row per call id and one job, whoever gets there first.

use std::sync::Arc;

use callqa_ingest::db::{status, CallRow, Db};
use callqa_ingest::queue::{Job, JobQueue, Stage};

use crate::error::DialerError;

/// The metadata database and the job queue, as the spool drain and crash recovery need them.
#[derive(Clone)]
pub struct CallBook {
    pub db: Db,
    pub queue: Arc<dyn JobQueue>,
}

impl CallBook {
    pub fn new(db: Db, queue: Arc<dyn JobQueue>) -> Self {
        Self { db, queue }
    }

    fn err(call_id: &str, source: callqa_ingest::error::IngestError) -> DialerError {
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

    /// Queues the transcription of a call whose recording is now in the store. Only the
    /// process that moves the row from `spooled` to `queued` publishes, so reruns and
    /// concurrent drains queue one job; a publish that fails moves the row back for the next
    /// try. `Ok(false)` when the call has no row yet (its dialer books it after hangup).
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
            .transition(call_id, status::SPOOLED, status::QUEUED)
            .await
            .map_err(|e| Self::err(call_id, e))?;
        if !won {
            return Ok(true);
        }
        if let Err(e) = self
            .queue
            .publish(&Job::new(call_id, Stage::Transcribe))
            .await
        {
            if let Err(back) = self
                .db
                .transition(call_id, status::QUEUED, status::SPOOLED)
                .await
            {
                tracing::error!(%call_id, error = %back, "call left queued without a job");
            }
            return Err(Self::err(call_id, e));
        }
        tracing::info!(%call_id, "spooled call queued for transcription");
        Ok(true)
    }
}
