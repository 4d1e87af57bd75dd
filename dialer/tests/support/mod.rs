//! Test harness: free ports, SIPp as the called party, espeak-ng speech, and a pcap writer that
//! turns μ-law audio into RTP packets SIPp can play.

#![allow(dead_code)]

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use callqa_dialer::{DialerConfig, TrunkConfig};

pub fn free_udp_port() -> u16 {
    // Bind-and-release; SIPp needs the port and its +2 media port free too.
    loop {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = s.local_addr().unwrap().port();
        drop(s);
        if port < 60_000 && UdpSocket::bind(("127.0.0.1", port + 2)).is_ok() {
            return port;
        }
    }
}

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
        // SIPp binds within a few ms; give it a moment before the first INVITE.
        std::thread::sleep(Duration::from_millis(300));
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
