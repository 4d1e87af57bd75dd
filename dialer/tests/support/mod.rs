//! Test harness: free ports, SIPp as the called party, baresip as an agent's phone, a client
//! on Garage (S3), espeak-ng
//! speech, a pcap writer that turns μ-law audio into RTP packets SIPp can play, and loudness
//! envelopes to compare recorded audio with its source.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use callqa_dialer::{DialerConfig, TrunkConfig};
use callqa_tests::Garage;
use object_store::aws::{AmazonS3, AmazonS3Builder, S3ConditionalPut};
use object_store::{ObjectStore, RetryConfig};

pub use callqa_tests::{free_udp_port, wait_udp_bound};

pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenarios")
        .join(name)
}

/// A SIPp UAS handling exactly one call, killed on drop if still running.
pub struct Sipp {
    child: Child,
    pub port: u16,
}

impl Sipp {
    pub fn uas(scenario_file: &str, cwd: &Path) -> Self {
        assert!(
            Command::new("sipp").arg("-v").output().is_ok(),
            "sipp missing: apt-get install -y sip-tester"
        );
        let port = free_udp_port();
        let media = port + 2;
        let child = Command::new("sipp")
            .current_dir(cwd)
            .args(["-sf"])
            .arg(scenario(scenario_file))
            .args(["-i", "127.0.0.1", "-mi", "127.0.0.1"])
            .args(["-p", &port.to_string(), "-mp", &media.to_string()])
            .args(["-m", "1", "-timeout", "40s", "-nostdin", "-trace_err"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sipp");
        assert!(
            wait_udp_bound(port, Duration::from_secs(10)),
            "SIPp did not bind UDP {port} within 10 s"
        );
        Self { child, port }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Waits for SIPp to end its one call; true when the scenario passed (exit code 0).
    pub fn passed(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The object at `key` in `store`.
pub async fn stored(store: &dyn ObjectStore, key: &str) -> bytes::Bytes {
    let path = object_store::path::Path::from(key);
    let object = store
        .get(&path)
        .await
        .unwrap_or_else(|e| panic!("{key}: {e}"));
    object.bytes().await.unwrap()
}

/// A client on the Garage bucket that gives up quickly when the server is gone.
pub fn garage_s3(garage: &Garage) -> Arc<AmazonS3> {
    s3_client(
        &garage.endpoint(),
        garage.region(),
        garage.bucket(),
        garage.access_key(),
        garage.secret_key(),
    )
}

/// A path-style S3 client on `bucket` at `endpoint` that gives up quickly.
pub fn s3_client(
    endpoint: &str,
    region: &str,
    bucket: &str,
    key: &str,
    secret: &str,
) -> Arc<AmazonS3> {
    Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_region(region)
            .with_bucket_name(bucket)
            .with_access_key_id(key)
            .with_secret_access_key(secret)
            .with_conditional_put(S3ConditionalPut::Disabled)
            .with_retry(RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(5),
                ..RetryConfig::default()
            })
            .build()
            .unwrap(),
    )
}

pub fn config(trunk: &str, address: &str) -> DialerConfig {
    DialerConfig {
        caller_ids: vec!["+861012345678".into()],
        calling_hours: "00:00-23:59".into(),
        trunks: vec![TrunkConfig {
            name: trunk.into(),
            address: address.into(),
            max_concurrent: 10,
            username: None,
            password: None,
        }],
        ring_timeout_ms: 10_000,
        tail_ms: 3_000,
        max_duration_ms: 30_000,
        ..DialerConfig::default()
    }
}

/// Speaks `text` with espeak-ng and converts it to 8 kHz mono 16-bit WAV.
pub fn speech_wav(dir: &Path, name: &str, text: &str) -> PathBuf {
    let raw = dir.join(format!("{name}.raw.wav"));
    let out = dir.join(format!("{name}.wav"));
    let ok = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&raw)
        .arg(text)
        .status()
        .expect("espeak-ng missing: apt-get install -y espeak-ng");
    assert!(ok.success());
    let ok = Command::new("sox")
        .arg(&raw)
        .args(["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"])
        .arg(&out)
        .status()
        .expect("sox missing: apt-get install -y sox");
    assert!(ok.success());
    out
}

/// Speaks `text` into `dir/speech.wav` and `dir/speech.pcap` (what the answering SIPp UAS
/// plays); returns the 8 kHz samples.
pub fn speech_pcap(dir: &Path, text: &str) -> Vec<i16> {
    let speech = speech_wav(dir, "speech", text);
    let pcm = callqa_dialer::wav::parse(&std::fs::read(&speech).unwrap())
        .unwrap()
        .samples;
    write_rtp_pcap(
        &callqa_dialer::g711::Codec::Pcmu.encode(&pcm),
        &dir.join("speech.pcap"),
    );
    pcm
}

/// Writes μ-law audio as the pcap SIPp's `play_pcap_audio` replays (payload type 0).
pub fn write_rtp_pcap(ulaw: &[u8], path: &Path) {
    callqa_dialer::bench::pcap::write_rtp_pcap(ulaw, 0, path).expect("writing the RTP pcap");
}

/// RMS of `samples`.
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples
        .iter()
        .map(|&s| f64::from(s) * f64::from(s))
        .sum::<f64>()
        / samples.len() as f64)
        .sqrt()
}

