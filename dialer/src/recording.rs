//! Stereo call recording streamed to object storage while the call runs, with an exact WAV
//! header, and a local spool so that a storage outage never loses a recording.
//!
//! Channel 0 is our side (prompt/agent), channel 1 the customer, 8 kHz 16-bit PCM. Samples are
//! placed by RTP timestamp in a [`StereoMixer`], so the channels stay aligned and gaps become
//! silence.
//!
//! Every byte goes first to a local copy, `<spool_dir>/<call_id>.wav`. Uploads read their parts
//! back from it, in a task of their own: a call holds no audio in memory beyond the part being
//! uploaded, part buffers of all calls share one budget ([`BUFFER_BUDGET`]), and a store that
//! stalls never holds up the call's media.
//!
//! Exact header on a streamed object: a WAV header's sizes are known only at hangup, yet they
//! sit in the first bytes, i.e. in the first part of a multipart upload. S3 (like GCS and Azure)
//! takes parts by explicit number, in any order, so while the call runs parts 2, 3, ... go up as
//! soon as each is complete in the local copy, and at hangup the writer uploads the tail, then
//! part 1 (the header with the final sizes and the first `part_size - 44` bytes of audio, read
//! back from the local copy) and completes the upload. The object is a plain PCM WAV with exact
//! sizes, which every reader takes. Streaming placeholders (`0xFFFFFFFF` sizes) are not used:
//! symphonia and sox read them as 37 hours of audio, so the pipeline's decoder would reject the
//! recording as truncated. A call shorter than one part (about 160 s at 5 MiB) is one plain put
//! at hangup; streaming starts once two parts are recorded. A store without that multipart API
//! (the local filesystem) gets the whole file at hangup.
//!
//! When any storage step fails, during the call or at hangup, or storage is still stuck
//! [`FINISH_TIMEOUT`] after hangup, the local copy (exact header included, so the parts already
//! sent are not needed) stays with a JSON sidecar naming its key and any upload left half done;
//! [`drain_spool`] uploads it whole once the store is back and aborts that upload. Keys are per
//! call, so an upload repeated after a lost reply overwrites the same object.
//!
//! A dialer killed mid-call (`kill -9`, a crash, a reboot) loses no recording either. A call's
//! recording starts with an in-progress marker, `<call_id>.live`, written atomically before the
//! WAV: the owner (pid, the process's start time and the boot id, so a reused pid is not taken
//! for the owner), the key, the call's campaign, number, caller ID, trunk and start, and the
//! multipart upload id once there is one. It goes, with the local copy of a stored recording,
//! only once the call's row is booked ([`release`]), so a crash between hangup and booking
//! leaves a recording that recovery books. [`recover_orphans`], run
//! when a dialer or campaign runner starts and by [`recover_and_drain`] next to every drain,
//! takes each marker whose owner is gone (never one of a running process): it rewrites the
//! WAV's header with the sizes its length gives (a trailing half frame cut off), books the
//! call's row as `spooled` with a note that the dialer stopped, and turns the marker into a
//! spool entry naming the upload to abort. The booked drain then stores it and queues it once:
//! only the process that moves the row from `spooled` to `stored` publishes the job. Every step
//! is idempotent, so a rerun, or a crash during recovery, neither adds a row nor queues twice.
//! An unreadable marker is logged and left in place with its WAV.

mod live;
mod recovery;
mod spool;
mod store;

use std::collections::VecDeque;
use std::io::SeekFrom;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::multipart::PartId;
use object_store::path::Path;
use object_store::MultipartId;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use live::{CallMeta, LiveRecording, Liveness, Owner};
pub use recovery::{recover_and_drain, recover_orphans, recovered_row, repair_wav, repaired_len};
pub use spool::{drain_spool, drain_spool_booked, store_unreachable, RecoveredCall, SpoolEntry};
pub use store::{RecordingStore, BUFFER_BUDGET};

use crate::error::DialerError;
use crate::wav;
use live::LiveFile;
use spool::write_sidecar;
use store::{put_whole, read_range, upload_file, PartStore, StepError};

