//! Writes an 8 kHz mono WAV as a classic libpcap file of G.711 RTP packets,
//! the form SIPp's `play_pcap_audio` plays into a call.

use std::io::Write;
use std::path::Path;

use crate::error::HarnessError;
use crate::g711::{linear_to_alaw, linear_to_ulaw};
use crate::Result;

/// RTP payload type of G.711 μ-law.
pub const PCMU: u8 = 0;
/// RTP payload type of G.711 A-law.
pub const PCMA: u8 = 8;

/// Samples (and bytes) per 20 ms packet at 8 kHz.
const FRAME: usize = 160;
const ETH_LEN: usize = 14;
const IP_LEN: usize = 20;
const UDP_LEN: usize = 8;
const RTP_LEN: usize = 12;
const SSRC: u32 = 0x0CA1_10A0;
/// SIPp rewrites addresses and ports when it plays; these only need to be valid.
const SRC_PORT: u16 = 6000;
const DST_PORT: u16 = 6002;

/// Reads `wav_8k_mono` (8 kHz, mono, 16-bit) and writes `out` as RTP in
/// UDP/IPv4/Ethernet, one 160-byte payload per 20 ms, sequence +1 and
/// timestamp +160 per packet. `payload_type` is [`PCMU`] or [`PCMA`]; the last
/// frame is padded with encoded silence.
pub fn wav_to_rtp_pcap(wav_8k_mono: &Path, out: &Path, payload_type: u8) -> Result<()> {
    let encode: fn(i16) -> u8 = match payload_type {
        PCMU => linear_to_ulaw,
        PCMA => linear_to_alaw,
        other => {
            return Err(HarnessError::WavFormat {
                path: out.to_path_buf(),
                expected: "payload type 0 (PCMU) or 8 (PCMA)".into(),
                found: format!("payload type {other}"),
            })
        }
    };
    let samples = read_8k_mono(wav_8k_mono)?;
    let mut payload: Vec<u8> = samples.iter().map(|&s| encode(s)).collect();
    let padded = payload.len().div_ceil(FRAME) * FRAME;
    payload.resize(padded, encode(0));

    let mut file = Vec::with_capacity(24 + payload.len() / FRAME * (16 + 214));
    file.extend_from_slice(&global_header());
    for (index, chunk) in payload.chunks_exact(FRAME).enumerate() {
        let index = index as u32;
        let micros = u64::from(index) * 20_000;
        let frame = ethernet_frame(&rtp_packet(payload_type, index, chunk));
        file.extend_from_slice(&((micros / 1_000_000) as u32).to_le_bytes());
        file.extend_from_slice(&((micros % 1_000_000) as u32).to_le_bytes());
        file.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        file.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        file.extend_from_slice(&frame);
    }
    let mut f = std::fs::File::create(out).map_err(|e| HarnessError::io(out, e))?;
    f.write_all(&file).map_err(|e| HarnessError::io(out, e))
}

fn read_8k_mono(path: &Path) -> Result<Vec<i16>> {
    let reader = hound::WavReader::open(path).map_err(|e| HarnessError::wav(path, e))?;
    let spec = reader.spec();
    if spec.sample_rate != 8000
        || spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(HarnessError::WavFormat {
            path: path.to_path_buf(),
            expected: "8000 Hz mono 16-bit PCM".into(),
            found: format!(
                "{} Hz, {} channels, {} bits",
                spec.sample_rate, spec.channels, spec.bits_per_sample
            ),
        });
    }
    reader
        .into_samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(|e| HarnessError::wav(path, e))
}

/// libpcap global header: microsecond timestamps, snaplen 65535, link type 1 (Ethernet).
fn global_header() -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    // thiszone and sigfigs stay 0.
    h[16..20].copy_from_slice(&65535u32.to_le_bytes());
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h
}

