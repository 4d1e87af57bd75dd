//! Phone numbers to E.164 (`+8613800138000`) with the Chinese numbering plan: the one
//! normaliser behind the blacklist, consent records and the dialer's invalid-number gate.
//!
//! Rules (ITU-T E.164 and China's national plan):
//! - International forms: `+CC…` or `00CC…`. The country code cannot start with 0 and the whole
//!   number has at most 15 digits (E.164) and at least 7 (the shortest numbers in service:
//!   Niue and Tokelau, a 3-digit country code and 4 digits).
//! - A trunk prefix written after the country code is dropped: `+44 (0)20 …` (the `(0)`
//!   convention, any country) and, for China, whose national numbers never start with 0, a bare
//!   `+86 0…` (`+86 010 1234 5678`, `0086 0755 …`).
//! - +86 numbers must fit the Chinese plan: mobiles `1[3-9]` + 9 digits; landlines are area code
//!   + subscriber number, `10` or `2X` + 8 digits, or a 3-digit code `3XX`–`9XX` + 7 or 8 digits.
//! - Without a country code only Chinese national forms are understood (our home network): an
//!   11-digit mobile, `0` + area code + number for a landline, `0` + mobile (the long-distance
//!   prefix landlines dial before an out-of-town mobile), and the common spreadsheet form
//!   `86` + mobile without the `+`.
//! - Separators (spaces, `-`, `.`, `/`, brackets) and full-width digits, `＋` and brackets, as
//!   typed with a Chinese input method, are accepted; any other character is an error.

use thiserror::Error;

/// Why a number is not a dialable E.164 number.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NumberError {
    #[error("empty phone number")]
    Empty,
    #[error(
        "{input:?}: unexpected character {ch:?} (digits, spaces, - . / ( ) and a leading + only)"
    )]
    BadCharacter { input: String, ch: char },
    #[error("{input:?}: E.164 numbers have 7 to 15 digits after the +, this has {digits}")]
    BadLength { input: String, digits: usize },
    #[error("{input:?}: country code cannot start with 0")]
    BadCountryCode { input: String },
    #[error("{input:?}: not a Chinese mobile (1[3-9] + 9 digits) or landline (0 + area code 10, 2X or 3XX-9XX + 7-8 digits)")]
    BadChineseNumber { input: String },
    #[error("{input:?}: no country code; write it as +<country><number>")]
    NoCountry { input: String },
}

/// Shortest and longest E.164 numbers, in digits after the `+`.
const E164_DIGITS: std::ops::RangeInclusive<usize> = 7..=15;

/// Normalises `input` to E.164 (see the module doc for the accepted forms).
pub fn normalize(input: &str) -> Result<String, NumberError> {
    let scanned = scan(input)?;
    let digits = scanned.digits.as_str();
    let international = if scanned.plus {
        Some(digits)
    } else {
        digits.strip_prefix("00")
    };
    if let Some(rest) = international {
        // A "(0)" trunk marker is only meaningful inside the national part.
        let marker = scanned
            .trunk_marker
            .and_then(|at| at.checked_sub(digits.len() - rest.len()));
        let rest = match marker {
            Some(at) => format!("{}{}", &rest[..at], &rest[at + 1..]),
            None => rest.to_string(),
        };
        return international_number(input, &rest);
    }
    national_number(input, digits)
}

/// Digits of `input`, whether it began with `+`, and the index (in `digits`) of a digit
/// written as `(0)`.
struct Scanned {
    digits: String,
    plus: bool,
    trunk_marker: Option<usize>,
}

