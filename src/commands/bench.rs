//! `callqa bench ...`: measured figures for the issues' targets (transcription real-time
//! factor with and without voice gating, search latency against PostgreSQL LIKE, QA throughput).

use crate::config::Config;
use anyhow::{Context, Result};
use callqa_ingest::decode::decode;
use callqa_ingest::transcribe::Transcriber;
use callqa_ingest::transcript::Speaker;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Real-time factor of transcribing FILE, with and without voice gating.
    Transcribe {
        file: PathBuf,
        /// ggml model (default: the configured one).
        #[arg(long)]
        model: Option<PathBuf>,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Also run without voice gating (slow: whisper sees every second).
        #[arg(long)]
        compare_no_vad: bool,
        /// Forced language (skips detection), e.g. en or zh.
        #[arg(long)]
        language: Option<String>,
    },
    /// Index N synthetic transcripts; query latency against PostgreSQL LIKE.
    Search {
        #[arg(long, default_value_t = 1_000_000)]
        calls: usize,
        /// PostgreSQL to compare with; `none` skips the comparison.
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
        postgres: String,
        /// Skip indexing a second time with tantivy's default tokenizer.
        #[arg(long)]
        no_default_tokenizer: bool,
    },
    /// QA scoring throughput on N synthetic calls.
    Qa {
        #[arg(long, default_value_t = 10_000)]
        calls: usize,
    },
}

pub async fn run(cfg: Config, data_dir: &Path, cmd: Cmd) -> Result<i32> {
    match cmd {
        Cmd::Search {
            calls,
            postgres,
            no_default_tokenizer,
        } => {
            let opts = callqa_search::bench::BenchOptions {
                calls,
                postgres_url: (postgres != "none").then_some(postgres),
                compare_default_tokenizer: !no_default_tokenizer,
                ..Default::default()
            };
            let report = callqa_search::bench::run(opts)
                .await
                .context("search benchmark failed")?;
            crate::commands::print_json(&report)?;
            Ok(0)
        }
        Cmd::Qa { calls } => {
            let rate = tokio::task::spawn_blocking(move || callqa_qa::bench_scoring(calls)).await?;
            eprintln!("scored {calls} synthetic calls: {rate:.0} calls/s");
            crate::commands::print_json(&json!({"calls": calls, "calls_per_s": rate}))?;
            Ok(0)
        }
        Cmd::Transcribe {
            file,
            model,
            threads,
            compare_no_vad,
            language,
        } => {
            let model = model
                .or(cfg.transcribe.model.clone())
                .unwrap_or_else(|| data_dir.join("models/ggml-base.bin"));
            let data =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let name = file.display().to_string();
            let audio = decode(data, &name)?;
            let audio_s = audio.duration_ms() as f64 / 1000.0;
            let mut runs = Vec::new();
            let modes: &[bool] = if compare_no_vad {
                &[true, false]
            } else {
                &[true]
            };
            for &vad in modes {
                let mut tc = cfg.transcribe.clone();
                tc.threads = threads;
                tc.vad = vad;
                let (model, audio, language) = (model.clone(), audio.clone(), language.clone());
                let r = tokio::task::spawn_blocking(move || -> Result<serde_json::Value> {
                    let t = Transcriber::load(&model, &tc)?;
                    let start = Instant::now();
                    let tr = t.transcribe("bench", &audio, language.as_deref())?;
                    let wall = start.elapsed().as_secs_f64();
                    let text_of = |sp: Speaker| {
                        tr.by_speaker(sp)
                            .map(|s| s.text.as_str())
                            .collect::<Vec<_>>()
                            .join(" ")
                    };
                    Ok(json!({
                        "vad": vad, "wall_s": wall, "rtf": audio_s / wall,
                        "segments": tr.segments.len(), "language": tr.language,
                        "text": tr.full_text(),
                        "by_speaker": {
                            "agent": text_of(Speaker::Agent),
                            "customer": text_of(Speaker::Customer),
                            "mixed": text_of(Speaker::Mixed),
                        },
                    }))
                })
                .await
                .context("benchmark task panicked")??;
                eprintln!(
                    "vad={vad}: {:.1} s audio in {:.1} s wall = {:.2}x real time",
                    audio_s,
                    r["wall_s"].as_f64().unwrap_or(0.0),
                    r["rtf"].as_f64().unwrap_or(0.0)
                );
                runs.push(r);
            }
            crate::commands::print_json(&json!({
                "file": name, "audio_s": audio_s, "threads": threads,
                "model": model.display().to_string(), "runs": runs,
            }))?;
            Ok(0)
        }
    }
}
