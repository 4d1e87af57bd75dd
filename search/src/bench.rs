//! `callqa bench search`: indexes N synthetic calls, measures indexing throughput, index
//! size and query latency, and runs the same queries as `LIKE '%kw%'` on PostgreSQL and
//! with tantivy's default tokenizer, reporting ratios measured in the same run.

pub mod corpus;
mod postgres;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use tantivy::Index;

use crate::schema::Fields;
use crate::{SearchError, SearchIndex, SearchRequest};

/// What to run. `Default` is the full benchmark of the search issue.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Synthetic calls to generate and index.
    pub calls: usize,
    /// Timed runs per query kind on the index.
    pub queries_per_kind: usize,
    /// Timed runs per query kind on PostgreSQL (each is a full scan).
    pub pg_queries_per_kind: usize,
    pub seed: u64,
    /// Where to build the indexes (a temp dir under it; default: the system temp dir).
    pub work_dir: Option<PathBuf>,
    /// PostgreSQL to compare with; `None` skips the comparison.
    pub postgres_url: Option<String>,
    /// Also index with tantivy's default tokenizer to compare throughput.
    pub compare_default_tokenizer: bool,
    pub writer_threads: usize,
    pub writer_heap_bytes: usize,
    /// Commit after this many calls, as the pipeline's indexing stage batches.
    pub commit_every: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            calls: 1_000_000,
            queries_per_kind: 200,
            pg_queries_per_kind: 5,
            seed: 20240601,
            work_dir: None,
            postgres_url: Some("postgres://postgres@127.0.0.1:5432/test".into()),
            compare_default_tokenizer: true,
            writer_threads: 2,
            writer_heap_bytes: 512 * 1024 * 1024,
            commit_every: 100_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error("default-tokenizer index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("PostgreSQL comparison: {0} (pass --no-postgres to skip it)")]
    Postgres(#[from] sqlx::Error),
    #[error("benchmark work dir {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("benchmark task panicked: {0}")]
    Task(#[from] tokio::task::JoinError),
}

#[derive(Debug, Clone, Serialize)]
pub struct IndexFigures {
    pub tokenizer: String,
    pub seconds: f64,
    pub calls_per_sec: f64,
    /// Time waiting for segment merges after the last commit (not in `seconds`).
    pub merge_seconds: f64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueryFigures {
    pub kind: String,
    pub runs: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Mean number of matching calls.
    pub mean_total: f64,
}

/// Recall check: calls whose text contains the keyword vs calls the index returns.
#[derive(Debug, Clone, Serialize)]
pub struct KeywordCheck {
    pub query: String,
    pub containing: u64,
    pub found: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PgFigures {
    pub load_seconds: f64,
    pub table_bytes: i64,
    pub queries: Vec<QueryFigures>,
    /// PostgreSQL latency / index latency, per kind, at p50 and p99.
    pub speedup: Vec<Speedup>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Speedup {
    pub kind: String,
    pub p50: f64,
    pub p99: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub calls: usize,
    /// Estimated time spent generating the synthetic calls (included in indexing times).
    pub generate_seconds: f64,
    pub jieba: IndexFigures,
    pub default_tokenizer: Option<IndexFigures>,
    /// jieba calls/s divided by default-tokenizer calls/s (goal: >= 0.5).
    pub jieba_throughput_ratio: Option<f64>,
    /// One upsert + commit on the full index until a search sees it.
    pub commit_to_searchable_ms: f64,
    pub queries: Vec<QueryFigures>,
    pub recall: Vec<KeywordCheck>,
    pub postgres: Option<PgFigures>,
}

/// Query kinds and their query texts; `filtered` adds campaign + a 30-day range.
const KEYWORDS: &[&str] = &["退款", "投诉", "refund", "complaint"];
const COMMON_WORDS: &[&str] = &["银行", "delivery"];
const PHRASES: &[&str] = &["我要投诉", "stop calling"];

struct Run {
    kind: &'static str,
    text: String,
    like: String,
    filter: Option<(String, i64, i64)>,
}

fn workload(runs_per_kind: usize) -> Vec<Run> {
    let mut out = Vec::new();
    for j in 0..runs_per_kind {
        let kw = KEYWORDS[j % KEYWORDS.len()];
        out.push(Run {
            kind: "keyword",
            text: kw.into(),
            like: kw.into(),
            filter: None,
        });
        let common = COMMON_WORDS[j % COMMON_WORDS.len()];
        out.push(Run {
            kind: "common_word",
            text: common.into(),
            like: common.into(),
            filter: None,
        });
        let phrase = PHRASES[j % PHRASES.len()];
        out.push(Run {
            kind: "phrase",
            text: format!("\"{phrase}\""),
            like: phrase.into(),
            filter: None,
        });
        let from = corpus::FIRST_DAY_SECS + ((j as i64 * 7) % (corpus::DAYS - 31)) * 86_400;
        out.push(Run {
            kind: "filtered",
            text: kw.into(),
            like: kw.into(),
            filter: Some((
                corpus::campaign_name(j % corpus::CAMPAIGNS),
                from,
                from + 30 * 86_400 - 1,
            )),
        });
    }
    out
}

fn request(run: &Run) -> SearchRequest {
    let mut req = SearchRequest {
        limit: 10,
        ..SearchRequest::new(run.text.clone())
    };
    if let Some((campaign, from, to)) = &run.filter {
        let rfc = |s: i64| {
            chrono::DateTime::from_timestamp(s, 0)
                .map(|d| d.to_rfc3339())
                .unwrap_or_default()
        };
        req.campaign = Some(campaign.clone());
        req.from = Some(rfc(*from));
        req.to = Some(rfc(*to));
    }
    req
}

/// Runs the benchmark; progress goes to the log (stderr).
pub async fn run(opts: BenchOptions) -> Result<BenchReport, BenchError> {
    let base = opts.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = tempfile::Builder::new()
        .prefix("callqa-bench-")
        .tempdir_in(&base)
        .map_err(|source| BenchError::Io {
            path: base.clone(),
            source,
        })?;
    let jieba_dir = work.path().join("jieba");
    let default_dir = work.path().join("default");

    let o = opts.clone();
    let (generate_seconds, containing) =
        tokio::task::spawn_blocking(move || generation_cost(&o)).await?;
    tracing::info!(generate_seconds, "estimated corpus generation time");

    let o = opts.clone();
    let dir = jieba_dir.clone();
    let jieba = tokio::task::spawn_blocking(move || index_jieba(&dir, &o)).await??;
    tracing::info!(?jieba, "indexed with jieba");

    let default_tokenizer = if opts.compare_default_tokenizer {
        let o = opts.clone();
        let dir = default_dir.clone();
        let figures = tokio::task::spawn_blocking(move || index_default(&dir, &o)).await??;
        tracing::info!(?figures, "indexed with the default tokenizer");
        // Free the disk space before the query phase.
        let _ = std::fs::remove_dir_all(&default_dir);
        Some(figures)
    } else {
        None
    };
    let jieba_throughput_ratio = default_tokenizer
        .as_ref()
        .map(|d| jieba.calls_per_sec / d.calls_per_sec);

    let o = opts.clone();
    let dir = jieba_dir.clone();
    let (queries, recall, commit_to_searchable_ms) =
        tokio::task::spawn_blocking(move || query_index(&dir, &o, containing)).await??;
    tracing::info!(?queries, "queried the index");

    let postgres = match &opts.postgres_url {
        Some(url) => Some(compare_postgres(url, &opts, &queries).await?),
        None => None,
    };
    drop(work);
    Ok(BenchReport {
        calls: opts.calls,
        generate_seconds,
        jieba,
        default_tokenizer,
        jieba_throughput_ratio,
        commit_to_searchable_ms,
        queries,
        recall,
        postgres,
    })
}

/// Times generation on a sample (extrapolated) and counts, over the whole corpus, the
/// calls containing each keyword/phrase, the ground truth for the recall check.
fn generation_cost(opts: &BenchOptions) -> (f64, Vec<(String, u64)>) {
    let sample = opts.calls.min(20_000);
    let start = Instant::now();
    for i in 0..sample {
        std::hint::black_box(corpus::call(opts.seed, i));
    }
    let per_call = start.elapsed().as_secs_f64() / sample.max(1) as f64;
    let needles: Vec<&str> = KEYWORDS.iter().chain(PHRASES).copied().collect();
    let mut counts = vec![0u64; needles.len()];
    for i in 0..opts.calls {
        let text = corpus::call(opts.seed, i)
            .transcript
            .full_text()
            .to_lowercase();
        for (n, needle) in needles.iter().enumerate() {
            if text.contains(needle) {
                counts[n] += 1;
            }
        }
    }
    let truth = needles.iter().map(|s| s.to_string()).zip(counts).collect();
    (per_call * opts.calls as f64, truth)
}

fn index_jieba(dir: &Path, opts: &BenchOptions) -> Result<IndexFigures, BenchError> {
    let index = SearchIndex::open(dir)?;
    let mut writer = index.writer_with(opts.writer_threads, opts.writer_heap_bytes)?;
    let start = Instant::now();
    for i in 0..opts.calls {
        writer.upsert(&corpus::call(opts.seed, i))?;
        if (i + 1) % opts.commit_every.max(1) == 0 {
            writer.commit()?;
            tracing::info!(
                calls = i + 1,
                secs = start.elapsed().as_secs_f64(),
                "jieba index"
            );
        }
    }
    writer.commit()?;
    let seconds = start.elapsed().as_secs_f64();
    let merge_start = Instant::now();
    writer.finish()?;
    figures(
        "jieba",
        dir,
        opts.calls,
        seconds,
        merge_start.elapsed().as_secs_f64(),
    )
}

fn index_default(dir: &Path, opts: &BenchOptions) -> Result<IndexFigures, BenchError> {
    std::fs::create_dir_all(dir).map_err(|source| BenchError::Io {
        path: dir.into(),
        source,
    })?;
    let (schema, fields) = Fields::build_with_tokenizer("default");
    let index = Index::create_in_dir(dir, schema)?;
    let mut writer: tantivy::IndexWriter =
        index.writer_with_num_threads(opts.writer_threads.max(1), opts.writer_heap_bytes)?;
    let start = Instant::now();
    for i in 0..opts.calls {
        let call = corpus::call(opts.seed, i);
        writer.delete_term(tantivy::Term::from_field_text(
            fields.call_id,
            &call.meta.call_id,
        ));
        writer.add_document(call.to_document(&fields)?)?;
        if (i + 1) % opts.commit_every.max(1) == 0 {
            writer.commit()?;
        }
    }
    writer.commit()?;
    let seconds = start.elapsed().as_secs_f64();
    let merge_start = Instant::now();
    writer.wait_merging_threads()?;
    figures(
        "default",
        dir,
        opts.calls,
        seconds,
        merge_start.elapsed().as_secs_f64(),
    )
}

fn figures(
    tokenizer: &str,
    dir: &Path,
    calls: usize,
    seconds: f64,
    merge_seconds: f64,
) -> Result<IndexFigures, BenchError> {
    Ok(IndexFigures {
        tokenizer: tokenizer.into(),
        seconds,
        calls_per_sec: calls as f64 / seconds.max(1e-9),
        merge_seconds,
        bytes: dir_size(dir).map_err(|source| BenchError::Io {
            path: dir.into(),
            source,
        })?,
    })
}

fn dir_size(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

type QueryPhase = (Vec<QueryFigures>, Vec<KeywordCheck>, f64);

fn query_index(
    dir: &Path,
    opts: &BenchOptions,
    containing: Vec<(String, u64)>,
) -> Result<QueryPhase, BenchError> {
    let index = SearchIndex::open(dir)?;
    let runs = workload(opts.queries_per_kind);
    // Warm-up: every distinct query once (page cache, lazily loaded structures).
    for run in runs.iter().take(4 * KEYWORDS.len().max(PHRASES.len())) {
        index.search(&request(run))?;
    }
    let mut timings: Vec<(&'static str, f64, usize)> = Vec::with_capacity(runs.len());
    for run in &runs {
        let req = request(run);
        let start = Instant::now();
        let resp = index.search(&req)?;
        timings.push((run.kind, start.elapsed().as_secs_f64() * 1000.0, resp.total));
    }
    let mut recall = Vec::new();
    for (needle, count) in containing {
        let query = if needle.contains(' ') || PHRASES.contains(&needle.as_str()) {
            format!("\"{needle}\"")
        } else {
            needle
        };
        let found = index.search(&SearchRequest {
            limit: 1,
            facets: false,
            ..SearchRequest::new(query.clone())
        })?;
        recall.push(KeywordCheck {
            query,
            containing: count,
            found: found.total as u64,
        });
    }
    // Bounded delay until searchable: one more call, committed, then found.
    let mut writer = index.writer_with(opts.writer_threads, 64 * 1024 * 1024)?;
    let mut probe = corpus::call(opts.seed, opts.calls + 1);
    probe.meta.call_id = "bench-probe".into();
    probe.transcript.segments[0].text = "zqxjprobe".into();
    let start = Instant::now();
    writer.upsert(&probe)?;
    writer.commit()?;
    let found = index.search(&SearchRequest::new("zqxjprobe"))?.total;
    let commit_ms = start.elapsed().as_secs_f64() * 1000.0;
    if found != 1 {
        tracing::warn!(found, "probe call not searchable right after commit");
    }
    writer.finish()?;
    Ok((summarize(&timings), recall, commit_ms))
}

fn summarize(timings: &[(&'static str, f64, usize)]) -> Vec<QueryFigures> {
    let mut kinds: Vec<&str> = timings.iter().map(|t| t.0).collect();
    kinds.dedup();
    kinds.sort();
    kinds.dedup();
    kinds
        .into_iter()
        .map(|kind| {
            let mut ms: Vec<f64> = timings
                .iter()
                .filter(|t| t.0 == kind)
                .map(|t| t.1)
                .collect();
            let totals: Vec<usize> = timings
                .iter()
                .filter(|t| t.0 == kind)
                .map(|t| t.2)
                .collect();
            ms.sort_by(f64::total_cmp);
            QueryFigures {
                kind: kind.into(),
                runs: ms.len(),
                p50_ms: percentile(&ms, 0.50),
                p99_ms: percentile(&ms, 0.99),
                max_ms: ms.last().copied().unwrap_or_default(),
                mean_total: totals.iter().sum::<usize>() as f64 / totals.len().max(1) as f64,
            }
        })
        .collect()
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn compare_postgres(
    url: &str,
    opts: &BenchOptions,
    index_figures: &[QueryFigures],
) -> Result<PgFigures, BenchError> {
    let mut pg = postgres::PgPeer::create(url).await?;
    let start = Instant::now();
    let (seed, calls) = (opts.seed, opts.calls);
    pg.load((0..calls).map(|i| corpus::call(seed, i))).await?;
    let load_seconds = start.elapsed().as_secs_f64();
    tracing::info!(load_seconds, "loaded PostgreSQL");
    let table_bytes = pg.table_bytes().await?;
    let mut timings = Vec::new();
    for run in workload(opts.pg_queries_per_kind) {
        let filter = run.filter.as_ref().map(|(c, f, t)| (c.as_str(), *f, *t));
        let (count, ms) = pg.count_like(&run.like, filter).await?;
        timings.push((run.kind, ms, usize::try_from(count).unwrap_or_default()));
    }
    pg.drop_table().await?;
    let queries = summarize(&timings);
    let speedup = queries
        .iter()
        .filter_map(|pgq| {
            let idx = index_figures.iter().find(|q| q.kind == pgq.kind)?;
            Some(Speedup {
                kind: pgq.kind.clone(),
                p50: pgq.p50_ms / idx.p50_ms.max(1e-6),
                p99: pgq.p99_ms / idx.p99_ms.max(1e-6),
            })
        })
        .collect();
    Ok(PgFigures {
        load_seconds,
        table_bytes,
        queries,
        speedup,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[3.0], 0.99), 3.0);
    }

    #[tokio::test]
    async fn small_run_finds_every_planted_keyword() {
        let opts = BenchOptions {
            calls: 600,
            queries_per_kind: 4,
            postgres_url: None,
            compare_default_tokenizer: true,
            writer_threads: 1,
            writer_heap_bytes: 30_000_000,
            commit_every: 250,
            ..BenchOptions::default()
        };
        let report = run(opts).await.expect("bench");
        assert!(report.jieba.bytes > 0);
        assert!(report.default_tokenizer.is_some());
        for check in &report.recall {
            assert!(check.containing > 0, "{check:?}");
            assert_eq!(check.found, check.containing, "{check:?}");
        }
        assert_eq!(report.queries.len(), 4);
    }
}
