//! Structured filters of a request (dates, campaign, agent, ..., QA score, flags) as
//! tantivy queries that narrow the match set without changing relevance scores.

use std::ops::Bound;

use chrono::{DateTime, NaiveDate, Utc};
use tantivy::query::{ConstScoreQuery, Query, RangeQuery, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::Term;

use crate::document::parse_rfc3339;
use crate::error::SearchError;
use crate::request::SearchRequest;
use crate::schema::Fields;

/// Which end of a date range a value bounds.
#[derive(Clone, Copy, PartialEq)]
enum End {
    From,
    To,
}

/// Parses a `from`/`to` value into an inclusive bound in seconds since the epoch.
/// A bare date means the start of that day (from) or its last second (to), in UTC.
fn parse_bound(name: &'static str, value: &str, end: End) -> Result<i64, SearchError> {
    let bad = |reason: String| SearchError::BadFilter {
        name,
        value: value.to_string(),
        reason,
    };
    let v = value.trim();
    if let Ok(day) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let midnight = day
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp())
            .ok_or_else(|| bad("date out of range".into()))?;
        return Ok(match end {
            End::From => midnight,
            End::To => midnight + 86_399,
        });
    }
    parse_rfc3339(v)
        .map(|t: DateTime<Utc>| t.timestamp())
        .map_err(|e| bad(format!("expected YYYY-MM-DD or RFC 3339 ({e})")))
}

fn term_filter(field: Field, value: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, value),
        IndexRecordOption::Basic,
    ))
}

/// All filters of `req`, each wrapped to score 0 so they never change the ranking.
pub fn build(req: &SearchRequest, f: &Fields) -> Result<Vec<Box<dyn Query>>, SearchError> {
    let mut out: Vec<Box<dyn Query>> = Vec::new();
    let from = req
        .from
        .as_deref()
        .map(|v| parse_bound("from", v, End::From))
        .transpose()?;
    let to = req
        .to
        .as_deref()
        .map(|v| parse_bound("to", v, End::To))
        .transpose()?;
    if from.is_some() || to.is_some() {
        let bound = |secs: Option<i64>| match secs {
            Some(s) => Bound::Included(Term::from_field_date(
                f.started_at,
                tantivy::DateTime::from_timestamp_secs(s),
            )),
            None => Bound::Unbounded,
        };
        out.push(Box::new(RangeQuery::new(bound(from), bound(to))));
    }
    let keywords = [
        (f.campaign, &req.campaign),
        (f.agent, &req.agent),
        (f.customer, &req.customer),
        (f.language, &req.language),
        (f.status, &req.status),
    ];
    for (field, value) in keywords {
        if let Some(v) = value {
            out.push(term_filter(field, v));
        }
    }
    for flag in &req.flags {
        out.push(term_filter(f.flags, flag));
    }
    for (name, v) in [("min_score", req.min_score), ("max_score", req.max_score)] {
        if v.is_some_and(|v| !v.is_finite()) {
            return Err(SearchError::BadFilter {
                name,
                value: format!("{v:?}"),
                reason: "not a finite number".into(),
            });
        }
    }
    if req.min_score.is_some() || req.max_score.is_some() {
        let bound = |v: Option<f64>| match v {
            Some(v) => Bound::Included(Term::from_field_f64(f.qa_score, v)),
            None => Bound::Unbounded,
        };
        out.push(Box::new(RangeQuery::new(
            bound(req.min_score),
            bound(req.max_score),
        )));
    }
    Ok(out
        .into_iter()
        .map(|q| Box::new(ConstScoreQuery::new(q, 0.0)) as Box<dyn Query>)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_dates_cover_the_whole_day() {
        let from = parse_bound("from", "2024-03-05", End::From).unwrap_or_default();
        let to = parse_bound("to", "2024-03-05", End::To).unwrap_or_default();
        assert_eq!(from, 1_709_596_800);
        assert_eq!(to - from, 86_399);
    }

    #[test]
    fn rfc3339_with_offset_is_converted_to_utc() {
        let t = parse_bound("from", "2024-03-05T08:00:00+08:00", End::From);
        assert_eq!(t.ok(), Some(1_709_596_800));
    }

    #[test]
    fn malformed_dates_are_user_errors() {
        let err = parse_bound("from", "yesterday", End::From);
        assert!(matches!(
            err,
            Err(SearchError::BadFilter { name: "from", .. })
        ));
        assert!(err.is_err_and(|e| e.is_user_error()));
    }
}
