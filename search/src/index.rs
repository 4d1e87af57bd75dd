//! The search index: open/create it, run searches (any number of threads), and the single
//! writer that upserts calls and commits.

use std::path::{Path, PathBuf};

use callqa_ingest::transcript::Segment;
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, Occur, Query};
use tantivy::schema::Value;
use tantivy::{DocAddress, Index, IndexReader, Order, ReloadPolicy, TantivyDocument, Term};

use crate::document::{format_rfc3339, CallDoc};
use crate::error::SearchError;
use crate::request::{SearchHit, SearchRequest, SearchResponse, MAX_LIMIT};
use crate::schema::Fields;
use crate::tokenizer::{analyzer, Mode, INDEX_TOKENIZER};
use crate::{facets, filters, query, snippet};

/// Snippets per hit.
const SNIPPETS_PER_HIT: usize = 3;

/// Writer defaults sized for a 2-core machine: tantivy splits the heap between threads
/// (at least 15 MB each); more heap means fewer, larger segments per commit.
pub const DEFAULT_WRITER_THREADS: usize = 2;
pub const DEFAULT_WRITER_HEAP_BYTES: usize = 256 * 1024 * 1024;

/// A handle on the index. Cheap to share (`Arc` it); `search` takes `&self`.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// Where the index lives, for error messages (`None`: in RAM).
    dir: Option<PathBuf>,
}

