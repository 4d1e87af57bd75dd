//! Trunk routing: prefer the trunk with the best recent answer rate and setup time, respect
//! each trunk's concurrency limit, and fail over to the next trunk when one fails (5xx or no
//! response at all).

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::agents::AgentDesk;
use crate::call::{dial, dial_with_agents, CallReport, DialRequest, Outcome};
use crate::config::{DialerConfig, TrunkConfig};
use crate::error::DialerError;
use crate::recording::RecordingStore;

/// Attempts remembered per trunk for its score.
const WINDOW: usize = 200;

#[derive(Debug, Clone, Copy)]
struct Attempt {
    answered: bool,
    trunk_failure: bool,
    setup_ms: u64,
}

#[derive(Debug, Default)]
struct TrunkState {
    active: u32,
    recent: VecDeque<Attempt>,
}

/// Shared routing state for all calls of a process.
#[derive(Debug, Clone)]
pub struct TrunkRouter {
    trunks: Vec<TrunkConfig>,
    state: Arc<Mutex<HashMap<String, TrunkState>>>,
}

/// A reserved call slot on a trunk; released on drop.
#[derive(Debug)]
pub struct TrunkLease {
    pub trunk: String,
    state: Arc<Mutex<HashMap<String, TrunkState>>>,
}

impl Drop for TrunkLease {
    fn drop(&mut self) {
        if let Ok(mut state) = self.state.lock() {
            if let Some(t) = state.get_mut(&self.trunk) {
                t.active = t.active.saturating_sub(1);
            }
        }
    }
}

impl TrunkRouter {
    pub fn new(trunks: &[TrunkConfig]) -> Self {
        Self {
            trunks: trunks.to_vec(),
            state: Arc::default(),
        }
    }

    /// Score of a trunk: smoothed answer rate (trunk failures count as misses) minus a setup
    /// time penalty of 0.1 per second, so a trunk we know nothing about starts at 0.5.
    fn score(state: &TrunkState) -> f64 {
        let n = state.recent.len() as f64;
        let answered = state.recent.iter().filter(|a| a.answered).count() as f64;
        let rate = (answered + 1.0) / (n + 2.0);
        let setups: Vec<u64> = state
            .recent
            .iter()
            .filter(|a| !a.trunk_failure)
            .map(|a| a.setup_ms)
            .collect();
        let mean_setup = if setups.is_empty() {
            0.0
        } else {
            setups.iter().sum::<u64>() as f64 / setups.len() as f64
        };
        rate - mean_setup / 10_000.0
    }

    /// Picks the best trunk with a free slot, skipping `exclude`, and reserves the slot.
    pub fn pick(&self, exclude: &[String]) -> Option<TrunkLease> {
        let mut state = self.state.lock().ok()?;
        let best = self
            .trunks
            .iter()
            .filter(|t| !exclude.contains(&t.name))
            .filter(|t| state.get(&t.name).map_or(0, |s| s.active) < t.max_concurrent)
            .map(|t| {
                let score = state.get(&t.name).map_or(0.5, Self::score);
                (t.name.clone(), score)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))?;
        state.entry(best.0.clone()).or_default().active += 1;
        Some(TrunkLease {
            trunk: best.0,
            state: self.state.clone(),
        })
    }

    /// Feeds a finished call into its trunk's score.
    pub fn record(&self, report: &CallReport) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let t = state.entry(report.trunk.clone()).or_default();
        if t.recent.len() == WINDOW {
            t.recent.pop_front();
        }
        t.recent.push_back(Attempt {
            answered: report.outcome == Outcome::Answered,
            trunk_failure: report.trunk_failure,
            setup_ms: report.setup_ms,
        });
    }

    /// Current score per trunk (for status output).
    pub fn scores(&self) -> Vec<(String, f64)> {
        let state = self.state.lock().map(|s| {
            self.trunks
                .iter()
                .map(|t| (t.name.clone(), s.get(&t.name).map_or(0.5, Self::score)))
                .collect()
        });
        state.unwrap_or_default()
    }
}

