//! GSM 06.10 full-rate speech (13 kbit/s, 8 kHz mono), which symphonia lacks: Microsoft's
//! GSM WAV (format tag 0x0031, Asterisk's `wav49`) and raw `.gsm` frames, as PBXs record,
//! decoded by libgsm (the reference implementation, checked against ETSI's test frames).

use std::os::raw::{c_int, c_short, c_uchar, c_void};
use std::ptr::NonNull;

#[link(name = "gsm")]
extern "C" {
    fn gsm_create() -> *mut c_void;
    fn gsm_destroy(handle: *mut c_void);
    fn gsm_option(handle: *mut c_void, option: c_int, value: *mut c_int) -> c_int;
    fn gsm_decode(handle: *mut c_void, frame: *mut c_uchar, out: *mut c_short) -> c_int;
}

/// libgsm's option for the WAV49 frame layout (two frames packed in 65 bytes).
const GSM_OPT_WAV49: c_int = 4;
/// WAV's format tag for GSM 06.10.
const WAVE_FORMAT_GSM610: u16 = 0x0031;
/// Samples per GSM frame (20 ms at 8 kHz).
const FRAME_SAMPLES: usize = 160;
/// Bytes of a raw GSM frame; its first byte's high nibble is 0xD.
const FRAME_BYTES: usize = 33;
/// Bytes of a WAV49 block: two frames of 260 bits each.
const BLOCK_BYTES: usize = 65;
/// GSM's one sample rate.
pub const GSM_RATE: u32 = 8000;

/// Decoded GSM audio: mono samples in [-1, 1], and how many seconds the header announced.
#[derive(Debug)]
pub struct GsmAudio {
    pub sample_rate: u32,
    pub samples: Vec<f32>,
    pub announced_seconds: Option<f64>,
}

/// Where a GSM WAV keeps its frames.
struct WavGsm {
    channels: u16,
    sample_rate: u32,
    /// Samples the `fact` chunk announces.
    fact_samples: Option<u32>,
    /// Byte range of the `data` chunk that the file holds, and the size its header gives.
    data: std::ops::Range<usize>,
    declared_len: usize,
}

/// GSM audio in `data`, if it is a GSM WAV or (by extension `gsm`) raw GSM frames;
/// `None` for anything else. `Err` holds the reason a GSM file cannot be decoded.
pub fn decode(data: &[u8], extension: Option<&str>) -> Option<Result<GsmAudio, String>> {
    if let Some(wav) = wav_gsm(data) {
        return Some(decode_wav49(data, &wav));
    }
    if extension.is_some_and(|e| e.eq_ignore_ascii_case("gsm")) {
        return Some(decode_raw(data));
    }
    None
}

/// Whether a recording is GSM, from its first bytes (a WAV's `fmt ` chunk, which comes
/// before its data) or its extension; browsers cannot play it.
pub fn is_gsm(head: &[u8], extension: Option<&str>) -> bool {
    extension.is_some_and(|e| e.eq_ignore_ascii_case("gsm"))
        || riff_chunks(head)
            .any(|c| c.id == b"fmt " && le16(&head[c.body], 0) == Some(WAVE_FORMAT_GSM610))
}

/// A libgsm decoder state.
struct Decoder(NonNull<c_void>);

impl Decoder {
    fn new(wav49: bool) -> Result<Self, String> {
        // SAFETY: gsm_create allocates a fresh state or returns null.
        let handle = NonNull::new(unsafe { gsm_create() })
            .ok_or_else(|| "libgsm could not allocate a decoder".to_string())?;
        let decoder = Decoder(handle);
        if wav49 {
            let mut on: c_int = 1;
            // SAFETY: a valid handle and a pointer to a live int.
            unsafe { gsm_option(decoder.0.as_ptr(), GSM_OPT_WAV49, &mut on) };
        }
        Ok(decoder)
    }

