//! The RTP leg of an answered call: every 20 ms one task sends the next prompt packet (then
//! silence) and drains what the callee sent since, reorders and decodes it, and hands both
//! directions to the recorder in batches of a few packets. Bridged to an agent (see `bridge`),
//! the same task also owns the agent's socket and relays each side's audio to the other.
//!
//! The socket is a plain non-blocking one read on the media clock rather than on readiness:
//! one wake-up per packet interval per call, whatever the number of packets, and no I/O
//! driver work per received packet.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::agent_leg::AgentMedia;
use crate::bridge::{AgentSide, Playout};
use crate::g711::{self, Codec};
use crate::jitter::{JitterBuffer, JitterStats};
use crate::recording::{RecordCmd, SAMPLE_RATE};
use crate::rtp::{self, RtpPacket};

/// Samples per 20 ms packet at 8 kHz.
pub const FRAME: usize = 160;
/// Packet intervals per batch of our own audio handed to the recorder (100 ms).
pub(crate) const BATCH_TICKS: u64 = 5;
/// Packet intervals per batch of the callee's audio (40 ms): it already waited in the network
/// and the jitter buffer, and the recorder writes out what is 300 ms old.
pub(crate) const THEIR_BATCH_TICKS: u64 = 2;
/// Datagrams read per interval at most (a flood must not starve the sender).
const MAX_READS_PER_TICK: usize = 64;

/// What an agent campaign's call tells its media task.
#[derive(Debug)]
pub enum MediaCmd {
    /// Start the prompt now (the call was abandoned).
    Play,
    /// Bridge the customer to this agent.
    Bridge(AgentMedia),
}

/// What the media task counted.
#[derive(Debug, Clone, Copy, Default)]
pub struct MediaStats {
    pub packets_sent: u64,
    pub jitter: JitterStats,
    /// The bridged agent's side, when there was one.
    pub agent_jitter: Option<JitterStats>,
}

/// Everything the media task needs.
pub struct MediaLeg {
    /// Non-blocking, bound to the port our SDP offer named.
    pub socket: UdpSocket,
    pub remote: SocketAddr,
    pub codec: Codec,
    pub prompt: Arc<[i16]>,
    pub jitter_depth: usize,
    /// Frame 0 of the recording.
    pub answered: Instant,
    pub record: mpsc::Sender<RecordCmd>,
    /// Fires when the last prompt packet left.
    pub prompt_done: oneshot::Sender<Instant>,
    pub stop: watch::Receiver<bool>,
    /// Agent campaigns: the prompt waits for [`MediaCmd::Play`] (silence until then), and
    /// [`MediaCmd::Bridge`] connects the agent. Without it the prompt starts at once.
    pub control: Option<mpsc::Receiver<MediaCmd>>,
}

/// Consecutive samples of one channel waiting to go to the recorder.
pub(crate) struct Batch {
    channel: usize,
    pos: u64,
    samples: Vec<i16>,
}

impl Batch {
    pub(crate) fn new(channel: usize) -> Self {
        Self {
            channel,
            pos: 0,
            samples: Vec::new(),
        }
    }

    /// Appends `samples` at `pos`; returns the batch so far if `pos` does not continue it.
    pub(crate) fn push(&mut self, pos: u64, samples: &[i16]) -> Option<RecordCmd> {
        let end = self.pos + self.samples.len() as u64;
        let flushed = if !self.samples.is_empty() && pos != end {
            self.take()
        } else {
            None
        };
        if self.samples.is_empty() {
            self.pos = pos;
            self.samples.reserve(FRAME * BATCH_TICKS as usize);
        }
        self.samples.extend_from_slice(samples);
        flushed
    }

    pub(crate) fn take(&mut self) -> Option<RecordCmd> {
        if self.samples.is_empty() {
            return None;
        }
        Some(RecordCmd::Samples {
            channel: self.channel,
            pos: self.pos,
            samples: std::mem::take(&mut self.samples),
        })
    }
}

/// One far end's audio (the callee's, or a bridged agent's): reordering, and placement by RTP
/// timestamp relative to the arrival of its first packet after `answered`.
pub(crate) struct Incoming {
    pub(crate) jitter: JitterBuffer,
    depth: usize,
    /// (ssrc, first timestamp, frame the first packet was placed at)
    origin: Option<(u32, u32, u64)>,
    answered: Instant,
}

impl Incoming {
    pub(crate) fn new(depth: usize, answered: Instant) -> Self {
        Self {
            jitter: JitterBuffer::new(depth),
            depth,
            origin: None,
            answered,
        }
    }

    fn frames_since_answer(&self) -> u64 {
        self.answered.elapsed().as_micros() as u64 * u64::from(SAMPLE_RATE) / 1_000_000
    }

