//! Calls placed by the dialer against SIPp on loopback: answered with speech, busy, not
//! found, never answered, digest-challenged, and hung up by the callee.

mod support;

use std::sync::Arc;
use std::time::Duration;

use callqa_dialer::{dial, wav, DialRequest, Outcome};
use object_store::local::LocalFileSystem;
use object_store::ObjectStore;
use support::*;

const CUSTOMER_TEXT: &str = "I want a refund, otherwise I will file a complaint";

fn request(call_id: &str, play: std::path::PathBuf) -> DialRequest {
    DialRequest {
        number: "+8613800138000".into(),
        trunk: "sipp".into(),
        caller_id: Some("+861012345678".into()),
        play,
        call_id: call_id.into(),
        recording_key: format!("recordings/{call_id}.wav"),
        campaign: None,
    }
}

fn store(dir: &std::path::Path) -> Arc<dyn ObjectStore> {
    std::fs::create_dir_all(dir).unwrap();
    Arc::new(LocalFileSystem::new_with_prefix(dir).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_call_records_prompt_and_customer_in_stereo() {
    let tmp = tempfile::tempdir().unwrap();
    let prompt = speech_wav(tmp.path(), "prompt", "Hello, this is callqa.");
    let speech_pcm = speech_pcap(tmp.path(), CUSTOMER_TEXT);
    let prompt_len = wav::read_prompt(&prompt).unwrap().len();
    assert!(
        prompt_len + 8000 < speech_pcm.len(),
        "the prompt must end well before the customer does"
    );

    let mut sipp = Sipp::uas("uas_answer_play.xml", tmp.path());
    let cfg = config("sipp", &sipp.address());
    let store = store(&tmp.path().join("store"));
    let report = dial(
        &cfg,
        request("call-answer", prompt),
        store.clone(),
        &tmp.path().join("spool"),
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, Outcome::Answered, "{report:?}");
    assert_eq!(report.sip_code, Some(200));
    assert!(sipp.passed(Duration::from_secs(10)), "SIPp scenario failed");
    let rec = report.recording.clone().expect("recording");
    assert!(!rec.spooled);
    // The recording is in the store by the time dial returns.
    let bytes = stored(store.as_ref(), rec.key.as_str()).await;
    assert_eq!(bytes.len() as u64, rec.bytes);
    let pcm = wav::parse(&bytes).unwrap();
    assert_eq!((pcm.channels, pcm.sample_rate), (2, 8000));
    let ours: Vec<i16> = pcm.samples.iter().step_by(2).copied().collect();
    let customer: Vec<i16> = pcm.samples.iter().skip(1).step_by(2).copied().collect();
    // The call lasts prompt + tail; the customer's speech plays from the answer on.
    assert!(
        ours.len() >= speech_pcm.len(),
        "recording {} samples shorter than the speech",
        ours.len()
    );
    let window =
        |v: &[i16], from: usize, len: usize| rms(&v[from.min(v.len())..(from + len).min(v.len())]);
    let prompt_rms = window(&ours, 0, prompt_len);
    let after_prompt = prompt_len + 2400;
    let span = speech_pcm.len() - after_prompt;
    let ours_after = window(&ours, after_prompt, span);
    let customer_after = window(&customer, after_prompt, span);
    let speech_ref = window(&speech_pcm, after_prompt, span);
    println!("prompt rms {prompt_rms:.0}, ours after {ours_after:.0}, customer after {customer_after:.0} (source {speech_ref:.0})");
    assert!(prompt_rms > 300.0, "prompt channel silent: {prompt_rms}");
    assert!(
        ours_after < 50.0,
        "our channel should be silent after the prompt: {ours_after}"
    );
    assert!(
        customer_after > speech_ref * 0.5,
        "customer speech missing: {customer_after} vs {speech_ref}"
    );
    let expected_packets = (speech_pcm.len() / 160) as u64;
    assert!(
        report.rtp_stats.packets_received + 2 >= expected_packets,
        "{:?}",
        report.rtp_stats
    );
    assert_eq!(report.rtp_stats.lost, 0);
    assert!(report.duration_ms >= 3000);
}

async fn failed_call(scenario: &str, call_id: &str) -> callqa_dialer::CallReport {
    let tmp = tempfile::tempdir().unwrap();
    let prompt = speech_wav(tmp.path(), "prompt", "Hello.");
    let mut sipp = Sipp::uas(scenario, tmp.path());
    let mut cfg = config("sipp", &sipp.address());
    cfg.ring_timeout_ms = 1_500;
    let report = dial(
        &cfg,
        request(call_id, prompt),
        store(&tmp.path().join("store")),
        &tmp.path().join("spool"),
    )
    .await
    .unwrap();
    assert!(
        sipp.passed(Duration::from_secs(10)),
        "SIPp scenario {scenario} failed: {report:?}"
    );
    assert!(report.recording.is_none());
    report
}

#[tokio::test]
async fn busy_maps_to_busy() {
    let r = failed_call("uas_busy.xml", "call-busy").await;
    assert_eq!((r.outcome, r.sip_code), (Outcome::Busy, Some(486)));
}

#[tokio::test]
async fn not_found_maps_to_rejected() {
    let r = failed_call("uas_not_found.xml", "call-404").await;
    assert_eq!((r.outcome, r.sip_code), (Outcome::Rejected, Some(404)));
}

#[tokio::test]
async fn ring_timeout_cancels() {
    let started = std::time::Instant::now();
    let r = failed_call("uas_no_answer.xml", "call-ring").await;
    assert_eq!(
        (r.outcome, r.sip_code),
        (Outcome::NoAnswer, Some(487)),
        "{r:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(1_500));
    assert!(r.reason.contains("cancelled"), "{}", r.reason);
}

#[tokio::test]
async fn digest_challenge_is_answered() {
    let tmp = tempfile::tempdir().unwrap();
    let prompt = speech_wav(tmp.path(), "prompt", "Hello.");
    let mut sipp = Sipp::uas("uas_auth.xml", tmp.path());
    let mut cfg = config("sipp", &sipp.address());
    cfg.tail_ms = 200;
    cfg.trunks[0].username = Some("trunkuser".into());
    cfg.trunks[0].password = Some("s3cret".into());
    let r = dial(
        &cfg,
        request("call-auth", prompt),
        store(&tmp.path().join("store")),
        &tmp.path().join("spool"),
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::Answered, "{r:?}");
    assert!(
        sipp.passed(Duration::from_secs(10)),
        "SIPp rejected our credentials"
    );
}

#[tokio::test]
async fn callee_bye_is_answered_and_ends_the_call() {
    let tmp = tempfile::tempdir().unwrap();
    let prompt = speech_wav(
        tmp.path(),
        "prompt",
        "This prompt is long enough to be interrupted by the callee hanging up.",
    );
    let mut sipp = Sipp::uas("uas_callee_hangup.xml", tmp.path());
    let mut cfg = config("sipp", &sipp.address());
    // Small parts so this call streams as a multipart upload while it runs.
    cfg.part_size = 8192;
    let store = store(&tmp.path().join("store"));
    let r = dial(
        &cfg,
        request("call-bye", prompt),
        store.clone(),
        &tmp.path().join("spool"),
    )
    .await
    .unwrap();
    let rec = r.recording.clone().unwrap();
    let bytes = stored(store.as_ref(), rec.key.as_str()).await;
    assert_eq!(bytes.len() as u64, rec.bytes);
    assert!(rec.bytes > 3 * 8192, "{rec:?}");
    assert_eq!(
        u32::from_le_bytes([bytes[40], bytes[41], bytes[42], bytes[43]]) as usize,
        bytes.len() - 44,
        "recordings carry exact WAV sizes"
    );
    assert_eq!(wav::parse(&bytes).unwrap().channels, 2);
    assert_eq!(r.outcome, Outcome::Answered);
    assert_eq!(r.reason, "callee hung up");
    assert!(r.duration_ms < 3_000, "{r:?}");
    assert!(
        sipp.passed(Duration::from_secs(10)),
        "SIPp did not get 200 for its BYE"
    );
}

#[tokio::test]
async fn wrong_digest_password_is_refused_by_the_trunk() {
    let tmp = tempfile::tempdir().unwrap();
    let prompt = speech_wav(tmp.path(), "prompt", "Hello.");
    let mut sipp = Sipp::uas("uas_auth.xml", tmp.path());
    let mut cfg = config("sipp", &sipp.address());
    cfg.trunks[0].username = Some("trunkuser".into());
    cfg.trunks[0].password = Some("wrong".into());
    let r = dial(
        &cfg,
        request("call-badauth", prompt),
        store(&tmp.path().join("store")),
        &tmp.path().join("spool"),
    )
    .await
    .unwrap();
    assert_eq!(
        (r.outcome, r.sip_code),
        (Outcome::Failed, Some(403)),
        "{r:?}"
    );
    sipp.passed(Duration::from_secs(5));
}

#[tokio::test]
async fn routing_fails_over_from_a_503_trunk() {
    use callqa_dialer::{dial_routed, TrunkRouter};
    let tmp = tempfile::tempdir().unwrap();
    let prompt = speech_wav(tmp.path(), "prompt", "Hello, this is callqa.");
    // First a plain call to the 503 trunk: a trunk failure, not the callee's answer.
    let mut bad = Sipp::uas("uas_unavailable.xml", tmp.path());
    let cfg = config("bad", &bad.address());
    let mut req = request("seed", prompt.clone());
    req.trunk = "bad".into();
    let mut seed = dial(
        &cfg,
        req,
        store(&tmp.path().join("s")),
        &tmp.path().join("spool"),
    )
    .await
    .unwrap();
    assert!(bad.passed(Duration::from_secs(5)));
    assert_eq!(
        (seed.outcome, seed.sip_code, seed.trunk_failure),
        (Outcome::Failed, Some(503), true)
    );

    let mut bad = Sipp::uas("uas_unavailable.xml", tmp.path());
    let mut good = Sipp::uas("uas_callee_hangup.xml", tmp.path());
    let mut cfg = config("bad", &bad.address());
    let mut second = cfg.trunks[0].clone();
    second.name = "good".into();
    second.address = good.address();
    cfg.trunks.push(second);
    let router = TrunkRouter::new(&cfg.trunks);
    // Made-up history makes "bad" look best, so it is tried first.
    seed.outcome = Outcome::Answered;
    seed.trunk_failure = false;
    for _ in 0..5 {
        router.record(&seed);
    }
    let r = dial_routed(
        &cfg,
        &router,
        request("call-route", prompt),
        store(&tmp.path().join("store")),
        &tmp.path().join("spool"),
    )
    .await
    .unwrap();
    assert_eq!(r.trunk, "good", "{r:?}");
    assert_eq!(r.outcome, Outcome::Answered);
    assert!(
        bad.passed(Duration::from_secs(5)),
        "the 503 trunk was not tried first"
    );
    assert!(good.passed(Duration::from_secs(5)));
}
