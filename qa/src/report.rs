//! QA and complaint reports grouped by agent, campaign, day or customer number over a
//! time range, as rows that serialise to JSON and CSV.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{AnyPool, Row};

use crate::error::QaError;
use crate::store::parse_time;

/// Key of a report row. Days are UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportBy {
    Agent,
    Campaign,
    Day,
    Number,
}

impl FromStr for ReportBy {
    type Err = String;

    fn from_str(s: &str) -> Result<ReportBy, String> {
        match s {
            "agent" => Ok(ReportBy::Agent),
            "campaign" => Ok(ReportBy::Campaign),
            "day" => Ok(ReportBy::Day),
            "number" | "customer" => Ok(ReportBy::Number),
            other => Err(format!(
                "unknown report grouping {other:?}: use agent, campaign, day or number"
            )),
        }
    }
}

/// One group of the QA report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRow {
    pub key: String,
    pub calls: u64,
    pub avg_score: f64,
    pub min_score: f64,
    pub max_score: f64,
    pub auto_failed: u64,
    pub complaints: u64,
    /// complaints / calls.
    pub complaint_rate: f64,
    pub refunds: u64,
    pub opt_outs: u64,
}

/// One group of the complaints report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplaintRow {
    pub key: String,
    pub calls: u64,
    pub complaints: u64,
    pub complaint_rate: f64,
    pub opt_outs: u64,
    pub legal_threats: u64,
}

/// Used for rows without an agent / campaign / number.
const NONE_KEY: &str = "(none)";

/// A half-open range in epoch ms. A date-only `to` includes that whole day.
fn range(from: Option<&str>, to: Option<&str>) -> Result<(i64, i64), QaError> {
    let from_ms = match from {
        Some(s) => parse_time("from", s)?.timestamp_millis(),
        None => i64::MIN,
    };
    let to_ms = match to {
        Some(s) => {
            let t: DateTime<Utc> = parse_time("to", s)?;
            let date_only = !s.contains('T') && !s.contains(' ');
            (if date_only { t + Duration::days(1) } else { t }).timestamp_millis()
        }
        None => i64::MAX,
    };
    Ok((from_ms, to_ms))
}

struct ScoredCall {
    key: String,
    score: f64,
    flags: Vec<String>,
    auto_failed: bool,
}

async fn scored_calls(
    pool: &AnyPool,
    by: ReportBy,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Vec<ScoredCall>, QaError> {
    let (from_ms, to_ms) = range(from, to)?;
    let rows = sqlx::query(
        "SELECT campaign, agent, customer, started_at, score, flags, auto_failed FROM qa_results
         WHERE started_ms >= $1 AND started_ms < $2",
    )
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(pool)
    .await
    .map_err(QaError::db("read QA results for the report"))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let opt = |c: &str| {
            row.try_get::<Option<String>, _>(c)
                .map_err(QaError::db(format!("read qa_results.{c}")))
        };
        let key = match by {
            ReportBy::Agent => opt("agent")?,
            ReportBy::Campaign => opt("campaign")?,
            ReportBy::Number => opt("customer")?,
            ReportBy::Day => opt("started_at")?.map(|s| s.chars().take(10).collect()),
        }
        .unwrap_or_else(|| NONE_KEY.to_string());
        let flags: String = row
            .try_get("flags")
            .map_err(QaError::db("read qa_results.flags"))?;
        let auto_failed: i64 = row
            .try_get("auto_failed")
            .map_err(QaError::db("read qa_results.auto_failed"))?;
        out.push(ScoredCall {
            key,
            score: row
                .try_get("score")
                .map_err(QaError::db("read qa_results.score"))?,
            flags: serde_json::from_str(&flags).map_err(QaError::json("stored flags"))?,
            auto_failed: auto_failed != 0,
        });
    }
    Ok(out)
}

fn rate(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        (n as f64 / of as f64 * 10_000.0).round() / 10_000.0
    }
}

