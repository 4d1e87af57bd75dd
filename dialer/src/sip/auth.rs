//! HTTP digest authentication (RFC 2617 / RFC 3261 §22) for trunks that answer 401/407:
//! MD5, with or without `qop=auth`.

use md5::{Digest, Md5};

/// The parts of a `WWW-Authenticate` / `Proxy-Authenticate: Digest ...` challenge we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    /// True when the server offers `qop=auth`.
    pub qop_auth: bool,
    pub algorithm: Option<String>,
}

/// Parses a Digest challenge; `None` for other schemes or a challenge without realm/nonce.
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let rest = value.trim();
    let (scheme, params) = rest.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    let mut realm = None;
    let mut nonce = None;
    let mut opaque = None;
    let mut qop = None;
    let mut algorithm = None;
    for (k, v) in split_params(params) {
        match k.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(v),
            "nonce" => nonce = Some(v),
            "opaque" => opaque = Some(v),
            "qop" => qop = Some(v),
            "algorithm" => algorithm = Some(v),
            _ => {}
        }
    }
    Some(Challenge {
        realm: realm?,
        nonce: nonce?,
        opaque,
        qop_auth: qop.is_some_and(|q| q.split(',').any(|q| q.trim().eq_ignore_ascii_case("auth"))),
        algorithm,
    })
}

/// Splits `a="x, y", b=z` at commas outside quotes, unquoting values.
fn split_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in s.chars().chain(std::iter::once(',')) {
        match ch {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                if let Some((k, v)) = cur.split_once('=') {
                    out.push((k.trim().to_string(), v.trim().to_string()));
                }
                cur.clear();
            }
            _ => cur.push(ch),
        }
    }
    out
}

fn md5_hex(s: &str) -> String {
    let digest = Md5::digest(s.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest `response` value.
pub fn response(
    ch: &Challenge,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
) -> String {
    let ha1 = md5_hex(&format!("{username}:{}:{password}", ch.realm));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    if ch.qop_auth {
        md5_hex(&format!("{ha1}:{}:{nc:08x}:{cnonce}:auth:{ha2}", ch.nonce))
    } else {
        md5_hex(&format!("{ha1}:{}:{ha2}", ch.nonce))
    }
}

/// The `Authorization` / `Proxy-Authorization` header value answering `ch`.
pub fn authorization(
    ch: &Challenge,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
) -> String {
    let resp = response(ch, username, password, method, uri, cnonce, nc);
    let mut v = format!(
        "Digest username=\"{username}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{resp}\", algorithm=MD5",
        ch.realm, ch.nonce
    );
    if ch.qop_auth {
        v.push_str(&format!(", qop=auth, nc={nc:08x}, cnonce=\"{cnonce}\""));
    }
    if let Some(opaque) = &ch.opaque {
        v.push_str(&format!(", opaque=\"{opaque}\""));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of RFC 2617 §3.5.
    #[test]
    fn rfc2617_example() {
        let ch = parse_challenge(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        assert!(ch.qop_auth);
        assert_eq!(ch.realm, "testrealm@host.com");
        let r = response(
            &ch,
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "0a4f113b",
            1,
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
        let header = authorization(
            &ch,
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "0a4f113b",
            1,
        );
        assert!(header.contains("nc=00000001"));
        assert!(header.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
    }

    #[test]
    fn without_qop_uses_rfc2069_form_and_rejects_basic() {
        let ch = parse_challenge(r#"Digest realm="r", nonce="n""#).unwrap();
        assert!(!ch.qop_auth);
        let ha1 = md5_hex("u:r:p");
        let ha2 = md5_hex("INVITE:sip:x@y");
        assert_eq!(
            response(&ch, "u", "p", "INVITE", "sip:x@y", "c", 1),
            md5_hex(&format!("{ha1}:n:{ha2}"))
        );
        assert!(parse_challenge("Basic realm=\"r\"").is_none());
        assert!(parse_challenge("Digest qop=auth").is_none());
    }
}
