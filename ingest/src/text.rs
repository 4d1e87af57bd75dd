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
/// "extension one two three four" back as "1, 2, 3, 4", "1 2 3 4" or "123-4" as often as
/// "1234", and a search for the extension, account or order number `1234` should find all
/// of them. Runs of three or more lone digits separated by commas or spaces are joined
/// ("press 1, 2 or 3" stays as it is), and so are digit groups joined by hyphens that read
/// as one number (`hyphen_groups_are_one_number`: "5-0-0", "555-0199", "1-800-555-0199"),
/// but not ranges or dates ("8-10", "2023-2024", "2024-01-15").
pub fn join_spoken_digits(s: &str) -> String {
    let s = join_hyphenated_digits(s);
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

/// Digit groups joined by hyphens written as one number where they read as one.
fn join_hyphenated_digits(s: &str) -> String {
    if !s.contains('-') {
        return s.to_string();
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        match hyphen_run(&chars, i) {
            Some((end, groups)) if hyphen_groups_are_one_number(&groups) => {
                out.push_str(&groups.concat());
                i = end;
            }
            Some((end, _)) => {
                out.extend(&chars[i..end]);
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

/// At `i`, digit groups joined by single hyphens ("555-0199"), standing alone: nothing
/// alphanumeric, no currency sign, decimal point or further hyphen on either side. The
/// index after the last group, and the groups.
fn hyphen_run(chars: &[char], i: usize) -> Option<(usize, Vec<String>)> {
    let digit = |j: usize| chars.get(j).is_some_and(char::is_ascii_digit);
    let before = i.checked_sub(1).map(|j| chars[j]);
    if !digit(i) || before.is_some_and(|c| c.is_ascii_alphanumeric() || "-.,$£€¥+/:".contains(c))
    {
        return None;
    }
    let mut groups = Vec::new();
    let mut j = i;
    loop {
        let start = j;
        while digit(j) {
            j += 1;
        }
        groups.push(chars[start..j].iter().collect::<String>());
        if chars.get(j) == Some(&'-') && digit(j + 1) {
            j += 1;
        } else {
            break;
        }
    }
    let after = chars.get(j).copied();
    let decimal_after = matches!(after, Some('.' | ',' | ':' | '/')) && digit(j + 1);
    if groups.len() < 2
        || decimal_after
        || after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return None;
    }
    Some((j, groups))
}

/// Whether digit groups joined by hyphens are one number said in pieces (an extension,
/// phone, account or card number) rather than a range or a date: a group with a leading
/// zero ("6-00", "555-0199", "010-6552"), three or more groups that are not a date
/// ("5-0-0", "1-800-555-0199"), a lone digit beside a group of three or more ("123-4",
/// "1-800"), or seven digits or more that are not a range of years or of round numbers
/// ("555-1234", not "1990-1995" or "1000-2000").
fn hyphen_groups_are_one_number(groups: &[String]) -> bool {
    let n: Vec<u32> = groups
        .iter()
        .map(|g| g.parse().unwrap_or(u32::MAX))
        .collect();
    let len: Vec<usize> = groups.iter().map(String::len).collect();
    let year = |i: usize| len[i] == 4 && (1900..2100).contains(&n[i]);
    let month = |i: usize| len[i] <= 2 && (1..=12).contains(&n[i]);
    let day = |i: usize| len[i] <= 2 && (1..=31).contains(&n[i]);
    let date =
        groups.len() == 3 && ((year(0) && month(1) && day(2)) || (year(2) && day(0) && day(1)));
    if date {
        return false;
    }
    if groups.iter().any(|g| g.len() >= 2 && g.starts_with('0')) || groups.len() >= 3 {
        return true;
    }
    let (a, b) = (len[0], len[1]);
    let lone_beside_long = (a == 1 && b >= 3) || (b == 1 && a >= 3);
    // "1000-2000", "800-1200": round numbers going up are a range, not a phone number.
    let range = (year(0) && year(1)) || (groups.iter().all(|g| g.ends_with('0')) && n[0] < n[1]);
    lone_beside_long || (a + b >= 7 && !range)
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
    fn hyphenated_digit_groups_that_read_as_one_number_are_joined() {
        // What whisper wrote for recorded prompts ("dial 500", "dial 600", "dial 1234").
        assert_eq!(
            join_spoken_digits("you can dial 5-0-0. to attempt"),
            "you can dial 500. to attempt"
        );
        assert_eq!(
            join_spoken_digits("an echo test Dial 6-00."),
            "an echo test Dial 600."
        );
        assert_eq!(
            join_spoken_digits("If you dial 123-4, you can"),
            "If you dial 1234, you can"
        );
        for (said, written) in [
            ("call 555-0199 today", "call 5550199 today"),
            ("call 1-800-555-0199", "call 18005550199"),
            ("at 555-1234", "at 5551234"),
            ("拨打010-62551234", "拨打01062551234"),
            ("card 4111-1111-1111-1111.", "card 4111111111111111."),
        ] {
            assert_eq!(join_spoken_digits(said), written, "{said}");
        }
        // Ranges, dates, scores, decimals, money and codes with letters stay as written.
        for kept in [
            "between 8-10 in the morning",
            "ages 18-25",
            "from 2023-2024",
            "between 1000-2000 dollars",
            "about 800-1200 a month",
            "5000-10000 users",
            "the 2020-21 season",
            "on 2024-01-15 we",
            "on 12-25-2024 we",
            "won 3-2",
            "about 1.5-2 hours",
            "costs $100-200",
            "model AB-123-4",
            "code 12-34-x",
            "page 10-20-",
        ] {
            assert_eq!(join_spoken_digits(kept), kept, "{kept}");
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
