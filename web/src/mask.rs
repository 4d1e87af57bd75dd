//! Masking of customer phone numbers for roles that may not see them: the number fields
//! themselves and any phone-like digit run in transcript text, snippets and evidence.

use serde_json::Value;

/// Digits shown at the end of a masked number.
const KEEP_TAIL: usize = 4;
/// Digit runs at least this long are treated as phone numbers inside text.
const MIN_PHONE_DIGITS: usize = 7;

/// `+8613800138000` -> `+86138****8000`: keeps the country/operator prefix and the last
/// four digits, always hiding at least four.
pub fn mask_number(number: &str) -> String {
    let plus = number.trim_start().starts_with('+');
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    let n = digits.len();
    if n <= KEEP_TAIL + 4 {
        let tail: String = if n > KEEP_TAIL + 2 {
            digits[n - KEEP_TAIL..].iter().collect()
        } else {
            String::new()
        };
        return format!("{}****{tail}", if plus { "+" } else { "" });
    }
    let head = (n - KEEP_TAIL - 4).min(5);
    let head_s: String = digits[..head].iter().collect();
    let tail_s: String = digits[n - KEEP_TAIL..].iter().collect();
    format!(
        "{}{head_s}{}{tail_s}",
        if plus { "+" } else { "" },
        "*".repeat(n - head - KEEP_TAIL)
    )
}

/// Replaces every phone-like digit run in `text` (seven or more digits, optionally with a
/// leading `+` and single spaces, hyphens or `<b>` highlight tags between digits) by its
/// masked form. Tags inside a masked run are dropped with it.
pub fn mask_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let Some(start) = rest.find(|c: char| c.is_ascii_digit() || c == '+') else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..start]);
        let (run_len, digits) = digit_run(&rest[start..]);
        if digits >= MIN_PHONE_DIGITS {
            out.push_str(&mask_number(&rest[start..start + run_len]));
            rest = &rest[start + run_len..];
        } else {
            // Not a phone number: copy the first char and keep scanning after it.
            let step = rest[start..]
                .chars()
                .next()
                .map_or(1, char::len_utf8)
                .max(run_len);
            out.push_str(&rest[start..start + step]);
            rest = &rest[start + step..];
        }
    }
    out
}

/// Length in bytes and digit count of the phone-like run at the start of `s`.
fn digit_run(s: &str) -> (usize, usize) {
    const GLUE: [&str; 4] = ["<b>", "</b>", " ", "-"];
    let bytes = s.as_bytes();
    let mut i = usize::from(bytes.first() == Some(&b'+'));
    let mut end = 0;
    let mut digits = 0;
    loop {
        if i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
            digits += 1;
            end = i;
            continue;
        }
        if digits == 0 {
            break;
        }
        // Glue counts only when a digit follows it.
        match GLUE.iter().find(|g| s[i..].starts_with(**g)) {
            Some(g) if bytes.get(i + g.len()).is_some_and(u8::is_ascii_digit) => i += g.len(),
            _ => break,
        }
    }
    (end, digits)
}

/// Object keys whose string values are numbers or free text that may quote a number.
const MASKED_KEYS: [&str; 8] = [
    "customer",
    "number",
    "text",
    "detail",
    "error",
    "reason",
    "source_name",
    // The uploaded file's name, often the customer's number.
    "file",
];

/// Masks, in place, every value under [`MASKED_KEYS`] anywhere in `v`.
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                match val {
                    Value::String(s) if MASKED_KEYS.contains(&k.as_str()) => *s = mask_text(s),
                    _ => redact(val),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_e164() {
        assert_eq!(mask_number("+8613800138000"), "+86138****8000");
        assert_eq!(mask_number("+14155550123"), "+141****0123");
        assert_eq!(mask_number("12345"), "****");
    }

    #[test]
    fn masks_numbers_inside_text() {
        assert_eq!(
            mask_text("我的号码是13800138000，谢谢"),
            "我的号码是138****8000，谢谢"
        );
        assert_eq!(
            mask_text("call +86 138-0013-8000 now"),
            "call +86138****8000 now"
        );
        assert_eq!(mask_text("<b>13800138000</b> ok"), "<b>138****8000</b> ok");
        assert_eq!(mask_text("1380<b>0138000</b>"), "138****8000</b>");
        // Short numbers, prices and times stay.
        assert_eq!(
            mask_text("退款 300 元 at 10:30, order 12-34"),
            "退款 300 元 at 10:30, order 12-34"
        );
    }

    #[test]
    fn redacts_nested_json() {
        let mut v = serde_json::json!({
            "call_id": "01234567-8901",
            "customer": "+8613800138000",
            "hits": [{"snippets": [{"text": "号码 13800138000"}], "customer": "+8613800138000"}]
        });
        redact(&mut v);
        assert_eq!(v["call_id"], "01234567-8901");
        assert_eq!(v["customer"], "+86138****8000");
        assert_eq!(v["hits"][0]["customer"], "+86138****8000");
        assert_eq!(v["hits"][0]["snippets"][0]["text"], "号码 138****8000");
        assert!(!v.to_string().contains("13800138000"));
    }
}
