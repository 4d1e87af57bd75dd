//! Generated test speech: espeak-ng English, resampling, two-channel call
//! recordings built from turns, mono mixes, and every container/codec the
//! decoder must read (via sox; opusenc for Opus, ffmpeg for AAC).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::HarnessError;
use crate::tool::{run, APT_AUDIO};
use crate::Result;

/// Silence after the last turn, as real recordings run on a moment after the hang-up cue.
const TAIL_MS: u32 = 500;
/// Peak of the noise floor laid under both channels (about -80 dBFS): real
/// lines are never digitally silent, and a decoder must not mistake hiss for speech.
const NOISE_PEAK: i32 = 3;

/// Which party speaks a turn. Channel 0 is the agent, channel 1 the customer
/// (the callqa default mapping of stereo recordings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Agent,
    Customer,
}

impl Side {
    /// Zero-based WAV channel of this party.
    pub fn channel(self) -> usize {
        match self {
            Side::Agent => 0,
            Side::Customer => 1,
        }
    }

    /// The espeak-ng voice used for text turns: two voices so the parties differ.
    pub fn default_voice(self) -> &'static str {
        match self {
            Side::Agent => "en-us",
            Side::Customer => "en-us+f2",
        }
    }
}

/// What a turn says: an existing WAV (any rate or channel count; mixed down
/// and resampled) or English text spoken by espeak-ng.
#[derive(Debug, Clone)]
pub enum TurnAudio {
    Wav(PathBuf),
    Say { text: String, voice: String },
}

/// One turn of a call.
#[derive(Debug, Clone)]
pub struct Turn {
    pub side: Side,
    pub audio: TurnAudio,
    /// Milliseconds between the end of the previous turn and the start of this
    /// one; negative makes the turns overlap. For the first turn, the lead-in.
    pub gap_ms: i32,
}

impl Turn {
    /// A turn playing `path` after `gap_ms`.
    pub fn wav(side: Side, path: impl Into<PathBuf>, gap_ms: i32) -> Turn {
        Turn {
            side,
            audio: TurnAudio::Wav(path.into()),
            gap_ms,
        }
    }

    /// A turn speaking English `text` in the side's default voice after `gap_ms`.
    pub fn say(side: Side, text: &str, gap_ms: i32) -> Turn {
        Turn {
            side,
            audio: TurnAudio::Say {
                text: text.to_string(),
                voice: side.default_voice().to_string(),
            },
            gap_ms,
        }
    }
}

/// Where a turn landed in the built recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnSpan {
    pub side: Side,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// The formats tests can produce from one source recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    /// WAV, 16-bit signed PCM.
    Wav16,
    /// WAV, G.711 μ-law (format tag 7).
    WavUlaw,
    /// WAV, G.711 A-law (format tag 6).
    WavAlaw,
    Flac,
    Mp3,
    OggVorbis,
    /// Ogg Opus, as WebRTC softphones record (opus-tools' opusenc, 24 kbit/s).
    OggOpus,
    /// The same Opus in WebM, as browsers' MediaRecorder writes it (mkvtoolnix's mkvmerge).
    WebmOpus,
    /// AAC-LC in MP4 (.m4a), as phones' call recorders write it (ffmpeg's encoder, 32 kbit/s).
    M4aAac,
    /// WAV, GSM 06.10 (format tag 0x31, Asterisk's `wav49`; 8 kHz mono).
    WavGsm,
    /// Raw GSM 06.10 frames (Asterisk's `.gsm`; 8 kHz mono).
    RawGsm,
    /// Headerless G.711 μ-law (Asterisk's `.ulaw`; 8 kHz mono).
    RawUlaw,
    /// Headerless 16-bit signed linear (Asterisk's `.sln`; 8 kHz mono).
    RawSln,
    /// Sun/NeXT `.au`, 16-bit big-endian linear, at the source's rate.
    AuPcm16,
}

impl AudioFormat {
    pub const ALL: [AudioFormat; 14] = [
        AudioFormat::Wav16,
        AudioFormat::WavUlaw,
        AudioFormat::WavAlaw,
        AudioFormat::Flac,
        AudioFormat::Mp3,
        AudioFormat::OggVorbis,
        AudioFormat::OggOpus,
        AudioFormat::WebmOpus,
        AudioFormat::M4aAac,
        AudioFormat::WavGsm,
        AudioFormat::RawGsm,
        AudioFormat::RawUlaw,
        AudioFormat::RawSln,
        AudioFormat::AuPcm16,
    ];

