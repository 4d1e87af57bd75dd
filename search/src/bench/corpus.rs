//! Deterministic synthetic call transcripts for the benchmark: mixed Chinese/English
//! call-centre talk with the keywords planted at known rates.

use callqa_ingest::transcript::{CallMeta, Segment, Speaker, Transcript};
use chrono::{DateTime, SecondsFormat};

use crate::CallDoc;

/// splitmix64: tiny, fast, and the same sequence on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Filler vocabulary. No word starts with 款 or ends with 退, so 退款 only ever appears
/// where it is planted; 退货 and 款项 appear on purpose as near misses.
const ZH: &[&str] = &[
    "您好",
    "我们",
    "是",
    "银行",
    "信用卡",
    "客服",
    "请问",
    "您",
    "需要",
    "办理",
    "业务",
    "谢谢",
    "再见",
    "好的",
    "可以",
    "不",
    "知道",
    "电话",
    "账户",
    "贷款",
    "利率",
    "额度",
    "还款",
    "时间",
    "明天",
    "今天",
    "公司",
    "产品",
    "服务",
    "活动",
    "优惠",
    "了解",
    "一下",
    "没有",
    "问题",
    "退货",
    "款项",
    "已经",
    "到账",
    "资料",
    "身份证",
    "号码",
    "确认",
    "一下子",
    "这个",
    "那个",
    "我",
    "你",
    "他们",
    "现在",
    "方便",
    "吗",
    "的",
    "了",
    "呢",
    "就是",
    "然后",
    "因为",
    "所以",
    "如果",
    "会员",
    "积分",
    "兑换",
    "礼品",
    "保险",
    "理财",
    "收益",
    "风险",
    "期限",
    "申请",
    "审核",
    "通过",
    "短信",
    "验证码",
    "地址",
    "快递",
    "订单",
    "物流",
    "客户",
    "经理",
    "专员",
    "回访",
    "满意",
    "评价",
];

const EN: &[&str] = &[
    "hello", "this", "is", "calling", "from", "the", "bank", "about", "your", "account", "credit",
    "card", "offer", "we", "have", "a", "new", "plan", "for", "you", "would", "like", "to", "hear",
    "more", "yes", "no", "thanks", "please", "call", "back", "later", "order", "delivery",
    "address", "confirm", "number", "rate", "loan", "payment", "balance", "today", "tomorrow",
    "customer", "service", "manager", "check", "details", "email", "message", "fund", "funding",
    "plain", "complete", "refine", "returned", "goods",
];

/// Planted keywords and the share of calls that contain each (at least once).
pub const PLANTED: &[(&str, f64)] = &[
    ("退款", 0.05),
    ("投诉", 0.03),
    ("refund", 0.05),
    ("complaint", 0.03),
    ("我要投诉", 0.01),
    ("stop calling", 0.01),
];

pub const CAMPAIGNS: usize = 20;
pub const AGENTS: usize = 200;
/// Calls are spread over the 366 days of 2024.
pub const FIRST_DAY_SECS: i64 = 1_704_067_200;
pub const DAYS: i64 = 366;

pub fn campaign_name(i: usize) -> String {
    format!("campaign-{i:02}")
}

/// The `i`th call of the corpus with seed `seed`: the same inputs give the same call.
pub fn call(seed: u64, i: usize) -> CallDoc {
    let mut rng = Rng::new(seed ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let call_id = format!("bench-{i:08}");
    let n_segments = 20 + rng.below(21);
    let mut segments = Vec::with_capacity(n_segments);
    let mut t = 0u64;
    for s in 0..n_segments {
        let speaker = if s % 2 == 0 {
            Speaker::Agent
        } else {
            Speaker::Customer
        };
        let text = if rng.chance(0.7) {
            let mut out = String::new();
            for w in 0..4 + rng.below(9) {
                // A sprinkle of English inside Chinese, as whisper writes it.
                if w > 0 && rng.chance(0.05) {
                    out.push(' ');
                    out.push_str(rng.pick(EN));
                    out.push(' ');
                } else {
                    out.push_str(rng.pick(ZH));
                }
            }
            out.push('。');
            out
        } else {
            let words: Vec<&str> = (0..5 + rng.below(11)).map(|_| rng.pick(EN)).collect();
            words.join(" ") + "."
        };
        let len = 1500 + rng.below(6000) as u64;
        segments.push(Segment {
            speaker,
            start_ms: t,
            end_ms: t + len,
            text,
        });
        t += len + 300;
    }
    for (keyword, rate) in PLANTED {
        if rng.chance(*rate) {
            let seg = &mut segments[rng.below(n_segments)];
            let sep = if keyword.is_ascii() { " " } else { "" };
            seg.text = format!("{}{sep}{keyword}{sep}{}", rng.pick(ZH), seg.text);
        }
    }
    let started = FIRST_DAY_SECS + (rng.below((DAYS * 86_400) as usize) as i64);
    let started_at = DateTime::from_timestamp(started, 0)
        .map(|d| d.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default();
    CallDoc {
        meta: CallMeta {
            call_id: call_id.clone(),
            campaign: Some(campaign_name(rng.below(CAMPAIGNS))),
            agent: Some(format!("agent-{:03}", rng.below(AGENTS))),
            customer: Some(format!("+86138{:08}", rng.below(100_000_000))),
            started_at,
            duration_ms: t,
            language: Some("zh".into()),
        },
        transcript: Transcript {
            call_id,
            language: Some("zh".into()),
            duration_ms: t,
            model: "synthetic".into(),
            segments,
        },
        status: "done".into(),
        qa_score: Some(rng.below(101) as f64),
        flags: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_is_deterministic_and_plants_keywords_at_about_the_rate() {
        assert_eq!(call(7, 42), call(7, 42));
        assert_ne!(call(7, 42), call(8, 42));
        let n = 4000;
        let with = |kw: &str| {
            (0..n)
                .filter(|&i| call(1, i).transcript.full_text().contains(kw))
                .count() as f64
                / n as f64
        };
        let refund = with("退款");
        assert!((0.035..0.065).contains(&refund), "退款 rate {refund}");
        let complaint = with("我要投诉");
        assert!(
            (0.004..0.02).contains(&complaint),
            "我要投诉 rate {complaint}"
        );
    }

    #[test]
    fn segments_have_realistic_count_and_order() {
        let c = call(3, 9);
        let n = c.transcript.segments.len();
        assert!((20..=40).contains(&n), "{n}");
        assert!(c
            .transcript
            .segments
            .windows(2)
            .all(|w| w[0].end_ms < w[1].start_ms));
    }
}
