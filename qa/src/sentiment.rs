//! Lexicon-based sentiment for Chinese and English with negation and intensifiers,
//! and the customer's sentiment at the start vs the end of a call.

use std::collections::HashMap;
use std::sync::OnceLock;

use callqa_ingest::transcript::{Speaker, Transcript};

/// How many tokens a negator reaches forward ("not very good": two).
const NEGATION_REACH: usize = 3;
/// A negated word keeps this share of its strength, flipped: "not bad" is mildly good.
const NEGATION_FACTOR: f64 = -0.75;
/// Normalisation constant: a text's raw sum `s` maps to s / sqrt(s² + ALPHA).
const ALPHA: f64 = 4.0;

#[derive(Debug, Clone, Copy)]
enum Entry {
    /// Sentiment word with polarity/strength.
    Word(f64),
    /// 好: "good" on its own, but an intensifier right before another sentiment word
    /// ("好烦" = very annoying).
    Hao(f64),
    /// Multiplies the next sentiment word.
    Intensifier(f64),
    Negator,
    /// A set phrase with no sentiment (您好, 不好意思) that must not be split into parts.
    Neutral,
}

const ZH_WORDS: &[(&str, f64)] = &[
    ("满意", 1.0),
    ("很好", 1.2),
    ("不错", 1.0),
    ("谢谢", 0.8),
    ("感谢", 1.0),
    ("太好了", 1.5),
    ("开心", 1.0),
    ("高兴", 1.0),
    ("喜欢", 1.0),
    ("方便", 0.6),
    ("清楚", 0.5),
    ("明白了", 0.5),
    ("没问题", 0.6),
    ("棒", 1.2),
    ("专业", 0.8),
    ("耐心", 0.8),
    ("热情", 0.8),
    ("周到", 0.8),
    ("靠谱", 0.8),
    ("放心", 0.8),
    ("解决了", 1.0),
    ("好的", 0.4),
    ("可以", 0.3),
    ("没关系", 0.3),
    ("优惠", 0.5),
    ("划算", 0.8),
    ("不满", -1.2),
    ("生气", -1.2),
    ("失望", -1.2),
    ("差", -1.0),
    ("糟糕", -1.2),
    ("骗", -1.2),
    ("骗子", -1.5),
    ("骗人", -1.5),
    ("垃圾", -1.5),
    ("烦", -1.0),
    ("烦人", -1.2),
    ("讨厌", -1.2),
    ("投诉", -1.0),
    ("骚扰", -1.2),
    ("恶心", -1.5),
    ("坑", -1.0),
    ("坑人", -1.3),
    ("滚", -1.5),
    ("浪费", -1.0),
    ("无语", -1.0),
    ("郁闷", -1.0),
    ("难受", -1.0),
    ("气死", -1.5),
    ("过分", -1.2),
    ("离谱", -1.2),
    ("不行", -0.8),
    ("问题", -0.3),
    ("麻烦死了", -1.3),
    ("受够", -1.3),
    ("退款", -0.5),
    ("乱扣", -1.2),
    ("不靠谱", -1.2),
    ("忽悠", -1.2),
];
const ZH_INTENSIFIERS: &[(&str, f64)] = &[
    ("很", 1.3),
    ("非常", 1.6),
    ("太", 1.5),
    ("特别", 1.5),
    ("十分", 1.5),
    ("真", 1.3),
    ("真的", 1.3),
    ("超", 1.5),
    ("极其", 1.8),
    ("最", 1.6),
    ("挺", 1.2),
    ("有点", 0.7),
    ("有些", 0.7),
    ("稍微", 0.6),
    ("实在", 1.4),
    ("相当", 1.4),
];
const ZH_NEGATORS: &[&str] = &[
    "不",
    "没",
    "没有",
    "别",
    "不是",
    "并不",
    "从不",
    "从来没有",
    "未",
    "无",
    "毫不",
    "不太",
];
const ZH_NEUTRAL: &[&str] = &[
    "您好",
    "你好",
    "不好意思",
    "不客气",
    "好不好",
    "对不起",
    "不用",
    "没事",
];

