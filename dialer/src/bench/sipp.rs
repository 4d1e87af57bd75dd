//! SIPp as the benchmark's peer: UAS and UAC processes on loopback, their scenarios (built
//! into the binary and written to the work directory), their statistics files and CPU time.

use std::collections::{HashMap, HashSet};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::process::{Child, Command};

use super::BenchError;

/// The UAS answering 180 then 486 (retransmitted until ACKed): call setup without media.
pub const UAS_BUSY: &str = include_str!("../../bench/uas_busy.xml");
/// The UAC placing INVITE / 486 / ACK, SIPp's side of the setup-rate comparison.
pub const UAC_BUSY: &str = include_str!("../../bench/uac_busy.xml");
/// The UAS that answers, plays `speech.pcap` as the callee's RTP and waits for BYE.
pub const UAS_ANSWER_PLAY: &str = include_str!("../../bench/uas_answer_play.xml");
/// The UAS that answers and waits for BYE, run with `-rtp_echo` (the callee's RTP is ours).
pub const UAS_ANSWER_ECHO: &str = include_str!("../../bench/uas_answer_echo.xml");

/// Socket buffers asked of SIPp (`-buff_size`), as in the SIPp-vs-SIPp reference figures.
pub const BUFF_SIZE: &str = "4194304";

/// Writes `text` as `name` into `dir` and returns its path.
pub fn write_scenario(dir: &Path, name: &str, text: &str) -> Result<PathBuf, BenchError> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|source| BenchError::Io {
        what: format!("writing {}", path.display()),
        source,
    })?;
    Ok(path)
}

/// A UDP port free on 127.0.0.1 whose +2 neighbour (SIPp's media port default) is free too.
pub fn free_udp_port() -> Result<u16, BenchError> {
    for _ in 0..1000 {
        let s = UdpSocket::bind("127.0.0.1:0").map_err(|source| BenchError::Io {
            what: "finding a free UDP port".into(),
            source,
        })?;
        let port = s.local_addr().map(|a| a.port()).unwrap_or(0);
        drop(s);
        if port > 1024 && port < 60_000 && UdpSocket::bind(("127.0.0.1", port + 2)).is_ok() {
            return Ok(port);
        }
    }
    Err(BenchError::Sipp {
        detail: "no free UDP port pair on 127.0.0.1".into(),
    })
}

/// A running SIPp process, killed on drop.
pub struct Sipp {
    child: Child,
    pub port: u16,
    pub pid: u32,
}

impl Sipp {
    /// Starts `sipp` with `args` in `cwd`, listening on `port`; returns once the port is bound.
    pub async fn start(
        sipp: &Path,
        cwd: &Path,
        port: u16,
        args: &[String],
    ) -> Result<Self, BenchError> {
        let child = Command::new(sipp)
            .current_dir(cwd)
            .args(args)
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-buff_size", BUFF_SIZE, "-nostdin"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| BenchError::Io {
                what: format!("starting {} (apt-get install sip-tester)", sipp.display()),
                source,
            })?;
        let pid = child.id().unwrap_or(0);
        let mut me = Self { child, port, pid };
        let deadline = Instant::now() + Duration::from_secs(10);
        // Bound once we can no longer bind the port ourselves.
        while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            if let Ok(Some(status)) = me.child.try_wait() {
                return Err(BenchError::Sipp {
                    detail: format!("SIPp on port {port} exited at start: {status}"),
                });
            }
            if Instant::now() > deadline {
                return Err(BenchError::Sipp {
                    detail: format!("SIPp did not bind port {port} within 10 s"),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(me)
    }

    /// Waits up to `timeout` for SIPp to exit; true when it reported success (exit code 0).
    pub async fn wait(&mut self, timeout: Duration) -> Result<bool, BenchError> {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => Ok(status.success()),
            Ok(Err(source)) => Err(BenchError::Io {
                what: "waiting for SIPp".into(),
                source,
            }),
            Err(_) => Err(BenchError::Sipp {
                detail: format!("SIPp on port {} still running after {timeout:?}", self.port),
            }),
        }
    }

    /// CPU seconds (user + system) SIPp has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        process_cpu_seconds(self.pid).unwrap_or(0.0)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// User + system CPU seconds of process `pid` from `/proc/<pid>/stat`.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux architecture that exposes /proc to user space.
    Some((utime + stime) / 100.0)
}

