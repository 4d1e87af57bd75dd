//! Scoring on hand-built transcripts.

use super::*;

fn seg(speaker: Speaker, start_ms: u64, end_ms: u64, text: &str) -> Segment {
    Segment {
        speaker,
        start_ms,
        end_ms,
        text: text.into(),
    }
}

fn call(segments: Vec<Segment>) -> (CallMeta, Transcript) {
    let duration_ms = segments.iter().map(|s| s.end_ms).max().unwrap_or(0) + 1000;
    let meta = CallMeta {
        call_id: "call-1".into(),
        started_at: "2024-05-01T09:00:00Z".into(),
        duration_ms,
        ..CallMeta::default()
    };
    let t = Transcript {
        call_id: "call-1".into(),
        language: None,
        duration_ms,
        model: "test".into(),
        segments,
    };
    (meta, t)
}

fn good_zh_call() -> Vec<Segment> {
    use Speaker::{Agent, Customer};
    vec![
        seg(Agent, 500, 6_000, "您好，我是平安银行的客服小李。"),
        seg(Customer, 6_300, 7_500, "你好。"),
        seg(
            Agent,
            7_800,
            14_000,
            "今天给您打电话是想跟您介绍一下信用卡分期的优惠活动。",
        ),
        seg(Customer, 14_300, 16_000, "嗯，你说吧。"),
        seg(
            Agent,
            16_200,
            24_000,
            "每个月手续费打八折，办理很方便，您看可以吗？",
        ),
        seg(Customer, 24_400, 27_000, "听起来不错，谢谢你。"),
        seg(
            Agent,
            27_300,
            31_000,
            "好的，感谢您的耐心，祝您生活愉快，再见。",
        ),
        seg(Customer, 31_300, 32_500, "好的，再见。"),
    ]
}

fn good_en_call() -> Vec<Segment> {
    use Speaker::{Agent, Customer};
    vec![
        seg(
            Agent,
            400,
            5_000,
            "Hello, my name is Anna and I'm calling from City Bank.",
        ),
        seg(Customer, 5_300, 6_500, "Hi."),
        seg(
            Agent,
            6_800,
            12_000,
            "I'm calling about the new savings plan on your account.",
        ),
        seg(Customer, 12_300, 14_000, "Sure, go ahead."),
        seg(
            Agent,
            14_200,
            20_000,
            "It pays a fixed rate every month, would you like to hear more?",
        ),
        seg(Customer, 20_300, 23_000, "That sounds great, thanks."),
        seg(
            Agent,
            23_300,
            27_000,
            "Thank you for your time, have a nice day, goodbye.",
        ),
        seg(Customer, 27_300, 28_500, "Bye."),
    ]
}

fn item<'a>(r: &'a QaResult, id: &str) -> &'a ItemResult {
    r.items
        .iter()
        .find(|i| i.id == id)
        .unwrap_or_else(|| panic!("no item {id} in {:?}", r.items))
}

#[test]
fn well_behaved_calls_score_high() {
    for card_name in ["default", "marketing"] {
        let card = Scorecard::builtin(card_name).unwrap();
        for segments in [good_zh_call(), good_en_call()] {
            let (meta, t) = call(segments);
            let r = score_call(&card, &meta, &t);
            let failed: Vec<_> = r
                .items
                .iter()
                .filter(|i| !i.passed)
                .map(|i| (&i.id, &i.detail))
                .collect();
            assert!(
                r.score >= 90.0,
                "{card_name}: score {} failed {failed:?}",
                r.score
            );
            assert!(!r.auto_failed);
            assert!(r.flags.is_empty(), "{:?}", r.flags);
            assert_eq!(r.scorecard, card_name);
            let greeting = item(&r, "greeting");
            assert!(greeting.passed);
            assert_eq!(greeting.evidence[0].start_ms, t.segments[0].start_ms);
        }
    }
}

