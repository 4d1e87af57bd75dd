//! Best time to call: learns answer rates by the callee's local hour from stored attempts, and
//! decides which due contact a `best_time` campaign dials first and which it holds for later.
//!
//! # Learning
//! Every placed attempt counts once, in the hour (0-23) of its `placed_at` in the callee's zone:
//! the contact's `timezone` if set, else the number's country, as the calling-window gate
//! reads it (attempts whose zone is unknown are skipped). Counts are kept at three levels —
//! campaign, segment (the contact's `segment`, else the number's class: `+86 mobile`,
//! `+86 landline`, `+44`, ...) and number — and an hour's rate is a Beta posterior mean whose
//! prior is the level below, worth [`PRIOR_WEIGHT`] attempts (`a`/`n` = answered/attempts):
//! - campaign, all hours: `(a + 1) / (n + 2)` (a uniform Beta(1, 1) prior);
//! - campaign, hour h: `(a_h + W * all) / (n_h + W)`;
//! - segment, hour h: `(a_h + W * campaign_h) / (n_h + W)` once the segment has
//!   [`MIN_SEGMENT_ATTEMPTS`] attempts (all hours), else the campaign's rates;
//! - number, hour h: `(a_h + W * segment_h) / (n_h + W)` once the number has
//!   [`MIN_NUMBER_ATTEMPTS`] attempts, else its segment's rates.
//!
//! With no history every hour is 0.5, so nothing is reordered or held back.
//!
//! # Scheduling (campaign option `best_time = true`)
//! - Order: due contacts are dialled highest expected rate at their current local hour first;
//!   equal rates keep list order; contacts with no known zone go last (the gate refuses them).
//! - Deferral: a due contact whose local time is inside the calling window is held back when
//!   a later hour of the same local day whose start is inside the window has a rate `best`
//!   with `best >= 1.25 * now` and `best >= now + 0.10` (`now` = the current hour's rate).
//!   Its `next_at` moves to the start of the best such hour (the earliest on ties). It is never
//!   moved past today's window; attempt caps and retry spacing apply as before.

use std::collections::HashMap;

use chrono::{DateTime, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::campaign_store::ContactRow;
use crate::config::CallingHours;
use crate::number;

/// How many attempts a prior is worth: a level's hour needs about this many of its own
/// attempts before it moves halfway from the level below.
pub const PRIOR_WEIGHT: f64 = 10.0;
/// Attempts (all hours) before a number's own history is used.
pub const MIN_NUMBER_ATTEMPTS: u32 = 6;
/// Attempts (all hours) before a segment's own history is used.
pub const MIN_SEGMENT_ATTEMPTS: u32 = 20;
/// A later hour must beat the current one by this factor ...
pub const DEFER_RATIO: f64 = 1.25;
/// ... and by this many rate points to hold a contact back.
pub const DEFER_MARGIN: f64 = 0.10;

/// One placed dial as the store keeps it, with its contact's zone and segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastAttempt {
    pub number: String,
    /// Epoch milliseconds.
    pub placed_at: i64,
    pub answered: bool,
    pub timezone: Option<String>,
    pub segment: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tally {
    attempts: u32,
    answered: u32,
}

type Hours = [Tally; 24];

fn total(hours: &Hours) -> Tally {
    hours.iter().fold(Tally::default(), |t, h| Tally {
        attempts: t.attempts + h.attempts,
        answered: t.answered + h.answered,
    })
}

/// Each hour's posterior mean under a prior of `PRIOR_WEIGHT` attempts at `prior[h]`.
fn shrink(hours: &Hours, prior: &[f64; 24]) -> [f64; 24] {
    std::array::from_fn(|h| {
        (f64::from(hours[h].answered) + PRIOR_WEIGHT * prior[h])
            / (f64::from(hours[h].attempts) + PRIOR_WEIGHT)
    })
}

/// Which level's history a contact's rates come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Number,
    Segment,
    Campaign,
}

/// Expected answer rate by local hour (index 0-23).
#[derive(Debug, Clone, PartialEq)]
pub struct HourlyRates {
    pub level: Level,
    pub by_hour: [f64; 24],
}