pub const SAMPLE_RATE: u32 = 8000;
/// How far behind real time the mixer writes out, to wait for late/reordered RTP.
const LOOK_BEHIND: u64 = 2400;
/// Samples further ahead than this are dropped as bogus (a broken timestamp would otherwise
/// allocate without bound).
const MAX_AHEAD: u64 = 10 * SAMPLE_RATE as u64;
/// How long hangup waits for storage before spooling the recording instead.
pub const FINISH_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the recording ended up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingInfo {
    pub key: String,
    pub bytes: u64,
    /// True when the upload failed and the file waits in the spool directory.
    pub spooled: bool,
}

/// Places per-channel samples by position and emits interleaved stereo frames.
#[derive(Debug, Default)]
pub struct StereoMixer {
    flushed: u64,
    channels: [VecDeque<i16>; 2],
    pub late_samples: u64,
}

impl StereoMixer {
    /// Writes `samples` for `channel` starting at frame `pos`; parts already flushed are dropped.
    pub fn write(&mut self, channel: usize, pos: u64, samples: &[i16]) {
        let Some(buf) = self.channels.get_mut(channel) else {
            return;
        };
        let end = pos + samples.len() as u64;
        if end <= self.flushed {
            self.late_samples += samples.len() as u64;
            return;
        }
        if pos > self.flushed + MAX_AHEAD {
            return;
        }
        let skip = self.flushed.saturating_sub(pos) as usize;
        self.late_samples += skip as u64;
        let start = (pos + skip as u64 - self.flushed) as usize;
        let needed = start + samples.len() - skip;
        if buf.len() < needed {
            buf.resize(needed, 0);
        }
        for (i, &s) in samples[skip..].iter().enumerate() {
            buf[start + i] = s;
        }
    }

    /// Position just past the last sample written on either channel.
    pub fn end(&self) -> u64 {
        self.flushed + self.channels.iter().map(VecDeque::len).max().unwrap_or(0) as u64
    }

    /// Emits frames up to `pos` as interleaved little-endian PCM, silence where nothing came.
    pub fn drain_until(&mut self, pos: u64) -> Vec<u8> {
        if pos <= self.flushed {
            return Vec::new();
        }
        let frames = (pos - self.flushed) as usize;
        let mut out = Vec::with_capacity(frames * 4);
        for _ in 0..frames {
            for ch in &mut self.channels {
                let s = ch.pop_front().unwrap_or(0);
                out.extend_from_slice(&s.to_le_bytes());
            }
        }
        self.flushed = pos;
        out
    }
}

/// What the part uploader did during the call.
#[derive(Debug, Default)]
struct Streamed {
    /// Ids of parts 1, 2, ... (part 0, the header part, goes up at hangup).
    parts: Vec<PartId>,
    error: Option<String>,
}

/// Uploads parts 1.. of the local copy as each becomes complete; returns when the writer is
/// done (the `written` sender dropped) and no complete part is left, or at the first error.
async fn stream_parts(
    store: PartStore,
    location: Path,
    local_path: PathBuf,
    part_size: u64,
    upload: Arc<Mutex<Option<MultipartId>>>,
    live: Option<Arc<LiveFile>>,
    mut written: watch::Receiver<u64>,
) -> Streamed {
    let mut s = Streamed::default();
    loop {
        let idx = s.parts.len() + 1;
        let end = (idx as u64 + 1) * part_size;
        while *written.borrow() < end {
            if written.changed().await.is_err() && *written.borrow() < end {
                return s;
            }
        }
        let id = match current_upload(&upload) {
            Some(id) => id,
            None => match store.api.create_multipart(&location).await {
                Ok(id) => {
                    set_upload(&upload, &id);
                    if let Some(live) = &live {
                        live.set_upload(&id).await;
                    }
                    id
                }
                Err(e) => {
                    s.error = Some(format!("starting the multipart upload: {e}"));
                    return s;
                }
            },
        };
        let step = async {
            let buf = read_range(&local_path, idx as u64 * part_size, part_size as usize).await?;
            Ok::<_, StepError>(
                store
                    .api
                    .put_part(&location, &id, idx, buf.payload())
                    .await?,
            )
        };
        match step.await {
            Ok(part) => s.parts.push(part),
            Err(e) => {
                s.error = Some(format!("uploading part {}: {e}", idx + 1));
                return s;
            }
        }
    }
}

fn current_upload(upload: &Mutex<Option<MultipartId>>) -> Option<MultipartId> {
    upload.lock().map(|u| u.clone()).unwrap_or_default()
}