const EN_WORDS: &[(&str, f64)] = &[
    ("good", 1.0),
    ("great", 1.3),
    ("excellent", 1.5),
    ("happy", 1.0),
    ("glad", 1.0),
    ("thanks", 0.8),
    ("thank", 0.8),
    ("helpful", 1.0),
    ("satisfied", 1.0),
    ("perfect", 1.3),
    ("wonderful", 1.4),
    ("love", 1.2),
    ("appreciate", 1.0),
    ("nice", 0.9),
    ("pleased", 1.0),
    ("awesome", 1.3),
    ("resolved", 0.8),
    ("clear", 0.5),
    ("convenient", 0.6),
    ("amazing", 1.4),
    ("fantastic", 1.4),
    ("kind", 0.8),
    ("polite", 0.8),
    ("patient", 0.8),
    ("fair", 0.5),
    ("interested", 0.6),
    ("like", 0.5),
    ("bad", -1.0),
    ("terrible", -1.5),
    ("awful", -1.5),
    ("angry", -1.3),
    ("upset", -1.2),
    ("annoyed", -1.1),
    ("annoying", -1.1),
    ("frustrated", -1.2),
    ("frustrating", -1.2),
    ("disappointed", -1.2),
    ("hate", -1.4),
    ("worst", -1.6),
    ("horrible", -1.5),
    ("useless", -1.3),
    ("rude", -1.3),
    ("scam", -1.5),
    ("complaint", -1.0),
    ("complain", -1.0),
    ("problem", -0.5),
    ("wrong", -0.7),
    ("unhappy", -1.2),
    ("ridiculous", -1.3),
    ("waste", -1.0),
    ("harassment", -1.4),
    ("harassing", -1.4),
    ("stupid", -1.3),
    ("poor", -0.9),
    ("fraud", -1.5),
    ("cheated", -1.4),
    ("lied", -1.2),
    ("liar", -1.4),
    ("unacceptable", -1.4),
    ("sick", -0.8),
    ("tired", -0.6),
    ("refund", -0.5),
    ("disgusting", -1.5),
    ("mad", -1.1),
];
const EN_INTENSIFIERS: &[(&str, f64)] = &[
    ("very", 1.5),
    ("really", 1.4),
    ("so", 1.3),
    ("extremely", 1.8),
    ("totally", 1.5),
    ("absolutely", 1.6),
    ("quite", 1.2),
    ("too", 1.3),
    ("incredibly", 1.7),
    ("super", 1.5),
    ("completely", 1.5),
    ("slightly", 0.6),
    ("somewhat", 0.7),
    ("bit", 0.7),
];
const EN_NEGATORS: &[&str] = &[
    "not", "no", "never", "dont", "doesnt", "didnt", "isnt", "wasnt", "arent", "werent", "wont",
    "cant", "cannot", "couldnt", "nothing", "hardly", "neither", "nor", "without", "aint",
];

struct Lexicon {
    zh: HashMap<&'static str, Entry>,
    zh_max_len: usize,
    en: HashMap<&'static str, Entry>,
}

fn lexicon() -> &'static Lexicon {
    static LEX: OnceLock<Lexicon> = OnceLock::new();
    LEX.get_or_init(|| {
        let mut zh = HashMap::new();
        for (w, v) in ZH_WORDS {
            zh.insert(*w, Entry::Word(*v));
        }
        zh.insert("好", Entry::Hao(0.8));
        for (w, v) in ZH_INTENSIFIERS {
            zh.insert(*w, Entry::Intensifier(*v));
        }
        for w in ZH_NEGATORS {
            zh.insert(*w, Entry::Negator);
        }
        for w in ZH_NEUTRAL {
            zh.insert(*w, Entry::Neutral);
        }
        let zh_max_len = zh.keys().map(|k| k.chars().count()).max().unwrap_or(1);
        let mut en = HashMap::new();
        for (w, v) in EN_WORDS {
            en.insert(*w, Entry::Word(*v));
        }
        for (w, v) in EN_INTENSIFIERS {
            en.insert(*w, Entry::Intensifier(*v));
        }
        for w in EN_NEGATORS {
            en.insert(*w, Entry::Negator);
        }
        Lexicon { zh, zh_max_len, en }
    })
}

