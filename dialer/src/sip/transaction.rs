//! RFC 3261 §17.1 client transactions over UDP, written sans-IO: they say what to send and
//! when, the call loop does the sending and the sleeping.
//!
//! INVITE: timer A retransmits from T1 doubling, timer B gives up at 64*T1, a non-2xx final
//! response is ACKed inside the transaction (and re-ACKed on retransmission). A 2xx ends the
//! transaction; its ACK is a new request built by the dialog.
//! Non-INVITE (BYE, CANCEL): timer E from T1 doubling to T2, timer F at 64*T1.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::message::RequestSpec;
use super::SipError;

/// RFC 3261 T2: the retransmit interval cap for non-INVITE requests.
pub const T2: Duration = Duration::from_secs(4);

/// What a transaction wants done after an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxAction {
    /// Put these bytes on the wire (retransmission or ACK).
    Send(Bytes),
    /// Hand this response code to the call.
    Deliver(u16),
    /// Timer B / F fired: no final response arrived.
    TimedOut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxState {
    Calling,
    Proceeding,
    Completed,
    Terminated,
}

/// INVITE client transaction.
#[derive(Debug)]
pub struct InviteTransaction {
    request: RequestSpec,
    wire: Bytes,
    pub branch: String,
    state: TxState,
    interval: Duration,
    next_a: Option<Instant>,
    deadline_b: Instant,
    ack: Option<Bytes>,
}

impl InviteTransaction {
    /// Starts the transaction; the caller sends [`Self::wire`] once right away.
    pub fn new(
        request: RequestSpec,
        branch: String,
        t1: Duration,
        now: Instant,
    ) -> Result<Self, SipError> {
        let wire = request.render()?;
        Ok(Self {
            request,
            wire,
            branch,
            state: TxState::Calling,
            interval: t1,
            next_a: Some(now + t1),
            deadline_b: now + t1 * 64,
            ack: None,
        })
    }

    pub fn wire(&self) -> Bytes {
        self.wire.clone()
    }

    /// The ACK sent for a non-2xx final response, once there was one (kept for Timer D).
    pub fn ack_wire(&self) -> Option<Bytes> {
        self.ack.clone()
    }

    pub fn request(&self) -> &RequestSpec {
        &self.request
    }

    pub fn state(&self) -> TxState {
        self.state
    }

    /// When [`Self::on_timer`] next has work.
    pub fn next_timer(&self) -> Option<Instant> {
        match self.state {
            TxState::Calling => Some(
                self.next_a
                    .map_or(self.deadline_b, |a| a.min(self.deadline_b)),
            ),
            _ => None,
        }
    }

    pub fn on_timer(&mut self, now: Instant) -> Vec<TxAction> {
        if self.state != TxState::Calling {
            return Vec::new();
        }
        if now >= self.deadline_b {
            self.state = TxState::Terminated;
            return vec![TxAction::TimedOut];
        }
        match self.next_a {
            Some(a) if now >= a => {
                self.interval *= 2;
                self.next_a = Some(now + self.interval);
                vec![TxAction::Send(self.wire.clone())]
            }
            _ => Vec::new(),
        }
    }

    /// Feeds a response whose top Via branch matched ours; `to` is its To header value.
    pub fn on_response(&mut self, code: u16, to: &str) -> Result<Vec<TxAction>, SipError> {
        match (self.state, code) {
            (TxState::Calling | TxState::Proceeding, 100..=199) => {
                self.state = TxState::Proceeding;
                self.next_a = None;
                Ok(vec![TxAction::Deliver(code)])
            }
            (TxState::Calling | TxState::Proceeding, 200..=299) => {
                self.state = TxState::Terminated;
                Ok(vec![TxAction::Deliver(code)])
            }
            (TxState::Calling | TxState::Proceeding, 300..=699) => {
                self.state = TxState::Completed;
                let ack = self.ack_for(to)?;
                self.ack = Some(ack.clone());
                Ok(vec![TxAction::Send(ack), TxAction::Deliver(code)])
            }
            // A retransmitted final response: the peer lost our ACK.
            (TxState::Completed, 300..=699) => {
                Ok(self.ack.clone().map(TxAction::Send).into_iter().collect())
            }
            _ => Ok(Vec::new()),
        }
    }

