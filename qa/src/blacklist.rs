//! The blacklist: numbers never to dial again, added automatically from opt-outs and
//! complaint counts or by hand and CSV import, every change audited. The dialer checks
//! [`Blacklist::is_blocked`] before every dial.

use std::io::Read;

use callqa_ingest::transcript::CallMeta;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};

use crate::error::QaError;
use crate::number;
use crate::score::QaResult;
use crate::store::{fmt_time, parse_time};

/// Why a number is on the blacklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    OptOut,
    Complaints,
    Manual,
    Import,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::OptOut => "opt_out",
            Source::Complaints => "complaints",
            Source::Manual => "manual",
            Source::Import => "import",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        match s {
            "opt_out" => Some(Source::OptOut),
            "complaints" => Some(Source::Complaints),
            "manual" => Some(Source::Manual),
            "import" => Some(Source::Import),
            _ => None,
        }
    }
}

/// One blacklisted number, as printed by `callqa blacklist list --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlacklistEntry {
    /// E.164.
    pub number: String,
    pub reason: String,
    pub source: Source,
    /// Calls that caused the entry.
    pub calls: Vec<String>,
    /// RFC 3339 UTC.
    pub added_at: String,
    /// RFC 3339 UTC; `None` = never expires.
    pub expires_at: Option<String>,
}

/// One add or remove in the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at: String,
    /// `add` or `remove`.
    pub action: String,
    pub number: String,
    pub reason: String,
    pub source: Option<Source>,
    pub calls: Vec<String>,
    pub actor: String,
}

/// When calls put their customer's number on the blacklist. Defaults: opt-outs on,
/// 2 complaints within 30 days, entries never expire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlacklistPolicy {
    /// Blacklist a number the first time its customer asks not to be called again.
    pub opt_out: bool,
    /// Complaint calls from one number, within `window_days`, that blacklist it.
    pub complaint_threshold: u32,
    pub window_days: u32,
    /// Automatic entries expire after this many days; `None` = never.
    pub expiry_days: Option<u32>,
}

impl Default for BlacklistPolicy {
    fn default() -> Self {
        BlacklistPolicy {
            opt_out: true,
            complaint_threshold: 2,
            window_days: 30,
            expiry_days: None,
        }
    }
}

/// A CSV row that could not be imported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportRowError {
    /// 1-based line number in the file.
    pub line: u64,
    pub message: String,
}

/// Outcome of [`Blacklist::import_csv`]: good rows are imported even when others fail.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    pub imported: usize,
    pub errors: Vec<ImportRowError>,
}

/// The blacklist table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Blacklist {
    pool: AnyPool,
}

const ENTRY_COLUMNS: &str = "number, reason, source, calls, added_at, expires_at";

fn entry_from_row(row: &AnyRow) -> Result<BlacklistEntry, QaError> {
    let get = |c: &str| {
        row.try_get::<String, _>(c)
            .map_err(QaError::db(format!("read blacklist.{c}")))
    };
    let number = get("number")?;
    let source_s = get("source")?;
    let calls_s = get("calls")?;
    let expires_at: Option<String> = row
        .try_get("expires_at")
        .map_err(QaError::db("read blacklist.expires_at"))?;
    Ok(BlacklistEntry {
        reason: get("reason")?,
        source: Source::parse(&source_s).unwrap_or(Source::Manual),
        calls: serde_json::from_str(&calls_s)
            .map_err(QaError::json(format!("blacklist calls of {number}")))?,
        added_at: get("added_at")?,
        expires_at,
        number,
    })
}

fn is_active(e: &BlacklistEntry, now: DateTime<Utc>) -> bool {
    match &e.expires_at {
        None => true,
        // An unreadable expiry keeps the number blocked: wrongly not calling is the safe side.
        Some(x) => parse_time("expires_at", x).map(|t| t > now).unwrap_or(true),
    }
}

