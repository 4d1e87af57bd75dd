//! callqa-search: keyword search over call transcripts — a tantivy index with one document
//! per call, jieba segmentation for Chinese and stemming for English, per-speaker fields,
//! highlighted snippets with timestamps, filters and facets.
//!
//! ```no_run
//! # fn demo(doc: callqa_search::CallDoc) -> Result<(), callqa_search::SearchError> {
//! use callqa_search::{SearchIndex, SearchRequest};
//! let index = SearchIndex::open(std::path::Path::new("callqa-data/index"))?;
//! let mut writer = index.writer()?;
//! writer.upsert(&doc)?;
//! writer.commit()?;
//! let found = index.search(&SearchRequest::new("退款 OR refund"))?;
//! println!("{}", serde_json::to_string(&found).unwrap_or_default());
//! # Ok(()) }
//! ```

pub mod bench;
pub mod document;
pub mod error;
pub mod facets;
pub mod filters;
pub mod index;
pub mod query;
pub mod request;
pub mod schema;
pub mod snippet;
pub mod tokenizer;

pub use document::CallDoc;
pub use error::SearchError;
pub use index::{IndexWriter, SearchIndex};
pub use request::{FacetCount, Facets, SearchHit, SearchRequest, SearchResponse};
pub use snippet::Snippet;

#[cfg(test)]
mod index_tests;
