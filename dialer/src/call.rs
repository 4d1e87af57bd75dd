//! One outbound call from INVITE to hangup: the call API behind `callqa dial`.
//!
//! Sends the INVITE with our SDP offer through a trunk, answers digest challenges, CANCELs on
//! ring timeout, maps final failures to outcomes, and on answer plays the prompt, records both
//! directions and hangs up after the prompt plus a tail (or when the callee hangs up, or at the
//! maximum duration).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rsip::SipMessage;
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};
use tokio::time::{sleep_until, Instant};
use tracing::Instrument;

use crate::compliance::{self, ComplianceContext, ComplianceLookup, Refusal};
use crate::config::DialerConfig;
use crate::error::DialerError;
pub use crate::recording::RecordingInfo;
use crate::recording::{CallMeta, Recorder, RecordingStore, RecordingWriter};
use crate::rtp_sockets::RtpSocket;
use crate::sip::dialog::Dialog;
use crate::sip::message::{self, RequestSpec};
use crate::sip::transaction::{InviteTransaction, NonInviteTransaction, TxAction};
use crate::sip::transport::{self, CSeqMethod, CallLeg, Received, SipEndpoint, Status};
use crate::sip::{auth, sdp};
use crate::{media, prompt};

/// One test or campaign call.
#[derive(Debug, Clone)]
pub struct DialRequest {
    pub number: String,
    pub trunk: String,
    /// Defaults to the first registered caller ID.
    pub caller_id: Option<String>,
    /// The prompt WAV played once the call is answered.
    pub play: PathBuf,
    pub call_id: String,
    /// Object key of the stereo recording.
    pub recording_key: String,
    /// The campaign the call belongs to, kept so crash recovery can book the call.
    pub campaign: Option<String>,
}

/// How the call ended; serialises to the names in CONTRACTS.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Answered,
    Busy,
    NoAnswer,
    Rejected,
    Failed,
    Refused,
}

/// Media counters of an answered call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtpStats {
    pub packets_sent: u64,
    pub packets_received: u64,
    pub lost: u64,
    pub late: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// Customer samples that arrived after their place in the recording was written.
    pub late_samples: u64,
}

/// What `callqa dial --json` prints (plus extra fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallReport {
    pub call_id: String,
    pub outcome: Outcome,
    pub sip_code: Option<u16>,
    pub reason: String,
    pub number: String,
    pub trunk: String,
    pub started_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: DateTime<Utc>,
    /// Talk time: answer to hangup (0 when not answered).
    pub duration_ms: u64,
    /// Time from INVITE to the final response.
    pub setup_ms: u64,
    pub recording: Option<RecordingInfo>,
    pub rtp_stats: RtpStats,
    /// The trunk, not the callee, failed (5xx or no response): worth retrying on another trunk.
    #[serde(default)]
    pub trunk_failure: bool,
}

impl CallReport {
    /// The report of a dial the compliance gates refused; nothing was sent.
    pub fn refused(req: &DialRequest, refusal: &Refusal) -> Self {
        let now = Utc::now();
        Self {
            call_id: req.call_id.clone(),
            outcome: Outcome::Refused,
            sip_code: None,
            reason: refusal.reason.clone(),
            number: req.number.clone(),
            trunk: req.trunk.clone(),
            started_at: now,
            answered_at: None,
            ended_at: now,
            duration_ms: 0,
            setup_ms: 0,
            recording: None,
            rtp_stats: RtpStats::default(),
            trunk_failure: false,
        }
    }
}

/// Maps a final failure response to an outcome (RFC 3261 §21 codes).
pub fn outcome_for(code: u16) -> Outcome {
    match code {
        486 | 600 => Outcome::Busy,
        404 | 604 => Outcome::Rejected,
        408 | 480 | 487 => Outcome::NoAnswer,
        _ => Outcome::Failed,
    }
}

