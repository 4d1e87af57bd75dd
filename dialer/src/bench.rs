//! Call-setup benchmark: how many calls per second the dialer completes against a UAS, to be
//! set next to SIPp-vs-SIPp on the same machine.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use object_store::ObjectStore;
use serde::Serialize;

use crate::call::{dial, DialRequest, Outcome};
use crate::config::DialerConfig;
use crate::error::DialerError;

/// Result of [`setup_rate`].
#[derive(Debug, Clone, Serialize)]
pub struct SetupBench {
    pub calls: u64,
    pub answered: u64,
    /// Calls that did not end as `expect`.
    pub failures: u64,
    pub elapsed_ms: u64,
    pub calls_per_sec: f64,
    /// Mean INVITE-to-final-response time.
    pub mean_setup_ms: f64,
}

/// What [`setup_rate`] places.
#[derive(Debug, Clone)]
pub struct SetupPlan {
    pub trunk: String,
    pub prompt: PathBuf,
    pub calls: u64,
    pub concurrency: usize,
    /// The outcome every call should have (e.g. `Busy` against a UAS answering 486).
    pub expect: Outcome,
}

/// Places `plan.calls` calls through its trunk, at most `plan.concurrency` at a time, and
/// counts those that did not end as `plan.expect` as failures.
pub async fn setup_rate(
    cfg: &DialerConfig,
    plan: &SetupPlan,
    store: Arc<dyn ObjectStore>,
    spool_dir: &Path,
) -> Result<SetupBench, DialerError> {
    let SetupPlan {
        trunk,
        prompt,
        calls,
        concurrency,
        expect,
    } = plan.clone();
    cfg.trunk(&trunk)?;
    let started = Instant::now();
    let results: Vec<Result<_, DialerError>> = futures::stream::iter(0..calls)
        .map(|i| {
            let req = DialRequest {
                number: format!("+86138{:08}", i % 100_000_000),
                trunk: trunk.clone(),
                caller_id: None,
                play: prompt.to_path_buf(),
                call_id: format!("bench-{}-{i}", std::process::id()),
                recording_key: format!("bench/{i}.wav"),
            };
            let store = store.clone();
            async move { dial(cfg, req, store, spool_dir).await }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut answered = 0;
    let mut failures = 0;
    let mut setup_total = 0u64;
    for r in &results {
        match r {
            Ok(report) => {
                answered += u64::from(report.outcome == Outcome::Answered);
                failures += u64::from(report.outcome != expect);
                setup_total += report.setup_ms;
            }
            Err(e) => {
                tracing::warn!(error = %e, "bench call failed");
                failures += 1;
            }
        }
    }
    Ok(SetupBench {
        calls,
        answered,
        failures,
        elapsed_ms: elapsed.as_millis() as u64,
        calls_per_sec: calls as f64 / elapsed.as_secs_f64().max(1e-9),
        mean_setup_ms: setup_total as f64 / calls.max(1) as f64,
    })
}
