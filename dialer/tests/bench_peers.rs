//! The benchmark machinery behind `callqa bench dial` and `callqa bench calls`, at a small
//! scale: SIPp's UAC and the dialer both complete every call against SIPp's UAS, and a few
//! concurrent calls get all of the UAS's RTP into their recordings. The figures themselves
//! come from the commands.

use callqa_dialer::bench::{
    concurrent_calls, dial_vs_sipp, CallsOptions, DialBenchOptions, MediaSource,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_rate_bench_completes_every_call_on_both_sides() {
    let tmp = tempfile::tempdir().unwrap();
    let report = dial_vs_sipp(&DialBenchOptions {
        sipp: "sipp".into(),
        work_dir: tmp.path().to_path_buf(),
        calls: 500,
        concurrency: 50,
        rounds: 1,
    })
    .await
    .unwrap();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    assert!(report.zero_failures, "{report:?}");
    let round = &report.rounds[0];
    assert_eq!(round.sipp_uac.successful, 500);
    assert_eq!(round.dialer.calls, 500);
    assert_eq!(round.dialer.failures, 0);
    assert!(report.sipp_uac_calls_per_sec > 0.0 && report.dialer_calls_per_sec > 0.0);
    // No call needed a retransmission (T1 = 500 ms) on an idle loopback.
    assert!(round.dialer.max_setup_ms < 500, "{:?}", round.dialer);
}

async fn concurrent_round(media: MediaSource) {
    let tmp = tempfile::tempdir().unwrap();
    let report = concurrent_calls(&CallsOptions {
        media,
        sipp: "sipp".into(),
        work_dir: tmp.path().to_path_buf(),
        concurrent: 20,
        hold_s: 2,
        uas_instances: 2,
        ramp_cps: 100,
    })
    .await
    .unwrap();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    assert_eq!(report.answered, 20, "{report:?}");
    assert_eq!(report.failures, 0);
    assert_eq!(report.expected_packets, 20 * 100);
    assert!(report.peak_concurrent >= 15, "{report:?}");
    assert!(report.ok, "loss {}%", report.loss_percent);
    assert!(report.dialer_cpu_s > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_bench_records_every_played_packet() {
    concurrent_round(MediaSource::Pcap).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_bench_records_every_echoed_packet() {
    concurrent_round(MediaSource::Echo).await;
}