/// Busy and total jiffies of the whole machine from `/proc/stat`.
pub fn machine_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = cpu
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).unwrap_or(&0);
    Some((total - idle, total))
}

/// Receive-buffer drops per UDP socket inode, from `/proc/net/udp` (IPv4).
pub fn udp_socket_drops() -> HashMap<u64, (u16, u64)> {
    let Ok(text) = std::fs::read_to_string("/proc/net/udp") else {
        return HashMap::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            let inode: u64 = f.get(9)?.parse().ok()?;
            let drops: u64 = f.last()?.parse().ok()?;
            Some((inode, (port, drops)))
        })
        .collect()
}

/// The socket inodes process `pid` holds open.
pub fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    dir.filter_map(|e| {
        let target = std::fs::read_link(e.ok()?.path()).ok()?;
        let t = target.to_str()?;
        t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
    })
    .collect()
}

/// Packets the kernel dropped from its per-CPU input backlog (loopback traffic passes it).
pub fn backlog_drops() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/net/softnet_stat") else {
        return 0;
    };
    text.lines()
        .filter_map(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
        .sum()
}

/// What a SIPp statistics file (`-trace_stat`) says at the end of the run.
#[derive(Debug, Clone, Serialize)]
pub struct SippStats {
    pub successful: u64,
    pub failed: u64,
    /// From SIPp's start to its last statistics dump (at exit), by its own clock.
    pub elapsed_s: f64,
}

/// Reads the last row of a SIPp `-trace_stat` CSV file.
pub fn read_stats(path: &Path) -> Result<SippStats, BenchError> {
    let bad = |detail: String| BenchError::Sipp { detail };
    let text = std::fs::read_to_string(path).map_err(|source| BenchError::Io {
        what: format!("reading SIPp statistics {}", path.display()),
        source,
    })?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| bad("empty SIPp statistics file".into()))?
        .split(';')
        .collect();
    let last: Vec<&str> = lines
        .next_back()
        .ok_or_else(|| bad("SIPp statistics file has no rows".into()))?
        .split(';')
        .collect();
    let field = |name: &str| -> Result<&str, BenchError> {
        let i = header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| bad(format!("SIPp statistics lack {name}")))?;
        last.get(i)
            .copied()
            .ok_or_else(|| bad(format!("SIPp statistics row lacks {name}")))
    };
    let count = |name: &str| -> Result<u64, BenchError> {
        field(name)?
            .trim()
            .parse()
            .map_err(|_| bad(format!("SIPp {name} is not a number")))
    };
    // Times look like "2026-01-01\t12:00:00.123456\t1767268800.123456": the epoch comes last.
    let epoch = |name: &str| -> Result<f64, BenchError> {
        field(name)?
            .split_whitespace()
            .last()
            .and_then(|e| e.parse().ok())
            .ok_or_else(|| bad(format!("SIPp {name} has no epoch time")))
    };
    Ok(SippStats {
        successful: count("SuccessfulCall(C)")?,
        failed: count("FailedCall(C)")?,
        elapsed_s: epoch("CurrentTime")? - epoch("StartTime")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_last_row_of_sipp_statistics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.csv");
        std::fs::write(
            &path,
            "StartTime;LastResetTime;CurrentTime;SuccessfulCall(C);FailedCall(C);\n\
             2026-11-25\t19:20:16.487716\t1795634416.487716;x;2026-11-25\t19:20:16.5\t1795634416.5;0;0;\n\
             2026-11-25\t19:20:16.487716\t1795634416.487716;x;2026-11-25\t19:20:17.517793\t1795634417.987716;5000;2;\n",
        )
        .unwrap();
        let s = read_stats(&path).unwrap();
        assert_eq!((s.successful, s.failed), (5000, 2));
        assert!((s.elapsed_s - 1.5).abs() < 1e-6);
        std::fs::write(&path, "StartTime;\n").unwrap();
        assert!(read_stats(&path).is_err());
    }

    #[test]
    fn cpu_and_socket_counters_of_this_process_are_readable() {
        assert!(process_cpu_seconds(std::process::id()).is_some());
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = s.local_addr().unwrap().port();
        let ours = socket_inodes(std::process::id());
        let drops = udp_socket_drops();
        assert!(drops
            .iter()
            .any(|(inode, (p, d))| ours.contains(inode) && *p == port && *d == 0));
        let (busy, total) = machine_jiffies().unwrap();
        assert!(busy <= total && total > 0);
    }
}
