//! Measurements from segment timestamps: talk time, silences (nobody speaking),
//! overtalk (agent and customer at once) and speech rate.

use callqa_ingest::transcript::{Segment, Speaker, Transcript};

/// A half-open time span in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start_ms: u64,
    pub end_ms: u64,
}

impl Span {
    pub fn len(&self) -> u64 {
        self.end_ms.saturating_sub(self.start_ms)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Sorted, non-overlapping union of the spans of `segs`.
fn union<'a>(segs: impl Iterator<Item = &'a Segment>) -> Vec<Span> {
    let mut spans: Vec<Span> = segs
        .filter(|s| s.end_ms > s.start_ms)
        .map(|s| Span {
            start_ms: s.start_ms,
            end_ms: s.end_ms,
        })
        .collect();
    spans.sort_by_key(|s| s.start_ms);
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        match out.last_mut() {
            Some(last) if s.start_ms <= last.end_ms => last.end_ms = last.end_ms.max(s.end_ms),
            _ => out.push(s),
        }
    }
    out
}

fn total(spans: &[Span]) -> u64 {
    spans.iter().map(Span::len).sum()
}

/// Whether the transcript separates the parties (stereo): needed for ratio and overtalk.
pub fn has_both_parties(t: &Transcript) -> bool {
    t.segments.iter().any(|s| s.speaker == Speaker::Agent)
        && t.segments.iter().any(|s| s.speaker == Speaker::Customer)
}

/// Agent share of talk time, agent / (agent + customer); `None` without both parties.
pub fn talk_ratio(t: &Transcript) -> Option<f64> {
    if !has_both_parties(t) {
        return None;
    }
    let agent = total(&union(t.by_speaker(Speaker::Agent))) as f64;
    let customer = total(&union(t.by_speaker(Speaker::Customer))) as f64;
    if agent + customer <= 0.0 {
        return None;
    }
    Some(agent / (agent + customer))
}

/// The longest gap between the first and the last speech where nobody speaks.
/// Ringing before the first word and hang-up after the last are not counted.
pub fn longest_silence(t: &Transcript) -> Option<Span> {
    let spoken = union(t.segments.iter());
    spoken
        .windows(2)
        .map(|w| Span {
            start_ms: w[0].end_ms,
            end_ms: w[1].start_ms,
        })
        .max_by_key(|s| (s.len(), std::cmp::Reverse(s.start_ms)))
}

/// Spans where agent and customer speak at once; `None` without both parties.
pub fn overtalk(t: &Transcript) -> Option<Vec<Span>> {
    if !has_both_parties(t) {
        return None;
    }
    let a = union(t.by_speaker(Speaker::Agent));
    let c = union(t.by_speaker(Speaker::Customer));
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < c.len() {
        let start = a[i].start_ms.max(c[j].start_ms);
        let end = a[i].end_ms.min(c[j].end_ms);
        if start < end {
            out.push(Span {
                start_ms: start,
                end_ms: end,
            });
        }
        if a[i].end_ms < c[j].end_ms {
            i += 1;
        } else {
            j += 1;
        }
    }
    Some(out)
}

/// Total overlap of `spans`.
pub fn total_ms(spans: &[Span]) -> u64 {
    total(spans)
}

/// Chinese characters plus English words in `text`: a rate unit that works for both.
pub fn units(text: &str) -> usize {
    let mut n = 0;
    let mut in_word = false;
    for c in text.chars() {
        if in_word && (c == '\'' || c == '\u{2019}') {
            // "I'm" is one word.
            continue;
        }
        if c.is_alphanumeric() && c.is_ascii() {
            if !in_word {
                n += 1;
                in_word = true;
            }
        } else {
            in_word = false;
            if c.is_alphabetic() {
                // Any non-ASCII letter (CJK ideographs) is one unit per character.
                n += 1;
            }
        }
    }
    n
}

/// Units per minute of talk time of the selected segments; `None` without speech.
pub fn speech_rate<'a>(segs: impl Iterator<Item = &'a Segment> + Clone) -> Option<f64> {
    let talk_ms = total(&union(segs.clone()));
    if talk_ms == 0 {
        return None;
    }
    let n: usize = segs.map(|s| units(&s.text)).sum();
    Some(n as f64 * 60_000.0 / talk_ms as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(speaker: Speaker, start_ms: u64, end_ms: u64, text: &str) -> Segment {
        Segment {
            speaker,
            start_ms,
            end_ms,
            text: text.into(),
        }
    }

    fn call(segments: Vec<Segment>) -> Transcript {
        Transcript {
            call_id: "c".into(),
            language: None,
            duration_ms: 60_000,
            model: "m".into(),
            segments,
        }
    }

    #[test]
    fn ratio_silence_overtalk() {
        let t = call(vec![
            seg(Speaker::Agent, 1_000, 7_000, "a"),
            seg(Speaker::Customer, 6_000, 8_000, "b"),
            seg(Speaker::Agent, 20_000, 22_000, "c"),
            seg(Speaker::Customer, 21_500, 24_000, "d"),
        ]);
        // agent 8 s, customer 4.5 s
        let r = talk_ratio(&t).unwrap();
        assert!((r - 8.0 / 12.5).abs() < 1e-9, "{r}");
        assert_eq!(
            longest_silence(&t),
            Some(Span {
                start_ms: 8_000,
                end_ms: 20_000
            })
        );
        let o = overtalk(&t).unwrap();
        assert_eq!(
            o,
            vec![
                Span {
                    start_ms: 6_000,
                    end_ms: 7_000
                },
                Span {
                    start_ms: 21_500,
                    end_ms: 22_000
                }
            ]
        );
        assert_eq!(total_ms(&o), 1_500);
    }

    #[test]
    fn mono_has_no_ratio_or_overtalk_but_has_silence() {
        let t = call(vec![
            seg(Speaker::Mixed, 0, 1_000, "x"),
            seg(Speaker::Mixed, 4_000, 5_000, "y"),
        ]);
        assert_eq!(talk_ratio(&t), None);
        assert_eq!(overtalk(&t), None);
        assert_eq!(longest_silence(&t).map(|s| s.len()), Some(3_000));
    }

    #[test]
    fn overlapping_segments_of_one_speaker_are_merged() {
        let t = call(vec![
            seg(Speaker::Agent, 0, 5_000, "a"),
            seg(Speaker::Agent, 4_000, 6_000, "b"),
            seg(Speaker::Customer, 10_000, 12_000, "c"),
        ]);
        assert_eq!(talk_ratio(&t), Some(6.0 / 8.0));
        assert_eq!(total_ms(&overtalk(&t).unwrap()), 0);
        assert_eq!(longest_silence(&t).map(|s| s.len()), Some(4_000));
    }

    #[test]
    fn units_and_rate() {
        assert_eq!(units("您好，我是小李"), 6);
        assert_eq!(units("Hello, I'm Li from ABC bank."), 6);
        assert_eq!(units("我是Li，calling from 平安"), 7);
        let segs = [seg(
            Speaker::Agent,
            0,
            30_000,
            "one two three four five six",
        )];
        assert_eq!(speech_rate(segs.iter()), Some(12.0));
    }
}
