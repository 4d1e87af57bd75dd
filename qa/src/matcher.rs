//! Phrase matching that tolerates ASR noise: one script (traditional -> simplified),
//! fuzzy English words, Chinese characters compared by pinyin, and a simple negation rule.

use pinyin::ToPinyin;

/// Sentence-final particles whisper swaps freely.
const PARTICLES: &[char] = &['了', '啦', '吧', '呀', '啊', '呢', '嘛', '哦', '喽'];
/// Most tokens a `*` (or `…`) in a phrase may skip, e.g. `这里是*公司`.
const MAX_GAP: usize = 10;
/// How many tokens before a match are searched for a negator.
const NEGATION_WINDOW: usize = 3;
/// A Chinese phrase part with at least this many characters may differ by one edit.
const CJK_FUZZY_MIN_LEN: usize = 4;

/// One unit of normalised text: a Chinese character (with its toneless pinyin) or a
/// lowercase word / number made of ASCII letters and digits.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    Cjk {
        ch: char,
        pinyin: Option<&'static str>,
    },
    Word(String),
}

impl Token {
    fn is_cjk(&self) -> bool {
        matches!(self, Token::Cjk { .. })
    }

    /// `self` is a token of the phrase, `text` one of the transcript.
    fn matches(&self, text: &Token) -> bool {
        match (self, text) {
            (Token::Cjk { ch: a, pinyin: pa }, Token::Cjk { ch: b, pinyin: pb }) => {
                // 客服 heard as 克服: same sound, different character. Sentence-final
                // particles are interchangeable (不要再打了 / 不要再打啦).
                a == b
                    || (pa.is_some() && pa == pb)
                    || (PARTICLES.contains(a) && PARTICLES.contains(b))
            }
            (Token::Word(p), Token::Word(t)) => word_matches(p, t),
            _ => false,
        }
    }
}

/// Text split into clauses (at punctuation) of tokens. Negation never crosses a clause.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    clauses: Vec<Vec<Token>>,
}

/// Normalises and tokenises transcript text once, for matching many phrases against it.
pub fn prepare(text: &str) -> Prepared {
    let norm = normalize(text);
    let mut clauses = Vec::new();
    let mut clause = Vec::new();
    let mut word = String::new();
    let flush_word = |word: &mut String, clause: &mut Vec<Token>| {
        if !word.is_empty() {
            clause.push(Token::Word(std::mem::take(word)));
        }
    };
    for c in norm.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else if c == '\'' || c == '\u{2019}' {
            // "don't" and "dont" must compare equal: apostrophes vanish inside words.
        } else if is_cjk(c) {
            flush_word(&mut word, &mut clause);
            clause.push(Token::Cjk {
                ch: c,
                pinyin: c.to_pinyin().map(|p| p.plain()),
            });
        } else {
            flush_word(&mut word, &mut clause);
            if is_clause_break(c) && !clause.is_empty() {
                clauses.push(std::mem::take(&mut clause));
            }
        }
    }
    flush_word(&mut word, &mut clause);
    if !clause.is_empty() {
        clauses.push(clause);
    }
    Prepared { clauses }
}

/// One script and one case: traditional -> simplified, full-width -> ASCII, lowercase.
pub fn normalize(text: &str) -> String {
    callqa_ingest::text::normalize_zh(text).to_lowercase()
}

fn is_cjk(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{F900}'..='\u{FAFF}')
}

fn is_clause_break(c: char) -> bool {
    matches!(
        c,
        ',' | '.' | '!' | '?' | ';' | ':' | '，' | '。' | '！' | '？' | '；' | '：' | '、' | '\n'
    )
}

/// A compiled phrase: parts separated by `*`/`…` gaps, each a token sequence.
#[derive(Debug, Clone)]
pub struct Phrase {
    /// The phrase as written in the scorecard.
    pub text: String,
    parts: Vec<Vec<Token>>,
}

/// Where a phrase was found in a [`Prepared`] text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// A negator ("不", "not", ...) stood just before the match in the same clause.
    pub negated: bool,
}

impl Phrase {
    /// Compiles `text`; `None` when nothing matchable is left after normalising.
    pub fn compile(text: &str) -> Option<Phrase> {
        let parts: Vec<Vec<Token>> = text
            .split(['*', '…'])
            .map(|p| prepare(p).clauses.into_iter().flatten().collect::<Vec<_>>())
            .filter(|p: &Vec<Token>| !p.is_empty())
            .collect();
        if parts.is_empty() {
            return None;
        }
        Some(Phrase {
            text: text.to_string(),
            parts,
        })
    }