/// baresip as an agent's phone on 127.0.0.1: answers every call at once (in PCMA, so a
/// customer in PCMU is transcoded), talks with a WAV
/// (8 kHz mono 16-bit) and dumps what it hears to `<dir>/heard/*-dec.wav` (baresip 1.0's
/// `aufile` has no player; its `sndfile` filter records the decoded audio). baresip hangs up by
/// itself when its WAV ends. Killed on drop.
pub struct Baresip {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl Baresip {
    /// Starts the phone; a start that fails (e.g. its probed port was taken meanwhile by a
    /// test running beside it) is retried on a fresh port.
    pub fn agent(dir: &Path, user: &str, speech: &Path) -> Self {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::start(dir, user, speech) {
                Ok(me) => return me,
                Err(log) => last = log,
            }
        }
        panic!("baresip did not start: {last}");
    }

    fn start(dir: &Path, user: &str, speech: &Path) -> Result<Self, String> {
        let port = free_udp_port();
        let dir = dir.join(format!("baresip-{user}"));
        std::fs::create_dir_all(dir.join("heard")).unwrap();
        let modules = Path::new("/usr/lib/baresip/modules");
        let module_path = if modules.is_dir() {
            format!("module_path {}\n", modules.display())
        } else {
            String::new()
        };
        let config = format!(
            "sip_listen 127.0.0.1:{port}\nnet_interface 127.0.0.1\n\
             audio_source aufile,{speech}\naudio_player aubridge,nowhere\n\
             {module_path}module aufile.so\nmodule aubridge.so\nmodule sndfile.so\n\
             module g711.so\nmodule account.so\nsnd_path {heard}\n",
            speech = speech.display(),
            heard = dir.join("heard").display(),
        );
        std::fs::write(dir.join("config"), config).unwrap();
        std::fs::write(
            dir.join("accounts"),
            format!("<sip:{user}@127.0.0.1>;answermode=auto;regint=0;audio_codecs=PCMA/8000/1\n"),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let child = Command::new("baresip")
            .arg("-f")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("baresip missing: apt-get install -y baresip-core");
        let me = Self { child, port, dir };
        if me.wait_log("baresip is ready", Duration::from_secs(20)) {
            Ok(me)
        } else {
            Err(me.log())
        }
    }

    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Waits until the log holds `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// What the phone heard on its (first) call, 8 kHz mono.
    pub fn heard(&self) -> Vec<i16> {
        let dump = std::fs::read_dir(self.dir.join("heard"))
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .unwrap_or_else(|| panic!("baresip dumped no decoded audio: {}", self.log()));
        callqa_dialer::wav::parse(&std::fs::read(dump).unwrap())
            .unwrap()
            .samples
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Loudness of `samples` per 50 ms window (8 kHz).
pub fn envelope(samples: &[i16]) -> Vec<f64> {
    samples.chunks(400).map(rms).collect()
}

/// The best Pearson correlation of loudness envelopes when `recorded` lags `source` by 0 to
/// `max_lag` windows, and that lag: how well the recording carries that source's speech.
pub fn envelope_match(recorded: &[f64], source: &[f64], max_lag: usize) -> (f64, usize) {
    let mut best = (f64::MIN, 0);
    for lag in 0..=max_lag {
        let n = source.len().min(recorded.len().saturating_sub(lag));
        if n < 10 {
            break;
        }
        let (a, b) = (&recorded[lag..lag + n], &source[..n]);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (ma, mb) = (mean(a), mean(b));
        let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
        let r = cov / (va * vb).sqrt().max(1e-9);
        if r > best.0 {
            best = (r, lag);
        }
    }
    best
}
