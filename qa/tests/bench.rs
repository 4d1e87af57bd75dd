//! Scoring throughput on synthetic transcripts. Run with
//! `cargo test -p callqa-qa --test bench -- --ignored --nocapture`.

#[test]
#[ignore = "benchmark: prints calls/s"]
fn scoring_throughput() {
    // Warm the lazily built tables (pinyin, lexicons, categories) first.
    callqa_qa::bench_scoring(20);
    let n = 2000;
    let rate = callqa_qa::bench_scoring(n);
    assert!(rate > 0.0);
    eprintln!("scored {n} synthetic calls (~31 segments each) at {rate:.0} calls/s on one core");
}
