//! Reads just enough of a raw SIP datagram to route it: request or response, the top Via
//! branch and the Call-ID (long or compact header names), without a full parse.

/// What a datagram is and the keys it is routed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keys<'a> {
    /// The status code of a response; `None` for a request.
    pub status: Option<u16>,
    /// The reason phrase of a response.
    pub reason: &'a str,
    /// The method of a request (empty for a response).
    pub method: &'a str,
    /// The `branch` parameter of the first Via.
    pub branch: Option<&'a str>,
    pub call_id: Option<&'a str>,
    /// CSeq number and method.
    pub cseq: Option<(u32, &'a str)>,
    /// The To header's value.
    pub to: Option<&'a str>,
}

impl Keys<'_> {
    pub fn is_response(&self) -> bool {
        self.status.is_some()
    }
}

/// The routing keys of `data`, or `None` when its start line is not SIP.
pub fn keys(data: &[u8]) -> Option<Keys<'_>> {
    let head_end = find(data, b"\r\n\r\n")
        .or_else(|| find(data, b"\n\n"))
        .unwrap_or(data.len());
    let head = std::str::from_utf8(&data[..head_end]).ok()?;
    let mut lines = head.split('\n').map(|l| l.trim_end_matches('\r'));
    let start = lines.next()?;
    let (status, reason, method) = if let Some(rest) = start.strip_prefix("SIP/2.0 ") {
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let code: u16 = code.parse().ok()?;
        if !(100..700).contains(&code) {
            return None;
        }
        (Some(code), reason.trim(), "")
    } else {
        let mut parts = start.split(' ');
        let method = parts.next()?;
        let _uri = parts.next()?;
        if parts.next()? != "SIP/2.0" || method.is_empty() {
            return None;
        }
        (None, "", method)
    };
    let mut branch = None;
    let mut call_id = None;
    let mut cseq = None;
    let mut to = None;
    let mut seen_via = false;
    for line in lines {
        if line.starts_with([' ', '\t']) {
            continue; // folded continuation
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if !seen_via && (name.eq_ignore_ascii_case("Via") || name.eq_ignore_ascii_case("v")) {
            seen_via = true;
            let first = value.split(',').next().unwrap_or(value);
            branch = first.split(';').skip(1).find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim().eq_ignore_ascii_case("branch").then_some(v.trim())
            });
        } else if call_id.is_none()
            && (name.eq_ignore_ascii_case("Call-ID") || name.eq_ignore_ascii_case("i"))
        {
            call_id = Some(value.trim());
        } else if to.is_none()
            && (name.eq_ignore_ascii_case("To") || name.eq_ignore_ascii_case("t"))
        {
            to = Some(value.trim());
        } else if cseq.is_none() && name.eq_ignore_ascii_case("CSeq") {
            let mut parts = value.split_whitespace();
            cseq = parts.next().and_then(|n| n.parse().ok()).zip(parts.next());
        }
        if seen_via && call_id.is_some() && cseq.is_some() && to.is_some() {
            break;
        }
    }
    Some(Keys {
        status,
        reason,
        method,
        branch,
        call_id,
        cseq,
        to,
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_keys_from_long_and_compact_headers() {
        let long = b"SIP/2.0 486 Busy Here\r\n\
            Via: SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bKone;rport=4000, SIP/2.0/UDP p;branch=two\r\n\
            Via: SIP/2.0/UDP q;branch=three\r\n\
            Call-ID: abc@host\r\nt: <sip:b@h>;tag=x\r\nCSeq: 1 INVITE\r\n\r\n";
        let k = keys(long).unwrap();
        assert_eq!((k.status, k.reason), (Some(486), "Busy Here"));
        assert_eq!(k.to, Some("<sip:b@h>;tag=x"));
        assert_eq!(k.branch, Some("z9hG4bKone"));
        assert_eq!(k.call_id, Some("abc@host"));
        assert_eq!(k.cseq, Some((1, "INVITE")));
        let compact = b"SIP/2.0 200 OK\nv: SIP/2.0/UDP h;BRANCH=z9hG4bKc\ni: c2\n\nv=0\n";
        let k = keys(compact).unwrap();
        assert_eq!((k.branch, k.call_id), (Some("z9hG4bKc"), Some("c2")));
    }

    #[test]
    fn request_keys_and_junk() {
        let bye = b"BYE sip:callqa@127.0.0.1:4000 SIP/2.0\r\nVia: SIP/2.0/UDP x:1;branch=b1\r\ni: c3\r\n\r\n";
        let k = keys(bye).unwrap();
        assert!(!k.is_response());
        assert_eq!((k.method, k.call_id), ("BYE", Some("c3")));
        for junk in [
            &b""[..],
            b"\x00\x01",
            b"HELLO\r\n\r\n",
            b"SIP/2.0 abc\r\n",
            b"SIP/2.0 99 x\r\n",
        ] {
            assert!(keys(junk).is_none(), "{junk:?}");
        }
    }
}
