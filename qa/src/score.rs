//! Scores one call against a scorecard: every point won or lost is explained by the
//! transcript spans or the measurement behind it, and the call's flags are derived.

use std::sync::OnceLock;

use callqa_ingest::transcript::{CallMeta, Segment, Speaker, Transcript};
use serde::{Deserialize, Serialize};

use crate::matcher::{prepare, Phrase, Prepared};
use crate::measure;
use crate::scorecard::{
    category_phrases, Check, Item, PhraseGroup, Scorecard, SpeakerSel, FLAG_CATEGORIES,
};
use crate::sentiment;

/// A transcript span that supports an item's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub speaker: Speaker,
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
}

impl Evidence {
    fn of(s: &Segment) -> Evidence {
        Evidence {
            speaker: s.speaker,
            start_ms: s.start_ms,
            end_ms: s.end_ms,
            text: s.text.clone(),
        }
    }
}

/// The result of one scorecard item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemResult {
    pub id: String,
    pub kind: String,
    pub label: String,
    pub passed: bool,
    pub points: f64,
    /// 0 for flag-only items and for measurements the recording cannot support
    /// (talk ratio of a mono call): those neither add nor cost points.
    pub max_points: f64,
    pub evidence: Vec<Evidence>,
    pub measurement: Option<f64>,
    pub detail: String,
}

/// The QA result of one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QaResult {
    /// 0..=100, `100 * earned / total`, capped by a failed auto-fail item.
    pub score: f64,
    pub scorecard: String,
    pub version: u32,
    /// Raised categories among complaint, refund, opt_out, cancel, legal_threat (and any
    /// custom category of the scorecard), in that order.
    pub flags: Vec<String>,
    pub auto_failed: bool,
    pub items: Vec<ItemResult>,
}

impl QaResult {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

/// A transcript prepared once for matching many phrases.
struct Call<'a> {
    t: &'a Transcript,
    prepared: Vec<Prepared>,
    duration_ms: u64,
}

fn speaker_ok(sel: SpeakerSel, s: Speaker) -> bool {
    match sel {
        SpeakerSel::Any => true,
        // A mono recording cannot tell the parties apart, so its segments count for both.
        SpeakerSel::Agent => matches!(s, Speaker::Agent | Speaker::Mixed),
        SpeakerSel::Customer => matches!(s, Speaker::Customer | Speaker::Mixed),
    }
}

fn speaker_name(sel: SpeakerSel) -> &'static str {
    match sel {
        SpeakerSel::Agent => "agent",
        SpeakerSel::Customer => "customer",
        SpeakerSel::Any => "anyone",
    }
}

fn secs(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

fn list_phrases<'a>(phrases: impl Iterator<Item = &'a Phrase>) -> String {
    let all: Vec<&str> = phrases.map(|p| p.text.as_str()).collect();
    let shown = all
        .iter()
        .take(6)
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(", ");
    if all.len() > 6 {
        format!("{shown}, ... ({} phrases)", all.len())
    } else {
        shown
    }
}

/// Segment-level hits of `phrases` by `sel`: (segment index, phrase, negated).
fn hits<'p>(
    call: &Call,
    sel: SpeakerSel,
    phrases: &[&'p Phrase],
) -> Vec<(usize, &'p Phrase, bool)> {
    let mut out = Vec::new();
    for (i, seg) in call.t.segments.iter().enumerate() {
        if !speaker_ok(sel, seg.speaker) {
            continue;
        }
        let mut negated_hit = None;
        for p in phrases {
            match p.find(&call.prepared[i]) {
                Some(h) if !h.negated => {
                    negated_hit = None;
                    out.push((i, *p, false));
                    break;
                }
                Some(_) => negated_hit = negated_hit.or(Some(*p)),
                None => {}
            }
        }
        if let Some(p) = negated_hit {
            out.push((i, p, true));
        }
    }
    out
}