fn set_upload(upload: &Mutex<Option<MultipartId>>, id: &MultipartId) {
    if let Ok(mut u) = upload.lock() {
        *u = Some(id.clone());
    }
}

/// Ends the claim of a finished recording (one made with [`RecordingWriter::create_live`]) on
/// the spool once its call's row is booked: the local copy of a stored recording, then the
/// in-progress marker (a spooled recording's copy stays for the drain). Until then a crash
/// leaves both, and crash recovery books the call from them and stores the copy again.
pub async fn release(
    spool_dir: &FsPath,
    call_id: &str,
    rec: &RecordingInfo,
) -> Result<(), DialerError> {
    let spool_err = |path: PathBuf, source| DialerError::Spool { path, source };
    if !rec.spooled {
        let wav = spool_dir.join(format!("{call_id}.wav"));
        spool::remove_if_present(&wav)
            .await
            .map_err(|e| spool_err(wav, e))?;
    }
    let marker = live::live_path(spool_dir, call_id);
    spool::remove_if_present(&marker)
        .await
        .map_err(|e| spool_err(marker, e))
}

/// Writes one recording: the local copy at once, the store part by part or at hangup.
pub struct RecordingWriter {
    store: RecordingStore,
    key: String,
    call_id: String,
    spool_dir: PathBuf,
    local_path: PathBuf,
    local: tokio::fs::File,
    part_size: usize,
    data_bytes: u64,
    /// Local-copy length the part uploader may read; dropped at hangup.
    written: Option<watch::Sender<u64>>,
    streamer: Option<JoinHandle<Streamed>>,
    /// The multipart upload, once the part uploader or hangup has started one.
    upload: Arc<Mutex<Option<MultipartId>>>,
    /// The in-progress marker, for a recording crash recovery must be able to finish.
    live: Option<Arc<LiveFile>>,
}

impl RecordingWriter {
    /// Starts the local copy (and, on a streaming store, the part uploader). `part_size` is
    /// the multipart part size; S3 wants at least 5 MiB.
    pub async fn create(
        store: impl Into<RecordingStore>,
        key: &str,
        call_id: &str,
        spool_dir: &FsPath,
        part_size: usize,
    ) -> Result<Self, DialerError> {
        Self::start(store.into(), key, call_id, spool_dir, part_size, None).await
    }

    /// [`RecordingWriter::create`] with an in-progress marker carrying `call`, so that
    /// [`recover_orphans`] can finish the recording if this process dies before hangup.
    pub async fn create_live(
        store: impl Into<RecordingStore>,
        key: &str,
        call_id: &str,
        spool_dir: &FsPath,
        part_size: usize,
        call: CallMeta,
    ) -> Result<Self, DialerError> {
        Self::start(store.into(), key, call_id, spool_dir, part_size, Some(call)).await
    }

    async fn start(
        store: RecordingStore,
        key: &str,
        call_id: &str,
        spool_dir: &FsPath,
        part_size: usize,
        call: Option<CallMeta>,
    ) -> Result<Self, DialerError> {
        let spool_err = |path: &FsPath, source| DialerError::Spool {
            path: path.to_path_buf(),
            source,
        };
        tokio::fs::create_dir_all(spool_dir)
            .await
            .map_err(|e| spool_err(spool_dir, e))?;
        // The marker before the WAV: a WAV never exists without what recovers it.
        let live = match call {
            Some(call) => Some(Arc::new(
                LiveFile::create(spool_dir, call_id, key, call).await?,
            )),
            None => None,
        };
        let local_path = spool_dir.join(format!("{call_id}.wav"));
        let mut local = tokio::fs::File::create(&local_path)
            .await
            .map_err(|e| spool_err(&local_path, e))?;
        // Placeholder sizes until hangup patches in the real ones.
        let header = wav::header(2, SAMPLE_RATE, None);
        local
            .write_all(&header)
            .await
            .map_err(|e| spool_err(&local_path, e))?;
        let part_size = part_size.max(wav::HEADER_LEN + 4);
        let upload = Arc::new(Mutex::new(None));
        let (written, streamer) = match &store.parts {
            Some(parts) => {
                let (tx, rx) = watch::channel(wav::HEADER_LEN as u64);
                let task = tokio::spawn(stream_parts(
                    parts.clone(),
                    parts.path(key),
                    local_path.clone(),
                    part_size as u64,
                    upload.clone(),
                    live.clone(),
                    rx,
                ));
                (Some(tx), Some(task))
            }
            None => (None, None),
        };
        Ok(Self {
            store,
            key: key.to_string(),
            call_id: call_id.to_string(),
            spool_dir: spool_dir.to_path_buf(),
            local_path,
            local,
            part_size,
            data_bytes: 0,
            written,
            streamer,
            upload,
            live,
        })
    }