/// Per-group call counts, scores and flag counts of calls started in `[from, to]`
/// (RFC 3339 or YYYY-MM-DD; either may be open). Rows sorted by key.
pub async fn qa_report(
    pool: &AnyPool,
    by: ReportBy,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Vec<ReportRow>, QaError> {
    let mut groups: BTreeMap<String, (ReportRow, f64)> = BTreeMap::new();
    for c in scored_calls(pool, by, from, to).await? {
        let (row, sum) = groups.entry(c.key.clone()).or_insert_with(|| {
            (
                ReportRow {
                    key: c.key.clone(),
                    calls: 0,
                    avg_score: 0.0,
                    min_score: f64::INFINITY,
                    max_score: f64::NEG_INFINITY,
                    auto_failed: 0,
                    complaints: 0,
                    complaint_rate: 0.0,
                    refunds: 0,
                    opt_outs: 0,
                },
                0.0,
            )
        });
        row.calls += 1;
        *sum += c.score;
        row.min_score = row.min_score.min(c.score);
        row.max_score = row.max_score.max(c.score);
        row.auto_failed += u64::from(c.auto_failed);
        let has = |f: &str| u64::from(c.flags.iter().any(|x| x == f));
        row.complaints += has("complaint");
        row.refunds += has("refund");
        row.opt_outs += has("opt_out");
    }
    Ok(groups
        .into_values()
        .map(|(mut row, sum)| {
            row.avg_score = (sum / row.calls as f64 * 100.0).round() / 100.0;
            row.complaint_rate = rate(row.complaints, row.calls);
            row
        })
        .collect())
}

/// Complaint counts and rates per group (number, campaign, agent or day) over `[from, to]`.
pub async fn complaints_report(
    pool: &AnyPool,
    by: ReportBy,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Vec<ComplaintRow>, QaError> {
    let mut groups: BTreeMap<String, ComplaintRow> = BTreeMap::new();
    for c in scored_calls(pool, by, from, to).await? {
        let row = groups.entry(c.key.clone()).or_insert_with(|| ComplaintRow {
            key: c.key.clone(),
            calls: 0,
            complaints: 0,
            complaint_rate: 0.0,
            opt_outs: 0,
            legal_threats: 0,
        });
        let has = |f: &str| u64::from(c.flags.iter().any(|x| x == f));
        row.calls += 1;
        row.complaints += has("complaint");
        row.opt_outs += has("opt_out");
        row.legal_threats += has("legal_threat");
    }
    Ok(groups
        .into_values()
        .map(|mut row| {
            row.complaint_rate = rate(row.complaints, row.calls);
            row
        })
        .collect())
}

/// Rows as CSV with a header line named after the fields.
pub fn to_csv<T: Serialize>(rows: &[T]) -> Result<String, QaError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in rows {
        w.serialize(row).map_err(|e| QaError::Csv(e.to_string()))?;
    }
    let bytes = w.into_inner().map_err(|e| QaError::Csv(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| QaError::Csv(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_header_and_rows() {
        let rows = vec![ComplaintRow {
            key: "+8613800138000".into(),
            calls: 4,
            complaints: 1,
            complaint_rate: rate(1, 4),
            opt_outs: 0,
            legal_threats: 0,
        }];
        let csv = to_csv(&rows).unwrap();
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some("key,calls,complaints,complaint_rate,opt_outs,legal_threats")
        );
        assert_eq!(lines.next(), Some("+8613800138000,4,1,0.25,0,0"));
        assert_eq!(lines.next(), None);
        // No rows: no header either (the CLI prints nothing).
        assert_eq!(to_csv::<ComplaintRow>(&[]).unwrap(), "");
    }

    #[test]
    fn ranges_and_grouping_names() {
        let (f, t) = range(Some("2024-05-01"), Some("2024-05-01")).unwrap();
        assert_eq!(t - f, 86_400_000);
        let (_, t2) = range(None, Some("2024-05-01T12:00:00Z")).unwrap();
        assert_eq!(t2 - f, 12 * 3_600_000);
        assert!(matches!(
            range(Some("yesterday"), None),
            Err(QaError::Timestamp { .. })
        ));
        assert_eq!("agent".parse::<ReportBy>(), Ok(ReportBy::Agent));
        assert!("week".parse::<ReportBy>().is_err());
    }
}
