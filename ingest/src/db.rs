//! Call metadata in SQL through `sqlx`: SQLite by default, PostgreSQL when configured.
//! One code path serves both; only the schema's id columns differ.

use crate::config::DatabaseConfig;
use crate::error::{IngestError, Result};
use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::path::Path;

/// Which SQL engine the pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The metadata database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

/// Life of a call through the pipeline.
pub mod status {
    /// Recorded, waiting in the dialer's spool for the object store; queued once uploaded.
    pub const SPOOLED: &str = "spooled";
    /// Recording in the store and row booked, transcription job not confirmed published yet:
    /// a crash or a failed publish leaves a call here, and the workers' sweep queues it (see
    /// [`crate::booking`]). Not finished, like `queued`.
    pub const STORED: &str = "stored";
    pub const QUEUED: &str = "queued";
    pub const TRANSCRIBED: &str = "transcribed";
    pub const SCORED: &str = "scored";
    pub const DONE: &str = "done";
    pub const FAILED: &str = "failed";
}

/// One call's metadata row.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CallRow {
    pub call_id: String,
    pub status: String,
    pub campaign: Option<String>,
    pub agent: Option<String>,
    pub customer: Option<String>,
    pub started_at: String,
    pub duration_ms: Option<i64>,
    pub language: Option<String>,
    pub recording_key: String,
    pub recording_bytes: i64,
    /// Original file name the recording was ingested from.
    pub source_name: Option<String>,
    pub transcript_key: Option<String>,
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Current time as RFC 3339 UTC with milliseconds; sorts lexically.
pub fn now_rfc3339() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

const CALL_COLUMNS: &str = "call_id, status, campaign, agent, customer, started_at, duration_ms, \
     language, recording_key, recording_bytes, source_name, transcript_key, error, created_at, updated_at";

/// Begins a transaction that writes. On SQLite it is `BEGIN IMMEDIATE`: the write lock is
/// taken up front (waiting out the busy timeout), where a plain `BEGIN` that reads first
/// fails at once with "database is locked" when another connection wrote in between.
pub async fn begin_write(
    pool: &AnyPool,
) -> std::result::Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
    if pool.connect_options().database_url.scheme() == "sqlite" {
        pool.begin_with("BEGIN IMMEDIATE").await
    } else {
        pool.begin().await
    }
}

