//! Campaign state in SQL (SQLite or PostgreSQL through `sqlx::AnyPool`): campaigns, their
//! contacts, every dial attempt and every refusal, and what `campaign status` reports.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::best_time::{AnswerModel, PastAttempt};
use crate::campaign::{CampaignConfig, CampaignError};
use crate::compliance::RefusalKind;
use crate::number;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS campaigns (
        name TEXT PRIMARY KEY,
        config TEXT NOT NULL,
        state TEXT NOT NULL,
        stats TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS campaign_contacts (
        campaign TEXT NOT NULL,
        number TEXT NOT NULL,
        name TEXT,
        timezone TEXT,
        caller_id TEXT,
        segment TEXT,
        position BIGINT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0,
        last_attempt_at BIGINT,
        last_outcome TEXT,
        next_at BIGINT NOT NULL,
        done BIGINT NOT NULL DEFAULT 0,
        invalid BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (campaign, number))",
    "CREATE TABLE IF NOT EXISTS dial_attempts (
        call_id TEXT PRIMARY KEY,
        campaign TEXT NOT NULL,
        number TEXT NOT NULL,
        trunk TEXT,
        outcome TEXT NOT NULL,
        sip_code BIGINT,
        reason TEXT,
        placed_at BIGINT NOT NULL,
        answered_at BIGINT,
        ended_at BIGINT NOT NULL,
        abandoned BIGINT NOT NULL DEFAULT 0,
        agent_wait_ms BIGINT)",
    "CREATE INDEX IF NOT EXISTS dial_attempts_campaign ON dial_attempts(campaign, answered_at)",
    "CREATE TABLE IF NOT EXISTS refusals (
        campaign TEXT NOT NULL,
        number TEXT NOT NULL,
        kind TEXT NOT NULL,
        reason TEXT NOT NULL,
        at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS refusals_campaign ON refusals(campaign, kind)",
];

/// Life of a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    Loaded,
    Running,
    Paused,
    Done,
}

impl CampaignState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Loaded => "loaded",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "loaded" => Self::Loaded,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "done" => Self::Done,
            _ => return None,
        })
    }
}

/// One contact's dialing state.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactRow {
    pub campaign: String,
    /// E.164 when the number is valid; kept as written otherwise so the gate can refuse it.
    pub number: String,
    pub name: Option<String>,
    pub timezone: Option<String>,
    pub caller_id: Option<String>,
    /// The contact's `segment` label, if the campaign gave one.
    pub segment: Option<String>,
    pub position: i64,
    pub attempts: i64,
    pub last_attempt_at: Option<i64>,
    pub last_outcome: Option<String>,
    pub next_at: i64,
    pub done: bool,
    pub invalid: bool,
}

/// One placed dial.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRow {
    pub call_id: String,
    pub campaign: String,
    pub number: String,
    pub trunk: String,
    pub outcome: String,
    pub sip_code: Option<i64>,
    pub reason: String,
    pub placed_at: i64,
    pub answered_at: Option<i64>,
    pub ended_at: i64,
    pub abandoned: bool,
    pub agent_wait_ms: Option<i64>,
}

/// Refusals per rule, the `refused` object of `campaign status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedCounts {
    pub blacklist: u64,
    pub no_consent: u64,
    pub outside_hours: u64,
    pub caller_id: u64,
    pub invalid_number: u64,
    pub attempts: u64,
}

/// `callqa campaign status NAME --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignStatus {
    pub name: String,
    pub state: CampaignState,
    pub placed: u64,
    pub answered: u64,
    pub abandoned: u64,
    /// Abandoned / answered over the campaign's rolling window.
    pub abandon_rate: f64,
    pub refused: RefusedCounts,
    pub contacts: u64,
    pub contacts_done: u64,
    pub invalid_numbers: u64,
    /// What the last run measured (occupancy, answer rate, ...).
    pub stats: Option<serde_json::Value>,
    /// The campaign's learned answer rate by the callee's local hour (index 0-23),
    /// Beta-smoothed as `best_time` does; 0.5 everywhere before any dial.
    #[serde(default)]
    pub answer_rate_by_hour: Vec<f64>,
    /// Dials placed by the callee's local hour (index 0-23): the evidence behind
    /// `answer_rate_by_hour`.
    #[serde(default)]
    pub attempts_by_hour: Vec<u64>,
}

