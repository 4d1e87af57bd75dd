//! Running the real `callqa` binary from integration tests.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// A `callqa` invocation with a data dir and optional config/env.
pub struct Callqa {
    pub data_dir: PathBuf,
    pub config: Option<PathBuf>,
    pub env: Vec<(String, String)>,
}

impl Callqa {
    pub fn embedded(data_dir: &Path) -> Callqa {
        Callqa {
            data_dir: data_dir.to_path_buf(),
            config: None,
            env: Vec::new(),
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(callqa_tests::callqa_bin());
        c.arg("--data-dir").arg(&self.data_dir);
        if let Some(cfg) = &self.config {
            c.arg("--config").arg(cfg);
        }
        c.args(args);
        c.env("CALLQA_TRANSCRIBE_MODEL", callqa_tests::model_path());
        c.env("CALLQA_TRANSCRIBE_THREADS", "2");
        c.env("CALLQA_LOG", "info,callqa=info");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run callqa {args:?}: {e}"))
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "callqa {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("callqa {args:?}: bad JSON {e}: {out}"))
    }

    /// Starts a long-running process (worker, serve) with its logs in `log`.
    pub fn spawn(&self, args: &[&str], log: &Path) -> Child {
        let f = std::fs::File::create(log).expect("log file");
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::from(f))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start callqa {args:?}: {e}"))
    }
}

/// One JSON object per line.
pub fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// Text of a call's segments for one speaker, lower-cased.
pub fn speaker_text(call: &Value, speaker: &str) -> String {
    call["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .filter(|s| s["speaker"] == speaker)
        .map(|s| s["text"].as_str().unwrap_or("").to_lowercase())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A fresh PostgreSQL database on the local server, dropped with the guard.
pub struct PgDb {
    pub name: String,
}

impl PgDb {
    pub fn create() -> PgDb {
        let name = format!(
            "callqa_t{}",
            std::process::id() as u64 * 1000 + rand_suffix() % 1000
        );
        psql(&format!("CREATE DATABASE {name}"));
        PgDb { name }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

pub fn psql(sql: &str) {
    let o = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .expect("psql (apt-get install postgresql-client)");
    assert!(
        o.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

pub fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
}

/// Messages waiting in a RabbitMQ queue (through `rabbitmqctl`).
pub fn rabbit_queue_depth(name: &str) -> u64 {
    let o = Command::new("rabbitmqctl")
        .args(["-q", "list_queues", "name", "messages"])
        .output()
        .expect("rabbitmqctl");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| {
            let mut it = l.split_whitespace();
            (it.next() == Some(name)).then(|| it.next().and_then(|n| n.parse().ok()).unwrap_or(0))
        })
        .unwrap_or(0)
}

/// Deletes the queues of a test's prefix.
pub fn rabbit_cleanup(prefix: &str) {
    for stage in ["transcribe", "score", "index"] {
        for q in [
            format!("{prefix}.{stage}"),
            format!("{prefix}.{stage}.retry"),
        ] {
            let _ = Command::new("rabbitmqctl")
                .args(["-q", "delete_queue", &q])
                .output();
        }
    }
    let _ = Command::new("rabbitmqctl")
        .args(["-q", "delete_queue", &format!("{prefix}.dlq")])
        .output();
}

/// Counts log lines of `event` per call id in worker logs (`call_id=<id>` fields).
pub fn count_events(logs: &[PathBuf], event: &str) -> std::collections::HashMap<String, usize> {
    let mut m = std::collections::HashMap::new();
    for l in logs {
        let text = std::fs::read_to_string(l).unwrap_or_default();
        for line in text.lines().filter(|l| l.contains(event)) {
            if let Some(pos) = line.find("call_id=") {
                let id: String = line[pos + 8..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                *m.entry(id).or_insert(0) += 1;
            }
        }
    }
    m
}

/// Waits until every listed call is done or failed.
pub fn wait_calls(cq: &Callqa, ids: &[String], timeout: std::time::Duration) -> Vec<Value> {
    let start = std::time::Instant::now();
    loop {
        let rows: Vec<Value> = ids
            .iter()
            .map(|id| cq.json(&["calls", "show", id, "--json"]))
            .collect();
        if rows
            .iter()
            .all(|r| r["status"] == "done" || r["status"] == "failed")
        {
            return rows;
        }
        assert!(
            start.elapsed() < timeout,
            "calls not finished in {timeout:?}: {:?}",
            rows.iter()
                .map(|r| (r["call_id"].clone(), r["status"].clone()))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}