/// Runs the compliance gates, then dials; a refused dial sends nothing.
#[allow(clippy::too_many_arguments)]
pub async fn dial_checked(
    cfg: &DialerConfig,
    mut req: DialRequest,
    lookup: &dyn ComplianceLookup,
    consent_scope: Option<&str>,
    attempts: u32,
    store: impl Into<RecordingStore>,
    spool_dir: &Path,
) -> Result<CallReport, DialerError> {
    let caller_id = req
        .caller_id
        .clone()
        .or_else(|| cfg.caller_ids.first().cloned())
        .unwrap_or_default();
    let verdict = compliance::check(&ComplianceContext {
        number: &req.number,
        caller_id: &caller_id,
        registered_caller_ids: &cfg.caller_ids,
        calling_hours: cfg.calling_hours()?,
        now: Utc::now(),
        consent_scope,
        attempts,
        max_attempts: cfg.max_attempts,
        lookup,
    });
    match verdict {
        Ok(e164) => {
            req.number = e164;
            req.caller_id = Some(caller_id);
            dial(cfg, req, store, spool_dir).await
        }
        Err(refusal) => {
            tracing::info!(call_id = %req.call_id, kind = ?refusal.kind, reason = %refusal.reason, "dial refused");
            Ok(CallReport::refused(&req, &refusal))
        }
    }
}

/// Reason of a call whose trunk never answered the INVITE at all (timer B).
const NO_RESPONSE: &str = "no response from the trunk (timer B)";

/// How the INVITE transaction ended.
enum Setup {
    Answered {
        answer: sdp::Answer,
        code: u16,
    },
    Ended {
        outcome: Outcome,
        code: Option<u16>,
        reason: String,
    },
}

struct Leg {
    sip: CallLeg,
    peer: SocketAddr,
    t1: Duration,
}

impl Leg {
    async fn send(&self, data: &bytes::Bytes) {
        if let Err(e) = self.sip.send(data, self.peer).await {
            tracing::warn!(error = %e, "SIP send failed");
        }
    }