/// Lexicon entries of one clause in order; `None` for tokens the lexicon lacks.
fn clause_entries(clause: &str, lex: &Lexicon) -> Vec<Option<Entry>> {
    // Byte offsets of every char, plus the end, so candidates are slices (no allocation).
    let offsets: Vec<usize> = clause
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(clause.len()))
        .collect();
    let chars: Vec<char> = clause.chars().collect();
    let mut out = Vec::new();
    let mut word = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphanumeric() || c == '\'' {
            word.clear();
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '\'') {
                if chars[i] != '\'' {
                    word.push(chars[i]);
                }
                i += 1;
            }
            out.push(lex.en.get(word.as_str()).copied());
        } else if c.is_whitespace() {
            i += 1;
        } else {
            // Forward maximum matching: the longest lexicon word starting here, so that
            // 不错 / 不满 / 没问题 win over the negators 不 / 没.
            let longest = lex.zh_max_len.min(chars.len() - i);
            let matched = (1..=longest).rev().find_map(|len| {
                lex.zh
                    .get(&clause[offsets[i]..offsets[i + len]])
                    .map(|e| (len, *e))
            });
            match matched {
                Some((len, e)) => {
                    out.push(Some(e));
                    i += len;
                }
                None => {
                    out.push(None);
                    i += 1;
                }
            }
        }
    }
    out
}

/// Raw (unbounded) sentiment of one clause and whether any sentiment word was found.
fn clause_score(entries: &[Option<Entry>]) -> (f64, bool) {
    let mut sum = 0.0;
    let mut found = false;
    let mut negated_until: Option<usize> = None;
    let mut boost = 1.0;
    for (i, e) in entries.iter().enumerate() {
        match e {
            Some(Entry::Negator) => negated_until = Some(i + NEGATION_REACH),
            Some(Entry::Intensifier(m)) => boost *= m,
            Some(Entry::Hao(_))
                if matches!(
                    entries.get(i + 1),
                    Some(Some(Entry::Word(_) | Entry::Hao(_)))
                ) =>
            {
                boost *= 1.4;
            }
            Some(Entry::Word(v) | Entry::Hao(v)) => {
                let negated = negated_until.is_some_and(|end| i <= end);
                let mut value = v * boost;
                if negated {
                    value *= NEGATION_FACTOR;
                }
                sum += value;
                found = true;
                negated_until = None;
                boost = 1.0;
            }
            Some(Entry::Neutral) | None => {}
        }
    }
    (sum, found)
}

/// Sentiment of `text` in -1..=1 (0 = neutral or no sentiment words) and whether it
/// carried any sentiment at all.
pub fn score_text_detail(text: &str) -> (f64, bool) {
    let lex = lexicon();
    let norm = crate::matcher::normalize(text);
    let mut sum = 0.0;
    let mut found = false;
    for clause in norm.split([',', '.', '!', '?', ';', '，', '。', '！', '？', '；', '\n']) {
        let (s, f) = clause_score(&clause_entries(clause, lex));
        sum += s;
        found |= f;
    }
    (sum / (sum * sum + ALPHA).sqrt(), found)
}

/// Sentiment of `text` in -1..=1.
pub fn score_text(text: &str) -> f64 {
    score_text_detail(text).0
}

/// The customer's sentiment early and late in a call.
#[derive(Debug, Clone, PartialEq)]
pub struct SentimentArc {
    /// Mean sentiment of the customer's opinionated segments in the first third.
    pub start: f64,
    /// The same for the last third.
    pub end: f64,
    /// Indices into `Transcript::segments` that carried sentiment in the first third.
    pub start_segments: Vec<usize>,
    pub end_segments: Vec<usize>,
}