    /// Whether sox writes (and reads) this format itself; Opus and AAC go through
    /// opusenc and ffmpeg.
    fn sox_writes(self) -> bool {
        !matches!(
            self,
            AudioFormat::OggOpus | AudioFormat::WebmOpus | AudioFormat::M4aAac
        )
    }

    /// Channels a recording of `channels` keeps in this format: GSM and Asterisk's
    /// headerless formats are mono.
    pub fn channels_of(self, channels: u16) -> u16 {
        match self {
            AudioFormat::WavGsm
            | AudioFormat::RawGsm
            | AudioFormat::RawUlaw
            | AudioFormat::RawSln => 1,
            _ => channels,
        }
    }

    /// File extension a recording in this format carries.
    pub fn extension(self) -> &'static str {
        match self {
            AudioFormat::Wav16
            | AudioFormat::WavUlaw
            | AudioFormat::WavAlaw
            | AudioFormat::WavGsm => "wav",
            AudioFormat::RawGsm => "gsm",
            AudioFormat::RawUlaw => "ulaw",
            AudioFormat::RawSln => "sln",
            AudioFormat::AuPcm16 => "au",
            AudioFormat::Flac => "flac",
            AudioFormat::Mp3 => "mp3",
            AudioFormat::OggVorbis => "ogg",
            AudioFormat::OggOpus => "opus",
            AudioFormat::WebmOpus => "webm",
            AudioFormat::M4aAac => "m4a",
        }
    }

    fn sox_args(self) -> &'static [&'static str] {
        match self {
            AudioFormat::Wav16 => &["-t", "wav", "-e", "signed", "-b", "16"],
            AudioFormat::WavUlaw => &["-t", "wav", "-e", "u-law", "-b", "8"],
            AudioFormat::WavAlaw => &["-t", "wav", "-e", "a-law", "-b", "8"],
            AudioFormat::Flac => &["-t", "flac", "-b", "16"],
            AudioFormat::Mp3 => &["-t", "mp3"],
            AudioFormat::OggVorbis => &["-t", "vorbis"],
            // GSM is 8 kHz mono.
            AudioFormat::WavGsm => &["-t", "wav", "-e", "gsm-full-rate", "-r", "8000", "-c", "1"],
            AudioFormat::RawGsm => &["-t", "gsm", "-r", "8000", "-c", "1"],
            AudioFormat::RawUlaw => &["-t", "ul", "-r", "8000", "-c", "1"],
            AudioFormat::RawSln => &[
                "-t", "raw", "-e", "signed", "-b", "16", "-L", "-r", "8000", "-c", "1",
            ],
            AudioFormat::AuPcm16 => &["-t", "au", "-e", "signed", "-b", "16"],
            // sox writes no Opus or AAC: a 16-bit WAV for opusenc or ffmpeg.
            AudioFormat::OggOpus | AudioFormat::WebmOpus | AudioFormat::M4aAac => {
                &["-t", "wav", "-e", "signed", "-b", "16"]
            }
        }
    }
}

/// Speaks `text` with espeak-ng (`voice` e.g. `en-us`, `en-gb+m3`; 145 words
/// per minute) and writes it to `out` as 8 kHz mono 16-bit WAV.
pub fn espeak_wav(text: &str, voice: &str, out: &Path) -> Result<()> {
    let raw = temp_wav()?;
    run(
        Command::new("espeak-ng")
            .args(["-v", voice, "-s", "145", "-w"])
            .arg(raw.path())
            .arg(text),
        APT_AUDIO,
    )?;
    resample(raw.path(), out, 8000)
}

/// Converts any audio file sox reads to a mono 16-bit WAV at `rate`.
pub fn resample(input: &Path, out: &Path, rate: u32) -> Result<()> {
    run(
        Command::new("sox")
            .arg("-D") // no dither: output stays deterministic
            .arg(input)
            .args([
                "-r",
                &rate.to_string(),
                "-c",
                "1",
                "-b",
                "16",
                "-e",
                "signed",
            ])
            .args(["-t", "wav"])
            .arg(out),
        APT_AUDIO,
    )?;
    Ok(())
}

