//! The tantivy tokenizer for transcript text: jieba word segmentation for Chinese runs,
//! word splitting for everything else, then lower-casing and English stemming.
//!
//! Positions are chosen so that phrase queries work even though jieba's search mode emits
//! overlapping words: a Chinese token's position is the index of its first character
//! (counted from the start of the run, on top of the words before it), a Latin word takes
//! one position. `我要投诉` at index time yields 我要@0 投诉@2 (plus sub-words of longer
//! words at their own character offsets); the query side, which uses jieba's precise mode,
//! yields the same offsets, so the phrase query lines up whatever jieba did around it.

use std::sync::{Arc, OnceLock};

use callqa_ingest::text::normalize_zh;
use jieba_rs::Jieba;
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, Stemmer, TextAnalyzer, Token, TokenStream, Tokenizer,
};

/// Name the index-time analyzer is registered under (the text fields' tokenizer).
pub const INDEX_TOKENIZER: &str = "callqa_text";

/// Tokens longer than this (in bytes) are dropped: base64 blobs, URLs, whisper garbage.
const MAX_TOKEN_BYTES: usize = 60;

/// jieba's dictionary takes ~100 ms and a few MB to load; share one per process.
fn jieba() -> Arc<Jieba> {
    static JIEBA: OnceLock<Arc<Jieba>> = OnceLock::new();
    JIEBA.get_or_init(|| Arc::new(Jieba::new())).clone()
}

/// How Chinese runs are segmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// jieba search mode: precise words plus the dictionary words inside long ones, so a
    /// query for 投诉 finds a text that jieba cut as 投诉电话.
    Index,
    /// jieba precise mode: one non-overlapping cut, so a query phrase has one reading.
    Query,
}

/// Segments text into words; see the module doc for positions.
#[derive(Clone)]
pub struct TranscriptTokenizer {
    mode: Mode,
    jieba: Arc<Jieba>,
    tokens: TokenBuf,
}

/// Tokens of the current text. Token strings are reused across calls (only `len` is
/// reset), which saves an allocation per token on the indexing hot path.
#[derive(Clone, Default)]
struct TokenBuf {
    tokens: Vec<Token>,
    len: usize,
}

impl TokenBuf {
    fn clear(&mut self) {
        self.len = 0;
    }

    fn push(&mut self, text: &str, from: usize, to: usize, position: usize) {
        if self.len == self.tokens.len() {
            self.tokens.push(Token::default());
        }
        let t = &mut self.tokens[self.len];
        t.text.clear();
        t.text.push_str(text);
        t.offset_from = from;
        t.offset_to = to;
        t.position = position;
        t.position_length = 1;
        self.len += 1;
    }
}

impl TranscriptTokenizer {
    pub fn new(mode: Mode) -> Self {
        TranscriptTokenizer {
            mode,
            jieba: jieba(),
            tokens: TokenBuf::default(),
        }
    }
}

/// The full analyzer: segmentation, long-token removal, lower-casing, English stemming
/// (Chinese tokens pass through the stemmer unchanged).
pub fn analyzer(mode: Mode) -> TextAnalyzer {
    TextAnalyzer::builder(TranscriptTokenizer::new(mode))
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// Streams the tokens computed eagerly by [`TranscriptTokenizer`].
pub struct VecTokenStream<'a> {
    tokens: &'a mut [Token],
    next: usize,
}

impl TokenStream for VecTokenStream<'_> {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

impl Tokenizer for TranscriptTokenizer {
    type TokenStream<'a> = VecTokenStream<'a>;

    /// Query mode normalises (`normalize_zh`) what the user typed; token offsets then refer
    /// to the normalised text. Index mode skips it: the indexer normalises segment text
    /// before storing and indexing it, so doing it again would only cost throughput.
    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream<'a> {
        self.tokens.clear();
        if self.mode == Mode::Index || text.is_ascii() {
            segment(text, self.mode, &self.jieba, &mut self.tokens);
        } else {
            segment(
                &normalize_zh(text),
                self.mode,
                &self.jieba,
                &mut self.tokens,
            );
        }
        VecTokenStream {
            tokens: &mut self.tokens.tokens[..self.tokens.len],
            next: 0,
        }
    }
}

