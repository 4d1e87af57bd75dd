//! A small jitter buffer: holds a few packets back to put them in sequence order, drops
//! duplicates and stragglers, and counts the packets that never came.

use std::collections::BTreeMap;

use crate::rtp::RtpPacket;

/// Counters kept by the buffer; `lost` is sequence numbers skipped for good.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    pub received: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub late: u64,
    pub reordered: u64,
}

#[derive(Debug)]
pub struct JitterBuffer {
    depth: usize,
    /// Extended (32-bit+) sequence of the next packet to release.
    next: Option<u64>,
    /// Highest extended sequence seen, to unwrap 16-bit sequence numbers.
    highest: Option<u64>,
    held: BTreeMap<u64, RtpPacket>,
    stats: JitterStats,
}

impl JitterBuffer {
    pub fn new(depth: usize) -> Self {
        Self {
            depth: depth.max(1),
            next: None,
            highest: None,
            held: BTreeMap::new(),
            stats: JitterStats::default(),
        }
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Extends a 16-bit sequence number to the value closest to the highest one seen.
    fn extend(&self, seq: u16) -> u64 {
        let Some(high) = self.highest else {
            return u64::from(seq) + (1 << 16); // room below for early reordering
        };
        let cycle = high & !0xFFFF;
        let candidates = [
            cycle.wrapping_sub(1 << 16) | u64::from(seq),
            cycle | u64::from(seq),
            (cycle + (1 << 16)) | u64::from(seq),
        ];
        candidates
            .into_iter()
            .min_by_key(|c| c.abs_diff(high))
            .unwrap_or(cycle | u64::from(seq))
    }

    /// Adds a packet; returns the packets now ready to play, in order.
    pub fn push(&mut self, packet: RtpPacket) -> Vec<RtpPacket> {
        let ext = self.extend(packet.sequence);
        if let Some(next) = self.next {
            if ext < next {
                self.stats.late += 1;
                return Vec::new();
            }
        }
        if self.held.contains_key(&ext) {
            self.stats.duplicates += 1;
            return Vec::new();
        }
        if self.highest.is_some_and(|h| ext < h) {
            self.stats.reordered += 1;
        }
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.next.get_or_insert(ext);
        self.stats.received += 1;
        self.held.insert(ext, packet);
        let mut out = Vec::new();
        while self.held.len() > self.depth {
            self.release_one(&mut out);
        }
        // Release the in-order run at the head without waiting.
        while let Some(next) = self.next {
            match self.held.remove(&next) {
                Some(p) => {
                    out.push(p);
                    self.next = Some(next + 1);
                }
                None => break,
            }
        }
        out
    }

    fn release_one(&mut self, out: &mut Vec<RtpPacket>) {
        if let Some((seq, p)) = self.held.pop_first() {
            if let Some(next) = self.next {
                self.stats.lost += seq.saturating_sub(next);
            }
            self.next = Some(seq + 1);
            out.push(p);
        }
    }

    /// Releases everything still held (end of call).
    pub fn flush(&mut self) -> Vec<RtpPacket> {
        let mut out = Vec::new();
        while !self.held.is_empty() {
            self.release_one(&mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn pkt(seq: u16) -> RtpPacket {
        RtpPacket {
            payload_type: 0,
            marker: false,
            sequence: seq,
            timestamp: u32::from(seq) * 160,
            ssrc: 1,
            payload: Bytes::new(),
        }
    }

    fn seqs(v: &[RtpPacket]) -> Vec<u16> {
        v.iter().map(|p| p.sequence).collect()
    }

    #[test]
    fn reorders_within_depth() {
        let mut jb = JitterBuffer::new(3);
        let mut out = Vec::new();
        for s in [1, 3, 2, 4, 6, 5] {
            out.extend(jb.push(pkt(s)));
        }
        out.extend(jb.flush());
        assert_eq!(seqs(&out), vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(jb.stats().lost, 0);
        assert_eq!(jb.stats().reordered, 2);
    }

    #[test]
    fn counts_loss_duplicates_and_late_packets_across_wrap() {
        let mut jb = JitterBuffer::new(2);
        let mut out = Vec::new();
        for s in [65533u16, 65534, 1, 2, 3, 3, 65534] {
            out.extend(jb.push(pkt(s)));
        }
        out.extend(jb.flush());
        assert_eq!(seqs(&out), vec![65533, 65534, 1, 2, 3]);
        // 65535 and 0 never came.
        assert_eq!(jb.stats().lost, 2);
        assert_eq!(jb.stats().duplicates, 0);
        assert_eq!(jb.stats().late, 2);
    }
}
