//! Call-progress tone detection: finds steady tones (ringback, busy, special information
//! tones, answering-machine beeps) so voice gating does not send them to whisper.
//!
//! A frame is tonal when its two strongest spectral peaks hold nearly all of its energy in
//! the telephone band and the strongest lies above speech's fundamental range; a run of
//! such frames at one pitch and one loudness lasting longer than a syllable is a tone.

use realfft::RealFftPlanner;

/// Analysis window, in seconds (1024 samples at 16 kHz: 15.6 Hz bins, enough to resolve
/// the 440 + 480 Hz North American ringback into two peaks).
const WINDOW_S: f32 = 0.064;
/// Share of the band's energy the two strongest peaks must hold.
const PEAK_SHARE: f32 = 0.9;
/// Bins either side of a peak counted as the peak (a Hann window's main lobe).
const LOBE: usize = 2;
/// The band whose energy is measured, in Hz.
const BAND_HZ: (f32, f32) = (80.0, 3800.0);
/// The strongest peak must lie at or above this: call-progress tones are 350 Hz and up,
/// while a hummed or nasal sound puts its strongest peak at its fundamental, below it.
const MIN_PEAK_HZ: f32 = 300.0;
/// How far, in Hz, the strongest peak may wander within one tone.
const MAX_DRIFT_HZ: f32 = 20.0;
/// How far, in dB, a tone's level may fall below its loudest frame so far (speech rises and
/// falls with every syllable; a tone holds its level).
const MAX_LEVEL_DROP_DB: f32 = 4.0;
/// Tonal frames at one pitch and level for at least this long are a tone, not a vowel.
const MIN_TONE_MS: u32 = 300;

/// For each `frame`-sample frame of `x` (sampled at `rate` Hz), whether it lies in a steady
/// tone. Only frames marked in `candidates` (those loud enough to be speech) are analysed;
/// the others never belong to a tone.
pub fn steady_tone_frames(x: &[f32], rate: u32, frame: usize, candidates: &[bool]) -> Vec<bool> {
    let n = candidates.len();
    let mut tonal = vec![false; n];
    let len = ((rate as f32 * WINDOW_S) as usize).next_power_of_two();
    if frame == 0 || rate == 0 || len < 64 {
        return tonal;
    }
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(len);
    let hann: Vec<f32> = (0..len)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / len as f32).cos())
        .collect();
    let bin_hz = rate as f32 / len as f32;
    let mut input = fft.make_input_vec();
    let mut spectrum = fft.make_output_vec();
    let mut power = vec![0.0f32; spectrum.len()];
    // The strongest peak's frequency and the band level (dB) per frame, for tonal frames.
    let mut peak: Vec<Option<(f32, f32)>> = vec![None; n];
    for (i, p) in peak.iter_mut().enumerate() {
        if !candidates[i] {
            continue;
        }
        let centre = i * frame + frame / 2;
        let start = centre as isize - (len / 2) as isize;
        for (j, v) in input.iter_mut().enumerate() {
            let at = start + j as isize;
            *v = if at >= 0 && (at as usize) < x.len() {
                x[at as usize] * hann[j]
            } else {
                0.0
            };
        }
        if fft.process(&mut input, &mut spectrum).is_err() {
            return tonal;
        }
        for (pw, c) in power.iter_mut().zip(&spectrum) {
            *pw = c.norm_sqr();
        }
        *p = dominant_tone(&mut power, bin_hz);
    }
    // Runs of tonal frames whose strongest peak stays put and whose level holds.
    let min_frames = (MIN_TONE_MS as usize * rate as usize / 1000).div_ceil(frame);
    let mut i = 0;
    while i < n {
        let Some((f0, mut top)) = peak[i] else {
            i += 1;
            continue;
        };
        let mut j = i + 1;
        while let Some((f, level)) = peak.get(j).copied().flatten() {
            if (f - f0).abs() > MAX_DRIFT_HZ || level < top - MAX_LEVEL_DROP_DB {
                break;
            }
            top = top.max(level);
            j += 1;
        }
        if j - i >= min_frames {
            tonal[i..j].iter_mut().for_each(|t| *t = true);
        }
        i = j;
    }
    tonal
}