/// Dials through the best trunk, failing over on trunk failures; `req.trunk` is ignored.
/// Returns the last report, `failed` with reason "no trunk free" when every trunk is busy.
pub async fn dial_routed(
    cfg: &DialerConfig,
    router: &TrunkRouter,
    req: DialRequest,
    store: impl Into<RecordingStore>,
    spool_dir: &Path,
) -> Result<CallReport, DialerError> {
    routed(cfg, router, req, None, store.into(), spool_dir).await
}

/// [`dial_routed`] for agent campaigns: an answered call is bridged to an agent of `desk`.
pub async fn dial_routed_with_agents(
    cfg: &DialerConfig,
    router: &TrunkRouter,
    req: DialRequest,
    desk: &AgentDesk,
    store: impl Into<RecordingStore>,
    spool_dir: &Path,
) -> Result<CallReport, DialerError> {
    routed(cfg, router, req, Some(desk), store.into(), spool_dir).await
}

async fn routed(
    cfg: &DialerConfig,
    router: &TrunkRouter,
    mut req: DialRequest,
    desk: Option<&AgentDesk>,
    store: RecordingStore,
    spool_dir: &Path,
) -> Result<CallReport, DialerError> {
    let mut tried: Vec<String> = Vec::new();
    let mut last: Option<CallReport> = None;
    while let Some(lease) = router.pick(&tried) {
        req.trunk = lease.trunk.clone();
        let report = match desk {
            Some(desk) => {
                dial_with_agents(cfg, req.clone(), desk, store.clone(), spool_dir).await?
            }
            None => dial(cfg, req.clone(), store.clone(), spool_dir).await?,
        };
        drop(lease);
        router.record(&report);
        tried.push(report.trunk.clone());
        if !report.trunk_failure {
            return Ok(report);
        }
        tracing::warn!(trunk = %report.trunk, reason = %report.reason, "trunk failed; failing over");
        last = Some(report);
    }
    Ok(last.unwrap_or_else(|| {
        let mut r = CallReport::refused(
            &req,
            &crate::compliance::Refusal {
                kind: crate::compliance::RefusalKind::Attempts,
                reason: "no trunk free".into(),
            },
        );
        r.outcome = Outcome::Failed;
        r.trunk_failure = true;
        r
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn trunk(name: &str, max: u32) -> TrunkConfig {
        TrunkConfig {
            name: name.into(),
            max_concurrent: max,
            ..TrunkConfig::default()
        }
    }

    fn report(trunk: &str, outcome: Outcome, setup_ms: u64, trunk_failure: bool) -> CallReport {
        CallReport {
            call_id: "c".into(),
            outcome,
            sip_code: None,
            reason: String::new(),
            number: "+8613800138000".into(),
            trunk: trunk.into(),
            started_at: Utc::now(),
            answered_at: None,
            ended_at: Utc::now(),
            duration_ms: 0,
            setup_ms,
            recording: None,
            rtp_stats: Default::default(),
            trunk_failure,
            agent: None,
        }
    }

    #[test]
    fn prefers_better_answer_rate_then_faster_setup() {
        let r = TrunkRouter::new(&[trunk("a", 10), trunk("b", 10), trunk("c", 10)]);
        for _ in 0..10 {
            r.record(&report("a", Outcome::Answered, 3000, false));
            r.record(&report("b", Outcome::Answered, 1000, false));
            r.record(&report("c", Outcome::NoAnswer, 500, false));
        }
        assert_eq!(r.pick(&[]).unwrap().trunk, "b");
        assert_eq!(r.pick(&["b".into()]).unwrap().trunk, "a");
        for _ in 0..10 {
            r.record(&report("b", Outcome::Failed, 0, true));
        }
        assert_eq!(r.pick(&[]).unwrap().trunk, "a");
    }

    #[test]
    fn respects_concurrency_and_releases_on_drop() {
        let r = TrunkRouter::new(&[trunk("a", 1), trunk("b", 1)]);
        let first = r.pick(&[]).unwrap();
        let second = r.pick(&[]).unwrap();
        assert_ne!(first.trunk, second.trunk);
        assert!(r.pick(&[]).is_none());
        drop(first);
        assert!(r.pick(&[]).is_some());
    }
}
