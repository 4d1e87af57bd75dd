//! Text normalisation shared by every stage that stores or matches transcript text:
//! traditional Chinese to simplified, full-width ASCII to half-width, 帐 to 账 where it means
//! an account; and spoken digit strings written as one number in transcripts.

/// Normalise `s` to one script so that what whisper writes and what users type compare equal.
///
/// whisper switches between traditional and simplified characters from file to file
/// (投訴 vs 投诉), and CJK input methods produce full-width Latin letters, digits and
/// punctuation (ｒｅｆｕｎｄ, ＂). Both are folded here: traditional characters become
/// simplified ones (a character table with context rules, from `fast2s`), U+FF01..U+FF5E
/// become their ASCII counterparts and the ideographic space U+3000 becomes a space.
/// whisper also writes the old form 帐 for 账 (帐单, 帐户, 转帐: bill, account, transfer),
/// which standard simplified Chinese keeps for curtains and tents; 帐 becomes 账 unless it
/// stands in a curtain or tent word (帐篷, 蚊帐).
///
/// Every character maps to exactly one character, so the result has the same number of
/// `char`s as the input; callers may rely on that to map positions back to the original.
pub fn normalize_zh(s: &str) -> String {
    let simplified = fast2s::convert(s);
    if !simplified.chars().any(|c| is_full_width(c) || c == '帐') {
        return simplified;
    }
    let chars: Vec<char> = simplified.chars().collect();
    (0..chars.len())
        .map(|i| match chars[i] {
            '帐' if !curtain_sense(i.checked_sub(1).map(|j| chars[j]), chars.get(i + 1)) => '账',
            c => to_half_width(c),
        })
        .collect()
}

/// Whether 帐 between `prev` and `next` is part of a curtain, tent or net word (帐篷, 帐幕,
/// 帐子, 蚊帐, 营帐, 床帐...) rather than an account word (帐单, 帐户, 查帐, 经营帐目...).
fn curtain_sense(prev: Option<char>, next: Option<&char>) -> bool {
    const ACCOUNT_AFTER: &str = "单户号目款本务面簿期";
    const BEFORE: &str = "蚊营军帷罗纱床幔篷毡圆绣锦";
    const AFTER: &str = "篷幕幔子顶钩帘";
    if next.is_some_and(|c| ACCOUNT_AFTER.contains(*c)) {
        return false;
    }
    prev.is_some_and(|c| BEFORE.contains(c)) || next.is_some_and(|c| AFTER.contains(*c))
}

/// Writes a digit string said digit by digit as one number, as a reader would: whisper gives
/// "extension one two three four" back as "1, 2, 3, 4" or "1 2 3 4" as often as "1234", and
/// a search for the extension, account or order number `1234` should find both. Only runs
/// of three or more lone digits separated by commas or spaces are joined ("press 1, 2 or 3"
/// stays as it is).
pub fn join_spoken_digits(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        match digit_run(&chars, i) {
            Some(end) => {
                out.extend(chars[i..end].iter().filter(|c| c.is_ascii_digit()));
                i = end;
            }
            None => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

/// At `i`, a run of at least three lone digits (no ASCII letter or digit beside them)
/// separated by a comma and/or spaces: the index after its last digit.
fn digit_run(chars: &[char], i: usize) -> Option<usize> {
    let lone = |j: usize| {
        chars.get(j).is_some_and(char::is_ascii_digit)
            && (j == 0 || !chars[j - 1].is_ascii_alphanumeric())
            && !chars.get(j + 1).is_some_and(char::is_ascii_alphanumeric)
    };
    if !lone(i) {
        return None;
    }
    let (mut digits, mut end) = (1, i + 1);
    loop {
        let mut j = end;
        if chars.get(j) == Some(&',') {
            j += 1;
        }
        while chars.get(j) == Some(&' ') {
            j += 1;
        }
        if j == end || !lone(j) {
            break;
        }
        digits += 1;
        end = j + 1;
    }
    (digits >= 3).then_some(end)
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
    use super::{join_spoken_digits, normalize_zh};

    #[test]
    fn spoken_digit_strings_become_one_number() {
        assert_eq!(
            join_spoken_digits("extension 1, 2, 3, 4 and password 4, 2, 4, 2."),
            "extension 1234 and password 4242."
        );
        assert_eq!(
            join_spoken_digits("my number is 5 5 5 0 1 9 9"),
            "my number is 5550199"
        );
        assert_eq!(
            join_spoken_digits("卡号是 6,2,2,8 对吗"),
            "卡号是 6228 对吗"
        );
        // Two digits, a list, numbers already written whole and decimals stay as they are.
        for kept in [
            "press 1, 2 or 3",
            "press 1, 2, or 3",
            "I paid 140 dollars on the 3rd, 4 days ago",
            "a 28.8 kilobit modem, 1 2",
            "1,234 dollars",
            "room 12, 3, 4",
        ] {
            assert_eq!(join_spoken_digits(kept), kept);
        }
    }

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
    fn account_zhang_is_the_standard_form() {
        // What whisper writes for bill, account, transfer and "credited"...
        assert_eq!(normalize_zh("您的帐单和帐户"), "您的账单和账户");
        assert_eq!(normalize_zh("转帐已经到帐了"), "转账已经到账了");
        assert_eq!(normalize_zh("帳單"), "账单");
        // ...but tents, curtains and mosquito nets keep 帐.
        assert_eq!(normalize_zh("搭帐篷"), "搭帐篷");
        assert_eq!(normalize_zh("挂蚊帐"), "挂蚊帐");
        assert_eq!(normalize_zh("帐"), "账");
        // An account word wins over a curtain neighbour (经营 + 帐目).
        assert_eq!(normalize_zh("经营帐目"), "经营账目");
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
        for s in [
            "投訴電話",
            "ｒｅｆｕｎｄ　了",
            "mixed 退款 refund 們",
            "帐单，蚊帐",
        ] {
            assert_eq!(normalize_zh(s).chars().count(), s.chars().count(), "{s}");
        }
    }
}