    async fn reply(&self, request: &SipMessage, code: u16, tag: &str, to: SocketAddr) {
        match message::response_to(request, code, tag) {
            Ok(r) => {
                if let Err(e) = self.sip.send(&r, to).await {
                    tracing::warn!(error = %e, "SIP reply failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot answer malformed request"),
        }
    }
}

/// Where a trunk is and which local address reaches it; resolved once per trunk address.
async fn route_to(trunk: &crate::config::TrunkConfig) -> Result<(SocketAddr, IpAddr), DialerError> {
    type Routes = HashMap<String, (SocketAddr, IpAddr)>;
    static ROUTES: OnceLock<Mutex<Routes>> = OnceLock::new();
    let routes = ROUTES.get_or_init(Default::default);
    let cached = routes
        .lock()
        .ok()
        .and_then(|r| r.get(&trunk.address).copied());
    if let Some(hit) = cached {
        return Ok(hit);
    }
    let addr_err = |source| DialerError::TrunkAddress {
        trunk: trunk.name.clone(),
        address: trunk.address.clone(),
        source,
    };
    let peer = tokio::net::lookup_host(&trunk.address)
        .await
        .map_err(addr_err)?
        .next()
        .ok_or_else(|| addr_err(std::io::Error::other("no address")))?;
    let ip = transport::local_ip_towards(peer)
        .await
        .map_err(|source| DialerError::Socket {
            what: "route to trunk",
            source,
        })?;
    // Names may move between DNS answers: only literal addresses are remembered.
    if trunk.address.parse::<SocketAddr>().is_ok() {
        if let Ok(mut r) = routes.lock() {
            r.insert(trunk.address.clone(), (peer, ip));
        }
    }
    Ok((peer, ip))
}

/// RFC 3339 UTC with milliseconds, as call rows hold times.
fn rfc3339_ms(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

/// Places one call and returns its report once it has ended and its recording is stored (or
/// spooled under `spool_dir`).
pub async fn dial(
    cfg: &DialerConfig,
    req: DialRequest,
    store: impl Into<RecordingStore>,
    spool_dir: &Path,
) -> Result<CallReport, DialerError> {
    let span = tracing::info_span!("call", call_id = %req.call_id, number = %req.number, trunk = %req.trunk);
    place(cfg, req, store.into(), spool_dir)
        .instrument(span)
        .await
}

async fn place(
    cfg: &DialerConfig,
    req: DialRequest,
    store: RecordingStore,
    spool_dir: &Path,
) -> Result<CallReport, DialerError> {
    let trunk = cfg.trunk(&req.trunk)?;
    let prompt = prompt::load(&req.play)?;
    let (peer, ip) = route_to(trunk).await?;
    let sock_err = |what| move |source| DialerError::Socket { what, source };
    let endpoint = SipEndpoint::shared(ip).map_err(sock_err("SIP"))?;
    let rtp = RtpSocket::take(ip).map_err(sock_err("RTP"))?;
    let rtp_port = rtp.port();
    let local = endpoint.local;
    let branch = message::new_branch();
    let mut leg = Leg {
        sip: CallLeg::open(endpoint, &req.call_id, &branch),
        peer,
        t1: Duration::from_millis(cfg.t1_ms.max(1)),
    };

    let caller = req
        .caller_id
        .clone()
        .or_else(|| cfg.caller_ids.first().cloned())
        .unwrap_or_else(|| "anonymous".to_string());
    let target = format!("sip:{}@{}", req.number, trunk.address);
    let mut dialog = Dialog::new(
        req.call_id.clone(),
        format!("<sip:{caller}@{}>", local.ip()),
        format!("<{target}>"),
        format!("<sip:callqa@{local}>"),
        format!("SIP/2.0/UDP {local}"),
    );
    let offer = sdp::offer(ip, rtp_port, rand::random::<u32>().into());
    let invite = RequestSpec {
        method: rsip::Method::Invite,
        uri: target.clone(),
        headers: vec![
            (
                "Via".into(),
                format!("{};branch={branch};rport", dialog.via_base),
            ),
            ("Max-Forwards".into(), "70".into()),
            ("From".into(), dialog.from_value()),
            ("To".into(), dialog.to_value()),
            ("Call-ID".into(), dialog.call_id.clone()),
            ("CSeq".into(), format!("{} INVITE", dialog.local_cseq)),
            ("Contact".into(), dialog.contact.clone()),
            ("Allow".into(), "INVITE, ACK, CANCEL, BYE, OPTIONS".into()),
            ("User-Agent".into(), "callqa-dialer".into()),
            ("Content-Type".into(), "application/sdp".into()),
        ],
        body: offer.into_bytes(),
    };

    let started_at = Utc::now();
    let started = Instant::now();
    tracing::debug!(%peer, "INVITE");
    let setup = invite_phase(cfg, trunk, &mut leg, &mut dialog, invite).await?;
    let setup_ms = started.elapsed().as_millis() as u64;
    let (answer, code) = match setup {
        Setup::Ended {
            outcome,
            code,
            reason,
        } => {
            tracing::debug!(?outcome, ?code, %reason, "call not answered");
            let trunk_failure = matches!(code, Some(500..=599)) || reason == NO_RESPONSE;
            return Ok(CallReport {
                call_id: req.call_id,
                outcome,
                sip_code: code,
                reason,
                number: req.number,
                trunk: req.trunk,
                started_at,
                answered_at: None,
                ended_at: Utc::now(),
                duration_ms: 0,
                setup_ms,
                recording: None,
                rtp_stats: RtpStats::default(),
                trunk_failure,
            });
        }
        Setup::Answered { answer, code } => (answer, code),
    };

    let answered_at = Utc::now();
    let answered = Instant::now();
    tracing::debug!(rtp = %answer.rtp, codec = ?answer.codec, "answered");
    let rtp = rtp.into_std().map_err(sock_err("RTP"))?;
    let meta = CallMeta {
        campaign: req.campaign.clone(),
        customer: req.number.clone(),
        caller_id: Some(caller.clone()),
        trunk: Some(req.trunk.clone()).filter(|t| !t.is_empty()),
        started_at: rfc3339_ms(started_at),
        answered_at: rfc3339_ms(answered_at),
    };
    let writer = RecordingWriter::create_live(
        store,
        &req.recording_key,
        &req.call_id,
        spool_dir,
        cfg.part_size,
        meta,
    )
    .await?;
    let recorder = Recorder::start(writer, answered);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, done_rx) = oneshot::channel();
    let media = media::spawn(media::MediaLeg {
        socket: rtp,
        remote: answer.rtp,
        codec: answer.codec,
        prompt,
        jitter_depth: cfg.jitter_depth,
        answered,
        record: recorder.sender(),
        prompt_done: done_tx,
        stop: stop_rx,
    });
    let reason = talk_phase(cfg, &mut leg, &mut dialog, done_rx, answered).await;
    let _ = stop_tx.send(true);
    let media::MediaStats {
        packets_sent,
        jitter,
    } = media.await.unwrap_or_default();
    let ended_at = Utc::now();
    let duration_ms = answered.elapsed().as_millis() as u64;
    let (recording, late_samples) = recorder.finish().await?;
    tracing::info!(%reason, duration_ms, key = %recording.key, spooled = recording.spooled, "call ended");
    Ok(CallReport {
        call_id: req.call_id,
        outcome: Outcome::Answered,
        sip_code: Some(code),
        reason,
        number: req.number,
        trunk: req.trunk,
        started_at,
        answered_at: Some(answered_at),
        ended_at,
        duration_ms,
        setup_ms,
        recording: Some(recording),
        rtp_stats: RtpStats {
            packets_sent,
            packets_received: jitter.received,
            lost: jitter.lost,
            late: jitter.late,
            duplicates: jitter.duplicates,
            reordered: jitter.reordered,
            late_samples,
        },
        trunk_failure: false,
    })
}

/// A response to one of our requests, read in full or by the fast path (see [`Received`]).
struct View<'a> {
    code: u16,
    cseq: u32,
    method: CSeqMethod,
    branch: &'a str,
    to: &'a str,
    /// The reason phrase, when read by the fast path.
    phrase: Option<&'a str>,
    /// The parsed message, when read in full.
    msg: Option<&'a SipMessage>,
}

impl<'a> View<'a> {
    fn of_status(s: &'a Status) -> Self {
        Self {
            code: s.code,
            cseq: s.cseq,
            method: s.method,
            branch: s.branch(),
            to: s.to(),
            phrase: Some(s.reason()),
            msg: None,
        }
    }

