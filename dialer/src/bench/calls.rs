//! Concurrent recorded calls: N answered calls at once against SIPp UASes that stream RTP to
//! the dialer, every call recorded; counts the callee's packets that reached the recordings,
//! where packets were dropped, and the CPU the dialer and SIPp used.
//!
//! The callee's RTP is either a pcap SIPp plays per call (`Pcap`) or the dialer's own prompt
//! sent back by SIPp's RTP echo (`Echo`). SIPp plays each pcap from a raw socket of its own,
//! and Linux hands every UDP packet on the host to every raw UDP socket, so with pcap play the
//! kernel's cost per packet grows with the number of calls: `Echo` is the mode that scales.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::memory::InMemory;
use object_store::path::Path as StorePath;
use object_store::ObjectStore;
use serde::Serialize;
use tokio::task::JoinSet;

use super::sipp::{self, Sipp};
use super::{bench_config, pcap, BenchError};
use crate::call::{CallReport, DialRequest, Outcome};
use crate::g711::Codec;
use crate::media::FRAME;
use crate::wav;

/// Where the callee's RTP comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaSource {
    /// SIPp plays a pcap of a tone per call (`play_pcap_audio`).
    Pcap,
    /// SIPp's `-rtp_echo` returns the dialer's prompt (a tone) from its media port.
    Echo,
}

/// What one `callqa bench calls` round runs.
#[derive(Debug, Clone)]
pub struct CallsOptions {
    pub media: MediaSource,
    pub sipp: PathBuf,
    pub work_dir: PathBuf,
    /// Calls placed (and, once all are answered, in progress at once).
    pub concurrent: usize,
    /// Seconds of the callee's tone per call; the call lasts 1 to 2 s longer.
    pub hold_s: u32,
    /// SIPp UAS processes the calls are spread over (SIPp plays each call's RTP from a thread).
    pub uas_instances: usize,
    /// Calls started per second while ramping up.
    pub ramp_cps: u32,
}

/// What one round measured.
#[derive(Debug, Clone, Serialize)]
pub struct CallsReport {
    pub media: MediaSource,
    pub concurrent: usize,
    pub uas_instances: usize,
    pub hold_s: u32,
    pub answered: u64,
    /// Calls that were not answered or failed with an error.
    pub failures: u64,
    /// Most calls answered and not yet ended at the same moment.
    pub peak_concurrent: u64,
    /// Callee tone packets due: pcap (or echoed prompt) packets times answered calls.
    pub expected_packets: u64,
    /// Callee packets the dialer received (before the jitter buffer).
    pub received_packets: u64,
    /// Callee packets present in the stored recordings (non-silent 20 ms of channel 1).
    pub written_packets: u64,
    /// Sequence gaps the jitter buffer gave up on, and packets too late for the recording.
    pub gap_packets: u64,
    pub late_packets: u64,
    /// Where lost packets went: full receive buffers of SIPp's media sockets, of the
    /// dialer's sockets, and the kernel's input backlog (loopback traffic passes it).
    pub sipp_socket_drops: u64,
    pub dialer_socket_drops: u64,
    pub backlog_drops: u64,
    /// Expected minus written, over expected.
    pub loss_percent: f64,
    pub wall_s: f64,
    pub dialer_cpu_s: f64,
    /// Dialer CPU seconds per wall second (2.0 = both cores busy).
    pub dialer_cores: f64,
    pub sipp_cpu_s: f64,
    pub sipp_cores: f64,
    /// The whole machine's busy cores over the run.
    pub machine_busy_cores: f64,
    /// Zero failures and loss under 0.1%.
    pub ok: bool,
}

/// Amplitude of the callee's tone (and a quieter one for our prompt).
const TONE: i16 = 3000;