/// Scores `t` against `card`. Pure and deterministic; `meta` supplies the duration when
/// the transcript lacks one.
pub fn score_call(card: &Scorecard, meta: &CallMeta, t: &Transcript) -> QaResult {
    let seg_end = t.segments.iter().map(|s| s.end_ms).max().unwrap_or(0);
    let duration_ms = if t.duration_ms > 0 {
        t.duration_ms
    } else {
        meta.duration_ms
    }
    .max(seg_end);
    let call = Call {
        t,
        prepared: t.segments.iter().map(|s| prepare(&s.text)).collect(),
        duration_ms,
    };

    let mut items: Vec<ItemResult> = Vec::with_capacity(card.items.len() + FLAG_CATEGORIES.len());
    let mut flags: Vec<String> = Vec::new();
    for item in &card.items {
        let (result, flag) = evaluate(item, &call);
        if let Some(f) = flag {
            if !flags.contains(&f) {
                flags.push(f);
            }
        }
        items.push(result);
    }
    // Every call is checked for the standard flags, even with a scorecard that does not
    // list them, because the blacklist depends on them.
    for (category, phrases) in builtin_categories() {
        let covered = card.items.iter().any(
            |i| matches!(&i.check, Check::KeywordCategory { category: c, .. } if c == category),
        );
        if covered {
            continue;
        }
        let refs: Vec<&Phrase> = phrases.iter().collect();
        let (result, flag) = keyword_result(
            &format!("flag:{category}"),
            &format!("Customer mentions {category}"),
            category,
            SpeakerSel::Customer,
            &refs,
            false,
            0.0,
            &call,
        );
        if let Some(f) = flag {
            flags.push(f);
        }
        items.push(result);
    }
    flags.sort_by_key(|f| {
        FLAG_CATEGORIES
            .iter()
            .position(|c| c == f)
            .unwrap_or(FLAG_CATEGORIES.len())
    });

    let total: f64 = items.iter().map(|i| i.max_points).sum();
    let earned: f64 = items.iter().map(|i| i.points).sum();
    let mut score = if total > 0.0 {
        100.0 * earned / total
    } else {
        100.0
    };
    let auto_failed = card
        .items
        .iter()
        .zip(&items)
        .any(|(item, r)| item.auto_fail && !r.passed && r.max_points > 0.0);
    if auto_failed {
        score = score.min(card.auto_fail_cap);
    }
    QaResult {
        score: (score * 100.0).round() / 100.0,
        scorecard: card.id.clone(),
        version: card.version,
        flags,
        auto_failed,
        items,
    }
}

