//! Compliance gates run before every dial: number validity, blacklist, consent, registered
//! caller ID, calling window in the callee's local time, and attempt caps. Pure: the blacklist
//! and consent stores come in through [`ComplianceLookup`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::CallingHours;
use crate::number;

/// Which rule refused a call; the names are the keys of `campaign status`'s `refused` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    Blacklist,
    NoConsent,
    OutsideHours,
    CallerId,
    InvalidNumber,
    Attempts,
}

/// A refused dial and the reason shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind:?}: {reason}")]
pub struct Refusal {
    pub kind: RefusalKind,
    pub reason: String,
}

/// The blacklist and consent records, provided by the caller (they live in the qa crate).
pub trait ComplianceLookup: Send + Sync {
    /// `Some(reason)` when the E.164 number is blacklisted.
    fn blacklisted(&self, number: &str) -> Option<String>;
    /// Whether a valid, unexpired consent record covers `scope` for the number.
    fn consent(&self, number: &str, scope: &str) -> bool;
}

/// Everything one dial decision needs.
pub struct ComplianceContext<'a> {
    pub number: &'a str,
    pub caller_id: &'a str,
    pub registered_caller_ids: &'a [String],
    pub calling_hours: CallingHours,
    pub now: DateTime<Utc>,
    /// `Some(scope)` for marketing campaigns, which need consent; `None` for service calls.
    pub consent_scope: Option<&'a str>,
    /// Attempts already made to this number.
    pub attempts: u32,
    pub max_attempts: u32,
    pub lookup: &'a dyn ComplianceLookup,
}

/// Decides whether the dial may go out; returns the normalised E.164 number to dial.
pub fn check(ctx: &ComplianceContext<'_>) -> Result<String, Refusal> {
    let refuse = |kind, reason: String| Refusal { kind, reason };
    let number = number::normalize(ctx.number)
        .map_err(|e| refuse(RefusalKind::InvalidNumber, e.to_string()))?;
    if let Some(why) = ctx.lookup.blacklisted(&number) {
        return Err(refuse(
            RefusalKind::Blacklist,
            format!("{number} is blacklisted: {why}"),
        ));
    }
    if let Some(scope) = ctx.consent_scope {
        if !ctx.lookup.consent(&number, scope) {
            return Err(refuse(
                RefusalKind::NoConsent,
                format!("no valid consent from {number} for {scope}"),
            ));
        }
    }
    let caller = number::normalize(ctx.caller_id).unwrap_or_else(|_| ctx.caller_id.to_string());
    let registered = ctx
        .registered_caller_ids
        .iter()
        .any(|c| number::normalize(c).map(|c| c == caller).unwrap_or(false) || c == ctx.caller_id);
    if !registered {
        return Err(refuse(
            RefusalKind::CallerId,
            format!(
                "caller ID {} is not in the registered caller-ID list",
                ctx.caller_id
            ),
        ));
    }
    let tz = number::time_zone(&number).ok_or_else(|| {
        refuse(
            RefusalKind::OutsideHours,
            format!("unknown local time zone for {number}; cannot check the calling window"),
        )
    })?;
    let local = ctx.now.with_timezone(&tz);
    if !ctx.calling_hours.contains(local.time()) {
        return Err(refuse(
            RefusalKind::OutsideHours,
            format!(
                "{} local time ({tz}) is outside calling hours {}-{}",
                local.format("%H:%M"),
                ctx.calling_hours.start.format("%H:%M"),
                ctx.calling_hours.end.format("%H:%M")
            ),
        ));
    }
    if ctx.attempts >= ctx.max_attempts {
        return Err(refuse(
            RefusalKind::Attempts,
            format!(
                "{number} already tried {} times (cap {})",
                ctx.attempts, ctx.max_attempts
            ),
        ));
    }
    Ok(number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    struct Lists;
    impl ComplianceLookup for Lists {
        fn blacklisted(&self, number: &str) -> Option<String> {
            (number == "+8613900000000").then(|| "opt_out on call c1".to_string())
        }
        fn consent(&self, number: &str, scope: &str) -> bool {
            number == "+8613800138000" && scope == "marketing"
        }
    }

    fn ctx<'a>(number: &'a str, ids: &'a [String]) -> ComplianceContext<'a> {
        ComplianceContext {
            number,
            caller_id: "+861012345678",
            registered_caller_ids: ids,
            calling_hours: CallingHours::parse("08:00-21:00").unwrap(),
            // 02:00 UTC = 10:00 in Shanghai.
            now: Utc.with_ymd_and_hms(2024, 5, 1, 2, 0, 0).unwrap(),
            consent_scope: Some("marketing"),
            attempts: 0,
            max_attempts: 3,
            lookup: &Lists,
        }
    }

    fn ids() -> Vec<String> {
        vec!["+861012345678".to_string()]
    }

    #[test]
    fn allows_a_clean_dial_and_normalises() {
        let ids = ids();
        assert_eq!(
            check(&ctx("138 0013 8000", &ids)).unwrap(),
            "+8613800138000"
        );
    }

    #[test]
    fn refuses_each_rule() {
        let ids = ids();
        let kind = |c: &ComplianceContext| check(c).unwrap_err().kind;
        assert_eq!(kind(&ctx("+86128", &ids)), RefusalKind::InvalidNumber);
        assert_eq!(kind(&ctx("+8613900000000", &ids)), RefusalKind::Blacklist);
        assert_eq!(kind(&ctx("+8613700137000", &ids)), RefusalKind::NoConsent);
        let mut c = ctx("+8613800138000", &ids);
        c.caller_id = "+861099999999";
        assert_eq!(kind(&c), RefusalKind::CallerId);
        let mut c = ctx("+8613800138000", &ids);
        // 14:00 UTC = 22:00 in Shanghai, but only 15:00 in London.
        c.now = Utc.with_ymd_and_hms(2024, 5, 1, 14, 0, 0).unwrap();
        let refusal = check(&c).unwrap_err();
        assert_eq!(refusal.kind, RefusalKind::OutsideHours);
        assert!(refusal.reason.contains("22:00"), "{}", refusal.reason);
        let mut c = ctx("+8613800138000", &ids);
        c.attempts = 3;
        assert_eq!(kind(&c), RefusalKind::Attempts);
    }

    #[test]
    fn service_calls_skip_consent_and_use_callee_zone() {
        let ids = ids();
        let mut c = ctx("+442079460958", &ids);
        c.consent_scope = None;
        c.now = Utc.with_ymd_and_hms(2024, 1, 10, 14, 0, 0).unwrap();
        assert_eq!(check(&c).unwrap(), "+442079460958");
        c.now = Utc.with_ymd_and_hms(2024, 1, 10, 21, 30, 0).unwrap();
        assert_eq!(check(&c).unwrap_err().kind, RefusalKind::OutsideHours);
    }
}