fn scan(input: &str) -> Result<Scanned, NumberError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(NumberError::Empty);
    }
    let chars: Vec<char> = trimmed.chars().map(fold_full_width).collect();
    let mut digits = String::with_capacity(chars.len());
    let mut plus = false;
    let mut trunk_marker = None;
    for (i, &ch) in chars.iter().enumerate() {
        match ch {
            '0'..='9' => {
                if ch == '0'
                    && i > 0
                    && chars[i - 1] == '('
                    && chars.get(i + 1) == Some(&')')
                    && trunk_marker.is_none()
                {
                    trunk_marker = Some(digits.len());
                }
                digits.push(ch);
            }
            '+' if i == 0 => plus = true,
            '-' | '.' | '/' | '(' | ')' => {}
            c if c.is_whitespace() => {}
            _ => {
                return Err(NumberError::BadCharacter {
                    input: input.to_string(),
                    ch: trimmed.chars().nth(i).unwrap_or(ch),
                })
            }
        }
    }
    if digits.is_empty() {
        return Err(NumberError::Empty);
    }
    Ok(Scanned {
        digits,
        plus,
        trunk_marker,
    })
}

/// Full-width digits, plus sign, brackets and hyphen (U+FF01..U+FF5E) to ASCII.
fn fold_full_width(c: char) -> char {
    match c {
        '\u{FF0B}'
        | '\u{FF08}'
        | '\u{FF09}'
        | '\u{FF0D}'
        | '\u{FF0E}'
        | '\u{FF0F}'
        | '\u{FF10}'..='\u{FF19}' => char::from_u32(u32::from(c) - 0xFF01 + 0x21).unwrap_or(c),
        other => other,
    }
}

fn international_number(input: &str, digits: &str) -> Result<String, NumberError> {
    if digits.starts_with('0') {
        return Err(NumberError::BadCountryCode {
            input: input.to_string(),
        });
    }
    if let Some(national) = digits.strip_prefix("86") {
        // Chinese national numbers never start with 0: a 0 here is the trunk prefix.
        let national = national.strip_prefix('0').unwrap_or(national);
        return chinese(input, national);
    }
    if !E164_DIGITS.contains(&digits.len()) {
        return Err(NumberError::BadLength {
            input: input.to_string(),
            digits: digits.len(),
        });
    }
    Ok(format!("+{digits}"))
}

fn national_number(input: &str, digits: &str) -> Result<String, NumberError> {
    if is_cn_mobile(digits) {
        return Ok(format!("+86{digits}"));
    }
    if let Some(mobile) = digits.strip_prefix("86").filter(|m| is_cn_mobile(m)) {
        return Ok(format!("+86{mobile}"));
    }
    if let Some(national) = digits.strip_prefix('0') {
        return chinese(input, national);
    }
    Err(NumberError::NoCountry {
        input: input.to_string(),
    })
}