fn db(op: &'static str) -> impl FnOnce(sqlx::Error) -> CampaignError {
    move |source| CampaignError::Db { op, source }
}

fn kind_str(kind: RefusalKind) -> &'static str {
    match kind {
        RefusalKind::Blacklist => "blacklist",
        RefusalKind::NoConsent => "no_consent",
        RefusalKind::OutsideHours => "outside_hours",
        RefusalKind::CallerId => "caller_id",
        RefusalKind::InvalidNumber => "invalid_number",
        RefusalKind::Attempts => "attempts",
    }
}

/// Campaign tables on the shared metadata pool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CampaignStore {
    pool: AnyPool,
}

impl CampaignStore {
    /// Creates the tables if missing.
    pub async fn open(pool: AnyPool) -> Result<Self, CampaignError> {
        for stmt in SCHEMA {
            sqlx::query(stmt)
                .execute(&pool)
                .await
                .map_err(db("create campaign tables"))?;
        }
        add_segment_column(&pool).await?;
        crate::consent::migrate(&pool).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Stores (or replaces) the campaign's config and adds contacts not yet present. Contacts
    /// already there keep their attempts and history but take the file's name, time zone,
    /// caller ID and segment. Returns how many contacts were added.
    pub async fn load(&self, c: &CampaignConfig, now_ms: i64) -> Result<u64, CampaignError> {
        let config = serde_json::to_string(c).map_err(|e| CampaignError::Invalid {
            name: c.name.clone(),
            reason: e.to_string(),
        })?;
        let mut tx = callqa_ingest::db::begin_write(&self.pool)
            .await
            .map_err(db("begin load"))?;
        sqlx::query(
            "INSERT INTO campaigns (name, config, state, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name) DO UPDATE SET config = excluded.config,
                 updated_at = excluded.updated_at",
        )
        .bind(&c.name)
        .bind(&config)
        .bind(CampaignState::Loaded.as_str())
        .bind(now_ms)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(db("store campaign"))?;
        let count = "SELECT COUNT(*) FROM campaign_contacts WHERE campaign = $1";
        let before: i64 = sqlx::query_scalar(count)
            .bind(&c.name)
            .fetch_one(&mut *tx)
            .await
            .map_err(db("count contacts"))?;
        for (i, contact) in c.contacts.iter().enumerate() {
            let number =
                number::normalize(&contact.number).unwrap_or_else(|_| contact.number.clone());
            sqlx::query(
                "INSERT INTO campaign_contacts
                   (campaign, number, name, timezone, caller_id, segment, position, attempts,
                    next_at, done, invalid)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, 0, 0)
                 ON CONFLICT (campaign, number) DO UPDATE SET name = excluded.name,
                     timezone = excluded.timezone, caller_id = excluded.caller_id,
                     segment = excluded.segment",
            )
            .bind(&c.name)
            .bind(&number)
            .bind(contact.name.clone())
            .bind(contact.timezone.clone())
            .bind(contact.caller_id.clone())
            .bind(contact.segment.clone())
            .bind(i as i64)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(db("store contact"))?;
        }
        let after: i64 = sqlx::query_scalar(count)
            .bind(&c.name)
            .fetch_one(&mut *tx)
            .await
            .map_err(db("count contacts"))?;
        tx.commit().await.map_err(db("commit load"))?;
        Ok((after - before).max(0) as u64)
    }