fn builtin_categories() -> &'static [(&'static str, Vec<Phrase>)] {
    static CATS: OnceLock<Vec<(&'static str, Vec<Phrase>)>> = OnceLock::new();
    CATS.get_or_init(|| {
        FLAG_CATEGORIES
            .iter()
            .map(|c| {
                let phrases = category_phrases(c)
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(|p| Phrase::compile(p))
                    .collect();
                (*c, phrases)
            })
            .collect()
    })
}

fn base(item: &Item) -> ItemResult {
    ItemResult {
        id: item.id.clone(),
        kind: item.check.kind().to_string(),
        label: item.label.clone(),
        passed: false,
        points: 0.0,
        max_points: item.weight,
        evidence: Vec::new(),
        measurement: None,
        detail: String::new(),
    }
}

fn finish(mut r: ItemResult, passed: bool, detail: String) -> ItemResult {
    r.passed = passed;
    r.points = if passed { r.max_points } else { 0.0 };
    r.detail = detail;
    r
}

/// A measurement the recording cannot support: neither earns nor costs points.
fn not_measurable(mut r: ItemResult, why: &str) -> ItemResult {
    r.passed = true;
    r.points = 0.0;
    r.max_points = 0.0;
    r.detail = format!("not measured: {why}");
    r
}

fn evaluate(item: &Item, call: &Call) -> (ItemResult, Option<String>) {
    let r = base(item);
    let t = call.t;
    match &item.check {
        Check::RequiredPhrase {
            speaker,
            groups,
            require_all,
            within_ms,
            last_ms,
        } => (
            required(
                r,
                call,
                *speaker,
                groups,
                *require_all,
                *within_ms,
                *last_ms,
            ),
            None,
        ),
        Check::ForbiddenPhrase { speaker, groups } => {
            let phrases: Vec<&Phrase> = groups.iter().flat_map(|g| &g.alternatives).collect();
            let found = hits(call, *speaker, &phrases);
            let said: Vec<_> = found.iter().filter(|(_, _, neg)| !neg).collect();
            let mut r = r;
            r.evidence = said
                .iter()
                .map(|(i, _, _)| Evidence::of(&t.segments[*i]))
                .collect();
            let detail = if said.is_empty() {
                let negated = found.len();
                if negated > 0 {
                    format!(
                        "only negated mentions ({negated}), e.g. \"{}\"",
                        t.segments[found[0].0].text
                    )
                } else {
                    format!(
                        "{} said none of {}",
                        speaker_name(*speaker),
                        list_phrases(phrases.iter().copied())
                    )
                }
            } else {
                let what: Vec<String> = said
                    .iter()
                    .map(|(i, p, _)| format!("\"{}\" at {}", p.text, secs(t.segments[*i].start_ms)))
                    .collect();
                format!("{} said {}", speaker_name(*speaker), what.join(", "))
            };
            (finish(r, said.is_empty(), detail), None)
        }
        Check::KeywordCategory {
            category,
            speaker,
            phrases,
            fail_on_match,
        } => {
            let refs: Vec<&Phrase> = phrases.iter().collect();
            keyword_result(
                &item.id,
                &item.label,
                category,
                *speaker,
                &refs,
                *fail_on_match,
                item.weight,
                call,
            )
        }
        Check::TalkRatio { min, max } => {
            let Some(ratio) = measure::talk_ratio(t) else {
                return (
                    not_measurable(r, "needs separate agent and customer channels"),
                    None,
                );
            };
            let mut r = r;
            r.measurement = Some(ratio);
            let passed = (*min..=*max).contains(&ratio);
            let detail = format!(
                "agent talked {:.0}% of the talk time (allowed {:.0}%-{:.0}%)",
                ratio * 100.0,
                min * 100.0,
                max * 100.0
            );
            (finish(r, passed, detail), None)
        }
        Check::LongestSilence { max_ms } => {
            let mut r = r;
            let Some(gap) = measure::longest_silence(t) else {
                r.measurement = Some(0.0);
                return (finish(r, true, "no gap between speech".into()), None);
            };
            r.measurement = Some(gap.len() as f64);
            // The speech on either side of the gap shows where it was.
            r.evidence = t
                .segments
                .iter()
                .filter(|s| s.end_ms == gap.start_ms || s.start_ms == gap.end_ms)
                .map(Evidence::of)
                .collect();
            let detail = format!(
                "longest silence {} from {} to {} (allowed {})",
                secs(gap.len()),
                secs(gap.start_ms),
                secs(gap.end_ms),
                secs(*max_ms)
            );
            (finish(r, gap.len() <= *max_ms, detail), None)
        }
        Check::Overtalk { max_ms } => {
            let Some(spans) = measure::overtalk(t) else {
                return (
                    not_measurable(r, "needs separate agent and customer channels"),
                    None,
                );
            };
            let total = measure::total_ms(&spans);
            let mut r = r;
            r.measurement = Some(total as f64);
            let mut longest = spans.clone();
            longest.sort_by_key(|s| std::cmp::Reverse(s.len()));
            for span in longest.iter().take(3) {
                for s in &t.segments {
                    let overlaps = s.start_ms < span.end_ms && span.start_ms < s.end_ms;
                    let ev = Evidence::of(s);
                    if overlaps && s.speaker != Speaker::Mixed && !r.evidence.contains(&ev) {
                        r.evidence.push(ev);
                    }
                }
            }
            let detail = format!(
                "both talked at once for {} in {} stretches (allowed {})",
                secs(total),
                spans.len(),
                secs(*max_ms)
            );
            (finish(r, total <= *max_ms, detail), None)
        }
        Check::SpeechRate { speaker, min, max } => {
            let segs = t
                .segments
                .iter()
                .filter(|s| speaker_ok(*speaker, s.speaker));
            let Some(rate) = measure::speech_rate(segs) else {
                return (
                    not_measurable(r, &format!("{} did not speak", speaker_name(*speaker))),
                    None,
                );
            };
            let mut r = r;
            r.measurement = Some(rate);
            let detail = format!(
                "{} spoke {rate:.0} characters/words per minute (allowed {min:.0}-{max:.0})",
                speaker_name(*speaker)
            );
            (finish(r, (*min..=*max).contains(&rate), detail), None)
        }
        Check::Sentiment { min_delta } => {
            let Some(arc) = sentiment::customer_arc(t) else {
                return (not_measurable(r, "the customer did not speak"), None);
            };
            let delta = arc.end - arc.start;
            let mut r = r;
            r.measurement = Some(delta);
            r.evidence = arc
                .start_segments
                .iter()
                .chain(&arc.end_segments)
                .map(|i| Evidence::of(&t.segments[*i]))
                .collect();
            let detail = format!(
                "customer sentiment {:+.2} in the first third -> {:+.2} in the last third (change {delta:+.2}, minimum {min_delta:+.2})",
                arc.start, arc.end
            );
            (finish(r, delta >= *min_delta, detail), None)
        }
    }
}

fn required(
    r: ItemResult,
    call: &Call,
    speaker: SpeakerSel,
    groups: &[PhraseGroup],
    require_all: bool,
    within_ms: Option<u64>,
    last_ms: Option<u64>,
) -> ItemResult {
    let t = call.t;
    let in_time = |s: &Segment| {
        within_ms.is_none_or(|w| s.start_ms <= w)
            && last_ms.is_none_or(|l| s.end_ms.saturating_add(l) >= call.duration_ms)
    };
    let mut r = r;
    let mut said = Vec::new();
    let mut missing = Vec::new();
    for g in groups {
        let mut found = None;
        'segs: for (i, s) in t.segments.iter().enumerate() {
            if !speaker_ok(speaker, s.speaker) || !in_time(s) {
                continue;
            }
            for p in &g.alternatives {
                if p.find(&call.prepared[i]).is_some() {
                    found = Some((i, p));
                    break 'segs;
                }
            }
        }
        match found {
            Some((i, p)) => {
                let ev = Evidence::of(&t.segments[i]);
                if !r.evidence.contains(&ev) {
                    r.evidence.push(ev);
                }
                said.push(format!(
                    "\"{}\" at {}",
                    p.text,
                    secs(t.segments[i].start_ms)
                ));
            }
            None => missing.push(list_phrases(g.alternatives.iter())),
        }
    }
    let passed = if require_all {
        missing.is_empty()
    } else {
        !said.is_empty()
    };
    let mut when = String::new();
    if let Some(w) = within_ms {
        when.push_str(&format!(" within the first {}", secs(w)));
    }
    if let Some(l) = last_ms {
        when.push_str(&format!(" in the last {}", secs(l)));
    }
    let detail = if passed {
        format!("{} said {}", speaker_name(speaker), said.join(", "))
    } else if require_all && !said.is_empty() {
        format!(
            "{} said {} but not {}{when}",
            speaker_name(speaker),
            said.join(", "),
            missing.join(" / ")
        )
    } else {
        format!(
            "{} never said {}{when}",
            speaker_name(speaker),
            missing.join(" / ")
        )
    };
    finish(r, passed, detail)
}

