//! Benchmarks of the dialer against SIPp on loopback, behind `callqa bench dial` and
//! `callqa bench calls`: call-setup rate next to SIPp's own, and concurrent recorded calls
//! with the RTP loss in their recordings.

pub mod calls;
pub mod pcap;
pub mod setup;
pub mod sipp;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::call::{dial, CallReport, DialRequest, Outcome};
use crate::config::{DialerConfig, TrunkConfig};
use crate::error::DialerError;
use crate::recording::{self, RecordingStore};

pub use calls::{concurrent_calls, CallsOptions, CallsReport, MediaSource};
pub use setup::{setup_rate, SetupBench, SetupPlan};
use sipp::{Sipp, SippStats};

/// Errors of a benchmark run (the dialer's own, or SIPp and the files around it).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Dialer(#[from] DialerError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("SIPp: {detail}")]
    Sipp { detail: String },
}

/// One benchmark call. A benchmark books no call, so it releases the recording's spool files
/// at once, as a dialer does once the call is booked.
async fn dial_released(
    cfg: &DialerConfig,
    req: DialRequest,
    store: impl Into<RecordingStore>,
    spool: &Path,
) -> Result<CallReport, DialerError> {
    let report = dial(cfg, req, store, spool).await?;
    if let Some(rec) = &report.recording {
        recording::release(spool, &report.call_id, rec).await?;
    }
    Ok(report)
}

/// What `callqa bench dial` runs.
#[derive(Debug, Clone)]
pub struct DialBenchOptions {
    /// The `sipp` executable.
    pub sipp: PathBuf,
    /// Scratch directory for scenarios, statistics and the prompt.
    pub work_dir: PathBuf,
    /// Calls per side.
    pub calls: u64,
    /// Calls in progress at most, for SIPp's UAC (`-l`) and the dialer alike.
    pub concurrency: usize,
    /// SIPp-then-dialer rounds; the figures are their medians (a shared machine is noisy).
    pub rounds: usize,
}

/// SIPp's UAC against SIPp's UAS.
#[derive(Debug, Clone, Serialize)]
pub struct PeerRun {
    pub calls: u64,
    pub successful: u64,
    pub failed: u64,
    pub elapsed_s: f64,
    pub calls_per_sec: f64,
    /// The UAS's exit status said every call passed.
    pub uas_ok: bool,
}

/// One SIPp-then-dialer round.
#[derive(Debug, Clone, Serialize)]
pub struct DialRound {
    pub sipp_uac: PeerRun,
    pub dialer: SetupBench,
    /// The dialer's UAS said every call passed.
    pub dialer_uas_ok: bool,
    /// Dialer calls/s over SIPp UAC calls/s.
    pub ratio: f64,
}

/// What `callqa bench dial` prints.
#[derive(Debug, Clone, Serialize)]
pub struct DialBenchReport {
    pub calls: u64,
    pub concurrency: usize,
    pub scenario: &'static str,
    /// Medians over the rounds.
    pub sipp_uac_calls_per_sec: f64,
    pub dialer_calls_per_sec: f64,
    pub ratio: f64,
    /// Every call of every round completed, on both sides, with zero failures.
    pub zero_failures: bool,
    pub rounds: Vec<DialRound>,
}