    pub async fn config(&self, name: &str) -> Result<CampaignConfig, CampaignError> {
        let row = sqlx::query("SELECT config FROM campaigns WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("read campaign"))?
            .ok_or_else(|| CampaignError::Unknown { name: name.into() })?;
        let text: String = row.try_get(0).map_err(db("read campaign config"))?;
        serde_json::from_str(&text).map_err(|e| CampaignError::Invalid {
            name: name.into(),
            reason: format!("stored config: {e}"),
        })
    }

    pub async fn state(&self, name: &str) -> Result<CampaignState, CampaignError> {
        let row = sqlx::query("SELECT state FROM campaigns WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("read campaign state"))?
            .ok_or_else(|| CampaignError::Unknown { name: name.into() })?;
        let s: String = row.try_get(0).map_err(db("read campaign state"))?;
        CampaignState::parse(&s).ok_or_else(|| CampaignError::Invalid {
            name: name.into(),
            reason: format!("unknown state {s:?} in the database"),
        })
    }

    pub async fn set_state(
        &self,
        name: &str,
        state: CampaignState,
        now_ms: i64,
    ) -> Result<(), CampaignError> {
        let r = sqlx::query("UPDATE campaigns SET state = $1, updated_at = $2 WHERE name = $3")
            .bind(state.as_str())
            .bind(now_ms)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db("set campaign state"))?;
        if r.rows_affected() == 0 {
            return Err(CampaignError::Unknown { name: name.into() });
        }
        Ok(())
    }

    /// Saves what the runner measured, shown by `status`.
    pub async fn set_stats(
        &self,
        name: &str,
        stats: &serde_json::Value,
    ) -> Result<(), CampaignError> {
        sqlx::query("UPDATE campaigns SET stats = $1 WHERE name = $2")
            .bind(stats.to_string())
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db("save campaign stats"))?;
        Ok(())
    }

