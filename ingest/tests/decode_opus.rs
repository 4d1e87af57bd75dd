//! Opus recordings made by the real encoder (opus-tools' opusenc) and muxer (mkvtoolnix's
//! mkvmerge) decode whole, in Ogg and in WebM, and a WebM cut short is an error with its
//! reason, not a panic (symphonia's Matroska reader panics on one), and prints nothing.

use std::path::Path;
use std::process::Command;

use callqa_ingest::decode::decode;

/// Three seconds of a 440 Hz tone in the left channel and 660 Hz in the right, 16 kHz.
fn stereo_tone(path: &Path) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    for i in 0..48_000 {
        let t = f64::from(i) / 16_000.0;
        for f in [440.0, 660.0] {
            let s = (t * f * std::f64::consts::TAU).sin() * 8000.0;
            w.write_sample(s as i16).expect("write sample");
        }
    }
    w.finalize().expect("finish wav");
}

fn run(cmd: &mut Command, install: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (apt-get install -y {install})"));
    assert!(out.status.success(), "{cmd:?}: {out:?}");
}

/// The strongest frequency of `x` among a few candidates, by correlation.
fn tone_of(x: &[f32], rate: u32) -> f64 {
    let power = |f: f64| {
        let (mut re, mut im) = (0.0, 0.0);
        for (i, s) in x.iter().enumerate() {
            let p = i as f64 / f64::from(rate) * f * std::f64::consts::TAU;
            re += f64::from(*s) * p.cos();
            im += f64::from(*s) * p.sin();
        }
        re * re + im * im
    };
    [440.0, 660.0, 880.0]
        .into_iter()
        .max_by(|a, b| power(*a).total_cmp(&power(*b)))
        .unwrap_or_default()
}

#[test]
fn opus_in_ogg_and_webm_decodes_whole_and_a_cut_webm_is_truncated() {
    // Panics reach this hook (and stderr) unless a decoder panics inside `decode`, whose
    // first call wraps it.
    static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let stderr = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        stderr(info);
    }));
    let dir = tempfile::tempdir().expect("temp dir");
    let wav = dir.path().join("tone.wav");
    let ogg = dir.path().join("tone.opus");
    let webm = dir.path().join("tone.webm");
    stereo_tone(&wav);
    run(
        Command::new("opusenc")
            .args(["--quiet", "--bitrate", "32"])
            .arg(&wav)
            .arg(&ogg),
        "opus-tools",
    );
    run(
        Command::new("mkvmerge")
            .args(["--quiet", "--webm", "-o"])
            .arg(&webm)
            .arg(&ogg),
        "mkvtoolnix",
    );
    for file in [&ogg, &webm] {
        let bytes = std::fs::read(file).expect("read");
        let name = file.display().to_string();
        let audio = decode(bytes, &name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(audio.sample_rate, 48_000, "{name}");
        assert_eq!(audio.channels.len(), 2, "{name}");
        let ms = audio.duration_ms();
        assert!((2950..=3050).contains(&ms), "{name}: {ms} ms");
        // Each channel keeps its own tone (a second from the middle).
        let mid = &audio.channels[0][48_000..96_000];
        assert_eq!(tone_of(mid, 48_000), 440.0, "{name} left");
        let mid = &audio.channels[1][48_000..96_000];
        assert_eq!(tone_of(mid, 48_000), 660.0, "{name} right");
    }
    let bytes = std::fs::read(&webm).expect("read");
    let cut = bytes[..bytes.len() * 6 / 10].to_vec();
    let err = decode(cut, "cut.webm").expect_err("a cut WebM is an error");
    assert!(err.to_string().contains("cut short"), "{err}");
    assert_eq!(
        PANICS.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the demuxer's panic was printed"
    );
    let elsewhere = std::panic::catch_unwind(|| panic!("not in a decoder"));
    assert!(elsewhere.is_err());
    assert_eq!(
        PANICS.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "other panics still print"
    );
}
