//! Stereo call recording streamed to object storage while the call runs.
//!
//! Channel 0 is our side (prompt/agent), channel 1 the customer, 8 kHz 16-bit PCM. Samples are
//! placed by RTP timestamp in a [`StereoMixer`], so the channels stay aligned and gaps become
//! silence. Mixed audio is uploaded in parts of `part_size` bytes read back from the local
//! copy, so memory per call is the mixer's short look-behind window plus, while a part is in
//! flight, that part.
//!
//! Why the header works out: `object_store`'s `MultipartUpload::put_part` numbers parts in
//! call order, so part 1 (which holds the header) cannot be written last. Instead nothing is
//! uploaded until `part_size` bytes exist; a call shorter than that (about 160 s at 5 MiB) is
//! one plain `put` of the local copy with exact sizes, which also avoids Garage's rejection of tiny/empty multipart
//! uploads. A longer call streams, and its header carries the standard streaming placeholders
//! (`0xFFFFFFFF` sizes), which symphonia, ffmpeg, sox and browsers read as "to end of file".
//!
//! Every byte is also teed to `<spool_dir>/<call_id>.wav` (with an exact header patched at the
//! end). The local copy is deleted only after the upload completed; if storage failed at any
//! point it stays, with a JSON sidecar naming the destination key, for [`drain_spool`].

use std::collections::VecDeque;
use std::io::SeekFrom;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStore, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::DialerError;
use crate::wav;

pub const SAMPLE_RATE: u32 = 8000;
/// How far behind real time the mixer writes out, to wait for late/reordered RTP.
const LOOK_BEHIND: u64 = 2400;
/// Samples further ahead than this are dropped as bogus (a broken timestamp would otherwise
/// allocate without bound).
const MAX_AHEAD: u64 = 10 * SAMPLE_RATE as u64;

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

/// Sidecar written next to a spooled WAV.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpoolEntry {
    pub call_id: String,
    pub key: String,
    pub bytes: u64,
}

/// Streams PCM bytes to one object, with the local tee and spool fallback.
pub struct RecordingWriter {
    store: Arc<dyn ObjectStore>,
    key: String,
    call_id: String,
    spool_dir: PathBuf,
    local_path: PathBuf,
    local: tokio::fs::File,
    part_size: usize,
    /// Bytes of the local file already sent as parts; parts are read back from the file, so
    /// a call holds no audio in memory beyond the part being uploaded.
    uploaded: u64,
    upload: Option<Box<dyn MultipartUpload>>,
    data_bytes: u64,
    storage_error: Option<String>,
}

impl RecordingWriter {
    pub async fn create(
        store: Arc<dyn ObjectStore>,
        key: &str,
        call_id: &str,
        spool_dir: &FsPath,
        part_size: usize,
    ) -> Result<Self, DialerError> {
        let spool_err = |path: &FsPath, source| DialerError::Spool {
            path: path.to_path_buf(),
            source,
        };
        tokio::fs::create_dir_all(spool_dir)
            .await
            .map_err(|e| spool_err(spool_dir, e))?;
        let local_path = spool_dir.join(format!("{call_id}.wav"));
        let mut local = tokio::fs::File::create(&local_path)
            .await
            .map_err(|e| spool_err(&local_path, e))?;
        let header = wav::header(2, SAMPLE_RATE, None);
        local
            .write_all(&header)
            .await
            .map_err(|e| spool_err(&local_path, e))?;
        let part_size = part_size.max(wav::HEADER_LEN + 4);
        Ok(Self {
            store,
            key: key.to_string(),
            call_id: call_id.to_string(),
            spool_dir: spool_dir.to_path_buf(),
            local_path,
            local,
            part_size,
            uploaded: 0,
            upload: None,
            data_bytes: 0,
            storage_error: None,
        })
    }

    fn fail_storage(&mut self, what: &str, e: object_store::Error) {
        tracing::warn!(key = %self.key, error = %e, "{what} failed; recording will be spooled");
        self.storage_error
            .get_or_insert_with(|| format!("{what}: {e}"));
    }