    /// Contacts not yet done, in list order.
    pub async fn open_contacts(&self, name: &str) -> Result<Vec<ContactRow>, CampaignError> {
        let rows = sqlx::query(
            "SELECT campaign, number, name, timezone, caller_id, position, attempts,
                    last_attempt_at, last_outcome, next_at, done, invalid, segment
             FROM campaign_contacts WHERE campaign = $1 AND done = 0 ORDER BY position",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await
        .map_err(db("read contacts"))?;
        rows.iter().map(contact_from_row).collect()
    }

    pub async fn update_contact(&self, c: &ContactRow) -> Result<(), CampaignError> {
        sqlx::query(
            "UPDATE campaign_contacts SET attempts = $1, last_attempt_at = $2, last_outcome = $3,
                 next_at = $4, done = $5, invalid = $6
             WHERE campaign = $7 AND number = $8",
        )
        .bind(c.attempts)
        .bind(c.last_attempt_at)
        .bind(c.last_outcome.clone())
        .bind(c.next_at)
        .bind(i64::from(c.done))
        .bind(i64::from(c.invalid))
        .bind(&c.campaign)
        .bind(&c.number)
        .execute(&self.pool)
        .await
        .map_err(db("update contact"))?;
        Ok(())
    }

    pub async fn record_attempt(&self, a: &AttemptRow) -> Result<(), CampaignError> {
        sqlx::query(
            "INSERT INTO dial_attempts (call_id, campaign, number, trunk, outcome, sip_code, reason,
                 placed_at, answered_at, ended_at, abandoned, agent_wait_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&a.call_id)
        .bind(&a.campaign)
        .bind(&a.number)
        .bind(&a.trunk)
        .bind(&a.outcome)
        .bind(a.sip_code)
        .bind(&a.reason)
        .bind(a.placed_at)
        .bind(a.answered_at)
        .bind(a.ended_at)
        .bind(i64::from(a.abandoned))
        .bind(a.agent_wait_ms)
        .execute(&self.pool)
        .await
        .map_err(db("record dial attempt"))?;
        Ok(())
    }

    pub async fn record_refusal(
        &self,
        campaign: &str,
        number: &str,
        kind: RefusalKind,
        reason: &str,
        at_ms: i64,
    ) -> Result<(), CampaignError> {
        sqlx::query(
            "INSERT INTO refusals (campaign, number, kind, reason, at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(campaign)
        .bind(number)
        .bind(kind_str(kind))
        .bind(reason)
        .bind(at_ms)
        .execute(&self.pool)
        .await
        .map_err(db("record refusal"))?;
        Ok(())
    }

    /// The refusals of a campaign, oldest first: (number, kind, reason).
    pub async fn refusals(
        &self,
        campaign: &str,
    ) -> Result<Vec<(String, String, String)>, CampaignError> {
        let rows = sqlx::query(
            "SELECT number, kind, reason FROM refusals WHERE campaign = $1 ORDER BY at",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await
        .map_err(db("read refusals"))?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(db("read refusal"))?,
                    r.try_get(1).map_err(db("read refusal"))?,
                    r.try_get(2).map_err(db("read refusal"))?,
                ))
            })
            .collect()
    }

    /// Answered calls since `since_ms`: (answered at, abandoned), to seed the rolling window.
    pub async fn answered_since(
        &self,
        campaign: &str,
        since_ms: i64,
    ) -> Result<Vec<(i64, bool)>, CampaignError> {
        let rows = sqlx::query(
            "SELECT answered_at, abandoned FROM dial_attempts
             WHERE campaign = $1 AND answered_at IS NOT NULL AND answered_at >= $2
             ORDER BY answered_at",
        )
        .bind(campaign)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(db("read answered calls"))?;
        rows.iter()
            .map(|r| {
                let at: i64 = r.try_get(0).map_err(db("read answered_at"))?;
                let ab: i64 = r.try_get(1).map_err(db("read abandoned"))?;
                Ok((at, ab != 0))
            })
            .collect()
    }

    /// Every placed dial of a campaign, oldest first, with its contact's zone and segment:
    /// what `best_time` learns from.
    pub async fn attempt_history(&self, campaign: &str) -> Result<Vec<PastAttempt>, CampaignError> {
        let rows = sqlx::query(
            "SELECT a.number, a.placed_at, a.outcome, c.timezone, c.segment
             FROM dial_attempts a
             LEFT JOIN campaign_contacts c ON c.campaign = a.campaign AND c.number = a.number
             WHERE a.campaign = $1 ORDER BY a.placed_at",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await
        .map_err(db("read dial history"))?;
        rows.iter()
            .map(|r| {
                let outcome: String = r.try_get(2).map_err(db("read dial history"))?;
                Ok(PastAttempt {
                    number: r.try_get(0).map_err(db("read dial history"))?,
                    placed_at: r.try_get(1).map_err(db("read dial history"))?,
                    answered: outcome == "answered",
                    timezone: r.try_get(3).map_err(db("read dial history"))?,
                    segment: r.try_get(4).map_err(db("read dial history"))?,
                })
            })
            .collect()
    }

    async fn count(&self, sql: &str, name: &str) -> Result<u64, CampaignError> {
        let row = sqlx::query(sql)
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(db("count for status"))?;
        let n: i64 = row.try_get(0).map_err(db("count for status"))?;
        Ok(n.max(0) as u64)
    }

    /// Everything `campaign status` prints.
    pub async fn status(&self, name: &str, now_ms: i64) -> Result<CampaignStatus, CampaignError> {
        let state = self.state(name).await?;
        let cfg = self.config(name).await?;
        let window_ms = cfg.window()?.as_millis() as i64;
        let row = sqlx::query("SELECT stats FROM campaigns WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(db("read campaign stats"))?;
        let stats: Option<String> = row.try_get(0).map_err(db("read campaign stats"))?;
        let placed = self
            .count(
                "SELECT COUNT(*) FROM dial_attempts WHERE campaign = $1",
                name,
            )
            .await?;
        let answered = self
            .count(
                "SELECT COUNT(*) FROM dial_attempts WHERE campaign = $1 AND answered_at IS NOT NULL",
                name,
            )
            .await?;
        let abandoned = self
            .count(
                "SELECT COUNT(*) FROM dial_attempts WHERE campaign = $1 AND abandoned = 1",
                name,
            )
            .await?;
        // Counted in the database: a 30-day window can hold many answered calls.
        let recent = sqlx::query(
            "SELECT COUNT(*), CAST(COALESCE(SUM(abandoned), 0) AS BIGINT) FROM dial_attempts
             WHERE campaign = $1 AND answered_at IS NOT NULL AND answered_at >= $2",
        )
        .bind(name)
        .bind(now_ms - window_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(db("count the abandon window"))?;
        let in_window: i64 = recent.try_get(0).map_err(db("count the abandon window"))?;
        let abandoned_in_window: i64 = recent.try_get(1).map_err(db("count the abandon window"))?;
        let abandon_rate = if in_window <= 0 {
            0.0
        } else {
            abandoned_in_window.max(0) as f64 / in_window as f64
        };
        let rows =
            sqlx::query("SELECT kind, COUNT(*) FROM refusals WHERE campaign = $1 GROUP BY kind")
                .bind(name)
                .fetch_all(&self.pool)
                .await
                .map_err(db("count refusals"))?;
        let learned = AnswerModel::learn(&self.attempt_history(name).await?);
        let mut refused = RefusedCounts::default();
        for r in rows {
            let kind: String = r.try_get(0).map_err(db("count refusals"))?;
            let n: i64 = r.try_get(1).map_err(db("count refusals"))?;
            let n = n.max(0) as u64;
            match kind.as_str() {
                "blacklist" => refused.blacklist = n,
                "no_consent" => refused.no_consent = n,
                "outside_hours" => refused.outside_hours = n,
                "caller_id" => refused.caller_id = n,
                "invalid_number" => refused.invalid_number = n,
                "attempts" => refused.attempts = n,
                _ => {}
            }
        }
        Ok(CampaignStatus {
            name: name.to_string(),
            state,
            placed,
            answered,
            abandoned,
            abandon_rate,
            refused,
            contacts: self
                .count(
                    "SELECT COUNT(*) FROM campaign_contacts WHERE campaign = $1",
                    name,
                )
                .await?,
            contacts_done: self
                .count(
                    "SELECT COUNT(*) FROM campaign_contacts WHERE campaign = $1 AND done = 1",
                    name,
                )
                .await?,
            invalid_numbers: self
                .count(
                    "SELECT COUNT(*) FROM campaign_contacts WHERE campaign = $1 AND invalid = 1",
                    name,
                )
                .await?,
            stats: stats.and_then(|s| serde_json::from_str(&s).ok()),
            answer_rate_by_hour: learned
                .campaign_rates()
                .iter()
                .map(|r| (r * 10_000.0).round() / 10_000.0)
                .collect(),
            attempts_by_hour: learned.attempts_by_hour().to_vec(),
        })
    }
}

/// Databases created before contacts had a segment get the column; a probe instead of
/// `ADD COLUMN IF NOT EXISTS`, which SQLite lacks.
async fn add_segment_column(pool: &AnyPool) -> Result<(), CampaignError> {
    let probe = "SELECT segment FROM campaign_contacts WHERE 1 = 0";
    if sqlx::query(probe).fetch_all(pool).await.is_ok() {
        return Ok(());
    }
    let added = sqlx::query("ALTER TABLE campaign_contacts ADD COLUMN segment TEXT")
        .execute(pool)
        .await;
    match added {
        Ok(_) => Ok(()),
        // Another process may have added it between the probe and the ALTER.
        Err(e) => match sqlx::query(probe).fetch_all(pool).await {
            Ok(_) => Ok(()),
            Err(_) => Err(CampaignError::Db {
                op: "add segment column to campaign_contacts",
                source: e,
            }),
        },
    }
}

fn contact_from_row(r: &AnyRow) -> Result<ContactRow, CampaignError> {
    let e = db("read contact");
    let get_i = |i: usize| -> Result<i64, sqlx::Error> { r.try_get::<i64, _>(i) };
    Ok(ContactRow {
        campaign: r.try_get(0).map_err(db("read contact"))?,
        number: r.try_get(1).map_err(db("read contact"))?,
        name: r.try_get(2).map_err(db("read contact"))?,
        timezone: r.try_get(3).map_err(db("read contact"))?,
        caller_id: r.try_get(4).map_err(db("read contact"))?,
        position: get_i(5).map_err(db("read contact"))?,
        attempts: get_i(6).map_err(db("read contact"))?,
        last_attempt_at: r.try_get(7).map_err(db("read contact"))?,
        last_outcome: r.try_get(8).map_err(db("read contact"))?,
        next_at: get_i(9).map_err(db("read contact"))?,
        done: get_i(10).map_err(db("read contact"))? != 0,
        invalid: get_i(11).map_err(e)? != 0,
        segment: r.try_get(12).map_err(db("read contact"))?,
    })
}
