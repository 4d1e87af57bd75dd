//! The index schema: one tantivy document per call, text per speaker, filters as fast fields.
//!
//! Speaker fields: `agent_text` and `customer_text` hold the segments of a stereo recording's
//! two channels; a mono recording's segments (speaker `mixed`) go to `mixed_text` only, so
//! `--speaker agent|customer` never claims a mixed segment was said by one party. Searches
//! without a speaker restriction cover all three.

use callqa_ingest::transcript::Speaker;
use tantivy::schema::{
    DateOptions, DateTimePrecision, Field, IndexRecordOption, NumericOptions, Schema,
    TextFieldIndexing, TextOptions, FAST, STORED, STRING,
};

use crate::tokenizer::INDEX_TOKENIZER;

/// Handles to every field of the schema.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// Unique key; upserts delete by it.
    pub call_id: Field,
    pub campaign: Field,
    pub agent: Field,
    pub customer: Field,
    pub language: Field,
    pub status: Field,
    /// Start of the call, second precision, for range filters and sorting.
    pub started_at: Field,
    /// `YYYY-MM-DD` (UTC) of `started_at`, for the day facet.
    pub day: Field,
    pub qa_score: Field,
    /// QA flags (`complaint`, `refund`, `opt_out`, ...), multi-valued.
    pub flags: Field,
    pub agent_text: Field,
    pub customer_text: Field,
    pub mixed_text: Field,
    /// JSON array of the call's segments (normalised text), to build snippets.
    pub segments: Field,
}

impl Fields {
    /// Builds the schema and returns it with its field handles.
    pub fn build() -> (Schema, Fields) {
        Self::build_with_tokenizer(INDEX_TOKENIZER)
    }

    /// The same schema with another tokenizer on the text fields (the benchmark compares
    /// against tantivy's `default`).
    pub fn build_with_tokenizer(tokenizer: &str) -> (Schema, Fields) {
        let mut b = Schema::builder();
        let keyword = STRING | FAST | STORED;
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let fields = Fields {
            call_id: b.add_text_field("call_id", STRING | STORED),
            campaign: b.add_text_field("campaign", keyword.clone()),
            agent: b.add_text_field("agent", keyword.clone()),
            customer: b.add_text_field("customer", keyword.clone()),
            language: b.add_text_field("language", keyword.clone()),
            status: b.add_text_field("status", keyword.clone()),
            started_at: b.add_date_field(
                "started_at",
                DateOptions::default()
                    .set_indexed()
                    .set_fast()
                    .set_stored()
                    .set_precision(DateTimePrecision::Seconds),
            ),
            day: b.add_text_field("day", STRING | FAST),
            qa_score: b.add_f64_field(
                "qa_score",
                NumericOptions::default()
                    .set_indexed()
                    .set_fast()
                    .set_stored(),
            ),
            flags: b.add_text_field("flags", keyword),
            agent_text: b.add_text_field("agent_text", text.clone()),
            customer_text: b.add_text_field("customer_text", text.clone()),
            mixed_text: b.add_text_field("mixed_text", text),
            segments: b.add_text_field("segments", STORED),
        };
        (b.build(), fields)
    }

    /// The text field a speaker's segments are indexed in.
    pub fn text_field(&self, speaker: Speaker) -> Field {
        match speaker {
            Speaker::Agent => self.agent_text,
            Speaker::Customer => self.customer_text,
            Speaker::Mixed => self.mixed_text,
        }
    }

    /// The text fields a search restricted to `speaker` (or to nobody) looks at.
    pub fn text_fields(&self, speaker: Option<Speaker>) -> Vec<Field> {
        match speaker {
            Some(s) => vec![self.text_field(s)],
            None => vec![self.agent_text, self.customer_text, self.mixed_text],
        }
    }
}