    /// Decodes one frame (33 bytes; the second frame of a WAV49 block needs 32) into 160
    /// samples; `false` when libgsm rejects it (a raw frame without GSM's signature).
    fn frame(&mut self, bytes: &[u8], out: &mut Vec<f32>) -> bool {
        let mut frame = [0u8; FRAME_BYTES];
        let n = bytes.len().min(FRAME_BYTES);
        frame[..n].copy_from_slice(&bytes[..n]);
        let mut pcm = [0 as c_short; FRAME_SAMPLES];
        // SAFETY: libgsm reads at most 33 bytes of `frame` and writes 160 samples to `pcm`.
        let rc = unsafe { gsm_decode(self.0.as_ptr(), frame.as_mut_ptr(), pcm.as_mut_ptr()) };
        if rc != 0 {
            return false;
        }
        out.extend(pcm.iter().map(|&s| f32::from(s) / 32768.0));
        true
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: the handle came from gsm_create and is destroyed once.
        unsafe { gsm_destroy(self.0.as_ptr()) }
    }
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// A chunk of a RIFF/WAVE file: its id, the length its header gives, and the byte range of
/// its body the file holds (a cut file's last chunk is short).
struct Chunk<'a> {
    id: &'a [u8],
    declared_len: usize,
    body: std::ops::Range<usize>,
}

/// The chunks of a RIFF/WAVE file in order; nothing for other files.
fn riff_chunks(data: &[u8]) -> impl Iterator<Item = Chunk<'_>> {
    let wave = data.get(0..4) == Some(b"RIFF") && data.get(8..12) == Some(b"WAVE");
    let mut at = if wave { 12 } else { usize::MAX };
    std::iter::from_fn(move || {
        let id = data.get(at..at.checked_add(4)?)?;
        let declared_len = le32(data, at + 4)? as usize;
        let start = at + 8;
        // Chunks are padded to an even length.
        at = start
            .saturating_add(declared_len)
            .saturating_add(declared_len & 1);
        Some(Chunk {
            id,
            declared_len,
            body: start.min(data.len())..start.saturating_add(declared_len).min(data.len()),
        })
    })
}

/// The layout of a RIFF/WAVE file whose `fmt ` chunk says GSM 06.10.
fn wav_gsm(data: &[u8]) -> Option<WavGsm> {
    let (mut fmt, mut fact_samples) = (None, None);
    for chunk in riff_chunks(data) {
        let body = &data[chunk.body.clone()];
        match chunk.id {
            b"fmt " => {
                if le16(body, 0)? != WAVE_FORMAT_GSM610 {
                    return None;
                }
                fmt = Some((le16(body, 2)?, le32(body, 4)?));
            }
            b"fact" => fact_samples = le32(body, 0),
            b"data" => {
                let (channels, sample_rate) = fmt?;
                return Some(WavGsm {
                    channels,
                    sample_rate,
                    fact_samples,
                    data: chunk.body,
                    declared_len: chunk.declared_len,
                });
            }
            _ => {}
        }
    }
    None
}

fn decode_wav49(data: &[u8], wav: &WavGsm) -> Result<GsmAudio, String> {
    if wav.channels != 1 {
        return Err(format!(
            "GSM 06.10 WAV with {} channels (GSM is mono)",
            wav.channels
        ));
    }
    let sample_rate = if wav.sample_rate == 0 {
        GSM_RATE
    } else {
        wav.sample_rate
    };
    let body = &data[wav.data.clone()];
    let mut decoder = Decoder::new(true)?;
    let mut samples = Vec::with_capacity(body.len() / BLOCK_BYTES * 2 * FRAME_SAMPLES);
    for block in body.chunks_exact(BLOCK_BYTES) {
        decoder.frame(&block[..FRAME_BYTES], &mut samples);
        decoder.frame(&block[FRAME_BYTES..], &mut samples);
    }
    if samples.is_empty() {
        return Err("no GSM frames in the file (truncated or corrupt)".into());
    }
    let announced = match wav.fact_samples {
        Some(n) if n > 0 => n as usize,
        _ => wav.declared_len / BLOCK_BYTES * 2 * FRAME_SAMPLES,
    };
    // The last block's padding: the fact chunk may count fewer samples than its frames hold.
    samples.truncate(announced.max(1));
    Ok(GsmAudio {
        sample_rate,
        samples,
        announced_seconds: Some(announced as f64 / f64::from(sample_rate)),
    })
}

