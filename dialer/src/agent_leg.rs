//! The agent leg of an agent-campaign call: once the customer answers, a free agent's phone is
//! called (INVITE with our SDP offer, digest auth, CANCEL) and held until either side hangs up;
//! when no agent answers within the abandon grace the call is abandoned to the prompt.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};
use tracing::Instrument;

use crate::agents::{AgentDesk, AgentLease};
use crate::call::{invite_phase, route_to_address, Leg, Ring, Setup};
use crate::error::DialerError;
use crate::g711::Codec;
use crate::pacing::ABANDON_GRACE_MS;
use crate::rtp_sockets::RtpSocket;
use crate::sip::dialog::Dialog;
use crate::sip::message;
use crate::sip::sdp;
use crate::sip::transport::{CallLeg, SipEndpoint};
use crate::talk::{hang_up, in_dialog};

/// The abandon grace as a duration.
const GRACE: Duration = Duration::from_millis(ABANDON_GRACE_MS as u64);

/// The agent's side of the media, handed to the call's media task on answer.
#[derive(Debug)]
pub struct AgentMedia {
    /// Non-blocking, bound to the port our offer to the agent named.
    pub socket: UdpSocket,
    pub remote: SocketAddr,
    pub codec: Codec,
}

/// What became of the agent leg, for the call report and the campaign's booking.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentOutcome {
    /// The agent who took the call: the endpoint's user part.
    pub agent: Option<String>,
    /// No agent answered within the grace: the prompt played instead.
    pub abandoned: bool,
    /// From the customer's answer to the agent's.
    pub wait_ms: Option<u64>,
    /// Agent legs that failed, e.g. `agent1: 486 Busy Here`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub misses: Vec<String>,
}

/// What the customer's call does about the agent leg.
#[derive(Debug)]
pub enum SessionEvent {
    /// An agent answered: bridge the media.
    Bridged(AgentMedia),
    /// No agent within the grace: play the prompt.
    Abandoned,
    /// The bridged agent hung up: hang up the customer.
    AgentHungUp,
}

/// What the leg task reports.
#[derive(Debug)]
enum LegEvent {
    Answered { agent: String, media: AgentMedia },
    Missed(String),
    HungUp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    Bridged,
    Abandoned,
    Over,
}

/// The agent leg of one answered call, driven from the customer's talk phase.
pub struct AgentSession {
    events: mpsc::Receiver<LegEvent>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    answered: Instant,
    deadline: Instant,
    phase: Phase,
    outcome: AgentOutcome,
}

impl AgentSession {
    /// Starts ringing agents of `desk` for call `call_id`, answered by `customer` at `answered`.
    pub fn start(
        desk: AgentDesk,
        call_id: &str,
        customer: &str,
        t1: Duration,
        answered: Instant,
    ) -> Self {
        let (tx, events) = mpsc::channel(16);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(
            run_leg(
                desk,
                call_id.to_string(),
                customer.to_string(),
                t1,
                tx,
                stop_rx,
            )
            .instrument(tracing::info_span!("agent_leg")),
        );
        Self {
            events,
            stop,
            task,
            answered,
            deadline: answered + GRACE,
            phase: Phase::Waiting,
            outcome: AgentOutcome::default(),
        }
    }

    fn abandon(&mut self, why: &str) -> SessionEvent {
        tracing::info!(misses = ?self.outcome.misses, "abandoned: {why}; the prompt plays");
        self.phase = Phase::Abandoned;
        self.outcome.abandoned = true;
        self.stop();
        SessionEvent::Abandoned
    }

    /// The next event for the customer's call; cancel-safe. After the agent hung up or the
    /// call was abandoned, it waits forever.
    pub async fn next(&mut self) -> SessionEvent {
        loop {
            if self.phase == Phase::Over {
                return std::future::pending().await;
            }
            let waiting = self.phase == Phase::Waiting;
            let event = tokio::select! {
                e = self.events.recv() => e,
                _ = sleep_until(self.deadline), if waiting => {
                    return self.abandon("no agent answered within the grace");
                }
            };
            match event {
                None if waiting => return self.abandon("no agent left to try"),
                None => self.phase = Phase::Over,
                Some(LegEvent::Answered { agent, media }) if waiting => {
                    let wait = self.answered.elapsed();
                    tracing::info!(%agent, wait_ms = wait.as_millis() as u64, "agent answered; bridged");
                    self.phase = Phase::Bridged;
                    self.outcome.agent = Some(agent);
                    self.outcome.wait_ms = Some(wait.as_millis() as u64);
                    return SessionEvent::Bridged(media);
                }
                // Too late: the leg task sees the stop and hangs it up.
                Some(LegEvent::Answered { .. }) => {}
                Some(LegEvent::Missed(m)) => {
                    tracing::info!(miss = %m, "agent leg failed");
                    self.outcome.misses.push(m);
                }
                Some(LegEvent::HungUp) if self.phase == Phase::Bridged => {
                    self.phase = Phase::Over;
                    return SessionEvent::AgentHungUp;
                }
                Some(LegEvent::HungUp) => {}
            }
        }
    }

