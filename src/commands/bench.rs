//! `callqa bench ...`: measured figures for the issues' targets (transcription real-time
//! factor with and without voice gating, search latency against PostgreSQL LIKE, QA throughput,
//! the dialer's call-setup rate next to SIPp's and its concurrent recorded calls).

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
    /// Call-setup rate (zero failures) of SIPp UAC vs SIPp UAS, then of the dialer vs the
    /// same UAS, in one run on 127.0.0.1.
    Dial {
        /// Calls per side.
        #[arg(long, default_value_t = 50_000)]
        calls: u64,
        /// Calls in progress at most, on both sides.
        #[arg(long, default_value_t = 200)]
        concurrency: usize,
        /// SIPp-then-dialer rounds; the figures printed are their medians.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        #[arg(long, default_value = "sipp")]
        sipp: PathBuf,
        /// Scratch directory (default: bench/ under the data directory, removed afterwards).
        #[arg(long)]
        work_dir: Option<PathBuf>,
    },
    /// N simultaneous recorded calls against SIPp UASes streaming RTP: loss in the
    /// recordings and CPU, one round per N.
    Calls {
        /// The callee's RTP: a pcap SIPp plays per call, or SIPp's echo of the dialer's prompt
        /// (pcap play costs SIPp a raw socket per call, which slows every UDP packet on the host).
        #[arg(long, default_value = "pcap", value_parser = ["pcap", "echo"])]
        media: String,
        /// Comma-separated call counts, e.g. 250,500,1000.
        #[arg(long, value_delimiter = ',', default_value = "1000")]
        concurrent: Vec<usize>,
        /// Seconds of RTP per call (calls last about 2 s longer).
        #[arg(long, default_value_t = 10)]
        hold_s: u32,
        /// SIPp UAS processes to spread the calls over.
        #[arg(long, default_value_t = 1)]
        uas_instances: usize,
        /// Calls started per second while ramping up.
        #[arg(long, default_value_t = 200)]
        ramp_cps: u32,
        #[arg(long, default_value = "sipp")]
        sipp: PathBuf,
        /// Scratch directory (default: bench/ under the data directory, removed afterwards).
        #[arg(long)]
        work_dir: Option<PathBuf>,
    },
}

/// A scratch directory for a dialer benchmark; the bool says whether to remove it after.
fn bench_dir(data_dir: &Path, given: Option<PathBuf>, name: &str) -> Result<(PathBuf, bool)> {
    let (dir, owned) = match given {
        Some(d) => (d, false),
        None => (
            data_dir.join(format!("bench/{name}-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok((dir, owned))
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
        Cmd::Dial {
            calls,
            concurrency,
            rounds,
            sipp,
            work_dir,
        } => {
            let (work_dir, owned) = bench_dir(data_dir, work_dir, "dial")?;
            let opts = callqa_dialer::bench::DialBenchOptions {
                sipp,
                work_dir: work_dir.clone(),
                calls,
                concurrency,
                rounds,
            };
            let report = callqa_dialer::bench::dial_vs_sipp(&opts).await;
            if owned {
                let _ = std::fs::remove_dir_all(&work_dir);
            }
            let report = report.context("dial benchmark failed")?;
            eprintln!(
                "setup rate (median of {} rounds): dialer {:.0} calls/s, SIPp UAC {:.0} calls/s, ratio {:.0}%, zero failures: {}",
                report.rounds.len(),
                report.dialer_calls_per_sec,
                report.sipp_uac_calls_per_sec,
                report.ratio * 100.0,
                report.zero_failures
            );
            crate::commands::print_json(&report)?;
            Ok(if report.zero_failures { 0 } else { 1 })
        }
        Cmd::Calls {
            media,
            concurrent,
            hold_s,
            uas_instances,
            ramp_cps,
            sipp,
            work_dir,
        } => {
            let (work_dir, owned) = bench_dir(data_dir, work_dir, "calls")?;
            let mut rounds = Vec::new();
            for n in concurrent {
                let opts = callqa_dialer::bench::CallsOptions {
                    media: if media == "echo" {
                        callqa_dialer::bench::MediaSource::Echo
                    } else {
                        callqa_dialer::bench::MediaSource::Pcap
                    },
                    sipp: sipp.clone(),
                    work_dir: work_dir.clone(),
                    concurrent: n,
                    hold_s,
                    uas_instances,
                    ramp_cps,
                };
                let r = callqa_dialer::bench::concurrent_calls(&opts)
                    .await
                    .with_context(|| format!("concurrent-calls round of {n} failed"))?;
                eprintln!(
                    "{n} calls: peak {} concurrent, loss {:.3}% ({} of {} packets written), dialer {:.2} cores, SIPp {:.2} cores",
                    r.peak_concurrent, r.loss_percent, r.written_packets, r.expected_packets,
                    r.dialer_cores, r.sipp_cores
                );
                rounds.push(r);
            }
            if owned {
                let _ = std::fs::remove_dir_all(&work_dir);
            }
            let largest_ok = rounds
                .iter()
                .filter(|r| r.ok)
                .map(|r| r.peak_concurrent)
                .max();
            crate::commands::print_json(
                &json!({"rounds": rounds, "largest_ok_concurrent": largest_ok}),
            )?;
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
                .unwrap_or_else(|| callqa_ingest::model::default_model(&data_dir.join("models")));
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