/// `+86` + `national` when it fits the Chinese plan.
fn chinese(input: &str, national: &str) -> Result<String, NumberError> {
    if is_cn_mobile(national) || is_cn_landline(national) {
        Ok(format!("+86{national}"))
    } else {
        Err(NumberError::BadChineseNumber {
            input: input.to_string(),
        })
    }
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
/// `None` for mobiles and other countries.
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
            "86 138 0013 8000",
            "+86 0138 0013 8000",
            "0138 0013 8000",
            "＋８６ １３８ ００１３ ８０００",
            " 138\u{a0}0013\u{3000}8000\t",
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
        assert!(matches!(
            normalize("+86128"),
            Err(NumberError::BadChineseNumber { .. })
        ));
        // Wrong length, with and without the country code.
        assert!(matches!(
            normalize("+86138001380001"),
            Err(NumberError::BadChineseNumber { .. })
        ));
        assert!(matches!(
            normalize("1380013800"),
            Err(NumberError::NoCountry { .. })
        ));
        // "86" + something that is not a mobile is not guessed at.
        assert!(matches!(
            normalize("861012345678"),
            Err(NumberError::NoCountry { .. })
        ));
    }

    #[test]
    fn chinese_landlines() {
        assert_eq!(normalize("010-12345678").unwrap(), "+861012345678");
        assert_eq!(normalize("(021) 8765 4321").unwrap(), "+862187654321");
        assert_eq!(normalize("0755 1234 5678").unwrap(), "+8675512345678");
        assert_eq!(normalize("0571-1234567").unwrap(), "+865711234567");
        assert_eq!(normalize("0571/1234567").unwrap(), "+865711234567");
        assert_eq!(normalize("+86 10 1234 5678").unwrap(), "+861012345678");
        // The trunk 0 kept after the country code, bare or as "(0)".
        assert_eq!(normalize("+86 010 1234 5678").unwrap(), "+861012345678");
        assert_eq!(normalize("+86 0 10 1234 5678").unwrap(), "+861012345678");
        assert_eq!(normalize("+86 (0)10 1234 5678").unwrap(), "+861012345678");
        assert_eq!(normalize("0086 0755 1234 5678").unwrap(), "+8675512345678");
        for bad in [
            "010-1234",        // too short
            "010-123456789",   // 2-digit area codes take 8 digits
            "011-12345678",    // 11 is no area code
            "0755-123456",     // 3-digit codes take 7 or 8 digits
            "+86 0 0755 1234", // only one trunk 0
            "+86 10 1234 567",
        ] {
            assert!(
                matches!(normalize(bad), Err(NumberError::BadChineseNumber { .. })),
                "{bad}: {:?}",
                normalize(bad)
            );
        }
        assert_eq!(cn_area_code("+8675512345678"), Some("755"));
        assert_eq!(cn_area_code("+861012345678"), Some("10"));
        assert_eq!(cn_area_code("+862187654321"), Some("21"));
        assert_eq!(cn_area_code("+8613800138000"), None);
        assert_eq!(cn_area_code("+442079460958"), None);
    }

    #[test]
    fn other_countries() {
        assert_eq!(normalize("+1 (415) 555-0100").unwrap(), "+14155550100");
        assert_eq!(normalize("0044 20 7946 0958").unwrap(), "+442079460958");
        assert_eq!(normalize("+44 (0)20 7946 0958").unwrap(), "+442079460958");
        // Italy keeps its leading 0 in E.164: only "(0)" marks a trunk prefix.
        assert_eq!(normalize("+39 06 1234 5678").unwrap(), "+390612345678");
        // Shortest and longest E.164 numbers.
        assert_eq!(normalize("+683 4002").unwrap(), "+6834002");
        assert_eq!(
            normalize("+123 456 789 012 345").unwrap(),
            "+123456789012345"
        );
    }

    #[test]
    fn errors() {
        assert_eq!(normalize(""), Err(NumberError::Empty));
        assert_eq!(normalize(" - "), Err(NumberError::Empty));
        assert_eq!(normalize("+"), Err(NumberError::Empty));
        assert!(matches!(
            normalize("+1234"),
            Err(NumberError::BadLength { digits: 4, .. })
        ));
        assert!(matches!(
            normalize("+1234567890123456"),
            Err(NumberError::BadLength { digits: 16, .. })
        ));
        assert!(matches!(
            normalize("+0123456789"),
            Err(NumberError::BadCountryCode { .. })
        ));
        assert!(matches!(
            normalize("000123456789"),
            Err(NumberError::BadCountryCode { .. })
        ));
        assert!(matches!(
            normalize("138x0013"),
            Err(NumberError::BadCharacter { ch: 'x', .. })
        ));
        assert!(matches!(
            normalize("+12ab"),
            Err(NumberError::BadCharacter { ch: 'a', .. })
        ));
        assert!(matches!(
            normalize("1+38"),
            Err(NumberError::BadCharacter { ch: '+', .. })
        ));
        // Local numbers without an area code, and foreign national forms, need a country.
        for s in ["4155550100", "12345", "87654321"] {
            assert!(
                matches!(normalize(s), Err(NumberError::NoCountry { .. })),
                "{s}"
            );
        }
    }

    #[test]
    fn idempotent_on_its_output() {
        for s in [
            "+8613800138000",
            "+861012345678",
            "+8675512345678",
            "+442079460958",
        ] {
            assert_eq!(normalize(s).unwrap(), s);
            assert_eq!(normalize(&normalize(s).unwrap()).unwrap(), s);
        }
    }
}
