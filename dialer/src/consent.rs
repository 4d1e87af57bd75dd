//! Consent records for marketing calls (number, scope, proof, granted and expiry times) with
//! CSV import. Records are kept at least three years, so nothing here ever deletes one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{AnyPool, Row};

use crate::campaign::CampaignError;
use crate::number;

const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS consents (
        number TEXT NOT NULL,
        scope TEXT NOT NULL,
        proof TEXT NOT NULL,
        granted_at BIGINT NOT NULL,
        expires_at BIGINT,
        recorded_at BIGINT NOT NULL,
        PRIMARY KEY (number, scope, granted_at))"];

pub(crate) async fn migrate(pool: &AnyPool) -> Result<(), CampaignError> {
    for stmt in SCHEMA {
        sqlx::query(stmt)
            .execute(pool)
            .await
            .map_err(|source| CampaignError::Db {
                op: "create consent table",
                source,
            })?;
    }
    Ok(())
}

/// One consent: the callee agreed to calls of `scope`, shown by `proof` (a recording key, a
/// signed form id, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    pub number: String,
    pub scope: String,
    pub proof: String,
    pub granted_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Rows a CSV import took and the lines it could not use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConsentImport {
    pub imported: u64,
    pub errors: Vec<String>,
}

/// The consent records on the shared pool.
#[derive(Debug, Clone)]
pub struct Consents {
    pool: AnyPool,
}

fn db(op: &'static str) -> impl FnOnce(sqlx::Error) -> CampaignError {
    move |source| CampaignError::Db { op, source }
}

impl Consents {
    pub async fn open(pool: AnyPool) -> Result<Self, CampaignError> {
        migrate(&pool).await?;
        Ok(Self { pool })
    }

    /// Adds a record; the number is normalised to E.164. A repeat of the same grant is a no-op.
    pub async fn add(&self, r: &ConsentRecord, now: DateTime<Utc>) -> Result<(), CampaignError> {
        let number = number::normalize(&r.number).map_err(|e| CampaignError::Invalid {
            name: "consent".into(),
            reason: e.to_string(),
        })?;
        sqlx::query(
            "INSERT INTO consents (number, scope, proof, granted_at, expires_at, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (number, scope, granted_at) DO NOTHING",
        )
        .bind(number)
        .bind(&r.scope)
        .bind(&r.proof)
        .bind(r.granted_at.timestamp_millis())
        .bind(r.expires_at.map(|t| t.timestamp_millis()))
        .bind(now.timestamp_millis())
        .execute(&self.pool)
        .await
        .map_err(db("store consent"))?;
        Ok(())
    }

    /// Whether a record granted by `now` and not expired covers `scope` for the E.164 number.
    pub async fn has_consent(
        &self,
        number: &str,
        scope: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, CampaignError> {
        let now = now.timestamp_millis();
        let row = sqlx::query(
            "SELECT COUNT(*) FROM consents WHERE number = $1 AND scope = $2 AND granted_at <= $3
                 AND (expires_at IS NULL OR expires_at > $4)",
        )
        .bind(number)
        .bind(scope)
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(db("look up consent"))?;
        let n: i64 = row.try_get(0).map_err(db("look up consent"))?;
        Ok(n > 0)
    }

    /// Imports `number,scope,proof,granted_at[,expires_at]` rows (RFC 3339 times); a header
    /// row starting with `number` is skipped. Bad rows are reported, good ones stored.
    pub async fn import_csv<R: std::io::Read>(
        &self,
        reader: R,
        now: DateTime<Utc>,
    ) -> Result<ConsentImport, CampaignError> {
        let mut rdr = crate::campaign::csv_reader(reader);
        let mut report = ConsentImport::default();
        for (i, rec) in rdr.records().enumerate() {
            let line = i + 1;
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    report.errors.push(format!("line {line}: {e}"));
                    continue;
                }
            };
            let cell = |k: usize| rec.get(k).unwrap_or("").to_string();
            if i == 0 && cell(0).eq_ignore_ascii_case("number") {
                continue;
            }
            match parse_row(&cell(0), &cell(1), &cell(2), &cell(3), &cell(4)) {
                Ok(r) => match self.add(&r, now).await {
                    Ok(()) => report.imported += 1,
                    Err(CampaignError::Invalid { reason, .. }) => {
                        report.errors.push(format!("line {line}: {reason}"))
                    }
                    Err(e) => return Err(e),
                },
                Err(reason) => report.errors.push(format!("line {line}: {reason}")),
            }
        }
        Ok(report)
    }
}

fn parse_row(
    number: &str,
    scope: &str,
    proof: &str,
    granted: &str,
    expires: &str,
) -> Result<ConsentRecord, String> {
    if scope.is_empty() || proof.is_empty() {
        return Err("scope and proof are required".into());
    }
    let time = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("time {s:?}: {e} (use RFC 3339, e.g. 2024-05-01T00:00:00Z)"))
    };
    Ok(ConsentRecord {
        number: number.to_string(),
        scope: scope.to_string(),
        proof: proof.to_string(),
        granted_at: time(granted)?,
        expires_at: if expires.is_empty() {
            None
        } else {
            Some(time(expires)?)
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_or_explain() {
        let r = parse_row(
            "+8613800138000",
            "marketing",
            "rec/1.wav",
            "2024-01-01T00:00:00Z",
            "",
        )
        .unwrap();
        assert_eq!(r.expires_at, None);
        assert!(parse_row("+86", "marketing", "x", "yesterday", "").is_err());
        assert!(parse_row("+86", "", "x", "2024-01-01T00:00:00Z", "").is_err());
        let e = parse_row("+86", "m", "x", "2024-01-01T00:00:00Z", "2025-13-01").unwrap_err();
        assert!(e.contains("RFC 3339"), "{e}");
    }
}
