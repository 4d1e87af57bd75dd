//! The RTP legs of an answered call: a paced sender playing the prompt (then silence) and a
//! receiver that reorders, decodes and hands the customer's audio to the recorder.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::g711::Codec;
use crate::jitter::{JitterBuffer, JitterStats};
use crate::recording::{RecordCmd, SAMPLE_RATE};
use crate::rtp::RtpPacket;

/// Samples per 20 ms packet at 8 kHz.
pub const FRAME: usize = 160;

/// Plays `prompt` to `remote` as 20 ms packets, then silence until `stop`; records what it
/// sends on channel 0. `prompt_done` fires when the last prompt packet left. Returns the
/// number of packets sent.
pub fn spawn_sender(
    socket: Arc<UdpSocket>,
    remote: SocketAddr,
    codec: Codec,
    prompt: Vec<i16>,
    record: mpsc::Sender<RecordCmd>,
    prompt_done: oneshot::Sender<Instant>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<u64> {
    tokio::spawn(async move {
        let (mut seq, mut ts, ssrc) = {
            let mut rng = rand::thread_rng();
            (rng.gen::<u16>(), rng.gen::<u32>(), rng.gen::<u32>())
        };
        let mut ticker = tokio::time::interval(Duration::from_millis(20));
        // Keep the media clock: after a stall, catch up so packet n still covers 20n ms.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut prompt_done = Some(prompt_done);
        let silence = [0i16; FRAME];
        let mut sent = 0u64;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.changed() => break,
            }
            let start = sent as usize * FRAME;
            let frame: Vec<i16> = if start < prompt.len() {
                let mut f = prompt[start..(start + FRAME).min(prompt.len())].to_vec();
                f.resize(FRAME, 0);
                f
            } else {
                if let Some(done) = prompt_done.take() {
                    let _ = done.send(Instant::now());
                }
                silence.to_vec()
            };
            let packet = RtpPacket {
                payload_type: codec.payload_type(),
                marker: sent == 0,
                sequence: seq,
                timestamp: ts,
                ssrc,
                payload: Bytes::from(codec.encode(&frame)),
            };
            if let Err(e) = socket.send_to(&packet.to_bytes(), remote).await {
                tracing::debug!(error = %e, "RTP send failed");
            }
            // Waiting here when storage is slow is fine: the Burst ticker catches up after.
            let _ = record
                .send(RecordCmd::Samples {
                    channel: 0,
                    pos: start as u64,
                    samples: frame,
                })
                .await;
            sent += 1;
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(FRAME as u32);
        }
        sent
    })
}

/// Receives the callee's RTP until `stop`; records it on channel 1, aligned by timestamp to
/// the arrival time of the first packet relative to `answered`.
pub fn spawn_receiver(
    socket: Arc<UdpSocket>,
    jitter_depth: usize,
    answered: Instant,
    record: mpsc::Sender<RecordCmd>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<JitterStats> {
    tokio::spawn(async move {
        let mut jitter = JitterBuffer::new(jitter_depth);
        let mut origin: Option<(u32, u32, u64)> = None; // (ssrc, first timestamp, base frame)
        let mut buf = vec![0u8; 2048];
        let place = |origin: &mut Option<(u32, u32, u64)>, p: &RtpPacket| -> Option<RecordCmd> {
            let codec = Codec::from_payload_type(p.payload_type)?;
            let &mut Some((_, first_ts, base)) = origin else {
                return None;
            };
            let delta = i64::from(p.timestamp.wrapping_sub(first_ts) as i32);
            let pos = u64::try_from(base as i64 + delta).ok()?;
            Some(RecordCmd::Samples {
                channel: 1,
                pos,
                samples: codec.decode(&p.payload),
            })
        };
        loop {
            let n = tokio::select! {
                r = socket.recv_from(&mut buf) => match r {
                    Ok((n, _)) => n,
                    Err(e) => {
                        tracing::debug!(error = %e, "RTP receive error");
                        continue;
                    }
                },
                _ = stop.changed() => break,
            };
            let packet = match RtpPacket::parse(&buf[..n]) {
                Ok(p) => p,
                Err(e) => {
                    tracing::debug!(error = %e, "dropping malformed RTP");
                    continue;
                }
            };
            // Only audio we can decode; telephone-events and comfort noise are skipped.
            if Codec::from_payload_type(packet.payload_type).is_none() {
                continue;
            }
            match origin {
                None => {
                    let base =
                        answered.elapsed().as_micros() as u64 * u64::from(SAMPLE_RATE) / 1_000_000;
                    origin = Some((packet.ssrc, packet.timestamp, base));
                }
                Some((ssrc, _, _)) if ssrc != packet.ssrc => {
                    // A new source (e.g. the far end switched media): re-anchor on arrival time.
                    let base =
                        answered.elapsed().as_micros() as u64 * u64::from(SAMPLE_RATE) / 1_000_000;
                    origin = Some((packet.ssrc, packet.timestamp, base));
                    jitter = JitterBuffer::new(jitter_depth);
                }
                _ => {}
            }
            for p in jitter.push(packet) {
                if let Some(cmd) = place(&mut origin, &p) {
                    let _ = record.send(cmd).await;
                }
            }
        }
        for p in jitter.flush() {
            if let Some(cmd) = place(&mut origin, &p) {
                let _ = record.send(cmd).await;
            }
        }
        jitter.stats()
    })
}