/// The longest a benchmark side may take before SIPp is told to give up.
fn side_timeout(calls: u64) -> Duration {
    Duration::from_secs(60 + calls / 500)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Call-setup rate, in one run: SIPp UAC vs SIPp UAS, then the dialer vs the same UAS, for
/// `opts.rounds` rounds.
pub async fn dial_vs_sipp(opts: &DialBenchOptions) -> Result<DialBenchReport, BenchError> {
    let mut rounds = Vec::new();
    for _ in 0..opts.rounds.max(1) {
        let round = dial_round(opts).await?;
        tracing::info!(
            sipp = round.sipp_uac.calls_per_sec,
            dialer = round.dialer.calls_per_sec,
            ratio = round.ratio,
            "dial bench round"
        );
        rounds.push(round);
    }
    Ok(DialBenchReport {
        calls: opts.calls.max(1),
        concurrency: opts.concurrency,
        scenario: "INVITE (SDP offer) / 180 / 486 / ACK",
        sipp_uac_calls_per_sec: median(rounds.iter().map(|r| r.sipp_uac.calls_per_sec).collect()),
        dialer_calls_per_sec: median(rounds.iter().map(|r| r.dialer.calls_per_sec).collect()),
        ratio: median(rounds.iter().map(|r| r.ratio).collect()),
        zero_failures: rounds.iter().all(|r| {
            r.sipp_uac.failed == 0 && r.sipp_uac.uas_ok && r.dialer.failures == 0 && r.dialer_uas_ok
        }),
        rounds,
    })
}

/// One round: SIPp UAC vs SIPp UAS, then the dialer vs a fresh UAS of the same scenario.
async fn dial_round(opts: &DialBenchOptions) -> Result<DialRound, BenchError> {
    let dir = &opts.work_dir;
    let uas_scn = sipp::write_scenario(dir, "uas_busy.xml", sipp::UAS_BUSY)?;
    let uac_scn = sipp::write_scenario(dir, "uac_busy.xml", sipp::UAC_BUSY)?;
    let calls = opts.calls.max(1);
    let timeout = side_timeout(calls);
    let uas_args = || -> Vec<String> {
        vec![
            "-sf".into(),
            uas_scn.display().to_string(),
            "-m".into(),
            calls.to_string(),
            "-timeout".into(),
            format!("{}s", timeout.as_secs()),
        ]
    };

    // SIPp against SIPp.
    let uas_port = sipp::free_udp_port()?;
    let mut uas = Sipp::start(&opts.sipp, dir, uas_port, &uas_args()).await?;
    let stats_path = dir.join("uac_stats.csv");
    let _ = std::fs::remove_file(&stats_path);
    let uac_args = vec![
        format!("127.0.0.1:{uas_port}"),
        "-sf".into(),
        uac_scn.display().to_string(),
        "-m".into(),
        calls.to_string(),
        "-r".into(),
        "100000".into(),
        "-rp".into(),
        "1000".into(),
        "-l".into(),
        opts.concurrency.max(1).to_string(),
        "-timeout".into(),
        format!("{}s", timeout.as_secs()),
        "-trace_stat".into(),
        "-stf".into(),
        stats_path.display().to_string(),
        "-fd".into(),
        "1".into(),
    ];
    let mut uac = Sipp::start(&opts.sipp, dir, sipp::free_udp_port()?, &uac_args).await?;
    uac.wait(timeout + Duration::from_secs(10)).await?;
    let uas_ok = uas.wait(Duration::from_secs(40)).await.unwrap_or(false);
    let SippStats {
        successful,
        failed,
        elapsed_s,
    } = sipp::read_stats(&stats_path)?;
    let sipp_uac = PeerRun {
        calls,
        successful,
        failed: failed + calls.saturating_sub(successful + failed),
        elapsed_s,
        calls_per_sec: successful as f64 / elapsed_s.max(1e-9),
        uas_ok,
    };
    tracing::info!(
        rate = sipp_uac.calls_per_sec,
        failed = sipp_uac.failed,
        "SIPp UAC done"
    );

    // The dialer against the same UAS scenario.
    let uas_port = sipp::free_udp_port()?;
    let mut uas = Sipp::start(&opts.sipp, dir, uas_port, &uas_args()).await?;
    let prompt = dir.join("bench_prompt.wav");
    pcap::write_wav(&prompt, &vec![0i16; 800]).map_err(|source| BenchError::Io {
        what: format!("writing {}", prompt.display()),
        source,
    })?;
    let cfg = Arc::new(bench_config(&[format!("127.0.0.1:{uas_port}")]));
    let plan = SetupPlan {
        trunk: "sipp0".into(),
        prompt,
        calls,
        concurrency: opts.concurrency.max(1),
        expect: Outcome::Busy,
    };
    let store: Arc<dyn object_store::ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let dialer = setup_rate(cfg, &plan, store, dir.join("spool")).await?;
    let dialer_uas_ok = uas.wait(Duration::from_secs(40)).await.unwrap_or(false);
    Ok(DialRound {
        ratio: dialer.calls_per_sec / sipp_uac.calls_per_sec.max(1e-9),
        sipp_uac,
        dialer,
        dialer_uas_ok,
    })
}

/// A dialer configuration with one trunk `sipp<i>` per address, no pacing limits.
pub fn bench_config(addresses: &[String]) -> DialerConfig {
    DialerConfig {
        caller_ids: vec!["+861012345678".into()],
        calling_hours: "00:00-23:59".into(),
        trunks: addresses
            .iter()
            .enumerate()
            .map(|(i, a)| TrunkConfig {
                name: format!("sipp{i}"),
                address: a.clone(),
                max_concurrent: 100_000,
                username: None,
                password: None,
            })
            .collect(),
        ring_timeout_ms: 10_000,
        ..DialerConfig::default()
    }
}
