//! `callqa search` and `callqa reindex`: keyword search over transcripts, and rebuilding
//! the index (derived data) from the stored transcripts.

use crate::app::App;
use crate::config::Config;
use anyhow::{Context, Result};
use callqa_ingest::transcript::Speaker;
use callqa_search::{SearchIndex, SearchRequest};
use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    /// Words, "phrases", AND / OR / -word, prefix*.
    query: String,
    /// Calls started on or after this date (YYYY-MM-DD or RFC 3339).
    #[arg(long)]
    from: Option<String>,
    #[arg(long)]
    to: Option<String>,
    #[arg(long)]
    campaign: Option<String>,
    #[arg(long)]
    agent: Option<String>,
    #[arg(long)]
    customer: Option<String>,
    /// agent or customer: match only that party's words.
    #[arg(long)]
    speaker: Option<String>,
    #[arg(long)]
    language: Option<String>,
    #[arg(long)]
    min_score: Option<f64>,
    #[arg(long)]
    max_score: Option<f64>,
    /// Only calls with this QA flag (repeatable): complaint, refund, opt_out, ...
    #[arg(long = "flag")]
    flags: Vec<String>,
    #[arg(long, default_value_t = 20)]
    limit: usize,
    #[arg(long, default_value_t = 0)]
    offset: usize,
    #[arg(long)]
    json: bool,
}

pub async fn run(_cfg: Config, data_dir: &Path, a: Args) -> Result<i32> {
    let speaker = match a.speaker.as_deref() {
        None => None,
        Some(s) => match Speaker::parse(s) {
            Some(sp) => Some(sp),
            None => {
                eprintln!("error: --speaker must be agent or customer, not {s:?}");
                return Ok(2);
            }
        },
    };
    let customer = a
        .customer
        .as_ref()
        .map(|n| callqa_qa::number::normalize(n).unwrap_or_else(|_| n.clone()));
    let req = SearchRequest {
        query: a.query,
        from: a.from,
        to: a.to,
        campaign: a.campaign,
        agent: a.agent,
        customer,
        speaker,
        language: a.language,
        min_score: a.min_score,
        max_score: a.max_score,
        flags: a.flags,
        limit: a.limit,
        offset: a.offset,
        ..SearchRequest::default()
    };
    let index =
        SearchIndex::open(&data_dir.join("index")).context("cannot open the search index")?;
    let resp = match tokio::task::spawn_blocking(move || index.search(&req)).await? {
        Ok(r) => r,
        Err(e) if e.is_user_error() => {
            eprintln!("error: {e}");
            return Ok(2);
        }
        Err(e) => return Err(e).context("search failed"),
    };
    if a.json {
        crate::commands::print_json(&resp)?;
    } else {
        println!("{} matching calls", resp.total);
        for h in &resp.hits {
            println!("{}  score {:.2}", h.call_id, h.score);
            for s in &h.snippets {
                let ms = s.start_ms;
                println!(
                    "   [{:02}:{:02}] {:<8} {}",
                    ms / 60_000,
                    (ms / 1000) % 60,
                    s.speaker.as_str(),
                    s.text
                );
            }
        }
    }
    Ok(0)
}

/// Rebuilds the index from every stored transcript: one document per call.
pub async fn reindex(cfg: Config, data_dir: &Path) -> Result<i32> {
    let app = App::open(cfg, data_dir).await?;
    let index = SearchIndex::open(&app.index_dir()).context("cannot open the search index")?;
    let mut writer = index
        .writer()
        .context("cannot take the index writer: stop `callqa serve` / workers first")?;
    writer.delete_all()?;
    let rows = app.db.transcribed_calls(None, None).await?;
    let mut n = 0usize;
    for row in &rows {
        match crate::pipeline::call_doc(&app, row).await {
            Ok(doc) => {
                writer.upsert(&doc)?;
                n += 1;
            }
            Err(e) => tracing::warn!(call_id = %row.call_id, error = %format!("{e:#}"), "skipped"),
        }
        if n > 0 && n.is_multiple_of(1000) {
            writer.commit()?;
        }
    }
    writer.commit()?;
    eprintln!("reindexed {n} of {} transcribed calls", rows.len());
    Ok(0)
}
