//! callqa-web: the axum server behind `callqa serve` — the JSON API under `/api/`, the
//! server-rendered UI, login and roles, the audit log, `/metrics` and CRM webhooks.

pub mod api;
pub mod audit;
pub mod auth;
pub mod dialing;
pub mod error;
pub mod mask;
pub mod metrics;
pub mod openapi;
pub mod scorecard_files;
pub mod sessions;
pub mod ui;
pub mod webhook;

use std::path::PathBuf;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use callqa_ingest::db::Db;
use callqa_ingest::queue::JobQueue;
use callqa_ingest::storage::Storage;
use callqa_search::SearchIndex;
use serde::{Deserialize, Serialize};
use sqlx::AnyPool;

pub use api::calls::call_json;
pub use auth::{add_user, NewUser, Role, User};
pub use error::WebError;
pub use webhook::send_webhook;

/// Web settings (`[web]` in the config file). The defaults need no setup.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// CRM endpoint that receives each finished call's result; none = no webhooks.
    pub webhook_url: Option<String>,
    /// Key of the `X-Callqa-Signature` HMAC; unsigned without one.
    pub webhook_secret: Option<String>,
    /// Delay before the first webhook retry; doubles for the next.
    pub webhook_backoff_ms: u64,
    /// How long a UI login lasts.
    pub session_hours: u64,
    /// Mark the session cookie `Secure` (when served behind HTTPS).
    pub secure_cookies: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            webhook_url: None,
            webhook_secret: None,
            webhook_backoff_ms: 1000,
            session_hours: 12,
            secure_cookies: false,
        }
    }
}

/// Extra Prometheus text the embedding process appends to `/metrics`
/// (the binary's transcription and dialer counters).
pub type ExtraMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// Everything a request handler needs. Cheap to clone.
#[derive(Clone)]
pub struct WebState {
    pub db: Db,
    pub storage: Storage,
    pub index: Arc<SearchIndex>,
    pub queue: Arc<dyn JobQueue>,
    pub config: WebConfig,
    /// Appended to `/metrics` when set.
    pub extra_metrics: Option<ExtraMetrics>,
    /// Runs campaigns started from the UI or API; without it this server cannot dial.
    pub dialing: Option<Arc<dialing::Dialing>>,
    /// Where campaign scorecards live (`<campaign>.toml`); without it they cannot be edited here.
    pub scorecards_dir: Option<PathBuf>,
}

impl WebState {
    pub fn new(
        db: Db,
        storage: Storage,
        index: Arc<SearchIndex>,
        queue: Arc<dyn JobQueue>,
        config: WebConfig,
    ) -> Self {
        WebState {
            db,
            storage,
            index,
            queue,
            config,
            extra_metrics: None,
            dialing: None,
            scorecards_dir: None,
        }
    }

    /// Lets admins start campaigns from the UI and API: they dial in this process with
    /// `dialer` settings, spooling recordings under `spool_dir`.
    pub fn with_dialing(mut self, dialer: callqa_dialer::DialerConfig, spool_dir: PathBuf) -> Self {
        self.dialing = Some(Arc::new(dialing::Dialing::new(dialer, spool_dir)));
        self
    }

    /// Lets admins edit campaign scorecards, stored in `dir` as the scoring stage reads them.
    pub fn with_scorecards_dir(mut self, dir: PathBuf) -> Self {
        self.scorecards_dir = Some(dir);
        self
    }
}

/// Creates the web tables (users, API tokens, sessions, audit log) if missing.
pub async fn migrate(pool: &AnyPool) -> Result<(), WebError> {
    auth::migrate(pool).await
}

/// The whole application: API, UI, health and metrics.
pub fn router(state: WebState) -> Router {
    let state = Arc::new(state);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics_page))
        .merge(api::routes())
        .merge(ui::routes())
        .with_state(state)
}

async fn metrics_page(
    axum::extract::State(state): axum::extract::State<Arc<WebState>>,
) -> Result<([(axum::http::HeaderName, &'static str); 1], String), WebError> {
    let text = metrics::render(&state).await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}

/// Serves [`router`] on `listen` until `stop` turns true, then finishes in-flight requests
/// and pauses the campaigns it was dialing (their calls in flight finish first). Expired
/// login sessions are swept in the background meanwhile.
pub async fn serve(
    state: WebState,
    listen: &str,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), WebError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| WebError::Listen {
            addr: listen.to_string(),
            source,
        })?;
    let addr = listener.local_addr().map_err(WebError::Serve)?;
    tracing::info!("web UI and API on http://{addr}");
    let sweeper =
        sessions::spawn_sweeper(state.db.pool().clone(), sessions::SWEEP_EVERY, stop.clone());
    let dialing = state.dialing.clone();
    let pool = state.db.pool().clone();
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            while !*stop.borrow_and_update() {
                if stop.changed().await.is_err() {
                    // Nobody can ask us to stop any more; keep serving until the process ends.
                    std::future::pending::<()>().await;
                }
            }
        })
        .await
        .map_err(WebError::Serve);
    if let Some(d) = dialing {
        d.pause_all(&pool).await;
    }
    sweeper.abort();
    served
}
