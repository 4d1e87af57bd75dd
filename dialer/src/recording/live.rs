//! The in-progress marker of a recording, `<spool_dir>/<call_id>.live`: who records it (pid,
//! process start time, boot id) and everything needed to finish the call without that process.

use std::path::{Path as FsPath, PathBuf};

use object_store::MultipartId;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::error::DialerError;

/// File extension of the marker (not `json`: the spool drain reads every `*.json`).
pub(super) const LIVE_EXT: &str = "live";

/// What the call row of a call needs that the recording itself does not say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallMeta {
    #[serde(default)]
    pub campaign: Option<String>,
    /// The number called, E.164.
    pub customer: String,
    #[serde(default)]
    pub caller_id: Option<String>,
    #[serde(default)]
    pub trunk: Option<String>,
    /// When the INVITE went out, RFC 3339 UTC with milliseconds (the call row's `started_at`).
    pub started_at: String,
    /// When the call was answered: frame 0 of the recording.
    pub answered_at: String,
}

/// The process that records: a pid alone could be reused, so its start time and the boot id
/// go with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: u32,
    /// Field 22 of `/proc/<pid>/stat` (clock ticks after boot); `None` off Linux.
    #[serde(default)]
    pub start_ticks: Option<u64>,
    #[serde(default)]
    pub boot_id: Option<String>,
}

/// Whether the owner of a recording still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    /// Gone: no such process, another process under its pid, or the machine rebooted since.
    Dead,
    /// No `/proc` to look at: never treated as dead.
    Unknown,
}

impl Owner {
    /// This process.
    pub fn current() -> Self {
        let pid = std::process::id();
        Self {
            pid,
            start_ticks: start_ticks(pid),
            boot_id: boot_id(),
        }
    }

    pub fn liveness(&self) -> Liveness {
        self.liveness_in(FsPath::new("/proc"))
    }

    /// [`Owner::liveness`] against a `/proc` at `proc_root` (tests give a fake one).
    pub fn liveness_in(&self, proc_root: &FsPath) -> Liveness {
        let now_boot = read_trimmed(&proc_root.join("sys/kernel/random/boot_id"));
        if let (Some(then), Some(now)) = (&self.boot_id, &now_boot) {
            if then != now {
                return Liveness::Dead;
            }
        }
        match std::fs::read_to_string(proc_root.join(self.pid.to_string()).join("stat")) {
            Ok(stat) => match (self.start_ticks, parse_start_ticks(&stat)) {
                (Some(then), Some(now)) if then != now => Liveness::Dead,
                // A zombie has ended; only its parent has not reaped it yet.
                _ if matches!(parse_state(&stat), Some('Z' | 'X')) => Liveness::Dead,
                _ => Liveness::Alive,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Only a /proc that is there at all says the process is gone.
                if proc_root.join("self").exists() || now_boot.is_some() {
                    Liveness::Dead
                } else {
                    Liveness::Unknown
                }
            }
            Err(_) => Liveness::Unknown,
        }
    }
}

fn read_trimmed(path: &FsPath) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn boot_id() -> Option<String> {
    read_trimmed(FsPath::new("/proc/sys/kernel/random/boot_id"))
}

fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_ticks(&stat)
}

/// Field 3 (state: `R`, `S`, `Z` for a zombie, ...) of a `/proc/<pid>/stat` line.
pub(super) fn parse_state(stat: &str) -> Option<char> {
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// Field 22 (`starttime`) of a `/proc/<pid>/stat` line. The command name (field 2) is in
/// parentheses and may hold spaces or parentheses itself, so fields are counted after the last `)`.
pub(super) fn parse_start_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3 (state); starttime is field 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The marker's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRecording {
    pub call_id: String,
    pub key: String,
    pub call: CallMeta,
    pub owner: Owner,
    /// The multipart upload under way, once one was started: aborted when the call is recovered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<MultipartId>,
}

/// Path of the marker of `call_id`.
pub(super) fn live_path(spool_dir: &FsPath, call_id: &str) -> PathBuf {
    spool_dir.join(format!("{call_id}.{LIVE_EXT}"))
}

/// Writes `rec` to its marker atomically (temp file, then rename).
pub(super) async fn write_live(spool_dir: &FsPath, rec: &LiveRecording) -> Result<(), DialerError> {
    let path = live_path(spool_dir, &rec.call_id);
    let tmp = spool_dir.join(format!("{}.{LIVE_EXT}.tmp", rec.call_id));
    let spool_err = |path: &FsPath, source| DialerError::Spool {
        path: path.to_path_buf(),
        source,
    };
    let json =
        serde_json::to_vec_pretty(rec).map_err(|e| spool_err(&path, std::io::Error::other(e)))?;
    tokio::fs::write(&tmp, json)
        .await
        .map_err(|e| spool_err(&tmp, e))?;
    tokio::fs::rename(&tmp, &path)
        .await
        .map_err(|e| spool_err(&path, e))
}