fn rtp_packet(payload_type: u8, index: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(RTP_LEN + payload.len());
    p.push(0x80); // version 2, no padding, no extension, no CSRC
    let marker = if index == 0 { 0x80 } else { 0 }; // marks the start of a talkspurt
    p.push(marker | (payload_type & 0x7F));
    p.extend_from_slice(&(index as u16).to_be_bytes());
    p.extend_from_slice(&(index.wrapping_mul(FRAME as u32)).to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn ethernet_frame(rtp: &[u8]) -> Vec<u8> {
    let udp_len = UDP_LEN + rtp.len();
    let ip_len = IP_LEN + udp_len;
    let mut f = Vec::with_capacity(ETH_LEN + ip_len);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]); // destination MAC (locally administered)
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]); // source MAC
    f.extend_from_slice(&0x0800u16.to_be_bytes()); // IPv4

    let mut ip = [0u8; IP_LEN];
    ip[0] = 0x45; // version 4, 5-word header
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&[127, 0, 0, 1]);
    ip[16..20].copy_from_slice(&[127, 0, 0, 1]);
    let checksum = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    f.extend_from_slice(&ip);

    f.extend_from_slice(&SRC_PORT.to_be_bytes());
    f.extend_from_slice(&DST_PORT.to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]); // UDP checksum is optional over IPv4
    f.extend_from_slice(rtp);
    f
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks_exact(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_wav(path: &Path, rate: u32, samples: &[i16]) {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).expect("create wav");
        for &s in samples {
            w.write_sample(s).expect("write sample");
        }
        w.finalize().expect("finalize wav");
    }

    fn u16_be(b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    fn u32_le(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    #[test]
    fn writes_pcap_of_rtp_packets() {
        let dir = tempfile::tempdir().expect("temp dir");
        let wav = dir.path().join("in.wav");
        let pcap = dir.path().join("out.pcap");
        // 330 samples: two full frames and one padded frame.
        let samples: Vec<i16> = (0..330).map(|i| ((i % 50) * 400 - 10_000) as i16).collect();
        write_wav(&wav, 8000, &samples);
        wav_to_rtp_pcap(&wav, &pcap, PCMU).expect("pcap");
        let b = std::fs::read(&pcap).expect("read pcap");

        assert_eq!(&b[0..4], &[0xD4, 0xC3, 0xB2, 0xA1]);
        assert_eq!(u32_le(&b, 20), 1, "link type Ethernet");
        let record = 16 + ETH_LEN + IP_LEN + UDP_LEN + RTP_LEN + FRAME;
        assert_eq!(b.len(), 24 + 3 * record);

        for i in 0..3usize {
            let r = 24 + i * record;
            let micros = u64::from(u32_le(&b, r)) * 1_000_000 + u64::from(u32_le(&b, r + 4));
            assert_eq!(micros, i as u64 * 20_000);
            assert_eq!(u32_le(&b, r + 8) as usize, record - 16);
            let eth = r + 16;
            assert_eq!(u16_be(&b, eth + 12), 0x0800);
            let ip = eth + ETH_LEN;
            assert_eq!(b[ip + 9], 17);
            assert_eq!(
                ipv4_checksum(&b[ip..ip + IP_LEN]),
                0,
                "IP checksum verifies"
            );
            let udp = ip + IP_LEN;
            assert_eq!(u16_be(&b, udp + 4) as usize, UDP_LEN + RTP_LEN + FRAME);
            let rtp = udp + UDP_LEN;
            assert_eq!(b[rtp], 0x80);
            assert_eq!(b[rtp + 1] & 0x7F, PCMU);
            assert_eq!(b[rtp + 1] & 0x80 != 0, i == 0, "marker only on the first");
            assert_eq!(u16_be(&b, rtp + 2) as usize, i);
            let ts = u32::from_be_bytes([b[rtp + 4], b[rtp + 5], b[rtp + 6], b[rtp + 7]]);
            assert_eq!(ts as usize, i * FRAME);
            let payload = &b[rtp + RTP_LEN..rtp + RTP_LEN + FRAME];
            for (j, &byte) in payload.iter().enumerate() {
                let expected = samples
                    .get(i * FRAME + j)
                    .map_or(0xFF, |&s| linear_to_ulaw(s));
                assert_eq!(byte, expected, "packet {i} byte {j}");
            }
        }
    }

    #[test]
    fn alaw_payload_type_and_bytes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let wav = dir.path().join("in.wav");
        let pcap = dir.path().join("out.pcap");
        write_wav(&wav, 8000, &[1000; 160]);
        wav_to_rtp_pcap(&wav, &pcap, PCMA).expect("pcap");
        let b = std::fs::read(&pcap).expect("read pcap");
        let rtp = 24 + 16 + ETH_LEN + IP_LEN + UDP_LEN;
        assert_eq!(b[rtp + 1] & 0x7F, PCMA);
        assert!(b[rtp + RTP_LEN..]
            .iter()
            .all(|&x| x == linear_to_alaw(1000)));
    }

    #[test]
    fn rejects_wrong_rate_and_payload_type() {
        let dir = tempfile::tempdir().expect("temp dir");
        let wav = dir.path().join("in.wav");
        let pcap = dir.path().join("out.pcap");
        write_wav(&wav, 16000, &[0; 320]);
        assert!(matches!(
            wav_to_rtp_pcap(&wav, &pcap, PCMU),
            Err(HarnessError::WavFormat { .. })
        ));
        write_wav(&wav, 8000, &[0; 320]);
        assert!(wav_to_rtp_pcap(&wav, &pcap, 18).is_err());
    }
}
