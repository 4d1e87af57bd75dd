//! RTP packets (RFC 3550): the fixed 12-byte header, CSRCs and padding skipped on parse.

use bytes::{BufMut, Bytes, BytesMut};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: Bytes,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RtpError {
    #[error("RTP packet of {len} bytes is shorter than its header")]
    TooShort { len: usize },
    #[error("RTP version {version}, expected 2")]
    Version { version: u8 },
    #[error("RTP padding length {padding} exceeds the payload")]
    Padding { padding: usize },
}

/// Appends the fixed 12-byte header (version 2, no padding, extension or CSRC) to `out`.
pub fn write_header(
    out: &mut impl BufMut,
    payload_type: u8,
    marker: bool,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
) {
    out.put_u8(0x80);
    out.put_u8((u8::from(marker) << 7) | (payload_type & 0x7F));
    out.put_u16(sequence);
    out.put_u32(timestamp);
    out.put_u32(ssrc);
}

impl RtpPacket {
    pub fn to_bytes(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(12 + self.payload.len());
        write_header(
            &mut b,
            self.payload_type,
            self.marker,
            self.sequence,
            self.timestamp,
            self.ssrc,
        );
        b.put_slice(&self.payload);
        b.freeze()
    }

    pub fn parse(data: &[u8]) -> Result<Self, RtpError> {
        if data.len() < 12 {
            return Err(RtpError::TooShort { len: data.len() });
        }
        let version = data[0] >> 6;
        if version != 2 {
            return Err(RtpError::Version { version });
        }
        let has_padding = data[0] & 0x20 != 0;
        let has_extension = data[0] & 0x10 != 0;
        let csrc_count = usize::from(data[0] & 0x0F);
        let mut start = 12 + 4 * csrc_count;
        if has_extension {
            if data.len() < start + 4 {
                return Err(RtpError::TooShort { len: data.len() });
            }
            let words = usize::from(u16::from_be_bytes([data[start + 2], data[start + 3]]));
            start += 4 + 4 * words;
        }
        if data.len() < start {
            return Err(RtpError::TooShort { len: data.len() });
        }
        let mut end = data.len();
        if has_padding {
            let padding = usize::from(data[end - 1]);
            if padding == 0 || end - start < padding {
                return Err(RtpError::Padding { padding });
            }
            end -= padding;
        }
        Ok(Self {
            payload_type: data[1] & 0x7F,
            marker: data[1] & 0x80 != 0,
            sequence: u16::from_be_bytes([data[2], data[3]]),
            timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            ssrc: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
            payload: Bytes::copy_from_slice(&data[start..end]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_header_fields() {
        let p = RtpPacket {
            payload_type: 8,
            marker: true,
            sequence: 65535,
            timestamp: 0xDEAD_BEEF,
            ssrc: 0x1234_5678,
            payload: Bytes::from_static(&[1, 2, 3]),
        };
        let bytes = p.to_bytes();
        assert_eq!(bytes.len(), 15);
        assert_eq!(&bytes[..4], &[0x80, 0x88, 0xFF, 0xFF]);
        assert_eq!(RtpPacket::parse(&bytes).unwrap(), p);
    }

    #[test]
    fn skips_csrc_and_padding_and_rejects_junk() {
        let mut raw = vec![0xA1, 0x00, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9];
        raw.extend_from_slice(&[0xAA; 4]); // one CSRC
        raw.extend_from_slice(&[7, 7, 0, 2]); // payload + 2 bytes padding
        let p = RtpPacket::parse(&raw).unwrap();
        assert_eq!(p.payload.as_ref(), &[7, 7]);
        assert_eq!(p.timestamp, 160);
        assert_eq!(
            RtpPacket::parse(&[0x80; 5]),
            Err(RtpError::TooShort { len: 5 })
        );
        assert_eq!(
            RtpPacket::parse(&[0x40; 12]),
            Err(RtpError::Version { version: 1 })
        );
    }
}
