//! Phone number checks before dialing: E.164 form, China's mobile and landline number plans,
//! and the callee's time zone from the country code.
//!
//! Interim copy: `callqa_qa::number` is the shared home; merge into it once it lands.

use chrono_tz::Tz;

/// Why a number cannot be dialed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("{0:?} is not a phone number (E.164 is + and 8 to 15 digits)")]
    NotE164(String),
    #[error("{0:?} is not a valid Chinese mobile or landline number")]
    ChinaPlan(String),
}

/// Normalises to E.164 (`+8613800138000`): strips separators, `00` becomes `+`, and a bare
/// Chinese national number (11-digit mobile, or trunk-prefix 0 landline) gets `+86`.
pub fn normalize(raw: &str) -> Result<String, NumberError> {
    let cleaned: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let e164 = if let Some(rest) = cleaned.strip_prefix('+') {
        rest.to_string()
    } else if let Some(rest) = cleaned.strip_prefix("00") {
        rest.to_string()
    } else if cleaned.len() == 11 && cleaned.starts_with('1') {
        format!("86{cleaned}")
    } else if let Some(rest) = cleaned.strip_prefix('0') {
        format!("86{rest}")
    } else {
        return Err(NumberError::NotE164(raw.to_string()));
    };
    if !digits_only(&e164) || !(8..=15).contains(&e164.len()) || e164.starts_with('0') {
        return Err(NumberError::NotE164(raw.to_string()));
    }
    if let Some(national) = e164.strip_prefix("86") {
        if !valid_china(national) {
            return Err(NumberError::ChinaPlan(raw.to_string()));
        }
    }
    Ok(format!("+{e164}"))
}

/// China's plan: mobiles are `1[3-9]` + 9 digits; landlines are a 2-digit area code (`10`,
/// `2X`) + 8 digits or a 3-digit area code (`3XX`..`9XX`) + 7 or 8 digits.
fn valid_china(national: &str) -> bool {
    let b = national.as_bytes();
    match b.first() {
        Some(b'1') if national.starts_with("10") => national.len() == 10,
        Some(b'1') => national.len() == 11 && (b'3'..=b'9').contains(&b[1]),
        Some(b'2') => national.len() == 10,
        Some(b'3'..=b'9') => (10..=11).contains(&national.len()),
        _ => false,
    }
}

/// Country codes we know the time zone of, longest prefix first wins. Countries spanning
/// several zones use their most populous one.
const ZONES: &[(&str, Tz)] = &[
    ("852", Tz::Asia__Hong_Kong),
    ("853", Tz::Asia__Macau),
    ("886", Tz::Asia__Taipei),
    ("86", Tz::Asia__Shanghai),
    ("81", Tz::Asia__Tokyo),
    ("82", Tz::Asia__Seoul),
    ("65", Tz::Asia__Singapore),
    ("60", Tz::Asia__Kuala_Lumpur),
    ("91", Tz::Asia__Kolkata),
    ("61", Tz::Australia__Sydney),
    ("44", Tz::Europe__London),
    ("49", Tz::Europe__Berlin),
    ("33", Tz::Europe__Paris),
    ("34", Tz::Europe__Madrid),
    ("39", Tz::Europe__Rome),
    ("7", Tz::Europe__Moscow),
    ("1", Tz::America__New_York),
];

/// The callee's time zone from an E.164 number, if its country is in the table.
pub fn time_zone(e164: &str) -> Option<Tz> {
    let digits = e164.strip_prefix('+')?;
    ZONES
        .iter()
        .filter(|(prefix, _)| digits.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, tz)| *tz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_common_forms() {
        assert_eq!(normalize("+86 138-0013-8000").unwrap(), "+8613800138000");
        assert_eq!(normalize("13800138000").unwrap(), "+8613800138000");
        assert_eq!(normalize("010 1234 5678").unwrap(), "+861012345678");
        assert_eq!(normalize("0086 755 1234 5678").unwrap(), "+8675512345678");
        assert_eq!(normalize("+44 20 7946 0958").unwrap(), "+442079460958");
    }

    #[test]
    fn rejects_bad_numbers() {
        assert!(matches!(normalize("12345"), Err(NumberError::NotE164(_))));
        assert!(matches!(normalize("+12ab"), Err(NumberError::NotE164(_))));
        assert!(matches!(
            normalize("+8612800138000"),
            Err(NumberError::ChinaPlan(_))
        ));
        assert!(matches!(
            normalize("+86138001380001"),
            Err(NumberError::ChinaPlan(_))
        ));
        assert!(matches!(
            normalize("+86101234567"),
            Err(NumberError::ChinaPlan(_))
        ));
        assert!(normalize("+1234567890123456").is_err());
    }

    #[test]
    fn zones_by_longest_prefix() {
        assert_eq!(time_zone("+8613800138000"), Some(Tz::Asia__Shanghai));
        assert_eq!(time_zone("+85291234567"), Some(Tz::Asia__Hong_Kong));
        assert_eq!(time_zone("+12025550100"), Some(Tz::America__New_York));
        assert_eq!(time_zone("+999123456789"), None);
    }
}