impl HourlyRates {
    /// Hours best first; equal rates earliest first.
    pub fn ranked_hours(&self) -> Vec<u32> {
        let mut hours: Vec<u32> = (0..24).collect();
        hours.sort_by(|&a, &b| self.by_hour[b as usize].total_cmp(&self.by_hour[a as usize]));
        hours
    }
}

/// Answer counts by local hour for a campaign, its segments and its numbers.
#[derive(Debug, Clone, Default)]
pub struct AnswerModel {
    campaign: Hours,
    segments: HashMap<String, Hours>,
    numbers: HashMap<String, Hours>,
}

impl AnswerModel {
    /// Counts every attempt whose local hour is known.
    pub fn learn<'a>(attempts: impl IntoIterator<Item = &'a PastAttempt>) -> Self {
        let mut model = Self::default();
        for a in attempts {
            model.observe(a);
        }
        model
    }

    /// Counts one attempt; false when its zone is unknown and it was skipped.
    pub fn observe(&mut self, a: &PastAttempt) -> bool {
        let Some(hour) =
            local_zone(&a.number, a.timezone.as_deref()).and_then(|tz| local_hour(a.placed_at, tz))
        else {
            return false;
        };
        let segment = segment_of(&a.number, a.segment.as_deref());
        for hours in [
            &mut self.campaign,
            self.segments.entry(segment).or_default(),
            self.numbers.entry(a.number.clone()).or_default(),
        ] {
            let t = &mut hours[hour as usize];
            t.attempts += 1;
            t.answered += u32::from(a.answered);
        }
        true
    }

    /// The campaign's own rates by hour (the bottom level).
    pub fn campaign_rates(&self) -> [f64; 24] {
        let all = total(&self.campaign);
        let overall = (f64::from(all.answered) + 1.0) / (f64::from(all.attempts) + 2.0);
        shrink(&self.campaign, &[overall; 24])
    }

    /// Counted attempts by hour.
    pub fn attempts_by_hour(&self) -> [u64; 24] {
        std::array::from_fn(|h| u64::from(self.campaign[h].attempts))
    }

    /// A contact's expected rates: its number's, else its segment's, else the campaign's.
    pub fn rates_for(&self, number: &str, segment: Option<&str>) -> HourlyRates {
        let mut rates = HourlyRates {
            level: Level::Campaign,
            by_hour: self.campaign_rates(),
        };
        let enough = |hours: &&Hours, min: u32| total(hours).attempts >= min;
        if let Some(h) = self
            .segments
            .get(&segment_of(number, segment))
            .filter(|h| enough(h, MIN_SEGMENT_ATTEMPTS))
        {
            rates.by_hour = shrink(h, &rates.by_hour);
            rates.level = Level::Segment;
        }
        if let Some(h) = self
            .numbers
            .get(number)
            .filter(|h| enough(h, MIN_NUMBER_ATTEMPTS))
        {
            rates.by_hour = shrink(h, &rates.by_hour);
            rates.level = Level::Number;
        }
        rates
    }
}

/// The callee's zone: the contact's own when set and valid, else the number's country.
pub fn local_zone(num: &str, timezone: Option<&str>) -> Option<Tz> {
    if let Some(tz) = timezone.and_then(|t| t.parse::<Tz>().ok()) {
        return Some(tz);
    }
    let e164 = number::normalize(num).ok()?;
    number::time_zone(&e164)
}

fn local_hour(at_ms: i64, tz: Tz) -> Option<u32> {
    let t = Utc.timestamp_millis_opt(at_ms).single()?;
    Some(t.with_timezone(&tz).hour())
}

/// A contact's segment: its own label, else the number's class (`+86 mobile`,
/// `+86 landline`, otherwise `+CC` for a known country code, else `other`).
pub fn segment_of(num: &str, segment: Option<&str>) -> String {
    if let Some(s) = segment.map(str::trim).filter(|s| !s.is_empty()) {
        return s.to_string();
    }
    match number::country_code(num) {
        Some("86") if number::cn_area_code(num).is_some() => "+86 landline".into(),
        Some("86") => "+86 mobile".into(),
        Some(cc) => format!("+{cc}"),
        None => "other".into(),
    }
}

/// Dial now, or hold the contact until the start of a better local hour today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Now,
    Defer { hour: u32 },
}