    /// RFC 3261 §17.1.1.3: same Request-URI, Via, From, Call-ID and Route as the INVITE, the
    /// response's To, CSeq method ACK.
    fn ack_for(&self, to: &str) -> Result<Bytes, SipError> {
        self.derived(rsip::Method::Ack, Some(to)).render()
    }

    /// The CANCEL for this INVITE (RFC 3261 §9.1): same branch, URI, From, To, Call-ID, CSeq
    /// number, Route.
    pub fn cancel(&self) -> RequestSpec {
        self.derived(rsip::Method::Cancel, None)
    }

    /// A request of the INVITE's transaction: its Via, From, Call-ID, Route (and To unless
    /// given), the INVITE's CSeq number with `method`, no body.
    fn derived(&self, method: rsip::Method, to: Option<&str>) -> RequestSpec {
        const KEPT: [&str; 5] = ["Via", "Max-Forwards", "From", "Call-ID", "User-Agent"];
        let number = self
            .request
            .header("CSeq")
            .and_then(|c| c.split_whitespace().next())
            .unwrap_or("1");
        let mut headers = Vec::with_capacity(self.request.headers.len());
        for (name, value) in &self.request.headers {
            let is = |n: &str| name.eq_ignore_ascii_case(n);
            if is("To") {
                headers.push((name.clone(), to.unwrap_or(value).to_string()));
            } else if is("CSeq") {
                headers.push((name.clone(), format!("{number} {method}")));
            } else if is("Route") || KEPT.iter().any(|k| is(k)) {
                headers.push((name.clone(), value.clone()));
            }
        }
        RequestSpec {
            method,
            uri: self.request.uri.clone(),
            headers,
            body: Vec::new(),
        }
    }
}

/// Non-INVITE client transaction (BYE, CANCEL).
#[derive(Debug)]
pub struct NonInviteTransaction {
    wire: Bytes,
    pub branch: String,
    state: TxState,
    interval: Duration,
    next_e: Instant,
    deadline_f: Instant,
}

impl NonInviteTransaction {
    pub fn new(
        request: &RequestSpec,
        branch: String,
        t1: Duration,
        now: Instant,
    ) -> Result<Self, SipError> {
        Ok(Self {
            wire: request.render()?,
            branch,
            state: TxState::Calling,
            interval: t1,
            next_e: now + t1,
            deadline_f: now + t1 * 64,
        })
    }

    pub fn wire(&self) -> Bytes {
        self.wire.clone()
    }

    pub fn state(&self) -> TxState {
        self.state
    }

    pub fn next_timer(&self) -> Option<Instant> {
        matches!(self.state, TxState::Calling | TxState::Proceeding)
            .then(|| self.next_e.min(self.deadline_f))
    }

    pub fn on_timer(&mut self, now: Instant) -> Vec<TxAction> {
        if !matches!(self.state, TxState::Calling | TxState::Proceeding) {
            return Vec::new();
        }
        if now >= self.deadline_f {
            self.state = TxState::Terminated;
            return vec![TxAction::TimedOut];
        }
        if now >= self.next_e {
            // Trying doubles up to T2; Proceeding retransmits every T2.
            self.interval = if self.state == TxState::Proceeding {
                T2
            } else {
                (self.interval * 2).min(T2)
            };
            self.next_e = now + self.interval;
            return vec![TxAction::Send(self.wire.clone())];
        }
        Vec::new()
    }

