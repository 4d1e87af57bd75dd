//! The call-setup benchmark: the dialer against a SIPp UAS, next to a SIPp UAC against the
//! same kind of UAS, in one run. Ignored by default (it loads the machine); run with
//! `cargo test -p callqa-dialer --release --test bench_setup -- --ignored --nocapture`.

mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use callqa_dialer::bench::{setup_rate, SetupPlan};
use callqa_dialer::Outcome;
use support::*;

const CALLS: u64 = 2000;

/// A SIPp UAS answering 486 to `calls` INVITEs: setup only, no media.
fn busy_uas(calls: u64, cwd: &std::path::Path) -> (std::process::Child, u16) {
    let port = free_udp_port();
    let child = Command::new("sipp")
        .current_dir(cwd)
        .arg("-sf")
        .arg(scenario("uas_busy.xml"))
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            &calls.to_string(),
        ])
        .args(["-buff_size", "4194304", "-nostdin", "-timeout", "120s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    (child, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn setup_rate_vs_sipp() {
    let tmp = tempfile::tempdir().unwrap();
    let prompt = speech_wav(tmp.path(), "prompt", "Hi.");

    // Peer figure: SIPp UAC against the same busy UAS scenario, as fast as it goes.
    let uac_scn = tmp.path().join("uac_busy.xml");
    std::fs::write(&uac_scn, UAC_BUSY).unwrap();
    let (mut uas, port) = busy_uas(CALLS, tmp.path());
    let started = Instant::now();
    let status = Command::new("sipp")
        .current_dir(tmp.path())
        .arg(format!("127.0.0.1:{port}"))
        .arg("-sf")
        .arg(&uac_scn)
        .args(["-i", "127.0.0.1", "-p", &free_udp_port().to_string()])
        .args([
            "-m",
            &CALLS.to_string(),
            "-r",
            "20000",
            "-l",
            "200",
            "-buff_size",
            "4194304",
        ])
        .args(["-nostdin", "-timeout", "120s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let sipp_secs = started.elapsed().as_secs_f64();
    let _ = uas.wait();
    assert!(status.success(), "SIPp UAC had failed calls");
    let sipp_rate = CALLS as f64 / sipp_secs;

    let (mut uas, port) = busy_uas(CALLS, tmp.path());
    let cfg = config("sipp", &format!("127.0.0.1:{port}"));
    let store: Arc<dyn object_store::ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let plan = SetupPlan {
        trunk: "sipp".into(),
        prompt,
        calls: CALLS,
        concurrency: 200,
        expect: Outcome::Busy,
    };
    let bench = setup_rate(&cfg, &plan, store, &tmp.path().join("spool"))
        .await
        .unwrap();
    let _ = uas.wait();
    println!(
        "setup rate: dialer {:.0} calls/s ({} failures, mean setup {:.1} ms), SIPp UAC {:.0} calls/s, ratio {:.0}%",
        bench.calls_per_sec,
        bench.failures,
        bench.mean_setup_ms,
        sipp_rate,
        100.0 * bench.calls_per_sec / sipp_rate
    );
    assert_eq!(bench.failures, 0);
}

const UAC_BUSY: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="uac busy">
  <send retrans="500"><![CDATA[
INVITE sip:+8613800138000@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:+861012345678@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:+8613800138000@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:sipp@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 8
]]></send>
  <recv response="180" optional="true"/>
  <recv response="486"/>
  <send><![CDATA[
ACK sip:+8613800138000@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:+861012345678@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
</scenario>
"#;