/// The deferral rule of the module doc, for a contact whose local time is `local_now`.
pub fn plan(rates: &[f64; 24], local_now: NaiveTime, hours: CallingHours) -> Plan {
    if !hours.contains(local_now) {
        // The calling-window gate decides.
        return Plan::Now;
    }
    let here = rates[local_now.hour() as usize];
    let mut best: Option<(u32, f64)> = None;
    for h in local_now.hour() + 1..24 {
        let opens = NaiveTime::from_hms_opt(h, 0, 0).is_some_and(|t| hours.contains(t));
        if opens && best.is_none_or(|(_, r)| rates[h as usize] > r) {
            best = Some((h, rates[h as usize]));
        }
    }
    match best {
        Some((hour, r)) if r >= DEFER_RATIO * here && r >= here + DEFER_MARGIN => {
            Plan::Defer { hour }
        }
        _ => Plan::Now,
    }
}

/// When a due contact should be dialled instead of now (epoch ms), or `None` to dial now.
pub fn defer_until(
    c: &ContactRow,
    model: &AnswerModel,
    hours: CallingHours,
    now: DateTime<Utc>,
) -> Option<i64> {
    let tz = local_zone(&c.number, c.timezone.as_deref())?;
    let local = now.with_timezone(&tz);
    let rates = model.rates_for(&c.number, c.segment.as_deref());
    let Plan::Defer { hour } = plan(&rates.by_hour, local.time(), hours) else {
        return None;
    };
    let start = local.date_naive().and_hms_opt(hour, 0, 0)?;
    tz.from_local_datetime(&start)
        .earliest()
        .map(|t| t.timestamp_millis())
        .filter(|&at| at > now.timestamp_millis())
}

/// The expected answer rate of dialling `c` now, `None` when its zone is unknown.
pub fn rate_now(c: &ContactRow, model: &AnswerModel, now: DateTime<Utc>) -> Option<f64> {
    let tz = local_zone(&c.number, c.timezone.as_deref())?;
    let hour = now.with_timezone(&tz).hour() as usize;
    Some(model.rates_for(&c.number, c.segment.as_deref()).by_hour[hour])
}

