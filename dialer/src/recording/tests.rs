//! Unit tests of the recorder: mixing, exact headers on streamed and whole uploads, spooling
//! when the store fails (before or in the middle of a multipart upload) and the spool drain.

use super::*;
use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use object_store::multipart::MultipartStore;
use object_store::{ObjectStore, PutPayload};

use object_store::local::LocalFileSystem;
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

/// An S3-like part-numbered multipart store that checks what S3 checks: parts may arrive in
/// any order, every part but the last is at least `min_part`, `complete` lists them all in
/// order. Completed objects land in `objects`. It can be told to fail after some parts.
#[derive(Debug, Default)]
struct FakeS3 {
    objects: Arc<InMemory>,
    min_part: usize,
    uploads: Mutex<HashMap<String, BTreeMap<usize, Bytes>>>,
    /// "create", "part N", "complete", "abort <id>", in call order.
    log: Mutex<Vec<String>>,
    /// Refuse every request once this many parts went up.
    fail_after_parts: Option<usize>,
}

impl std::fmt::Display for FakeS3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FakeS3")
    }
}

impl FakeS3 {
    fn new(min_part: usize) -> Arc<Self> {
        Arc::new(Self {
            min_part,
            ..Self::default()
        })
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn note(&self, what: String) -> object_store::Result<()> {
        let mut log = self.log.lock().unwrap();
        let parts = log.iter().filter(|l| l.starts_with("part")).count();
        if self.fail_after_parts.is_some_and(|n| parts >= n) {
            return Err(refused());
        }
        log.push(what);
        Ok(())
    }

    fn store(self: &Arc<Self>) -> RecordingStore {
        RecordingStore::with_parts(self.objects.clone(), self.clone(), "")
    }

    async fn object(&self, key: &str) -> Bytes {
        self.objects
            .get(&Path::from(key))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    }
}

#[async_trait::async_trait]
impl MultipartStore for FakeS3 {
    async fn create_multipart(&self, _: &Path) -> object_store::Result<MultipartId> {
        self.note("create".into())?;
        let mut uploads = self.uploads.lock().unwrap();
        let id = format!("upload-{}", uploads.len());
        uploads.insert(id.clone(), BTreeMap::new());
        Ok(id)
    }

    async fn put_part(
        &self,
        _: &Path,
        id: &MultipartId,
        part_idx: usize,
        data: PutPayload,
    ) -> object_store::Result<PartId> {
        self.note(format!("part {part_idx}"))?;
        let bytes: Bytes = data.into();
        self.uploads
            .lock()
            .unwrap()
            .get_mut(id)
            .expect("upload exists")
            .insert(part_idx, bytes);
        Ok(PartId {
            content_id: format!("{id}/{part_idx}"),
        })
    }

    async fn complete_multipart(
        &self,
        path: &Path,
        id: &MultipartId,
        parts: Vec<PartId>,
    ) -> object_store::Result<object_store::PutResult> {
        self.note("complete".into())?;
        let upload = self.uploads.lock().unwrap().remove(id).expect("upload");
        assert_eq!(parts.len(), upload.len(), "complete lists every part");
        let mut body = Vec::new();
        for (i, (part, data)) in parts.iter().zip(upload.values()).enumerate() {
            assert_eq!(part.content_id, format!("{id}/{i}"), "parts in order");
            assert!(
                i + 1 == upload.len() || data.len() >= self.min_part,
                "part {i} of {} bytes is below the minimum",
                data.len()
            );
            body.extend_from_slice(data);
        }
        self.objects.put(path, PutPayload::from(body)).await
    }

