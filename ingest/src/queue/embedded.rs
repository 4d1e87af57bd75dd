//! The embedded durable queue: jobs are rows in the metadata database, claimed with a
//! renewable lease, so a crashed process's jobs come back when its lease runs out.

use super::{Acker, Consumer, DeadLetter, Delivery, Job, JobQueue, Stage};
use crate::db::{now_ms, now_rfc3339, Db};
use crate::error::{IngestError, Result};
use async_trait::async_trait;
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How long a claimed job stays invisible to others without a heartbeat.
const LEASE_MS: i64 = 30_000;
/// How often a worker renews the lease of the job it holds.
const HEARTBEAT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(150);

#[derive(Clone)]
pub struct EmbeddedQueue {
    db: Db,
    prefix: String,
    wake: Arc<Notify>,
}

impl EmbeddedQueue {
    pub fn new(db: Db, prefix: &str) -> EmbeddedQueue {
        EmbeddedQueue {
            db,
            prefix: prefix.to_string(),
            wake: Arc::new(Notify::new()),
        }
    }

    fn queue_name(&self, stage: Stage) -> String {
        format!("{}.{}", self.prefix, stage.as_str())
    }

    /// Dead-lettered jobs, newest first.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetter>> {
        let rows = sqlx::query(
            "SELECT payload, reason, failed_at FROM dead_letters ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.db.pool())
        .await
        .map_err(|e| IngestError::db("list dead letters", e))?;
        rows.iter()
            .map(|r| {
                let payload: String = r
                    .try_get("payload")
                    .map_err(|e| IngestError::db("payload", e))?;
                Ok(DeadLetter {
                    job: serde_json::from_str(&payload).map_err(|e| IngestError::BadData {
                        what: "dead letter".into(),
                        reason: e.to_string(),
                    })?,
                    reason: r
                        .try_get("reason")
                        .map_err(|e| IngestError::db("reason", e))?,
                    failed_at: r
                        .try_get("failed_at")
                        .map_err(|e| IngestError::db("failed_at", e))?,
                })
            })
            .collect()
    }

    async fn claim(&self, queue: &str) -> Result<Option<(i64, Job)>> {
        let now = now_ms();
        let row = sqlx::query(
            "UPDATE jobs SET locked_until = $1, attempts = attempts + 1 \
             WHERE id = (SELECT id FROM jobs WHERE queue = $2 AND available_at <= $3 \
                         AND (locked_until IS NULL OR locked_until < $4) ORDER BY id LIMIT 1) \
             AND (locked_until IS NULL OR locked_until < $5) \
             RETURNING id, payload, attempts",
        )
        .bind(now + LEASE_MS)
        .bind(queue.to_string())
        .bind(now)
        .bind(now)
        .bind(now)
        .fetch_optional(self.db.pool())
        .await
        .map_err(|e| IngestError::db(format!("claim a job from {queue}"), e))?;
        let Some(row) = row else { return Ok(None) };
        let id: i64 = row
            .try_get("id")
            .map_err(|e| IngestError::db("job id", e))?;
        let payload: String = row
            .try_get("payload")
            .map_err(|e| IngestError::db("job payload", e))?;
        let attempts: i64 = row
            .try_get("attempts")
            .map_err(|e| IngestError::db("job attempts", e))?;
        let mut job: Job = serde_json::from_str(&payload).map_err(|e| IngestError::BadData {
            what: format!("job {id} in {queue}"),
            reason: e.to_string(),
        })?;
        // Claims count attempts, so a job whose worker crashed counts that attempt too.
        job.attempt = job.attempt.max(u32::try_from(attempts - 1).unwrap_or(0));
        Ok(Some((id, job)))
    }
}