/// `due` (indices into `contacts`) in dialling order: best current rate first, equal rates
/// in the order given, unknown zones last.
pub fn dial_order(
    contacts: &[ContactRow],
    due: &[usize],
    model: &AnswerModel,
    now: DateTime<Utc>,
) -> Vec<usize> {
    let mut keyed: Vec<(usize, f64)> = due
        .iter()
        .map(|&i| (i, rate_now(&contacts[i], model, now).unwrap_or(-1.0)))
        .collect();
    // A stable sort keeps list order among equals.
    keyed.sort_by(|a, b| b.1.total_cmp(&a.1));
    keyed.into_iter().map(|(i, _)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;

    /// Epoch ms of 2024-05-01 `hour`:10 Shanghai time.
    fn at_local(hour: u32) -> i64 {
        let t = NaiveDate::from_ymd_opt(2024, 5, 1)
            .unwrap()
            .and_hms_opt(hour, 10, 0)
            .unwrap();
        SHANGHAI.from_local_datetime(&t).unwrap().timestamp_millis()
    }

    fn attempt(number: &str, hour: u32, answered: bool, segment: Option<&str>) -> PastAttempt {
        PastAttempt {
            number: number.into(),
            placed_at: at_local(hour),
            answered,
            timezone: None,
            segment: segment.map(str::to_string),
        }
    }

    /// 40 dials an hour from 08 to 20 to distinct numbers of `segment`: 65% answered at 15-17,
    /// 40% otherwise.
    fn evening_segment(segment: &str, first: u64) -> Vec<PastAttempt> {
        let mut out = Vec::new();
        for hour in 8..21 {
            let answered = if (15..=17).contains(&hour) { 26 } else { 16 };
            for k in 0..40u64 {
                let n = format!("+86138{:08}", first + u64::from(hour) * 100 + k);
                out.push(attempt(&n, hour, k < answered, Some(segment)));
            }
        }
        out
    }

    fn window() -> CallingHours {
        CallingHours::parse("08:00-21:00").unwrap()
    }

    fn contact(number: &str, segment: Option<&str>, position: i64) -> ContactRow {
        ContactRow {
            campaign: "c".into(),
            number: number.into(),
            name: None,
            timezone: None,
            caller_id: None,
            segment: segment.map(str::to_string),
            position,
            attempts: 0,
            last_attempt_at: None,
            last_outcome: None,
            next_at: 0,
            done: false,
            invalid: false,
        }
    }

    #[test]
    fn segment_answering_best_at_15_to_17_ranks_those_hours_first() {
        let model = AnswerModel::learn(&evening_segment("evening", 0));
        let rates = model.rates_for("+8613800000001", Some("evening"));
        assert_eq!(rates.level, Level::Segment);
        assert_eq!(rates.ranked_hours()[..3], [15, 16, 17]);
        assert!(rates.by_hour[15] > 0.58 && rates.by_hour[15] < 0.65);
        assert!(rates.by_hour[10] > 0.39 && rates.by_hour[10] < 0.45);
        assert_eq!(model.attempts_by_hour()[15], 40);
        assert_eq!(model.attempts_by_hour()[3], 0);
    }

    #[test]
    fn number_with_two_attempts_follows_its_segment() {
        let mut history = evening_segment("evening", 0);
        let lone = "+8613900000001";
        history.push(attempt(lone, 9, true, Some("evening")));
        history.push(attempt(lone, 9, true, Some("evening")));
        let model = AnswerModel::learn(&history);
        let own = model.rates_for(lone, Some("evening"));
        let peer = model.rates_for("+8613800000001", Some("evening"));
        assert_eq!(own.level, Level::Segment);
        assert_eq!(own, peer);
        assert_eq!(own.ranked_hours()[0], 15);
    }

    #[test]
    fn number_with_enough_attempts_uses_its_own_hours() {
        let mut history = evening_segment("evening", 0);
        let early = "+8613900000002";
        for _ in 0..10 {
            history.push(attempt(early, 10, true, Some("evening")));
            history.push(attempt(early, 16, false, Some("evening")));
        }
        let model = AnswerModel::learn(&history);
        let rates = model.rates_for(early, Some("evening"));
        assert_eq!(rates.level, Level::Number);
        assert_eq!(rates.ranked_hours()[0], 10);
        assert!(rates.by_hour[16] < rates.by_hour[10]);
    }

    #[test]
    fn few_attempts_do_not_swing_a_rate() {
        let empty = AnswerModel::default();
        assert!(empty.campaign_rates().iter().all(|&r| r == 0.5));
        // Half of 20 dials at 09 answered, and one lucky dial at 03.
        let mut history: Vec<_> = (0..20)
            .map(|k| attempt(&format!("+86138000000{k:02}"), 9, k % 2 == 0, None))
            .collect();
        history.push(attempt("+8613800138000", 3, true, None));
        let r = AnswerModel::learn(&history).campaign_rates();
        assert!(r[3] > r[9] && r[3] < 0.6, "{} vs {}", r[3], r[9]);
        assert!(r[9] > 0.49 && r[9] < 0.52, "{}", r[9]);
        // An unknown zone is skipped, not counted.
        let mut m = AnswerModel::default();
        assert!(!m.observe(&attempt("+999123456789", 3, true, None)));
        assert_eq!(m.attempts_by_hour().iter().sum::<u64>(), 0);
    }

    #[test]
    fn a_contact_zone_overrides_the_country() {
        let mut a = attempt("+12025550100", 0, true, None);
        // 2024-05-01 00:10 in Shanghai is 12:10 (EDT) in New York and 09:10 in Los Angeles.
        let m = AnswerModel::learn(&[a.clone()]);
        assert_eq!(m.attempts_by_hour()[12], 1);
        a.timezone = Some("America/Los_Angeles".into());
        let m = AnswerModel::learn(&[a]);
        assert_eq!(m.attempts_by_hour()[9], 1);
    }

    #[test]
    fn segments_default_to_the_number_class() {
        assert_eq!(segment_of("+8613800138000", None), "+86 mobile");
        assert_eq!(segment_of("+861012345678", None), "+86 landline");
        assert_eq!(segment_of("+12025550100", None), "+1");
        assert_eq!(segment_of("+999123456789", None), "other");
        assert_eq!(segment_of("+8613800138000", Some(" vip ")), "vip");
        assert_eq!(segment_of("+8613800138000", Some(" ")), "+86 mobile");
    }

    fn evening_rates(low: f64, high: f64) -> [f64; 24] {
        std::array::from_fn(|h| if (15..=17).contains(&h) { high } else { low })
    }

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn defers_only_to_a_clearly_better_hour_inside_todays_window() {
        let r = evening_rates(0.40, 0.65);
        assert_eq!(plan(&r, t(10, 0), window()), Plan::Defer { hour: 15 });
        assert_eq!(plan(&r, t(14, 59), window()), Plan::Defer { hour: 15 });
        assert_eq!(plan(&r, t(15, 30), window()), Plan::Now);
        assert_eq!(plan(&r, t(18, 0), window()), Plan::Now);
        // Outside the window the gate decides.
        assert_eq!(plan(&r, t(7, 0), window()), Plan::Now);
        // The better hours must open inside the window: 15:00 is past a 08:00-15:00 window.
        let short = CallingHours::parse("08:00-15:00").unwrap();
        assert_eq!(plan(&r, t(10, 0), short), Plan::Now);
        let to16 = CallingHours::parse("08:00-16:00").unwrap();
        assert_eq!(plan(&r, t(10, 0), to16), Plan::Defer { hour: 15 });
        // Not clearly better: 1.125x, or 2x but only 5 points.
        assert_eq!(
            plan(&evening_rates(0.40, 0.45), t(10, 0), window()),
            Plan::Now
        );
        assert_eq!(
            plan(&evening_rates(0.05, 0.10), t(10, 0), window()),
            Plan::Now
        );
        // No history: every hour is the same.
        let flat = AnswerModel::default().campaign_rates();
        assert_eq!(plan(&flat, t(10, 0), window()), Plan::Now);
    }

    #[test]
    fn deferral_lands_on_the_hour_start_in_the_callee_zone() {
        let model = AnswerModel::learn(&evening_segment("evening", 0));
        let c = contact("+8613800000001", Some("evening"), 0);
        // 02:00 UTC = 10:00 in Shanghai; 15:00 there is 07:00 UTC.
        let now = Utc.with_ymd_and_hms(2024, 5, 1, 2, 0, 0).unwrap();
        let until = defer_until(&c, &model, window(), now);
        let expect = Utc.with_ymd_and_hms(2024, 5, 1, 7, 0, 0).unwrap();
        assert_eq!(until, Some(expect.timestamp_millis()));
        // At 15:20 local it dials now.
        let later = Utc.with_ymd_and_hms(2024, 5, 1, 7, 20, 0).unwrap();
        assert_eq!(defer_until(&c, &model, window(), later), None);
        // A segment without history follows the campaign's hours, here the evening ones.
        let other = contact("+8613800000002", Some("morning"), 1);
        assert!(defer_until(&other, &model, window(), now).is_some());
    }

    #[test]
    fn dial_order_puts_the_best_current_hour_first() {
        let mut history = evening_segment("evening", 0);
        // A segment answering 80% at 10h and 20% otherwise.
        for hour in 8..21 {
            let answered = if hour == 10 { 32 } else { 8 };
            for k in 0..40u64 {
                let n = format!("+86137{:08}", u64::from(hour) * 100 + k);
                history.push(attempt(&n, hour, k < answered, Some("morning")));
            }
        }
        let model = AnswerModel::learn(&history);
        let contacts = vec![
            contact("+8613800000001", Some("evening"), 0),
            contact("+8613700000001", Some("morning"), 1),
            contact("+999123456789", None, 2),
            contact("+8613700000002", Some("morning"), 3),
        ];
        let due = [0, 1, 2, 3];
        // 10:30 in Shanghai: morning is best.
        let ten = Utc.with_ymd_and_hms(2024, 5, 1, 2, 30, 0).unwrap();
        assert_eq!(dial_order(&contacts, &due, &model, ten), vec![1, 3, 0, 2]);
        // 16:30: evening is best.
        let four = Utc.with_ymd_and_hms(2024, 5, 1, 8, 30, 0).unwrap();
        assert_eq!(dial_order(&contacts, &due, &model, four), vec![0, 1, 3, 2]);
        // Only what is due is ordered.
        assert_eq!(dial_order(&contacts, &[3, 0], &model, ten), vec![3, 0]);
    }
}
