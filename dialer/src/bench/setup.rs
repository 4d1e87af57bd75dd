//! The dialer's call-setup rate: many calls placed through one trunk, a bounded number at a
//! time, each expected to end the same way (e.g. busy against a UAS answering 486).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use object_store::ObjectStore;
use serde::Serialize;
use tokio::task::JoinSet;

use super::sipp::process_cpu_seconds;
use crate::call::{DialRequest, Outcome};
use crate::config::DialerConfig;
use crate::error::DialerError;

/// Result of [`setup_rate`].
#[derive(Debug, Clone, Serialize)]
pub struct SetupBench {
    pub calls: u64,
    pub answered: u64,
    /// Calls that did not end as expected (or failed with an error).
    pub failures: u64,
    pub elapsed_ms: u64,
    pub calls_per_sec: f64,
    /// Mean INVITE-to-final-response time.
    pub mean_setup_ms: f64,
    /// Slowest INVITE-to-final-response time (a retransmission shows as >= T1).
    pub max_setup_ms: u64,
    /// CPU time (user + system, all threads) of this process while the calls ran.
    pub cpu_s: f64,
    pub cpu_us_per_call: f64,
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
    cfg: Arc<DialerConfig>,
    plan: &SetupPlan,
    store: Arc<dyn ObjectStore>,
    spool_dir: PathBuf,
) -> Result<SetupBench, DialerError> {
    cfg.trunk(&plan.trunk)?;
    // `concurrency` callers, each placing its next call as soon as the last one ended.
    let next = Arc::new(AtomicU64::new(0));
    let me = std::process::id();
    let cpu_before = process_cpu_seconds(me).unwrap_or(0.0);
    let started = Instant::now();
    let mut callers = JoinSet::new();
    for _ in 0..plan.concurrency.max(1) {
        let (cfg, store, spool, next) =
            (cfg.clone(), store.clone(), spool_dir.clone(), next.clone());
        let plan = plan.clone();
        callers.spawn(async move {
            let mut tally = Tally::new(plan.expect);
            let pid = std::process::id();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= plan.calls {
                    break tally;
                }
                let req = DialRequest {
                    number: format!("+86138{:08}", i % 100_000_000),
                    trunk: plan.trunk.clone(),
                    caller_id: None,
                    play: plan.prompt.clone(),
                    call_id: format!("bench-{pid}-{i}"),
                    recording_key: format!("bench/{i}.wav"),
                    campaign: None,
                };
                tally.add(super::dial_released(&cfg, req, store.clone(), &spool).await);
            }
        });
    }
    let mut tally = Tally::new(plan.expect);
    while let Some(done) = callers.join_next().await {
        match done {
            Ok(t) => tally.merge(&t),
            Err(e) => {
                tracing::warn!(error = %e, "bench caller task failed");
                tally.failures += 1;
            }
        }
    }
    let elapsed = started.elapsed();
    let cpu_s = process_cpu_seconds(me).unwrap_or(0.0) - cpu_before;
    Ok(SetupBench {
        calls: plan.calls,
        answered: tally.answered,
        failures: tally.failures + plan.calls.saturating_sub(tally.placed),
        elapsed_ms: elapsed.as_millis() as u64,
        calls_per_sec: plan.calls as f64 / elapsed.as_secs_f64().max(1e-9),
        mean_setup_ms: tally.setup_total as f64 / plan.calls.max(1) as f64,
        max_setup_ms: tally.setup_max,
        cpu_s,
        cpu_us_per_call: cpu_s * 1e6 / plan.calls.max(1) as f64,
    })
}

/// Running counts of finished bench calls.
struct Tally {
    expect: Outcome,
    placed: u64,
    answered: u64,
    failures: u64,
    setup_total: u64,
    setup_max: u64,
}

impl Tally {
    fn new(expect: Outcome) -> Self {
        Self {
            expect,
            placed: 0,
            answered: 0,
            failures: 0,
            setup_total: 0,
            setup_max: 0,
        }
    }

    fn add(&mut self, done: Result<crate::CallReport, DialerError>) {
        self.placed += 1;
        match done {
            Ok(report) => {
                self.answered += u64::from(report.outcome == Outcome::Answered);
                if report.outcome != self.expect {
                    tracing::warn!(call_id = %report.call_id, outcome = ?report.outcome, reason = %report.reason, "bench call ended unexpectedly");
                    self.failures += 1;
                }
                self.setup_total += report.setup_ms;
                self.setup_max = self.setup_max.max(report.setup_ms);
            }
            Err(e) => {
                tracing::warn!(error = %e, "bench call failed");
                self.failures += 1;
            }
        }
    }

    fn merge(&mut self, other: &Self) {
        self.placed += other.placed;
        self.answered += other.answered;
        self.failures += other.failures;
        self.setup_total += other.setup_total;
        self.setup_max = self.setup_max.max(other.setup_max);
    }
}