impl Db {
    /// Connects (creating the SQLite file if needed) and applies migrations.
    pub async fn connect(cfg: &DatabaseConfig, data_dir: &Path) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let url = match &cfg.url {
            Some(u) => u.clone(),
            None => {
                std::fs::create_dir_all(data_dir)
                    .map_err(|e| IngestError::io(data_dir.display(), e))?;
                format!("sqlite://{}?mode=rwc", data_dir.join("callqa.db").display())
            }
        };
        let backend = if url.starts_with("postgres") {
            Backend::Postgres
        } else if url.starts_with("sqlite") {
            Backend::Sqlite
        } else {
            return Err(IngestError::BadData {
                what: "database.url".into(),
                reason: format!("{url:?} is neither postgres:// nor sqlite://"),
            });
        };
        let max = if backend == Backend::Sqlite { 4 } else { 8 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .connect(&url)
            .await
            .map_err(|e| IngestError::db(format!("connect to {}", redact(&url)), e))?;
        let db = Db { pool, backend };
        db.migrate().await?;
        Ok(db)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    async fn migrate(&self) -> Result<()> {
        if self.backend == Backend::Sqlite {
            // WAL lets readers (search, web) run while a worker writes.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&self.pool)
                .await
                .map_err(|e| IngestError::db("enable WAL", e))?;
        }
        let id = match self.backend {
            Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Backend::Postgres => "BIGSERIAL PRIMARY KEY",
        };
        let ddl = [
            "CREATE TABLE IF NOT EXISTS calls (
                call_id TEXT PRIMARY KEY,
                status TEXT NOT NULL,
                campaign TEXT, agent TEXT, customer TEXT,
                started_at TEXT NOT NULL,
                duration_ms BIGINT,
                language TEXT,
                recording_key TEXT NOT NULL,
                recording_bytes BIGINT NOT NULL,
                source_name TEXT,
                transcript_key TEXT,
                error TEXT,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL)"
                .to_string(),
            "CREATE INDEX IF NOT EXISTS calls_status ON calls(status)".to_string(),
            "CREATE INDEX IF NOT EXISTS calls_started ON calls(started_at)".to_string(),
            format!(
                "CREATE TABLE IF NOT EXISTS jobs (
                id {id},
                queue TEXT NOT NULL,
                payload TEXT NOT NULL,
                attempts BIGINT NOT NULL DEFAULT 0,
                available_at BIGINT NOT NULL,
                locked_until BIGINT,
                last_error TEXT,
                created_at BIGINT NOT NULL)"
            ),
            "CREATE INDEX IF NOT EXISTS jobs_ready ON jobs(queue, available_at)".to_string(),
            format!(
                "CREATE TABLE IF NOT EXISTS dead_letters (
                id {id},
                queue TEXT NOT NULL,
                call_id TEXT,
                payload TEXT NOT NULL,
                reason TEXT NOT NULL,
                attempts BIGINT NOT NULL,
                failed_at TEXT NOT NULL)"
            ),
        ];
        for stmt in ddl {
            sqlx::query(&stmt)
                .execute(&self.pool)
                .await
                .map_err(|e| IngestError::db("migrate", e))?;
        }
        Ok(())
    }

    /// Records a new call. Fails if the id exists (ids are unique per recording).
    pub async fn insert_call(&self, c: &CallRow) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO calls ({CALL_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)"
        ))
        .bind(&c.call_id)
        .bind(&c.status)
        .bind(&c.campaign)
        .bind(&c.agent)
        .bind(&c.customer)
        .bind(&c.started_at)
        .bind(c.duration_ms)
        .bind(&c.language)
        .bind(&c.recording_key)
        .bind(c.recording_bytes)
        .bind(&c.source_name)
        .bind(&c.transcript_key)
        .bind(&c.error)
        .bind(&c.created_at)
        .bind(&c.updated_at)
        .execute(&self.pool)
        .await
        .map_err(|e| IngestError::db(format!("insert call {}", c.call_id), e))?;
        Ok(())
    }

    pub async fn get_call(&self, call_id: &str) -> Result<Option<CallRow>> {
        let row = sqlx::query(&format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE call_id = $1"
        ))
        .bind(call_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| IngestError::db(format!("read call {call_id}"), e))?;
        row.map(|r| call_from_row(&r)).transpose()
    }

    /// Calls, newest first, optionally with one status.
    pub async fn list_calls(&self, status: Option<&str>, limit: i64) -> Result<Vec<CallRow>> {
        let with_status = format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE status = $1 ORDER BY created_at DESC LIMIT $2"
        );
        let all = format!("SELECT {CALL_COLUMNS} FROM calls ORDER BY created_at DESC LIMIT $1");
        let rows = match status {
            Some(s) => sqlx::query(&with_status).bind(s.to_string()).bind(limit),
            None => sqlx::query(&all).bind(limit),
        }
        .fetch_all(&self.pool)
        .await
        .map_err(|e| IngestError::db("list calls", e))?;
        rows.iter().map(call_from_row).collect()
    }

    /// Up to `limit` calls in `status` last updated before `before` (RFC 3339, as
    /// [`now_rfc3339`] writes it: the text order is the time order), oldest first.
    pub async fn calls_in_status_before(
        &self,
        status: &str,
        before: &str,
        limit: i64,
    ) -> Result<Vec<CallRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE status = $1 AND updated_at < $2 \
             ORDER BY updated_at LIMIT $3"
        ))
        .bind(status.to_string())
        .bind(before.to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| IngestError::db(format!("list {status} calls"), e))?;
        rows.iter().map(call_from_row).collect()
    }

    /// Every call that has a stored transcript (for re-indexing and re-scoring).
    pub async fn transcribed_calls(
        &self,
        campaign: Option<&str>,
        since: Option<&str>,
    ) -> Result<Vec<CallRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE transcript_key IS NOT NULL \
             AND ($1 = '' OR campaign = $1) AND ($2 = '' OR started_at >= $2) ORDER BY started_at"
        ))
        .bind(campaign.unwrap_or("").to_string())
        .bind(since.unwrap_or("").to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| IngestError::db("list transcribed calls", e))?;
        rows.iter().map(call_from_row).collect()
    }

    pub async fn set_status(&self, call_id: &str, status: &str, error: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE calls SET status = $1, error = $2, updated_at = $3 WHERE call_id = $4")
            .bind(status.to_string())
            .bind(error.map(str::to_string))
            .bind(now_rfc3339())
            .bind(call_id.to_string())
            .execute(&self.pool)
            .await
            .map_err(|e| IngestError::db(format!("update status of {call_id}"), e))?;
        Ok(())
    }

    /// Moves a call from status `from` to `to` (error and other columns untouched); false when
    /// it was not in `from`. Of processes racing on one call, exactly one sees true.
    pub async fn transition(&self, call_id: &str, from: &str, to: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE calls SET status = $1, updated_at = $2 WHERE call_id = $3 AND status = $4",
        )
        .bind(to.to_string())
        .bind(now_rfc3339())
        .bind(call_id.to_string())
        .bind(from.to_string())
        .execute(&self.pool)
        .await
        .map_err(|e| IngestError::db(format!("move {call_id} from {from} to {to}"), e))?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a call transcribed and records where its transcript lives.
    pub async fn set_transcribed(
        &self,
        call_id: &str,
        transcript_key: &str,
        duration_ms: i64,
        language: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE calls SET status = $1, transcript_key = $2, duration_ms = $3, language = $4, \
             error = NULL, updated_at = $5 WHERE call_id = $6",
        )
        .bind(status::TRANSCRIBED)
        .bind(transcript_key.to_string())
        .bind(duration_ms)
        .bind(language.map(str::to_string))
        .bind(now_rfc3339())
        .bind(call_id.to_string())
        .execute(&self.pool)
        .await
        .map_err(|e| IngestError::db(format!("mark {call_id} transcribed"), e))?;
        Ok(())
    }

    /// Counts of calls per status.
    pub async fn status_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM calls GROUP BY status")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| IngestError::db("count calls", e))?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("status")
                        .map_err(|e| IngestError::db("status", e))?,
                    r.try_get::<i64, _>("n")
                        .map_err(|e| IngestError::db("n", e))?,
                ))
            })
            .collect()
    }
}