    pub fn on_response(&mut self, code: u16) -> Vec<TxAction> {
        match (self.state, code) {
            (TxState::Calling | TxState::Proceeding, 100..=199) => {
                self.state = TxState::Proceeding;
                Vec::new()
            }
            (TxState::Calling | TxState::Proceeding, 200..=699) => {
                self.state = TxState::Completed;
                vec![TxAction::Deliver(code)]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite() -> RequestSpec {
        RequestSpec {
            method: rsip::Method::Invite,
            uri: "sip:100@127.0.0.1:5070".into(),
            headers: vec![
                (
                    "Via".into(),
                    "SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bKaaa".into(),
                ),
                ("From".into(), "<sip:a@127.0.0.1>;tag=1".into()),
                ("To".into(), "<sip:100@127.0.0.1>".into()),
                ("Call-ID".into(), "c1".into()),
                ("CSeq".into(), "7 INVITE".into()),
                ("Content-Type".into(), "application/sdp".into()),
            ],
            body: b"v=0\r\n".to_vec(),
        }
    }

    #[test]
    fn timer_a_doubles_until_timer_b() {
        let t1 = Duration::from_millis(500);
        let start = Instant::now();
        let mut tx = InviteTransaction::new(invite(), "z9hG4bKaaa".into(), t1, start).unwrap();
        let mut sends = Vec::new();
        let mut now;
        loop {
            now = tx.next_timer().unwrap();
            let actions = tx.on_timer(now);
            if actions.contains(&TxAction::TimedOut) {
                break;
            }
            assert_eq!(actions.len(), 1);
            sends.push(now - start);
        }
        let ms: Vec<u128> = sends.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(now - start, t1 * 64);
        assert_eq!(tx.state(), TxState::Terminated);
    }

    #[test]
    fn provisional_stops_retransmits_and_failure_is_acked_once_per_retransmission() {
        let now = Instant::now();
        let mut tx = InviteTransaction::new(
            invite(),
            "z9hG4bKaaa".into(),
            Duration::from_millis(500),
            now,
        )
        .unwrap();
        assert_eq!(
            tx.on_response(180, "<sip:100@x>;tag=9").unwrap(),
            vec![TxAction::Deliver(180)]
        );
        assert_eq!(tx.next_timer(), None);
        let actions = tx.on_response(486, "<sip:100@x>;tag=9").unwrap();
        let TxAction::Send(ack) = &actions[0] else {
            panic!("expected ACK first")
        };
        let ack = std::str::from_utf8(ack).unwrap();
        assert!(ack.starts_with("ACK sip:100@127.0.0.1:5070 SIP/2.0"));
        assert!(ack.contains("CSeq: 7 ACK"));
        assert!(ack.contains("To: <sip:100@x>;tag=9"));
        assert!(ack.contains("branch=z9hG4bKaaa"));
        assert!(ack.contains("Content-Length: 0"));
        assert!(!ack.contains("Content-Type"));
        assert!(ack.ends_with("\r\n\r\n"));
        assert_eq!(actions[1], TxAction::Deliver(486));
        // The retransmitted 486 is absorbed and re-ACKed, not delivered again.
        let again = tx.on_response(486, "<sip:100@x>;tag=9").unwrap();
        assert_eq!(again.len(), 1);
        assert!(matches!(again[0], TxAction::Send(_)));
    }

    #[test]
    fn cancel_keeps_branch_and_cseq_number() {
        let tx = InviteTransaction::new(
            invite(),
            "z9hG4bKaaa".into(),
            Duration::from_millis(500),
            Instant::now(),
        )
        .unwrap();
        let c = tx.cancel();
        assert_eq!(c.header("CSeq"), Some("7 CANCEL"));
        assert_eq!(c.header("To"), Some("<sip:100@127.0.0.1>"));
        assert_eq!(c.header("Content-Type"), None);
        assert!(c.header("Via").unwrap().contains("z9hG4bKaaa"));
        assert!(c.body.is_empty());
    }

    #[test]
    fn non_invite_caps_at_t2_and_times_out_at_f() {
        let t1 = Duration::from_millis(500);
        let start = Instant::now();
        let mut tx = NonInviteTransaction::new(&invite(), "b".into(), t1, start).unwrap();
        let mut sends = Vec::new();
        loop {
            let now = tx.next_timer().unwrap();
            let actions = tx.on_timer(now);
            if actions.contains(&TxAction::TimedOut) {
                assert_eq!(now - start, t1 * 64);
                break;
            }
            sends.push((now - start).as_millis());
        }
        assert_eq!(&sends[..5], &[500, 1500, 3500, 7500, 11500]);
        let mut tx = NonInviteTransaction::new(&invite(), "b".into(), t1, start).unwrap();
        assert!(tx.on_response(100).is_empty());
        assert_eq!(tx.on_response(200), vec![TxAction::Deliver(200)]);
        assert_eq!(tx.next_timer(), None);
    }
}
