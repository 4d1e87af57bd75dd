//! A call whose storage is down spools its recording and uploads it later; a dial refused by
//! the compliance gates never puts an INVITE on the wire.

mod support;

use std::sync::Arc;
use std::time::Duration;

use callqa_dialer::recording::release;
use callqa_dialer::{dial, dial_checked, drain_spool, wav, ComplianceLookup, DialRequest, Outcome};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::{ObjectStore, RetryConfig};
use support::*;

fn request(call_id: &str, number: &str, play: std::path::PathBuf) -> DialRequest {
    DialRequest {
        number: number.into(),
        trunk: "sipp".into(),
        caller_id: None,
        play,
        call_id: call_id.into(),
        recording_key: format!("recordings/{call_id}.wav"),
        campaign: None,
    }
}

/// An S3 store on a port nobody listens on: every request is refused, like a dead Garage.
fn dead_s3() -> Arc<dyn ObjectStore> {
    let port = free_udp_port(); // nothing listens on this TCP port either
    Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(format!("http://127.0.0.1:{port}"))
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_region("garage")
            .with_bucket_name("recordings")
            .with_access_key_id("GKtestkey0001")
            .with_secret_access_key("0123456789abcdef0123")
            .with_retry(RetryConfig {
                max_retries: 0,
                ..RetryConfig::default()
            })
            .build()
            .unwrap(),
    )
}

#[tokio::test]
async fn storage_down_spools_and_drain_uploads_later() {
    let tmp = tempfile::tempdir().unwrap();
    let prompt = speech_wav(
        tmp.path(),
        "prompt",
        "This prompt is long enough to be interrupted by the callee hanging up.",
    );
    let mut sipp = Sipp::uas("uas_callee_hangup.xml", tmp.path());
    let cfg = config("sipp", &sipp.address());
    let spool = tmp.path().join("spool");
    let r = dial(
        &cfg,
        request("call-spool", "+8613800138000", prompt),
        dead_s3(),
        &spool,
    )
    .await
    .unwrap();
    assert!(sipp.passed(Duration::from_secs(10)));
    assert_eq!(r.outcome, Outcome::Answered);
    let rec = r.recording.expect("recording");
    assert!(rec.spooled, "{rec:?}");
    assert!(spool.join("call-spool.wav").exists() && spool.join("call-spool.json").exists());
    // Kept until the call is booked, then released; the spool entry stays for the drain.
    assert!(spool.join("call-spool.live").exists());
    release(&spool, "call-spool", &rec).await.unwrap();
    assert!(!spool.join("call-spool.live").exists());
    assert!(spool.join("call-spool.wav").exists() && spool.join("call-spool.json").exists());
    // Still down: nothing is lost or removed.
    assert!(drain_spool(dead_s3(), &spool).await.is_err());
    assert!(spool.join("call-spool.wav").exists());
    // Storage is back.
    let store_dir = tmp.path().join("store");
    std::fs::create_dir_all(&store_dir).unwrap();
    let store: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(&store_dir).unwrap());
    let uploaded = drain_spool(store.clone(), &spool).await.unwrap();
    assert_eq!(uploaded, vec![rec.key.clone()]);
    let bytes = stored(store.as_ref(), rec.key.as_str()).await;
    assert_eq!(bytes.len() as u64, rec.bytes);
    let pcm = wav::parse(&bytes).unwrap();
    assert_eq!(pcm.channels, 2);
    // About one second of call, prompt audible on channel 0.
    let ours: Vec<i16> = pcm.samples.iter().step_by(2).copied().collect();
    assert!(ours.len() >= 6_000, "{} frames", ours.len());
    assert!(rms(&ours) > 300.0);
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
}

struct Lists;
impl ComplianceLookup for Lists {
    fn blacklisted(&self, number: &str) -> Option<String> {
        (number == "+8613900000000").then(|| "opt_out".to_string())
    }
    fn consent(&self, _: &str, _: &str) -> bool {
        false
    }
}

#[tokio::test]
async fn refused_dials_send_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let prompt = speech_wav(tmp.path(), "prompt", "Hello.");
    // A fake trunk that records whatever arrives.
    let trunk = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = config("sipp", &trunk.local_addr().unwrap().to_string());
    let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let spool = tmp.path().join("spool");
    let cases: Vec<(&str, Option<&str>, Option<&str>, &str)> = vec![
        ("+8613900000000", None, None, "blacklist"),
        ("+8613800138000", None, Some("marketing"), "no_consent"),
        ("+8613800138000", Some("+861099999999"), None, "caller_id"),
        ("+86128", None, None, "invalid_number"),
    ];
    for (i, (number, caller, scope, kind)) in cases.into_iter().enumerate() {
        let mut req = request(&format!("refused-{i}"), number, prompt.clone());
        req.caller_id = caller.map(str::to_string);
        let r = dial_checked(&cfg, req, &Lists, scope, 0, store.clone(), &spool)
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Refused, "{kind}: {r:?}");
        assert!(!r.reason.is_empty());
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["outcome"], "refused");
    }
    cfg.calling_hours = "03:00-03:00".into(); // an empty window: always outside
    let r = dial_checked(
        &cfg,
        request("refused-hours", "+8613800138000", prompt.clone()),
        &Lists,
        None,
        0,
        store.clone(),
        &spool,
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::Refused);
    assert!(r.reason.contains("outside calling hours"), "{}", r.reason);
    cfg.calling_hours = "00:00-23:59".into();
    let r = dial_checked(
        &cfg,
        request("refused-attempts", "+8613800138000", prompt),
        &Lists,
        None,
        3,
        store,
        &spool,
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::Refused);
    let mut buf = [0u8; 2048];
    let got = tokio::time::timeout(Duration::from_millis(300), trunk.recv_from(&mut buf)).await;
    assert!(got.is_err(), "a refused dial sent a packet to the trunk");
}
