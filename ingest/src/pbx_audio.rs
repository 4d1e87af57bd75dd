//! PBX recording formats symphonia cannot probe, handed to it behind a WAV header built in
//! memory: headerless G.711 and signed-linear files as Asterisk records them (told by their
//! extension: `.ulaw`, `.alaw`, `.sln`, ...) and Sun/NeXT `.au` files (told by their magic).

/// WAV format tags.
pub(crate) const WAVE_PCM: u16 = 1;
const WAVE_FLOAT: u16 = 3;
const WAVE_ALAW: u16 = 6;
const WAVE_MULAW: u16 = 7;

/// How the samples of a headerless or `.au` file are laid out, as a WAV would say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub tag: u16,
    pub bits: u16,
    pub rate: u32,
    pub channels: u16,
}

/// The same audio as a WAV, if `data` is a Sun `.au` file or its extension names one of
/// Asterisk's headerless formats; `None` for anything else. `Err` says why an `.au` file
/// cannot be read.
pub fn as_wav(data: &[u8], extension: Option<&str>) -> Option<Result<Vec<u8>, String>> {
    if data.starts_with(b".snd") {
        return Some(au_as_wav(data));
    }
    let layout = headerless(&extension?.to_ascii_lowercase())?;
    Some(Ok(wav(layout, data, data.len())))
}

/// Whether a recording is in one of these formats, from its first bytes or its extension;
/// browsers cannot play them.
pub fn is_pbx_audio(head: &[u8], extension: Option<&str>) -> bool {
    head.starts_with(b".snd")
        || extension.is_some_and(|e| headerless(&e.to_ascii_lowercase()).is_some())
}

