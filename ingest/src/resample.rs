//! Sample-rate conversion to whisper's 16 kHz with the filter whisper's own front ends use:
//! FFmpeg's default resampler (openai-whisper and faster-whisper both decode through it).
//!
//! The design is a polyphase, Kaiser-windowed sinc: 32 taps at the lower of the two rates,
//! cutoff at 0.97 of the lower Nyquist frequency, Kaiser beta 9, exact phases for the rational
//! ratio (at most 1024, else the nearest of 1024). Its transition band straddles the input's
//! Nyquist frequency, so 8 kHz telephony keeps the faint 4.0-4.5 kHz band whisper saw in
//! training; a steeper filter measurably raised word errors (note on issue 2, session 14).

use crate::error::{IngestError, Result};

pub const WHISPER_RATE: u32 = 16_000;

/// Taps at the lower rate, as FFmpeg's `filter_size` default.
const TAPS: f64 = 32.0;
/// Passband edge as a fraction of the lower Nyquist frequency (FFmpeg's `cutoff`).
const CUTOFF: f64 = 0.97;
/// Kaiser window shape (FFmpeg's `kaiser_beta`).
const KAISER_BETA: f64 = 9.0;
/// Most filter phases kept (FFmpeg's `phase_shift` 10).
const MAX_PHASES: u64 = 1024;

/// Resamples one channel from `from` Hz to `to` Hz, keeping its duration: the output has
/// `len * to / from` samples, sample `n` taken at input time `n * from / to`.
pub fn resample(input: &[f32], from: u32, to: u32) -> Result<Vec<f32>> {
    if from == 0 || to == 0 {
        return Err(IngestError::BadData {
            what: format!("resampling {from} Hz -> {to} Hz"),
            reason: "a sample rate of 0 Hz".into(),
        });
    }
    if from == to || input.is_empty() {
        return Ok(input.to_vec());
    }
    let g = gcd(from, to);
    let (up, down) = (u64::from(to / g), u64::from(from / g));
    let bank = FilterBank::new(f64::from(to) / f64::from(from), up.min(MAX_PHASES));
    let expected = input.len() as u64 * u64::from(to) / u64::from(from);
    let mut out = Vec::with_capacity(expected as usize);
    for n in 0..expected {
        // Input position n * down / up, split into a whole sample and a phase.
        let num = n * down;
        let mut whole = num / up;
        let rem = num % up;
        let mut phase = if bank.phases == up {
            rem
        } else {
            (rem * bank.phases + up / 2) / up
        };
        if phase == bank.phases {
            phase = 0;
            whole += 1;
        }
        out.push(bank.apply(input, whole as i64, phase as usize));
    }
    Ok(out)
}

/// One windowed-sinc filter per phase, `len` taps each, stored row after row.
struct FilterBank {
    taps: Vec<f32>,
    len: usize,
    center: i64,
    phases: u64,
}

impl FilterBank {
    /// `ratio` is output rate over input rate.
    fn new(ratio: f64, phases: u64) -> Self {
        // Upsampling only interpolates: the cutoff is the input's Nyquist frequency.
        let factor = (ratio * CUTOFF).min(1.0);
        let mut len = ((TAPS / factor).ceil() as usize).max(1);
        if len > 1 {
            len += len % 2;
        }
        let center = (len as i64 - 1) / 2;
        let mut rows = vec![0f64; len * phases as usize];
        for (p, row) in rows.chunks_mut(len).enumerate() {
            let frac = p as f64 / phases as f64;
            for (i, tap) in row.iter_mut().enumerate() {
                let t = (i as i64 - center) as f64 - frac;
                let x = std::f64::consts::PI * t * factor;
                let sinc = if x == 0.0 { 1.0 } else { x.sin() / x };
                let w = 2.0 * t / len as f64;
                *tap = sinc * bessel_i0(KAISER_BETA * (1.0 - w * w).max(0.0).sqrt());
            }
        }
        // Every phase is scaled by phase 0's sum (as FFmpeg does): a constant signal stays
        // constant to within 1e-5, as the other phases sum to 1 only that closely.
        let norm: f64 = rows[..len].iter().sum();
        let taps = rows.iter().map(|v| (v / norm) as f32).collect();
        FilterBank {
            taps,
            len,
            center,
            phases,
        }
    }

    /// The filtered value at input sample `whole` plus phase `phase`. Samples before the
    /// start and past the end are mirrored, so an edge adds no click.
    fn apply(&self, input: &[f32], whole: i64, phase: usize) -> f32 {
        let row = &self.taps[phase * self.len..(phase + 1) * self.len];
        let start = whole - self.center;
        if start >= 0 && start as usize + self.len <= input.len() {
            let window = &input[start as usize..start as usize + self.len];
            return window.iter().zip(row).map(|(a, b)| a * b).sum();
        }
        let last = input.len() as i64 - 1;
        row.iter()
            .enumerate()
            .map(|(i, b)| {
                let mut j = start + i as i64;
                if j < 0 {
                    j = -j;
                }
                if j > last {
                    j = 2 * last - j;
                }
                input[j.clamp(0, last) as usize] * b
            })
            .sum()
    }
}