impl SearchIndex {
    /// Opens the index in `dir`, creating the directory and an empty index if missing.
    pub fn open(dir: &Path) -> Result<Self, SearchError> {
        std::fs::create_dir_all(dir).map_err(|source| SearchError::CreateDir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let (schema, fields) = Fields::build();
        let directory = MmapDirectory::open(dir).map_err(|e| SearchError::Tantivy {
            operation: "open directory",
            source: e.into(),
        })?;
        let index = Index::open_or_create(directory, schema).map_err(|e| match e {
            tantivy::TantivyError::SchemaError(reason) => SearchError::SchemaMismatch {
                dir: dir.to_path_buf(),
                reason,
            },
            source => SearchError::Tantivy {
                operation: "open",
                source,
            },
        })?;
        Self::from_index(index, fields, Some(dir.to_path_buf()))
    }

    /// A fresh index in memory, for tests.
    pub fn open_in_ram() -> Result<Self, SearchError> {
        let (schema, fields) = Fields::build();
        Self::from_index(Index::create_in_ram(schema), fields, None)
    }

    fn from_index(index: Index, fields: Fields, dir: Option<PathBuf>) -> Result<Self, SearchError> {
        index
            .tokenizers()
            .register(INDEX_TOKENIZER, analyzer(Mode::Index));
        // OnCommitWithDelay watches meta.json, so a writer in another process (the worker)
        // becomes visible here within a fraction of a second of its commit.
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()
            .map_err(SearchError::tantivy("open reader"))?;
        Ok(SearchIndex {
            index,
            reader,
            fields,
            dir,
        })
    }

    /// Number of calls in the index as of the last reload.
    pub fn num_calls(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The single writer, with the default thread count and memory budget.
    pub fn writer(&self) -> Result<IndexWriter, SearchError> {
        self.writer_with(DEFAULT_WRITER_THREADS, DEFAULT_WRITER_HEAP_BYTES)
    }

    /// The single writer with `threads` indexing threads sharing `heap_bytes` of memory.
    /// Fails with [`SearchError::WriterLocked`] while another writer exists.
    pub fn writer_with(
        &self,
        threads: usize,
        heap_bytes: usize,
    ) -> Result<IndexWriter, SearchError> {
        let writer = self
            .index
            .writer_with_num_threads(threads.max(1), heap_bytes)
            .map_err(|e| match e {
                tantivy::TantivyError::LockFailure(..) => SearchError::WriterLocked {
                    dir: self
                        .dir
                        .as_ref()
                        .map_or_else(|| "(memory)".to_string(), |d| d.display().to_string()),
                },
                source => SearchError::Tantivy {
                    operation: "open writer",
                    source,
                },
            })?;
        Ok(IndexWriter {
            writer,
            reader: self.reader.clone(),
            fields: self.fields,
        })
    }

    /// Runs a search: parse, filter, rank, count, facet, and build snippets for one page.
    pub fn search(&self, req: &SearchRequest) -> Result<SearchResponse, SearchError> {
        let text_fields = self.fields.text_fields(req.speaker);
        let parsed = query::parse(&req.query, &text_fields, &mut analyzer(Mode::Query))?;
        let filters = filters::build(req, &self.fields)?;
        let ranked = parsed.query.is_some();
        let query = combine(parsed.query, filters);

        let searcher = self.reader.searcher();
        let limit = req.limit.min(MAX_LIMIT);
        // TopDocs needs a limit of at least 1; a `limit: 0` request only wants counts.
        let top = TopDocs::with_limit(limit.max(1)).and_offset(req.offset);
        let agg = req.facets.then(facets::collector);
        let (mut page, total, agg): (Vec<(f32, DocAddress)>, usize, _) = if ranked {
            searcher
                .search(&query, &(top, Count, agg))
                .map_err(SearchError::tantivy("search"))?
        } else {
            // No words to rank by: newest calls first.
            let by_time = top.order_by_fast_field::<tantivy::DateTime>("started_at", Order::Desc);
            let (docs, total, agg) = searcher
                .search(&query, &(by_time, Count, agg))
                .map_err(SearchError::tantivy("search"))?;
            (
                docs.into_iter().map(|(_, a)| (0.0, a)).collect(),
                total,
                agg,
            )
        };
        page.truncate(limit);

        let mut highlight_analyzer = analyzer(Mode::Index);
        let mut hits = Vec::with_capacity(page.len());
        for (score, address) in page {
            let doc: TantivyDocument = searcher
                .doc(address)
                .map_err(SearchError::tantivy("load stored call"))?;
            let segments: Vec<Segment> = self
                .str_value(&doc, self.fields.segments)
                .and_then(|json| serde_json::from_str(&json).ok())
                .unwrap_or_default();
            let snippets = snippet::build(
                &segments,
                req.speaker,
                &parsed.highlight,
                &mut highlight_analyzer,
                SNIPPETS_PER_HIT,
            );
            hits.push(self.hit(&doc, score, snippets));
        }
        Ok(SearchResponse {
            total,
            hits,
            facets: agg.map(|a| facets::from_results(&a)).unwrap_or_default(),
        })
    }

    fn str_value(&self, doc: &TantivyDocument, field: tantivy::schema::Field) -> Option<String> {
        doc.get_first(field)
            .and_then(|v| v.as_str().map(str::to_string))
    }

    fn hit(&self, doc: &TantivyDocument, score: f32, snippets: Vec<snippet::Snippet>) -> SearchHit {
        let f = &self.fields;
        SearchHit {
            call_id: self.str_value(doc, f.call_id).unwrap_or_default(),
            score,
            snippets,
            campaign: self.str_value(doc, f.campaign),
            agent: self.str_value(doc, f.agent),
            customer: self.str_value(doc, f.customer),
            started_at: doc
                .get_first(f.started_at)
                .and_then(|v| v.as_datetime())
                .map(format_rfc3339)
                .unwrap_or_default(),
            language: self.str_value(doc, f.language),
            status: self.str_value(doc, f.status).unwrap_or_default(),
            qa_score: doc.get_first(f.qa_score).and_then(|v| v.as_f64()),
            flags: doc
                .get_all(f.flags)
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        }
    }
}

/// The text query (or "everything") narrowed by the filters.
fn combine(text: Option<Box<dyn Query>>, filters: Vec<Box<dyn Query>>) -> Box<dyn Query> {
    let text = text.unwrap_or_else(|| Box::new(tantivy::query::AllQuery));
    if filters.is_empty() {
        return text;
    }
    let mut clauses = vec![(Occur::Must, text)];
    clauses.extend(filters.into_iter().map(|q| (Occur::Must, q)));
    Box::new(BooleanQuery::new(clauses))
}

/// The one writer of the index. Upserts and deletes are buffered until [`commit`], which
/// makes them durable (fsync) and visible to searches in this process immediately and to
/// other processes' readers within about a second.
///
/// [`commit`]: IndexWriter::commit
pub struct IndexWriter {
    writer: tantivy::IndexWriter<TantivyDocument>,
    reader: IndexReader,
    fields: Fields,
}

impl IndexWriter {
    /// Adds `doc`, replacing any document with the same call id (so redelivery and
    /// re-indexing never duplicate a call).
    pub fn upsert(&mut self, doc: &CallDoc) -> Result<(), SearchError> {
        let document = doc.to_document(&self.fields)?;
        self.writer.delete_term(Term::from_field_text(
            self.fields.call_id,
            &doc.meta.call_id,
        ));
        self.writer
            .add_document(document)
            .map_err(SearchError::tantivy("add document"))?;
        Ok(())
    }

    /// Removes the call `call_id` (no-op when absent).
    pub fn delete(&mut self, call_id: &str) {
        self.writer
            .delete_term(Term::from_field_text(self.fields.call_id, call_id));
    }

    /// Removes every call; with a commit after re-adding them, rebuilds the index.
    pub fn delete_all(&mut self) -> Result<(), SearchError> {
        self.writer
            .delete_all_documents()
            .map_err(SearchError::tantivy("delete all"))?;
        Ok(())
    }

    /// Makes every change so far durable and searchable.
    pub fn commit(&mut self) -> Result<(), SearchError> {
        self.writer
            .commit()
            .map_err(SearchError::tantivy("commit"))?;
        self.reader
            .reload()
            .map_err(SearchError::tantivy("reload reader"))?;
        Ok(())
    }

    /// Discards the changes since the last commit.
    pub fn rollback(&mut self) -> Result<(), SearchError> {
        self.writer
            .rollback()
            .map_err(SearchError::tantivy("rollback"))?;
        Ok(())
    }

    /// Waits for background segment merges, then releases the writer lock.
    pub fn finish(self) -> Result<(), SearchError> {
        self.writer
            .wait_merging_threads()
            .map_err(SearchError::tantivy("wait for merges"))
    }
}
