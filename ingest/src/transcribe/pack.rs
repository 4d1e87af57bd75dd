//! Lays a speaker's voice-gated utterances end to end into whisper-sized windows, and maps
//! a position in such a window back to the utterance it came from.

use crate::vad::Region;

/// Utterances of one channel laid end to end, with a short silence between them.
pub(crate) struct Pack {
    /// The utterances, in samples of the channel.
    pub regions: Vec<Region>,
    /// Where each utterance starts in `pcm`.
    offsets: Vec<usize>,
    /// The packed audio.
    pub pcm: Vec<f32>,
}

impl Pack {
    /// The packed audio of utterance `i`.
    pub fn utterance(&self, i: usize) -> &[f32] {
        let start = self.offsets[i];
        &self.pcm[start..start + self.regions[i].len()]
    }

    /// The utterance a sample position of `pcm` belongs to; a position in the silence
    /// between two utterances goes to the nearer one, or to the later one when
    /// `sentence_ended` (the words before it closed a sentence).
    pub fn region_at(&self, pos: usize, sentence_ended: bool) -> usize {
        let i = match self.offsets.binary_search(&pos) {
            Ok(i) => i,
            Err(0) => 0,
            Err(i) => i - 1,
        };
        let end = self.offsets[i] + self.regions[i].len();
        match self.offsets.get(i + 1) {
            Some(&next) if pos >= end && (sentence_ended || next - pos < pos - end) => i + 1,
            _ => i,
        }
    }
}

/// Packs `regions` of `pcm` into windows of at most `max` samples, `gap` samples of
/// silence between utterances. An utterance longer than `max` is cut into pieces.
pub(crate) fn pack(pcm: &[f32], regions: &[Region], max: usize, gap: usize) -> Vec<Pack> {
    let pieces = regions.iter().flat_map(|r| {
        (r.start..r.end.min(pcm.len()))
            .step_by(max.max(1))
            .map(|s| Region {
                start: s,
                end: (s + max).min(r.end).min(pcm.len()),
            })
    });
    let mut packs: Vec<Pack> = Vec::new();
    for r in pieces.filter(|r| !r.is_empty()) {
        let fits = packs
            .last()
            .is_some_and(|p| p.pcm.len() + gap + r.len() <= max);
        if !fits {
            packs.push(Pack {
                regions: Vec::new(),
                offsets: Vec::new(),
                pcm: Vec::with_capacity(max),
            });
        }
        let Some(p) = packs.last_mut() else { continue };
        if !p.pcm.is_empty() {
            p.pcm.resize(p.pcm.len() + gap, 0.0);
        }
        p.offsets.push(p.pcm.len());
        p.regions.push(r);
        p.pcm.extend_from_slice(&pcm[r.start..r.end]);
    }
    packs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: usize, end: usize) -> Region {
        Region { start, end }
    }

    #[test]
    fn packs_until_full_and_splits_long_utterances() {
        let pcm: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        let packs = pack(
            &pcm,
            &[r(0, 30), r(100, 150), r(200, 290), r(300, 560)],
            100,
            10,
        );
        let shape: Vec<Vec<Region>> = packs.iter().map(|p| p.regions.clone()).collect();
        assert_eq!(
            shape,
            vec![
                vec![r(0, 30), r(100, 150)],
                vec![r(200, 290)],
                vec![r(300, 400)],
                vec![r(400, 500)],
                vec![r(500, 560)],
            ]
        );
        // The second utterance starts after the first and a 10-sample silence.
        assert_eq!(packs[0].pcm.len(), 30 + 10 + 50);
        assert_eq!(packs[0].pcm[40], 100.0);
        assert_eq!(packs[0].pcm[35], 0.0);
        // Each utterance's own audio, without the silence laid between them.
        assert_eq!(packs[0].utterance(1), &pcm[100..150]);
        assert_eq!(packs[0].utterance(0), &pcm[0..30]);
    }

    #[test]
    fn maps_positions_to_the_nearest_utterance() {
        let pcm = vec![1.0; 1000];
        let p = &pack(&pcm, &[r(0, 30), r(100, 150)], 1000, 10)[0];
        assert_eq!(p.region_at(0, false), 0);
        assert_eq!(p.region_at(29, false), 0);
        assert_eq!(p.region_at(33, false), 0);
        assert_eq!(p.region_at(38, false), 1);
        assert_eq!(p.region_at(60, false), 1);
        assert_eq!(p.region_at(5000, false), 1);
        // After a full stop, a word in the gap starts the next utterance.
        assert_eq!(p.region_at(31, true), 1);
        assert_eq!(p.region_at(29, true), 0);
    }
}