/// Re-encodes `input` (any format sox reads) as `format` at the same channel count,
/// and the same rate except for Opus (decoded at 48 kHz whatever went in) and GSM and
/// Asterisk's headerless formats (8 kHz mono).
pub fn convert(input: &Path, out: &Path, format: AudioFormat) -> Result<()> {
    let sox = |to: &Path| {
        run(
            Command::new("sox")
                .arg("-D")
                .arg(input)
                .args(format.sox_args())
                .arg(to),
            "apt-get install -y sox libsox-fmt-mp3 (mp3 needs libsox-fmt-mp3)",
        )
        .map(drop)
    };
    if format.sox_writes() {
        return sox(out);
    }
    let pcm = temp_wav()?;
    sox(pcm.path())?;
    if format == AudioFormat::M4aAac {
        run(
            Command::new("ffmpeg")
                .args(["-loglevel", "error", "-y", "-i"])
                .arg(pcm.path())
                .args(["-c:a", "aac", "-b:a", "32k"])
                .arg(out),
            "apt-get install -y ffmpeg",
        )?;
        return Ok(());
    }
    let opus = tempfile::Builder::new()
        .prefix("callqa-speech-")
        .suffix(".opus")
        .tempfile()
        .map_err(|e| HarnessError::io(std::env::temp_dir(), e))?;
    let ogg = if format == AudioFormat::OggOpus {
        out
    } else {
        opus.path()
    };
    run(
        Command::new("opusenc")
            .args(["--quiet", "--bitrate", "24"])
            .arg(pcm.path())
            .arg(ogg),
        "apt-get install -y opus-tools",
    )?;
    if format == AudioFormat::WebmOpus {
        run(
            Command::new("mkvmerge")
                .args(["--quiet", "--webm", "-o"])
                .arg(out)
                .arg(ogg),
            "apt-get install -y mkvtoolnix",
        )?;
    }
    Ok(())
}

/// `ms` milliseconds of digital silence at `rate`.
pub fn silence(ms: u32, rate: u32) -> Vec<i16> {
    vec![0; ms_to_samples(ms, rate)]
}

/// Builds a two-channel call recording at `rate` (16-bit WAV): each turn is
/// placed on its party's channel after its gap, the other channel carrying
/// only a faint noise floor. Returns where each turn landed.
pub fn stereo_call(turns: &[Turn], out: &Path, rate: u32) -> Result<Vec<TurnSpan>> {
    let mut channels: [Vec<i32>; 2] = [Vec::new(), Vec::new()];
    let mut spans = Vec::with_capacity(turns.len());
    let mut cursor: i64 = 0; // end of the previous turn, in samples
    for turn in turns {
        let samples = turn_samples(&turn.audio, rate)?;
        let gap = i64::from(turn.gap_ms) * i64::from(rate) / 1000;
        let start = (cursor + gap).max(0) as usize;
        let end = start + samples.len();
        let channel = &mut channels[turn.side.channel()];
        if channel.len() < end {
            channel.resize(end, 0);
        }
        for (slot, s) in channel[start..end].iter_mut().zip(&samples) {
            *slot += i32::from(*s);
        }
        spans.push(TurnSpan {
            side: turn.side,
            start_ms: samples_to_ms(start, rate),
            end_ms: samples_to_ms(end, rate),
        });
        cursor = cursor.max(end as i64);
    }
    let frames = cursor as usize + ms_to_samples(TAIL_MS, rate);
    let mut noise = Lcg(0x5EED);
    let mut interleaved = Vec::with_capacity(frames * 2);
    for i in 0..frames {
        for channel in &channels {
            let speech = channel.get(i).copied().unwrap_or(0);
            interleaved.push(saturate(speech + noise.next_noise()));
        }
    }
    write_wav(out, rate, 2, &interleaved)?;
    Ok(spans)
}

/// Mixes a multi-channel WAV down to one channel (the sum, clipped): how a
/// mono-recording switch would have captured the same call.
pub fn mono_mix(stereo: &Path, out: &Path) -> Result<()> {
    let (spec, samples) = read_wav(stereo)?;
    let channels = usize::from(spec.channels.max(1));
    let mixed: Vec<i16> = samples
        .chunks(channels)
        .map(|frame| saturate(frame.iter().map(|&s| i32::from(s)).sum()))
        .collect();
    write_wav(out, spec.sample_rate, 1, &mixed)
}

/// Writes interleaved 16-bit samples as a PCM WAV.
pub fn write_wav(out: &Path, rate: u32, channels: u16, samples: &[i16]) -> Result<()> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(out, spec).map_err(|e| HarnessError::wav(out, e))?;
    for &s in samples {
        writer
            .write_sample(s)
            .map_err(|e| HarnessError::wav(out, e))?;
    }
    writer.finalize().map_err(|e| HarnessError::wav(out, e))
}

