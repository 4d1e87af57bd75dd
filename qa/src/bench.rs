//! Synthetic call transcripts (zh and en, some with complaints and opt-outs) and the
//! scoring throughput benchmark that runs on them.

use std::time::Instant;

use callqa_ingest::transcript::{CallMeta, Segment, Speaker, Transcript};

use crate::score::score_call;
use crate::scorecard::Scorecard;

const ZH_AGENT: &[&str] = &[
    "您好，我是平安银行的客服小李，工号一二三四。",
    "今天给您打电话是想跟您介绍一下我们新推出的信用卡分期优惠。",
    "这个活动每个月手续费打八折，您看可以吗？",
    "好的，我帮您记录一下，稍后会有短信发到您的手机上。",
    "请问您还有其他问题吗？",
    "感谢您的耐心，祝您生活愉快，再见。",
];
const ZH_CUSTOMER_CALM: &[&str] = &[
    "你好。",
    "嗯，你说吧。",
    "听起来还不错。",
    "好的，谢谢。",
    "没有了，再见。",
];
const ZH_CUSTOMER_ANGRY: &[&str] = &[
    "又是你们，太烦了。",
    "我说过不要再打了！",
    "你们这是骚扰，我要投诉。",
    "我要退款，你们乱扣费。",
    "再打我就找律师起诉你们。",
];
const EN_AGENT: &[&str] = &[
    "Hello, my name is Anna and I'm calling from City Bank.",
    "I'm calling about the new savings plan on your account.",
    "It pays a fixed rate every month, would you like to hear more?",
    "I'll send you the details by email.",
    "Is there anything else I can help with?",
    "Thank you for your time, have a nice day, goodbye.",
];
const EN_CUSTOMER_CALM: &[&str] = &[
    "Hi.",
    "Sure, go ahead.",
    "That sounds good.",
    "Okay, thanks.",
    "No, that's all, bye.",
];
const EN_CUSTOMER_ANGRY: &[&str] = &[
    "You people again, this is annoying.",
    "Stop calling me, I told you before.",
    "I want to file a complaint about this.",
    "I want my money back for the fee you charged.",
    "If you call again I will sue you.",
];

/// A deterministic synthetic call: `i` picks language (even zh, odd en) and, every
/// fourth call, an angry customer who complains / opts out.
pub fn synthetic_call(i: u64) -> (CallMeta, Transcript) {
    let zh = i.is_multiple_of(2);
    let angry = i % 4 == 1 || i % 4 == 2;
    let (agent, customer) = match (zh, angry) {
        (true, false) => (ZH_AGENT, ZH_CUSTOMER_CALM),
        (true, true) => (ZH_AGENT, ZH_CUSTOMER_ANGRY),
        (false, false) => (EN_AGENT, EN_CUSTOMER_CALM),
        (false, true) => (EN_AGENT, EN_CUSTOMER_ANGRY),
    };
    let mut segments = Vec::new();
    let mut t = 500 + (i % 7) * 100;
    // Three rounds of the script make a ~2-minute call of ~30 segments.
    for round in 0..3 {
        for (k, line) in agent.iter().enumerate() {
            let len = 1500 + 120 * line.chars().count() as u64 / 2;
            segments.push(Segment {
                speaker: Speaker::Agent,
                start_ms: t,
                end_ms: t + len,
                text: (*line).to_string(),
            });
            t += len + 300;
            if let Some(reply) = customer.get((k + round) % customer.len()) {
                let len = 1200 + 100 * reply.chars().count() as u64 / 2;
                segments.push(Segment {
                    speaker: Speaker::Customer,
                    start_ms: t,
                    end_ms: t + len,
                    text: (*reply).to_string(),
                });
                t += len + 400;
            }
        }
    }
    let call_id = format!("synthetic-{i:06}");
    let meta = CallMeta {
        call_id: call_id.clone(),
        campaign: Some(
            if i.is_multiple_of(3) {
                "cards"
            } else {
                "savings"
            }
            .to_string(),
        ),
        agent: Some(format!("agent-{}", i % 5)),
        customer: Some(format!("+86138{:08}", i % 50)),
        started_at: format!("2024-05-{:02}T09:{:02}:00Z", 1 + (i / 60) % 28, i % 60),
        duration_ms: t + 500,
        language: Some(if zh { "zh" } else { "en" }.to_string()),
    };
    let transcript = Transcript {
        call_id,
        language: meta.language.clone(),
        duration_ms: t + 500,
        model: "synthetic".into(),
        segments,
    };
    (meta, transcript)
}

/// Scores `n` synthetic calls with the default scorecard and returns calls per second.
/// Transcripts are built before the clock starts.
pub fn bench_scoring(n: usize) -> f64 {
    let card = Scorecard::default_card();
    let calls: Vec<(CallMeta, Transcript)> = (0..n as u64).map(synthetic_call).collect();
    let start = Instant::now();
    let mut flagged = 0usize;
    for (meta, t) in &calls {
        let r = score_call(&card, meta, t);
        flagged += r.flags.len();
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    tracing::debug!(n, flagged, secs, "scoring benchmark");
    n as f64 / secs
}
