//! Text normalisation shared by every stage that stores or matches transcript text:
//! traditional Chinese to simplified, full-width ASCII to half-width.

/// Normalise `s` to one script so that what whisper writes and what users type compare equal.
///
/// whisper switches between traditional and simplified characters from file to file
/// (投訴 vs 投诉), and CJK input methods produce full-width Latin letters, digits and
/// punctuation (ｒｅｆｕｎｄ, ＂). Both are folded here: traditional characters become
/// simplified ones (a character table with context rules, from `fast2s`), U+FF01..U+FF5E
/// become their ASCII counterparts and the ideographic space U+3000 becomes a space.
///
/// Every character maps to exactly one character, so the result has the same number of
/// `char`s as the input; callers may rely on that to map positions back to the original.
pub fn normalize_zh(s: &str) -> String {
    let simplified = fast2s::convert(s);
    if !simplified.chars().any(is_full_width) {
        return simplified;
    }
    simplified.chars().map(to_half_width).collect()
}

fn is_full_width(c: char) -> bool {
    matches!(c, '\u{FF01}'..='\u{FF5E}' | '\u{3000}')
}

fn to_half_width(c: char) -> char {
    match c {
        '\u{3000}' => ' ',
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_zh;

    #[test]
    fn traditional_becomes_simplified() {
        assert_eq!(normalize_zh("投訴"), "投诉");
        assert_eq!(normalize_zh("電話"), "电话");
        assert_eq!(
            normalize_zh("我要投訴你們，不要再打電話了"),
            // The full-width comma is full-width ASCII too.
            "我要投诉你们,不要再打电话了"
        );
        // CJK punctuation outside the full-width ASCII block stays.
        assert_eq!(normalize_zh("為什麼。"), "为什么。");
    }

    #[test]
    fn simplified_and_english_unchanged() {
        assert_eq!(normalize_zh("退款"), "退款");
        assert_eq!(normalize_zh("我要投诉"), "我要投诉");
        let en = "I want a refund, stop calling me! 42";
        assert_eq!(normalize_zh(en), en);
        assert_eq!(normalize_zh(""), "");
    }

    #[test]
    fn full_width_ascii_becomes_half_width() {
        assert_eq!(
            normalize_zh("ｒｅｆｕｎｄ　ＡＢＣ１２３！"),
            "refund ABC123!"
        );
        assert_eq!(normalize_zh("申請ｒｅｆｕｎｄ"), "申请refund");
    }

    #[test]
    fn char_count_is_preserved() {
        for s in ["投訴電話", "ｒｅｆｕｎｄ　了", "mixed 退款 refund 們"] {
            assert_eq!(normalize_zh(s).chars().count(), s.chars().count(), "{s}");
        }
    }
}