#[allow(clippy::too_many_arguments)]
fn keyword_result(
    id: &str,
    label: &str,
    category: &str,
    speaker: SpeakerSel,
    phrases: &[&Phrase],
    fail_on_match: bool,
    weight: f64,
    call: &Call,
) -> (ItemResult, Option<String>) {
    let t = call.t;
    let found = hits(call, speaker, phrases);
    let said: Vec<_> = found.iter().filter(|(_, _, neg)| !neg).collect();
    let mut r = ItemResult {
        id: id.to_string(),
        kind: "keyword_category".into(),
        label: label.to_string(),
        passed: false,
        points: 0.0,
        max_points: weight,
        evidence: said
            .iter()
            .map(|(i, _, _)| Evidence::of(&t.segments[*i]))
            .collect(),
        measurement: None,
        detail: String::new(),
    };
    let flag = if said.is_empty() {
        None
    } else {
        Some(category.to_string())
    };
    let detail = if said.is_empty() {
        if found.is_empty() {
            format!("{category}: not mentioned by {}", speaker_name(speaker))
        } else {
            // Shown so an analyst can see why "我不要投诉" did not raise a flag.
            let ev: Vec<String> = found
                .iter()
                .map(|(i, p, _)| format!("\"{}\" at {}", p.text, secs(t.segments[*i].start_ms)))
                .collect();
            format!("{category}: only negated mentions: {}", ev.join(", "))
        }
    } else {
        let ev: Vec<String> = said
            .iter()
            .map(|(i, p, _)| format!("\"{}\" at {}", p.text, secs(t.segments[*i].start_ms)))
            .collect();
        format!(
            "{category}: {} said {}",
            speaker_name(speaker),
            ev.join(", ")
        )
    };
    let passed = !(fail_on_match && flag.is_some());
    r.passed = passed;
    r.points = if passed { weight } else { 0.0 };
    r.detail = detail;
    (r, flag)
}

#[cfg(test)]
mod tests;
