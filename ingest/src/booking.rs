//! Booking a stored recording for transcription with no moment where a crash loses it (a
//! transactional outbox): the row first as `stored`, then the job, then the row `queued`.
//!
//! A crash, or a publish that fails, between the row and the job leaves the call `stored`;
//! [`requeue_stale`], run by the workers, publishes the job of every call left there longer
//! than a grace and marks it `queued`. Two sweepers (or a sweeper and a slow booker) may both
//! publish one call: the stages are idempotent by call id, so the second job finds the
//! transcript and the index entry there and adds neither again.

use std::time::Duration;

use crate::db::{status, CallRow, Db};
use crate::error::{IngestError, Result};
use crate::queue::{Job, JobQueue, Stage};

/// Calls one sweep queues at most; the rest wait for the next sweep.
const SWEEP_BATCH: i64 = 500;

/// Books `row` (its recording already in the store) and queues its transcription: inserts it
/// as `stored`, publishes the job (durable when this returns: publisher confirms, or the
/// embedded queue's row), then moves it to `queued`. A failed insert books nothing; a failed
/// publish is [`IngestError::NotQueued`], with the row left `stored` for [`requeue_stale`].
pub async fn book_stored(db: &Db, queue: &dyn JobQueue, row: &CallRow) -> Result<()> {
    let row = CallRow {
        status: status::STORED.into(),
        ..row.clone()
    };
    db.insert_call(&row).await?;
    failpoint("after_insert");
    match publish_stored(db, queue, &row.call_id).await {
        Ok(_) => Ok(()),
        Err(e) => Err(IngestError::NotQueued {
            call_id: row.call_id.clone(),
            source: Box::new(e),
        }),
    }
}

/// Publishes the transcription job of a `stored` call, then moves it to `queued`. False when
/// the call had left `stored` in between (another publisher marked it, or a worker already
/// got further): the status is never moved back.
pub async fn publish_stored(db: &Db, queue: &dyn JobQueue, call_id: &str) -> Result<bool> {
    queue.publish(&Job::new(call_id, Stage::Transcribe)).await?;
    db.transition(call_id, status::STORED, status::QUEUED).await
}

/// Queues every call left `stored` for longer than `grace` (a booker crashed or lost the queue
/// between row and job); returns their ids. A call stored within `grace` is left to its booker.
pub async fn requeue_stale(db: &Db, queue: &dyn JobQueue, grace: Duration) -> Result<Vec<String>> {
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    let before = chrono::Utc::now()
        .checked_sub_signed(grace)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let stale = db
        .calls_in_status_before(status::STORED, &before, SWEEP_BATCH)
        .await?;
    let mut queued = Vec::with_capacity(stale.len());
    for row in stale {
        publish_stored(db, queue, &row.call_id).await?;
        tracing::warn!(call_id = %row.call_id, stored_at = %row.updated_at,
            "call was booked without its transcription job (a crash or a queue outage); queued it");
        queued.push(row.call_id);
    }
    Ok(queued)
}

/// Test hook: `CALLQA_FAILPOINT=<name>` aborts the process at the point `name`, as a crash
/// (kill -9, power loss) there would; the crash tests use it. Unset, it does nothing.
fn failpoint(name: &str) {
    if std::env::var("CALLQA_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("CALLQA_FAILPOINT={name}: aborting");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::DatabaseConfig;
    use crate::db::now_rfc3339;
    use crate::queue::EmbeddedQueue;

    fn row(call_id: &str, updated_at: &str) -> CallRow {
        CallRow {
            call_id: call_id.into(),
            status: status::STORED.into(),
            started_at: updated_at.into(),
            recording_key: format!("recordings/{call_id}.wav"),
            created_at: updated_at.into(),
            updated_at: updated_at.into(),
            ..Default::default()
        }
    }

    async fn embedded(dir: &std::path::Path) -> (Db, Arc<EmbeddedQueue>) {
        let db = Db::connect(&DatabaseConfig::default(), dir).await.unwrap();
        let queue = Arc::new(EmbeddedQueue::new(db.clone(), "callqa"));
        (db, queue)
    }

    #[tokio::test]
    async fn booking_queues_the_call_once_and_marks_it_queued() {
        let dir = tempfile::tempdir().unwrap();
        let (db, queue) = embedded(dir.path()).await;
        let mut r = row("c1", &now_rfc3339());
        r.status = status::QUEUED.into();
        book_stored(&db, queue.as_ref(), &r).await.unwrap();
        assert_eq!(
            db.get_call("c1").await.unwrap().unwrap().status,
            status::QUEUED
        );
        assert_eq!(queue.depth(Stage::Transcribe).await.unwrap(), 1);
        // A booked call is not booked twice.
        assert!(book_stored(&db, queue.as_ref(), &r).await.is_err());
        assert_eq!(queue.depth(Stage::Transcribe).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn the_sweep_queues_only_calls_stored_longer_than_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let (db, queue) = embedded(dir.path()).await;
        let old = (chrono::Utc::now() - chrono::Duration::seconds(31))
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        // Left by a booker that crashed 31 s ago, one booking right now, and an old call
        // that got its job (not `stored`).
        db.insert_call(&row("crashed", &old)).await.unwrap();
        db.insert_call(&row("fresh", &now_rfc3339())).await.unwrap();
        let mut done = row("done", &old);
        done.status = status::DONE.into();
        db.insert_call(&done).await.unwrap();

        let grace = Duration::from_secs(30);
        let queued = requeue_stale(&db, queue.as_ref(), grace).await.unwrap();
        assert_eq!(queued, vec!["crashed".to_string()]);
        assert_eq!(queue.depth(Stage::Transcribe).await.unwrap(), 1);
        let status_of = |id: &'static str| {
            let db = db.clone();
            async move { db.get_call(id).await.unwrap().unwrap().status }
        };
        assert_eq!(status_of("crashed").await, status::QUEUED);
        assert_eq!(status_of("fresh").await, status::STORED);
        assert_eq!(status_of("done").await, status::DONE);
        // Nothing is left to sweep until the fresh call outlives the grace.
        assert!(requeue_stale(&db, queue.as_ref(), grace)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(queue.depth(Stage::Transcribe).await.unwrap(), 1);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let queued = requeue_stale(&db, queue.as_ref(), Duration::from_millis(10))
            .await
            .unwrap();
        assert_eq!(queued, vec!["fresh".to_string()]);
        assert_eq!(queue.depth(Stage::Transcribe).await.unwrap(), 2);
        assert_eq!(status_of("fresh").await, status::QUEUED);
    }
}