/// Reads a 16-bit PCM WAV: its header and interleaved samples.
pub fn read_wav(path: &Path) -> Result<(hound::WavSpec, Vec<i16>)> {
    let reader = hound::WavReader::open(path).map_err(|e| HarnessError::wav(path, e))?;
    let spec = reader.spec();
    if spec.bits_per_sample != 16 || spec.sample_format != hound::SampleFormat::Int {
        return Err(HarnessError::WavFormat {
            path: path.to_path_buf(),
            expected: "16-bit PCM".into(),
            found: format!("{:?} {} bits", spec.sample_format, spec.bits_per_sample),
        });
    }
    let samples = reader
        .into_samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| HarnessError::wav(path, e))?;
    Ok((spec, samples))
}

/// The mono samples of a turn at `rate`, synthesising or resampling as needed.
fn turn_samples(audio: &TurnAudio, rate: u32) -> Result<Vec<i16>> {
    let converted = temp_wav()?;
    match audio {
        TurnAudio::Say { text, voice } => {
            let spoken = temp_wav()?;
            espeak_wav(text, voice, spoken.path())?;
            resample(spoken.path(), converted.path(), rate)?;
        }
        TurnAudio::Wav(path) => {
            if let Ok((spec, samples)) = read_wav(path) {
                if spec.channels == 1 && spec.sample_rate == rate {
                    return Ok(samples);
                }
            }
            resample(path, converted.path(), rate)?;
        }
    }
    Ok(read_wav(converted.path())?.1)
}

fn temp_wav() -> Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix("callqa-speech-")
        .suffix(".wav")
        .tempfile()
        .map_err(|e| HarnessError::io(std::env::temp_dir(), e))
}

fn ms_to_samples(ms: u32, rate: u32) -> usize {
    (u64::from(ms) * u64::from(rate) / 1000) as usize
}

fn samples_to_ms(samples: usize, rate: u32) -> u64 {
    samples as u64 * 1000 / u64::from(rate)
}

