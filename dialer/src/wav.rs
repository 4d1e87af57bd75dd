//! WAV (RIFF PCM) helpers: the 44-byte header we write for recordings and a reader that turns a
//! prompt file into 8 kHz mono samples.

use std::path::Path;

use crate::error::DialerError;

/// Size of the canonical PCM header written by [`header`].
pub const HEADER_LEN: usize = 44;

/// Marks sizes not known yet; readers treat it as "until end of file".
pub const UNKNOWN_SIZE: u32 = u32::MAX;

/// A canonical PCM WAV header. `data_len = None` writes the streaming placeholders.
pub fn header(channels: u16, sample_rate: u32, data_len: Option<u64>) -> [u8; HEADER_LEN] {
    let bits: u16 = 16;
    let block_align = channels * bits / 8;
    let (riff_len, data_len) = match data_len {
        Some(n) if n + 36 <= u64::from(u32::MAX) => ((n + 36) as u32, n as u32),
        _ => (UNKNOWN_SIZE, UNKNOWN_SIZE),
    };
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&riff_len.to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes());
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&sample_rate.to_le_bytes());
    h[28..32].copy_from_slice(&(sample_rate * u32::from(block_align)).to_le_bytes());
    h[32..34].copy_from_slice(&block_align.to_le_bytes());
    h[34..36].copy_from_slice(&bits.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_len.to_le_bytes());
    h
}

/// Decoded PCM from a WAV file.
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    pub channels: u16,
    pub sample_rate: u32,
    /// Interleaved 16-bit samples.
    pub samples: Vec<i16>,
}

/// Parses a 16-bit PCM WAV held in memory.
pub fn parse(bytes: &[u8]) -> Result<Pcm, String> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let mut pos = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]) as usize;
        let body_start = pos + 8;
        let body_end = body_start.saturating_add(len).min(bytes.len());
        let body = &bytes[body_start..body_end];
        match id {
            b"fmt " => {
                if body.len() < 16 {
                    return Err("fmt chunk too short".into());
                }
                let format = u16::from_le_bytes([body[0], body[1]]);
                let channels = u16::from_le_bytes([body[2], body[3]]);
                let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                let bits = u16::from_le_bytes([body[14], body[15]]);
                fmt = Some((format, channels, rate, bits));
            }
            b"data" => {
                let (format, channels, sample_rate, bits) =
                    fmt.ok_or("data chunk before fmt chunk")?;
                // 0xFFFE is WAVE_FORMAT_EXTENSIBLE; we accept it when the samples are 16-bit.
                if !(format == 1 || format == 0xFFFE) || bits != 16 || channels == 0 {
                    return Err(format!(
                        "format {format} with {bits}-bit samples; convert to 16-bit PCM \
                         (sox in.wav -b 16 -e signed out.wav)"
                    ));
                }
                let samples = body
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]))
                    .collect();
                return Ok(Pcm {
                    channels,
                    sample_rate,
                    samples,
                });
            }
            _ => {}
        }
        pos = body_start.saturating_add(len + (len & 1));
    }
    Err("no data chunk".into())
}

impl Pcm {
    /// Averages channels and resamples linearly to `rate`; prompts are speech, so linear
    /// interpolation is good enough for a telephone band.
    pub fn to_mono(&self, rate: u32) -> Vec<i16> {
        let ch = usize::from(self.channels);
        let mono: Vec<i16> = self
            .samples
            .chunks_exact(ch)
            .map(|f| (f.iter().map(|&s| i32::from(s)).sum::<i32>() / ch as i32) as i16)
            .collect();
        if self.sample_rate == rate || mono.is_empty() {
            return mono;
        }
        let out_len = (mono.len() as u64 * u64::from(rate) / u64::from(self.sample_rate)) as usize;
        let step = f64::from(self.sample_rate) / f64::from(rate);
        (0..out_len)
            .map(|i| {
                let x = i as f64 * step;
                let i0 = x.floor() as usize;
                let frac = x - i0 as f64;
                let a = f64::from(mono[i0.min(mono.len() - 1)]);
                let b = f64::from(mono[(i0 + 1).min(mono.len() - 1)]);
                (a + (b - a) * frac).round() as i16
            })
            .collect()
    }
}

/// Reads a prompt WAV as 8 kHz mono.
pub fn read_prompt(path: &Path) -> Result<Vec<i16>, DialerError> {
    let bytes = std::fs::read(path).map_err(|e| DialerError::Prompt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let pcm = parse(&bytes).map_err(|reason| DialerError::Prompt {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(pcm.to_mono(8000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_through_parse() {
        let samples: Vec<i16> = (0..200).map(|i| (i * 100 - 10_000) as i16).collect();
        let mut file = header(2, 8000, Some(400)).to_vec();
        for s in &samples {
            file.extend_from_slice(&s.to_le_bytes());
        }
        assert_eq!(
            u32::from_le_bytes([file[4], file[5], file[6], file[7]]),
            436
        );
        let pcm = parse(&file).unwrap();
        assert_eq!(pcm.channels, 2);
        assert_eq!(pcm.sample_rate, 8000);
        assert_eq!(pcm.samples, samples);
        let streaming = header(2, 8000, None);
        assert_eq!(&streaming[40..44], &[0xFF; 4]);
    }

    #[test]
    fn downmixes_and_resamples() {
        let pcm = Pcm {
            channels: 2,
            sample_rate: 16000,
            samples: (0..3200).flat_map(|i| [i as i16, i as i16 + 2]).collect(),
        };
        let mono = pcm.to_mono(8000);
        assert_eq!(mono.len(), 1600);
        assert_eq!(mono[0], 1);
        assert_eq!(mono[10], 21);
        assert!(parse(b"RIFF\0\0\0\0WAVEjunk").is_err());
    }
}
