//! Object storage for recordings and transcripts: the local filesystem or any
//! S3-compatible store, both through `object_store`. Keys are laid out by date and call id.

use crate::config::StorageConfig;
use crate::error::{IngestError, Result};
use bytes::Bytes;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::multipart::MultipartStore;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use std::path::Path;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// Files above this size are uploaded in parts (multipart upload).
const MULTIPART_THRESHOLD: usize = 8 * 1024 * 1024;

/// A handle on the configured object store. Cheap to clone.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// S3's part-addressable multipart API and the key prefix `store` adds by itself.
    parts: Option<(Arc<dyn MultipartStore>, String)>,
    describe: String,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe)
    }
}

impl Storage {
    /// Opens the store named by `cfg`, or the local default under `<data_dir>/recordings`.
    pub fn open(cfg: &StorageConfig, data_dir: &Path) -> Result<Storage> {
        match cfg.url.as_deref() {
            None => Self::local(&data_dir.join("recordings")),
            Some(url) if url.starts_with("file://") => {
                Self::local(Path::new(url.trim_start_matches("file://")))
            }
            Some(url) if url.starts_with("s3://") => Self::s3(cfg, url),
            Some(url) => Err(IngestError::StorageConfig(format!(
                "storage.url {url:?} is neither s3://BUCKET nor file:///PATH"
            ))),
        }
    }

    fn local(dir: &Path) -> Result<Storage> {
        std::fs::create_dir_all(dir).map_err(|e| IngestError::io(dir.display(), e))?;
        let fs = LocalFileSystem::new_with_prefix(dir).map_err(|e| {
            IngestError::StorageConfig(format!("local storage at {}: {e}", dir.display()))
        })?;
        Ok(Storage {
            store: Arc::new(fs),
            parts: None,
            describe: format!("file://{}", dir.display()),
        })
    }

    fn s3(cfg: &StorageConfig, url: &str) -> Result<Storage> {
        let rest = url.trim_start_matches("s3://");
        let (bucket, prefix) = match rest.split_once('/') {
            Some((b, p)) => (b, p.trim_matches('/')),
            None => (rest, ""),
        };
        if bucket.is_empty() {
            return Err(IngestError::StorageConfig(format!(
                "storage.url {url:?} names no bucket"
            )));
        }
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(cfg.region.clone().unwrap_or_else(|| "us-east-1".into()))
            .with_virtual_hosted_style_request(false)
            .with_conditional_put(S3ConditionalPut::Disabled);
        if let Some(ep) = &cfg.endpoint {
            b = b
                .with_endpoint(ep)
                .with_allow_http(ep.starts_with("http://"));
        }
        if let Some(k) = &cfg.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(s) = &cfg.secret_access_key {
            b = b.with_secret_access_key(s);
        }
        let s3 = b
            .build()
            .map_err(|e| IngestError::StorageConfig(format!("S3 store {url}: {e}")))?;
        let parts: Arc<dyn MultipartStore> = Arc::new(s3.clone());
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
        };
        Ok(Storage {
            store,
            parts: Some((parts, prefix.to_string())),
            describe: url.to_string(),
        })
    }

    /// The underlying store, for components that stream into it (the dialer's recorder).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// For S3: the multipart API that takes explicit part numbers (parts may be uploaded in any
    /// order, which lets the dialer upload a WAV's header part last), and the key prefix to put
    /// in front of keys (`object_store()` adds it by itself). `None` for the local filesystem.
    pub fn multipart_store(&self) -> Option<(Arc<dyn MultipartStore>, &str)> {
        self.parts
            .as_ref()
            .map(|(p, prefix)| (p.clone(), prefix.as_str()))
    }

    /// Uploads a local file; large files go up in parts. Returns the size stored.
    pub async fn put_file(&self, key: &str, path: &Path) -> Result<u64> {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| IngestError::io(path.display(), e))?;
        let len = file
            .metadata()
            .await
            .map_err(|e| IngestError::io(path.display(), e))?
            .len();
        let location = ObjectPath::from(key);
        if len as usize <= MULTIPART_THRESHOLD {
            let data = tokio::fs::read(path)
                .await
                .map_err(|e| IngestError::io(path.display(), e))?;
            self.put_bytes(key, Bytes::from(data)).await?;
            return Ok(len);
        }
        // BufWriter streams through a multipart upload with bounded memory.
        let mut w = BufWriter::with_capacity(self.store.clone(), location, MULTIPART_THRESHOLD);
        tokio::io::copy(&mut file, &mut w)
            .await
            .map_err(|e| IngestError::io(format!("upload of {} to {key}", path.display()), e))?;
        w.shutdown()
            .await
            .map_err(|e| IngestError::io(format!("upload of {} to {key}", path.display()), e))?;
        Ok(len)
    }

    pub async fn put_bytes(&self, key: &str, data: Bytes) -> Result<()> {
        self.store
            .put(&ObjectPath::from(key), PutPayload::from_bytes(data))
            .await
            .map_err(|source| IngestError::Storage {
                op: "put",
                key: key.to_string(),
                source,
            })?;
        Ok(())
    }

    pub async fn get(&self, key: &str) -> Result<Bytes> {
        let map = |source| IngestError::Storage {
            op: "get",
            key: key.to_string(),
            source,
        };
        self.store
            .get(&ObjectPath::from(key))
            .await
            .map_err(map)?
            .bytes()
            .await
            .map_err(map)
    }

    /// Size of a stored object, or `None` if it does not exist.
    pub async fn size(&self, key: &str) -> Result<Option<u64>> {
        match self.store.head(&ObjectPath::from(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(IngestError::Storage {
                op: "head",
                key: key.to_string(),
                source,
            }),
        }
    }

    /// A byte range of an object (for HTTP Range playback).
    pub async fn get_range(&self, key: &str, range: std::ops::Range<u64>) -> Result<Bytes> {
        self.store
            .get_range(&ObjectPath::from(key), range)
            .await
            .map_err(|source| IngestError::Storage {
                op: "get_range",
                key: key.to_string(),
                source,
            })
    }
}