/// Asterisk's headerless formats by extension (its format_pcm and format_sln modules). Not
/// `.pcm`, which Asterisk writes as μ-law but most other tools (and speech APIs) as 16-bit
/// linear: a wrong guess would transcribe noise without an error.
fn headerless(extension: &str) -> Option<Layout> {
    let g711 = |tag| Layout {
        tag,
        bits: 8,
        rate: 8000,
        channels: 1,
    };
    let slin = |rate| Layout {
        tag: WAVE_PCM,
        bits: 16,
        rate,
        channels: 1,
    };
    Some(match extension {
        "ulaw" | "ul" | "mu" | "ulw" => g711(WAVE_MULAW),
        "alaw" | "al" | "alw" => g711(WAVE_ALAW),
        "sln" | "raw" => slin(8000),
        "sln12" => slin(12_000),
        "sln16" => slin(16_000),
        "sln24" => slin(24_000),
        "sln32" => slin(32_000),
        "sln44" => slin(44_100),
        "sln48" => slin(48_000),
        "sln96" => slin(96_000),
        "sln192" => slin(192_000),
        _ => return None,
    })
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// A Sun/NeXT `.au` file (big-endian header and samples) as a WAV (little-endian samples).
fn au_as_wav(data: &[u8]) -> Result<Vec<u8>, String> {
    let field = |at| be32(data, at).ok_or_else(|| "a Sun .au header cut short".to_string());
    let (offset, size, encoding) = (field(4)? as usize, field(8)?, field(12)?);
    let (rate, channels) = (field(16)?, field(20)?);
    let channels = u16::try_from(channels)
        .ok()
        .filter(|c| (1..=8).contains(c))
        .ok_or_else(|| format!("a Sun .au file with {channels} channels"))?;
    if rate == 0 {
        return Err("a Sun .au file with sample rate 0".into());
    }
    let (tag, bits) = match encoding {
        1 => (WAVE_MULAW, 8),
        27 => (WAVE_ALAW, 8),
        2 => (WAVE_PCM, 8),
        3 => (WAVE_PCM, 16),
        4 => (WAVE_PCM, 24),
        5 => (WAVE_PCM, 32),
        6 => (WAVE_FLOAT, 32),
        other => return Err(format!("Sun .au encoding {other} is not supported")),
    };
    let body = data.get(offset.max(24)..).unwrap_or_default();
    // All ones: the writer did not know the length (a stream).
    let declared = if size == u32::MAX {
        body.len()
    } else {
        size as usize
    };
    let body = &body[..body.len().min(declared)];
    let width = usize::from(bits / 8);
    let mut samples = body[..body.len() / width * width].to_vec();
    match (tag, bits) {
        // WAV's 8-bit PCM is unsigned, .au's signed.
        (WAVE_PCM, 8) => samples.iter_mut().for_each(|b| *b ^= 0x80),
        (_, 16..) => samples.chunks_exact_mut(width).for_each(<[u8]>::reverse),
        _ => {}
    }
    let layout = Layout {
        tag,
        bits,
        rate,
        channels,
    };
    Ok(wav(layout, &samples, declared / width * width))
}

/// A WAV of `samples`, whose header announces `declared` bytes of data (more than it holds
/// when the file was cut short, which the decoder then reports).
pub(crate) fn wav(l: Layout, samples: &[u8], declared: usize) -> Vec<u8> {
    let declared = u32::try_from(declared).unwrap_or(u32::MAX - 64);
    let block = l.channels * (l.bits / 8);
    let fmt_len: u32 = if l.tag == WAVE_PCM { 16 } else { 18 };
    let mut v = Vec::with_capacity(46 + samples.len());
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(4 + 8 + fmt_len + 8 + declared).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&fmt_len.to_le_bytes());
    v.extend_from_slice(&l.tag.to_le_bytes());
    v.extend_from_slice(&l.channels.to_le_bytes());
    v.extend_from_slice(&l.rate.to_le_bytes());
    v.extend_from_slice(&(l.rate * u32::from(block)).to_le_bytes());
    v.extend_from_slice(&block.to_le_bytes());
    v.extend_from_slice(&l.bits.to_le_bytes());
    if fmt_len == 18 {
        v.extend_from_slice(&0u16.to_le_bytes());
    }
    v.extend_from_slice(b"data");
    v.extend_from_slice(&declared.to_le_bytes());
    v.extend_from_slice(samples);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode;

    fn au(encoding: u32, rate: u32, channels: u32, body: &[u8], size: Option<u32>) -> Vec<u8> {
        let mut v = b".snd".to_vec();
        for x in [
            24,
            size.unwrap_or(body.len() as u32),
            encoding,
            rate,
            channels,
        ] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn headerless_g711_and_slin_by_extension() {
        // μ-law 0xFF and A-law 0xD5 are silence; μ-law 0x00 is the most negative sample.
        let mut ulaw = vec![0xFFu8; 800];
        ulaw[10] = 0x00;
        let a = decode(ulaw, "call.ULAW").unwrap();
        assert_eq!(
            (a.sample_rate, a.channels.len(), a.frames()),
            (8000, 1, 800)
        );
        assert!(a.channels[0][0].abs() < 1e-3);
        assert!(a.channels[0][10] < -0.9, "{}", a.channels[0][10]);
        let a = decode(vec![0xD5u8; 800], "call.alaw").unwrap();
        assert!(a.channels[0].iter().all(|s| s.abs() < 1e-3));
        let slin: Vec<u8> = (0..1600i16).flat_map(|i| (i * 10).to_le_bytes()).collect();
        let a = decode(slin, "call.sln16").unwrap();
        assert_eq!((a.sample_rate, a.frames()), (16_000, 1600));
        assert!((a.channels[0][1000] - 10_000.0 / 32768.0).abs() < 1e-4);
        assert!(as_wav(b"ID3 an mp3", Some("mp3")).is_none());
        assert!(is_pbx_audio(b"", Some("Sln")) && is_pbx_audio(b".snd\0\0\0\x18", None));
        assert!(!is_pbx_audio(b"RIFF", Some("wav")));
    }

    #[test]
    fn au_files_of_each_encoding() {
        let pcm16: Vec<u8> = (0..800i16).flat_map(|i| (i * 20).to_be_bytes()).collect();
        let a = decode(au(3, 8000, 1, &pcm16, None), "x.au").unwrap();
        assert_eq!((a.sample_rate, a.frames()), (8000, 800));
        assert!((a.channels[0][700] - 14_000.0 / 32768.0).abs() < 1e-4);
        let stereo: Vec<u8> = (0..800i16).flat_map(|i| (i - 400).to_be_bytes()).collect();
        let a = decode(au(3, 16_000, 2, &stereo, None), "x.snd").unwrap();
        assert_eq!((a.channels.len(), a.frames()), (2, 400));
        let a = decode(au(1, 8000, 1, &[0xFF; 800], Some(u32::MAX)), "x").unwrap();
        assert_eq!(a.frames(), 800);
        let a = decode(au(2, 8000, 1, &[0x40; 800], None), "x.au").unwrap();
        assert!(
            (a.channels[0][0] - 0.5).abs() < 0.01,
            "{}",
            a.channels[0][0]
        );
        let f32be: Vec<u8> = (0..800).flat_map(|_| 0.25f32.to_be_bytes()).collect();
        let a = decode(au(6, 8000, 1, &f32be, None), "x.au").unwrap();
        assert!((a.channels[0][5] - 0.25).abs() < 1e-6);
    }

    #[test]
    fn bad_au_files_say_why() {
        let e = decode(au(23, 8000, 1, &[0; 100], None), "x.au").unwrap_err();
        assert!(e.to_string().contains("encoding 23"), "{e}");
        let e = decode(au(3, 8000, 0, &[0; 100], None), "x.au").unwrap_err();
        assert!(e.to_string().contains("0 channels"), "{e}");
        let e = decode(b".snd\0\0".to_vec(), "x.au").unwrap_err();
        assert!(e.to_string().contains("cut short"), "{e}");
        // The header announces 8000 samples; the file holds 800.
        let e = decode(au(3, 8000, 1, &[0; 1600], Some(16_000)), "x.au").unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
    }
}
