//! QA results in SQL (SQLite or PostgreSQL through `sqlx::AnyPool`): the current result
//! per call, every scorecard version's result for re-scoring diffs, and the schema.

use std::collections::{BTreeMap, HashMap};

use callqa_ingest::transcript::CallMeta;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{AnyPool, Row};

use crate::error::QaError;
use crate::number;
use crate::score::QaResult;

/// Portable DDL: TEXT / BIGINT / DOUBLE PRECISION only, times as RFC 3339 UTC text plus
/// epoch milliseconds where ranges are queried.
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS qa_results (
        call_id TEXT PRIMARY KEY,
        campaign TEXT,
        agent TEXT,
        customer TEXT,
        started_at TEXT NOT NULL,
        started_ms BIGINT NOT NULL,
        score DOUBLE PRECISION NOT NULL,
        scorecard TEXT NOT NULL,
        version BIGINT NOT NULL,
        flags TEXT NOT NULL,
        auto_failed BIGINT NOT NULL,
        complaint BIGINT NOT NULL,
        refund BIGINT NOT NULL,
        opt_out BIGINT NOT NULL,
        result_json TEXT NOT NULL,
        scored_at TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS qa_results_started ON qa_results (started_ms)",
    "CREATE INDEX IF NOT EXISTS qa_results_campaign ON qa_results (campaign)",
    "CREATE TABLE IF NOT EXISTS qa_history (
        call_id TEXT NOT NULL,
        campaign TEXT,
        scorecard TEXT NOT NULL,
        version BIGINT NOT NULL,
        score DOUBLE PRECISION NOT NULL,
        flags TEXT NOT NULL,
        result_json TEXT NOT NULL,
        scored_at TEXT NOT NULL,
        PRIMARY KEY (call_id, scorecard, version)
    )",
    "CREATE INDEX IF NOT EXISTS qa_history_campaign ON qa_history (campaign, version)",
    "CREATE TABLE IF NOT EXISTS blacklist (
        number TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        source TEXT NOT NULL,
        calls TEXT NOT NULL,
        added_at TEXT NOT NULL,
        expires_at TEXT,
        expires_ms BIGINT
    )",
    "CREATE TABLE IF NOT EXISTS blacklist_audit (
        at TEXT NOT NULL,
        at_ms BIGINT NOT NULL,
        action TEXT NOT NULL,
        number TEXT NOT NULL,
        reason TEXT NOT NULL,
        source TEXT,
        calls TEXT NOT NULL,
        actor TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS blacklist_audit_number ON blacklist_audit (number, at_ms)",
    "CREATE TABLE IF NOT EXISTS complaints (
        call_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        number TEXT NOT NULL,
        campaign TEXT,
        agent TEXT,
        started_at TEXT NOT NULL,
        started_ms BIGINT NOT NULL,
        recorded_at TEXT NOT NULL,
        PRIMARY KEY (call_id, kind)
    )",
    "CREATE INDEX IF NOT EXISTS complaints_number ON complaints (number, kind, started_ms)",
];

/// Creates the QA tables if they do not exist. Safe to run at every start.
pub async fn migrate(pool: &AnyPool) -> Result<(), QaError> {
    for stmt in SCHEMA {
        sqlx::query(stmt)
            .execute(pool)
            .await
            .map_err(QaError::db("migrate QA schema"))?;
    }
    Ok(())
}

