//! The wired-up application: configuration, metadata database, object storage and the
//! job queue, opened once per process and shared by every command.

use crate::config::Config;
use anyhow::{Context, Result};
use callqa_ingest::db::Db;
use callqa_ingest::queue::{AmqpQueue, EmbeddedQueue, JobQueue};
use callqa_ingest::storage::Storage;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone)]
pub struct App {
    pub cfg: Config,
    pub data_dir: PathBuf,
    pub db: Db,
    pub storage: Storage,
    pub queue: Arc<dyn JobQueue>,
}

impl App {
    pub async fn open(cfg: Config, data_dir: &Path) -> Result<App> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
        let db = Db::connect(&cfg.database, data_dir)
            .await
            .context("cannot open the metadata database (check [database] url)")?;
        callqa_qa::migrate(db.pool())
            .await
            .context("cannot create the QA tables")?;
        let storage = Storage::open(&cfg.storage, data_dir)
            .context("cannot open object storage (check [storage])")?;
        let queue: Arc<dyn JobQueue> = match &cfg.queue.url {
            Some(_) => Arc::new(
                AmqpQueue::connect(&cfg.queue)
                    .await
                    .context("cannot connect to the job queue (check [queue] url)")?,
            ),
            None => Arc::new(EmbeddedQueue::new(db.clone(), &cfg.queue.prefix)),
        };
        Ok(App {
            cfg,
            data_dir: data_dir.to_path_buf(),
            db,
            storage,
            queue,
        })
    }

    /// The search index directory (derived data; `callqa reindex` rebuilds it).
    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join("index")
    }

    /// The whisper model: configured path, else the best base model installed under
    /// `<data-dir>/models` (q8_0, q4_k, then f16 `ggml-base.bin`).
    pub fn model_path(&self) -> PathBuf {
        self.cfg
            .transcribe
            .model
            .clone()
            .unwrap_or_else(|| callqa_ingest::model::default_model(&self.data_dir.join("models")))
    }
}