/// Han ideographs (the CJK blocks whisper and input methods produce).
pub(crate) fn is_han(c: char) -> bool {
    matches!(c,
        '\u{4E00}'..='\u{9FFF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2FFFF}'
        | '\u{3007}')
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Class {
    Han,
    Word,
    Separator,
}

fn class(c: char) -> Class {
    if is_han(c) {
        Class::Han
    } else if c.is_alphanumeric() {
        Class::Word
    } else {
        Class::Separator
    }
}

/// Splits `text` into runs of one class and tokenizes each run.
fn segment(text: &str, mode: Mode, jieba: &Jieba, out: &mut TokenBuf) {
    let mut position = 0usize;
    let mut iter = text.char_indices().peekable();
    while let Some((start, c)) = iter.next() {
        let cls = class(c);
        let mut end = start + c.len_utf8();
        let mut chars = 1usize;
        while let Some(&(i, next)) = iter.peek() {
            if class(next) != cls {
                break;
            }
            end = i + next.len_utf8();
            chars += 1;
            iter.next();
        }
        let run = &text[start..end];
        match cls {
            Class::Separator => {}
            Class::Word => {
                out.push(run, start, end, position);
                position += 1;
            }
            Class::Han => {
                segment_han(run, start, position, mode, jieba, out);
                position += chars;
            }
        }
    }
}

fn segment_han(
    run: &str,
    run_start: usize,
    base_position: usize,
    mode: Mode,
    jieba: &Jieba,
    out: &mut TokenBuf,
) {
    // HMM off: it guesses unknown words from context, so the same characters could be cut
    // differently in a transcript and in a query; dictionary-only cuts are repeatable and
    // unknown words fall back to single characters, which phrase queries still match.
    let words = match mode {
        Mode::Index => jieba.cut_for_search(run, false),
        Mode::Query => jieba.cut(run, false),
    };
    let first = out.len;
    for w in words {
        out.push(
            w.word,
            run_start + w.byte_start,
            run_start + w.byte_end,
            base_position + w.start,
        );
    }
    // Search mode emits a long word's sub-words before the word; tantivy wants each term's
    // positions increasing, so order by position (then shorter first).
    out.tokens[first..out.len].sort_by_key(|t| (t.position, t.offset_to));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(mode: Mode, text: &str) -> Vec<(String, usize)> {
        let mut a = analyzer(mode);
        let mut stream = a.token_stream(text);
        let mut out = Vec::new();
        while let Some(t) = stream.next() {
            out.push((t.text.clone(), t.position));
        }
        out
    }

    fn words(mode: Mode, text: &str) -> Vec<String> {
        tokens(mode, text).into_iter().map(|(w, _)| w).collect()
    }

    #[test]
    fn refund_is_one_word_and_distinct_from_return_and_payment() {
        assert_eq!(words(Mode::Query, "退款"), vec!["退款"]);
        let goods = words(Mode::Index, "我想退货");
        assert!(goods.contains(&"退货".to_string()), "{goods:?}");
        assert!(!goods.contains(&"退款".to_string()), "{goods:?}");
        let payment = words(Mode::Index, "这笔款项已经到账");
        assert!(payment.contains(&"款项".to_string()), "{payment:?}");
        assert!(!payment.contains(&"退款".to_string()), "{payment:?}");
    }

    #[test]
    fn complaint_phrase_positions_line_up() {
        let q = tokens(Mode::Query, "我要投诉");
        let doc = tokens(Mode::Index, "你好我要投诉你们");
        // Every query token must appear in the document at the same relative offset.
        let (_, q0) = q[0];
        let doc_base = doc
            .iter()
            .find(|(w, _)| *w == q[0].0)
            .map(|(_, p)| *p)
            .expect("first query word indexed");
        for (w, p) in &q {
            assert!(
                doc.contains(&(w.clone(), doc_base + p - q0)),
                "{w}@{p}: query {q:?} doc {doc:?}"
            );
        }
    }

    #[test]
    fn stop_calling_is_segmented() {
        let w = words(Mode::Query, "不要再打了");
        assert!(w.len() >= 2, "{w:?}");
        assert_eq!(w.concat(), "不要再打了");
    }

    #[test]
    fn call_center_phrases_segment_as_expected() {
        let q = |t| tokens(Mode::Query, t);
        let owned = |v: &[(&str, usize)]| -> Vec<(String, usize)> {
            v.iter().map(|(w, p)| (w.to_string(), *p)).collect()
        };
        assert_eq!(q("我要投诉"), owned(&[("我", 0), ("要", 1), ("投诉", 2)]));
        assert_eq!(q("投诉电话"), owned(&[("投诉", 0), ("电话", 2)]));
        assert_eq!(
            q("不要再打了"),
            owned(&[("不要", 0), ("再", 2), ("打", 3), ("了", 4)])
        );
        // Index mode adds the dictionary words inside long words at their own offsets.
        let idx = tokens(Mode::Index, "中华人民共和国");
        assert!(idx.contains(&("人民".to_string(), 2)), "{idx:?}");
        assert!(idx.contains(&("中华人民共和国".to_string(), 0)), "{idx:?}");
        let positions: Vec<usize> = idx.iter().map(|(_, p)| *p).collect();
        assert!(positions.windows(2).all(|w| w[0] <= w[1]), "{idx:?}");
    }

    #[test]
    fn english_is_lowercased_and_stemmed() {
        assert_eq!(
            words(Mode::Index, "Refunds REFUNDED refund"),
            vec!["refund", "refund", "refund"]
        );
    }

    #[test]
    fn mixed_text_positions_and_normalisation() {
        let t = tokens(Mode::Query, "我要refund，投訴！ｃａｌｌｓ");
        assert_eq!(
            t,
            vec![
                ("我".to_string(), 0),
                ("要".to_string(), 1),
                ("refund".to_string(), 2),
                ("投诉".to_string(), 3),
                ("call".to_string(), 5)
            ]
        );
    }

    #[test]
    fn index_mode_offsets_point_at_the_word() {
        let text = "Hello 我要投诉电话";
        let mut a = analyzer(Mode::Index);
        let mut stream = a.token_stream(text);
        while let Some(t) = stream.next() {
            let raw = &text[t.offset_from..t.offset_to];
            assert_eq!(raw.to_lowercase(), t.text, "offsets of {t:?}");
        }
    }
}