/// Runs one round of `opts.concurrent` calls.
pub async fn concurrent_calls(opts: &CallsOptions) -> Result<CallsReport, BenchError> {
    let dir = &opts.work_dir;
    let io = |what: String| move |source| BenchError::Io { what, source };
    let hold = opts.hold_s.max(1) as usize;
    let tone = pcap::square_tone(hold * 8000, TONE);
    let prompt = dir.join("calls_prompt.wav");
    let (scenario, prompt_samples, tone_packets) = match opts.media {
        MediaSource::Pcap => {
            let pcap_path = dir.join("speech.pcap");
            let packets = pcap::write_rtp_pcap(&Codec::Pcmu.encode(&tone), 0, &pcap_path)
                .map_err(io(format!("writing {}", pcap_path.display())))?;
            // Our prompt is quieter and outlasts the callee's, so the call covers all of it.
            let prompt = pcap::square_tone((hold + 1) * 8000, TONE / 4);
            let scn = sipp::write_scenario(dir, "uas_answer_play.xml", sipp::UAS_ANSWER_PLAY)?;
            (scn, prompt, packets)
        }
        MediaSource::Echo => {
            let scn = sipp::write_scenario(dir, "uas_answer_echo.xml", sipp::UAS_ANSWER_ECHO)?;
            let packets = (tone.len() / FRAME) as u64;
            (scn, tone, packets)
        }
    };
    pcap::write_wav(&prompt, &prompt_samples)
        .map_err(io(format!("writing {}", prompt.display())))?;

    let instances = opts.uas_instances.max(1);
    let mut uases = Vec::with_capacity(instances);
    let mut addresses = Vec::with_capacity(instances);
    let mut media_ports = Vec::with_capacity(instances);
    for _ in 0..instances {
        let port = sipp::free_udp_port()?;
        let mut args = vec![
            "-sf".into(),
            scenario.display().to_string(),
            "-mi".into(),
            "127.0.0.1".into(),
            "-mp".into(),
            (port + 2).to_string(),
            "-timeout".into(),
            format!("{}s", 120 + opts.concurrent / 10 + hold),
        ];
        if opts.media == MediaSource::Echo {
            args.push("-rtp_echo".into());
        }
        uases.push(Sipp::start(&opts.sipp, dir, port, &args).await?);
        addresses.push(format!("127.0.0.1:{port}"));
        media_ports.push(port + 2);
    }
    let mut cfg = bench_config(&addresses);
    cfg.tail_ms = 1_000;
    cfg.max_duration_ms = (hold as u64 + 30) * 1000;
    let cfg = Arc::new(cfg);
    let store = Arc::new(InMemory::new());
    let spool = dir.join("spool");

    let me = std::process::id();
    let sipp_drops = |drops: &std::collections::HashMap<u64, (u16, u64)>| -> u64 {
        drops
            .values()
            .filter(|(port, _)| media_ports.contains(port))
            .map(|(_, d)| d)
            .sum()
    };
    let sipp_drops_before = sipp_drops(&sipp::udp_socket_drops());
    let backlog_before = sipp::backlog_drops();
    // Our sockets' drop counters vanish when a call closes its socket: sample them.
    let (stop_sampler, mut sampler_stop) = tokio::sync::watch::channel(false);
    let sampler = tokio::spawn(async move {
        let mut seen: std::collections::HashMap<u64, u64> = Default::default();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = sampler_stop.changed() => break,
            }
            let ours = sipp::socket_inodes(me);
            for (inode, (_, drops)) in sipp::udp_socket_drops() {
                if ours.contains(&inode) {
                    let d = seen.entry(inode).or_default();
                    *d = (*d).max(drops);
                }
            }
        }
        seen.values().sum::<u64>()
    });
    let cpu_before = sipp::process_cpu_seconds(me).unwrap_or(0.0);
    let sipp_before: f64 = uases.iter().map(Sipp::cpu_seconds).sum();
    let machine_before = sipp::machine_jiffies();
    let started = Instant::now();
    let mut running = JoinSet::new();
    let mut ramp = tokio::time::interval(Duration::from_secs_f64(
        1.0 / f64::from(opts.ramp_cps.max(1)),
    ));
    for i in 0..opts.concurrent {
        ramp.tick().await;
        let req = DialRequest {
            number: format!("+86139{:08}", i),
            trunk: format!("sipp{}", i % instances),
            caller_id: None,
            play: prompt.clone(),
            call_id: format!("calls-{me}-{i}"),
            recording_key: format!("bench/calls/{i}.wav"),
            campaign: None,
        };
        let (cfg, store, spool) = (cfg.clone(), store.clone(), spool.clone());
        // Calls start at random points of the 20 ms packet interval, as real ones do: a
        // ramp in step with it would have every call send in the same millisecond.
        let phase = Duration::from_micros(rand::random::<u64>() % 20_000);
        running.spawn(async move {
            tokio::time::sleep(phase).await;
            super::dial_released(&cfg, req, store, &spool).await
        });
    }
    let mut reports = Vec::with_capacity(opts.concurrent);
    let mut failures = 0u64;
    while let Some(done) = running.join_next().await {
        match done {
            Ok(Ok(r)) if r.outcome == Outcome::Answered => reports.push(r),
            Ok(Ok(r)) => {
                tracing::warn!(call_id = %r.call_id, outcome = ?r.outcome, reason = %r.reason, "bench call not answered");
                failures += 1;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "bench call failed");
                failures += 1;
            }
            Err(e) => {
                tracing::warn!(error = %e, "bench call task failed");
                failures += 1;
            }
        }
    }
    let wall_s = started.elapsed().as_secs_f64();
    let dialer_cpu_s = sipp::process_cpu_seconds(me).unwrap_or(0.0) - cpu_before;
    let sipp_cpu_s = uases.iter().map(Sipp::cpu_seconds).sum::<f64>() - sipp_before;
    let machine_busy_cores = match (machine_before, sipp::machine_jiffies()) {
        (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
            (b1 - b0) as f64 / (t1 - t0) as f64 * cores() as f64
        }
        _ => 0.0,
    };
    let sipp_socket_drops = sipp_drops(&sipp::udp_socket_drops()).saturating_sub(sipp_drops_before);
    let backlog_drops = sipp::backlog_drops().saturating_sub(backlog_before);
    let _ = stop_sampler.send(true);
    let dialer_socket_drops = sampler.await.unwrap_or(0);
    for uas in uases {
        uas.stop().await;
    }

    let mut written = 0u64;
    for r in &reports {
        written += written_packets(store.as_ref(), r).await;
    }
    let answered = reports.len() as u64;
    let expected = tone_packets * answered;
    let sum = |f: fn(&CallReport) -> u64| reports.iter().map(f).sum::<u64>();
    let loss_percent = if expected == 0 {
        100.0
    } else {
        expected.saturating_sub(written) as f64 * 100.0 / expected as f64
    };
    Ok(CallsReport {
        media: opts.media,
        concurrent: opts.concurrent,
        uas_instances: instances,
        hold_s: opts.hold_s,
        answered,
        failures,
        peak_concurrent: peak(&reports),
        expected_packets: expected,
        received_packets: sum(|r| r.rtp_stats.packets_received),
        written_packets: written,
        gap_packets: sum(|r| r.rtp_stats.lost),
        late_packets: sum(|r| r.rtp_stats.late + r.rtp_stats.late_samples / FRAME as u64),
        sipp_socket_drops,
        dialer_socket_drops,
        backlog_drops,
        loss_percent,
        wall_s,
        dialer_cpu_s,
        dialer_cores: dialer_cpu_s / wall_s.max(1e-9),
        sipp_cpu_s,
        sipp_cores: sipp_cpu_s / wall_s.max(1e-9),
        machine_busy_cores,
        ok: failures == 0 && loss_percent < 0.1,
    })
}

