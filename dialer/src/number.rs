//! Phone numbers before dialing: normalisation and validation (E.164, China's mobile and
//! landline plans) are `callqa_qa::number`'s, shared with the blacklist and consent records so
//! that every gate sees the same number; this module adds the callee's time zone.

use chrono_tz::Tz;

pub use callqa_qa::number::{cn_area_code, normalize, NumberError};

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
    zone_entry(e164).map(|(_, tz)| tz)
}

/// The country code (digits, no `+`) of an E.164 number, if its country is in the zone table.
pub fn country_code(e164: &str) -> Option<&'static str> {
    zone_entry(e164).map(|(cc, _)| cc)
}

fn zone_entry(e164: &str) -> Option<(&'static str, Tz)> {
    let digits = e164.strip_prefix('+')?;
    ZONES
        .iter()
        .filter(|(prefix, _)| digits.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialer_and_blacklist_share_one_normaliser() {
        // Forms the two used to disagree on.
        assert_eq!(normalize("8613800138000").unwrap(), "+8613800138000");
        assert_eq!(normalize("+86 010 1234 5678").unwrap(), "+861012345678");
        for raw in ["+86 138-0013-8000", "010 1234 5678", "+86128", "12345"] {
            assert_eq!(normalize(raw), callqa_qa::number::normalize(raw), "{raw}");
        }
        assert!(matches!(
            normalize("+8612800138000"),
            Err(NumberError::BadChineseNumber { .. })
        ));
    }

    #[test]
    fn zones_by_longest_prefix() {
        assert_eq!(time_zone("+8613800138000"), Some(Tz::Asia__Shanghai));
        assert_eq!(time_zone("+85291234567"), Some(Tz::Asia__Hong_Kong));
        assert_eq!(time_zone("+12025550100"), Some(Tz::America__New_York));
        assert_eq!(time_zone("+999123456789"), None);
        assert_eq!(country_code("+85291234567"), Some("852"));
        assert_eq!(country_code("+8613800138000"), Some("86"));
        assert_eq!(country_code("+999123456789"), None);
    }
}