/// The marker of a recording this process is writing.
#[derive(Debug)]
pub(super) struct LiveFile {
    spool_dir: PathBuf,
    rec: Mutex<LiveRecording>,
}

impl LiveFile {
    /// Writes the marker; the recording's WAV must not exist before it does.
    pub(super) async fn create(
        spool_dir: &FsPath,
        call_id: &str,
        key: &str,
        call: CallMeta,
    ) -> Result<Self, DialerError> {
        let rec = LiveRecording {
            call_id: call_id.to_string(),
            key: key.to_string(),
            call,
            owner: Owner::current(),
            upload: None,
        };
        write_live(spool_dir, &rec).await?;
        Ok(Self {
            spool_dir: spool_dir.to_path_buf(),
            rec: Mutex::new(rec),
        })
    }

    /// Records the multipart upload id. A failure is logged, not fatal: recovery then cannot
    /// abort that upload, which the store's lifecycle rules clean up.
    pub(super) async fn set_upload(&self, id: &MultipartId) {
        let mut rec = self.rec.lock().await;
        if rec.upload.as_ref() == Some(id) {
            return;
        }
        rec.upload = Some(id.clone());
        if let Err(e) = write_live(&self.spool_dir, &rec).await {
            tracing::warn!(call_id = %rec.call_id, error = %e, "in-progress marker not updated with the upload id");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `/proc/<pid>/stat` line whose command name has spaces and parentheses.
    fn stat_line(pid: u32, state: char, start: u64) -> String {
        let mut fields: Vec<String> = vec![state.to_string()];
        // Fields 4..=21, then starttime (22), then a few more.
        fields.extend((4..=21).map(|i| i.to_string()));
        fields.push(start.to_string());
        fields.extend((23..=30).map(|i| i.to_string()));
        format!("{pid} (dial (er) x) {}\n", fields.join(" "))
    }

    fn fake_proc(boot: &str, procs: &[(u32, char, u64)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("sys/kernel/random")).unwrap();
        std::fs::write(root.path().join("sys/kernel/random/boot_id"), boot).unwrap();
        std::fs::create_dir_all(root.path().join("self")).unwrap();
        for &(pid, state, start) in procs {
            let dir = root.path().join(pid.to_string());
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("stat"), stat_line(pid, state, start)).unwrap();
        }
        root
    }

    fn owner(pid: u32, start: u64, boot: &str) -> Owner {
        Owner {
            pid,
            start_ticks: Some(start),
            boot_id: Some(boot.into()),
        }
    }

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = stat_line(42, 'S', 987_654);
        assert_eq!(parse_start_ticks(&line), Some(987_654));
        assert_eq!(parse_state(&line), Some('S'));
        assert_eq!(parse_start_ticks("42 (short"), None);
        assert_eq!(parse_start_ticks("42 (x) S 1 2"), None);
    }

    #[test]
    fn orphan_detection_tells_dead_owners_from_live_ones() {
        let proc = fake_proc("boot-a\n", &[(100, 'S', 5_000), (101, 'Z', 6_000)]);
        let p = proc.path();
        assert_eq!(owner(100, 5_000, "boot-a").liveness_in(p), Liveness::Alive);
        // Same pid, another process: the pid was reused.
        assert_eq!(owner(100, 4_000, "boot-a").liveness_in(p), Liveness::Dead);
        // No such process.
        assert_eq!(owner(102, 5_000, "boot-a").liveness_in(p), Liveness::Dead);
        // Killed but not reaped yet.
        assert_eq!(owner(101, 6_000, "boot-a").liveness_in(p), Liveness::Dead);
        // Recorded before a reboot: whatever runs under that pid now is not the owner.
        assert_eq!(owner(100, 5_000, "boot-b").liveness_in(p), Liveness::Dead);
        // Without a start time the pid alone decides.
        let no_start = Owner {
            pid: 100,
            start_ticks: None,
            boot_id: None,
        };
        assert_eq!(no_start.liveness_in(p), Liveness::Alive);
        // No /proc at all: never taken for dead.
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            owner(102, 5_000, "boot-a").liveness_in(empty.path()),
            Liveness::Unknown
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_alive_and_an_exited_child_is_dead() {
        let me = Owner::current();
        assert!(me.start_ticks.is_some() && me.boot_id.is_some(), "{me:?}");
        assert_eq!(me.liveness(), Liveness::Alive);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let gone = Owner { pid, ..me };
        assert_eq!(gone.liveness(), Liveness::Dead);
    }
}
