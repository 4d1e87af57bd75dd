//! Killing the indexer mid-batch loses no call: documents added but not committed are
//! not acknowledged, so after a restart every stored transcript is searchable exactly once.

mod common;

use common::{json_lines, wait_calls, Callqa};
use std::time::{Duration, Instant};

fn statuses(cq: &Callqa, ids: &[String]) -> Vec<String> {
    ids.iter()
        .map(|id| {
            cq.json(&["calls", "show", id, "--json"])["status"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

#[test]
fn killing_the_indexer_mid_batch_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let cq = Callqa::embedded(&tmp.path().join("data"));
    let samples = callqa_tests::workspace_root().join("deploy/samples");
    let mut args = vec!["ingest".to_string()];
    for f in std::fs::read_dir(&samples).unwrap() {
        args.push(f.unwrap().path().display().to_string());
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let ids: Vec<String> = json_lines(&cq.ok(&a))
        .iter()
        .map(|l| l["call_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3);

    // Transcribe and score only.
    let mut front = cq.spawn(
        &["worker", "--stages", "transcribe,score"],
        &tmp.path().join("front.log"),
    );
    let start = Instant::now();
    while statuses(&cq, &ids).iter().any(|s| s != "scored") {
        assert!(
            start.elapsed() < Duration::from_secs(400),
            "not scored: {:?}",
            statuses(&cq, &ids)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // "scored" is written just before the index job is queued and the score job acked.
    std::thread::sleep(Duration::from_secs(3));
    let _ = front.kill();
    let _ = front.wait();

    // An indexer with a long commit delay takes the whole batch, then dies uncommitted.
    let log = tmp.path().join("indexer1.log");
    let mut cmd = cq.command(&["worker", "--stages", "index"]);
    cmd.env("CALLQA_SEARCH_COMMIT_INTERVAL_MS", "120000");
    cmd.stderr(std::fs::File::create(&log).unwrap());
    let mut indexer = cmd.spawn().unwrap();
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.matches("indexing (uncommitted)").count() == ids.len() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "indexer never took the batch: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    indexer.kill().unwrap(); // SIGKILL mid-batch
    indexer.wait().unwrap();
    let r = cq.json(&["search", "", "--json"]);
    assert_eq!(r["total"], 0, "nothing was committed: {r}");
    assert!(statuses(&cq, &ids).iter().all(|s| s == "scored"));

    // A new indexer gets the unacknowledged jobs back once their lease runs out.
    let mut indexer = cq.spawn(
        &["worker", "--stages", "index"],
        &tmp.path().join("indexer2.log"),
    );
    let rows = wait_calls(&cq, &ids, Duration::from_secs(180));
    let _ = indexer.kill();
    let _ = indexer.wait();
    assert!(rows.iter().all(|r| r["status"] == "done"));
    let r = cq.json(&["search", "", "--limit", "50", "--json"]);
    assert_eq!(r["total"], 3, "every call exactly once: {r}");
    let mut hits: Vec<&str> = r["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["call_id"].as_str().unwrap())
        .collect();
    hits.sort();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(hits, want);
    // Re-indexing from stored transcripts gives the same single copy of each call.
    cq.ok(&["reindex"]);
    let r = cq.json(&["search", "退款", "--json"]);
    assert_eq!(r["total"], 1, "{r}");
}