/// RFC 3339 UTC with milliseconds: sorts lexically, and its first 10 chars are the day.
pub fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Parses an RFC 3339 timestamp, or a bare date (midnight UTC).
pub fn parse_time(field: &str, value: &str) -> Result<DateTime<Utc>, QaError> {
    let bad = || QaError::Timestamp {
        field: field.to_string(),
        value: value.to_string(),
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(value.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").map_err(|_| bad())?;
    Ok(day.and_hms_opt(0, 0, 0).ok_or_else(bad)?.and_utc())
}

/// A customer number as stored: E.164 when it parses, else as given (a bad number must
/// not stop a call's QA result from being stored).
pub(crate) fn stored_number(raw: &str) -> String {
    number::normalize(raw).unwrap_or_else(|_| raw.trim().to_string())
}

/// Stores `r` as the call's current result (re-scoring overwrites) and as the result of
/// its scorecard version in `qa_history`.
pub async fn store_result(pool: &AnyPool, meta: &CallMeta, r: &QaResult) -> Result<(), QaError> {
    let started = parse_time("started_at", &meta.started_at)?;
    let result_json = serde_json::to_string(r).map_err(QaError::json("QA result"))?;
    let flags = serde_json::to_string(&r.flags).map_err(QaError::json("QA flags"))?;
    let now = fmt_time(Utc::now());
    let flag = |f: &str| i64::from(r.has_flag(f));
    let mut tx = callqa_ingest::db::begin_write(pool)
        .await
        .map_err(QaError::db("begin storing QA result"))?;
    sqlx::query(
        "INSERT INTO qa_results (call_id, campaign, agent, customer, started_at, started_ms, score, scorecard,
            version, flags, auto_failed, complaint, refund, opt_out, result_json, scored_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT (call_id) DO UPDATE SET campaign = excluded.campaign, agent = excluded.agent,
            customer = excluded.customer, started_at = excluded.started_at, started_ms = excluded.started_ms,
            score = excluded.score, scorecard = excluded.scorecard, version = excluded.version,
            flags = excluded.flags, auto_failed = excluded.auto_failed, complaint = excluded.complaint,
            refund = excluded.refund, opt_out = excluded.opt_out, result_json = excluded.result_json,
            scored_at = excluded.scored_at",
    )
    .bind(meta.call_id.clone())
    .bind(meta.campaign.clone())
    .bind(meta.agent.clone())
    .bind(meta.customer.as_deref().map(stored_number))
    .bind(fmt_time(started))
    .bind(started.timestamp_millis())
    .bind(r.score)
    .bind(r.scorecard.clone())
    .bind(i64::from(r.version))
    .bind(flags.clone())
    .bind(i64::from(r.auto_failed))
    .bind(flag("complaint"))
    .bind(flag("refund"))
    .bind(flag("opt_out"))
    .bind(result_json.clone())
    .bind(now.clone())
    .execute(&mut *tx)
    .await
    .map_err(QaError::db(format!("store QA result of {}", meta.call_id)))?;
    sqlx::query(
        "INSERT INTO qa_history (call_id, campaign, scorecard, version, score, flags, result_json, scored_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (call_id, scorecard, version) DO UPDATE SET campaign = excluded.campaign,
            score = excluded.score, flags = excluded.flags, result_json = excluded.result_json,
            scored_at = excluded.scored_at",
    )
    .bind(meta.call_id.clone())
    .bind(meta.campaign.clone())
    .bind(r.scorecard.clone())
    .bind(i64::from(r.version))
    .bind(r.score)
    .bind(flags)
    .bind(result_json)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(QaError::db(format!("store QA history of {}", meta.call_id)))?;
    tx.commit()
        .await
        .map_err(QaError::db(format!("commit QA result of {}", meta.call_id)))
}

/// The current QA result of a call, if it was scored.
pub async fn load_result(pool: &AnyPool, call_id: &str) -> Result<Option<QaResult>, QaError> {
    let row = sqlx::query("SELECT result_json FROM qa_results WHERE call_id = $1")
        .bind(call_id.to_string())
        .fetch_optional(pool)
        .await
        .map_err(QaError::db(format!("load QA result of {call_id}")))?;
    match row {
        None => Ok(None),
        Some(row) => {
            let json: String = row
                .try_get("result_json")
                .map_err(QaError::db("read result_json"))?;
            serde_json::from_str(&json)
                .map(Some)
                .map_err(QaError::json(format!("stored QA result of {call_id}")))
        }
    }
}

/// An item whose pass rate differs between two scorecard versions (`None`: the item
/// does not exist in that version).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemChange {
    pub id: String,
    pub label: String,
    pub pass_rate_before: Option<f64>,
    pub pass_rate_after: Option<f64>,
}

/// A call whose flags differ between the two versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagChange {
    pub call_id: String,
    pub before: Vec<String>,
    pub after: Vec<String>,
}

