//! Benchmark media files: a test tone, mono WAV prompts, and the pcap of RTP packets SIPp's
//! `play_pcap_audio` replays as the callee's voice.

use std::path::Path;

use crate::media::FRAME;
use crate::wav;

/// A 400 Hz square wave at `amplitude`: never a zero sample, so every sample of it that
/// reaches a recording can be counted.
pub fn square_tone(samples: usize, amplitude: i16) -> Vec<i16> {
    (0..samples)
        .map(|i| {
            if (i / 10) % 2 == 0 {
                amplitude
            } else {
                -amplitude
            }
        })
        .collect()
}

/// Writes `samples` as an 8 kHz mono 16-bit WAV.
pub fn write_wav(path: &Path, samples: &[i16]) -> std::io::Result<()> {
    let mut file = wav::header(1, 8000, Some(samples.len() as u64 * 2)).to_vec();
    for s in samples {
        file.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, file)
}

/// Writes G.711 audio as a classic libpcap file (link type Ethernet) of IPv4/UDP/RTP
/// packets, `FRAME`-byte payloads every 20 ms; returns the number of packets.
pub fn write_rtp_pcap(payload: &[u8], payload_type: u8, path: &Path) -> std::io::Result<u64> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let mut packets = 0u64;
    for (i, chunk) in payload.chunks(FRAME).enumerate() {
        let mut rtp = Vec::with_capacity(12 + FRAME);
        crate::rtp::write_header(
            &mut rtp,
            payload_type,
            i == 0,
            i as u16,
            (i as u32).wrapping_mul(FRAME as u32),
            0x5eed_5eed,
        );
        rtp.extend_from_slice(chunk);
        rtp.resize(12 + FRAME, 0xFF);
        let udp_len = 8 + rtp.len();
        let mut udp = Vec::with_capacity(udp_len);
        udp.extend_from_slice(&6000u16.to_be_bytes());
        udp.extend_from_slice(&6002u16.to_be_bytes());
        udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
        udp.extend_from_slice(&0u16.to_be_bytes()); // no UDP checksum (allowed on IPv4)
        udp.extend_from_slice(&rtp);
        let ip_len = 20 + udp.len();
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&(ip_len as u16).to_be_bytes());
        ip.extend_from_slice(&(i as u16).to_be_bytes());
        ip.extend_from_slice(&[0x40, 0, 64, 17, 0, 0]);
        ip.extend_from_slice(&[127, 0, 0, 1]);
        ip.extend_from_slice(&[127, 0, 0, 1]);
        let mut sum: u32 = ip
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        while sum > 0xFFFF {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        ip.extend_from_slice(&udp);
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&0x0800u16.to_be_bytes());
        frame.extend_from_slice(&ip);
        let usec = i as u64 * 20_000;
        out.extend_from_slice(&((usec / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((usec % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
        packets += 1;
    }
    std::fs::write(path, out)?;
    Ok(packets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcap_holds_one_rtp_packet_per_20_ms() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pcap");
        let n = write_rtp_pcap(&[0x55; FRAME * 3 + 10], 0, &path).unwrap();
        assert_eq!(n, 4);
        let data = std::fs::read(&path).unwrap();
        let record = 16 + 14 + 20 + 8 + 12 + FRAME;
        assert_eq!(data.len(), 24 + 4 * record);
        // Second packet: timestamp 20 ms, RTP sequence 1, timestamp 160.
        let second = 24 + record;
        assert_eq!(&data[second + 4..second + 8], &20_000u32.to_le_bytes());
        let rtp = second + 16 + 14 + 20 + 8;
        assert_eq!(&data[rtp + 2..rtp + 4], &1u16.to_be_bytes());
        assert_eq!(&data[rtp + 4..rtp + 8], &160u32.to_be_bytes());
        assert!(square_tone(100, 3000).iter().all(|&s| s != 0));
    }
}
