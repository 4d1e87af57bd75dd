//! GSM 06.10 recordings made by a real encoder (sox through libgsm), as a GSM WAV (Asterisk's
//! `wav49`) and as raw `.gsm` frames, decode to the samples sox itself decodes, close to
//! the speech that went in; a GSM WAV cut short is an error with its reason.

use std::path::Path;
use std::process::Command;

use callqa_ingest::decode::decode;

mod common;

fn sox(args: &[&Path], opts_before_out: &[&str]) {
    let (out, inputs) = args.split_last().expect("an output");
    let mut cmd = Command::new("sox");
    cmd.arg("-D").args(inputs).args(opts_before_out).arg(out);
    let status = cmd.status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "{cmd:?} failed (apt-get install -y sox)"
    );
}

fn read_pcm(path: &Path) -> Vec<f32> {
    let mut r = hound::WavReader::open(path).expect("sox's PCM");
    r.samples::<i16>()
        .map(|s| f32::from(s.expect("sample")) / 32768.0)
        .collect()
}

fn snr_db(reference: &[f32], got: &[f32]) -> f64 {
    let (mut sig, mut err) = (0.0f64, 0.0f64);
    for (r, g) in reference.iter().zip(got) {
        sig += f64::from(*r).powi(2);
        err += f64::from(r - g).powi(2);
    }
    10.0 * (sig / err.max(1e-12)).log10()
}

#[test]
fn gsm_wav_and_raw_gsm_decode_as_libgsm_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let speech = common::speech(
        dir.path(),
        "Your account is overdue. Please call us back to arrange a payment.",
    );
    let pcm8k = dir.path().join("speech8k.wav");
    {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let src = dir.path().join("speech16k-copy.wav");
        let mut w = hound::WavWriter::create(&src, spec).expect("create");
        for s in &speech {
            w.write_sample((s * 32767.0) as i16).expect("write");
        }
        w.finalize().expect("finish");
        sox(&[&src, &pcm8k], &["-r", "8000", "-b", "16", "-e", "signed"]);
    }
    let original = read_pcm(&pcm8k);

    let gsm_wav = dir.path().join("speech-gsm.wav");
    let raw_gsm = dir.path().join("speech.gsm");
    sox(&[&pcm8k, &gsm_wav], &["-e", "gsm-full-rate"]);
    sox(&[&pcm8k, &raw_gsm], &["-t", "gsm"]);

    for (file, name) in [(&gsm_wav, "call.wav"), (&raw_gsm, "call.gsm")] {
        let back = dir.path().join("sox-decoded.wav");
        sox(&[file, &back], &["-b", "16", "-e", "signed"]);
        let by_sox = read_pcm(&back);
        let bytes = std::fs::read(file).expect("read");
        let a = decode(bytes, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(a.sample_rate, 8000, "{name}");
        assert_eq!(a.channels.len(), 1, "{name}");
        let ours = &a.channels[0];
        // sox pads the last frame; a WAV's fact chunk says where the speech ends.
        assert!(
            ours.len().abs_diff(original.len()) < 160,
            "{name}: {} samples for {}",
            ours.len(),
            original.len()
        );
        let n = ours.len().min(by_sox.len());
        let worst = ours[..n]
            .iter()
            .zip(&by_sox[..n])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 2.0 / 32768.0, "{name}: differs from sox by {worst}");
        // A lossy 13 kbit/s codec: the waveform follows the speech, not exactly.
        let snr = snr_db(&original, ours);
        assert!(snr > 5.0, "{name}: SNR {snr:.1} dB against the original");
    }

    // A GSM WAV cut in the middle of its data.
    let bytes = std::fs::read(&gsm_wav).expect("read");
    let cut = bytes[..bytes.len() / 2].to_vec();
    let e = decode(cut, "cut.wav").expect_err("cut short").to_string();
    assert!(e.contains("truncated"), "{e}");
}