async fn get_on(conn: &mut AnyConnection, number: &str) -> Result<Option<BlacklistEntry>, QaError> {
    let row = sqlx::query(&format!(
        "SELECT {ENTRY_COLUMNS} FROM blacklist WHERE number = $1"
    ))
    .bind(number.to_string())
    .fetch_optional(&mut *conn)
    .await
    .map_err(QaError::db(format!("look up {number} in the blacklist")))?;
    row.as_ref().map(entry_from_row).transpose()
}

async fn audit_on(
    conn: &mut AnyConnection,
    action: &str,
    number: &str,
    reason: &str,
    source: Option<Source>,
    calls: &[String],
    actor: &str,
) -> Result<(), QaError> {
    let now = Utc::now();
    let calls = serde_json::to_string(calls).map_err(QaError::json("audit calls"))?;
    sqlx::query(
        "INSERT INTO blacklist_audit (at, at_ms, action, number, reason, source, calls, actor)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(fmt_time(now))
    .bind(now.timestamp_millis())
    .bind(action.to_string())
    .bind(number.to_string())
    .bind(reason.to_string())
    .bind(source.map(|s| s.as_str().to_string()))
    .bind(calls)
    .bind(actor.to_string())
    .execute(&mut *conn)
    .await
    .map_err(QaError::db(format!("audit {action} of {number}")))?;
    Ok(())
}

/// Adds or updates an entry: calls are merged with the existing ones, reason, source and
/// expiry replaced. `number` must already be E.164.
async fn add_on(
    conn: &mut AnyConnection,
    number: &str,
    reason: &str,
    source: Source,
    calls: &[String],
    expires_at: Option<DateTime<Utc>>,
    actor: &str,
) -> Result<BlacklistEntry, QaError> {
    let now = Utc::now();
    let existing = get_on(conn, number).await?;
    let mut all_calls = existing
        .as_ref()
        .map(|e| e.calls.clone())
        .unwrap_or_default();
    for c in calls {
        if !all_calls.contains(c) {
            all_calls.push(c.clone());
        }
    }
    // An entry that is still in force keeps the time it was first added.
    let added_at = match &existing {
        Some(e) if is_active(e, now) => e.added_at.clone(),
        _ => fmt_time(now),
    };
    let entry = BlacklistEntry {
        number: number.to_string(),
        reason: reason.to_string(),
        source,
        calls: all_calls,
        added_at,
        expires_at: expires_at.map(fmt_time),
    };
    let calls_json =
        serde_json::to_string(&entry.calls).map_err(QaError::json("blacklist calls"))?;
    sqlx::query(
        "INSERT INTO blacklist (number, reason, source, calls, added_at, expires_at, expires_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (number) DO UPDATE SET reason = excluded.reason, source = excluded.source,
            calls = excluded.calls, added_at = excluded.added_at, expires_at = excluded.expires_at,
            expires_ms = excluded.expires_ms",
    )
    .bind(entry.number.clone())
    .bind(entry.reason.clone())
    .bind(source.as_str().to_string())
    .bind(calls_json)
    .bind(entry.added_at.clone())
    .bind(entry.expires_at.clone())
    .bind(expires_at.map(|t| t.timestamp_millis()))
    .execute(&mut *conn)
    .await
    .map_err(QaError::db(format!("add {number} to the blacklist")))?;
    audit_on(conn, "add", number, reason, Some(source), calls, actor).await?;
    Ok(entry)
}

impl Blacklist {
    pub fn new(pool: AnyPool) -> Blacklist {
        Blacklist { pool }
    }

    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, QaError> {
        self.pool
            .acquire()
            .await
            .map_err(QaError::db("connect for the blacklist"))
    }

    /// Adds `number` (any accepted format; stored as E.164) or updates its entry.
    pub async fn add(
        &self,
        number: &str,
        reason: &str,
        source: Source,
        calls: &[String],
        expires_at: Option<DateTime<Utc>>,
        actor: &str,
    ) -> Result<BlacklistEntry, QaError> {
        let number = number::normalize(number)?;
        let mut tx = callqa_ingest::db::begin_write(&self.pool)
            .await
            .map_err(QaError::db("begin blacklist add"))?;
        let entry = add_on(&mut tx, &number, reason, source, calls, expires_at, actor).await?;
        tx.commit()
            .await
            .map_err(QaError::db(format!("commit blacklist add of {number}")))?;
        tracing::info!(number = %number, source = source.as_str(), actor, "blacklisted: {reason}");
        Ok(entry)
    }

    /// Removes `number` (audited); `false`, and no audit record, when it was not on the list.
    pub async fn remove(&self, number: &str, reason: &str, actor: &str) -> Result<bool, QaError> {
        let number = number::normalize(number)?;
        let mut tx = callqa_ingest::db::begin_write(&self.pool)
            .await
            .map_err(QaError::db("begin blacklist remove"))?;
        let Some(existing) = get_on(&mut tx, &number).await? else {
            return Ok(false);
        };
        sqlx::query("DELETE FROM blacklist WHERE number = $1")
            .bind(number.clone())
            .execute(&mut *tx)
            .await
            .map_err(QaError::db(format!("remove {number} from the blacklist")))?;
        audit_on(
            &mut tx,
            "remove",
            &number,
            reason,
            Some(existing.source),
            &existing.calls,
            actor,
        )
        .await?;
        tx.commit()
            .await
            .map_err(QaError::db(format!("commit blacklist remove of {number}")))?;
        tracing::info!(number = %number, actor, "removed from blacklist: {reason}");
        Ok(true)
    }

    /// Every entry, expired ones included, oldest first.
    pub async fn list(&self) -> Result<Vec<BlacklistEntry>, QaError> {
        let rows = sqlx::query(&format!(
            "SELECT {ENTRY_COLUMNS} FROM blacklist ORDER BY added_at, number"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(QaError::db("list the blacklist"))?;
        rows.iter().map(entry_from_row).collect()
    }

    /// The entry of `number` whether or not it has expired.
    pub async fn get(&self, number: &str) -> Result<Option<BlacklistEntry>, QaError> {
        let number = number::normalize(number)?;
        get_on(&mut *self.conn().await?, &number).await
    }

    /// The entry that forbids dialing `number` at `now`, if any (expired entries do not).
    /// The dialer calls this before every dial.
    pub async fn is_blocked(
        &self,
        number: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<BlacklistEntry>, QaError> {
        Ok(self.get(number).await?.filter(|e| is_active(e, now)))
    }

    /// The audit trail, oldest first, of one number or of all.
    pub async fn audit(&self, number: Option<&str>) -> Result<Vec<AuditRecord>, QaError> {
        let rows = match number {
            Some(n) => {
                let n = number::normalize(n)?;
                sqlx::query("SELECT at, action, number, reason, source, calls, actor FROM blacklist_audit WHERE number = $1 ORDER BY at_ms")
                    .bind(n)
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                sqlx::query("SELECT at, action, number, reason, source, calls, actor FROM blacklist_audit ORDER BY at_ms")
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(QaError::db("read the blacklist audit"))?;
        rows.iter()
            .map(|row| {
                let get = |c: &str| {
                    row.try_get::<String, _>(c)
                        .map_err(QaError::db(format!("read blacklist_audit.{c}")))
                };
                let source: Option<String> = row
                    .try_get("source")
                    .map_err(QaError::db("read blacklist_audit.source"))?;
                Ok(AuditRecord {
                    at: get("at")?,
                    action: get("action")?,
                    number: get("number")?,
                    reason: get("reason")?,
                    source: source.as_deref().and_then(Source::parse),
                    calls: serde_json::from_str(&get("calls")?)
                        .map_err(QaError::json("audit calls"))?,
                    actor: get("actor")?,
                })
            })
            .collect()
    }

    /// Imports `number,reason[,expires_at]` rows (an optional header row is skipped;
    /// `expires_at` is RFC 3339 or YYYY-MM-DD). Bad rows are reported by line, good rows
    /// are imported with source `import`.
    pub async fn import_csv<R: Read>(
        &self,
        reader: R,
        actor: &str,
    ) -> Result<ImportReport, QaError> {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_reader(reader);
        let mut report = ImportReport::default();
        let mut good: Vec<(String, String, Option<DateTime<Utc>>)> = Vec::new();
        for (i, rec) in csv.records().enumerate() {
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    let line = e.position().map(|p| p.line()).unwrap_or(0);
                    report.errors.push(ImportRowError {
                        line,
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            let line = rec.position().map(|p| p.line()).unwrap_or(i as u64 + 1);
            let field = |n: usize| rec.get(n).unwrap_or("").to_string();
            if i == 0 && field(0).eq_ignore_ascii_case("number") {
                continue;
            }
            if rec.iter().all(|f| f.is_empty()) {
                continue;
            }
            let mut fail = |message: String| report.errors.push(ImportRowError { line, message });
            if rec.len() > 3 {
                fail(format!(
                    "{} columns; expected number,reason[,expires_at]",
                    rec.len()
                ));
                continue;
            }
            let number = match number::normalize(&field(0)) {
                Ok(n) => n,
                Err(e) => {
                    fail(e.to_string());
                    continue;
                }
            };
            let reason = field(1);
            if reason.is_empty() {
                fail(format!("{number}: missing reason"));
                continue;
            }
            let expires = match field(2).as_str() {
                "" => None,
                s => match parse_time("expires_at", s) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        fail(e.to_string());
                        continue;
                    }
                },
            };
            good.push((number, reason, expires));
        }
        let mut tx = callqa_ingest::db::begin_write(&self.pool)
            .await
            .map_err(QaError::db("begin blacklist import"))?;
        for (number, reason, expires) in &good {
            add_on(
                &mut tx,
                number,
                reason,
                Source::Import,
                &[],
                *expires,
                actor,
            )
            .await?;
        }
        tx.commit()
            .await
            .map_err(QaError::db("commit blacklist import"))?;
        report.imported = good.len();
        Ok(report)
    }
}

/// Records the call's complaint / opt-out events and blacklists its customer's number
/// when `policy` says so: at once on an opt-out (source `opt_out`), or when complaint
/// calls from the number within `window_days` reach `complaint_threshold` (source
/// `complaints`, with those calls). Idempotent per call id: a redelivered call is not
/// counted again and changes nothing. A re-score that drops a flag withdraws the event
/// (an existing entry stays; removing it is a human decision).
/// Returns the entry this call added or extended.
pub async fn apply_policy(
    pool: &AnyPool,
    meta: &CallMeta,
    r: &QaResult,
    policy: &BlacklistPolicy,
) -> Result<Option<BlacklistEntry>, QaError> {
    let Some(raw) = meta.customer.as_deref().filter(|c| !c.trim().is_empty()) else {
        return Ok(None);
    };
    let number = match number::normalize(raw) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(call_id = %meta.call_id, "cannot apply the blacklist policy: {e}");
            return Ok(None);
        }
    };
    let started = parse_time("started_at", &meta.started_at)?;
    let mut tx = callqa_ingest::db::begin_write(pool)
        .await
        .map_err(QaError::db("begin blacklist policy"))?;
    let mut new_events = Vec::new();
    for kind in ["complaint", "opt_out"] {
        if r.has_flag(kind) {
            let res = sqlx::query(
                "INSERT INTO complaints (call_id, kind, number, campaign, agent, started_at, started_ms, recorded_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (call_id, kind) DO NOTHING",
            )
            .bind(meta.call_id.clone())
            .bind(kind.to_string())
            .bind(number.clone())
            .bind(meta.campaign.clone())
            .bind(meta.agent.clone())
            .bind(fmt_time(started))
            .bind(started.timestamp_millis())
            .bind(fmt_time(Utc::now()))
            .execute(&mut *tx)
            .await
            .map_err(QaError::db(format!("record {kind} of {}", meta.call_id)))?;
            if res.rows_affected() > 0 {
                new_events.push(kind);
            }
        } else {
            sqlx::query("DELETE FROM complaints WHERE call_id = $1 AND kind = $2")
                .bind(meta.call_id.clone())
                .bind(kind.to_string())
                .execute(&mut *tx)
                .await
                .map_err(QaError::db(format!("withdraw {kind} of {}", meta.call_id)))?;
        }
    }
    let expires = policy
        .expiry_days
        .map(|d| Utc::now() + Duration::days(i64::from(d)));
    let mut result = None;
    if new_events.contains(&"opt_out") && policy.opt_out {
        let reason = format!(
            "customer asked not to be called again in call {}",
            meta.call_id
        );
        let entry = add_on(
            &mut tx,
            &number,
            &reason,
            Source::OptOut,
            std::slice::from_ref(&meta.call_id),
            expires,
            "policy",
        )
        .await?;
        result = Some(entry);
    }
    if new_events.contains(&"complaint") && policy.complaint_threshold > 0 {
        let window_ms = i64::from(policy.window_days) * 86_400_000;
        let at = started.timestamp_millis();
        let rows = sqlx::query(
            "SELECT call_id, started_ms FROM complaints
             WHERE number = $1 AND kind = 'complaint' AND started_ms >= $2 AND started_ms <= $3
             ORDER BY started_ms, call_id",
        )
        .bind(number.clone())
        .bind(at - window_ms)
        .bind(at + window_ms)
        .fetch_all(&mut *tx)
        .await
        .map_err(QaError::db(format!("count complaints of {number}")))?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row
                .try_get("call_id")
                .map_err(QaError::db("read complaints.call_id"))?;
            let ms: i64 = row
                .try_get("started_ms")
                .map_err(QaError::db("read complaints.started_ms"))?;
            events.push((ms, id));
        }
        if let Some(calls) =
            window_with(&events, at, window_ms, policy.complaint_threshold as usize)
        {
            let reason = format!(
                "{} complaint calls within {} days",
                calls.len(),
                policy.window_days
            );
            let entry = add_on(
                &mut tx,
                &number,
                &reason,
                Source::Complaints,
                &calls,
                expires,
                "policy",
            )
            .await?;
            result = Some(entry);
        }
    }
    tx.commit().await.map_err(QaError::db(format!(
        "commit blacklist policy of {}",
        meta.call_id
    )))?;
    if let Some(e) = &result {
        tracing::info!(call_id = %meta.call_id, number = %e.number, source = e.source.as_str(), "blacklisted by policy");
    }
    Ok(result)
}

/// The calls of the first `window_ms`-long window that contains time `at` and holds at
/// least `threshold` events; `events` sorted by time. Complaints may be scored out of
/// order, so windows both before and after `at` count.
fn window_with(
    events: &[(i64, String)],
    at: i64,
    window_ms: i64,
    threshold: usize,
) -> Option<Vec<String>> {
    let mut lo = 0;
    for hi in 0..events.len() {
        while events[hi].0 - events[lo].0 > window_ms {
            lo += 1;
        }
        let span = &events[lo..=hi];
        let contains_at = events[lo].0 <= at && at <= events[hi].0;
        if contains_at && span.len() >= threshold {
            return Some(span.iter().map(|(_, id)| id.clone()).collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(v: &[(i64, &str)]) -> Vec<(i64, String)> {
        v.iter().map(|(t, s)| (*t, s.to_string())).collect()
    }

    #[test]
    fn window_threshold() {
        let day = 86_400_000;
        let e = ev(&[(0, "a"), (10 * day, "b"), (50 * day, "c")]);
        assert_eq!(
            window_with(&e, 10 * day, 30 * day, 2),
            Some(vec!["a".into(), "b".into()])
        );
        // c is alone in its window.
        assert_eq!(window_with(&e, 50 * day, 30 * day, 2), None);
        assert_eq!(window_with(&e, 10 * day, 30 * day, 3), None);
        let e = ev(&[(0, "a"), (20 * day, "b"), (40 * day, "c")]);
        // b with a, or b with c: the first window found is reported.
        assert_eq!(
            window_with(&e, 20 * day, 30 * day, 2),
            Some(vec!["a".into(), "b".into()])
        );
        // a and c are 40 days apart: never three in 30 days.
        assert_eq!(window_with(&e, 20 * day, 30 * day, 3), None);
        assert_eq!(window_with(&e, 0, 30 * day, 1), Some(vec!["a".into()]));
    }
}