#[async_trait]
impl JobQueue for EmbeddedQueue {
    async fn publish(&self, job: &Job) -> Result<()> {
        let payload = serde_json::to_string(job).map_err(|e| IngestError::BadData {
            what: "job".into(),
            reason: e.to_string(),
        })?;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO jobs (queue, payload, attempts, available_at, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(self.queue_name(job.stage))
        .bind(payload)
        .bind(i64::from(job.attempt))
        .bind(now)
        .bind(now)
        .execute(self.db.pool())
        .await
        .map_err(|e| IngestError::db(format!("queue {} for {}", job.stage.as_str(), job.call_id), e))?;
        self.wake.notify_waiters();
        Ok(())
    }

    async fn consumer(&self, stage: Stage) -> Result<Box<dyn Consumer>> {
        Ok(Box::new(EmbeddedConsumer {
            queue: self.clone(),
            name: self.queue_name(stage),
        }))
    }

    async fn depth(&self, stage: Stage) -> Result<u64> {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM jobs WHERE queue = $1")
            .bind(self.queue_name(stage))
            .fetch_one(self.db.pool())
            .await
            .and_then(|r| r.try_get("n"))
            .map_err(|e| IngestError::db("queue depth", e))?;
        Ok(n.max(0) as u64)
    }

    fn is_embedded(&self) -> bool {
        true
    }
}

struct EmbeddedConsumer {
    queue: EmbeddedQueue,
    name: String,
}

#[async_trait]
impl Consumer for EmbeddedConsumer {
    async fn next(&mut self) -> Result<Delivery> {
        loop {
            let notified = self.queue.wake.notified();
            if let Some((id, job)) = self.queue.claim(&self.name).await? {
                let heartbeat = tokio::spawn(heartbeat(self.queue.db.clone(), id));
                let acker = EmbeddedAcker {
                    db: self.queue.db.clone(),
                    queue: self.name.clone(),
                    id,
                    heartbeat,
                };
                return Ok(Delivery::new(job, Box::new(acker)));
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

/// Keeps the lease of a job alive while its worker is alive.
async fn heartbeat(db: Db, id: i64) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.tick().await;
    loop {
        tick.tick().await;
        let r = sqlx::query("UPDATE jobs SET locked_until = $1 WHERE id = $2")
            .bind(now_ms() + LEASE_MS)
            .bind(id)
            .execute(db.pool())
            .await;
        if let Err(e) = r {
            tracing::warn!(job = id, error = %e, "could not renew job lease");
        }
    }
}

struct EmbeddedAcker {
    db: Db,
    queue: String,
    id: i64,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Drop for EmbeddedAcker {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

#[async_trait]
impl Acker for EmbeddedAcker {
    async fn ack(&self) -> Result<()> {
        self.heartbeat.abort();
        sqlx::query("DELETE FROM jobs WHERE id = $1")
            .bind(self.id)
            .execute(self.db.pool())
            .await
            .map_err(|e| IngestError::db(format!("ack job {}", self.id), e))?;
        Ok(())
    }

    async fn retry(&self, job: &Job, reason: &str, delay_ms: u64) -> Result<()> {
        self.heartbeat.abort();
        let payload = serde_json::to_string(job).map_err(|e| IngestError::BadData {
            what: "job".into(),
            reason: e.to_string(),
        })?;
        sqlx::query(
            "UPDATE jobs SET payload = $1, available_at = $2, locked_until = NULL, last_error = $3 WHERE id = $4",
        )
        .bind(payload)
        .bind(now_ms() + delay_ms as i64)
        .bind(reason.to_string())
        .bind(self.id)
        .execute(self.db.pool())
        .await
        .map_err(|e| IngestError::db(format!("retry job {}", self.id), e))?;
        Ok(())
    }

    async fn dead_letter(&self, job: &Job, reason: &str) -> Result<()> {
        self.heartbeat.abort();
        let payload = serde_json::to_string(job).map_err(|e| IngestError::BadData {
            what: "job".into(),
            reason: e.to_string(),
        })?;
        let mut tx = crate::db::begin_write(self.db.pool())
            .await
            .map_err(|e| IngestError::db("begin dead-letter", e))?;
        sqlx::query(
            "INSERT INTO dead_letters (queue, call_id, payload, reason, attempts, failed_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(self.queue.clone())
        .bind(job.call_id.clone())
        .bind(payload)
        .bind(reason.to_string())
        .bind(i64::from(job.attempt) + 1)
        .bind(now_rfc3339())
        .execute(&mut *tx)
        .await
        .map_err(|e| IngestError::db("insert dead letter", e))?;
        sqlx::query("DELETE FROM jobs WHERE id = $1")
            .bind(self.id)
            .execute(&mut *tx)
            .await
            .map_err(|e| IngestError::db("remove dead-lettered job", e))?;
        tx.commit()
            .await
            .map_err(|e| IngestError::db("commit dead-letter", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DatabaseConfig, QueueConfig};
    use crate::queue::FailOutcome;

    #[tokio::test]
    async fn at_least_once_with_retry_and_dead_letter() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&DatabaseConfig::default(), dir.path())
            .await
            .unwrap();
        let q = EmbeddedQueue::new(db, "t");
        q.publish(&Job::new("c1", Stage::Transcribe)).await.unwrap();
        assert_eq!(q.depth(Stage::Transcribe).await.unwrap(), 1);
        let mut c = q.consumer(Stage::Transcribe).await.unwrap();
        let cfg = QueueConfig {
            max_attempts: 2,
            retry_backoff_ms: 10,
            ..Default::default()
        };
        let d = c.next().await.unwrap();
        assert_eq!(d.job.attempt, 0);
        assert_eq!(
            d.fail("boom", false, &cfg).await.unwrap(),
            FailOutcome::Retried
        );
        let d = tokio::time::timeout(Duration::from_secs(5), c.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.job.attempt, 1);
        assert_eq!(
            d.fail("boom again", false, &cfg).await.unwrap(),
            FailOutcome::DeadLettered
        );
        assert_eq!(q.depth(Stage::Transcribe).await.unwrap(), 0);
        let dl = q.dead_letters(10).await.unwrap();
        assert_eq!(dl.len(), 1);
        assert_eq!(dl[0].reason, "boom again");
        assert_eq!(dl[0].job.call_id, "c1");
    }

    #[tokio::test]
    async fn a_dropped_delivery_comes_back_after_its_lease() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&DatabaseConfig::default(), dir.path())
            .await
            .unwrap();
        let q = EmbeddedQueue::new(db.clone(), "t");
        q.publish(&Job::new("c2", Stage::Index)).await.unwrap();
        let mut c = q.consumer(Stage::Index).await.unwrap();
        let d = c.next().await.unwrap();
        drop(d); // the worker "crashed" without ack
                 // Nobody else can take it while the lease holds.
        assert!(q.claim("t.index").await.unwrap().is_none());
        // Expire the lease as time would.
        sqlx::query("UPDATE jobs SET locked_until = 0")
            .execute(db.pool())
            .await
            .unwrap();
        let (_, job) = q.claim("t.index").await.unwrap().unwrap();
        assert_eq!(job.call_id, "c2");
        assert_eq!(job.attempt, 1);
    }
}
