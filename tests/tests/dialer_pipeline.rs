//! The dialer end to end through the real binary: `callqa dial` calls a SIPp UAS that
//! answers and speaks; the stereo recording is in the S3 store (Garage) when the dial
//! returns, and the pipeline transcribes the customer's words from the customer channel.

mod common;

use callqa_tests::pcap::{wav_to_rtp_pcap, PCMU};
use callqa_tests::speech::espeak_wav;
use callqa_tests::{free_udp_port, wait_udp_bound, workspace_root, Garage};
use common::{wait_calls, Callqa};
use object_store::path::Path as StorePath;
use object_store::ObjectStore;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn dial_records_to_s3_and_the_pipeline_transcribes_the_customer() {
    let tmp = tempfile::tempdir().unwrap();
    let speech = tmp.path().join("speech.wav");
    espeak_wav(
        "I want a refund, otherwise I will file a complaint.",
        "en-gb",
        &speech,
    )
    .unwrap();
    wav_to_rtp_pcap(&speech, &tmp.path().join("speech.pcap"), PCMU).unwrap();
    let prompt = tmp.path().join("prompt.wav");
    espeak_wav("Hello, this is Acme Bank.", "en-us", &prompt).unwrap();

    let port = free_udp_port();
    let scenario = workspace_root().join("dialer/tests/scenarios/uas_answer_play.xml");
    let mut sipp = Command::new("sipp")
        .current_dir(tmp.path())
        .arg("-sf")
        .arg(&scenario)
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-mp",
            &free_udp_port().to_string(),
        ])
        .args(["-m", "1", "-nostdin", "-timeout", "90s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp (apt-get install sip-tester)");
    assert!(
        wait_udp_bound(port, Duration::from_secs(10)),
        "SIPp did not bind UDP port {port}"
    );

    let garage = Garage::start().expect("Garage");
    let cfg = tmp.path().join("callqa.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}\n[dialer]\ncaller_ids = [\"+861012345678\"]\ncalling_hours = \"00:00-23:59\"\n\n[[dialer.trunks]]\nname = \"sipp\"\naddress = \"127.0.0.1:{port}\"\nmax_concurrent = 10\n",
            garage.config_toml()
        ),
    )
    .unwrap();
    let cq = Callqa {
        data_dir: tmp.path().join("data"),
        config: Some(cfg),
        env: vec![],
    };
    let prompt_s = prompt.display().to_string();
    let out = cq.run(&[
        "dial",
        "+8613800138000",
        "--trunk",
        "sipp",
        "--play",
        &prompt_s,
        "--json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "dial failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["outcome"], "answered", "{report}");
    assert_eq!(report["sip_code"], 200);
    let _ = sipp.wait();

    // The recording is already in the S3 store when the call has ended.
    let key = report["recording"]["key"].as_str().unwrap().to_string();
    assert_eq!(report["recording"]["spooled"], false);
    let store = garage.store().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let meta = rt
        .block_on(store.head(&StorePath::from(key.as_str())))
        .expect("recording in S3");
    assert!(
        meta.size > 40_000,
        "a few seconds of 8 kHz stereo: {}",
        meta.size
    );

    // The call was queued; a worker transcribes it.
    let id = report["call_id"].as_str().unwrap().to_string();
    let mut worker = cq.spawn(&["worker"], &tmp.path().join("worker.log"));
    let rows = wait_calls(&cq, std::slice::from_ref(&id), Duration::from_secs(300));
    let _ = worker.kill();
    let _ = worker.wait();
    let call = &rows[0];
    assert_eq!(call["status"], "done", "{call}");
    let customer = common::speaker_text(call, "customer");
    assert!(customer.contains("refund"), "customer channel: {call}");
    assert!(
        !common::speaker_text(call, "agent").contains("refund"),
        "{call}"
    );
}
