//! A process killed between booking a call's row and publishing its transcription job loses
//! no call: `callqa ingest` aborted right after the insert (`CALLQA_FAILPOINT=after_insert`)
//! leaves the call `stored` with no job anywhere, and a worker queues it and transcribes it
//! exactly once, on the embedded defaults and on RabbitMQ + PostgreSQL.

mod common;

use callqa_tests::speech::stereo_call;
use callqa_tests::{Side, Turn};
use common::{count_events, rabbit_cleanup, wait_calls, Callqa, PgDb};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn short_call(dir: &Path) -> PathBuf {
    let p = dir.join("short_call.wav");
    stereo_call(
        &[
            Turn::say(Side::Agent, "Hello, I am calling about your refund.", 300),
            Turn::say(Side::Customer, "Thank you very much.", 400),
        ],
        &p,
        8000,
    )
    .expect("call");
    p
}

/// Runs `callqa ingest FILE` killed between the row and the job; returns the call id.
fn ingest_crashing_after_insert(cq: &Callqa, file: &Path) -> String {
    let o = cq
        .command(&["ingest", &file.display().to_string()])
        .env("CALLQA_FAILPOINT", "after_insert")
        .output()
        .expect("callqa ingest");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "ingest was not killed: {stderr}");
    assert!(stderr.contains("CALLQA_FAILPOINT=after_insert"), "{stderr}");
    let calls = cq.json(&["calls", "list", "--json"]);
    let calls = calls["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["status"], "stored", "{calls:?}");
    let stored = cq.json(&["calls", "list", "--status", "stored", "--json"]);
    assert_eq!(
        stored["calls"].as_array().map(Vec::len),
        Some(1),
        "{stored}"
    );
    calls[0]["call_id"].as_str().expect("call_id").to_string()
}

/// Starts a worker and checks it queues the call once and it ends done with one transcript
/// and one index entry.
fn worker_finishes_it_once(cq: &Callqa, dir: &Path, id: &str) {
    let log = dir.join("worker.log");
    let mut worker = cq.spawn(&["worker"], &log);
    let rows = wait_calls(cq, &[id.to_string()], Duration::from_secs(300));
    // A few sweeps later nothing is queued again.
    std::thread::sleep(Duration::from_secs(1));
    let _ = worker.kill();
    let _ = worker.wait();
    let logs = [log];
    let text = std::fs::read_to_string(&logs[0]).unwrap_or_default();
    assert_eq!(rows[0]["status"], "done", "{}\n{text}", rows[0]);
    assert!(
        !rows[0]["segments"].as_array().expect("segments").is_empty(),
        "{}",
        rows[0]
    );
    let requeued = count_events(&logs, "without its transcription job");
    assert_eq!(requeued.get(id), Some(&1), "{text}");
    let transcribed = count_events(&logs, "transcription stored");
    assert_eq!(transcribed.get(id), Some(&1), "{text}");
    let r = cq.json(&["search", "", "--json"]);
    assert_eq!(r["total"], 1, "{r}");
    assert_eq!(r["hits"][0]["call_id"], id, "{r}");
}

/// The worker's sweep takes `stored` calls at once here; its grace is tested in the ingest
/// crate.
fn no_grace() -> (String, String) {
    ("CALLQA_QUEUE_REQUEUE_AFTER_MS".into(), "0".into())
}

#[test]
fn embedded_call_booked_without_its_job_is_transcribed_once() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cq = Callqa::embedded(&tmp.path().join("data"));
    cq.env.push(no_grace());
    let file = short_call(tmp.path());
    let id = ingest_crashing_after_insert(&cq, &file);
    worker_finishes_it_once(&cq, tmp.path(), &id);
}

/// Removes the test's RabbitMQ queues when it ends.
struct Queues(String);

impl Drop for Queues {
    fn drop(&mut self) {
        rabbit_cleanup(&self.0);
    }
}

#[test]
fn rabbitmq_postgres_call_booked_without_its_job_is_transcribed_once() {
    let tmp = tempfile::tempdir().unwrap();
    let pg = PgDb::create();
    let queues = Queues(format!("callqa-booking-{}", common::rand_suffix()));
    let cfg = tmp.path().join("callqa.toml");
    std::fs::write(
        &cfg,
        format!(
            "[queue]\nurl = \"amqp://guest:guest@127.0.0.1:5672/%2f\"\nprefix = \"{}\"\n\n\
             [database]\nurl = \"{}\"\n",
            queues.0,
            pg.url()
        ),
    )
    .unwrap();
    let cq = Callqa {
        data_dir: tmp.path().join("data"),
        config: Some(cfg),
        env: vec![no_grace()],
    };
    let file = short_call(tmp.path());
    let id = ingest_crashing_after_insert(&cq, &file);
    worker_finishes_it_once(&cq, tmp.path(), &id);
}