    /// The best occurrence in `text`: a non-negated one if any, else a negated one.
    pub fn find(&self, text: &Prepared) -> Option<Hit> {
        let mut negated_hit = None;
        for clause in &text.clauses {
            for start in self.match_starts(clause) {
                if is_negated(&clause[..start]) {
                    negated_hit = Some(Hit { negated: true });
                } else {
                    return Some(Hit { negated: false });
                }
            }
        }
        negated_hit
    }

    /// Start positions in `clause` where the whole phrase (all parts, in order) matches.
    fn match_starts(&self, clause: &[Token]) -> Vec<usize> {
        let (first, rest) = match self.parts.split_first() {
            Some(x) => x,
            None => return Vec::new(),
        };
        let mut starts = Vec::new();
        for (start, end) in part_matches(first, clause, 0, clause.len()) {
            if rest_matches(rest, clause, end) {
                starts.push(start);
            }
        }
        starts
    }
}

/// Whether `parts` match in order after `from`, each within `MAX_GAP` tokens of the last.
fn rest_matches(parts: &[Vec<Token>], clause: &[Token], from: usize) -> bool {
    let (part, rest) = match parts.split_first() {
        Some(x) => x,
        None => return true,
    };
    let last_start = (from + MAX_GAP).min(clause.len());
    part_matches(part, clause, from, last_start + 1)
        .into_iter()
        .any(|(_, end)| rest_matches(rest, clause, end))
}

/// All (start, end) spans of `part` in `clause` with start in `from..start_limit`.
fn part_matches(
    part: &[Token],
    clause: &[Token],
    from: usize,
    start_limit: usize,
) -> Vec<(usize, usize)> {
    let m = part.len();
    let cjk_len = part.iter().filter(|t| t.is_cjk()).count();
    let fuzzy = cjk_len >= CJK_FUZZY_MIN_LEN;
    let mut out = Vec::new();
    let limit = start_limit.min(clause.len());
    for start in from..limit {
        // Every kind of match below starts with the phrase's first token.
        if !part[0].matches(&clause[start]) {
            continue;
        }
        if start + m <= clause.len()
            && part
                .iter()
                .zip(&clause[start..start + m])
                .all(|(p, t)| p.matches(t))
        {
            out.push((start, start + m));
            continue;
        }
        if !fuzzy {
            continue;
        }
        // One inserted, dropped or misheard character in a long Chinese phrase. Both ends
        // must match so that e.g. 别再打了 never matches a bare 再打了 or 不要再打折.
        for len in [m - 1, m, m + 1] {
            let end = start + len;
            if end > clause.len() || len < 2 {
                continue;
            }
            let window = &clause[start..end];
            let ends_ok = part[m - 1].matches(&window[len - 1]);
            if ends_ok && token_distance(part, window) <= 1 {
                out.push((start, end));
                break;
            }
        }
    }
    out
}

/// Levenshtein distance over tokens, tokens equal when [`Token::matches`].
fn token_distance(a: &[Token], b: &[Token]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ta) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, tb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(!ta.matches(tb));
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// English words: one edit allowed per five characters of the phrase word, after
/// trying the text word without a common inflection ("complaints" -> "complaint").
/// Numbers (12315) must be exact.
fn word_matches(phrase: &str, text: &str) -> bool {
    if phrase == text {
        return true;
    }
    if phrase.bytes().any(|b| b.is_ascii_digit()) || text.bytes().any(|b| b.is_ascii_digit()) {
        return false;
    }
    let allowed = phrase.chars().count() / 5;
    if allowed == 0 {
        return false;
    }
    let plen = phrase.chars().count();
    let close = |v: &str| {
        v.chars().count().abs_diff(plen) <= allowed && char_distance(phrase, v) <= allowed
    };
    close(text)
        || ["s", "es", "ed", "d", "ing"]
            .iter()
            .filter_map(|suffix| text.strip_suffix(suffix))
            .any(|stem| stem.len() >= 3 && close(stem))
}

fn char_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

const ZH_NEGATORS: &[char] = &['不', '没', '别', '未', '无', '非', '勿'];
const EN_NEGATORS: &[&str] = &[
    "not", "no", "never", "dont", "doesnt", "didnt", "wont", "cant", "cannot", "isnt", "arent",
    "wasnt", "werent", "shouldnt", "wouldnt", "havent", "hasnt", "without", "nothing",
];

