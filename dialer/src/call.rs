//! One outbound call from INVITE to hangup: the call API behind `callqa dial`.
//!
//! Sends the INVITE with our SDP offer through a trunk, answers digest challenges, CANCELs on
//! ring timeout, maps final failures to outcomes, and on answer plays the prompt, records both
//! directions and hangs up after the prompt plus a tail (or when the callee hangs up, or at the
//! maximum duration). Agent campaigns bridge the answered call to an agent instead (see
//! `agent_leg`), and play the prompt only when no agent answers within the grace.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rsip::SipMessage;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{sleep_until, Instant};
use tracing::Instrument;

use crate::agent_leg::{AgentOutcome, AgentSession};
use crate::agents::AgentDesk;
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
use crate::talk::{talk_phase, Bridging};
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
    /// Agent campaigns: who took the answered call, or that it was abandoned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentOutcome>,
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
            agent: None,
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
pub(crate) enum Setup {
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

/// One SIP leg of a call: its view of the shared endpoint and where its peer is.
pub(crate) struct Leg {
    pub(crate) sip: CallLeg,
    pub(crate) peer: SocketAddr,
    pub(crate) t1: Duration,
}

impl Leg {
    pub(crate) async fn send(&self, data: &bytes::Bytes) {
        if let Err(e) = self.sip.send(data, self.peer).await {
            tracing::warn!(error = %e, "SIP send failed");
        }
    }

    pub(crate) async fn reply(&self, request: &SipMessage, code: u16, tag: &str, to: SocketAddr) {
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
    route_to_address(&trunk.name, &trunk.address).await
}

/// Where the peer `name` at `address` (host:port) is and which local address reaches it;
/// literal addresses are resolved once.
pub(crate) async fn route_to_address(
    name: &str,
    address: &str,
) -> Result<(SocketAddr, IpAddr), DialerError> {
    type Routes = HashMap<String, (SocketAddr, IpAddr)>;
    static ROUTES: OnceLock<Mutex<Routes>> = OnceLock::new();
    let routes = ROUTES.get_or_init(Default::default);
    let cached = routes.lock().ok().and_then(|r| r.get(address).copied());
    if let Some(hit) = cached {
        return Ok(hit);
    }
    let addr_err = |source| DialerError::TrunkAddress {
        trunk: name.to_string(),
        address: address.to_string(),
        source,
    };
    let peer = tokio::net::lookup_host(address)
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
    if address.parse::<SocketAddr>().is_ok() {
        if let Ok(mut r) = routes.lock() {
            r.insert(address.to_string(), (peer, ip));
        }
    }
    Ok((peer, ip))
}

/// RFC 3339 UTC with milliseconds, as call rows hold times.
fn rfc3339_ms(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub(crate) fn far_future() -> Instant {
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
    traced(cfg, req, None, store.into(), spool_dir).await
}

/// Like [`dial`], but an answered call is bridged to a free agent of `desk` (see
/// [`crate::agent_leg`]); with no agent answering within the abandon grace, the prompt plays.
pub async fn dial_with_agents(
    cfg: &DialerConfig,
    req: DialRequest,
    desk: &AgentDesk,
    store: impl Into<RecordingStore>,
    spool_dir: &Path,
) -> Result<CallReport, DialerError> {
    traced(cfg, req, Some(desk.clone()), store.into(), spool_dir).await
}

/// [`place`] in the call's tracing span.
async fn traced(
    cfg: &DialerConfig,
    req: DialRequest,
    desk: Option<AgentDesk>,
    store: RecordingStore,
    spool_dir: &Path,
) -> Result<CallReport, DialerError> {
    let span = tracing::info_span!("call", call_id = %req.call_id, number = %req.number, trunk = %req.trunk);
    place(cfg, req, desk, store, spool_dir)
        .instrument(span)
        .await
}

async fn place(
    cfg: &DialerConfig,
    req: DialRequest,
    desk: Option<AgentDesk>,
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
    let invite = dialog.invite(&target, &branch, offer);

    let started_at = Utc::now();
    let started = Instant::now();
    tracing::debug!(%peer, "INVITE");
    let ring = Ring {
        timeout: cfg.ring_timeout(),
        credentials: trunk
            .username
            .as_deref()
            .map(|u| (u, trunk.password.as_deref().unwrap_or_default())),
        stop: None,
    };
    let setup = invite_phase(&mut leg, &mut dialog, invite, ring).await?;
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
                agent: None,
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
    let (mut bridging, control) = match desk {
        Some(desk) => {
            let (control, rx) = mpsc::channel(4);
            let session = AgentSession::start(desk, &req.call_id, &req.number, leg.t1, answered);
            (Some(Bridging { session, control }), Some(rx))
        }
        None => (None, None),
    };
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
        control,
    });
    let reason = talk_phase(
        cfg,
        &mut leg,
        &mut dialog,
        done_rx,
        answered,
        bridging.as_mut(),
    )
    .await;
    let _ = stop_tx.send(true);
    let agent = match bridging {
        Some(b) => Some(b.session.finish().await),
        None => None,
    };
    let media::MediaStats {
        packets_sent,
        jitter,
        agent_jitter,
    } = media.await.unwrap_or_default();
    if let Some(j) = agent_jitter {
        tracing::debug!(
            received = j.received,
            lost = j.lost,
            late = j.late,
            "agent RTP"
        );
    }
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
        agent,
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

/// How long an INVITE may ring and how a challenge is answered.
pub(crate) struct Ring<'a> {
    /// Then CANCEL (RFC 3261 §9.1: once a provisional response came).
    pub(crate) timeout: Duration,
    /// Digest username and password, when the peer may challenge.
    pub(crate) credentials: Option<(&'a str, &'a str)>,
    /// Cancels the INVITE early when it turns true (the agent leg's caller gave up).
    pub(crate) stop: Option<watch::Receiver<bool>>,
}

/// Waits for `stop` to turn true; never, without one.
async fn stopped(stop: &mut Option<watch::Receiver<bool>>) {
    match stop {
        Some(rx) => {
            if rx.wait_for(|s| *s).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// Runs the INVITE client transaction to its end.
pub(crate) async fn invite_phase(
    leg: &mut Leg,
    dialog: &mut Dialog,
    invite: RequestSpec,
    mut ring: Ring<'_>,
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
    let mut ring_deadline = Instant::now() + ring.timeout;
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
            _ = stopped(&mut ring.stop) => {
                ring.stop = None;
                ring_deadline = ring_deadline.min(Instant::now());
            }
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
                        TxAction::Deliver(code @ (401 | 407)) if !auth_tried && ring.credentials.is_some() => {
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
                            let (username, password) = ring.credentials.unwrap_or_default();
                            let value = auth::authorization(
                                &challenge,
                                username,
                                password,
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
                                format!("no answer within {} ms; cancelled ({reason})", ring.timeout.as_millis())
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
