//! Voice-activity gating: finds the stretches of speech in a 16 kHz channel so silence
//! (where whisper hallucinates, and where most of the time goes) and call-progress tones
//! (ringback, busy) never reach whisper.

/// A stretch of speech, in samples of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub start: usize,
    pub end: usize,
}

impl Region {
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// Tuning of the energy detector; the defaults suit telephone speech at 16 kHz.
#[derive(Debug, Clone)]
pub struct VadParams {
    pub rate: u32,
    pub frame_ms: u32,
    /// A frame is speech when it is this many dB above the noise floor...
    pub above_floor_db: f32,
    /// ...and above this absolute level (dBFS), so near-digital silence never counts.
    pub min_level_db: f32,
    /// Speech shorter than this is dropped (clicks).
    pub min_speech_ms: u32,
    /// Pauses shorter than this stay inside one region.
    pub max_gap_ms: u32,
    /// Context kept on both sides of a region.
    pub pad_ms: u32,
    /// Regions are cut at the quietest frame before they grow past this.
    pub max_region_ms: u32,
}

impl Default for VadParams {
    fn default() -> Self {
        VadParams {
            rate: 16_000,
            frame_ms: 20,
            above_floor_db: 12.0,
            min_level_db: -50.0,
            min_speech_ms: 150,
            max_gap_ms: 600,
            pad_ms: 200,
            max_region_ms: 25_000,
        }
    }
}

/// Speech regions of `x`, sorted and non-overlapping.
pub fn speech_regions(x: &[f32], p: &VadParams) -> Vec<Region> {
    let frame = (p.rate * p.frame_ms / 1000) as usize;
    if frame == 0 || x.len() < frame {
        return Vec::new();
    }
    let levels: Vec<f32> = x
        .chunks(frame)
        .map(|c| {
            let e = c.iter().map(|s| s * s).sum::<f32>() / c.len() as f32;
            10.0 * (e + 1e-12).log10()
        })
        .collect();
    // Noise floor: a low percentile of frame levels (calls are mostly not-speech per channel).
    let mut sorted = levels.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    // Capped, so a channel that is nearly all speech still has a floor below its speech.
    let floor = sorted[sorted.len() / 10].min(-45.0);
    let threshold = (floor + p.above_floor_db).max(p.min_level_db);
    let mut voiced: Vec<bool> = levels.iter().map(|l| *l > threshold).collect();
    // Ringback, busy and other call-progress tones are loud but not speech.
    let tonal = crate::tone::steady_tone_frames(x, p.rate, frame, &voiced);
    let tone_frames = tonal.iter().filter(|t| **t).count();
    if tone_frames > 0 {
        tracing::debug!(
            tone_ms = tone_frames as u32 * p.frame_ms,
            "gated call-progress tones"
        );
    }
    for (v, t) in voiced.iter_mut().zip(&tonal) {
        *v &= !t;
    }

    let ms_to_frames = |ms: u32| (ms / p.frame_ms.max(1)) as usize;
    let max_gap = ms_to_frames(p.max_gap_ms);
    let min_speech = ms_to_frames(p.min_speech_ms).max(1);
    // Group voiced frames, bridging short pauses.
    let mut groups: Vec<(usize, usize)> = Vec::new();
    for (i, v) in voiced.iter().enumerate() {
        if !v {
            continue;
        }
        match groups.last_mut() {
            Some((_, end)) if i - *end <= max_gap + 1 => *end = i + 1,
            _ => groups.push((i, i + 1)),
        }
    }
    let pad = ms_to_frames(p.pad_ms);
    let max_frames = ms_to_frames(p.max_region_ms).max(1);
    let n = levels.len();
    let mut out = Vec::new();
    for (s, e) in groups {
        let voiced_frames = voiced[s..e].iter().filter(|v| **v).count();
        if voiced_frames < min_speech {
            continue;
        }
        let (s, e) = (s.saturating_sub(pad), (e + pad).min(n));
        split_long(s, e, max_frames, &levels, &mut |a, b| {
            out.push(Region {
                start: a * frame,
                end: (b * frame).min(x.len()),
            })
        });
    }
    // Padding may make neighbours touch: merge them.
    let mut merged: Vec<Region> = Vec::new();
    for r in out {
        match merged.last_mut() {
            Some(last) if r.start <= last.end && r.end - last.start <= max_frames * frame => {
                last.end = last.end.max(r.end)
            }
            _ => merged.push(r),
        }
    }
    merged
}

/// Cuts frames `s..e` into pieces of at most `max` frames at the quietest frame of each
/// piece's last third, so an utterance is not split mid-word when it can be avoided.
fn split_long(s: usize, e: usize, max: usize, levels: &[f32], emit: &mut dyn FnMut(usize, usize)) {
    let mut start = s;
    while e - start > max {
        let lo = start + max * 2 / 3;
        let hi = start + max;
        let cut = (lo..hi)
            .min_by(|a, b| levels[*a].total_cmp(&levels[*b]))
            .unwrap_or(hi);
        emit(start, cut.max(start + 1));
        start = cut.max(start + 1);
    }
    emit(start, e);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A voice-like sound: harmonics of a pitch that wavers as intonation does, plus a
    /// little hiss, scaled so `amp` near 0 is line noise.
    fn sound(ms: usize, amp: f32) -> Vec<f32> {
        let mut phase = 0.0f32;
        (0..ms * 16)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                let f0 = 140.0 + 25.0 * (2.0 * std::f32::consts::PI * 3.0 * t).sin();
                phase += 2.0 * std::f32::consts::PI * f0 / 16_000.0;
                let voice = (1..12)
                    .map(|h| (phase * h as f32).sin() / h as f32)
                    .sum::<f32>();
                voice * amp * 0.5 + ((i * 7919) % 13) as f32 * 1e-5
            })
            .collect()
    }

    /// `ms` of a pure tone (or two) at `amp`.
    fn beep(hz: &[f32], ms: usize, amp: f32) -> Vec<f32> {
        (0..ms * 16)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                hz.iter()
                    .map(|f| (2.0 * std::f32::consts::PI * f * t).sin())
                    .sum::<f32>()
                    * amp
            })
            .collect()
    }

    #[test]
    fn finds_speech_between_silences() {
        let mut x = sound(2000, 0.0005);
        x.extend(sound(1500, 0.3));
        x.extend(sound(3000, 0.0005));
        x.extend(sound(800, 0.3));
        x.extend(sound(2000, 0.0005));
        let r = speech_regions(&x, &VadParams::default());
        assert_eq!(r.len(), 2, "{r:?}");
        let ms = |s: usize| s / 16;
        assert!((ms(r[0].start) as i64 - 1800).abs() <= 40, "{r:?}");
        assert!((ms(r[0].end) as i64 - 3700).abs() <= 40, "{r:?}");
        assert!((ms(r[1].start) as i64 - 6300).abs() <= 40, "{r:?}");
    }

    #[test]
    fn silence_gives_nothing() {
        assert!(speech_regions(&vec![0.0; 16000 * 5], &VadParams::default()).is_empty());
        assert!(speech_regions(&sound(5000, 0.0003), &VadParams::default()).is_empty());
    }

    #[test]
    fn long_speech_is_split() {
        let x = sound(60_000, 0.3);
        let r = speech_regions(&x, &VadParams::default());
        assert!(r.len() >= 3, "{}", r.len());
        assert!(r.iter().all(|r| r.len() <= 25_000 * 16));
    }

    #[test]
    fn ringback_is_not_speech() {
        // Three rings (2 s of 440 + 480 Hz, 4 s off), then the customer answers.
        let mut x = Vec::new();
        for _ in 0..3 {
            x.extend(beep(&[440.0, 480.0], 2000, 0.2));
            x.extend(sound(4000, 0.0005));
        }
        x.extend(sound(1500, 0.3));
        x.extend(sound(1000, 0.0005));
        let r = speech_regions(&x, &VadParams::default());
        assert_eq!(r.len(), 1, "{r:?}");
        assert!((r[0].start / 16) as i64 >= 18_000 - 250, "{r:?}");
    }
}