/// The modified Bessel function of the first kind, order 0, by its power series
/// (30 terms reach f64 precision for the arguments a Kaiser window with beta 9 gives).
fn bessel_i0(x: f64) -> f64 {
    let q = x * x / 4.0;
    let (mut term, mut sum) = (1.0, 1.0);
    for k in 1..40 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f32, rate: u32, secs: f32) -> Vec<f32> {
        (0..(rate as f32 * secs) as usize)
            .map(|i| (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin() * 0.5)
            .collect()
    }

    /// Power of `x` at `hz` (a single-bin DFT), relative to a full-scale 0.5 sine.
    fn level_db(x: &[f32], rate: u32, hz: f32) -> f64 {
        let (mut re, mut im) = (0f64, 0f64);
        for (i, v) in x.iter().enumerate() {
            let a = 2.0 * std::f64::consts::PI * f64::from(hz) * i as f64 / f64::from(rate);
            re += f64::from(*v) * a.cos();
            im += f64::from(*v) * a.sin();
        }
        let amp = 2.0 * (re * re + im * im).sqrt() / x.len() as f64;
        20.0 * (amp / 0.5).log10()
    }

    #[test]
    fn keeps_duration_and_frequency() {
        // 1 s of 440 Hz at 8 kHz -> 16 kHz: 16000 samples, zero crossings preserved.
        let x = tone(440.0, 8000, 1.0);
        let y = resample(&x, 8000, 16000).unwrap();
        assert_eq!(y.len(), 16000);
        let crossings = y[1000..15000]
            .windows(2)
            .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
            .count();
        // 440 Hz over 14000/16000 s = 385 cycles.
        assert!((crossings as i64 - 385).abs() <= 2, "{crossings}");
        let peak = y[1000..15000].iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!((peak - 0.5).abs() < 0.01, "{peak}");
    }

    #[test]
    fn doubling_keeps_every_input_sample() {
        // 2x upsampling: phase 0 is the identity, so even outputs are the inputs.
        let x = tone(1234.0, 8000, 0.5);
        let y = resample(&x, 8000, 16000).unwrap();
        for (i, v) in x.iter().enumerate() {
            assert!(
                (y[2 * i] - v).abs() < 1e-6,
                "sample {i}: {} vs {v}",
                y[2 * i]
            );
        }
    }

    #[test]
    fn upsampling_passes_speech_band_and_keeps_images_faint() {
        // The filter FFmpeg uses: flat through the telephone band, images far down; a 3.9 kHz
        // tone keeps a faint image at 4.1 kHz (about -9 dB), as whisper saw in training.
        let y = resample(&tone(3000.0, 8000, 1.0), 8000, 16000).unwrap();
        assert!(level_db(&y, 16000, 3000.0).abs() < 0.01);
        assert!(level_db(&y, 16000, 5000.0) < -70.0);
        let y = resample(&tone(3400.0, 8000, 1.0), 8000, 16000).unwrap();
        assert!(level_db(&y, 16000, 3400.0).abs() < 0.1);
        assert!(level_db(&y, 16000, 4600.0) < -45.0);
        let y = resample(&tone(3900.0, 8000, 1.0), 8000, 16000).unwrap();
        let image = level_db(&y, 16000, 4100.0);
        assert!(image < -5.0 && image > -15.0, "{image}");
    }

    #[test]
    fn downsampling_removes_what_would_alias() {
        // 44.1 kHz -> 16 kHz: 1 kHz passes; 12 kHz, which would fold to 4 kHz, is removed.
        let y = resample(&tone(1000.0, 44100, 1.0), 44100, 16000).unwrap();
        assert_eq!(y.len(), 16000);
        assert!(level_db(&y, 16000, 1000.0).abs() < 0.1);
        let y = resample(&tone(12000.0, 44100, 1.0), 44100, 16000).unwrap();
        assert!(level_db(&y, 16000, 4000.0) < -60.0);
    }

    #[test]
    fn odd_rates_and_constants() {
        // 8001 Hz reduces to more than 1024 phases: the nearest phase is used.
        let x = vec![0.25f32; 8001];
        let y = resample(&x, 8001, 16000).unwrap();
        assert_eq!(y.len(), 16000);
        assert!(
            y.iter().all(|v| (v - 0.25).abs() < 0.01),
            "constant stays constant"
        );
        assert!(resample(&[0.1, 0.2, 0.3], 0, 16000).is_err());
        assert_eq!(resample(&[0.5], 8000, 16000).unwrap().len(), 2);
    }

    #[test]
    fn same_rate_is_identity() {
        let x = vec![0.1, 0.2, 0.3];
        assert_eq!(resample(&x, 16000, 16000).unwrap(), x);
    }
}