#[test]
fn score_is_earned_over_total() {
    let card = Scorecard::builtin("default").unwrap();
    let mut segments = good_en_call();
    segments.remove(6); // no closing
    let (meta, t) = call(segments);
    let r = score_call(&card, &meta, &t);
    let total: f64 = r.items.iter().map(|i| i.max_points).sum();
    let earned: f64 = r.items.iter().map(|i| i.points).sum();
    assert!((r.score - (100.0 * earned / total * 100.0).round() / 100.0).abs() < 1e-9);
    let closing = item(&r, "closing");
    assert!(!closing.passed);
    assert_eq!(closing.points, 0.0);
    assert!(closing.detail.contains("never said"), "{}", closing.detail);
    assert!(r.score < 100.0 && r.score > 80.0, "{}", r.score);
}

#[test]
fn missing_disclosure_on_marketing_card_auto_fails() {
    use Speaker::{Agent, Customer};
    let card = Scorecard::builtin("marketing").unwrap();
    let (meta, t) = call(vec![
        seg(
            Agent,
            500,
            5_000,
            "您好，今天给您打电话是想介绍一个理财产品，您看可以吗？",
        ),
        seg(Customer, 5_500, 7_000, "可以，你说。"),
        seg(Agent, 7_500, 12_000, "收益很稳定，谢谢您，再见。"),
    ]);
    let r = score_call(&card, &meta, &t);
    assert!(r.auto_failed);
    assert_eq!(r.score, 0.0);
    let d = item(&r, "disclosure");
    assert!(!d.passed);
    assert!(d.detail.contains("never said"), "{}", d.detail);
    // The same call on the default card loses the points but is not auto-failed.
    let r = score_call(&Scorecard::builtin("default").unwrap(), &meta, &t);
    assert!(!r.auto_failed);
    assert!(r.score > 50.0 && r.score < 90.0, "{}", r.score);
}

#[test]
fn half_a_disclosure_is_not_enough() {
    let card = Scorecard::builtin("marketing").unwrap();
    let mut segments = good_en_call();
    segments[0].text = "Hello, my name is Anna.".into();
    let (meta, t) = call(segments);
    let r = score_call(&card, &meta, &t);
    let d = item(&r, "disclosure");
    assert!(!d.passed);
    assert!(d.detail.contains("but not"), "{}", d.detail);
    assert_eq!(d.evidence.len(), 1);
    assert!(r.auto_failed);
}

#[test]
fn complaint_flag_points_at_the_right_time() {
    use Speaker::{Agent, Customer};
    let card = Scorecard::builtin("default").unwrap();
    let mut segments = good_zh_call();
    segments.insert(2, seg(Customer, 12_500, 14_000, "我要投诉你们！"));
    segments.sort_by_key(|s| s.start_ms);
    let (meta, t) = call(segments);
    let r = score_call(&card, &meta, &t);
    assert_eq!(r.flags, vec!["complaint".to_string()]);
    let c = item(&r, "complaint");
    assert_eq!(c.evidence.len(), 1);
    assert_eq!(c.evidence[0].start_ms, 12_500);
    assert_eq!(c.evidence[0].speaker, Speaker::Customer);
    assert!(c.detail.contains("12.5 s"), "{}", c.detail);

    let (meta, t) = call(vec![
        seg(Agent, 0, 3_000, "Hello, this is Tom from ABC company."),
        seg(
            Customer,
            3_200,
            6_000,
            "I want to file a complaint about your calls.",
        ),
    ]);
    let r = score_call(&card, &meta, &t);
    assert!(r.has_flag("complaint"));
    assert_eq!(item(&r, "complaint").evidence[0].start_ms, 3_200);
}

#[test]
fn flags_tolerate_traditional_characters_and_order_is_fixed() {
    let card = Scorecard::builtin("default").unwrap();
    let (meta, t) = call(vec![
        seg(
            Speaker::Customer,
            1_000,
            3_000,
            "不要再打電話了，我要退款。",
        ),
        seg(
            Speaker::Customer,
            4_000,
            6_000,
            "我要投訴，再打我就找律師。",
        ),
    ]);
    let r = score_call(&card, &meta, &t);
    assert_eq!(
        r.flags,
        vec!["complaint", "refund", "opt_out", "legal_threat"]
    );
    let (meta, t) = call(vec![seg(
        Speaker::Customer,
        1_000,
        3_000,
        "你们别再给我打电话了",
    )]);
    assert!(score_call(&card, &meta, &t).has_flag("opt_out"));
    let (meta, t) = call(vec![seg(Speaker::Customer, 1_000, 3_000, "下次再打电话吧")]);
    assert!(!score_call(&card, &meta, &t).has_flag("opt_out"));
}

