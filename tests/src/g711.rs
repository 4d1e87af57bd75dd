//! G.711 μ-law and A-law encoders (the classic Sun reference algorithm),
//! used to turn test speech into telephone RTP payloads.

/// Segment end points of μ-law on 14-bit magnitudes.
const ULAW_SEG_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
/// Segment end points of A-law on 13-bit magnitudes.
const ALAW_SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

fn segment(value: i32, ends: &[i32; 8]) -> usize {
    ends.iter().position(|&end| value <= end).unwrap_or(8)
}

/// Encodes one 16-bit linear sample as a μ-law byte (RTP payload type 0).
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84 >> 2;
    const CLIP: i32 = 8159;
    // μ-law works on 14 bits; the two low bits are below its resolution.
    let mut value = i32::from(sample) >> 2;
    let mask = if value < 0 {
        value = -value;
        0x7F
    } else {
        0xFF
    };
    let value = value.min(CLIP) + BIAS;
    let seg = segment(value, &ULAW_SEG_END);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let code = ((seg as i32) << 4) | ((value >> (seg + 1)) & 0x0F);
    (code as u8) ^ mask
}

/// Encodes one 16-bit linear sample as an A-law byte (RTP payload type 8).
pub fn linear_to_alaw(sample: i16) -> u8 {
    // A-law works on 13 bits.
    let mut value = i32::from(sample) >> 3;
    let mask = if value >= 0 {
        0xD5
    } else {
        // Negative values are offset by one so that -1 maps like +0 (sign-magnitude).
        value = -value - 1;
        0x55
    };
    let seg = segment(value, &ALAW_SEG_END);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let shift = if seg < 2 { 1 } else { seg };
    let code = ((seg as i32) << 4) | ((value >> shift) & 0x0F);
    (code as u8) ^ mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn ulaw_known_values() {
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_ulaw(-1), 0x7E);
        // First decision levels of segment 0 (step 8 in 16-bit units).
        assert_eq!(linear_to_ulaw(8), 0xFE);
        assert_eq!(linear_to_ulaw(-8), 0x7E);
    }

    #[test]
    fn alaw_known_values() {
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
        assert_eq!(linear_to_alaw(16), 0xD4);
    }

    #[test]
    fn encoders_are_monotonic_in_magnitude() {
        // Larger positive input never encodes to a smaller level.
        let ulevel = |s: i16| 0xFF - linear_to_ulaw(s);
        let alevel = |s: i16| linear_to_alaw(s) ^ 0xD5;
        for s in (0..i16::MAX).step_by(7) {
            assert!(ulevel(s) <= ulevel(s.saturating_add(7)), "μ-law at {s}");
            assert!(alevel(s) <= alevel(s.saturating_add(7)), "A-law at {s}");
        }
    }

    /// Decodes every code with sox (an independent G.711 implementation) and
    /// checks that encoding the decoded value gives the code back.
    fn roundtrip_through_sox(kind: &str, encode: fn(i16) -> u8, skip: &[u8]) {
        let dir = tempfile::tempdir().expect("temp dir");
        let codes: Vec<u8> = (0..=255).collect();
        let input = dir.path().join(format!("codes.{kind}"));
        let output = dir.path().join("linear.raw");
        std::fs::write(&input, &codes).expect("write codes");
        let status = Command::new("sox")
            .args(["-r", "8000", "-c", "1"])
            .arg(&input)
            .args(["-t", "raw", "-e", "signed", "-b", "16", "-L"])
            .arg(&output)
            .status()
            .expect("sox must be installed (apt-get install -y sox)");
        assert!(status.success());
        let raw = std::fs::read(&output).expect("read decoded");
        assert_eq!(raw.len(), 512);
        for (code, pair) in codes.iter().zip(raw.chunks_exact(2)) {
            if skip.contains(code) {
                continue;
            }
            let linear = i16::from_le_bytes([pair[0], pair[1]]);
            assert_eq!(
                encode(linear),
                *code,
                "{kind} code {code:#04x} decodes to {linear}"
            );
        }
    }

    #[test]
    fn ulaw_matches_sox_decoder() {
        // 0x7F is μ-law's "negative zero"; it decodes to 0, which encodes as 0xFF.
        roundtrip_through_sox("ul", linear_to_ulaw, &[0x7F]);
    }

    #[test]
    fn alaw_matches_sox_decoder() {
        roundtrip_through_sox("al", linear_to_alaw, &[]);
    }
}