/// Customer (or mono `mixed`) sentiment in the first and last thirds of the call, by
/// segment start time. `None` when the customer never speaks.
pub fn customer_arc(t: &Transcript) -> Option<SentimentArc> {
    let customer: Vec<(usize, &callqa_ingest::transcript::Segment)> = t
        .segments
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s.speaker, Speaker::Customer | Speaker::Mixed))
        .collect();
    if customer.is_empty() {
        return None;
    }
    let duration = t
        .duration_ms
        .max(t.segments.iter().map(|s| s.end_ms).max().unwrap_or(0))
        .max(1);
    let third = duration / 3;
    let mean = |pick: &dyn Fn(u64) -> bool| {
        let mut sum = 0.0;
        let mut idx = Vec::new();
        for (i, s) in &customer {
            if pick(s.start_ms) {
                let (v, found) = score_text_detail(&s.text);
                if found {
                    sum += v;
                    idx.push(*i);
                }
            }
        }
        let m = if idx.is_empty() {
            0.0
        } else {
            sum / idx.len() as f64
        };
        (m, idx)
    };
    let (start, start_segments) = mean(&|ms| ms < third);
    let (end, end_segments) = mean(&|ms| ms >= duration - third);
    Some(SentimentArc {
        start,
        end,
        start_segments,
        end_segments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use callqa_ingest::transcript::Segment;

    fn pos(s: &str) {
        let v = score_text(s);
        assert!(v > 0.1, "expected positive for {s:?}, got {v}");
    }
    fn neg(s: &str) {
        let v = score_text(s);
        assert!(v < -0.1, "expected negative for {s:?}, got {v}");
    }

    #[test]
    fn chinese_sentences() {
        pos("你们的服务很好，谢谢！");
        pos("好的，没问题，这个挺划算的。");
        pos("非常满意，客服很耐心。");
        pos("问题已经解决了，太好了。");
        pos("还不错，我挺喜欢的。");
        neg("我对你们的服务很不满意。");
        neg("你们这是骚扰，太烦人了！");
        neg("别再打了，真的很讨厌。");
        neg("你们就是骗子，我要投诉。");
        neg("这服务太差了，我很失望。");
        neg("好烦啊，不想听了。");
        // Negation flips: 不满意 / 不好 / 没有帮助 are negative, 不差 is mildly positive.
        neg("一点也不好。");
        pos("服务不差。");
        neg("我不高兴。");
        assert_eq!(score_text("您好，我是张三。"), 0.0);
        assert_eq!(score_text("不好意思，请问是王先生吗？"), 0.0);
    }

    #[test]
    fn english_sentences() {
        pos("Thank you, that was really helpful.");
        pos("Great, I'm very happy with the service.");
        pos("That sounds perfect, I appreciate it.");
        pos("The problem is resolved, thanks a lot.");
        pos("Not bad at all.");
        neg("This is the worst service I have ever had.");
        neg("I am extremely angry and frustrated.");
        neg("Stop harassing me, this is ridiculous.");
        neg("I'm not happy with this at all.");
        neg("You people are rude and useless.");
        neg("I don't like being lied to, it's a scam.");
        neg("I am not satisfied.");
        assert_eq!(score_text("My account number is 1234."), 0.0);
    }

    #[test]
    fn intensifiers_and_negation_change_strength() {
        assert!(score_text("very good") > score_text("good"));
        assert!(score_text("非常满意") > score_text("满意"));
        assert!(score_text("not good") < 0.0);
        assert!(score_text("not bad") > 0.0 && score_text("not bad") < score_text("good"));
        // Negation does not cross a clause.
        assert!(score_text("No, it was good") > 0.0);
    }

    fn seg(speaker: Speaker, start_ms: u64, text: &str) -> Segment {
        Segment {
            speaker,
            start_ms,
            end_ms: start_ms + 2000,
            text: text.into(),
        }
    }

    #[test]
    fn arc_compares_first_and_last_third() {
        let t = Transcript {
            call_id: "c".into(),
            language: Some("zh".into()),
            duration_ms: 90_000,
            model: "m".into(),
            segments: vec![
                seg(Speaker::Agent, 1000, "您好，我是小李。"),
                seg(Speaker::Customer, 5000, "你们太烦了，真讨厌。"),
                seg(Speaker::Customer, 40_000, "嗯。"),
                seg(Speaker::Customer, 80_000, "好的，谢谢，很满意。"),
            ],
        };
        let arc = customer_arc(&t).unwrap();
        assert!(arc.start < 0.0 && arc.end > 0.0, "{arc:?}");
        assert_eq!(arc.start_segments, vec![1]);
        assert_eq!(arc.end_segments, vec![3]);
        let agent_only = Transcript {
            segments: vec![seg(Speaker::Agent, 0, "hello")],
            ..t
        };
        assert!(customer_arc(&agent_only).is_none());
    }
}
