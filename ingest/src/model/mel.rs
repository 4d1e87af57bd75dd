//! The mel filterbank whisper.cpp reads from a ggml file: librosa's
//! `filters.mel(sr=16000, n_fft=400, n_mels)` (Slaney scale and area norm),
//! reproduced bit for bit, because CTranslate2 model dirs do not ship it.
//!
//! librosa computes each triangle in f64, stores it into a float32 array,
//! then multiplies by the f64 area norm and stores to float32 again. That
//! double rounding (and the -0.0 at [0][0] that numpy's min/max keep) is
//! followed step by step here so the bytes equal openai's `mel_filters.npz`.

/// Sample rate whisper works at.
const SAMPLE_RATE: f64 = 16_000.0;
/// FFT size of whisper's STFT (25 ms windows).
pub(crate) const N_FFT: usize = 400;
/// Number of FFT bins, `1 + N_FFT / 2`.
pub(crate) const N_BINS: usize = 1 + N_FFT / 2;

const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn logstep() -> f64 {
    6.4f64.ln() / 27.0
}

/// Slaney Hz -> mel (librosa `hz_to_mel`, `htk=False`).
fn hz_to_mel(f: f64) -> f64 {
    if f >= MIN_LOG_HZ {
        MIN_LOG_MEL + (f / MIN_LOG_HZ).ln() / logstep()
    } else {
        f / F_SP
    }
}

/// Slaney mel -> Hz (librosa `mel_to_hz`, `htk=False`).
fn mel_to_hz(m: f64) -> f64 {
    if m >= MIN_LOG_MEL {
        MIN_LOG_HZ * (logstep() * (m - MIN_LOG_MEL)).exp()
    } else {
        F_SP * m
    }
}

/// numpy `linspace(start, stop, num)`: `i * step + start`, last = `stop`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    if let Some(last) = v.last_mut() {
        *last = stop;
    }
    v
}

/// The `n_mels` x `N_BINS` filterbank, row-major (one row per filter).
pub(crate) fn mel_filters(n_mels: usize) -> Vec<f32> {
    // numpy rfftfreq: k * (1 / (n * d)) with d = 1 / sr.
    let bin_hz = 1.0 / (N_FFT as f64 * (1.0 / SAMPLE_RATE));
    let fft_freqs: Vec<f64> = (0..N_BINS).map(|k| k as f64 * bin_hz).collect();
    let mels = linspace(hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2.0), n_mels + 2);
    let mel_f: Vec<f64> = mels.into_iter().map(mel_to_hz).collect();
    let fdiff: Vec<f64> = mel_f.windows(2).map(|w| w[1] - w[0]).collect();

    let mut weights = vec![0f32; n_mels * N_BINS];
    for i in 0..n_mels {
        let enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
        for (k, &f) in fft_freqs.iter().enumerate() {
            // ramps = mel_f - fftfreqs; lower = -ramps[i] / fdiff[i]. Keeping
            // the negation where numpy has it yields the reference's -0.0.
            let lower = -(mel_f[i] - f) / fdiff[i];
            let upper = (mel_f[i + 2] - f) / fdiff[i + 1];
            // np.minimum / np.maximum(0, x): spelled out, because Rust's
            // min/max do not promise which zero they return.
            let w = if lower < upper { lower } else { upper };
            let w = if w < 0.0 { 0.0 } else { w };
            let stored = w as f32;
            weights[i * N_BINS + k] = (f64::from(stored) * enorm) as f32;
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(w: &[f32], row: usize, col: usize) -> f32 {
        w[row * N_BINS + col]
    }

    #[test]
    fn scale_round_trips_and_breaks_at_1000_hz() {
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
        for f in [0.0, 440.0, 999.0, 1000.0, 3000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(f)) - f).abs() < 1e-9, "{f}");
        }
    }

    #[test]
    fn matches_librosa_reference_values() {
        let w = mel_filters(80);
        assert_eq!(w.len(), 80 * 201);
        assert_eq!(w.iter().filter(|&&x| x != 0.0).count(), 391);
        let sum: f64 = w.iter().map(|&x| f64::from(x)).sum();
        assert!((sum - 1.999024092387117).abs() < 1e-12, "{sum}");
        // Row 0 is non-zero only at col 1; [0][0] is -0.0 as in the reference.
        assert_eq!(at(&w, 0, 0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(at(&w, 0, 1), 0.024862595);
        assert!((2..201).all(|k| at(&w, 0, k) == 0.0));
        assert_eq!((at(&w, 1, 1), at(&w, 1, 2)), (0.001990822, 0.022871772));
        assert_eq!(
            [at(&w, 40, 42), at(&w, 40, 43), at(&w, 40, 44)],
            [0.0054111048, 0.014735566, 0.00651819]
        );
        assert_eq!(at(&w, 13, 13), 0.025880683);
        let nonzero_79: Vec<usize> = (0..201).filter(|&k| at(&w, 79, k) != 0.0).collect();
        assert_eq!(nonzero_79, (186..200).collect::<Vec<_>>());
        // Every other zero is +0.0.
        let negative_zeros = w.iter().filter(|x| x.to_bits() == 0x8000_0000).count();
        assert_eq!(negative_zeros, 1);
    }
}
