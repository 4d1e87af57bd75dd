//! A dialer process killed with SIGKILL in the middle of an answered call loses no recording.
//! The child (this test binary re-run with `CALLQA_CRASH_CHILD` set, so it runs the real
//! `dial` against a SIPp UAS and a real Garage) is killed a few seconds into the call; then
//! recovery stores the recording with an exact header, books the call and queues it once, and
//! a second run changes nothing. `harness = false`: `main` is the parent or the child.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callqa_dialer::recording::{LiveRecording, SpoolEntry};
use callqa_dialer::{
    dial, recover_and_drain, recover_orphans, wav, CallBook, DialRequest, RecordingStore,
};
use callqa_ingest::config::DatabaseConfig;
use callqa_ingest::db::{status, Db};
use callqa_ingest::queue::{EmbeddedQueue, JobQueue, Stage};
use callqa_tests::Garage;
use futures::TryStreamExt;
use object_store::multipart::MultipartStore;
use object_store::path::Path as StorePath;
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};
use support::*;

const TEST: &str = "killed_dialer_mid_call_loses_no_recording";
const CHILD_ENV: &str = "CALLQA_CRASH_CHILD";
const CALL_ID: &str = "crash-1";
/// Small parts (Garage takes them) so the call has a multipart upload under way when killed.
const PART: usize = 16 * 1024;
/// How long into the answered call the dialer dies.
const KILL_AFTER: Duration = Duration::from_secs(4);

/// What the child needs to place the call.
#[derive(Serialize, Deserialize)]
struct ChildSpec {
    sipp: String,
    prompt: PathBuf,
    spool: PathBuf,
    endpoint: String,
    region: String,
    bucket: String,
    access_key: String,
    secret_key: String,
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let spec: ChildSpec = serde_json::from_str(&spec).unwrap();
        rt.block_on(child(spec));
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("{TEST}: test");
        return;
    }
    if args
        .iter()
        .any(|a| !a.starts_with('-') && !TEST.contains(a.as_str()))
    {
        println!("running 0 tests");
        return;
    }
    println!("running 1 test");
    rt.block_on(killed_dialer_mid_call_loses_no_recording());
    println!("test {TEST} ... ok");
}

/// The dialer that gets killed: one call, long enough to outlive the kill.
async fn child(spec: ChildSpec) {
    let store = RecordingStore::streaming(s3_client(
        &spec.endpoint,
        &spec.region,
        &spec.bucket,
        &spec.access_key,
        &spec.secret_key,
    ));
    let mut cfg = config("sipp", &spec.sipp);
    cfg.part_size = PART;
    cfg.tail_ms = 30_000;
    cfg.max_duration_ms = 60_000;
    let req = DialRequest {
        number: "+8613800138000".into(),
        trunk: "sipp".into(),
        caller_id: None,
        play: spec.prompt.clone(),
        call_id: CALL_ID.into(),
        recording_key: format!("recordings/{CALL_ID}.wav"),
        campaign: Some("spring".into()),
    };
    let report = dial(&cfg, req, store, &spec.spool).await;
    // Reaching this point means the call ended before the kill: the parent fails on that.
    eprintln!("child: the call ended before the kill: {report:?}");
}

struct Killable(Child);

