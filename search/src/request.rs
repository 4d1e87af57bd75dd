//! The search request and response types; the response serialises to the CLI/HTTP
//! contract shape `{"total", "hits": [{"call_id", "score", "snippets": [...]}], "facets"}`.

use callqa_ingest::transcript::Speaker;
use serde::{Deserialize, Serialize};

use crate::snippet::Snippet;

/// What to search for. Every filter is optional; an empty `query` matches every call
/// (newest first) so filters alone can browse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchRequest {
    /// Query text: words (ANDed), `"phrases"`, `OR`, `AND`, `-word`, `prefix*`, `( )`.
    pub query: String,
    /// Calls started at or after this: `YYYY-MM-DD` (UTC midnight) or RFC 3339.
    pub from: Option<String>,
    /// Calls started at or before this: `YYYY-MM-DD` (the whole day, UTC) or RFC 3339.
    pub to: Option<String>,
    pub campaign: Option<String>,
    pub agent: Option<String>,
    /// Customer number, E.164.
    pub customer: Option<String>,
    /// Match only words said by this speaker (`agent`/`customer` never match the `mixed`
    /// segments of mono recordings). No effect on an empty query.
    pub speaker: Option<Speaker>,
    pub language: Option<String>,
    pub status: Option<String>,
    /// Inclusive QA score bounds; calls not yet scored never match a score bound.
    pub min_score: Option<f64>,
    pub max_score: Option<f64>,
    /// Calls carrying every one of these QA flags.
    pub flags: Vec<String>,
    /// Hits per page (capped at [`MAX_LIMIT`]).
    pub limit: usize,
    pub offset: usize,
    /// Compute facet counts (campaign, agent, day) over all matching calls.
    pub facets: bool,
}

/// Upper bound on `limit`: each hit loads its stored transcript to build snippets.
pub const MAX_LIMIT: usize = 1000;

impl Default for SearchRequest {
    fn default() -> Self {
        SearchRequest {
            query: String::new(),
            from: None,
            to: None,
            campaign: None,
            agent: None,
            customer: None,
            speaker: None,
            language: None,
            status: None,
            min_score: None,
            max_score: None,
            flags: Vec::new(),
            limit: 20,
            offset: 0,
            facets: true,
        }
    }
}

impl SearchRequest {
    /// A request for `query` with every other setting at its default.
    pub fn new(query: impl Into<String>) -> Self {
        SearchRequest {
            query: query.into(),
            ..SearchRequest::default()
        }
    }
}

/// The answer: how many calls match, one page of hits, and facet counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResponse {
    pub total: usize,
    pub hits: Vec<SearchHit>,
    pub facets: Facets,
}

/// One matching call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    pub call_id: String,
    /// BM25 relevance (0 when the query was empty and hits are ordered by time).
    pub score: f32,
    /// Up to three matching segments, highlighted.
    pub snippets: Vec<Snippet>,
    pub campaign: Option<String>,
    pub agent: Option<String>,
    pub customer: Option<String>,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub language: Option<String>,
    pub status: String,
    pub qa_score: Option<f64>,
    pub flags: Vec<String>,
}

/// Counts of matching calls per value, most frequent first (`day`: in date order).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facets {
    pub campaign: Vec<FacetCount>,
    pub agent: Vec<FacetCount>,
    pub day: Vec<FacetCount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FacetCount {
    pub value: String,
    pub count: u64,
}
