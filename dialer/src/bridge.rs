//! The agent's side of a bridged call, owned by the call's media task: on each 20 ms tick the
//! agent's packets are reordered, decoded and recorded on channel 0, and each side's decoded
//! audio is relayed to the other, re-encoded in that leg's own codec (PCM in between).

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};

use rand::Rng;
use tokio::time::Instant;

use crate::agent_leg::AgentMedia;
use crate::g711::Codec;
use crate::jitter::JitterStats;
use crate::media::{drain, encode_into, Batch, Incoming, FRAME};
use crate::recording::RecordCmd;
use crate::rtp;

/// Audio queued before a relay starts playing (and again after it ran dry): absorbs packets
/// that arrive just after our tick.
const PREFILL: usize = 2 * FRAME;
/// Most audio queued for one direction; older samples are dropped so the delay stays short.
const MAX_QUEUED: usize = 8 * FRAME;

/// Decoded audio of one side waiting to be relayed to the other, one frame per tick.
#[derive(Debug, Default)]
pub struct Playout {
    samples: VecDeque<i16>,
    playing: bool,
    /// Samples dropped because the queue was full.
    pub overflow: u64,
}

impl Playout {
    pub fn push(&mut self, samples: &[i16]) {
        self.samples.extend(samples);
        let excess = self.samples.len().saturating_sub(MAX_QUEUED);
        if excess > 0 {
            self.samples.drain(..excess);
            self.overflow += excess as u64;
        }
    }

    /// Fills `frame` with the next audio, silence where there is none; false for silence.
    pub fn next_frame(&mut self, frame: &mut [i16]) -> bool {
        frame.fill(0);
        if !self.playing && self.samples.len() < PREFILL {
            return false;
        }
        if self.samples.is_empty() {
            self.playing = false;
            return false;
        }
        self.playing = true;
        let n = frame.len().min(self.samples.len());
        for (slot, s) in frame.iter_mut().zip(self.samples.drain(..n)) {
            *slot = s;
        }
        true
    }

    pub fn queued(&self) -> usize {
        self.samples.len()
    }
}

/// The bridged agent: its socket and RTP stream, its audio for the recording, and both relay
/// queues.
pub(crate) struct AgentSide {
    socket: UdpSocket,
    remote: SocketAddr,
    codec: Codec,
    incoming: Incoming,
    batch: Batch,
    /// The agent's voice, for the customer.
    to_customer: Playout,
    /// The customer's voice, for the agent.
    to_agent: Playout,
    seq: u16,
    ts: u32,
    ssrc: u32,
    sent: u64,
    wire: Vec<u8>,
    frame: [i16; FRAME],
}

impl AgentSide {
    pub(crate) fn new(media: AgentMedia, jitter_depth: usize, answered: Instant) -> Self {
        let mut rng = rand::thread_rng();
        Self {
            socket: media.socket,
            remote: media.remote,
            codec: media.codec,
            incoming: Incoming::new(jitter_depth, answered),
            batch: Batch::new(0),
            to_customer: Playout::default(),
            to_agent: Playout::default(),
            seq: rng.gen(),
            ts: rng.gen(),
            ssrc: rng.gen(),
            sent: 0,
            wire: Vec::with_capacity(12 + FRAME),
            frame: [0; FRAME],
        }
    }

    /// Where the customer's decoded audio goes.
    pub(crate) fn relay_to_agent(&mut self) -> &mut Playout {
        &mut self.to_agent
    }

    /// Reads what the agent sent: recorded on channel 0 and queued for the customer.
    pub(crate) fn receive(&mut self, buf: &mut [u8], out: &mut Vec<RecordCmd>) {
        drain(
            &self.socket,
            buf,
            &mut self.incoming,
            &mut self.batch,
            Some(&mut self.to_customer),
            out,
        );
    }

    /// The agent's next frame for the customer (silence when nothing came).
    pub(crate) fn next_for_customer(&mut self, frame: &mut [i16]) {
        self.to_customer.next_frame(frame);
    }

    /// Sends the customer's next frame to the agent, in the agent's codec.
    pub(crate) fn send_to_agent(&mut self) {
        self.to_agent.next_frame(&mut self.frame);
        self.wire.clear();
        rtp::write_header(
            &mut self.wire,
            self.codec.payload_type(),
            self.sent == 0,
            self.seq,
            self.ts,
            self.ssrc,
        );
        encode_into(self.codec, &self.frame, &mut self.wire);
        if let Err(e) = self.socket.send_to(&self.wire, self.remote) {
            tracing::debug!(error = %e, "RTP send to agent failed");
        }
        self.sent += 1;
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(FRAME as u32);
    }

    /// The agent's audio batched for the recorder so far.
    pub(crate) fn take_batch(&mut self) -> Option<RecordCmd> {
        self.batch.take()
    }

