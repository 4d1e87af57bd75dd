//! An answered call's SIP side until hangup: in-dialog requests, the prompt's end and the
//! agent leg's events decide when to hang up, and whichever side is left gets a BYE.

use std::net::SocketAddr;
use std::time::Duration;

use rsip::SipMessage;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant};

use crate::agent_leg::{AgentSession, SessionEvent};
use crate::call::Leg;
use crate::config::DialerConfig;
use crate::media;
use crate::sip::dialog::Dialog;
use crate::sip::message;
use crate::sip::transaction::{NonInviteTransaction, TxAction};
use crate::sip::transport::{CSeqMethod, Received};

/// An agent campaign's answered call: the agent leg and the media task's control channel.
pub(crate) struct Bridging {
    pub(crate) session: AgentSession,
    pub(crate) control: mpsc::Sender<media::MediaCmd>,
}

/// The answered call until hangup; returns why it ended. With `bridging`, the prompt waits
/// until the agent leg gives up (abandoned), and a bridged call lasts until either side hangs
/// up; the other side then gets a BYE.
pub(crate) async fn talk_phase(
    cfg: &DialerConfig,
    leg: &mut Leg,
    dialog: &mut Dialog,
    mut prompt_done: oneshot::Receiver<Instant>,
    answered: Instant,
    mut bridging: Option<&mut Bridging>,
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
            event = next_agent_event(&mut bridging) => {
                let Some(b) = bridging.as_deref_mut() else { continue };
                match event {
                    SessionEvent::Bridged(agent_media) => {
                        prompt_pending = false;
                        let _ = b.control.send(media::MediaCmd::Bridge(agent_media)).await;
                    }
                    SessionEvent::Abandoned => {
                        let _ = b.control.send(media::MediaCmd::Play).await;
                    }
                    SessionEvent::AgentHungUp => {
                        reason = "agent hung up".to_string();
                        break;
                    }
                }
            }
            _ = sleep_until(hangup_at) => break,
            (received, from) = leg.sip.recv() => {
                if in_dialog(leg, dialog, received, from).await {
                    if let Some(b) = bridging {
                        b.session.stop();
                    }
                    return "callee hung up".to_string();
                }
            }
        }
    }
    if let Some(b) = bridging {
        b.session.stop();
    }
    hang_up(leg, dialog).await;
    reason
}

/// The next event of the agent leg; never, for a call without one.
async fn next_agent_event(bridging: &mut Option<&mut Bridging>) -> SessionEvent {
    match bridging {
        Some(b) => b.session.next().await,
        None => std::future::pending().await,
    }
}

/// Handles a SIP message within an established dialog: answers BYE, OPTIONS and the rest, and
/// re-ACKs a retransmitted 2xx. True when the peer hung up.
pub(crate) async fn in_dialog(
    leg: &Leg,
    dialog: &Dialog,
    received: Received,
    from: SocketAddr,
) -> bool {
    let Received::Message(msg) = received else {
        return false;
    };
    match &msg {
        SipMessage::Request(r) if r.method == rsip::Method::Bye => {
            let ours = dialog.matches(&msg);
            leg.reply(&msg, if ours { 200 } else { 481 }, &dialog.local_tag, from)
                .await;
            return ours;
        }
        SipMessage::Request(r) if r.method == rsip::Method::Ack => {}
        SipMessage::Request(r) => {
            let code = if r.method == rsip::Method::Options {
                200
            } else {
                501
            };
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
    false
}

/// Sends BYE and waits for its final response (or timer F), answering a crossing BYE.
pub(crate) async fn hang_up(leg: &mut Leg, dialog: &mut Dialog) {
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
