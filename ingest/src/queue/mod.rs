//! The job queue between pipeline stages: an embedded durable queue kept in the metadata
//! database, or RabbitMQ. Both give at-least-once delivery, manual ack after the result is
//! stored, bounded retries with backoff, and a dead-letter queue that keeps the reason.

mod amqp;
mod embedded;

pub use amqp::AmqpQueue;
pub use embedded::EmbeddedQueue;

use crate::config::QueueConfig;
use crate::error::Result;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A pipeline stage; each has its own queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Transcribe,
    Score,
    Index,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Transcribe, Stage::Score, Stage::Index];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Transcribe => "transcribe",
            Stage::Score => "score",
            Stage::Index => "index",
        }
    }

    /// The stage that follows this one, if any.
    pub fn next(self) -> Option<Stage> {
        match self {
            Stage::Transcribe => Some(Stage::Score),
            Stage::Score => Some(Stage::Index),
            Stage::Index => None,
        }
    }
}

/// One unit of work: run `stage` for `call_id`. Handlers are idempotent by call id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub call_id: String,
    pub stage: Stage,
    /// Delivery attempts so far (0 on first delivery).
    #[serde(default)]
    pub attempt: u32,
}

impl Job {
    pub fn new(call_id: impl Into<String>, stage: Stage) -> Job {
        Job {
            call_id: call_id.into(),
            stage,
            attempt: 0,
        }
    }
}

/// A job moved to the dead-letter queue, with the reason it failed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetter {
    pub job: Job,
    pub reason: String,
    pub failed_at: String,
}

/// Backend-specific acknowledgement of one delivery.
#[async_trait]
pub trait Acker: Send + Sync {
    /// The job's result is durable: remove the job.
    async fn ack(&self) -> Result<()>;
    /// Deliver `job` again after `delay_ms`.
    async fn retry(&self, job: &Job, reason: &str, delay_ms: u64) -> Result<()>;
    /// Give up: move `job` to the dead-letter queue with `reason`.
    async fn dead_letter(&self, job: &Job, reason: &str) -> Result<()>;
}

/// A job handed to a worker; exactly one of `ack` / `fail` must be called, or the job is
/// redelivered once the worker's connection or lease ends.
pub struct Delivery {
    pub job: Job,
    acker: Box<dyn Acker>,
}

/// What became of a failed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    Retried,
    DeadLettered,
}

impl Delivery {
    pub fn new(job: Job, acker: Box<dyn Acker>) -> Delivery {
        Delivery { job, acker }
    }

    pub async fn ack(self) -> Result<()> {
        self.acker.ack().await
    }

    /// Retries with exponential backoff, or dead-letters when the error is permanent or
    /// the attempts are used up.
    pub async fn fail(
        self,
        reason: &str,
        permanent: bool,
        cfg: &QueueConfig,
    ) -> Result<FailOutcome> {
        let attempts = self.job.attempt + 1;
        if permanent || attempts >= cfg.max_attempts.max(1) {
            self.acker.dead_letter(&self.job, reason).await?;
            return Ok(FailOutcome::DeadLettered);
        }
        let mut next = self.job.clone();
        next.attempt = attempts;
        let delay = cfg
            .retry_backoff_ms
            .saturating_mul(1u64 << (attempts - 1).min(16));
        self.acker.retry(&next, reason, delay).await?;
        Ok(FailOutcome::Retried)
    }
}

/// Receives deliveries of one stage.
#[async_trait]
pub trait Consumer: Send {
    /// Waits for the next job.
    async fn next(&mut self) -> Result<Delivery>;
}

/// The queue seam: embedded (database) or RabbitMQ.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Publishes durably: when this returns, the job survives a crash of any process.
    async fn publish(&self, job: &Job) -> Result<()>;
    /// Starts consuming `stage`.
    async fn consumer(&self, stage: Stage) -> Result<Box<dyn Consumer>>;
    /// Jobs waiting in `stage` (for metrics).
    async fn depth(&self, stage: Stage) -> Result<u64>;
    /// Whether jobs are only seen by processes on this machine's database (embedded).
    fn is_embedded(&self) -> bool;
}