fn saturate(x: i32) -> i16 {
    x.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// A tiny deterministic generator for the noise floor, so recordings are
/// byte-identical between runs.
struct Lcg(u64);

impl Lcg {
    fn next_noise(&mut self) -> i32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % (2 * NOISE_PEAK as u64 + 1)) as i32 - NOISE_PEAK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(path: &Path, rate: u32, ms: u32, amplitude: f64) {
        let n = ms_to_samples(ms, rate);
        let samples: Vec<i16> = (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                (amplitude * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
            })
            .collect();
        write_wav(path, rate, 1, &samples).expect("write tone");
    }

    /// RMS of one channel of interleaved stereo over [from_ms, to_ms).
    fn rms(samples: &[i16], rate: u32, channel: usize, from_ms: u64, to_ms: u64) -> f64 {
        let from = (from_ms * u64::from(rate) / 1000) as usize;
        let to = (to_ms * u64::from(rate) / 1000) as usize;
        let values: Vec<f64> = samples
            .chunks_exact(2)
            .skip(from)
            .take(to - from)
            .map(|f| f64::from(f[channel]))
            .collect();
        (values.iter().map(|v| v * v).sum::<f64>() / values.len() as f64).sqrt()
    }

    #[test]
    fn silence_has_the_requested_length() {
        assert_eq!(silence(250, 8000).len(), 2000);
        assert!(silence(250, 8000).iter().all(|&s| s == 0));
        assert_eq!(silence(10, 16000).len(), 160);
    }

    #[test]
    fn stereo_call_puts_each_side_on_its_channel() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = dir.path().join("a.wav");
        let c = dir.path().join("c.wav");
        tone(&a, 8000, 1000, 8000.0);
        tone(&c, 8000, 800, 8000.0);
        let out = dir.path().join("call.wav");
        let turns = [
            Turn::wav(Side::Agent, &a, 200),
            Turn::wav(Side::Customer, &c, 500),
            Turn::wav(Side::Agent, &a, -300),
        ];
        let spans = stereo_call(&turns, &out, 8000).expect("stereo call");
        let expected = [
            (Side::Agent, 200, 1200),
            (Side::Customer, 1700, 2500),
            (Side::Agent, 2200, 3200),
        ];
        for (span, (side, start, end)) in spans.iter().zip(expected) {
            assert_eq!((span.side, span.start_ms, span.end_ms), (side, start, end));
        }

        let (spec, samples) = read_wav(&out).expect("read call");
        assert_eq!((spec.channels, spec.sample_rate), (2, 8000));
        assert_eq!(samples.len() / 2, ms_to_samples(3200 + TAIL_MS, 8000));
        // Agent speaks alone, customer speaks alone, then both overlap.
        assert!(rms(&samples, 8000, 0, 300, 1100) > 4000.0);
        assert!(rms(&samples, 8000, 1, 300, 1100) < 5.0);
        assert!(rms(&samples, 8000, 1, 1800, 2100) > 4000.0);
        assert!(rms(&samples, 8000, 0, 1800, 2100) < 5.0);
        assert!(rms(&samples, 8000, 0, 2250, 2450) > 4000.0);
        assert!(rms(&samples, 8000, 1, 2250, 2450) > 4000.0);
        // The idle channel carries a noise floor, not digital silence.
        assert!(rms(&samples, 8000, 1, 0, 150) > 0.5);
    }

    #[test]
    fn stereo_call_resamples_turns_to_the_call_rate() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = dir.path().join("a.wav");
        tone(&a, 8000, 1000, 8000.0);
        let out = dir.path().join("call.wav");
        let spans = stereo_call(&[Turn::wav(Side::Customer, &a, 0)], &out, 16000).expect("call");
        assert_eq!(spans[0].end_ms, 1000);
        let (spec, samples) = read_wav(&out).expect("read call");
        assert_eq!(spec.sample_rate, 16000);
        assert!(rms(&samples, 16000, 1, 100, 900) > 4000.0);
    }

    #[test]
    fn mono_mix_keeps_both_parties() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = dir.path().join("a.wav");
        tone(&a, 8000, 500, 6000.0);
        let call = dir.path().join("call.wav");
        let turns = [
            Turn::wav(Side::Agent, &a, 0),
            Turn::wav(Side::Customer, &a, 500),
        ];
        stereo_call(&turns, &call, 8000).expect("call");
        let mono = dir.path().join("mono.wav");
        mono_mix(&call, &mono).expect("mix");
        let (spec, samples) = read_wav(&mono).expect("read mono");
        assert_eq!(spec.channels, 1);
        let window = |from: usize, to: usize| {
            let v = &samples[from..to];
            (v.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
        };
        assert!(window(800, 3200) > 3000.0, "agent part");
        assert!(window(8800, 11200) > 3000.0, "customer part");
        assert!(window(4400, 7600) < 10.0, "the gap");
    }

    #[test]
    fn espeak_speaks_english_at_8k() {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("hello.wav");
        espeak_wav("I want a refund.", "en-us", &out).expect("espeak");
        let (spec, samples) = read_wav(&out).expect("read");
        assert_eq!((spec.channels, spec.sample_rate), (1, 8000));
        let seconds = samples.len() as f64 / 8000.0;
        assert!((0.5..4.0).contains(&seconds), "{seconds} s");
        assert!(samples.iter().any(|&s| s.unsigned_abs() > 3000));
    }

    #[test]
    fn converts_to_every_format() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = dir.path().join("a.wav");
        tone(&a, 8000, 700, 8000.0);
        let call = dir.path().join("call.wav");
        stereo_call(&[Turn::wav(Side::Agent, &a, 300)], &call, 8000).expect("call");
        for format in AudioFormat::ALL {
            let out = dir
                .path()
                .join(format!("call-{format:?}.{}", format.extension()));
            convert(&call, &out, format).expect("convert");
            // Decode back (sox; ffmpeg for what sox cannot read: Opus, AAC): channels
            // kept, duration about 1.5 s.
            let back = dir.path().join(format!("back-{format:?}.wav"));
            let decode = if !format.sox_writes() {
                run(
                    Command::new("ffmpeg")
                        .args(["-loglevel", "error", "-i"])
                        .arg(&out)
                        .arg(&back),
                    "apt-get install -y ffmpeg",
                )
            } else {
                // Headerless files: sox needs to be told what they hold.
                let input: &[&str] = match format {
                    AudioFormat::RawUlaw => &["-t", "ul", "-r", "8000", "-c", "1"],
                    AudioFormat::RawSln => &[
                        "-t", "raw", "-e", "signed", "-b", "16", "-L", "-r", "8000", "-c", "1",
                    ],
                    _ => &[],
                };
                run(
                    Command::new("sox")
                        .args(input)
                        .arg(&out)
                        .args(["-b", "16", "-e", "signed"])
                        .arg(&back),
                    APT_AUDIO,
                )
            };
            decode.expect("decode back");
            let (spec, samples) = read_wav(&back).expect("read back");
            assert_eq!(spec.channels, format.channels_of(2), "{format:?}");
            let seconds =
                samples.len() as f64 / f64::from(spec.channels) / f64::from(spec.sample_rate);
            assert!((1.4..1.7).contains(&seconds), "{format:?}: {seconds} s");
        }
    }
}
