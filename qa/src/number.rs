//! Phone numbers to E.164 (`+8613800138000`), with the Chinese numbering plan
//! (mobiles 1[3-9]x, landlines 0 + area code): used by the blacklist and the dialer.

use thiserror::Error;

/// Why a number is not a dialable E.164 number.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NumberError {
    #[error("empty phone number")]
    Empty,
    #[error(
        "{input:?}: unexpected character {ch:?} (digits, spaces, - . ( ) and a leading + only)"
    )]
    BadCharacter { input: String, ch: char },
    #[error("{input:?}: E.164 numbers have 8 to 15 digits after the +, this has {digits}")]
    BadLength { input: String, digits: usize },
    #[error("{input:?}: country code cannot start with 0")]
    BadCountryCode { input: String },
    #[error("{input:?}: not a Chinese mobile (1[3-9] + 9 digits) or landline (0 + area code + 7-8 digits)")]
    BadChineseNumber { input: String },
    #[error("{input:?}: no country code; write it as +<country><number>")]
    NoCountry { input: String },
}

/// Normalises `input` to E.164. Accepts `+CC...`, `00CC...`, Chinese mobiles
/// (`13800138000`, `86 138...`) and Chinese landlines with their trunk 0 (`010-12345678`,
/// `0755 1234 5678`). Numbers for +86 are checked against the Chinese plan.
pub fn normalize(input: &str) -> Result<String, NumberError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(NumberError::Empty);
    }
    let mut digits = String::with_capacity(trimmed.len());
    let mut plus = false;
    for (i, ch) in trimmed.chars().enumerate() {
        match ch {
            '0'..='9' => digits.push(ch),
            '+' if i == 0 => plus = true,
            ' ' | '-' | '.' | '(' | ')' | '\u{a0}' => {}
            _ => {
                return Err(NumberError::BadCharacter {
                    input: input.to_string(),
                    ch,
                })
            }
        }
    }
    if digits.is_empty() {
        return Err(NumberError::Empty);
    }
    let international = if plus {
        Some(digits.as_str())
    } else {
        digits.strip_prefix("00")
    };
    if let Some(rest) = international {
        return international_number(input, rest);
    }
    // No country code: only the Chinese national forms are understood.
    if digits.len() == 13 && digits.starts_with("86") && is_cn_mobile(&digits[2..]) {
        return Ok(format!("+{digits}"));
    }
    if is_cn_mobile(&digits) {
        return Ok(format!("+86{digits}"));
    }
    if let Some(national) = digits.strip_prefix('0') {
        return if is_cn_landline(national) {
            Ok(format!("+86{national}"))
        } else {
            Err(NumberError::BadChineseNumber {
                input: input.to_string(),
            })
        };
    }
    Err(NumberError::NoCountry {
        input: input.to_string(),
    })
}

fn international_number(input: &str, digits: &str) -> Result<String, NumberError> {
    if digits.starts_with('0') {
        return Err(NumberError::BadCountryCode {
            input: input.to_string(),
        });
    }
    if let Some(national) = digits.strip_prefix("86") {
        // People often keep the trunk 0 after +86 (+86 010 ...); E.164 drops it.
        let national = national.strip_prefix('0').unwrap_or(national);
        return if is_cn_mobile(national) || is_cn_landline(national) {
            Ok(format!("+86{national}"))
        } else {
            Err(NumberError::BadChineseNumber {
                input: input.to_string(),
            })
        };
    }
    if !(8..=15).contains(&digits.len()) {
        return Err(NumberError::BadLength {
            input: input.to_string(),
            digits: digits.len(),
        });
    }
    Ok(format!("+{digits}"))
}

/// 11 digits, 1 then 3-9.
fn is_cn_mobile(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 11
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1])
        && b.iter().all(u8::is_ascii_digit)
}

/// Area code without the trunk 0 plus subscriber number: 10 / 2x + 8 digits, or a
/// three-digit code 3xx-9xx + 7 or 8 digits.
fn is_cn_landline(d: &str) -> bool {
    let b = d.as_bytes();
    if !b.iter().all(u8::is_ascii_digit) || b.len() < 2 {
        return false;
    }
    match b[0] {
        b'1' => b[1] == b'0' && b.len() == 10,
        b'2' => b.len() == 10,
        b'3'..=b'9' => b.len() == 10 || b.len() == 11,
        _ => false,
    }
}

/// The Chinese area code (without the trunk 0) of a normalised +86 landline, e.g. `755`;
/// `None` for mobiles and other countries. The dialer uses it for local calling hours.
pub fn cn_area_code(e164: &str) -> Option<&str> {
    let national = e164.strip_prefix("+86")?;
    if is_cn_mobile(national) || !is_cn_landline(national) {
        return None;
    }
    let len = if national.starts_with("10") || national.starts_with('2') {
        2
    } else {
        3
    };
    national.get(..len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_mobiles() {
        for s in [
            "13800138000",
            "138 0013 8000",
            "+86 138-0013-8000",
            "008613800138000",
            "8613800138000",
            "+86 0138 0013 8000",
        ] {
            assert_eq!(normalize(s).unwrap(), "+8613800138000", "{s}");
        }
        assert_eq!(normalize("19912345678").unwrap(), "+8619912345678");
        // 12x is not a mobile prefix.
        assert!(matches!(
            normalize("12800138000"),
            Err(NumberError::NoCountry { .. })
        ));
        assert!(matches!(
            normalize("+8612800138000"),
            Err(NumberError::BadChineseNumber { .. })
        ));
        // Wrong length.
        assert!(matches!(
            normalize("+86138001380001"),
            Err(NumberError::BadChineseNumber { .. })
        ));
    }

    #[test]
    fn chinese_landlines() {
        assert_eq!(normalize("010-12345678").unwrap(), "+861012345678");
        assert_eq!(normalize("(021) 8765 4321").unwrap(), "+862187654321");
        assert_eq!(normalize("0755 1234 5678").unwrap(), "+8675512345678");
        assert_eq!(normalize("0571-1234567").unwrap(), "+865711234567");
        assert_eq!(normalize("+86 10 1234 5678").unwrap(), "+861012345678");
        assert!(matches!(
            normalize("010-1234"),
            Err(NumberError::BadChineseNumber { .. })
        ));
        assert_eq!(cn_area_code("+8675512345678"), Some("755"));
        assert_eq!(cn_area_code("+861012345678"), Some("10"));
        assert_eq!(cn_area_code("+8613800138000"), None);
    }

    #[test]
    fn other_countries_and_errors() {
        assert_eq!(normalize("+1 (415) 555-0100").unwrap(), "+14155550100");
        assert_eq!(normalize("0044 20 7946 0958").unwrap(), "+442079460958");
        assert_eq!(normalize(""), Err(NumberError::Empty));
        assert!(matches!(
            normalize("+1234"),
            Err(NumberError::BadLength { digits: 4, .. })
        ));
        assert!(matches!(
            normalize("+0123456789"),
            Err(NumberError::BadCountryCode { .. })
        ));
        assert!(matches!(
            normalize("138x0013"),
            Err(NumberError::BadCharacter { ch: 'x', .. })
        ));
        assert!(matches!(
            normalize("1+38"),
            Err(NumberError::BadCharacter { ch: '+', .. })
        ));
        assert!(matches!(
            normalize("4155550100"),
            Err(NumberError::NoCountry { .. })
        ));
    }
}