    /// Takes one datagram; returns the packets now ready, in order.
    pub(crate) fn receive(&mut self, data: &[u8]) -> Vec<RtpPacket> {
        let packet = match RtpPacket::parse(data) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "dropping malformed RTP");
                return Vec::new();
            }
        };
        // Only audio we can decode; telephone-events and comfort noise are skipped.
        if Codec::from_payload_type(packet.payload_type).is_none() {
            return Vec::new();
        }
        match self.origin {
            None => {
                self.origin = Some((packet.ssrc, packet.timestamp, self.frames_since_answer()));
            }
            Some((ssrc, _, _)) if ssrc != packet.ssrc => {
                // A new source (e.g. the far end switched media): re-anchor on arrival time.
                self.origin = Some((packet.ssrc, packet.timestamp, self.frames_since_answer()));
                self.jitter = JitterBuffer::new(self.depth);
            }
            _ => {}
        }
        self.jitter.push(packet)
    }

    /// Releases what the jitter buffer still holds (end of call) into `batch`.
    pub(crate) fn flush_into(&mut self, batch: &mut Batch, out: &mut Vec<RecordCmd>) {
        for p in self.jitter.flush() {
            if let Some((pos, samples)) = self.place(&p) {
                out.extend(batch.push(pos, &samples));
            }
        }
    }

    /// Where a released packet goes in the recording, decoded.
    pub(crate) fn place(&self, p: &RtpPacket) -> Option<(u64, Vec<i16>)> {
        let codec = Codec::from_payload_type(p.payload_type)?;
        let (_, first_ts, base) = self.origin?;
        let delta = i64::from(p.timestamp.wrapping_sub(first_ts) as i32);
        let pos = u64::try_from(base as i64 + delta).ok()?;
        Some((pos, codec.decode(&p.payload)))
    }
}

/// Runs the call's media until `stop`; returns what it counted.
pub fn spawn(leg: MediaLeg) -> JoinHandle<MediaStats> {
    tokio::spawn(run(leg))
}

async fn run(leg: MediaLeg) -> MediaStats {
    let MediaLeg {
        socket,
        remote,
        codec,
        prompt,
        jitter_depth,
        answered,
        record,
        prompt_done,
        mut stop,
        mut control,
    } = leg;
    let (mut seq, mut ts, ssrc) = {
        let mut rng = rand::thread_rng();
        (rng.gen::<u16>(), rng.gen::<u32>(), rng.gen::<u32>())
    };
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    // Keep the media clock: after a stall, catch up so packet n still covers 20n ms.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut prompt_done = Some(prompt_done);
    // The interval the prompt started at: at once, unless an agent campaign holds it back.
    let mut prompt_from = control.is_none().then_some(0u64);
    let mut agent: Option<AgentSide> = None;
    let mut incoming = Incoming::new(jitter_depth, answered);
    let mut ours = Batch::new(0);
    let mut theirs = Batch::new(1);
    let mut wire: Vec<u8> = Vec::with_capacity(12 + FRAME);
    let mut buf = [0u8; 2048];
    let mut frame = [0i16; FRAME];
    let mut sent = 0u64;
    let mut out: Vec<RecordCmd> = Vec::new();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        if let Some(rx) = control.as_mut() {
            while let Ok(cmd) = rx.try_recv() {
                match cmd {
                    MediaCmd::Play => {
                        prompt_from.get_or_insert(sent);
                    }
                    MediaCmd::Bridge(media) => {
                        agent = Some(AgentSide::new(media, jitter_depth, answered));
                    }
                }
            }
        }
        // What the callee (and a bridged agent) sent since the last interval.
        let relay = agent.as_mut().map(AgentSide::relay_to_agent);
        drain(
            &socket,
            &mut buf,
            &mut incoming,
            &mut theirs,
            relay,
            &mut out,
        );
        if let Some(a) = agent.as_mut() {
            a.receive(&mut buf, &mut out);
        }

        // Our packet for this interval: the agent's voice, the prompt, or silence.
        let pos = sent * FRAME as u64;
        frame.fill(0);
        if let Some(a) = agent.as_mut() {
            a.next_for_customer(&mut frame);
            a.send_to_agent();
        } else if let Some(from) = prompt_from {
            let start = (sent - from) as usize * FRAME;
            if start < prompt.len() {
                let end = (start + FRAME).min(prompt.len());
                frame[..end - start].copy_from_slice(&prompt[start..end]);
            } else if let Some(done) = prompt_done.take() {
                let _ = done.send(Instant::now());
            }
            out.extend(ours.push(pos, &frame));
        }
        wire.clear();
        rtp::write_header(&mut wire, codec.payload_type(), sent == 0, seq, ts, ssrc);
        encode_into(codec, &frame, &mut wire);
        if let Err(e) = socket.send_to(&wire, remote) {
            tracing::debug!(error = %e, "RTP send failed");
        }
        sent += 1;
        seq = seq.wrapping_add(1);
        ts = ts.wrapping_add(FRAME as u32);

        if sent.is_multiple_of(BATCH_TICKS) {
            out.extend(ours.take());
        }
        if sent.is_multiple_of(THEIR_BATCH_TICKS) {
            out.extend(theirs.take());
            out.extend(agent.as_mut().and_then(AgentSide::take_batch));
        }
        // Waiting here when storage is slow is fine: the Burst ticker catches up after.
        for cmd in out.drain(..) {
            let _ = record.send(cmd).await;
        }
    }
    drain(
        &socket,
        &mut buf,
        &mut incoming,
        &mut theirs,
        None,
        &mut out,
    );
    incoming.flush_into(&mut theirs, &mut out);
    let agent_jitter = agent.as_mut().map(|a| a.finish(&mut buf, &mut out));
    out.extend(ours.take());
    out.extend(theirs.take());
    for cmd in out {
        let _ = record.send(cmd).await;
    }
    MediaStats {
        packets_sent: sent,
        jitter: incoming.jitter.stats(),
        agent_jitter,
    }
}