/// The frequency of the strongest peak of a power spectrum and the band's level in dB,
/// when two peaks hold nearly all of the band's energy and the strongest is above speech's
/// fundamentals; `None` otherwise. Clobbers `power` (the peaks found are zeroed).
fn dominant_tone(power: &mut [f32], bin_hz: f32) -> Option<(f32, f32)> {
    let lo = (BAND_HZ.0 / bin_hz).ceil() as usize;
    let hi = ((BAND_HZ.1 / bin_hz) as usize).min(power.len().saturating_sub(1));
    if lo >= hi {
        return None;
    }
    let band = &mut power[lo..=hi];
    let total: f32 = band.iter().sum();
    if total <= f32::MIN_POSITIVE {
        return None;
    }
    let take_peak = |band: &mut [f32]| -> (usize, f32) {
        let k = (0..band.len())
            .max_by(|a, b| band[*a].total_cmp(&band[*b]))
            .unwrap_or(0);
        let (a, b) = (k.saturating_sub(LOBE), (k + LOBE + 1).min(band.len()));
        let e = band[a..b].iter().sum();
        band[a..b].iter_mut().for_each(|v| *v = 0.0);
        (k, e)
    };
    let (k1, e1) = take_peak(band);
    let (_, e2) = take_peak(band);
    let hz = (lo + k1) as f32 * bin_hz;
    ((e1 + e2) / total >= PEAK_SHARE && hz >= MIN_PEAK_HZ).then(|| (hz, 10.0 * total.log10()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 16_000;
    const FRAME: usize = 320;

    /// Sum of sines at `hz` (equal amplitude), `ms` long.
    fn tones(hz: &[f32], ms: usize, amp: f32) -> Vec<f32> {
        (0..ms * 16)
            .map(|i| {
                let t = i as f32 / RATE as f32;
                hz.iter()
                    .map(|f| (2.0 * std::f32::consts::PI * f * t).sin())
                    .sum::<f32>()
                    * amp
            })
            .collect()
    }

    /// A crude voiced sound: a 120 Hz pulse train's harmonics shaped by two formants,
    /// with the pitch gliding as speech intonation does.
    fn vowel(ms: usize) -> Vec<f32> {
        let mut phase = 0.0f32;
        (0..ms * 16)
            .map(|i| {
                let t = i as f32 / RATE as f32;
                let f0 = 120.0 + 30.0 * t;
                phase += 2.0 * std::f32::consts::PI * f0 / RATE as f32;
                (1..30)
                    .map(|h| {
                        let f = f0 * h as f32;
                        let g = 1.0 / (1.0 + ((f - 700.0) / 150.0).powi(2))
                            + 0.5 / (1.0 + ((f - 1200.0) / 200.0).powi(2));
                        g * (phase * h as f32).sin()
                    })
                    .sum::<f32>()
                    * 0.05
            })
            .collect()
    }

    fn detect(x: &[f32]) -> Vec<bool> {
        let frames = x.len() / FRAME;
        steady_tone_frames(x, RATE, FRAME, &vec![true; frames])
    }

    fn share(t: &[bool]) -> f32 {
        t.iter().filter(|t| **t).count() as f32 / t.len().max(1) as f32
    }

    #[test]
    fn ringback_busy_and_sit_tones_are_found() {
        for hz in [
            &[440.0, 480.0][..], // North American ringback
            &[425.0],            // European ringback and busy
            &[450.0],            // Chinese ringback
            &[400.0, 450.0],     // British ringback
            &[480.0, 620.0],     // North American busy
            &[913.8],            // first special information tone
            &[1000.0],           // answering-machine beep
        ] {
            let t = detect(&tones(hz, 1000, 0.1));
            assert!(share(&t) > 0.95, "{hz:?}: {}", share(&t));
        }
    }

    #[test]
    fn speech_like_sounds_and_noise_are_not_tones() {
        assert!(share(&detect(&vowel(1500))) < 0.05);
        let noise: Vec<f32> = (0..16_000u32)
            .map(|i| ((i.wrapping_mul(2654435761) >> 16) as f32 / 65536.0 - 0.5) * 0.2)
            .collect();
        assert!(share(&detect(&noise)) == 0.0);
        // A hum at a voice's fundamental is below the tone range.
        assert!(share(&detect(&tones(&[150.0], 1000, 0.1))) == 0.0);
    }

    #[test]
    fn a_level_pitch_that_rises_and_falls_in_loudness_is_not_a_tone() {
        // A held high note (a level-tone syllable) at 350 Hz, pulsing at a syllable rate.
        let x: Vec<f32> = tones(&[350.0], 1500, 0.1)
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let t = i as f32 / RATE as f32;
                v * (0.55 + 0.45 * (2.0 * std::f32::consts::PI * 4.0 * t).sin())
            })
            .collect();
        assert!(share(&detect(&x)) < 0.05);
    }

    #[test]
    fn short_beeps_are_left_alone_and_only_candidates_are_analysed() {
        // 200 ms is shorter than a tone must last.
        let mut x = vec![0.0f32; 16 * 500];
        x.extend(tones(&[1000.0], 200, 0.1));
        x.extend(vec![0.0f32; 16 * 500]);
        assert!(share(&detect(&x)) == 0.0);
        let x = tones(&[425.0], 1000, 0.1);
        let t = steady_tone_frames(&x, RATE, FRAME, &vec![false; x.len() / FRAME]);
        assert!(t.iter().all(|t| !t));
    }

    #[test]
    fn a_tone_then_a_voice_keeps_the_voice() {
        let mut x = tones(&[440.0, 480.0], 2000, 0.1);
        x.extend(vowel(1000));
        let t = detect(&x);
        let split = 2000 * 16 / FRAME;
        assert!(share(&t[..split - 3]) > 0.95);
        assert!(share(&t[split + 3..]) < 0.05, "{:?}", &t[split..]);
    }
}