impl Drop for Killable {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn read_marker(path: &Path) -> Option<LiveRecording> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

async fn killed_dialer_mid_call_loses_no_recording() {
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
    let garage = Garage::start().unwrap_or_else(|e| panic!("{e}"));
    let s3 = s3_client(
        &garage.endpoint(),
        garage.region(),
        garage.bucket(),
        garage.access_key(),
        garage.secret_key(),
    );
    let store = RecordingStore::streaming(s3.clone());
    let sipp = Sipp::uas("uas_answer_play.xml", tmp.path());
    let spool = tmp.path().join("spool");
    let spec = ChildSpec {
        sipp: sipp.address(),
        prompt,
        spool: spool.clone(),
        endpoint: garage.endpoint(),
        region: garage.region().into(),
        bucket: garage.bucket().into(),
        access_key: garage.access_key().into(),
        secret_key: garage.secret_key().into(),
    };
    let mut dialer = Killable(
        Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, serde_json::to_string(&spec).unwrap())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // The marker appears when the call is answered; a few seconds later, with the upload under
    // way, the dialer dies as `kill -9` would have it.
    let marker_path = spool.join(format!("{CALL_ID}.live"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let marker = loop {
        if let Some(m) = read_marker(&marker_path).filter(|m| m.upload.is_some()) {
            break m;
        }
        assert!(
            dialer.0.try_wait().unwrap().is_none(),
            "the dialer exited before its call was under way"
        );
        assert!(
            Instant::now() < deadline,
            "no call with an upload under way"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let answered_at = chrono::DateTime::parse_from_rfc3339(&marker.call.answered_at).unwrap();
    let kill_at = answered_at + chrono::Duration::from_std(KILL_AFTER).unwrap();
    let wait = (kill_at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(wait).await;
    assert!(
        dialer.0.try_wait().unwrap().is_none(),
        "the call ended before the kill"
    );
    dialer.0.kill().unwrap(); // SIGKILL
    let killed_at = chrono::Utc::now();
    dialer.0.wait().unwrap();
    let lived_ms = (killed_at - answered_at.with_timezone(&chrono::Utc)).num_milliseconds();

    // What the crash left: the marker, a WAV with placeholder sizes, no spool entry.
    let wav_path = spool.join(format!("{CALL_ID}.wav"));
    assert!(marker_path.exists());
    assert_eq!(le32(&std::fs::read(&wav_path).unwrap(), 40), u32::MAX);
    assert!(!spool.join(format!("{CALL_ID}.json")).exists());

    let db = Db::connect(&DatabaseConfig::default(), tmp.path())
        .await
        .unwrap();
    let queue = Arc::new(EmbeddedQueue::new(db.clone(), "callqa"));
    let book = CallBook::new(db.clone(), queue.clone());

    // Recovery: a spool entry naming the half-done upload, a row, then the booked drain.
    assert_eq!(
        recover_orphans(&spool, &book).await.unwrap(),
        vec![CALL_ID.to_string()]
    );
    let entry: SpoolEntry =
        serde_json::from_slice(&std::fs::read(spool.join(format!("{CALL_ID}.json"))).unwrap())
            .unwrap();
    assert_eq!(entry.abandoned_upload, marker.upload);
    let uploaded = recover_and_drain(store.clone(), &spool, &book)
        .await
        .unwrap();
    assert_eq!(uploaded, vec![marker.key.clone()]);

    let objects = store.objects().clone();
    let bytes = stored(objects.as_ref(), marker.key.as_str()).await;
    assert_eq!(le32(&bytes, 4) as usize, bytes.len() - 8);
    assert_eq!(le32(&bytes, 40) as usize, bytes.len() - 44);
    let audio = callqa_ingest::decode::decode(bytes.to_vec(), &marker.key).unwrap();
    assert_eq!((audio.channels.len(), audio.sample_rate), (2, 8_000));
    let recorded_ms = audio.duration_ms() as i64;
    assert!(
        (recorded_ms - lived_ms).abs() <= 1_000,
        "{recorded_ms} ms recorded of a call killed after {lived_ms} ms"
    );
    let pcm = wav::parse(&bytes).unwrap();
    let customer: Vec<i16> = pcm.samples.iter().skip(1).step_by(2).copied().collect();
    assert!(rms(&customer) > 300.0, "customer channel silent");

    let row = db.get_call(CALL_ID).await.unwrap().expect("call row");
    assert_eq!(row.status, status::QUEUED);
    assert_eq!(row.campaign.as_deref(), Some("spring"));
    assert_eq!(row.customer.as_deref(), Some("+8613800138000"));
    assert_eq!(row.recording_key, marker.key);
    assert_eq!(row.recording_bytes as usize, bytes.len());
    assert!(
        (row.duration_ms.unwrap_or(0) - recorded_ms).abs() <= 1,
        "{row:?}"
    );
    assert!(
        row.error.as_deref().unwrap_or("").contains("stopped"),
        "{row:?}"
    );
    assert_eq!(queue.depth(Stage::Transcribe).await.unwrap(), 1);
    // The upload the dialer left half done is gone.
    assert!(s3
        .put_part(
            &StorePath::from(marker.key.as_str()),
            marker.upload.as_ref().unwrap(),
            9,
            vec![0u8; 16].into(),
        )
        .await
        .is_err());
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0, "spool empty");

    // A second run changes nothing.
    assert!(recover_and_drain(store.clone(), &spool, &book)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(queue.depth(Stage::Transcribe).await.unwrap(), 1);
    assert_eq!(db.list_calls(None, 10).await.unwrap().len(), 1);
    assert_eq!(db.get_call(CALL_ID).await.unwrap().unwrap(), row);
    let listed: Vec<String> = objects
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed, vec![marker.key.clone()]);
}
