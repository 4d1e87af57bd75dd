//! Recordings against a real S3 store (Garage on loopback). Killing the store in the middle of
//! calls loses no recording: the calls spool their recordings, and once Garage is back on the
//! same data and port the spool drain stores each one exactly once, complete and with an
//! exact WAV header. A recording longer than one 5 MiB part streams with an exact header too.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callqa_dialer::recording::{release, RecordingWriter, SpoolEntry};
use callqa_dialer::{dial, drain_spool, wav, DialRequest, Outcome, RecordingStore};
use callqa_tests::Garage;
use futures::TryStreamExt;
use object_store::ObjectStore;
use support::*;

const CALLS: usize = 4;
/// Garage takes parts this small (S3 would want 5 MiB): about half a second of stereo audio,
/// so every call has a multipart upload under way when the store dies.
const PART: usize = 16 * 1024;

/// SIPp answering `calls` calls with `uas_answer_play.xml` (speech.pcap in `cwd`).
struct SippUas {
    child: Child,
    port: u16,
}

impl SippUas {
    fn start(cwd: &Path, calls: usize) -> Self {
        let port = free_udp_port();
        let child = Command::new("sipp")
            .current_dir(cwd)
            .arg("-sf")
            .arg(scenario("uas_answer_play.xml"))
            .args(["-i", "127.0.0.1", "-mi", "127.0.0.1"])
            .args(["-p", &port.to_string(), "-mp", &(port + 2).to_string()])
            .args(["-m", &calls.to_string(), "-timeout", "90s", "-nostdin"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sipp (apt-get install sip-tester)");
        assert!(
            support::wait_udp_bound(port, Duration::from_secs(10)),
            "SIPp did not bind UDP {port} within 10 s"
        );
        Self { child, port }
    }

    fn passed(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for SippUas {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn request(i: usize, play: &Path) -> DialRequest {
    let call_id = format!("outage-{i}");
    DialRequest {
        number: format!("+861380013800{i}"),
        trunk: "sipp".into(),
        caller_id: None,
        play: play.to_path_buf(),
        recording_key: format!("recordings/{call_id}.wav"),
        call_id,
        campaign: None,
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Waits until every call's local copy holds `bytes`, i.e. its upload has parts under way.
async fn wait_local_copies(spool: &Path, bytes: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let sizes: Vec<u64> = (0..CALLS)
            .map(|i| {
                std::fs::metadata(spool.join(format!("outage-{i}.wav")))
                    .map(|m| m.len())
                    .unwrap_or(0)
            })
            .collect();
        if sizes.iter().all(|&s| s >= bytes) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "calls never got {bytes} bytes recorded: {sizes:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_storage_mid_call_loses_no_recording() {
    let tmp = tempfile::tempdir().unwrap();
    let prompt = speech_wav(
        tmp.path(),
        "prompt",
        "Hello, this is callqa, calling about the appointment you booked for tomorrow morning.",
    );
    speech_pcap(
        tmp.path(),
        "I want a refund, otherwise I will file a complaint. I have been waiting for weeks \
         and nobody has called me back about the second payment on my card.",
    );

    let mut garage = Garage::start().unwrap_or_else(|e| panic!("{e}"));
    let store = RecordingStore::streaming(garage_s3(&garage));
    let mut sipp = SippUas::start(tmp.path(), CALLS);
    let mut cfg = config("sipp", &format!("127.0.0.1:{}", sipp.port));
    cfg.part_size = PART;
    cfg.tail_ms = 2_000;
    let cfg = Arc::new(cfg);
    let spool: PathBuf = tmp.path().join("spool");

    let calls: Vec<_> = (0..CALLS)
        .map(|i| {
            let (cfg, store, spool, req) = (
                cfg.clone(),
                store.clone(),
                spool.clone(),
                request(i, &prompt),
            );
            tokio::spawn(async move { dial(&cfg, req, store, &spool).await })
        })
        .collect();
    // Three parts recorded: part 2 (the first one streamed) is complete, so every call has
    // started its multipart upload; then the store dies as a crash would (SIGKILL).
    wait_local_copies(&spool, 3 * PART as u64).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    garage.stop().unwrap();
    let killed_at = Instant::now();

    let mut reports = Vec::new();
    for call in calls {
        let report = tokio::time::timeout(Duration::from_secs(90), call)
            .await
            .expect("the call ended")
            .unwrap()
            .unwrap();
        reports.push(report);
    }
    assert!(sipp.passed(Duration::from_secs(10)), "SIPp scenario failed");
    for r in &reports {
        assert_eq!(r.outcome, Outcome::Answered, "{r:?}");
        let rec = r.recording.as_ref().expect("recording");
        assert!(rec.spooled, "{rec:?}");
        // The calls outlived the store by seconds: their audio after the kill is recorded too.
        assert!(r.duration_ms > 4_000, "{r:?}");
        let entry: SpoolEntry = serde_json::from_slice(
            &std::fs::read(spool.join(format!("{}.json", r.call_id))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            (entry.key.as_str(), entry.bytes),
            (rec.key.as_str(), rec.bytes)
        );
        assert!(
            entry.abandoned_upload.is_some(),
            "the store died with this call's upload half done: {entry:?}"
        );
        // What a dialer does once the call is booked.
        release(&spool, &r.call_id, rec).await.unwrap();
    }
    assert!(killed_at.elapsed() < Duration::from_secs(60));

    // Still down: the drain fails and keeps every file.
    assert!(drain_spool(store.clone(), &spool).await.is_err());
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 2 * CALLS);

    // Back on the same data and port: everything goes up, once.
    garage.start_again().unwrap_or_else(|e| panic!("{e}"));
    let mut uploaded = drain_spool(store.clone(), &spool).await.unwrap();
    uploaded.sort();
    let expected: Vec<String> = (0..CALLS)
        .map(|i| format!("recordings/outage-{i}.wav"))
        .collect();
    assert_eq!(uploaded, expected);
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0, "spool empty");
    assert!(drain_spool(store.clone(), &spool).await.unwrap().is_empty());

    let objects = store.objects().clone();
    let listed: BTreeSet<String> = objects
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        listed,
        expected.iter().cloned().collect(),
        "each recording once"
    );
    for r in &reports {
        let rec = r.recording.as_ref().unwrap();
        let bytes = stored(objects.as_ref(), rec.key.as_str()).await;
        assert_eq!(bytes.len() as u64, rec.bytes);
        // Exact sizes in the header.
        assert_eq!(le32(&bytes, 4) as usize, bytes.len() - 8);
        assert_eq!(le32(&bytes, 40) as usize, bytes.len() - 44);
        let pcm = wav::parse(&bytes).unwrap();
        assert_eq!((pcm.channels, pcm.sample_rate), (2, 8000));
        // As long as the call, to within the mixer's look-behind and the hangup.
        let frames = pcm.samples.len() / 2;
        let call_frames = r.duration_ms as usize * 8;
        assert!(
            frames.abs_diff(call_frames) < 4_000,
            "{frames} frames for a {} ms call",
            r.duration_ms
        );
        let ours: Vec<i16> = pcm.samples.iter().step_by(2).copied().collect();
        let customer: Vec<i16> = pcm.samples.iter().skip(1).step_by(2).copied().collect();
        assert!(rms(&ours) > 300.0, "prompt channel silent");
        assert!(rms(&customer) > 300.0, "customer channel silent");
        // After the kill there is still speech on the customer channel: nothing was cut off.
        let half = customer.len() / 2;
        assert!(rms(&customer[half..]) > 300.0, "second half silent");
        let audio = callqa_ingest::decode::decode(bytes.to_vec(), &rec.key).unwrap();
        assert_eq!(audio.frames(), frames);
    }
}

/// 12.8 MB of audio through 5 MiB parts on real S3: parts 2 and on go up during the call, the
/// header part last, and the pipeline's decoder reads exactly the frames written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_recording_streams_to_s3_with_an_exact_header() {
    let garage = Garage::start().unwrap_or_else(|e| panic!("{e}"));
    let store = RecordingStore::streaming(garage_s3(&garage));
    let tmp = tempfile::tempdir().unwrap();
    let frames = 3_200_000usize; // 400 s
    let mut w = RecordingWriter::create(
        store.clone(),
        "recordings/long.wav",
        "long",
        tmp.path(),
        5 << 20,
    )
    .await
    .unwrap();
    let mut pcm = Vec::with_capacity(3200);
    for i in 0..frames {
        let s = ((i as f32 * 0.03).sin() * 6000.0) as i16;
        pcm.extend_from_slice(&s.to_le_bytes());
        pcm.extend_from_slice(&(i as i16).to_le_bytes());
        if pcm.len() == 3200 {
            w.write(&pcm).await.unwrap();
            pcm.clear();
        }
    }
    w.write(&pcm).await.unwrap();
    let info = w.finish().await.unwrap();
    assert!(!info.spooled);
    assert_eq!(info.bytes, frames as u64 * 4 + 44);
    let bytes = stored(store.objects().as_ref(), "recordings/long.wav").await;
    assert_eq!(bytes.len() as u64, info.bytes);
    assert_eq!(le32(&bytes, 4) as usize, bytes.len() - 8);
    assert_eq!(le32(&bytes, 40) as usize, frames * 4);
    // Channel 1 carries the frame counter: every frame is in place across part boundaries.
    for i in [
        0usize,
        1_310_709,
        1_310_710,
        2_621_429,
        2_621_430,
        frames - 1,
    ] {
        let at = 44 + i * 4 + 2;
        assert_eq!(
            i16::from_le_bytes([bytes[at], bytes[at + 1]]),
            i as i16,
            "frame {i}"
        );
    }
    let audio = callqa_ingest::decode::decode(bytes.to_vec(), "long.wav").unwrap();
    assert_eq!(audio.frames(), frames);
    assert_eq!(audio.duration_ms(), 400_000);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