/// `recordings/YYYY/MM/DD/<call_id>.<ext>`: date-first keys keep listings by day cheap.
pub fn recording_key(call_id: &str, day: chrono::NaiveDate, ext: &str) -> String {
    format!("recordings/{}/{call_id}.{ext}", day.format("%Y/%m/%d"))
}

/// `transcripts/YYYY/MM/DD/<call_id>.json`, one object per call: a redelivered job
/// overwrites the same key, so a call never has two transcripts.
pub fn transcript_key(call_id: &str, day: chrono::NaiveDate) -> String {
    format!("transcripts/{}/{call_id}.json", day.format("%Y/%m/%d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_roundtrip_and_multipart() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(&StorageConfig::default(), dir.path()).unwrap();
        let big = dir.path().join("big.bin");
        let data: Vec<u8> = (0..(MULTIPART_THRESHOLD + 12345))
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&big, &data).unwrap();
        let n = s.put_file("a/b/big.bin", &big).await.unwrap();
        assert_eq!(n as usize, data.len());
        assert_eq!(s.get("a/b/big.bin").await.unwrap().as_ref(), &data[..]);
        assert_eq!(
            s.size("a/b/big.bin").await.unwrap(),
            Some(data.len() as u64)
        );
        assert_eq!(s.size("missing").await.unwrap(), None);
        let r = s.get_range("a/b/big.bin", 10..20).await.unwrap();
        assert_eq!(r.as_ref(), &data[10..20]);
    }

    #[test]
    fn keys_are_dated() {
        let d = chrono::NaiveDate::from_ymd_opt(2026, 3, 9).unwrap();
        assert_eq!(
            recording_key("c1", d, "wav"),
            "recordings/2026/03/09/c1.wav"
        );
        assert_eq!(transcript_key("c1", d), "transcripts/2026/03/09/c1.json");
    }

    #[test]
    fn bad_url_is_explained() {
        let cfg = StorageConfig {
            url: Some("ftp://x".into()),
            ..Default::default()
        };
        let err = Storage::open(&cfg, Path::new("/tmp")).unwrap_err();
        assert!(err.to_string().contains("s3://"));
    }
}