/// The callee packets in a call's stored recording: its non-silent channel-1 samples over 160.
/// The recording is deleted afterwards.
async fn written_packets(store: &dyn ObjectStore, report: &CallReport) -> u64 {
    let Some(rec) = &report.recording else {
        return 0;
    };
    let key = StorePath::from(rec.key.as_str());
    let bytes = match store.get(&key).await {
        Ok(got) => got.bytes().await.unwrap_or_default(),
        Err(e) => {
            tracing::warn!(key = %rec.key, error = %e, "recording missing");
            return 0;
        }
    };
    let _ = store.delete(&key).await;
    match wav::parse(&bytes) {
        Ok(pcm) if pcm.channels == 2 => {
            let voiced = pcm
                .samples
                .iter()
                .skip(1)
                .step_by(2)
                .filter(|&&s| s != 0)
                .count();
            (voiced / FRAME) as u64
        }
        Ok(_) | Err(_) => {
            tracing::warn!(key = %rec.key, "recording is not a stereo WAV");
            0
        }
    }
}

/// Most calls between answer and end at one moment.
fn peak(reports: &[CallReport]) -> u64 {
    let mut events: Vec<(chrono::DateTime<chrono::Utc>, i64)> = Vec::new();
    for r in reports {
        if let Some(a) = r.answered_at {
            events.push((a, 1));
            events.push((r.ended_at, -1));
        }
    }
    // Ends sort before starts at the same instant.
    events.sort();
    let (mut now, mut most) = (0i64, 0i64);
    for (_, d) in events {
        now += d;
        most = most.max(now);
    }
    most as u64
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
