//! Reading and writing SIP messages with `rsip`: compact-header normalisation before parsing,
//! plain-string header access, and outgoing requests/responses with a correct Content-Length.

use bytes::Bytes;
use rand::Rng;
use rsip::message::HasHeaders;
use rsip::{Header, Headers, SipMessage};

use super::SipError;

const COMPACT: &[(&str, &str)] = &[
    ("i", "Call-ID"),
    ("f", "From"),
    ("t", "To"),
    ("v", "Via"),
    ("m", "Contact"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
    ("k", "Supported"),
    ("s", "Subject"),
    ("e", "Content-Encoding"),
];

/// Rewrites compact header names (`i:`, `v:` ...) to their long forms, since rsip only knows
/// the long ones, and fixes Content-Length to the body actually received.
pub fn normalize(raw: &[u8]) -> Vec<u8> {
    let split = find_subslice(raw, b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| find_subslice(raw, b"\n\n").map(|i| (i, 2)));
    let (head, body) = match split {
        Some((i, sep)) => (&raw[..i], &raw[i + sep..]),
        None => (raw, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut out = String::with_capacity(raw.len() + 64);
    for (n, line) in head.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if n > 0 {
            if let Some((name, value)) = line.split_once(':') {
                let name = name.trim();
                let long = COMPACT
                    .iter()
                    .find(|(c, _)| c.eq_ignore_ascii_case(name))
                    .map(|(_, l)| *l)
                    .unwrap_or(name);
                if long.eq_ignore_ascii_case("Content-Length") {
                    continue; // re-added below from the real body length
                }
                out.push_str(long);
                out.push_str(": ");
                out.push_str(value.trim());
                out.push_str("\r\n");
                continue;
            }
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn find_subslice(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses one datagram into a SIP message.
pub fn parse(raw: &[u8]) -> Result<SipMessage, SipError> {
    let normalized = normalize(raw);
    SipMessage::try_from(normalized.as_slice()).map_err(|e| SipError::Malformed {
        reason: e.to_string(),
    })
}

/// A header's name and raw value without formatting it (rsip's `Display` would allocate).
pub fn name_value(h: &Header) -> (&str, &str) {
    use rsip::headers::UntypedHeader;
    macro_rules! table {
        ($($variant:ident => $name:literal),* $(,)?) => {
            match h {
                $(Header::$variant(v) => ($name, v.value()),)*
                Header::Other(n, v) => (n.as_str(), v.as_str()),
            }
        };
    }
    table! {
        Accept => "Accept", AcceptEncoding => "Accept-Encoding",
        AcceptLanguage => "Accept-Language", AlertInfo => "Alert-Info", Allow => "Allow",
        AuthenticationInfo => "Authentication-Info", Authorization => "Authorization",
        CSeq => "CSeq", CallId => "Call-ID", CallInfo => "Call-Info", Contact => "Contact",
        ContentDisposition => "Content-Disposition", ContentEncoding => "Content-Encoding",
        ContentLanguage => "Content-Language", ContentLength => "Content-Length",
        ContentType => "Content-Type", Date => "Date", ErrorInfo => "Error-Info",
        Event => "Event", Expires => "Expires", From => "From", InReplyTo => "In-Reply-To",
        MaxForwards => "Max-Forwards", MimeVersion => "MIME-Version",
        MinExpires => "Min-Expires", Organization => "Organization", Priority => "Priority",
        ProxyAuthenticate => "Proxy-Authenticate", ProxyAuthorization => "Proxy-Authorization",
        ProxyRequire => "Proxy-Require", RecordRoute => "Record-Route", ReplyTo => "Reply-To",
        Require => "Require", RetryAfter => "Retry-After", Route => "Route",
        Server => "Server", Subject => "Subject", SubscriptionState => "Subscription-State",
        Supported => "Supported", Timestamp => "Timestamp", To => "To",
        Unsupported => "Unsupported", UserAgent => "User-Agent", Via => "Via",
        Warning => "Warning", WwwAuthenticate => "WWW-Authenticate",
    }
}

/// The values of a header, by its long name, in message order, borrowed from the message.
pub fn header_strs<'a>(headers: &'a Headers, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers.iter().filter_map(move |h| {
        let (n, v) = name_value(h);
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// All values of a header, by its long name, in message order.
pub fn header_values(headers: &Headers, name: &str) -> Vec<String> {
    header_strs(headers, name).map(str::to_string).collect()
}

/// The first value of a header.
pub fn header(msg: &SipMessage, name: &str) -> Option<String> {
    header_str(msg, name).map(str::to_string)
}

/// The first value of a header, borrowed.
pub fn header_str<'a>(msg: &'a SipMessage, name: &'a str) -> Option<&'a str> {
    header_strs(msg.headers(), name).next()
}

/// A required header, or the error naming it.
pub fn require(msg: &SipMessage, name: &'static str) -> Result<String, SipError> {
    header(msg, name).ok_or(SipError::MissingHeader { header: name })
}

/// A `;name=value` parameter of a header value (outside the `<...>` URI).
pub fn param(value: &str, name: &str) -> Option<String> {
    param_str(value, name).map(str::to_string)
}

/// [`param`], borrowed.
pub fn param_str<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let after_uri = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    after_uri.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The URI inside a name-addr (`"x" <sip:a@b>;tag=1` -> `sip:a@b`).
pub fn addr_uri(value: &str) -> String {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => value[a + 1..b].to_string(),
        _ => value.split(';').next().unwrap_or(value).trim().to_string(),
    }
}

/// The CSeq number and method of a message.
pub fn cseq(msg: &SipMessage) -> Result<(u32, String), SipError> {
    let v = header_str(msg, "CSeq").ok_or(SipError::MissingHeader { header: "CSeq" })?;
    let mut it = v.split_whitespace();
    let n = it
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| SipError::Malformed {
            reason: format!("CSeq {v:?}"),
        })?;
    let method = it.next().unwrap_or_default().to_ascii_uppercase();
    Ok((n, method))
}

/// The branch of the top Via.
pub fn top_branch(msg: &SipMessage) -> Option<String> {
    header_str(msg, "Via").and_then(|v| param(v, "branch"))
}

/// A fresh RFC 3261 branch (magic cookie prefix).
pub fn new_branch() -> String {
    format!("z9hG4bK{}", random_token(16))
}

pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// An outgoing request kept as parts, so transactions can derive ACK/CANCEL from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    pub method: rsip::Method,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RequestSpec {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(h) => h.1 = value,
            None => self.headers.push((name.to_string(), value)),
        }
    }

    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// Serialises the request, adding Content-Length from the body. The Request-URI is
    /// checked with `rsip`; the text is written directly (no intermediate `rsip::Request`).
    pub fn render(&self) -> Result<Bytes, SipError> {
        rsip::Uri::try_from(self.uri.as_str()).map_err(|e| SipError::Uri {
            uri: self.uri.clone(),
            reason: e.to_string(),
        })?;
        let method = self.method.to_string();
        let head_len: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum();
        let mut out =
            Vec::with_capacity(method.len() + self.uri.len() + head_len + 48 + self.body.len());
        for part in [
            method.as_bytes(),
            b" ",
            self.uri.as_bytes(),
            b" SIP/2.0\r\n",
        ] {
            out.extend_from_slice(part);
        }
        for (name, value) in &self.headers {
            if name.eq_ignore_ascii_case("Content-Length") {
                continue;
            }
            for part in [name.as_bytes(), b": ", value.as_bytes(), b"\r\n"] {
                out.extend_from_slice(part);
            }
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(&self.body);
        Ok(Bytes::from(out))
    }
}

/// A response to a request we received (BYE, OPTIONS, ...): Via/From/To/Call-ID/CSeq copied,
/// our tag added to To when the request had none.
pub fn response_to(request: &SipMessage, code: u16, local_tag: &str) -> Result<Bytes, SipError> {
    let mut headers: Vec<Header> = Vec::new();
    for via in header_values(request.headers(), "Via") {
        headers.push(Header::Other("Via".into(), via));
    }
    headers.push(Header::Other("From".into(), require(request, "From")?));
    let mut to = require(request, "To")?;
    if param(&to, "tag").is_none() {
        to = format!("{to};tag={local_tag}");
    }
    headers.push(Header::Other("To".into(), to));
    headers.push(Header::Other(
        "Call-ID".into(),
        require(request, "Call-ID")?,
    ));
    headers.push(Header::Other("CSeq".into(), require(request, "CSeq")?));
    headers.push(Header::Other("Content-Length".into(), "0".into()));
    let response = rsip::Response {
        status_code: rsip::StatusCode::from(code),
        version: rsip::Version::V2,
        headers: headers.into(),
        body: Vec::new(),
    };
    Ok(Bytes::from(response.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPACT_200: &str = "SIP/2.0 200 OK\r\n\
        v: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc\r\n\
        f: <sip:a@127.0.0.1>;tag=111\r\n\
        t: <sip:b@127.0.0.1>;tag=222\r\n\
        i: call-1@host\r\n\
        CSeq: 2 INVITE\r\n\
        m: <sip:b@127.0.0.1:5070>\r\n\
        c: application/sdp\r\n\
        l: 999\r\n\r\nv=0\r\n";

    #[test]
    fn parses_compact_headers_with_wrong_length() {
        let msg = parse(COMPACT_200.as_bytes()).unwrap();
        assert_eq!(header(&msg, "Call-ID").as_deref(), Some("call-1@host"));
        assert_eq!(
            param(&header(&msg, "To").unwrap(), "tag").as_deref(),
            Some("222")
        );
        assert_eq!(top_branch(&msg).as_deref(), Some("z9hG4bKabc"));
        assert_eq!(cseq(&msg).unwrap(), (2, "INVITE".to_string()));
        assert_eq!(
            addr_uri(&header(&msg, "Contact").unwrap()),
            "sip:b@127.0.0.1:5070"
        );
        assert_eq!(msg.body(), b"v=0\r\n");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for junk in [
            &b""[..],
            b"\x00\x01\x02",
            b"HELLO\r\n\r\n",
            b"SIP/2.0 abc\r\n",
        ] {
            assert!(parse(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn renders_request_with_content_length_and_answers_bye() {
        let spec = RequestSpec {
            method: rsip::Method::Bye,
            uri: "sip:+8613800138000@127.0.0.1:5070".into(),
            headers: vec![
                (
                    "Via".into(),
                    "SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bKx".into(),
                ),
                ("From".into(), "<sip:a@127.0.0.1>;tag=1".into()),
                ("To".into(), "<sip:b@127.0.0.1>".into()),
                ("Call-ID".into(), "c1".into()),
                ("CSeq".into(), "3 BYE".into()),
            ],
            body: b"abc".to_vec(),
        };
        let bytes = spec.render().unwrap();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.starts_with("BYE sip:+8613800138000@127.0.0.1:5070 SIP/2.0\r\n"));
        assert!(text.contains("Content-Length: 3\r\n\r\nabc"));
        let parsed = parse(&bytes).unwrap();
        let ok = response_to(&parsed, 200, "ourtag").unwrap();
        let ok = parse(&ok).unwrap();
        match &ok {
            SipMessage::Response(r) => assert_eq!(r.status_code.code(), 200),
            _ => panic!("expected a response"),
        }
        assert_eq!(
            param(&header(&ok, "To").unwrap(), "tag").as_deref(),
            Some("ourtag")
        );
        assert_eq!(cseq(&ok).unwrap().1, "BYE");
    }
}