    /// Ends the agent leg: cancels a ringing agent, hangs up a bridged one.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Stops the leg, waits for its BYE or CANCEL to finish, and says what became of it.
    pub async fn finish(mut self) -> AgentOutcome {
        self.stop();
        while let Some(event) = self.events.recv().await {
            if let LegEvent::Missed(m) = event {
                self.outcome.misses.push(m);
            }
        }
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "agent leg task failed");
        }
        self.outcome
    }
}

/// An agent's phone that answered, with its media.
struct Answered {
    leg: Leg,
    dialog: Dialog,
    media: AgentMedia,
}

/// Rings free agents one after another (each at most once per call) until one answers or the
/// session stops it; then holds the answered leg until a hangup on either side.
async fn run_leg(
    desk: AgentDesk,
    call_id: String,
    customer: String,
    t1: Duration,
    events: mpsc::Sender<LegEvent>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tried = Vec::new();
    loop {
        let lease = tokio::select! {
            lease = desk.take(&tried) => match lease {
                Some(l) => l,
                None => return,
            },
            _ = stopped(&mut stop) => return,
        };
        tried.push(lease.index());
        let agent = lease.endpoint().name.clone();
        let leg_call_id = format!("{call_id}-agent{}", tried.len());
        let missed = match ring(&lease, &leg_call_id, &customer, t1, stop.clone()).await {
            Ok(Ok(mut answered)) => {
                if *stop.borrow() {
                    hang_up(&mut answered.leg, &mut answered.dialog).await;
                    format!("{agent}: answered after the call gave up on it; hung up")
                } else {
                    lease.bridged();
                    let Answered {
                        mut leg,
                        mut dialog,
                        media,
                    } = answered;
                    let sent = events.send(LegEvent::Answered { agent, media }).await;
                    if sent.is_err() {
                        hang_up(&mut leg, &mut dialog).await;
                    } else {
                        hold(&mut leg, &mut dialog, &mut stop, &events).await;
                    }
                    return;
                }
            }
            Ok(Err(reason)) => format!("{agent}: {reason}"),
            Err(e) => format!("{agent}: {e}"),
        };
        // The lease goes with this iteration: the agent is free for the next call.
        drop(lease);
        let _ = events.send(LegEvent::Missed(missed)).await;
    }
}

/// Calls the agent of `lease`; `Ok(Err(reason))` when the agent did not answer.
async fn ring(
    lease: &AgentLease,
    call_id: &str,
    customer: &str,
    t1: Duration,
    stop: watch::Receiver<bool>,
) -> Result<Result<Answered, String>, DialerError> {
    let ep = lease.endpoint();
    let (peer, ip) = route_to_address(&format!("agent {}", ep.name), &ep.address).await?;
    let sock_err = |what| move |source| DialerError::Socket { what, source };
    let endpoint = SipEndpoint::shared(ip).map_err(sock_err("SIP"))?;
    let rtp = RtpSocket::take(ip).map_err(sock_err("RTP"))?;
    let local = endpoint.local;
    let branch = message::new_branch();
    let mut leg = Leg {
        sip: CallLeg::open(endpoint, call_id, &branch),
        peer,
        t1,
    };
    // The agent's phone shows the customer's number.
    let mut dialog = Dialog::new(
        call_id.to_string(),
        format!("<sip:{customer}@{}>", local.ip()),
        format!("<{}>", ep.uri),
        format!("<sip:callqa@{local}>"),
        format!("SIP/2.0/UDP {local}"),
    );
    let offer = sdp::offer(ip, rtp.port(), rand::random::<u32>().into());
    let invite = dialog.invite(&ep.uri, &branch, offer);
    let ring = Ring {
        timeout: GRACE,
        credentials: lease
            .auth()
            .map(|a| (a.username.as_str(), a.password.as_str())),
        stop: Some(stop),
    };
    tracing::debug!(agent = %ep.name, %peer, "INVITE to agent");
    match invite_phase(&mut leg, &mut dialog, invite, ring).await? {
        Setup::Answered { answer, .. } => {
            let socket = rtp.into_std().map_err(sock_err("RTP"))?;
            Ok(Ok(Answered {
                leg,
                dialog,
                media: AgentMedia {
                    socket,
                    remote: answer.rtp,
                    codec: answer.codec,
                },
            }))
        }
        Setup::Ended { reason, .. } => Ok(Err(reason)),
    }
}

/// Waits until the call stops the leg (or is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The bridged agent leg until the agent hangs up (reported) or the call stops it (BYE).
async fn hold(
    leg: &mut Leg,
    dialog: &mut Dialog,
    stop: &mut watch::Receiver<bool>,
    events: &mpsc::Sender<LegEvent>,
) {
    loop {
        tokio::select! {
            _ = stopped(stop) => {
                hang_up(leg, dialog).await;
                return;
            }
            (received, from) = leg.sip.recv() => {
                if in_dialog(leg, dialog, received, from).await {
                    tracing::info!("agent hung up");
                    let _ = events.send(LegEvent::HungUp).await;
                    return;
                }
            }
        }
    }
}