/// The rule: a negator among the last [`NEGATION_WINDOW`] tokens of the clause before
/// the match negates it ("我不要投诉", "I'm not going to complain"), except the double
/// negative 不得不 ("have to").
fn is_negated(before: &[Token]) -> bool {
    let window = &before[before.len().saturating_sub(NEGATION_WINDOW)..];
    let chars: String = window
        .iter()
        .filter_map(|t| match t {
            Token::Cjk { ch, .. } => Some(*ch),
            Token::Word(_) => None,
        })
        .collect();
    if chars.contains("不得不") {
        return false;
    }
    window.iter().any(|t| match t {
        Token::Cjk { ch, .. } => ZH_NEGATORS.contains(ch),
        Token::Word(w) => EN_NEGATORS.contains(&w.as_str()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(phrase: &str, text: &str) -> Option<Hit> {
        Phrase::compile(phrase).and_then(|p| p.find(&prepare(text)))
    }

    fn plain(phrase: &str, text: &str) -> bool {
        find(phrase, text) == Some(Hit { negated: false })
    }

    #[test]
    fn exact_chinese_and_traditional() {
        assert!(plain("投诉", "我要投诉你们"));
        assert!(plain("投诉", "我要投訴你們"));
        assert!(plain("投訴", "我要投诉"));
        assert!(!plain("投诉", "我要退款"));
    }

    #[test]
    fn english_is_case_and_punctuation_insensitive() {
        assert!(plain("file a complaint", "I want to FILE a complaint!"));
        assert!(plain("don't call me again", "Dont call me again."));
        assert!(!plain("file a complaint", "a file complaint"));
    }

    #[test]
    fn english_fuzzy_words() {
        assert!(plain("complain", "I will complan about this"));
        // A transposition is two edits: too many for an 8-letter word.
        assert!(!plain("complain", "I will complian about this"));
        assert!(plain("refund", "I want my refunds"));
        assert!(plain("complaint", "I have complaints"));
        assert!(plain("guaranteed", "returns are garanteed"));
        // Short words must be exact: "sue" is not "see".
        assert!(!plain("sue", "I see"));
        // Numbers are exact.
        assert!(!plain("12315", "call 12345"));
        assert!(plain("12315", "我打12315"));
    }

    #[test]
    fn chinese_pinyin_homophones() {
        // 客服 misheard as 克服 (both ke fu).
        assert!(plain("客服", "我找克服"));
        // 骚扰 vs 烧咬 are not homophones: no match for a 2-char phrase.
        assert!(!plain("骚扰", "烧咬"));
        // Different sound, different char: no match.
        assert!(!plain("退款", "退货"));
    }

    #[test]
    fn chinese_one_edit_for_long_phrases() {
        assert!(plain("保证赚钱", "我们保证挣钱的"));
        assert!(plain("不要再打了", "你们不要再打啦电话"));
        assert!(plain("不要再打了", "不要再给打了"));
        assert!(plain("不要再打了", "你们不要老打了"));
        // A dropped last character is not enough.
        assert!(!plain("不要再打了", "不要再打折"));
        // Ends must match: a bare 再打了 is not 别再打了.
        assert!(!plain("别再打了", "我等会再打了"));
        // Three-character phrases stay exact.
        assert!(!plain("别打了", "别拍了"));
    }

    #[test]
    fn wildcard_gap() {
        assert!(plain("这里是*公司", "这里是平安保险公司"));
        assert!(plain("这里是*公司", "这里是公司"));
        assert!(!plain(
            "这里是*公司",
            "这里是一个非常非常非常非常长的名字的公司"
        ));
        assert!(plain(
            "calling from * bank",
            "I'm calling from the city bank"
        ));
    }

    #[test]
    fn negation_rule() {
        assert_eq!(find("投诉", "我不要投诉"), Some(Hit { negated: true }));
        assert_eq!(find("投诉", "我没有想投诉"), Some(Hit { negated: true }));
        assert_eq!(
            find("complain", "I'm not going to complain"),
            Some(Hit { negated: true })
        );
        assert_eq!(
            find("refund", "I don't want a refund"),
            Some(Hit { negated: true })
        );
        // The negator must be close and in the same clause.
        assert!(plain("投诉", "不，我要投诉"));
        assert!(plain("refund", "No, I want a refund"));
        assert!(plain("投诉", "我不得不投诉"));
        // A negator inside the phrase itself does not negate it.
        assert!(plain("不要再打了", "不要再打了"));
        // A later plain occurrence wins over an earlier negated one.
        assert!(plain("投诉", "我不投诉。算了我还是要投诉"));
    }

    #[test]
    fn distances() {
        assert_eq!(char_distance("complain", "complian"), 2);
        assert_eq!(char_distance("kitten", "sitting"), 3);
        assert!(word_matches("lawyer", "lawyers"));
        assert!(!word_matches("cancel", "council"));
    }
}
