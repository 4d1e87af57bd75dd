//! Audio decoding with symphonia: WAV (PCM, G.711 μ-law/A-law), FLAC, MP3, Ogg Vorbis, AAC,
//! Opus (Ogg, WebM) through libopus, GSM 06.10 (WAV, raw `.gsm`) through libgsm, Sun `.au`
//! and Asterisk's headerless G.711 and linear files; any rate, mono or stereo, into
//! per-channel f32 samples. Bad input fails with a reason.

use crate::error::{IngestError, Result};
use std::sync::LazyLock;
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CodecRegistry, DecoderOptions, CODEC_TYPE_NULL, CODEC_TYPE_OPUS};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// Decoded audio, one vector of samples in [-1, 1] per channel.
#[derive(Debug, Clone)]
pub struct Audio {
    pub sample_rate: u32,
    pub channels: Vec<Vec<f32>>,
}

impl Audio {
    pub fn frames(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }

    pub fn duration_ms(&self) -> u64 {
        if self.sample_rate == 0 {
            return 0;
        }
        self.frames() as u64 * 1000 / u64::from(self.sample_rate)
    }
}

/// Share of frames a file may lack against its header before it counts as truncated
/// (codec priming and padding make the header's count slightly off for some formats).
const TRUNCATION_TOLERANCE: f64 = 0.02;

/// The rate Opus decodes at, whatever rate went into the encoder.
const OPUS_RATE: u32 = 48_000;

/// symphonia's own decoders and Opus, which symphonia 0.5 demuxes (Ogg, Matroska/WebM)
/// but cannot decode: recordings from WebRTC softphones and browsers are Opus.
static CODECS: LazyLock<CodecRegistry> = LazyLock::new(|| {
    let mut registry = CodecRegistry::new();
    symphonia::default::register_enabled_codecs(&mut registry);
    registry.register_all::<symphonia_adapter_libopus::OpusDecoder>();
    registry
});

thread_local! {
    /// Set while this thread decodes: a demuxer's panic there is an error, not news for stderr.
    static DECODING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Wraps the process's panic hook, once, so that panics inside `decode` print nothing; every
/// other panic goes to the hook as before.
fn quiet_panics_while_decoding() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !DECODING.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Decodes a whole recording held in memory. `name` is used for the format hint
/// (its extension) and in error messages. A demuxer that panics on a damaged file
/// (symphonia's Matroska reader does on a WebM cut short) is an error like any other,
/// and prints nothing.
pub fn decode(data: Vec<u8>, name: &str) -> Result<Audio> {
    quiet_panics_while_decoding();
    DECODING.with(|d| d.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_unguarded(data, name)
    }));
    DECODING.with(|d| d.set(false));
    result.unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(IngestError::Decode {
            name: name.to_string(),
            reason: format!("corrupt or cut short: the decoder failed ({what})"),
        })
    })
}

