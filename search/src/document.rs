//! What the indexing stage hands the index for one call, and its tantivy document.

use callqa_ingest::text::normalize_zh;
use callqa_ingest::transcript::{CallMeta, Segment, Transcript};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use tantivy::TantivyDocument;

use crate::error::SearchError;
use crate::schema::Fields;

/// One call as the index sees it: metadata, transcript and the QA outcome so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallDoc {
    pub meta: CallMeta,
    pub transcript: Transcript,
    /// The call's pipeline status (`done`, `failed`, ...), filterable.
    pub status: String,
    /// QA score, once the call has been scored.
    pub qa_score: Option<f64>,
    /// QA flags (`complaint`, `refund`, `opt_out`, ...).
    pub flags: Vec<String>,
}

/// Parses an RFC 3339 timestamp into UTC.
pub(crate) fn parse_rfc3339(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc))
}

/// Formats a stored timestamp back to RFC 3339 UTC (second precision, `Z`).
pub(crate) fn format_rfc3339(t: tantivy::DateTime) -> String {
    DateTime::<Utc>::from_timestamp(t.into_timestamp_secs(), 0)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

impl CallDoc {
    /// Builds the tantivy document. Segment text is normalised (simplified Chinese,
    /// half-width ASCII) before it is stored and indexed, so snippets and matches agree.
    pub(crate) fn to_document(&self, f: &Fields) -> Result<TantivyDocument, SearchError> {
        let call_id = &self.meta.call_id;
        let bad = |reason: String| SearchError::BadDocument {
            call_id: call_id.clone(),
            reason,
        };
        if call_id.is_empty() {
            return Err(bad("empty call id".into()));
        }
        let started = parse_rfc3339(&self.meta.started_at)
            .map_err(|e| bad(format!("started_at {:?}: {e}", self.meta.started_at)))?;

        let mut doc = TantivyDocument::default();
        doc.add_text(f.call_id, call_id);
        let optional = [
            (f.campaign, &self.meta.campaign),
            (f.agent, &self.meta.agent),
            (f.customer, &self.meta.customer),
        ];
        for (field, value) in optional {
            if let Some(v) = value {
                doc.add_text(field, v);
            }
        }
        if let Some(lang) = self
            .meta
            .language
            .as_ref()
            .or(self.transcript.language.as_ref())
        {
            doc.add_text(f.language, lang);
        }
        doc.add_text(f.status, &self.status);
        doc.add_date(
            f.started_at,
            tantivy::DateTime::from_timestamp_secs(started.timestamp()),
        );
        doc.add_text(f.day, started.format("%Y-%m-%d").to_string());
        if let Some(score) = self.qa_score {
            doc.add_f64(f.qa_score, score);
        }
        for flag in &self.flags {
            doc.add_text(f.flags, flag);
        }

        let mut stored = Vec::with_capacity(self.transcript.segments.len());
        for seg in &self.transcript.segments {
            let text = normalize_zh(&seg.text);
            // One value per segment: tantivy leaves a position gap between values, so a
            // phrase never matches across two segments.
            doc.add_text(f.text_field(seg.speaker), &text);
            stored.push(Segment {
                text,
                ..seg.clone()
            });
        }
        let json = serde_json::to_string(&stored).map_err(|e| bad(e.to_string()))?;
        doc.add_text(f.segments, json);
        Ok(doc)
    }
}
