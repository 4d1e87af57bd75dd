//! Sample-rate conversion to whisper's 16 kHz with a fixed, good-quality FFT resampler
//! (the note on decoding settings: results move with the resampler, so it stays fixed).

use crate::error::{IngestError, Result};
use rubato::{FftFixedIn, Resampler};

pub const WHISPER_RATE: u32 = 16_000;

/// Resamples one channel from `from` Hz to `to` Hz, keeping its duration.
pub fn resample(input: &[f32], from: u32, to: u32) -> Result<Vec<f32>> {
    if from == to || input.is_empty() {
        return Ok(input.to_vec());
    }
    let err = |e: &dyn std::fmt::Display| IngestError::BadData {
        what: format!("resampling {from} Hz -> {to} Hz"),
        reason: e.to_string(),
    };
    let mut r =
        FftFixedIn::<f32>::new(from as usize, to as usize, 1024, 2, 1).map_err(|e| err(&e))?;
    let expected = (input.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    let delay = r.output_delay();
    let mut out = Vec::with_capacity(expected + delay + 2048);
    let mut pos = 0;
    while input.len() - pos >= r.input_frames_next() {
        let n = r.input_frames_next();
        let o = r
            .process(&[&input[pos..pos + n]], None)
            .map_err(|e| err(&e))?;
        out.extend_from_slice(&o[0]);
        pos += n;
    }
    if pos < input.len() {
        let o = r
            .process_partial(Some(&[&input[pos..]]), None)
            .map_err(|e| err(&e))?;
        out.extend_from_slice(&o[0]);
    }
    while out.len() < expected + delay {
        let o = r
            .process_partial::<&[f32]>(None, None)
            .map_err(|e| err(&e))?;
        if o[0].is_empty() {
            break;
        }
        out.extend_from_slice(&o[0]);
    }
    let start = delay.min(out.len());
    let mut out = out.split_off(start);
    out.resize(expected, 0.0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_duration_and_frequency() {
        // 1 s of 440 Hz at 8 kHz -> 16 kHz: 16000 samples, zero crossings preserved.
        let x: Vec<f32> = (0..8000)
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 8000.0).sin() * 0.5)
            .collect();
        let y = resample(&x, 8000, 16000).unwrap();
        assert_eq!(y.len(), 16000);
        let crossings = y[1000..15000]
            .windows(2)
            .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
            .count();
        // 440 Hz over 14000/16000 s = 385 cycles.
        assert!((crossings as i64 - 385).abs() <= 2, "{crossings}");
        let peak = y[1000..15000].iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!((peak - 0.5).abs() < 0.05, "{peak}");
    }

    #[test]
    fn same_rate_is_identity() {
        let x = vec![0.1, 0.2, 0.3];
        assert_eq!(resample(&x, 16000, 16000).unwrap(), x);
    }
}
