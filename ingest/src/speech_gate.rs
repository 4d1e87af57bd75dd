//! A second opinion on the energy gate's utterances: Silero's neural voice-activity model
//! (whisper.cpp's VAD, a ggml file) keeps an utterance only if it hears speech in it, and
//! cuts off noise of a second or more beside the speech, so noise loud enough to pass the
//! energy gate does not reach whisper.

use crate::error::{IngestError, Result};
use crate::vad::Region;
use std::path::Path;
use std::sync::Mutex;
use whisper_rs::{WhisperVadContext, WhisperVadContextParams};

/// Samples per probability (32 ms at 16 kHz).
const FRAME: usize = 512;
/// A frame is speech at or above this probability (Silero's and whisper.cpp's default).
const THRESHOLD: f32 = 0.5;
/// An utterance needs this many speech frames (160 ms, as long as the energy gate's
/// shortest utterance) to be kept.
const MIN_SPEECH_FRAMES: usize = 5;

/// Context kept on each side of the speech Silero hears in an utterance, and the longest
/// pause kept inside one: noise of a second or more beside speech is cut off, while the
/// energy gate's own boundaries stay wherever Silero hears speech near them. Tighter
/// (200 ms, 600 ms, the energy gate's own) cut more noise (`transcribe_compare.py --corpus
/// calls --noise bursts`: WER 0.152 against 0.176) but also the soft ends of words on clean
/// calls (`calls` 0.087 -> 0.104, `espeak15` 0.248 -> 0.279, `asterisk` 0.017 -> 0.020);
/// these change no word of the clean corpora.
pub const PAD_MS: u32 = 400;
pub const MAX_GAP_MS: u32 = 1000;

/// A loaded Silero model; one utterance at a time goes through it.
pub struct SpeechGate {
    ctx: Mutex<WhisperVadContext>,
}

impl SpeechGate {
    pub fn load(path: &Path) -> Result<SpeechGate> {
        let fail = |reason: String| IngestError::Model {
            path: path.display().to_string(),
            reason,
        };
        let name = path
            .to_str()
            .filter(|_| path.is_file())
            .ok_or_else(|| fail("no such file (transcribe.vad_model)".into()))?;
        let mut params = WhisperVadContextParams::new();
        // A tiny network run frame by frame: a second thread only adds waiting.
        params.set_n_threads(1);
        let ctx = WhisperVadContext::new(name, params).map_err(|e| {
            fail(format!(
                "whisper.cpp could not load it as a Silero VAD model ({e}); convert one with \
                 `callqa model import-silero`"
            ))
        })?;
        Ok(SpeechGate {
            ctx: Mutex::new(ctx),
        })
    }

    /// Speech probability of each 512-sample (32 ms) frame of `pcm` (16 kHz).
    pub fn probabilities(&self, pcm: &[f32]) -> Result<Vec<f32>> {
        if pcm.is_empty() {
            return Ok(Vec::new());
        }
        let mut ctx = self
            .ctx
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        ctx.detect_speech(pcm).map_err(|e| IngestError::Model {
            path: "Silero VAD".into(),
            reason: format!("speech detection failed: {e}"),
        })?;
        Ok(ctx.probabilities().to_vec())
    }

    /// The parts of the energy gate's `regions` of 16 kHz `pcm` in which Silero hears
    /// speech, with [`PAD_MS`] of context on either side (within the region); pauses of up
    /// to [`MAX_GAP_MS`] stay inside a part.
    pub fn keep_speech(&self, pcm: &[f32], regions: Vec<Region>) -> Result<Vec<Region>> {
        let pad = PAD_MS as usize * 16;
        let max_gap = MAX_GAP_MS as usize * 16 / FRAME;
        let mut kept = Vec::with_capacity(regions.len());
        for r in regions {
            let probs = self.probabilities(&pcm[r.start..r.end.min(pcm.len())])?;
            let parts = speech_parts(r, &probs, pad, max_gap);
            if parts.is_empty() {
                tracing::debug!(
                    start_ms = r.start / 16,
                    end_ms = r.end / 16,
                    max_prob = probs.iter().copied().fold(0.0, f32::max),
                    "no speech heard in an utterance of the energy gate; dropped"
                );
            }
            kept.extend(parts);
        }
        Ok(kept)
    }
}

/// Runs of speech frames in `probs` (frames of region `r`), bridging pauses of up to
/// `max_gap` frames, kept when they hold enough speech frames, padded within `r`.
fn speech_parts(r: Region, probs: &[f32], pad: usize, max_gap: usize) -> Vec<Region> {
    let mut runs: Vec<(usize, usize, usize)> = Vec::new(); // (first, end, speech frames)
    for (i, &p) in probs.iter().enumerate() {
        if p < THRESHOLD {
            continue;
        }
        match runs.last_mut() {
            Some((_, end, n)) if i - *end <= max_gap => {
                *end = i + 1;
                *n += 1;
            }
            _ => runs.push((i, i + 1, 1)),
        }
    }
    let mut parts: Vec<Region> = Vec::new();
    for (first, end, n) in runs {
        if n < MIN_SPEECH_FRAMES {
            continue;
        }
        let start = (r.start + first * FRAME).saturating_sub(pad).max(r.start);
        let end = (r.start + end * FRAME + pad).min(r.end);
        match parts.last_mut() {
            Some(last) if start <= last.end => last.end = end,
            _ => parts.push(Region { start, end }),
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Region = Region {
        start: 1000,
        end: 1000 + 40 * FRAME,
    };

    fn probs(speech: &[std::ops::Range<usize>]) -> Vec<f32> {
        (0..40)
            .map(|i| {
                if speech.iter().any(|s| s.contains(&i)) {
                    0.9
                } else {
                    0.1
                }
            })
            .collect()
    }

    #[test]
    fn a_part_needs_five_frames_of_speech() {
        assert!(speech_parts(R, &[], 0, 2).is_empty());
        assert!(speech_parts(R, &probs(&[3..5, 6..8]), 0, 2).is_empty());
        assert!(speech_parts(R, &[0.9, 0.9, 0.9, 0.9, 0.49, 0.1], 0, 2).is_empty());
        let p = [0.9, 0.2, 0.9, 0.5, 0.9, 0.1, 0.7];
        let want = Region {
            start: 1000,
            end: 1000 + 7 * FRAME,
        };
        assert_eq!(speech_parts(R, &p, 0, 2), [want]);
    }

    #[test]
    fn parts_are_padded_within_the_region_and_pauses_bridged_or_cut() {
        let pad = 100;
        // Speech at frames 0-9 and 13-19 (pause of 3 frames, bridged), and 30-39.
        let parts = speech_parts(R, &probs(&[0..10, 13..20, 30..40]), pad, 3);
        let at = |f: usize| R.start + f * FRAME;
        assert_eq!(
            parts,
            [
                Region {
                    start: R.start,
                    end: at(20) + pad
                },
                Region {
                    start: at(30) - pad,
                    end: R.end
                }
            ]
        );
        // A pause longer than max_gap cuts; padding that makes parts touch merges them.
        let parts = speech_parts(R, &probs(&[0..10, 13..20]), pad, 2);
        assert_eq!(parts.len(), 2);
        let parts = speech_parts(R, &probs(&[0..10, 13..20]), 2 * FRAME, 2);
        assert_eq!(parts.len(), 1);
    }
}