fn call_from_row(r: &AnyRow) -> Result<CallRow> {
    let get = |e| IngestError::db("decode call row", e);
    Ok(CallRow {
        call_id: r.try_get("call_id").map_err(get)?,
        status: r.try_get("status").map_err(get)?,
        campaign: r.try_get("campaign").map_err(get)?,
        agent: r.try_get("agent").map_err(get)?,
        customer: r.try_get("customer").map_err(get)?,
        started_at: r.try_get("started_at").map_err(get)?,
        duration_ms: r.try_get("duration_ms").map_err(get)?,
        language: r.try_get("language").map_err(get)?,
        recording_key: r.try_get("recording_key").map_err(get)?,
        recording_bytes: r.try_get("recording_bytes").map_err(get)?,
        source_name: r.try_get("source_name").map_err(get)?,
        transcript_key: r.try_get("transcript_key").map_err(get)?,
        error: r.try_get("error").map_err(get)?,
        created_at: r.try_get("created_at").map_err(get)?,
        updated_at: r.try_get("updated_at").map_err(get)?,
    })
}

/// Hides a password in a database URL before it reaches a log or an error.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[tokio::test]
    async fn transition_moves_a_call_once_and_keeps_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&DatabaseConfig::default(), dir.path())
            .await
            .unwrap();
        let ts = now_rfc3339();
        db.insert_call(&CallRow {
            call_id: "c1".into(),
            status: status::SPOOLED.into(),
            started_at: ts.clone(),
            recording_key: "recordings/c1.wav".into(),
            error: Some("the dialer stopped".into()),
            created_at: ts.clone(),
            updated_at: ts,
            ..Default::default()
        })
        .await
        .unwrap();
        assert!(!db
            .transition("c1", status::QUEUED, status::DONE)
            .await
            .unwrap());
        assert!(db
            .transition("c1", status::SPOOLED, status::QUEUED)
            .await
            .unwrap());
        assert!(!db
            .transition("c1", status::SPOOLED, status::QUEUED)
            .await
            .unwrap());
        assert!(!db
            .transition("nope", status::SPOOLED, status::QUEUED)
            .await
            .unwrap());
        let row = db.get_call("c1").await.unwrap().unwrap();
        assert_eq!(row.status, status::QUEUED);
        assert_eq!(row.error.as_deref(), Some("the dialer stopped"));
    }
}