fn decode_unguarded(data: Vec<u8>, name: &str) -> Result<Audio> {
    let fail = |reason: String| IngestError::Decode {
        name: name.to_string(),
        reason,
    };
    if data.is_empty() {
        return Err(fail("the file is empty (0 bytes)".into()));
    }
    let size = data.len();
    let extension = std::path::Path::new(name)
        .extension()
        .and_then(|e| e.to_str());
    if let Some(gsm) = crate::gsm::decode(&data, extension) {
        let gsm = gsm.map_err(fail)?;
        let held = gsm.samples.len() as f64 / f64::from(gsm.sample_rate);
        if let Some(reason) = gsm.announced_seconds.and_then(|a| truncated(held, a)) {
            return Err(fail(reason));
        }
        return Ok(Audio {
            sample_rate: gsm.sample_rate,
            channels: vec![gsm.samples],
        });
    }
    let data = match crate::pbx_audio::as_wav(&data, extension) {
        Some(wav) => wav.map_err(fail)?,
        None => data,
    };
    let mss = MediaSourceStream::new(Box::new(std::io::Cursor::new(data)), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = extension {
        hint.with_extension(&ext.to_ascii_lowercase());
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            mss,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| fail(format!("not a recognised audio file ({size} bytes): {e}")))?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| fail("the file has no audio track".into()))?;
    let track_id = track.id;
    let mut params = track.codec_params.clone();
    // Matroska/WebM gives a channel layout where decoders such as libopus's want channels,
    // and for Opus the rate of the audio that went into the encoder (22050, say), where
    // Opus decodes at 48 kHz (RFC 7845).
    if params.channels.is_none() {
        params.channels = params.channel_layout.map(|l| l.into_channels());
    }
    if params.codec == CODEC_TYPE_OPUS {
        params.sample_rate = Some(OPUS_RATE);
    }
    let expected_frames = params.n_frames;
    let mut decoder = CODECS
        .make(&params, &DecoderOptions::default())
        .map_err(|e| fail(format!("unsupported codec: {e}")))?;

    let mut channels: Vec<Vec<f32>> = Vec::new();
    let mut sample_rate = params.sample_rate.unwrap_or(0);
    let (mut packets, mut bad_packets) = (0usize, 0usize);
    let mut sample_buf: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => break,
            Err(e) => return Err(fail(format!("corrupt container: {e}"))),
        };
        if packet.track_id() != track_id {
            continue;
        }
        packets += 1;
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            Err(SymError::DecodeError(e)) => {
                bad_packets += 1;
                tracing::debug!(file = name, error = e, "skipping undecodable packet");
                continue;
            }
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(fail(format!("decoding failed: {e}"))),
        };
        let spec = *decoded.spec();
        sample_rate = spec.rate;
        let n_ch = spec.channels.count();
        if channels.is_empty() {
            channels = vec![Vec::new(); n_ch];
        }
        if n_ch != channels.len() {
            return Err(fail("the channel count changes mid-stream".into()));
        }
        let needed = decoded.capacity() as u64;
        let buf = match &mut sample_buf {
            Some(b) if b.capacity() as u64 >= needed * n_ch as u64 => b,
            _ => sample_buf.insert(SampleBuffer::<f32>::new(needed, spec)),
        };
        buf.copy_interleaved_ref(decoded);
        for frame in buf.samples().chunks_exact(n_ch) {
            for (c, s) in frame.iter().enumerate() {
                channels[c].push(*s);
            }
        }
    }
    let frames = channels.first().map_or(0, Vec::len);
    if frames == 0 {
        return Err(fail(if packets == 0 {
            "no audio data in the file (truncated or corrupt)".into()
        } else {
            format!("none of its {packets} audio packets could be decoded (corrupt)")
        }));
    }
    if packets > 0 && bad_packets * 10 > packets {
        return Err(fail(format!(
            "{bad_packets} of {packets} audio packets are corrupt"
        )));
    }
    let rate = f64::from(sample_rate.max(1));
    let held = frames as f64 / rate;
    // The header's length counts in its own time base: frames for WAV or Ogg, milliseconds
    // for Matroska/WebM, the track's time scale for MP4.
    let announced = expected_frames.map(|n| match params.time_base {
        Some(tb) => {
            let t = tb.calc_time(n);
            t.seconds as f64 + t.frac
        }
        None => n as f64 / rate,
    });
    if let Some(reason) = announced.and_then(|a| truncated(held, a)) {
        return Err(fail(reason));
    }
    if sample_rate == 0 {
        return Err(fail("unknown sample rate".into()));
    }
    Ok(Audio {
        sample_rate,
        channels,
    })
}

/// Whether browsers cannot play a recording, from its first bytes (512 are enough) and its
/// extension: GSM 06.10, Sun `.au` and Asterisk's headerless files.
pub fn needs_transcoding(head: &[u8], extension: Option<&str>) -> bool {
    crate::gsm::is_gsm(head, extension) || crate::pbx_audio::is_pbx_audio(head, extension)
}

