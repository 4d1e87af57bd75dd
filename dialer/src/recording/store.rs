//! Where recordings are uploaded: [`RecordingStore`] (plain object API plus, when the backend
//! has it, the part-numbered multipart API), and bounded read-back buffers of the local copy.

use std::io::SeekFrom;
use std::path::Path as FsPath;
use std::sync::Arc;

use bytes::Bytes;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Bytes that upload buffers of all recordings (and the spool drain) may hold at once.
pub const BUFFER_BUDGET: usize = 64 << 20;
/// Plain puts up to this size when draining the spool or writing whole files; multipart above.
const WHOLE_PUT_MAX: u64 = 5 << 20;

/// [`BUFFER_BUDGET`] in KiB permits.
static BUFFERS: Semaphore = Semaphore::const_new(BUFFER_BUDGET >> 10);

/// The object store recordings go to, with the part-numbered multipart API when the backend has
/// one (S3, GCS, Azure); that API is what lets a recording stream with an exact header.
#[derive(Clone)]
pub struct RecordingStore {
    pub(super) objects: Arc<dyn ObjectStore>,
    pub(super) parts: Option<PartStore>,
}

#[derive(Clone)]
pub(super) struct PartStore {
    pub(super) api: Arc<dyn MultipartStore>,
    /// Key prefix that `objects` adds by itself and `api` does not.
    prefix: String,
}

impl PartStore {
    pub(super) fn path(&self, key: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(key)
        } else {
            Path::from(format!("{}/{key}", self.prefix.trim_end_matches('/')))
        }
    }
}

impl RecordingStore {
    /// A store written whole at hangup (no part-numbered multipart API).
    pub fn new(objects: Arc<dyn ObjectStore>) -> Self {
        Self {
            objects,
            parts: None,
        }
    }

    /// A store that streams recordings: `store` has the part-numbered multipart API.
    pub fn streaming<T: ObjectStore + MultipartStore>(store: Arc<T>) -> Self {
        let objects: Arc<dyn ObjectStore> = store.clone();
        Self::with_parts(objects, store, "")
    }

    /// `objects` for plain reads and writes, `parts` for streaming; `prefix` is what `objects`
    /// puts in front of keys (a `PrefixStore`) and `parts` must be given explicitly.
    pub fn with_parts(
        objects: Arc<dyn ObjectStore>,
        parts: Arc<dyn MultipartStore>,
        prefix: &str,
    ) -> Self {
        Self {
            objects,
            parts: Some(PartStore {
                api: parts,
                prefix: prefix.to_string(),
            }),
        }
    }

    /// The configured storage: streaming on S3, whole files on the local filesystem.
    pub fn from_storage(storage: &callqa_ingest::storage::Storage) -> Self {
        match storage.multipart_store() {
            Some((parts, prefix)) => Self::with_parts(storage.object_store(), parts, prefix),
            None => Self::new(storage.object_store()),
        }
    }

    pub fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.objects
    }

    /// Whether recordings are uploaded part by part during the call.
    pub fn streams(&self) -> bool {
        self.parts.is_some()
    }
}

/// Any concrete store, written whole at hangup; use [`RecordingStore::streaming`] to stream.
impl<T: ObjectStore> From<Arc<T>> for RecordingStore {
    fn from(objects: Arc<T>) -> Self {
        Self::new(objects)
    }
}

impl From<Arc<dyn ObjectStore>> for RecordingStore {
    fn from(objects: Arc<dyn ObjectStore>) -> Self {
        Self::new(objects)
    }
}

impl From<&callqa_ingest::storage::Storage> for RecordingStore {
    fn from(storage: &callqa_ingest::storage::Storage) -> Self {
        Self::from_storage(storage)
    }
}

impl std::fmt::Debug for RecordingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RecordingStore({}, streams: {})",
            self.objects,
            self.streams()
        )
    }
}

/// Why an upload step failed: the local copy could not be read, or the store refused.
#[derive(Debug)]
pub(super) enum StepError {
    Local(std::io::Error),
    Store(object_store::Error),
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::Local(e) => write!(f, "reading the local copy: {e}"),
            StepError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl From<object_store::Error> for StepError {
    fn from(e: object_store::Error) -> Self {
        StepError::Store(e)
    }
}

impl From<std::io::Error> for StepError {
    fn from(e: std::io::Error) -> Self {
        StepError::Local(e)
    }
}

/// Bytes read back from a local file, holding their share of [`BUFFER_BUDGET`].
pub(super) struct Buffer {
    data: Bytes,
    _permit: SemaphorePermit<'static>,
}

impl Buffer {
    pub(super) fn payload(&self) -> PutPayload {
        PutPayload::from(self.data.clone())
    }
}

/// Reads `len` bytes at `offset` of `path` once the buffer budget allows.
pub(super) async fn read_range(path: &FsPath, offset: u64, len: usize) -> std::io::Result<Buffer> {
    let kib = len.div_ceil(1024).min(BUFFER_BUDGET >> 10) as u32;
    let permit = BUFFERS
        .acquire_many(kib)
        .await
        .map_err(std::io::Error::other)?;
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(SeekFrom::Start(offset)).await?;
    let mut buf = vec![0u8; len];
    file.read_exact(&mut buf).await?;
    Ok(Buffer {
        data: Bytes::from(buf),
        _permit: permit,
    })
}

/// A plain put through the store's object API (which adds any key prefix itself).
pub(super) async fn put_whole(
    store: &RecordingStore,
    key: &str,
    buf: Buffer,
) -> Result<(), StepError> {
    store
        .objects
        .put(&Path::from(key), buf.payload())
        .await
        .map(|_| ())
        .map_err(StepError::Store)
}

/// Uploads a local file whole: one put up to [`WHOLE_PUT_MAX`], else a multipart upload read
/// back one part at a time.
pub(super) async fn upload_file(
    store: &dyn ObjectStore,
    path: &FsPath,
    location: &Path,
    len: u64,
) -> Result<(), StepError> {
    if len <= WHOLE_PUT_MAX {
        let buf = read_range(path, 0, len as usize).await?;
        store.put(location, buf.payload()).await?;
        return Ok(());
    }
    let mut upload = store.put_multipart(location).await?;
    let mut offset = 0;
    let result = async {
        while offset < len {
            let n = (len - offset).min(WHOLE_PUT_MAX);
            let buf = read_range(path, offset, n as usize).await?;
            upload.put_part(buf.payload()).await?;
            offset += n;
        }
        upload.complete().await?;
        Ok::<_, StepError>(())
    }
    .await;
    if result.is_err() {
        let _ = upload.abort().await;
    }
    result
}