    fn file_len(&self) -> u64 {
        self.data_bytes + wav::HEADER_LEN as u64
    }

    /// Appends interleaved PCM to the local copy; never waits for the store.
    pub async fn write(&mut self, pcm: &[u8]) -> Result<(), DialerError> {
        if pcm.is_empty() {
            return Ok(());
        }
        let spool_err = |path: &FsPath, source| DialerError::Spool {
            path: path.to_path_buf(),
            source,
        };
        self.local
            .write_all(pcm)
            .await
            .map_err(|e| spool_err(&self.local_path, e))?;
        let before = self.file_len() / self.part_size as u64;
        self.data_bytes += pcm.len() as u64;
        let len = self.file_len();
        // Tell the uploader only when a part boundary is crossed, after the bytes reached
        // the file (tokio's File completes writes in the background).
        if len / self.part_size as u64 > before {
            if let Some(tx) = &self.written {
                self.local
                    .flush()
                    .await
                    .map_err(|e| spool_err(&self.local_path, e))?;
                tx.send_replace(len);
            }
        }
        Ok(())
    }

    /// Completes the upload (or spools) and returns where the recording is.
    pub async fn finish(mut self) -> Result<RecordingInfo, DialerError> {
        let spool_err = |path: &FsPath, source| DialerError::Spool {
            path: path.to_path_buf(),
            source,
        };
        // The local copy gets its exact sizes first: every upload below reads from it.
        let header = wav::header(2, SAMPLE_RATE, Some(self.data_bytes));
        let patch = async {
            self.local.flush().await?;
            self.local.seek(SeekFrom::Start(0)).await?;
            self.local.write_all(&header).await?;
            self.local.flush().await?;
            self.local.sync_all().await
        };
        patch.await.map_err(|e| spool_err(&self.local_path, e))?;
        let total = self.file_len();
        if let Some(tx) = self.written.take() {
            tx.send_replace(total);
        }
        let streamer = self.streamer.take();
        let abort_streamer = streamer.as_ref().map(JoinHandle::abort_handle);
        let result = tokio::time::timeout(FINISH_TIMEOUT, self.upload_rest(streamer, total)).await;
        let failure = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => {
                if let Some(h) = abort_streamer {
                    h.abort();
                }
                Some(format!(
                    "storage did not answer within {} s of hangup",
                    FINISH_TIMEOUT.as_secs()
                ))
            }
        };
        let Some(failure) = failure else {
            drop(self.local);
            // A recording with a marker keeps it and its local copy until its call is booked
            // ([`release`]): a crash before that leaves what recovery books the call from.
            if self.live.is_none() {
                tokio::fs::remove_file(&self.local_path)
                    .await
                    .map_err(|e| spool_err(&self.local_path, e))?;
            }
            return Ok(RecordingInfo {
                key: self.key,
                bytes: total,
                spooled: false,
            });
        };
        tracing::warn!(key = %self.key, error = %failure, "recording upload failed; spooling it");
        let entry = SpoolEntry {
            call_id: self.call_id.clone(),
            key: self.key.clone(),
            bytes: total,
            // Aborted by the drain: now the store is most likely down.
            abandoned_upload: current_upload(&self.upload),
            recovered: None,
        };
        write_sidecar(&self.spool_dir, &entry).await?;
        // The marker stays until the call is booked ([`release`]): the spool entry alone
        // does not say who the call was with.
        tracing::warn!(key = %self.key, path = %self.local_path.display(), "recording spooled for later upload");
        Ok(RecordingInfo {
            key: self.key,
            bytes: total,
            spooled: true,
        })
    }

    /// Everything the store still needs at hangup; `Err` describes the failed step.
    async fn upload_rest(
        &self,
        streamer: Option<JoinHandle<Streamed>>,
        total: u64,
    ) -> Result<(), String> {
        let Some(parts) = &self.store.parts else {
            return upload_file(
                self.store.objects.as_ref(),
                &self.local_path,
                &Path::from(self.key.as_str()),
                total,
            )
            .await
            .map_err(|e| format!("uploading the recording: {e}"));
        };
        let streamed = match streamer {
            Some(task) => task
                .await
                .map_err(|e| format!("the part uploader failed: {e}"))?,
            None => Streamed::default(),
        };
        if let Some(e) = streamed.error {
            return Err(e);
        }
        let location = parts.path(&self.key);
        let part = self.part_size as u64;
        let upload = current_upload(&self.upload);
        if upload.is_none() && total <= part {
            let step = async {
                let buf = read_range(&self.local_path, 0, total as usize).await?;
                put_whole(&self.store, &self.key, buf).await
            };
            return step
                .await
                .map_err(|e| format!("uploading the recording: {e}"));
        }
        let id = match upload {
            Some(id) => id,
            None => {
                let id = parts
                    .api
                    .create_multipart(&location)
                    .await
                    .map_err(|e| format!("starting the multipart upload: {e}"))?;
                set_upload(&self.upload, &id);
                if let Some(live) = &self.live {
                    live.set_upload(&id).await;
                }
                id
            }
        };
        let mut body = streamed.parts;
        let tail_start = (body.len() as u64 + 1) * part;
        if tail_start < total {
            let idx = body.len() + 1;
            let step = async {
                let buf =
                    read_range(&self.local_path, tail_start, (total - tail_start) as usize).await?;
                Ok::<_, StepError>(
                    parts
                        .api
                        .put_part(&location, &id, idx, buf.payload())
                        .await?,
                )
            };
            body.push(
                step.await
                    .map_err(|e| format!("uploading the last part: {e}"))?,
            );
        }
        let step = async {
            let buf = read_range(&self.local_path, 0, total.min(part) as usize).await?;
            Ok::<_, StepError>(parts.api.put_part(&location, &id, 0, buf.payload()).await?)
        };
        let head = step
            .await
            .map_err(|e| format!("uploading the header part: {e}"))?;
        let mut all = Vec::with_capacity(body.len() + 1);
        all.push(head);
        all.extend(body);
        parts
            .api
            .complete_multipart(&location, &id, all)
            .await
            .map_err(|e| format!("completing the multipart upload: {e}"))?;
        Ok(())
    }
}