/// Reads every datagram waiting on `socket` into the jitter buffer and batches what it
/// releases; with `relay`, the decoded audio is also queued for the other side of a bridge.
pub(crate) fn drain(
    socket: &UdpSocket,
    buf: &mut [u8],
    incoming: &mut Incoming,
    batch: &mut Batch,
    mut relay: Option<&mut Playout>,
    out: &mut Vec<RecordCmd>,
) {
    for _ in 0..MAX_READS_PER_TICK {
        let n = match socket.recv_from(buf) {
            Ok((n, _)) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) => {
                // ICMP errors from our own sends surface here; keep reading.
                tracing::debug!(error = %e, "RTP receive error");
                continue;
            }
        };
        for p in incoming.receive(&buf[..n]) {
            if let Some((pos, samples)) = incoming.place(&p) {
                if let Some(r) = relay.as_deref_mut() {
                    r.push(&samples);
                }
                out.extend(batch.push(pos, &samples));
            }
        }
    }
}

/// G.711-encodes `samples` onto the end of `out`.
pub(crate) fn encode_into(codec: Codec, samples: &[i16], out: &mut Vec<u8>) {
    match codec {
        Codec::Pcmu => out.extend(samples.iter().map(|&s| g711::linear_to_ulaw(s))),
        Codec::Pcma => out.extend(samples.iter().map(|&s| g711::linear_to_alaw(s))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_continue_until_a_gap() {
        let mut b = Batch::new(1);
        assert!(b.push(100, &[1, 2]).is_none());
        assert!(b.push(102, &[3]).is_none());
        let Some(RecordCmd::Samples {
            channel,
            pos,
            samples,
        }) = b.push(200, &[9])
        else {
            panic!("a gap flushes the batch")
        };
        assert_eq!((channel, pos, samples), (1, 100, vec![1, 2, 3]));
        let Some(RecordCmd::Samples { pos, samples, .. }) = b.take() else {
            panic!("the new batch")
        };
        assert_eq!((pos, samples), (200, vec![9]));
        assert!(b.take().is_none());
    }

    #[tokio::test]
    async fn sends_the_prompt_and_records_both_directions() {
        let ours = UdpSocket::bind("127.0.0.1:0").unwrap();
        ours.set_nonblocking(true).unwrap();
        let far = UdpSocket::bind("127.0.0.1:0").unwrap();
        far.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let local = ours.local_addr().unwrap();
        let prompt: Arc<[i16]> = vec![1000i16; FRAME * 3].into();
        let (record_tx, mut record_rx) = mpsc::channel(64);
        let (done_tx, done_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = spawn(MediaLeg {
            socket: ours,
            remote: far.local_addr().unwrap(),
            codec: Codec::Pcmu,
            prompt,
            jitter_depth: 3,
            answered: Instant::now(),
            record: record_tx,
            prompt_done: done_tx,
            stop: stop_rx,
            control: None,
        });
        // The far end answers each of our packets with one of its own (a louder tone).
        let far_task = tokio::task::spawn_blocking(move || {
            let mut buf = [0u8; 2048];
            for i in 0..10u16 {
                let (n, _) = far.recv_from(&mut buf).unwrap();
                let got = RtpPacket::parse(&buf[..n]).unwrap();
                assert_eq!(got.payload.len(), FRAME);
                let reply = RtpPacket {
                    payload_type: 0,
                    marker: i == 0,
                    sequence: i,
                    timestamp: u32::from(i) * FRAME as u32,
                    ssrc: 7,
                    payload: Codec::Pcmu.encode(&[8000i16; FRAME]).into(),
                };
                far.send_to(&reply.to_bytes(), local).unwrap();
            }
        });
        done_rx.await.unwrap();
        far_task.await.unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        stop_tx.send(true).unwrap();
        let stats = task.await.unwrap();
        assert!(stats.packets_sent >= 10);
        assert_eq!(stats.jitter.received, 10);
        assert_eq!(stats.jitter.lost, 0);
        let mut channel_samples = [0usize; 2];
        let mut loud = 0;
        while let Ok(RecordCmd::Samples {
            channel, samples, ..
        }) = record_rx.try_recv()
        {
            channel_samples[channel] += samples.len();
            if channel == 1 {
                loud += samples.iter().filter(|s| s.abs() > 7000).count();
            }
        }
        assert_eq!(channel_samples[0], stats.packets_sent as usize * FRAME);
        assert_eq!(loud, 10 * FRAME);
    }
}