    /// End of call: the rest of the agent's audio to the recorder; returns its counters.
    pub(crate) fn finish(&mut self, buf: &mut [u8], out: &mut Vec<RecordCmd>) -> JitterStats {
        drain(
            &self.socket,
            buf,
            &mut self.incoming,
            &mut self.batch,
            None,
            out,
        );
        self.incoming.flush_into(&mut self.batch, out);
        out.extend(self.batch.take());
        if self.to_customer.overflow + self.to_agent.overflow > 0 {
            tracing::debug!(
                to_customer = self.to_customer.overflow,
                to_agent = self.to_agent.overflow,
                "relay samples dropped to keep the delay short"
            );
        }
        self.incoming.jitter.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpPacket;
    use std::time::Duration;

    #[test]
    fn playout_prefills_relays_in_order_and_stays_bounded() {
        let mut p = Playout::default();
        let mut frame = [0i16; FRAME];
        // Nothing yet: silence.
        assert!(!p.next_frame(&mut frame));
        p.push(&[1; FRAME]);
        // One frame is not enough to start: a late second packet would cut it.
        assert!(!p.next_frame(&mut frame));
        assert_eq!(frame, [0; FRAME]);
        p.push(&[2; FRAME]);
        assert!(p.next_frame(&mut frame));
        assert_eq!(frame, [1; FRAME]);
        assert!(p.next_frame(&mut frame));
        assert_eq!(frame, [2; FRAME]);
        // Ran dry: silence, then it waits for the prefill again.
        assert!(!p.next_frame(&mut frame));
        p.push(&[3; FRAME]);
        assert!(!p.next_frame(&mut frame));
        // A burst beyond the bound drops the oldest audio.
        for i in 0..20 {
            p.push(&[10 + i; FRAME]);
        }
        assert_eq!(p.queued(), MAX_QUEUED);
        assert_eq!(p.overflow, 13 * FRAME as u64);
        assert!(p.next_frame(&mut frame));
        assert_eq!(frame[0], 10 + 12);
        // A short packet plays as is, padded with silence.
        let mut q = Playout::default();
        q.push(&[5; PREFILL]);
        assert!(q.next_frame(&mut frame));
        q.push(&[6; 10]);
        assert!(q.next_frame(&mut frame));
        assert_eq!(frame, [5; FRAME]);
        assert!(q.next_frame(&mut frame));
        assert_eq!((frame[9], frame[10]), (6, 0));
        assert_eq!(q.queued(), 0);
    }

    fn packet(codec: Codec, seq: u16, level: i16) -> Vec<u8> {
        RtpPacket {
            payload_type: codec.payload_type(),
            marker: seq == 0,
            sequence: seq,
            timestamp: u32::from(seq) * FRAME as u32,
            ssrc: 9,
            payload: codec.encode(&[level; FRAME]).into(),
        }
        .to_bytes()
        .to_vec()
    }

    /// The agent answered PCMU, the customer talks PCMA: each side's voice reaches the other in
    /// the other's codec, and the agent's voice is recorded on channel 0.
    #[test]
    fn relays_between_codecs_through_pcm() {
        let ours = UdpSocket::bind("127.0.0.1:0").unwrap();
        ours.set_nonblocking(true).unwrap();
        let agent = UdpSocket::bind("127.0.0.1:0").unwrap();
        agent
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let local = ours.local_addr().unwrap();
        let mut side = AgentSide::new(
            AgentMedia {
                socket: ours,
                remote: agent.local_addr().unwrap(),
                codec: Codec::Pcmu,
            },
            3,
            Instant::now(),
        );
        // The customer's decoded PCMA audio, as the customer's drain queues it.
        let customer = Codec::Pcma.decode(&Codec::Pcma.encode(&[4000; FRAME]));
        side.relay_to_agent().push(&customer);
        side.relay_to_agent().push(&customer);
        side.send_to_agent();
        let mut buf = [0u8; 2048];
        let (n, _) = agent.recv_from(&mut buf).unwrap();
        let got = RtpPacket::parse(&buf[..n]).unwrap();
        assert_eq!(got.payload_type, Codec::Pcmu.payload_type());
        let heard = Codec::Pcmu.decode(&got.payload);
        assert!(heard.iter().all(|s| (s - 4000).abs() < 150), "{heard:?}");

        // The agent talks (PCMU): recorded on channel 0 and queued for the customer.
        for seq in 0..2 {
            agent
                .send_to(&packet(Codec::Pcmu, seq, -3000), local)
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        let mut out = Vec::new();
        side.receive(&mut buf, &mut out);
        let mut frame = [0i16; FRAME];
        side.next_for_customer(&mut frame);
        assert!(frame.iter().all(|s| (s + 3000).abs() < 150), "{frame:?}");
        out.extend(side.take_batch());
        let recorded: usize = out
            .iter()
            .map(
                |RecordCmd::Samples {
                     channel, samples, ..
                 }| {
                    assert_eq!(*channel, 0);
                    samples.len()
                },
            )
            .sum();
        assert_eq!(recorded, 2 * FRAME);
        // The customer's second frame, then nothing more: the agent hears silence.
        side.send_to_agent();
        side.send_to_agent();
        let (n, _) = agent.recv_from(&mut buf).unwrap();
        let second = RtpPacket::parse(&buf[..n]).unwrap();
        assert_eq!(second.sequence, got.sequence.wrapping_add(1));
        assert_eq!(second.payload, got.payload);
        let (n, _) = agent.recv_from(&mut buf).unwrap();
        let third = RtpPacket::parse(&buf[..n]).unwrap();
        let silence = Codec::Pcmu.decode(&third.payload);
        assert!(silence.iter().all(|s| s.abs() < 10), "{silence:?}");
        let stats = side.finish(&mut buf, &mut Vec::new());
        assert_eq!(stats.received, 2);
    }
}