/// What changed when a campaign's calls were re-scored with a new scorecard version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionDiff {
    pub campaign: String,
    pub from_version: u32,
    pub to_version: u32,
    /// Calls that have a result under both versions.
    pub calls_rescored: usize,
    pub mean_score_before: f64,
    pub mean_score_after: f64,
    pub calls_score_changed: usize,
    pub items_changed: Vec<ItemChange>,
    pub flags_changed: Vec<FlagChange>,
}

#[derive(Default)]
struct PassCount {
    label: String,
    passed: usize,
    total: usize,
}

impl PassCount {
    fn rate(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.passed as f64 / self.total as f64
        }
    }
}

/// Compares the results of `campaign`'s calls under two scorecard versions.
pub async fn version_diff(
    pool: &AnyPool,
    campaign: &str,
    from_version: u32,
    to_version: u32,
) -> Result<VersionDiff, QaError> {
    let rows = sqlx::query(
        "SELECT call_id, version, result_json FROM qa_history WHERE campaign = $1 AND (version = $2 OR version = $3)",
    )
    .bind(campaign.to_string())
    .bind(i64::from(from_version))
    .bind(i64::from(to_version))
    .fetch_all(pool)
    .await
    .map_err(QaError::db(format!("load QA history of campaign {campaign}")))?;
    let mut before: HashMap<String, QaResult> = HashMap::new();
    let mut after: HashMap<String, QaResult> = HashMap::new();
    for row in rows {
        let call_id: String = row
            .try_get("call_id")
            .map_err(QaError::db("read call_id"))?;
        let version: i64 = row
            .try_get("version")
            .map_err(QaError::db("read version"))?;
        let json: String = row
            .try_get("result_json")
            .map_err(QaError::db("read result_json"))?;
        let r: QaResult = serde_json::from_str(&json)
            .map_err(QaError::json(format!("stored QA result of {call_id}")))?;
        if version == i64::from(from_version) {
            before.insert(call_id, r);
        } else {
            after.insert(call_id, r);
        }
    }
    let mut call_ids: Vec<&String> = before.keys().filter(|k| after.contains_key(*k)).collect();
    call_ids.sort();
    let n = call_ids.len();
    let (mut sum_before, mut sum_after, mut score_changed) = (0.0, 0.0, 0);
    let mut items_before: BTreeMap<String, PassCount> = BTreeMap::new();
    let mut items_after: BTreeMap<String, PassCount> = BTreeMap::new();
    let mut flags_changed = Vec::new();
    for id in &call_ids {
        let (b, a) = (&before[*id], &after[*id]);
        sum_before += b.score;
        sum_after += a.score;
        if (b.score - a.score).abs() > 1e-9 {
            score_changed += 1;
        }
        for (r, counts) in [(b, &mut items_before), (a, &mut items_after)] {
            for item in &r.items {
                let c = counts.entry(item.id.clone()).or_default();
                c.label.clone_from(&item.label);
                c.total += 1;
                c.passed += usize::from(item.passed);
            }
        }
        if b.flags != a.flags {
            flags_changed.push(FlagChange {
                call_id: (*id).clone(),
                before: b.flags.clone(),
                after: a.flags.clone(),
            });
        }
    }
    let mut ids: Vec<&String> = items_before.keys().chain(items_after.keys()).collect();
    ids.sort();
    ids.dedup();
    let mut items_changed = Vec::new();
    for id in ids {
        let (b, a) = (items_before.get(id), items_after.get(id));
        let (rb, ra) = (b.map(PassCount::rate), a.map(PassCount::rate));
        let changed = match (rb, ra) {
            (Some(x), Some(y)) => (x - y).abs() > 1e-9,
            _ => true,
        };
        if changed {
            let label = a.or(b).map(|c| c.label.clone()).unwrap_or_default();
            items_changed.push(ItemChange {
                id: id.clone(),
                label,
                pass_rate_before: rb,
                pass_rate_after: ra,
            });
        }
    }
    let mean = |s: f64| {
        if n == 0 {
            0.0
        } else {
            (s / n as f64 * 100.0).round() / 100.0
        }
    };
    Ok(VersionDiff {
        campaign: campaign.to_string(),
        from_version,
        to_version,
        calls_rescored: n,
        mean_score_before: mean(sum_before),
        mean_score_after: mean(sum_after),
        calls_score_changed: score_changed,
        items_changed,
        flags_changed,
    })
}