    /// Appends interleaved PCM.
    pub async fn write(&mut self, pcm: &[u8]) -> Result<(), DialerError> {
        if pcm.is_empty() {
            return Ok(());
        }
        self.local
            .write_all(pcm)
            .await
            .map_err(|source| DialerError::Spool {
                path: self.local_path.clone(),
                source,
            })?;
        self.data_bytes += pcm.len() as u64;
        if self.storage_error.is_some() {
            return Ok(());
        }
        let file_len = self.data_bytes + wav::HEADER_LEN as u64;
        while file_len - self.uploaded >= self.part_size as u64 && self.storage_error.is_none() {
            let part = self.read_back(self.uploaded, self.part_size).await?;
            self.uploaded += part.len() as u64;
            self.put_part(part).await;
        }
        Ok(())
    }

    /// Reads `len` bytes at `offset` of the local copy (after flushing our writes).
    async fn read_back(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, DialerError> {
        let spool_err = |path: &FsPath, source| DialerError::Spool {
            path: path.to_path_buf(),
            source,
        };
        self.local
            .flush()
            .await
            .map_err(|e| spool_err(&self.local_path, e))?;
        let mut file = tokio::fs::File::open(&self.local_path)
            .await
            .map_err(|e| spool_err(&self.local_path, e))?;
        file.seek(SeekFrom::Start(offset))
            .await
            .map_err(|e| spool_err(&self.local_path, e))?;
        let mut buf = vec![0u8; len];
        file.read_exact(&mut buf)
            .await
            .map_err(|e| spool_err(&self.local_path, e))?;
        Ok(buf)
    }

    async fn put_part(&mut self, part: Vec<u8>) {
        if self.upload.is_none() {
            match self
                .store
                .put_multipart(&Path::from(self.key.as_str()))
                .await
            {
                Ok(u) => self.upload = Some(u),
                Err(e) => return self.fail_storage("starting multipart upload", e),
            }
        }
        let Some(upload) = self.upload.as_mut() else {
            return;
        };
        if let Err(e) = upload.put_part(PutPayload::from(part)).await {
            if let Some(mut u) = self.upload.take() {
                let _ = u.abort().await;
            }
            self.fail_storage("uploading a part", e);
        }
    }

    /// Completes the upload (or spools) and returns where the recording is.
    pub async fn finish(mut self) -> Result<RecordingInfo, DialerError> {
        let spool_err = |path: &FsPath, source| DialerError::Spool {
            path: path.to_path_buf(),
            source,
        };
        // The local copy always gets exact sizes.
        let header = wav::header(2, SAMPLE_RATE, Some(self.data_bytes));
        self.local
            .seek(SeekFrom::Start(0))
            .await
            .map_err(|e| spool_err(&self.local_path, e))?;
        self.local
            .write_all(&header)
            .await
            .map_err(|e| spool_err(&self.local_path, e))?;
        self.local
            .sync_all()
            .await
            .map_err(|e| spool_err(&self.local_path, e))?;
        let total = self.data_bytes + wav::HEADER_LEN as u64;
        if self.storage_error.is_none() {
            let rest = (total - self.uploaded) as usize;
            let pending = self.read_back(self.uploaded, rest).await?;
            let result = match self.upload.take() {
                None => {
                    // The whole file, with the exact header patched in above.
                    self.store
                        .put(&Path::from(self.key.as_str()), PutPayload::from(pending))
                        .await
                        .map(|_| ())
                }
                Some(mut upload) => {
                    let mut r = Ok(());
                    if !pending.is_empty() {
                        r = upload.put_part(PutPayload::from(pending)).await;
                    }
                    if r.is_ok() {
                        r = upload.complete().await.map(|_| ());
                    }
                    if r.is_err() {
                        let _ = upload.abort().await;
                    }
                    r
                }
            };
            match result {
                Ok(()) => {
                    drop(self.local);
                    tokio::fs::remove_file(&self.local_path)
                        .await
                        .map_err(|e| spool_err(&self.local_path, e))?;
                    return Ok(RecordingInfo {
                        key: self.key,
                        bytes: total,
                        spooled: false,
                    });
                }
                Err(e) => self.fail_storage("completing the upload", e),
            }
        }
        let entry = SpoolEntry {
            call_id: self.call_id.clone(),
            key: self.key.clone(),
            bytes: total,
        };
        let sidecar = self.spool_dir.join(format!("{}.json", self.call_id));
        let json = serde_json::to_vec_pretty(&entry)
            .map_err(|e| spool_err(&sidecar, std::io::Error::other(e)))?;
        tokio::fs::write(&sidecar, json)
            .await
            .map_err(|e| spool_err(&sidecar, e))?;
        tracing::warn!(key = %self.key, path = %self.local_path.display(), "recording spooled for later upload");
        Ok(RecordingInfo {
            key: self.key,
            bytes: total,
            spooled: true,
        })
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

/// Uploads recordings left in `spool_dir` by failed uploads; each is removed only after its
/// upload succeeded. Returns the keys uploaded; stops at the first storage error (storage is
/// probably still down) and leaves the rest for the next run.
pub async fn drain_spool(
    store: Arc<dyn ObjectStore>,
    spool_dir: &FsPath,
) -> Result<Vec<String>, DialerError> {
    let spool_err = |path: &FsPath, source| DialerError::Spool {
        path: path.to_path_buf(),
        source,
    };
    let mut uploaded = Vec::new();
    let mut dir = match tokio::fs::read_dir(spool_dir).await {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(uploaded),
        Err(e) => return Err(spool_err(spool_dir, e)),
    };
    while let Some(entry) = dir
        .next_entry()
        .await
        .map_err(|e| spool_err(spool_dir, e))?
    {
        let sidecar = entry.path();
        if sidecar.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let raw = tokio::fs::read(&sidecar)
            .await
            .map_err(|e| spool_err(&sidecar, e))?;
        let Ok(spooled) = serde_json::from_slice::<SpoolEntry>(&raw) else {
            tracing::warn!(path = %sidecar.display(), "unreadable spool sidecar; left in place");
            continue;
        };
        let wav_path = sidecar.with_extension("wav");
        let data = tokio::fs::read(&wav_path)
            .await
            .map_err(|e| spool_err(&wav_path, e))?;
        let location = Path::from(spooled.key.as_str());
        upload_whole(store.as_ref(), &location, Bytes::from(data))
            .await
            .map_err(|source| DialerError::Upload {
                key: spooled.key.clone(),
                source,
            })?;
        tokio::fs::remove_file(&wav_path)
            .await
            .map_err(|e| spool_err(&wav_path, e))?;
        tokio::fs::remove_file(&sidecar)
            .await
            .map_err(|e| spool_err(&sidecar, e))?;
        tracing::info!(key = %spooled.key, "spooled recording uploaded");
        uploaded.push(spooled.key);
    }
    Ok(uploaded)
}

/// One put for modest files, multipart (5 MiB parts) for large ones.
async fn upload_whole(
    store: &dyn ObjectStore,
    location: &Path,
    data: Bytes,
) -> object_store::Result<()> {
    const PART: usize = 5 * 1024 * 1024;
    if data.len() <= 8 * PART {
        return store
            .put(location, PutPayload::from(data))
            .await
            .map(|_| ());
    }
    let mut upload = store.put_multipart(location).await?;
    for chunk in data.chunks(PART) {
        if let Err(e) = upload
            .put_part(PutPayload::from(data.slice_ref(chunk)))
            .await
        {
            let _ = upload.abort().await;
            return Err(e);
        }
    }
    upload.complete().await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    #[test]
    fn mixer_aligns_channels_and_fills_gaps() {
        let mut m = StereoMixer::default();
        m.write(0, 0, &[1, 2, 3, 4]);
        m.write(1, 2, &[9, 9]); // customer starts later
        let pcm = m.drain_until(3);
        let frames: Vec<i16> = pcm
            .chunks(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(frames, vec![1, 0, 2, 0, 3, 9]);
        m.write(1, 1, &[5, 6, 7]); // partly late: only the sample at 3 is kept
        assert_eq!(m.late_samples, 2);
        assert_eq!(m.end(), 4);
        let frames: Vec<i16> = m
            .drain_until(5)
            .chunks(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(frames, vec![4, 7, 0, 0]);
    }

    async fn write_call(
        store: Arc<dyn ObjectStore>,
        dir: &FsPath,
        bytes: usize,
        part: usize,
    ) -> RecordingInfo {
        let mut w = RecordingWriter::create(store, "rec/c1.wav", "c1", dir, part)
            .await
            .unwrap();
        let pcm: Vec<u8> = (0..bytes).map(|i| (i % 251) as u8).collect();
        for chunk in pcm.chunks(1000) {
            w.write(chunk).await.unwrap();
        }
        w.finish().await.unwrap()
    }

    #[tokio::test]
    async fn short_call_is_one_exact_put() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let info = write_call(store.clone(), dir.path(), 8000, 1 << 20).await;
        assert_eq!(info.bytes, 8044);
        assert!(!info.spooled);
        let obj = store
            .get(&Path::from("rec/c1.wav"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let pcm = wav::parse(&obj).unwrap();
        assert_eq!(
            (pcm.channels, pcm.sample_rate, pcm.samples.len()),
            (2, 8000, 4000)
        );
        assert_eq!(
            u32::from_le_bytes([obj[40], obj[41], obj[42], obj[43]]),
            8000
        );
        // Nothing left behind locally.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn long_call_streams_parts_with_streaming_header() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let info = write_call(store.clone(), dir.path(), 50_000, 10_000).await;
        assert_eq!(info.bytes, 50_044);
        let obj = store
            .get(&Path::from("rec/c1.wav"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(obj.len(), 50_044);
        assert_eq!(&obj[40..44], &[0xFF; 4]);
        assert_eq!(obj[44 + 300], (300 % 251) as u8);
    }

    /// A store that refuses every write, like an S3 server that is down.
    #[derive(Debug)]
    struct Down;
    impl std::fmt::Display for Down {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Down")
        }
    }
    #[async_trait::async_trait]
    impl ObjectStore for Down {
        async fn put_opts(
            &self,
            _: &Path,
            _: PutPayload,
            _: object_store::PutOptions,
        ) -> object_store::Result<object_store::PutResult> {
            Err(refused())
        }
        async fn put_multipart_opts(
            &self,
            _: &Path,
            _: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            Err(refused())
        }
        async fn get_opts(
            &self,
            _: &Path,
            _: object_store::GetOptions,
        ) -> object_store::Result<object_store::GetResult> {
            Err(refused())
        }
        async fn delete(&self, _: &Path) -> object_store::Result<()> {
            Err(refused())
        }
        fn list(
            &self,
            _: Option<&Path>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>>
        {
            Box::pin(futures::stream::once(async { Err(refused()) }))
        }
        async fn list_with_delimiter(
            &self,
            _: Option<&Path>,
        ) -> object_store::Result<object_store::ListResult> {
            Err(refused())
        }
        async fn copy(&self, _: &Path, _: &Path) -> object_store::Result<()> {
            Err(refused())
        }
        async fn copy_if_not_exists(&self, _: &Path, _: &Path) -> object_store::Result<()> {
            Err(refused())
        }
    }
    fn refused() -> object_store::Error {
        object_store::Error::Generic {
            store: "Down",
            source: Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        }
    }

    #[tokio::test]
    async fn storage_down_spools_then_drain_uploads() {
        let dir = tempfile::tempdir().unwrap();
        for (bytes, part) in [(8000, 1 << 20), (50_000, 10_000)] {
            let info = write_call(Arc::new(Down), dir.path(), bytes, part).await;
            assert!(info.spooled);
            // Still down: draining fails and keeps the files.
            assert!(drain_spool(Arc::new(Down), dir.path()).await.is_err());
            assert!(dir.path().join("c1.wav").exists());
            let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
            let keys = drain_spool(store.clone(), dir.path()).await.unwrap();
            assert_eq!(keys, vec!["rec/c1.wav".to_string()]);
            let obj = store
                .get(&Path::from("rec/c1.wav"))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let pcm = wav::parse(&obj).unwrap();
            assert_eq!(pcm.samples.len(), bytes / 2);
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        }
    }
}
