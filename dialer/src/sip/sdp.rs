//! The SDP offer we send (PCMU, PCMA, telephone-event at 8 kHz) and the reading of the answer:
//! where to send RTP and which codec the callee chose.

use std::net::{IpAddr, SocketAddr};

use super::SipError;
use crate::g711::Codec;

/// Our offer for an audio stream at `ip:port`.
pub fn offer(ip: IpAddr, port: u16, session_id: u64) -> String {
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    format!(
        "v=0\r\n\
         o=callqa {session_id} {session_id} IN {family} {ip}\r\n\
         s=callqa\r\n\
         c=IN {family} {ip}\r\n\
         t=0 0\r\n\
         m=audio {port} RTP/AVP 0 8 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\n\
         a=ptime:20\r\n\
         a=sendrecv\r\n"
    )
}

/// What the answer settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub rtp: SocketAddr,
    pub codec: Codec,
    pub telephone_event: Option<u8>,
}

/// Reads the first audio stream of an SDP answer; the codec is the first of its payload types
/// that we offered.
pub fn parse_answer(body: &str) -> Result<Answer, SipError> {
    let err = |reason: &str| SipError::Sdp {
        reason: reason.to_string(),
    };
    let mut session_ip: Option<IpAddr> = None;
    let mut media_ip: Option<IpAddr> = None;
    let mut audio: Option<(u16, Vec<u8>)> = None;
    let mut in_audio = false;
    let mut telephone_event = None;
    for line in body.lines().map(str::trim) {
        if let Some(c) = line.strip_prefix("c=") {
            let ip = c
                .split_whitespace()
                .nth(2)
                .and_then(|a| a.split('/').next())
                .and_then(|a| a.parse().ok());
            if in_audio {
                media_ip = ip;
            } else if audio.is_none() {
                session_ip = ip;
            }
        } else if let Some(m) = line.strip_prefix("m=") {
            let mut parts = m.split_whitespace();
            in_audio = parts.next() == Some("audio") && audio.is_none();
            if in_audio {
                let port = parts
                    .next()
                    .and_then(|p| p.split('/').next())
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| err("audio m= line without a port"))?;
                let pts = parts.skip(1).filter_map(|p| p.parse().ok()).collect();
                audio = Some((port, pts));
            }
        } else if let Some(a) = line.strip_prefix("a=rtpmap:") {
            if in_audio {
                let (pt, name) = a.split_once(' ').unwrap_or((a, ""));
                if name.to_ascii_lowercase().starts_with("telephone-event") {
                    telephone_event = pt.parse().ok();
                }
            }
        }
    }
    let (port, pts) = audio.ok_or_else(|| err("no audio stream"))?;
    if port == 0 {
        return Err(err("audio stream rejected (port 0)"));
    }
    let ip = media_ip
        .or(session_ip)
        .ok_or_else(|| err("no connection address"))?;
    let codec = pts
        .iter()
        .find_map(|&pt| Codec::from_payload_type(pt))
        .ok_or_else(|| err("no common codec (need PCMU or PCMA)"))?;
    Ok(Answer {
        rtp: SocketAddr::new(ip, port),
        codec,
        telephone_event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_lists_both_codecs_and_events() {
        let o = offer("127.0.0.1".parse().unwrap(), 40000, 7);
        assert!(o.contains("m=audio 40000 RTP/AVP 0 8 101\r\n"));
        assert!(o.contains("c=IN IP4 127.0.0.1\r\n"));
        assert!(o.contains("a=rtpmap:8 PCMA/8000"));
    }

    #[test]
    fn reads_sipp_style_answer_with_media_level_address() {
        let a = parse_answer(
            "v=0\r\no=user1 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
             m=audio 6000 RTP/AVP 8 101\r\nc=IN IP4 127.0.0.1\r\na=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\n",
        )
        .unwrap();
        assert_eq!(a.rtp, "127.0.0.1:6000".parse().unwrap());
        assert_eq!(a.codec, Codec::Pcma);
        assert_eq!(a.telephone_event, Some(101));
    }

    #[test]
    fn refuses_answers_without_usable_audio() {
        assert!(parse_answer("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 0 RTP/AVP 0\r\n").is_err());
        assert!(parse_answer("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5 RTP/AVP 18\r\n").is_err());
        assert!(parse_answer("v=0\r\nm=audio 5 RTP/AVP 0\r\n").is_err());
    }
}
