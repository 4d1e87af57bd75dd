//! Process-wide transcription counters, read by the web crate for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

static AUDIO_MS: AtomicU64 = AtomicU64::new(0);
static WALL_MS: AtomicU64 = AtomicU64::new(0);
static TRANSCRIBED: AtomicU64 = AtomicU64::new(0);

/// Records one transcription: seconds of audio handled in `wall_s` seconds.
pub fn observe_transcription(audio_s: f64, wall_s: f64) {
    AUDIO_MS.fetch_add((audio_s * 1000.0) as u64, Ordering::Relaxed);
    WALL_MS.fetch_add((wall_s * 1000.0) as u64, Ordering::Relaxed);
    TRANSCRIBED.fetch_add(1, Ordering::Relaxed);
}

/// Real-time factor so far (audio seconds per wall second), if anything was transcribed.
pub fn real_time_factor() -> Option<f64> {
    let wall = WALL_MS.load(Ordering::Relaxed);
    (wall > 0).then(|| AUDIO_MS.load(Ordering::Relaxed) as f64 / wall as f64)
}

pub fn transcribed_total() -> u64 {
    TRANSCRIBED.load(Ordering::Relaxed)
}
