//! Helpers shared by ingest's integration tests: real speech from espeak-ng and sox.

use std::path::Path;
use std::process::Command;

/// espeak-ng speech resampled to 16 kHz mono, as f32 in [-1, 1].
pub fn speech(dir: &Path, text: &str) -> Vec<f32> {
    let raw = dir.join("raw.wav");
    let wav = dir.join("speech16k.wav");
    let status = Command::new("espeak-ng")
        .arg("-w")
        .arg(&raw)
        .arg(text)
        .status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "espeak-ng failed or is missing (apt-get install -y espeak-ng)"
    );
    let status = Command::new("sox")
        .arg(&raw)
        .args(["-r", "16000", "-c", "1", "-b", "16"])
        .arg(&wav)
        .status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "sox failed or is missing (apt-get install -y sox)"
    );
    let mut reader = hound::WavReader::open(&wav).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (16_000, 1, 16)
    );
    reader
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect()
}
