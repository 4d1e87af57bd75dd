//! The web UI end to end in headless Chromium: ingests the three sample calls with real
//! whisper, starts `callqa serve`, and runs `tests/e2e/web.spec.mjs` (playwright-core) to
//! log in, search, play and seek a recording, see the report chart, blacklist a number,
//! import consent records and edit a campaign's scorecard.
//! Needs `apt-get install -y chromium fonts-wqy-zenhei` and node/npm; screenshots land in
//! `$CARGO_TARGET_DIR/e2e-artifacts/` (else `tests/e2e/artifacts/`).

mod common;

use common::{json_lines, Callqa};
use serde_json::{Map, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The browser flow may not hang the test run; it normally takes under 10 s.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(300);

/// Kills `callqa serve` however the test ends, so a failed assertion leaves no server.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn e2e_dir() -> PathBuf {
    callqa_tests::workspace_root().join("tests/e2e")
}

fn artifacts_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => PathBuf::from(t).join("e2e-artifacts"),
        None => e2e_dir().join("artifacts"),
    }
}

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.is_file(),
        "Chromium not found at {}: install it with `apt-get install -y chromium fonts-wqy-zenhei` \
         (or set CHROMIUM)",
        path.display()
    );
    path
}

/// `npm ci` into tests/e2e/node_modules unless playwright-core is already there.
fn ensure_node_modules(dir: &Path) {
    if dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        return;
    }
    let o = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run npm (apt-get install -y nodejs npm): {e}"));
    assert!(
        o.status.success(),
        "npm ci in {} failed:\n{}\n{}",
        dir.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// True once `GET /healthz` answers 200.
fn healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200") || buf.starts_with("HTTP/1.0 200")
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[test]
fn web_ui_in_headless_chromium() {
    let e2e = e2e_dir();
    let browser = chromium();
    ensure_node_modules(&e2e);
    let artifacts = artifacts_dir();
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");

    // Real calls, really transcribed: the browser searches what whisper heard.
    let tmp = tempfile::tempdir().expect("temp dir");
    let cq = Callqa::embedded(&tmp.path().join("data"));
    let samples = callqa_tests::workspace_root().join("deploy/samples");
    let names = [
        "en_refund_complaint.wav",
        "zh_refund_complaint.wav",
        "zh_opt_out.wav",
    ];
    let files: Vec<String> = names
        .iter()
        .map(|n| samples.join(n).display().to_string())
        .collect();
    let mut args = vec![
        "ingest",
        "--wait",
        "--campaign",
        "cards",
        "--agent",
        "anna",
        "--customer",
        "+8613800138000",
    ];
    args.extend(files.iter().map(String::as_str));
    let started = Instant::now();
    let lines = json_lines(&cq.ok(&args));
    eprintln!(
        "ingest of {} calls took {:?}",
        names.len(),
        started.elapsed()
    );
    assert_eq!(lines.len(), names.len(), "one line per file: {lines:?}");
    let mut ids = Map::new();
    for (name, line) in names.iter().zip(&lines) {
        assert_eq!(line["status"], "done", "{name}: {line}");
        ids.insert((*name).to_string(), line["call_id"].clone());
    }

    let user = cq.json(&["user", "add", "admin", "--admin", "--json"]);
    let password = user["password"]
        .as_str()
        .expect("password in user add --json");

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let serve_log = tmp.path().join("serve.log");
    let server = Server(cq.spawn(&["serve", "--listen", &listen], &serve_log));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !healthy(port) {
        assert!(
            Instant::now() < deadline,
            "callqa serve did not answer /healthz on {listen}:\n{}",
            tail(&serve_log, 40)
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let out_path = tmp.path().join("node.out");
    let out = std::fs::File::create(&out_path).expect("node output file");
    let err = out.try_clone().expect("node output file");
    let started = Instant::now();
    let mut node = Command::new("node")
        .args(["--test", "--test-reporter=spec", "web.spec.mjs"])
        .current_dir(&e2e)
        .env("BASE_URL", format!("http://{listen}"))
        .env("USER", "admin")
        .env("PASSWORD", password)
        .env("ARTIFACTS", &artifacts)
        .env("CALL_IDS", Value::Object(ids).to_string())
        .env("CHROMIUM", &browser)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node (apt-get install -y nodejs npm): {e}"));
    let status = loop {
        if let Some(s) = node.try_wait().expect("wait for node") {
            break Some(s);
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = node.kill();
            let _ = node.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let elapsed = started.elapsed();
    drop(server);
    let _ = std::fs::copy(&serve_log, artifacts.join("serve.log"));
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    let _ = std::fs::write(artifacts.join("node.out"), &output);
    eprintln!(
        "browser flow took {elapsed:?}; screenshots in {}",
        artifacts.display()
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "the browser test failed ({status:?} after {elapsed:?}); screenshots and logs in {}\n\
         --- node output ---\n{output}\n--- serve log (tail) ---\n{}",
        artifacts.display(),
        tail(&artifacts.join("serve.log"), 40)
    );
    let shots = std::fs::read_dir(&artifacts)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "png"))
                .count()
        })
        .unwrap_or(0);
    assert!(
        shots >= 10,
        "a screenshot per step, found {shots} in {}",
        artifacts.display()
    );
}
