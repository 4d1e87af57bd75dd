//! Campaigns started from the UI or API dial inside the server process: one dialer runner
//! task per campaign, stopped by a pause (from here or `callqa campaign pause`) or when
//! the server shuts down.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use callqa_dialer::{
    CampaignError, CampaignState, CampaignStore, Consents, DialerConfig, RunOptions, Runner,
};
use sqlx::AnyPool;
use tokio::task::JoinHandle;

use crate::error::WebError;
use crate::WebState;

/// How often a running campaign re-reads its state, so a pause takes effect (same as the CLI).
const POLL: Duration = Duration::from_millis(500);

/// The dialer settings of this server and the campaigns it is running.
pub struct Dialing {
    dialer: DialerConfig,
    spool_dir: PathBuf,
    runs: Mutex<HashMap<String, JoinHandle<()>>>,
}

impl Dialing {
    pub fn new(dialer: DialerConfig, spool_dir: PathBuf) -> Self {
        Dialing {
            dialer,
            spool_dir,
            runs: Mutex::new(HashMap::new()),
        }
    }

    /// Names of the campaigns whose runner is still going in this process.
    pub fn running(&self) -> Vec<String> {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.retain(|_, h| !h.is_finished());
        let mut names: Vec<String> = runs.keys().cloned().collect();
        names.sort();
        names
    }

    /// Checks that campaign `name` can run, marks it running and starts its runner.
    /// The caller has checked the role and that the stored state allows a start.
    pub(crate) async fn start(
        &self,
        state: &WebState,
        store: &CampaignStore,
        name: &str,
    ) -> Result<(), WebError> {
        if self.running().iter().any(|n| n == name) {
            // Paused, but its runner still lets its last calls finish.
            return Err(WebError::Conflict(format!(
                "campaign {name} is still finishing its calls in flight on this server; \
                 start it again in a moment"
            )));
        }
        // The same checks the runner makes first, so a campaign that cannot dial is
        // refused here with the reason instead of failing in the background.
        let cfg = store.config(name).await?;
        let cannot = |e: String| WebError::Conflict(format!("campaign {name} cannot start: {e}"));
        cfg.check_against(&self.dialer)
            .map_err(|e| cannot(e.to_string()))?;
        cfg.dialer_config(&self.dialer)
            .calling_hours()
            .map_err(|e| cannot(e.to_string()))?;
        cfg.window().map_err(|e| cannot(e.to_string()))?;

        let runner = Runner {
            dialer: self.dialer.clone(),
            store: store.clone(),
            consents: Consents::open(state.db.pool().clone()).await?,
            blacklist: callqa_qa::Blacklist::new(state.db.pool().clone()),
            db: state.db.clone(),
            queue: state.queue.clone(),
            objects: callqa_dialer::RecordingStore::from_storage(&state.storage),
            options: RunOptions {
                poll: POLL,
                exit_when_idle: false,
                spool_dir: self.spool_dir.clone(),
            },
        };
        // Running from now on, so the page shown next says so; the runner sets it again.
        store
            .set_state(name, CampaignState::Running, callqa_ingest::db::now_ms())
            .await?;
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.retain(|_, h| !h.is_finished());
        if runs.contains_key(name) {
            return Err(WebError::Conflict(format!(
                "campaign {name} is already running on this server"
            )));
        }
        let task_store = store.clone();
        let task_name = name.to_string();
        let handle = tokio::spawn(async move {
            match runner.run(&task_name).await {
                Ok(s) => tracing::info!(
                    campaign = %task_name, placed = s.placed, answered = s.answered,
                    abandoned = s.abandoned, refused = s.refused, paused = s.paused,
                    "campaign run ended"
                ),
                Err(e) => {
                    tracing::error!(campaign = %task_name, error = %e, "campaign run failed");
                    stop_marking_running(&task_store, &task_name).await;
                }
            }
        });
        runs.insert(name.to_string(), handle);
        Ok(())
    }

    /// Pauses every campaign this process runs and waits for their runners, which let the
    /// calls in flight finish. Called when the server stops.
    pub async fn pause_all(&self, pool: &AnyPool) {
        let handles: Vec<(String, JoinHandle<()>)> = {
            let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
            runs.drain().filter(|(_, h)| !h.is_finished()).collect()
        };
        if handles.is_empty() {
            return;
        }
        match CampaignStore::open(pool.clone()).await {
            Ok(store) => {
                for (name, _) in &handles {
                    let now = callqa_ingest::db::now_ms();
                    if let Err(e) = store.set_state(name, CampaignState::Paused, now).await {
                        tracing::error!(campaign = %name, error = %e, "cannot pause at shutdown");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot pause campaigns at shutdown"),
        }
        tracing::info!(
            campaigns = handles.len(),
            "pausing campaigns: letting calls in flight finish"
        );
        for (name, h) in handles {
            if let Err(e) = h.await {
                tracing::error!(campaign = %name, error = %e, "campaign runner task failed");
            }
        }
    }
}

/// After a failed run: a campaign still marked running is paused, so the page does not
/// claim it dials and an admin can start it again once the cause is fixed.
async fn stop_marking_running(store: &CampaignStore, name: &str) {
    if matches!(store.state(name).await, Ok(CampaignState::Running)) {
        let r: Result<(), CampaignError> = store
            .set_state(name, CampaignState::Paused, callqa_ingest::db::now_ms())
            .await;
        if let Err(e) = r {
            tracing::error!(campaign = %name, error = %e, "cannot mark the failed campaign paused");
        }
    }
}
