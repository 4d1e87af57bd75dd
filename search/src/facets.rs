//! Facet counts (matching calls per campaign, agent and day) via tantivy's terms
//! aggregation over the keyword fast fields, computed in the same pass as the hits.

use serde_json::{json, Value};
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::agg_result::AggregationResults;
use tantivy::aggregation::{AggregationCollector, AggregationLimitsGuard};

use crate::request::{FacetCount, Facets};

/// Most frequent campaigns/agents reported.
const TOP_VALUES: u32 = 50;
/// Most recent days reported.
const DAYS: u32 = 400;

/// The aggregation collector for the three facets.
pub fn collector() -> AggregationCollector {
    let request = json!({
        "campaign": { "terms": { "field": "campaign", "size": TOP_VALUES } },
        "agent": { "terms": { "field": "agent", "size": TOP_VALUES } },
        "day": { "terms": { "field": "day", "size": DAYS, "order": { "_key": "desc" } } },
    });
    // The request is a literal built above; a failure here is a programming error that
    // the unit tests catch, so fall back to no facets rather than failing searches.
    let aggs: Aggregations = serde_json::from_value(request).unwrap_or_default();
    AggregationCollector::from_aggs(aggs, AggregationLimitsGuard::default())
}

/// Reads the buckets out of the aggregation result.
pub fn from_results(results: &AggregationResults) -> Facets {
    let value = serde_json::to_value(results).unwrap_or(Value::Null);
    let buckets = |name: &str| -> Vec<FacetCount> {
        value[name]["buckets"]
            .as_array()
            .map(|buckets| {
                buckets
                    .iter()
                    .filter_map(|b| {
                        let value = match &b["key"] {
                            Value::String(s) => s.clone(),
                            Value::Null => return None,
                            other => other.to_string(),
                        };
                        Some(FacetCount {
                            value,
                            count: b["doc_count"].as_u64()?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut day = buckets("day");
    day.reverse();
    Facets {
        campaign: buckets("campaign"),
        agent: buckets("agent"),
        day,
    }
}