fn decode_raw(data: &[u8]) -> Result<GsmAudio, String> {
    let frames = data.len() / FRAME_BYTES;
    if frames == 0 {
        return Err(format!(
            "not GSM 06.10: {} bytes, less than one 33-byte frame",
            data.len()
        ));
    }
    let mut decoder = Decoder::new(false)?;
    let mut samples = Vec::with_capacity(frames * FRAME_SAMPLES);
    let mut bad = 0usize;
    for frame in data.chunks_exact(FRAME_BYTES) {
        if !decoder.frame(frame, &mut samples) {
            bad += 1;
            // A frame lost keeps its place in time.
            samples.resize(samples.len() + FRAME_SAMPLES, 0.0);
        }
    }
    if bad * 10 > frames {
        return Err(format!(
            "not GSM 06.10 audio: {bad} of {frames} frames lack GSM's frame signature"
        ));
    }
    Ok(GsmAudio {
        sample_rate: GSM_RATE,
        samples,
        announced_seconds: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GSM WAV header around `blocks` WAV49 blocks of `fill`.
    fn wav49(blocks: usize, fill: u8, fact: Option<u32>, declared: Option<u32>) -> Vec<u8> {
        let len = blocks * BLOCK_BYTES;
        let mut v = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        v.extend_from_slice(&20u32.to_le_bytes());
        v.extend_from_slice(&WAVE_FORMAT_GSM610.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&8000u32.to_le_bytes());
        v.extend_from_slice(&1625u32.to_le_bytes());
        v.extend_from_slice(&65u16.to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&320u16.to_le_bytes());
        if let Some(n) = fact {
            v.extend_from_slice(b"fact");
            v.extend_from_slice(&4u32.to_le_bytes());
            v.extend_from_slice(&n.to_le_bytes());
        }
        v.extend_from_slice(b"data");
        v.extend_from_slice(&declared.unwrap_or(len as u32).to_le_bytes());
        v.extend(std::iter::repeat_n(fill, len));
        v
    }

    #[test]
    fn wav49_blocks_give_320_samples_each() {
        let a = decode(&wav49(50, 0x55, None, None), Some("wav"))
            .expect("is GSM")
            .expect("decodes");
        assert_eq!(a.sample_rate, 8000);
        assert_eq!(a.samples.len(), 50 * 320);
        assert!(a.samples.iter().any(|s| s.abs() > 1e-3), "not all silence");
    }

    #[test]
    fn fact_chunk_trims_the_padding() {
        let a = decode(&wav49(10, 0x55, Some(3000), None), None)
            .unwrap()
            .unwrap();
        assert_eq!(a.samples.len(), 3000);
    }

    #[test]
    fn announced_length_comes_from_the_header() {
        // The header announces 100 blocks; the file holds 10.
        let a = decode(&wav49(10, 0x55, None, Some(6500)), None)
            .unwrap()
            .unwrap();
        assert_eq!(a.samples.len(), 3200);
        assert_eq!(a.announced_seconds, Some(4.0));
    }

    #[test]
    fn other_wavs_and_extensions_are_not_gsm() {
        let mut pcm = wav49(1, 0, None, None);
        pcm[20] = 1; // format tag 1: PCM
        assert!(decode(&pcm, Some("wav")).is_none());
        assert!(decode(b"ID3 some mp3", Some("mp3")).is_none());
    }

    #[test]
    fn raw_frames_need_the_signature() {
        let mut good = vec![0u8; 33 * 20];
        for f in good.chunks_exact_mut(33) {
            f[0] = 0xD0;
        }
        let a = decode(&good, Some("GSM")).unwrap().unwrap();
        assert_eq!(a.samples.len(), 20 * 160);
        let e = decode(&[0x41u8; 33 * 20], Some("gsm"))
            .unwrap()
            .unwrap_err();
        assert!(e.contains("20 of 20 frames"), "{e}");
        let e = decode(&[0xD0u8; 10], Some("gsm")).unwrap().unwrap_err();
        assert!(e.contains("less than one"), "{e}");
    }

    #[test]
    fn gsm_is_told_from_the_head_of_the_file() {
        let v = wav49(4, 0x55, Some(1000), None);
        assert!(is_gsm(&v[..60], Some("wav")));
        assert!(is_gsm(b"", Some("GSM")));
        let mut pcm = v.clone();
        pcm[20] = 1;
        assert!(!is_gsm(&pcm[..60], Some("wav")));
    }

    #[test]
    fn stereo_gsm_is_refused() {
        let mut v = wav49(2, 0x55, None, None);
        v[22] = 2;
        let e = decode(&v, None).unwrap().unwrap_err();
        assert!(e.contains("2 channels"), "{e}");
    }
}
