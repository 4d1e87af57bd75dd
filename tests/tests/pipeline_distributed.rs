//! The same pipeline on deployment backends: a real S3 store (Garage on loopback), RabbitMQ
//! and PostgreSQL, with several `callqa worker` processes. Every recording is transcribed
//! exactly once; a worker killed mid-transcription loses nothing and duplicates nothing;
//! bad files end in the dead-letter queue with their reason.

mod common;

use callqa_tests::speech::stereo_call;
use callqa_tests::{Garage, Side, Turn};
use common::{
    count_events, json_lines, rabbit_cleanup, rabbit_queue_depth, wait_calls, Callqa, PgDb,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

struct Deployment {
    _garage: Garage,
    _pg: PgDb,
    prefix: String,
    cq: Callqa,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        rabbit_cleanup(&self.prefix);
    }
}

fn deployment(dir: &Path) -> Deployment {
    let garage = Garage::start().expect("Garage S3 server");
    let pg = PgDb::create();
    let prefix = format!("callqa-test-{}", common::rand_suffix());
    let cfg = dir.join("callqa.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}\n[queue]\nurl = \"amqp://guest:guest@127.0.0.1:5672/%2f\"\nprefix = \"{prefix}\"\nretry_backoff_ms = 200\n\n[database]\nurl = \"{}\"\n",
            garage.config_toml(),
            pg.url()
        ),
    )
    .unwrap();
    let cq = Callqa {
        data_dir: dir.join("data"),
        config: Some(cfg),
        env: vec![("CALLQA_TRANSCRIBE_THREADS".into(), "1".into())],
    };
    Deployment {
        _garage: garage,
        _pg: pg,
        prefix,
        cq,
    }
}

const LINES: &[(&str, &str)] = &[
    (
        "Good morning, this is a reminder about your appointment tomorrow.",
        "Thank you, I will be there.",
    ),
    (
        "Hello, I am calling from the bank about your card payment.",
        "I want a refund for the second payment.",
    ),
    (
        "Hi, this is customer service returning your call.",
        "Please stop calling me.",
    ),
    (
        "Hello, we have a special offer on your mobile plan.",
        "I am not interested, I will file a complaint.",
    ),
];

fn make_calls(dir: &Path, n: usize) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for i in 0..n {
        let (a, c) = LINES[i % LINES.len()];
        let p = dir.join(format!("call_{i:02}.wav"));
        if i < LINES.len() {
            stereo_call(
                &[
                    Turn::say(Side::Agent, a, 500),
                    Turn::say(Side::Customer, c, 700),
                ],
                &p,
                8000,
            )
            .expect("call");
        } else {
            std::fs::copy(dir.join(format!("call_{:02}.wav", i % LINES.len())), &p).unwrap();
        }
        files.push(p);
    }
    files
}

fn ingest(cq: &Callqa, files: &[PathBuf]) -> Vec<String> {
    let mut args = vec!["ingest".to_string()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = cq.ok(&a);
    json_lines(&out)
        .iter()
        .map(|l| {
            assert_eq!(l["status"], "queued", "{l}");
            l["call_id"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn twenty_recordings_two_workers_exactly_once_and_dead_letters() {
    let tmp = tempfile::tempdir().unwrap();
    let d = deployment(tmp.path());
    let mut files = make_calls(tmp.path(), 20);
    let corrupt = tmp.path().join("corrupt.wav");
    std::fs::write(&corrupt, b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunkjunk").unwrap();
    let empty = tmp.path().join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    files.push(corrupt);
    files.push(empty);
    let ids = ingest(&d.cq, &files);
    assert_eq!(ids.len(), 22);
    let logs = [tmp.path().join("w1.log"), tmp.path().join("w2.log")];
    let mut workers: Vec<_> = logs.iter().map(|l| d.cq.spawn(&["worker"], l)).collect();
    let rows = wait_calls(&d.cq, &ids, Duration::from_secs(900));
    for w in &mut workers {
        let _ = w.kill();
        let _ = w.wait();
    }
    let (good, bad) = rows.split_at(20);
    for r in good {
        assert_eq!(r["status"], "done", "{r}");
        assert!(!r["segments"].as_array().unwrap().is_empty(), "{r}");
        assert!(r["recording"]["key"]
            .as_str()
            .unwrap()
            .starts_with("recordings/"));
    }
    for r in bad {
        assert_eq!(r["status"], "failed", "{r}");
        assert!(
            r["error"].as_str().unwrap().contains("cannot decode"),
            "{r}"
        );
    }
    // Exactly once: one transcription per call across both workers, and both worked.
    let done = count_events(&logs, "transcription stored");
    for id in &ids[..20] {
        assert_eq!(
            done.get(id),
            Some(&1),
            "call {id} transcribed {:?} times",
            done.get(id)
        );
    }
    let per_worker: Vec<usize> = logs
        .iter()
        .map(|l| count_events(std::slice::from_ref(l), "transcription stored").len())
        .collect();
    assert!(
        per_worker.iter().all(|n| *n > 0),
        "both workers should share the work: {per_worker:?}"
    );
    // The customer's words are in the customer channel.
    let refund = &rows[1];
    assert!(
        common::speaker_text(refund, "customer").contains("refund"),
        "{refund}"
    );
    // Bad files are in RabbitMQ's dead-letter queue.
    assert_eq!(rabbit_queue_depth(&format!("{}.dlq", d.prefix)), 2);
    // Indexed once each: a word every call shares finds each call once.
    let r = d.cq.json(&[
        "search",
        "calling OR reminder OR offer OR service",
        "--limit",
        "100",
        "--json",
    ]);
    let mut hit_ids: Vec<&str> = r["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["call_id"].as_str().unwrap())
        .collect();
    let n = hit_ids.len();
    hit_ids.sort();
    hit_ids.dedup();
    assert_eq!(n, hit_ids.len(), "a call indexed twice: {r}");
}

#[test]
fn a_worker_killed_mid_transcription_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = deployment(tmp.path());
    // A long call, so the kill lands during transcription.
    let p = tmp.path().join("long.wav");
    let mut turns = Vec::new();
    for (a, c) in LINES.iter().chain(LINES.iter()) {
        turns.push(Turn::say(Side::Agent, a, 400));
        turns.push(Turn::say(Side::Customer, c, 400));
    }
    stereo_call(&turns, &p, 8000).expect("long call");
    let ids = ingest(&d.cq, &[p]);
    let log_a = tmp.path().join("a.log");
    let mut a = d.cq.spawn(&["worker", "--stages", "transcribe"], &log_a);
    let start = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(&log_a).unwrap_or_default();
        if text.contains("transcription started") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "worker A never started: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
    a.kill().unwrap(); // SIGKILL: no ack, no cleanup
    a.wait().unwrap();
    let log_b = tmp.path().join("b.log");
    let mut b = d.cq.spawn(&["worker"], &log_b);
    let rows = wait_calls(&d.cq, &ids, Duration::from_secs(600));
    let _ = b.kill();
    let _ = b.wait();
    assert_eq!(rows[0]["status"], "done", "{}", rows[0]);
    let a_done = count_events(std::slice::from_ref(&log_a), "transcription stored");
    assert!(a_done.is_empty(), "worker A was killed before it finished");
    let b_done = count_events(&[log_b], "transcription stored");
    assert_eq!(b_done.get(&ids[0]), Some(&1));
    assert!(common::speaker_text(&rows[0], "customer").contains("refund"));
}