    async fn abort_multipart(&self, _: &Path, id: &MultipartId) -> object_store::Result<()> {
        self.note(format!("abort {id}"))?;
        self.uploads.lock().unwrap().remove(id);
        Ok(())
    }
}

fn pcm_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

async fn write_call(
    store: impl Into<RecordingStore>,
    dir: &FsPath,
    bytes: usize,
    part: usize,
) -> RecordingInfo {
    let mut w = RecordingWriter::create(store, "rec/c1.wav", "c1", dir, part)
        .await
        .unwrap();
    for chunk in pcm_bytes(bytes).chunks(1000) {
        w.write(chunk).await.unwrap();
    }
    w.finish().await.unwrap()
}

/// The object is a WAV with exact sizes holding exactly `pcm`.
fn assert_exact_wav(obj: &[u8], pcm_len: usize) {
    assert_eq!(obj.len(), pcm_len + wav::HEADER_LEN);
    let le = |at: usize| u32::from_le_bytes([obj[at], obj[at + 1], obj[at + 2], obj[at + 3]]);
    assert_eq!(le(4) as usize, pcm_len + 36, "RIFF size");
    assert_eq!(le(40) as usize, pcm_len, "data size");
    assert_eq!(&obj[wav::HEADER_LEN..], &pcm_bytes(pcm_len)[..]);
}

#[tokio::test]
async fn short_call_is_one_exact_put() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = FakeS3::new(1);
    let info = write_call(s3.store(), dir.path(), 8000, 1 << 20).await;
    assert_eq!(info.bytes, 8044);
    assert!(!info.spooled);
    assert_eq!(s3.log(), Vec::<String>::new(), "no multipart for one part");
    let obj = s3.object("rec/c1.wav").await;
    assert_exact_wav(&obj, 8000);
    let pcm = wav::parse(&obj).unwrap();
    assert_eq!(
        (pcm.channels, pcm.sample_rate, pcm.samples.len()),
        (2, 8000, 4000)
    );
    // Nothing left behind locally.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn long_call_streams_parts_during_the_call_and_the_header_part_last() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = FakeS3::new(10_000);
    let mut w = RecordingWriter::create(s3.store(), "rec/c1.wav", "c1", dir.path(), 10_000)
        .await
        .unwrap();
    for chunk in pcm_bytes(50_000).chunks(1000) {
        w.write(chunk).await.unwrap();
    }
    // While the call still runs, the complete body parts go up (not the header part).
    let deadline = Instant::now() + Duration::from_secs(5);
    while s3.log().len() < 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(s3.log(), ["create", "part 1", "part 2", "part 3", "part 4"]);
    let info = w.finish().await.unwrap();
    assert_eq!((info.bytes, info.spooled), (50_044, false));
    // 50,044 bytes: parts 0-4 of 10,000 and a 44-byte tail (part 5); the header part 0 last.
    assert_eq!(
        s3.log(),
        ["create", "part 1", "part 2", "part 3", "part 4", "part 5", "part 0", "complete"]
    );
    assert_exact_wav(&s3.object("rec/c1.wav").await, 50_000);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn a_part_boundary_exactly_at_the_end_leaves_no_empty_tail() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = FakeS3::new(10_000);
    // 30,000 bytes of file: parts 0, 1, 2 and nothing after.
    let info = write_call(s3.store(), dir.path(), 30_000 - 44, 10_000).await;
    assert!(!info.spooled);
    assert_eq!(
        s3.log(),
        ["create", "part 1", "part 2", "part 0", "complete"]
    );
    assert_exact_wav(&s3.object("rec/c1.wav").await, 30_000 - 44);
}

/// More than one 5 MiB part, decoded by the pipeline's decoder (symphonia): the header's
/// frame count matches the audio, so nothing is reported truncated.
#[tokio::test]
async fn recordings_over_5_mib_decode_with_the_exact_length() {
    let frames = 3_200_000; // 12.8 MB of 8 kHz stereo, 400 s: three 5 MiB parts
    let pcm: Vec<u8> = (0..frames)
        .flat_map(|i: u32| {
            let s = ((i as f32 * 0.05).sin() * 8000.0) as i16;
            [s.to_le_bytes(), (-s).to_le_bytes()].concat()
        })
        .collect();
    for streaming in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let s3 = FakeS3::new(5 << 20);
        let store_dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(store_dir.path()).unwrap());
        let store = if streaming {
            s3.store()
        } else {
            RecordingStore::new(local.clone())
        };
        let mut w = RecordingWriter::create(store, "rec/long.wav", "long", dir.path(), 5 << 20)
            .await
            .unwrap();
        for chunk in pcm.chunks(3200) {
            w.write(chunk).await.unwrap();
        }
        let info = w.finish().await.unwrap();
        assert!(!info.spooled);
        let obj = if streaming {
            assert!(s3.log().contains(&"part 0".to_string()), "{:?}", s3.log());
            s3.object("rec/long.wav").await
        } else {
            local
                .get(&Path::from("rec/long.wav"))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
        };
        assert_eq!(obj.len(), pcm.len() + 44);
        assert_eq!(&obj[44..], &pcm[..]);
        let audio = callqa_ingest::decode::decode(obj.to_vec(), "long.wav").unwrap();
        assert_eq!(audio.channels.len(), 2);
        assert_eq!(audio.frames(), frames as usize);
        assert_eq!(audio.duration_ms(), 400_000);
    }
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
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
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
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
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
        let down: Arc<dyn ObjectStore> = Arc::new(Down);
        let info = write_call(down, dir.path(), bytes, part).await;
        assert!(info.spooled);
        // Still down: draining fails and keeps the files.
        let down: Arc<dyn ObjectStore> = Arc::new(Down);
        assert!(drain_spool(down, dir.path()).await.is_err());
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
        assert_exact_wav(&obj, bytes);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

