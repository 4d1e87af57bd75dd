//! Counters the web server keeps, and the Prometheus text rendering of `/metrics`:
//! queue depth per stage, calls by status, search latency, playbacks and webhooks.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use callqa_ingest::queue::Stage;

use crate::error::WebError;
use crate::WebState;

/// Upper bounds (seconds) of the search latency histogram buckets.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Process-wide, like the Prometheus registry of any one process.
static SEARCH_BUCKETS: [AtomicU64; BUCKETS.len()] = [const { AtomicU64::new(0) }; BUCKETS.len()];
static SEARCH_COUNT: AtomicU64 = AtomicU64::new(0);
static SEARCH_SUM_US: AtomicU64 = AtomicU64::new(0);
static SEARCH_ERRORS: AtomicU64 = AtomicU64::new(0);
static PLAYBACKS: AtomicU64 = AtomicU64::new(0);
static EXPORTS: AtomicU64 = AtomicU64::new(0);
static WEBHOOKS_OK: AtomicU64 = AtomicU64::new(0);
static WEBHOOKS_FAILED: AtomicU64 = AtomicU64::new(0);

pub(crate) fn observe_search(seconds: f64, ok: bool) {
    for (i, le) in BUCKETS.iter().enumerate() {
        if seconds <= *le {
            SEARCH_BUCKETS[i].fetch_add(1, Ordering::Relaxed);
        }
    }
    SEARCH_COUNT.fetch_add(1, Ordering::Relaxed);
    SEARCH_SUM_US.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    if !ok {
        SEARCH_ERRORS.fetch_add(1, Ordering::Relaxed);
    }
}

pub(crate) fn count_playback() {
    PLAYBACKS.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn count_export() {
    EXPORTS.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn count_webhook(ok: bool) {
    if ok { &WEBHOOKS_OK } else { &WEBHOOKS_FAILED }.fetch_add(1, Ordering::Relaxed);
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The whole `/metrics` page.
pub(crate) async fn render(state: &WebState) -> Result<String, WebError> {
    let mut out = String::new();
    metric(
        &mut out,
        "callqa_queue_depth",
        "gauge",
        "Jobs waiting per pipeline stage.",
    );
    for stage in Stage::ALL {
        let depth = state.queue.depth(stage).await?;
        let _ = writeln!(
            out,
            "callqa_queue_depth{{stage=\"{}\"}} {depth}",
            stage.as_str()
        );
    }
    metric(
        &mut out,
        "callqa_calls",
        "gauge",
        "Calls by pipeline status (stored = booked, its job not yet confirmed; done = finished, failed = dead-lettered).",
    );
    for (status, n) in state.db.status_counts().await? {
        let _ = writeln!(
            out,
            "callqa_calls{{status=\"{}\"}} {n}",
            status.replace(['"', '\\', '\n'], "_")
        );
    }
    metric(
        &mut out,
        "callqa_index_calls",
        "gauge",
        "Calls in the search index.",
    );
    let _ = writeln!(out, "callqa_index_calls {}", state.index.num_calls());

    metric(
        &mut out,
        "callqa_search_seconds",
        "histogram",
        "Search latency.",
    );
    for (i, le) in BUCKETS.iter().enumerate() {
        let _ = writeln!(
            out,
            "callqa_search_seconds_bucket{{le=\"{le}\"}} {}",
            SEARCH_BUCKETS[i].load(Ordering::Relaxed)
        );
    }
    let count = SEARCH_COUNT.load(Ordering::Relaxed);
    let _ = writeln!(out, "callqa_search_seconds_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(
        out,
        "callqa_search_seconds_sum {}",
        SEARCH_SUM_US.load(Ordering::Relaxed) as f64 / 1e6
    );
    let _ = writeln!(out, "callqa_search_seconds_count {count}");

    let counters = [
        (
            "callqa_search_errors_total",
            "Searches that failed (bad queries included).",
            &SEARCH_ERRORS,
        ),
        (
            "callqa_playbacks_total",
            "Recording playbacks started.",
            &PLAYBACKS,
        ),
        ("callqa_exports_total", "Report exports (CSV).", &EXPORTS),
        (
            "callqa_webhooks_sent_total",
            "Webhooks delivered.",
            &WEBHOOKS_OK,
        ),
        (
            "callqa_webhooks_failed_total",
            "Webhooks given up after retries.",
            &WEBHOOKS_FAILED,
        ),
    ];
    for (name, help, v) in counters {
        metric(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
    }
    if let Some(extra) = &state.extra_metrics {
        out.push_str(&extra());
    }
    Ok(out)
}