#[test]
fn negated_and_agent_mentions_do_not_flag() {
    use Speaker::{Agent, Customer};
    let card = Scorecard::builtin("default").unwrap();
    let (meta, t) = call(vec![
        seg(Agent, 0, 3_000, "如果有问题您可以拨打投诉电话。"),
        seg(Customer, 3_500, 5_000, "我不要投诉，就是问问。"),
        seg(
            Customer,
            5_500,
            8_000,
            "I'm not going to complain, I don't want a refund.",
        ),
    ]);
    let r = score_call(&card, &meta, &t);
    assert!(r.flags.is_empty(), "{:?}", r.flags);
    let c = item(&r, "complaint");
    assert!(c.evidence.is_empty());
    assert!(c.detail.contains("only negated"), "{}", c.detail);
}

#[test]
fn forbidden_phrase_costs_points_with_evidence() {
    let card = Scorecard::builtin("default").unwrap();
    let mut segments = good_zh_call();
    segments[4].text = "这个产品保证赚钱，稳赚不赔。".into();
    let (meta, t) = call(segments);
    let r = score_call(&card, &meta, &t);
    let f = item(&r, "no_false_promises");
    assert!(!f.passed);
    assert_eq!(f.points, 0.0);
    assert_eq!(f.evidence[0].start_ms, 16_200);
    // A negated promise is compliant.
    let mut segments = good_en_call();
    segments[4].text = "Returns are not guaranteed, would you like to hear more?".into();
    let (meta, t) = call(segments);
    let r = score_call(&card, &meta, &t);
    assert!(item(&r, "no_false_promises").passed);
}

#[test]
fn late_greeting_fails_within_ms() {
    let card = Scorecard::builtin("default").unwrap();
    let mut segments = good_zh_call();
    for s in &mut segments {
        s.start_ms += 40_000;
        s.end_ms += 40_000;
    }
    let (meta, t) = call(segments);
    let r = score_call(&card, &meta, &t);
    let g = item(&r, "greeting");
    assert!(!g.passed);
    assert!(g.detail.contains("within the first 30.0 s"), "{}", g.detail);
}

#[test]
fn measurements_explain_points() {
    use Speaker::{Agent, Customer};
    let card = Scorecard::builtin("default").unwrap();
    let mut segments = good_en_call();
    // 15 s of silence and 6 s of talking over the customer.
    segments.push(seg(
        Agent,
        43_500,
        50_000,
        "Hello? Are you there? This is City Bank.",
    ));
    segments.push(seg(Customer, 44_000, 49_800, "Yes yes I'm here, sorry."));
    let (meta, t) = call(segments);
    let r = score_call(&card, &meta, &t);
    let s = item(&r, "silence");
    assert!(!s.passed);
    assert_eq!(s.measurement, Some(15_000.0));
    assert!(
        s.evidence.iter().any(|e| e.end_ms == 28_500)
            && s.evidence.iter().any(|e| e.start_ms == 43_500)
    );
    let o = item(&r, "overtalk");
    assert!(!o.passed);
    assert_eq!(o.measurement, Some(5_800.0));
    assert_eq!(o.evidence.len(), 2);
    let ratio = item(&r, "talk_ratio");
    assert!(ratio.passed && ratio.measurement.is_some_and(|m| (0.3..=0.8).contains(&m)));
}

#[test]
fn mono_calls_skip_party_measurements() {
    let card = Scorecard::builtin("default").unwrap();
    let segments: Vec<Segment> = good_zh_call()
        .into_iter()
        .map(|mut s| {
            s.speaker = Speaker::Mixed;
            s
        })
        .collect();
    let (meta, t) = call(segments);
    let r = score_call(&card, &meta, &t);
    for id in ["talk_ratio", "overtalk"] {
        let i = item(&r, id);
        assert_eq!(i.max_points, 0.0, "{id}");
        assert!(i.detail.starts_with("not measured"), "{}", i.detail);
    }
    assert!(item(&r, "greeting").passed);
    assert!(r.score >= 90.0, "{}", r.score);
}