/// Decoded audio as a 16-bit PCM WAV (channels interleaved), which every player plays.
pub fn pcm_wav(audio: &Audio) -> Vec<u8> {
    let mut samples = Vec::with_capacity(audio.frames() * audio.channels.len() * 2);
    for i in 0..audio.frames() {
        for ch in &audio.channels {
            let s = (ch[i] * 32768.0).clamp(-32768.0, 32767.0) as i16;
            samples.extend_from_slice(&s.to_le_bytes());
        }
    }
    let layout = crate::pbx_audio::Layout {
        tag: crate::pbx_audio::WAVE_PCM,
        bits: 16,
        rate: audio.sample_rate,
        channels: audio.channels.len().max(1) as u16,
    };
    crate::pbx_audio::wav(layout, &samples, samples.len())
}

/// Why a file holding `held` seconds is cut short against the `announced` seconds of its
/// header, if it is.
fn truncated(held: f64, announced: f64) -> Option<String> {
    (held < announced * (1.0 - TRUNCATION_TOLERANCE)).then(|| {
        format!("truncated: the header announces {announced:.1} s of audio but the file holds {held:.1} s")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal 16-bit PCM WAV, enough to test the decoder without fixtures.
    fn wav(channels: u16, rate: u32, frames: &[Vec<i16>]) -> Vec<u8> {
        let data_len = (frames.len() * channels as usize * 2) as u32;
        let mut v = Vec::new();
        v.extend_from_slice(b"RIFF");
        v.extend_from_slice(&(36 + data_len).to_le_bytes());
        v.extend_from_slice(b"WAVEfmt ");
        v.extend_from_slice(&16u32.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&channels.to_le_bytes());
        v.extend_from_slice(&rate.to_le_bytes());
        v.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
        v.extend_from_slice(&(channels * 2).to_le_bytes());
        v.extend_from_slice(&16u16.to_le_bytes());
        v.extend_from_slice(b"data");
        v.extend_from_slice(&data_len.to_le_bytes());
        for f in frames {
            for s in f {
                v.extend_from_slice(&s.to_le_bytes());
            }
        }
        v
    }

    #[test]
    fn decodes_stereo_pcm_per_channel() {
        let frames: Vec<Vec<i16>> = (0..8000)
            .map(|i| vec![(i % 100) as i16 * 100, -1000])
            .collect();
        let a = decode(wav(2, 8000, &frames), "x.wav").unwrap();
        assert_eq!(a.sample_rate, 8000);
        assert_eq!(a.channels.len(), 2);
        assert_eq!(a.frames(), 8000);
        assert_eq!(a.duration_ms(), 1000);
        assert!((a.channels[1][5] - (-1000.0 / 32768.0)).abs() < 1e-4);
    }

    #[test]
    fn pcm_wav_reads_back_the_same() {
        let frames: Vec<Vec<i16>> = (0..800).map(|i| vec![i * 10, -i]).collect();
        let a = decode(wav(2, 8000, &frames), "x.wav").unwrap();
        let again = decode(pcm_wav(&a), "y.wav").unwrap();
        assert_eq!(again.channels, a.channels);
        assert_eq!(again.sample_rate, 8000);
        assert!(needs_transcoding(b"", Some("ulaw")));
        assert!(!needs_transcoding(&pcm_wav(&a)[..44], Some("wav")));
    }

    #[test]
    fn empty_file_is_explained() {
        let e = decode(Vec::new(), "empty.wav").unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
    }

    #[test]
    fn garbage_is_rejected() {
        let e = decode(b"this is not audio at all, just text".repeat(50), "bad.wav")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.wav"), "{e}");
    }

    #[test]
    fn truncated_wav_is_rejected() {
        let frames: Vec<Vec<i16>> = (0..16000).map(|i| vec![(i % 50) as i16]).collect();
        let mut w = wav(1, 8000, &frames);
        w.truncate(w.len() / 2);
        let e = decode(w, "cut.wav").unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
    }
}