/// Commands to the per-call recording task.
#[derive(Debug)]
pub enum RecordCmd {
    /// Samples for `channel` starting at frame `pos` (frames since the call was answered).
    Samples {
        channel: usize,
        pos: u64,
        samples: Vec<i16>,
    },
}

/// A running recording: send samples, then [`Recorder::finish`].
pub struct Recorder {
    tx: mpsc::Sender<RecordCmd>,
    task: JoinHandle<Result<(RecordingInfo, u64), DialerError>>,
}

impl Recorder {
    /// Starts the task; `start` is the instant frame 0 corresponds to.
    pub fn start(writer: RecordingWriter, start: Instant) -> Self {
        let (tx, mut rx) = mpsc::channel::<RecordCmd>(256);
        let task = tokio::spawn(async move {
            let mut writer = writer;
            let mut mixer = StereoMixer::default();
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
            loop {
                tokio::select! {
                    cmd = rx.recv() => match cmd {
                        Some(RecordCmd::Samples { channel, pos, samples }) => mixer.write(channel, pos, &samples),
                        None => break,
                    },
                    _ = tick.tick() => {
                        let now = (start.elapsed().as_micros() as u64) * u64::from(SAMPLE_RATE) / 1_000_000;
                        let pcm = mixer.drain_until(now.saturating_sub(LOOK_BEHIND));
                        writer.write(&pcm).await?;
                    }
                }
            }
            let pcm = mixer.drain_until(mixer.end());
            writer.write(&pcm).await?;
            let late = mixer.late_samples;
            Ok((writer.finish().await?, late))
        });
        Self { tx, task }
    }

    pub fn sender(&self) -> mpsc::Sender<RecordCmd> {
        self.tx.clone()
    }

    /// Ends the recording once every sender is dropped; returns the info and late samples.
    pub async fn finish(self) -> Result<(RecordingInfo, u64), DialerError> {
        drop(self.tx);
        self.task.await.map_err(|e| DialerError::Spool {
            path: PathBuf::from("<recording task>"),
            source: std::io::Error::other(e),
        })?
    }
}

#[cfg(test)]
mod tests;