#[test]
fn sentiment_decline_fails() {
    use Speaker::{Agent, Customer};
    let card = Scorecard::builtin("default").unwrap();
    let (meta, t) = call(vec![
        seg(Agent, 0, 4_000, "您好，我是平安银行的小李。"),
        seg(Customer, 4_500, 6_000, "好的，谢谢，很高兴。"),
        seg(Agent, 10_000, 20_000, "我们的产品收益每年百分之五。"),
        seg(Customer, 25_000, 30_000, "太差了，你们就是骗子，真讨厌。"),
    ]);
    let r = score_call(&card, &meta, &t);
    let s = item(&r, "sentiment");
    assert!(!s.passed, "{}", s.detail);
    assert!(s.measurement.is_some_and(|m| m < -0.5));
    assert_eq!(s.evidence.len(), 2);
}

#[test]
fn card_without_categories_still_flags() {
    let card = Scorecard::from_toml(
        "id = \"tiny\"\nversion = 2\nname = \"t\"\n[[items]]\nid = \"hi\"\nkind = \"required_phrase\"\nphrases = [\"hello\"]\n",
    )
    .unwrap();
    let (meta, t) = call(vec![
        seg(Speaker::Agent, 0, 2_000, "hello"),
        seg(Speaker::Customer, 2_000, 4_000, "stop calling me"),
    ]);
    let r = score_call(&card, &meta, &t);
    assert_eq!(r.flags, vec!["opt_out"]);
    assert_eq!(r.version, 2);
    let flag_item = item(&r, "flag:opt_out");
    assert_eq!(flag_item.max_points, 0.0);
    assert_eq!(flag_item.evidence[0].start_ms, 2_000);
    // Flag-only items do not change the score.
    assert_eq!(r.score, 100.0);
}

#[test]
fn fail_on_match_category_costs_points() {
    let card = Scorecard::from_toml(
        "id = \"c\"\nversion = 1\nname = \"t\"\n[[items]]\nid = \"hi\"\nkind = \"required_phrase\"\nphrases = [\"hello\"]\n\
         [[items]]\nid = \"no_complaints\"\nkind = \"keyword_category\"\ncategory = \"complaint\"\nweight = 1\nfail_on_match = true\n",
    )
    .unwrap();
    let (meta, t) = call(vec![
        seg(Speaker::Agent, 0, 2_000, "hello"),
        seg(Speaker::Customer, 2_000, 4_000, "我要举报你们"),
    ]);
    let r = score_call(&card, &meta, &t);
    assert_eq!(r.score, 50.0);
    assert!(r.has_flag("complaint"));
    assert!(!item(&r, "no_complaints").passed);
}

#[test]
fn result_serialises_to_the_contract_shape() {
    let card = Scorecard::builtin("default").unwrap();
    let (meta, t) = call(good_en_call());
    let r = score_call(&card, &meta, &t);
    let v = serde_json::to_value(&r).unwrap();
    for key in [
        "score",
        "scorecard",
        "version",
        "flags",
        "items",
        "auto_failed",
    ] {
        assert!(v.get(key).is_some(), "{key}");
    }
    let first = &v["items"][0];
    for key in [
        "id",
        "kind",
        "label",
        "passed",
        "points",
        "max_points",
        "evidence",
        "measurement",
        "detail",
    ] {
        assert!(first.get(key).is_some(), "{key}");
    }
    assert_eq!(first["evidence"][0]["speaker"], "agent");
    let back: QaResult = serde_json::from_value(v).unwrap();
    assert_eq!(back, r);
}

#[test]
fn synthetic_calls_score_and_bench_runs() {
    let card = Scorecard::default_card();
    let (meta, t) = crate::bench::synthetic_call(0);
    let r = score_call(&card, &meta, &t);
    assert!(
        r.flags.is_empty() && r.score >= 80.0,
        "{} {:?}",
        r.score,
        r.items.iter().filter(|i| !i.passed).collect::<Vec<_>>()
    );
    let (meta, t) = crate::bench::synthetic_call(1);
    let r = score_call(&card, &meta, &t);
    for f in ["complaint", "refund", "opt_out", "legal_threat"] {
        assert!(r.has_flag(f), "{f} in {:?}", r.flags);
    }
    assert!(crate::bench::bench_scoring(20) > 0.0);
}
