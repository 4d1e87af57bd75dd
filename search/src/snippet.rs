//! Snippets: the segments of a hit that contain query terms, with the terms in `<b>…</b>`,
//! each pointing at the segment's start time and speaker.

use callqa_ingest::transcript::{Segment, Speaker};
use serde::{Deserialize, Serialize};
use tantivy::tokenizer::TextAnalyzer;

use crate::query::HighlightTerms;

/// One highlighted piece of a transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snippet {
    /// HTML: the segment text escaped, matched words wrapped in `<b>…</b>`.
    pub text: String,
    pub start_ms: u64,
    pub speaker: Speaker,
}

/// Segments longer than this (in chars) are cut to a window around the first match.
const MAX_SNIPPET_CHARS: usize = 200;

/// Up to `max` snippets, in time order, from the segments whose speaker is allowed
/// (`None`: all) and that contain a highlight term. `analyzer` must be the index-time one,
/// so sub-words and stems match exactly as they were indexed.
pub fn build(
    segments: &[Segment],
    speaker: Option<Speaker>,
    terms: &HighlightTerms,
    analyzer: &mut TextAnalyzer,
    max: usize,
) -> Vec<Snippet> {
    if terms.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for seg in segments {
        if out.len() >= max {
            break;
        }
        if speaker.is_some_and(|s| s != seg.speaker) {
            continue;
        }
        let ranges = matched_ranges(&seg.text, terms, analyzer);
        if ranges.is_empty() {
            continue;
        }
        out.push(Snippet {
            text: highlight(&seg.text, &ranges),
            start_ms: seg.start_ms,
            speaker: seg.speaker,
        });
    }
    out
}

/// Byte ranges of matched tokens, sorted and merged (search-mode sub-words overlap).
fn matched_ranges(
    text: &str,
    terms: &HighlightTerms,
    analyzer: &mut TextAnalyzer,
) -> Vec<(usize, usize)> {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while let Some(t) = stream.next() {
        // Stored text is already normalised, so token offsets index into it directly;
        // guard anyway so a mismatch can never panic on a char boundary.
        if terms.matches(&t.text)
            && t.offset_to <= text.len()
            && text.is_char_boundary(t.offset_from)
            && text.is_char_boundary(t.offset_to)
        {
            ranges.push((t.offset_from, t.offset_to));
        }
    }
    ranges.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
    for (from, to) in ranges {
        match merged.last_mut() {
            Some(last) if from <= last.1 => last.1 = last.1.max(to),
            _ => merged.push((from, to)),
        }
    }
    merged
}

/// Escapes `text` and wraps `ranges` in `<b>`; long text is cut around the first range.
fn highlight(text: &str, ranges: &[(usize, usize)]) -> String {
    let (window_from, window_to) = window(text, ranges.first().map_or(0, |r| r.0));
    let mut out = String::with_capacity(text.len() + ranges.len() * 7);
    if window_from > 0 {
        out.push('…');
    }
    let mut cursor = window_from;
    for &(from, to) in ranges {
        if to <= window_from || from >= window_to {
            continue;
        }
        let (from, to) = (from.max(window_from), to.min(window_to));
        escape_into(&text[cursor..from], &mut out);
        out.push_str("<b>");
        escape_into(&text[from..to], &mut out);
        out.push_str("</b>");
        cursor = to;
    }
    escape_into(&text[cursor..window_to], &mut out);
    if window_to < text.len() {
        out.push('…');
    }
    out
}

/// A char-aligned byte window of at most `MAX_SNIPPET_CHARS` chars starting a little
/// before `anchor`.
fn window(text: &str, anchor: usize) -> (usize, usize) {
    let starts: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    if starts.len() <= MAX_SNIPPET_CHARS {
        return (0, text.len());
    }
    let anchor_char = starts.partition_point(|&i| i < anchor);
    let first = anchor_char
        .saturating_sub(MAX_SNIPPET_CHARS / 4)
        .min(starts.len() - MAX_SNIPPET_CHARS);
    let last = first + MAX_SNIPPET_CHARS;
    let to = starts.get(last).copied().unwrap_or(text.len());
    (starts[first], to)
}

fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::{analyzer, Mode};

    fn seg(speaker: Speaker, start_ms: u64, text: &str) -> Segment {
        Segment {
            speaker,
            start_ms,
            end_ms: start_ms + 1000,
            text: text.to_string(),
        }
    }

    fn terms(exact: &[&str], prefixes: &[&str]) -> HighlightTerms {
        HighlightTerms {
            exact: exact.iter().map(|s| s.to_string()).collect(),
            prefixes: prefixes.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn highlights_stems_and_chinese_and_escapes_html() {
        let segs = vec![
            seg(Speaker::Agent, 0, "hello <there>"),
            seg(Speaker::Customer, 1500, "I was Refunded & 我要投诉退款"),
        ];
        let mut a = analyzer(Mode::Index);
        let s = build(&segs, None, &terms(&["refund", "退款"], &[]), &mut a, 3);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].start_ms, 1500);
        assert_eq!(s[0].speaker, Speaker::Customer);
        assert_eq!(s[0].text, "I was <b>Refunded</b> &amp; 我要投诉<b>退款</b>");
    }

    #[test]
    fn speaker_restriction_and_limit() {
        let segs: Vec<Segment> = (0..6)
            .map(|i| {
                let who = if i % 2 == 0 {
                    Speaker::Agent
                } else {
                    Speaker::Customer
                };
                seg(who, i * 1000, "refund please")
            })
            .collect();
        let mut a = analyzer(Mode::Index);
        let s = build(
            &segs,
            Some(Speaker::Customer),
            &terms(&["refund"], &[]),
            &mut a,
            2,
        );
        assert_eq!(
            s.iter().map(|s| s.start_ms).collect::<Vec<_>>(),
            vec![1000, 3000]
        );
    }

    #[test]
    fn prefix_terms_highlight_whole_word() {
        let segs = vec![seg(Speaker::Mixed, 7, "a complaint about refunds")];
        let mut a = analyzer(Mode::Index);
        let s = build(&segs, None, &terms(&[], &["complai"]), &mut a, 3);
        assert_eq!(s[0].text, "a <b>complaint</b> about refunds");
    }

    #[test]
    fn long_segments_are_windowed_around_the_match() {
        let long = format!("{} refund {}", "x ".repeat(300), "y ".repeat(300));
        let segs = vec![seg(Speaker::Agent, 0, &long)];
        let mut a = analyzer(Mode::Index);
        let s = build(&segs, None, &terms(&["refund"], &[]), &mut a, 3);
        assert!(s[0].text.contains("<b>refund</b>"));
        assert!(s[0].text.starts_with('…') && s[0].text.ends_with('…'));
        assert!(s[0].text.chars().count() < 220, "{}", s[0].text.len());
    }
}