/// The store dies after two parts went up: the call still ends, the audio those parts carried
/// is in the spooled copy, and the drain stores the whole recording and aborts the upload.
#[tokio::test]
async fn store_dying_mid_multipart_spools_everything_and_drain_aborts_the_upload() {
    let dir = tempfile::tempdir().unwrap();
    let dying = Arc::new(FakeS3 {
        min_part: 10_000,
        fail_after_parts: Some(2),
        ..FakeS3::default()
    });
    let info = write_call(dying.store(), dir.path(), 50_000, 10_000).await;
    assert!(info.spooled);
    assert_eq!(dying.log(), ["create", "part 1", "part 2"]);
    let entry: SpoolEntry =
        serde_json::from_slice(&std::fs::read(dir.path().join("c1.json")).unwrap()).unwrap();
    assert_eq!(entry.abandoned_upload.as_deref(), Some("upload-0"));
    assert_eq!(entry.bytes, 50_044);
    // The spooled copy is complete, with exact sizes.
    assert_exact_wav(&std::fs::read(dir.path().join("c1.wav")).unwrap(), 50_000);

    // Back up (the same server: the abandoned upload is there to abort).
    let back = Arc::new(FakeS3 {
        min_part: 10_000,
        objects: dying.objects.clone(),
        uploads: Mutex::new(std::mem::take(&mut *dying.uploads.lock().unwrap())),
        ..FakeS3::default()
    });
    let keys = drain_spool(back.store(), dir.path()).await.unwrap();
    assert_eq!(keys, ["rec/c1.wav"]);
    assert_eq!(back.log(), ["abort upload-0"]);
    assert!(back.uploads.lock().unwrap().is_empty());
    assert_exact_wav(&back.object("rec/c1.wav").await, 50_000);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// A store that takes `puts` plain puts and then is unreachable.
#[derive(Debug)]
struct Flaky {
    inner: InMemory,
    puts: Mutex<usize>,
}
impl std::fmt::Display for Flaky {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Flaky")
    }
}
#[async_trait::async_trait]
impl ObjectStore for Flaky {
    async fn put_opts(
        &self,
        p: &Path,
        d: PutPayload,
        o: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        {
            let mut left = self.puts.lock().unwrap();
            if *left == 0 {
                return Err(refused());
            }
            *left -= 1;
        }
        self.inner.put_opts(p, d, o).await
    }
    async fn put_multipart_opts(
        &self,
        _: &Path,
        _: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        Err(refused())
    }
    async fn get_opts(
        &self,
        p: &Path,
        o: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        self.inner.get_opts(p, o).await
    }
    async fn delete(&self, p: &Path) -> object_store::Result<()> {
        self.inner.delete(p).await
    }
    fn list(
        &self,
        p: Option<&Path>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.inner.list(p)
    }
    async fn list_with_delimiter(
        &self,
        p: Option<&Path>,
    ) -> object_store::Result<object_store::ListResult> {
        self.inner.list_with_delimiter(p).await
    }
    async fn copy(&self, a: &Path, b: &Path) -> object_store::Result<()> {
        self.inner.copy(a, b).await
    }
    async fn copy_if_not_exists(&self, a: &Path, b: &Path) -> object_store::Result<()> {
        self.inner.copy_if_not_exists(a, b).await
    }
}

#[tokio::test]
async fn a_drain_cut_short_still_reports_what_it_uploaded() {
    let dir = tempfile::tempdir().unwrap();
    for id in ["a", "b", "c"] {
        let down: Arc<dyn ObjectStore> = Arc::new(Down);
        let mut w =
            RecordingWriter::create(down, &format!("rec/{id}.wav"), id, dir.path(), 1 << 20)
                .await
                .unwrap();
        w.write(&pcm_bytes(4000)).await.unwrap();
        assert!(w.finish().await.unwrap().spooled);
    }
    let flaky = Arc::new(Flaky {
        inner: InMemory::new(),
        puts: Mutex::new(1),
    });
    let store: Arc<dyn ObjectStore> = flaky.clone();
    // One put goes through, then the store is gone: the key uploaded is still reported and
    // the drain does not try the third file against a dead store.
    assert_eq!(
        drain_spool(store.clone(), dir.path()).await.unwrap(),
        ["rec/a.wav"]
    );
    assert!(!dir.path().join("a.wav").exists() && !dir.path().join("a.json").exists());
    assert!(dir.path().join("b.wav").exists() && dir.path().join("c.json").exists());
    *flaky.puts.lock().unwrap() = 10;
    assert_eq!(
        drain_spool(store, dir.path()).await.unwrap(),
        ["rec/b.wav", "rec/c.wav"]
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn unreachable_store_errors_are_told_apart() {
    assert!(store_unreachable(&refused()));
    let not_found = object_store::Error::NotFound {
        path: "x".into(),
        source: "gone".into(),
    };
    assert!(!store_unreachable(&not_found));
}

/// Why the header is exact rather than the `0xFFFFFFFF` streaming placeholders: the pipeline's
/// decoder (symphonia) takes the placeholder as 37 hours announced and rejects the recording.
#[test]
fn streaming_placeholders_would_fail_the_pipeline_decoder() {
    let mut file = wav::header(2, SAMPLE_RATE, None).to_vec();
    file.extend_from_slice(&pcm_bytes(32_000));
    let err = callqa_ingest::decode::decode(file, "c.wav").unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    let mut exact = wav::header(2, SAMPLE_RATE, Some(32_000)).to_vec();
    exact.extend_from_slice(&pcm_bytes(32_000));
    assert_eq!(
        callqa_ingest::decode::decode(exact, "c.wav")
            .unwrap()
            .frames(),
        8000
    );
}
