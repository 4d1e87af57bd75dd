//! UAC dialog state (RFC 3261 §12): Call-ID, tags, CSeq, route set and remote target, and the
//! in-dialog requests built from them (ACK for 2xx, BYE).

use rsip::SipMessage;

use super::message::{self, RequestSpec};

#[derive(Debug, Clone)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: Option<String>,
    /// Our From value without tag.
    pub local_uri: String,
    /// The To value without tag.
    pub remote_uri: String,
    pub local_cseq: u32,
    /// Where in-dialog requests go: the callee's Contact.
    pub remote_target: String,
    /// Record-Route of the 2xx, reversed (we are the UAC).
    pub route_set: Vec<String>,
    pub contact: String,
    /// `SIP/2.0/UDP host:port` without branch.
    pub via_base: String,
}

impl Dialog {
    /// Dialog-to-be for an outgoing INVITE to `target`.
    pub fn new(
        call_id: String,
        local_uri: String,
        remote_uri: String,
        contact: String,
        via_base: String,
    ) -> Self {
        Self {
            call_id,
            local_tag: message::random_token(10),
            remote_tag: None,
            remote_target: message::addr_uri(&remote_uri),
            local_uri,
            remote_uri,
            local_cseq: 1,
            route_set: Vec::new(),
            contact,
            via_base,
        }
    }

    pub fn from_value(&self) -> String {
        format!("{};tag={}", self.local_uri, self.local_tag)
    }

    pub fn to_value(&self) -> String {
        match &self.remote_tag {
            Some(tag) => format!("{};tag={tag}", self.remote_uri),
            None => self.remote_uri.clone(),
        }
    }

    /// Takes remote tag, target and route set from a 2xx (or tagged 1xx) to our INVITE.
    pub fn establish(&mut self, response: &SipMessage) {
        if let Some(tag) =
            message::header_str(response, "To").and_then(|to| message::param(to, "tag"))
        {
            self.remote_tag = Some(tag);
        }
        if let Some(contact) = message::header_str(response, "Contact") {
            self.remote_target = message::addr_uri(contact);
        }
        let mut routes: Vec<String> =
            message::header_strs(rsip::message::HasHeaders::headers(response), "Record-Route")
                .flat_map(|v| v.split(',').map(|r| r.trim().to_string()))
                .collect();
        routes.reverse();
        if !routes.is_empty() {
            self.route_set = routes;
        }
    }

    /// Whether an incoming request belongs to this dialog (Call-ID and both tags match).
    pub fn matches(&self, request: &SipMessage) -> bool {
        let call_id = message::header_str(request, "Call-ID");
        let from_tag = message::header_str(request, "From").and_then(|f| message::param(f, "tag"));
        let to_tag = message::header_str(request, "To").and_then(|t| message::param(t, "tag"));
        call_id == Some(self.call_id.as_str())
            && to_tag.as_deref() == Some(self.local_tag.as_str())
            && (self.remote_tag.is_none() || from_tag == self.remote_tag)
    }

    fn base(&self, method: rsip::Method, cseq: u32, branch: &str) -> RequestSpec {
        let mut headers = vec![
            (
                "Via".to_string(),
                format!("{};branch={branch};rport", self.via_base),
            ),
            ("Max-Forwards".to_string(), "70".to_string()),
            ("From".to_string(), self.from_value()),
            ("To".to_string(), self.to_value()),
            ("Call-ID".to_string(), self.call_id.clone()),
            ("CSeq".to_string(), format!("{cseq} {method}")),
        ];
        for route in &self.route_set {
            headers.push(("Route".to_string(), route.clone()));
        }
        RequestSpec {
            method,
            uri: self.remote_target.clone(),
            headers,
            body: Vec::new(),
        }
    }

    /// The dialog-creating INVITE to `uri` with our SDP `offer`, on transaction `branch`.
    pub fn invite(&self, uri: &str, branch: &str, offer: String) -> RequestSpec {
        let mut spec = self.base(rsip::Method::Invite, self.local_cseq, branch);
        spec.uri = uri.to_string();
        spec.headers.extend([
            ("Contact".to_string(), self.contact.clone()),
            (
                "Allow".to_string(),
                "INVITE, ACK, CANCEL, BYE, OPTIONS".to_string(),
            ),
            ("User-Agent".to_string(), "callqa-dialer".to_string()),
            ("Content-Type".to_string(), "application/sdp".to_string()),
        ]);
        spec.body = offer.into_bytes();
        spec
    }

    /// The ACK for a 2xx: a new transaction with its own branch, the INVITE's CSeq number.
    pub fn ack(&self, invite_cseq: u32) -> RequestSpec {
        self.base(rsip::Method::Ack, invite_cseq, &message::new_branch())
    }

    /// A new in-dialog request with the next CSeq; returns it with its branch.
    pub fn request(&mut self, method: rsip::Method) -> (RequestSpec, String) {
        self.local_cseq += 1;
        let branch = message::new_branch();
        (self.base(method, self.local_cseq, &branch), branch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn establishes_from_2xx_and_builds_bye() {
        let mut d = Dialog::new(
            "c1".into(),
            "<sip:+861012345678@127.0.0.1>".into(),
            "<sip:+8613800138000@127.0.0.1:5070>".into(),
            "<sip:callqa@127.0.0.1:4000>".into(),
            "SIP/2.0/UDP 127.0.0.1:4000".into(),
        );
        let ok = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bKx\r\n\
             From: <sip:+861012345678@127.0.0.1>;tag={}\r\nTo: <sip:+8613800138000@127.0.0.1:5070>;tag=far\r\n\
             Call-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <sip:uas@127.0.0.1:5999>\r\n\
             Record-Route: <sip:p1;lr>, <sip:p2;lr>\r\nContent-Length: 0\r\n\r\n",
            d.local_tag
        );
        let ok = message::parse(ok.as_bytes()).unwrap();
        d.establish(&ok);
        assert_eq!(d.remote_tag.as_deref(), Some("far"));
        assert_eq!(d.remote_target, "sip:uas@127.0.0.1:5999");
        assert_eq!(d.route_set, vec!["<sip:p2;lr>", "<sip:p1;lr>"]);
        let ack = d.ack(1);
        assert_eq!(ack.header("CSeq"), Some("1 ACK"));
        let (bye, branch) = d.request(rsip::Method::Bye);
        assert_eq!(bye.header("CSeq"), Some("2 BYE"));
        assert!(bye.header("Via").unwrap().contains(&branch));
        assert_eq!(bye.uri, "sip:uas@127.0.0.1:5999");
        assert!(bye.header("To").unwrap().ends_with(";tag=far"));
        let text = String::from_utf8(bye.render().unwrap().to_vec()).unwrap();
        assert!(text.contains("Route: <sip:p2;lr>\r\nRoute: <sip:p1;lr>"));
    }
}