    /// `None` for a request or a response without a readable CSeq.
    fn of_message(msg: &'a SipMessage) -> Option<Self> {
        let SipMessage::Response(r) = msg else {
            return None;
        };
        let (cseq, method) = message::cseq(msg).ok()?;
        Some(Self {
            code: r.status_code.code(),
            cseq,
            method: CSeqMethod::from_name(&method),
            branch: message::header_str(msg, "Via")
                .and_then(|v| message::param_str(v, "branch"))
                .unwrap_or_default(),
            to: message::header_str(msg, "To").unwrap_or_default(),
            phrase: None,
            msg: Some(msg),
        })
    }

    /// "486 Busy Here": the code and the peer's reason phrase.
    fn reason(&self) -> String {
        match (self.phrase, self.msg) {
            (Some(p), _) if !p.is_empty() => format!("{} {p}", self.code),
            (_, Some(SipMessage::Response(r))) => r.status_code.to_string(),
            _ => self.code.to_string(),
        }
    }
}

/// Runs the INVITE client transaction to its end.
async fn invite_phase(
    cfg: &DialerConfig,
    trunk: &crate::config::TrunkConfig,
    leg: &mut Leg,
    dialog: &mut Dialog,
    invite: RequestSpec,
) -> Result<Setup, DialerError> {
    let fail = |reason: String| DialerError::Socket {
        what: "SIP message",
        source: std::io::Error::other(reason),
    };
    let branch =
        message::param(invite.header("Via").unwrap_or_default(), "branch").unwrap_or_default();
    let mut ict = InviteTransaction::new(invite, branch, leg.t1, Instant::now())
        .map_err(|e| fail(e.to_string()))?;
    leg.send(&ict.wire()).await;
    let mut ring_deadline = Instant::now() + cfg.ring_timeout();
    let mut provisional = false;
    let mut want_cancel = false;
    let mut cancel: Option<NonInviteTransaction> = None;
    let mut give_up = far_future();
    let mut auth_tried = false;
    loop {
        let next = [
            ict.next_timer(),
            cancel.as_ref().and_then(NonInviteTransaction::next_timer),
            Some(ring_deadline),
            Some(give_up),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or_else(far_future);
        tokio::select! {
            _ = sleep_until(next) => {
                let now = Instant::now();
                for action in ict.on_timer(now) {
                    match action {
                        TxAction::Send(b) => leg.send(&b).await,
                        TxAction::TimedOut => {
                            return Ok(Setup::Ended { outcome: Outcome::NoAnswer, code: None, reason: NO_RESPONSE.into() });
                        }
                        TxAction::Deliver(_) => {}
                    }
                }
                if let Some(c) = cancel.as_mut() {
                    for action in c.on_timer(now) {
                        if let TxAction::Send(b) = action {
                            leg.send(&b).await;
                        }
                    }
                }
                if now >= ring_deadline {
                    ring_deadline = far_future();
                    want_cancel = true;
                    // After CANCEL, allow 64*T1 for the 487 before giving up on the trunk.
                    give_up = now + leg.t1 * 64;
                }
                if now >= give_up {
                    return Ok(Setup::Ended { outcome: Outcome::NoAnswer, code: None, reason: "ring timeout; no answer to CANCEL".into() });
                }
            }
            (received, from) = leg.sip.recv() => {
                let status;
                let parsed;
                let view = match received {
                    Received::Message(SipMessage::Request(request)) => {
                        // Nothing but OPTIONS is expected before the answer.
                        let code = if request.method == rsip::Method::Options { 200 } else { 481 };
                        if request.method != rsip::Method::Ack {
                            leg.reply(&SipMessage::Request(request), code, &dialog.local_tag, from).await;
                        }
                        continue;
                    }
                    Received::Message(msg) => {
                        parsed = msg;
                        let Some(view) = View::of_message(&parsed) else { continue };
                        view
                    }
                    Received::Status(s) => {
                        status = s;
                        View::of_status(&status)
                    }
                };
                if view.method == CSeqMethod::Cancel {
                    if let Some(c) = cancel.as_mut() {
                        c.on_response(view.code);
                    }
                    continue;
                }
                if view.method != CSeqMethod::Invite {
                    continue;
                }
                if view.branch != ict.branch {
                    // A 2xx retransmission for an earlier INVITE of ours: ACK it again.
                    if (200..300).contains(&view.code) && view.cseq < dialog.local_cseq {
                        leg.send(&dialog.ack(view.cseq).render().map_err(|e| fail(e.to_string()))?).await;
                    }
                    continue;
                }
                let actions = ict.on_response(view.code, view.to).map_err(|e| fail(e.to_string()))?;
                for action in actions {
                    match action {
                        TxAction::Send(b) => leg.send(&b).await,
                        TxAction::TimedOut => {}
                        TxAction::Deliver(code) if code < 200 => {
                            tracing::debug!(code, "provisional");
                            provisional = true;
                        }
                        TxAction::Deliver(code) if code < 300 => {
                            // 2xx are always parsed in full (View::of_status never sees them).
                            let Some(msg @ SipMessage::Response(r)) = view.msg else { continue };
                            dialog.establish(msg);
                            leg.send(&dialog.ack(view.cseq).render().map_err(|e| fail(e.to_string()))?).await;
                            if cancel.is_some() {
                                // Answered as we cancelled: hang up right away.
                                let (bye, branch) = dialog.request(rsip::Method::Bye);
                                if let Ok(tx) = NonInviteTransaction::new(&bye, branch, leg.t1, Instant::now()) {
                                    leg.send(&tx.wire()).await;
                                }
                                return Ok(Setup::Ended { outcome: Outcome::NoAnswer, code: Some(code), reason: "answered after ring timeout; hung up".into() });
                            }
                            let body = String::from_utf8_lossy(r.body());
                            return match sdp::parse_answer(&body) {
                                Ok(answer) => Ok(Setup::Answered { answer, code }),
                                Err(e) => {
                                    let (bye, branch) = dialog.request(rsip::Method::Bye);
                                    if let Ok(tx) = NonInviteTransaction::new(&bye, branch, leg.t1, Instant::now()) {
                                        leg.send(&tx.wire()).await;
                                    }
                                    Ok(Setup::Ended { outcome: Outcome::Failed, code: Some(code), reason: format!("answered without usable media: {e}") })
                                }
                            };
                        }
                        TxAction::Deliver(code @ (401 | 407)) if !auth_tried && trunk.username.is_some() => {
                            auth_tried = true;
                            let header = if code == 401 { "WWW-Authenticate" } else { "Proxy-Authenticate" };
                            let challenge = view
                                .msg
                                .and_then(|m| message::header_str(m, header))
                                .and_then(auth::parse_challenge);
                            let Some(challenge) = challenge else {
                                return Ok(Setup::Ended { outcome: Outcome::Failed, code: Some(code), reason: format!("{code} without a usable digest challenge") });
                            };
                            let mut next = ict.request().clone();
                            dialog.local_cseq += 1;
                            let branch = message::new_branch();
                            next.set_header("Via", format!("{};branch={branch};rport", dialog.via_base));
                            next.set_header("CSeq", format!("{} INVITE", dialog.local_cseq));
                            let value = auth::authorization(
                                &challenge,
                                trunk.username.as_deref().unwrap_or_default(),
                                trunk.password.as_deref().unwrap_or_default(),
                                "INVITE",
                                &next.uri,
                                &message::random_token(12),
                                1,
                            );
                            next.set_header(if code == 401 { "Authorization" } else { "Proxy-Authorization" }, value);
                            leg.sip.add_branch(&branch);
                            ict = InviteTransaction::new(next, branch, leg.t1, Instant::now()).map_err(|e| fail(e.to_string()))?;
                            leg.send(&ict.wire()).await;
                            tracing::info!(code, "answered digest challenge");
                        }
                        TxAction::Deliver(code) => {
                            if let Some(ack) = ict.ack_wire() {
                                leg.sip.linger(&ict.branch, ack, leg.peer);
                            }
                            let reason = view.reason();
                            let outcome = if code == 487 && cancel.is_some() { Outcome::NoAnswer } else { outcome_for(code) };
                            let reason = if outcome == Outcome::NoAnswer && cancel.is_some() {
                                format!("no answer within {} ms; cancelled ({reason})", cfg.ring_timeout_ms)
                            } else {
                                reason
                            };
                            return Ok(Setup::Ended { outcome, code: Some(code), reason });
                        }
                    }
                }
            }
        }
        cancel_if_due(&mut cancel, want_cancel && provisional, &ict, leg).await;
    }
}

/// Sends the CANCEL once it is due (RFC 3261 §9.1: only after a provisional response).
async fn cancel_if_due(
    cancel: &mut Option<NonInviteTransaction>,
    due: bool,
    ict: &InviteTransaction,
    leg: &Leg,
) {
    if !due || cancel.is_some() {
        return;
    }
    let spec = ict.cancel();
    match NonInviteTransaction::new(&spec, ict.branch.clone(), leg.t1, Instant::now()) {
        Ok(tx) => {
            tracing::info!("ring timeout: CANCEL");
            leg.send(&tx.wire()).await;
            *cancel = Some(tx);
        }
        Err(e) => tracing::warn!(error = %e, "cannot build CANCEL"),
    }
}

/// The answered call until hangup; returns why it ended.
async fn talk_phase(
    cfg: &DialerConfig,
    leg: &mut Leg,
    dialog: &mut Dialog,
    mut prompt_done: oneshot::Receiver<Instant>,
    answered: Instant,
) -> String {
    let max_end = answered + Duration::from_millis(cfg.max_duration_ms);
    let mut hangup_at = max_end;
    let mut prompt_pending = true;
    let mut reason = format!("maximum call duration {} ms reached", cfg.max_duration_ms);
    loop {
        tokio::select! {
            done = &mut prompt_done, if prompt_pending => {
                prompt_pending = false;
                if let Ok(at) = done {
                    hangup_at = (at + Duration::from_millis(cfg.tail_ms)).min(max_end);
                    if hangup_at < max_end {
                        reason = "prompt played; hung up after the tail".to_string();
                    }
                }
            }
            _ = sleep_until(hangup_at) => break,
            (received, from) = leg.sip.recv() => {
                let Received::Message(msg) = received else { continue };
                match &msg {
                    SipMessage::Request(r) if r.method == rsip::Method::Bye => {
                        leg.reply(&msg, if dialog.matches(&msg) { 200 } else { 481 }, &dialog.local_tag, from).await;
                        if dialog.matches(&msg) {
                            return "callee hung up".to_string();
                        }
                    }
                    SipMessage::Request(r) if r.method == rsip::Method::Ack => {}
                    SipMessage::Request(r) => {
                        let code = if r.method == rsip::Method::Options { 200 } else { 501 };
                        leg.reply(&msg, code, &dialog.local_tag, from).await;
                    }
                    SipMessage::Response(r) => {
                        // The 200 to our INVITE again: our ACK was lost.
                        if let Ok((cseq, method)) = message::cseq(&msg) {
                            if method == "INVITE" && (200..300).contains(&r.status_code.code()) {
                                if let Ok(ack) = dialog.ack(cseq).render() {
                                    leg.send(&ack).await;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    hang_up(leg, dialog).await;
    reason
}

/// Sends BYE and waits for its final response (or timer F), answering a crossing BYE.
async fn hang_up(leg: &mut Leg, dialog: &mut Dialog) {
    let (bye, branch) = dialog.request(rsip::Method::Bye);
    leg.sip.add_branch(&branch);
    let Ok(mut tx) = NonInviteTransaction::new(&bye, branch.clone(), leg.t1, Instant::now()) else {
        tracing::warn!("cannot build BYE");
        return;
    };
    leg.send(&tx.wire()).await;
    loop {
        let Some(next) = tx.next_timer() else { return };
        tokio::select! {
            _ = sleep_until(next) => {
                for action in tx.on_timer(Instant::now()) {
                    match action {
                        TxAction::Send(b) => leg.send(&b).await,
                        TxAction::TimedOut => {
                            tracing::warn!("no answer to BYE (timer F)");
                            return;
                        }
                        TxAction::Deliver(_) => {}
                    }
                }
            }
            (received, from) = leg.sip.recv() => {
                let msg = match received {
                    Received::Message(msg) => msg,
                    Received::Status(st) => {
                        if st.branch() == branch && st.method == CSeqMethod::Bye && tx.on_response(st.code).iter().any(|a| matches!(a, TxAction::Deliver(_))) {
                            return;
                        }
                        continue;
                    }
                };
                let finished = match &msg {
                    SipMessage::Response(r) if message::top_branch(&msg).as_deref() == Some(branch.as_str()) => tx
                        .on_response(r.status_code.code())
                        .iter()
                        .any(|a| matches!(a, TxAction::Deliver(_))),
                    SipMessage::Request(r) if r.method == rsip::Method::Bye => {
                        leg.reply(&msg, 200, &dialog.local_tag, from).await;
                        false
                    }
                    _ => false,
                };
                if finished {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_codes_map_to_outcomes() {
        assert_eq!(outcome_for(486), Outcome::Busy);
        assert_eq!(outcome_for(600), Outcome::Busy);
        assert_eq!(outcome_for(404), Outcome::Rejected);
        assert_eq!(outcome_for(604), Outcome::Rejected);
        assert_eq!(outcome_for(480), Outcome::NoAnswer);
        assert_eq!(outcome_for(408), Outcome::NoAnswer);
        assert_eq!(outcome_for(503), Outcome::Failed);
        assert_eq!(outcome_for(403), Outcome::Failed);
        assert_eq!(
            serde_json::to_string(&Outcome::NoAnswer).unwrap(),
            "\"no_answer\""
        );
    }
}
