//! Gives the text whisper decoded from a packed window back to the utterances it was packed
//! from, clause by clause: a clause goes whole to the utterance the middle of its words falls in,
//! so no word (还|款, "I" | "understand") is split across two utterances by a token time
//! that ran early or late.

use super::pack::Pack;

/// A decoded text token: its bytes (possibly part of a UTF-8 character) and its estimated
/// position in the packed audio, in samples.
pub(crate) struct Token {
    pub piece: Vec<u8>,
    pub pos: usize,
}

/// The text of each utterance of `pk`, from the tokens of each whisper segment of its
/// window in decoding order. A clause ends at clause punctuation or at a segment's end;
/// clauses never go to an utterance before the previous clause's.
pub(crate) fn assign(pk: &Pack, segments: &[Vec<Token>]) -> Vec<Vec<u8>> {
    let mut out = vec![Vec::new(); pk.regions.len()];
    if out.is_empty() {
        return out;
    }
    let mut floor = 0;
    let mut sentence_ended = false;
    for seg in segments {
        for clause in seg.split_inclusive(|t| ends_clause(&t.piece)) {
            // The middle of the clause's words (of all its tokens if it has no word).
            let words: Vec<usize> = clause
                .iter()
                .filter(|t| has_word(&t.piece))
                .map(|t| t.pos)
                .collect();
            let at = if words.is_empty() {
                clause.iter().map(|t| t.pos).collect()
            } else {
                words
            };
            let (Some(&first), Some(&last)) = (at.iter().min(), at.iter().max()) else {
                continue;
            };
            let middle = first + (last - first) / 2;
            let region = pk.region_at(middle, sentence_ended).max(floor);
            floor = region;
            for t in clause {
                out[region].extend_from_slice(&t.piece);
            }
            sentence_ended = clause.last().is_some_and(|t| ends_sentence(&t.piece));
        }
    }
    out
}

/// Whether a token holds a letter, digit or character (not only punctuation or a partial
/// character).
fn has_word(piece: &[u8]) -> bool {
    String::from_utf8_lossy(piece)
        .chars()
        .any(|c| c.is_alphanumeric())
}

/// Whether a token closes a sentence (full stop, question or exclamation mark).
fn ends_sentence(piece: &[u8]) -> bool {
    std::str::from_utf8(piece).is_ok_and(|t| {
        t.trim_end()
            .ends_with(['.', '?', '!', '\u{3002}', '\u{ff1f}', '\u{ff01}'])
    })
}

/// Whether a token closes a clause: a sentence end, or a comma, semicolon or colon
/// (ASCII or full-width, and the Chinese enumeration comma).
fn ends_clause(piece: &[u8]) -> bool {
    ends_sentence(piece)
        || std::str::from_utf8(piece).is_ok_and(|t| {
            t.trim_end().ends_with([
                ',', ';', ':', '\u{ff0c}', '\u{3001}', '\u{ff1b}', '\u{ff1a}',
            ])
        })
}

#[cfg(test)]
mod tests {
    use super::super::pack::pack;
    use super::*;
    use crate::vad::Region;

    /// Two utterances of 100 samples packed with a 20-sample gap: the first at 0..100,
    /// the second at 120..220 of the packed audio.
    fn two() -> Pack {
        let pcm = vec![0.5f32; 1000];
        let regions = [
            Region { start: 0, end: 100 },
            Region {
                start: 500,
                end: 600,
            },
        ];
        pack(&pcm, &regions, 1000, 20).remove(0)
    }

    fn toks(list: &[(&str, usize)]) -> Vec<Token> {
        list.iter()
            .map(|(s, pos)| Token {
                piece: s.as_bytes().to_vec(),
                pos: *pos,
            })
            .collect()
    }

    fn text(out: &[Vec<u8>]) -> Vec<String> {
        out.iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    #[test]
    fn a_word_whose_time_runs_late_stays_with_its_clause() {
        // 还款 ends the first utterance, but 款's time falls in the second.
        let seg = toks(&[
            ("提醒", 40),
            ("您", 60),
            ("还", 95),
            ("款", 125),
            ("。", 128),
            ("好的", 150),
            ("，", 160),
            ("再见", 190),
        ]);
        assert_eq!(
            text(&assign(&two(), &[seg])),
            ["提醒您还款。", "好的，再见"]
        );
    }

    #[test]
    fn a_sentence_starting_early_goes_to_the_utterance_it_is_said_in() {
        // " I" is stamped before the first utterance ends; the rest of its clause is later.
        let seg = toks(&[
            (" card", 70),
            (" payment", 90),
            (".", 95),
            (" I", 98),
            (" understand", 130),
            (",", 150),
            (" goodbye", 180),
            ("!", 200),
        ]);
        assert_eq!(
            text(&assign(&two(), &[seg])),
            [" card payment.", " I understand, goodbye!"]
        );
    }

    #[test]
    fn clauses_never_go_back_and_segments_end_clauses() {
        // The second segment's clause is stamped in the first utterance, after text already
        // went to the second: it stays in the second.
        let a = toks(&[(" one", 130), (" two", 150)]);
        let b = toks(&[(" three", 10), (" four", 30)]);
        assert_eq!(text(&assign(&two(), &[a, b])), ["", " one two three four"]);
        // A partial character's bytes follow their clause, wherever they are stamped.
        let tui = "\u{9000}".as_bytes();
        let seg = vec![
            Token {
                piece: "我".as_bytes().to_vec(),
                pos: 20,
            },
            Token {
                piece: tui[..2].to_vec(),
                pos: 30,
            },
            Token {
                piece: tui[2..].to_vec(),
                pos: 200,
            },
        ];
        assert_eq!(text(&assign(&two(), &[seg])), ["我\u{9000}", ""]);
    }

    #[test]
    fn sentence_and_clause_ends_are_recognised() {
        assert!(ends_sentence(b"."));
        assert!(ends_sentence(b"?"));
        assert!(ends_sentence("\u{3002}".as_bytes()));
        assert!(!ends_sentence(b","));
        assert!(!ends_sentence(b" Mr"));
        assert!(ends_clause(b","));
        assert!(ends_clause("\u{ff0c}".as_bytes()));
        assert!(ends_clause(b"!"));
        assert!(!ends_clause(b" and"));
    }
}
