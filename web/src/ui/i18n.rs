//! UI labels in Chinese and English. The language comes from `?lang=` (remembered in a
//! cookie), else the cookie, else the browser's `Accept-Language`.

use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// Cookie remembering the chosen language.
pub const LANG_COOKIE: &str = "callqa_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The first of zh/en the browser lists; English when it lists neither.
    pub fn from_accept_language(h: &str) -> Lang {
        h.split(',')
            .map(|t| {
                t.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .find_map(|t| {
                if t.starts_with("zh") {
                    Some(Lang::Zh)
                } else if t.starts_with("en") {
                    Some(Lang::En)
                } else {
                    None
                }
            })
            .unwrap_or(Lang::En)
    }

    /// This request's language.
    pub fn of(parts: &Parts) -> Lang {
        Lang::detect(parts.uri.query(), &parts.headers)
    }

    /// The language of a request with this query string and these headers.
    pub fn detect(query: Option<&str>, headers: &HeaderMap) -> Lang {
        query_lang(query)
            .or_else(|| crate::auth::cookie(headers, LANG_COOKIE).and_then(Lang::parse))
            .unwrap_or_else(|| {
                headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .map_or(Lang::En, Lang::from_accept_language)
            })
    }

    /// The label for `key`; the key itself when the table lacks it (visible, not blank).
    pub fn t(self, key: &'static str) -> &'static str {
        LABELS
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or(key, |(_, en, zh)| if self == Lang::Zh { zh } else { en })
    }
}

fn query_lang(q: Option<&str>) -> Option<Lang> {
    q?.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "lang")
        .and_then(|(_, v)| Lang::parse(v))
}

/// Remembers a `?lang=` choice in a cookie so the following pages keep it.
pub async fn remember_lang(req: Request, next: Next) -> Response {
    let chosen = query_lang(req.uri().query());
    let mut res = next.run(req).await;
    if let Some(lang) = chosen {
        let cookie = format!(
            "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
            lang.code()
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

/// (key, English, Chinese).
const LABELS: &[(&str, &str, &str)] = &[
    ("app", "Call QA", "通话质检"),
    ("nav.search", "Search", "搜索"),
    ("nav.reports", "Reports", "报表"),
    ("nav.blacklist", "Blacklist", "黑名单"),
    ("nav.dead", "Failed calls", "失败通话"),
    ("nav.campaigns", "Campaigns", "外呼活动"),
    ("nav.consents", "Consents", "授权记录"),
    ("nav.scorecards", "Scorecards", "评分表"),
    (
        "camp.empty",
        "No campaigns yet. Load one with `callqa campaign load FILE`.",
        "暂无外呼活动。请用 `callqa campaign load FILE` 加载。",
    ),
    ("camp.state", "State", "状态"),
    ("camp.placed", "Placed", "已拨打"),
    ("camp.answered", "Answered", "已接通"),
    ("camp.abandoned", "Abandoned", "放弃"),
    ("camp.abandon_rate", "Abandon rate", "放弃率"),
    ("camp.contacts", "Contacts done", "已完成联系人"),
    ("camp.invalid", "Invalid numbers", "无效号码"),
    ("camp.refused", "Refused dials", "拒拨次数"),
    ("camp.rule", "Rule", "规则"),
    ("camp.by_reason", "Refusals by reason", "按原因统计拒拨"),
    (
        "camp.no_refusals",
        "No dial was refused.",
        "没有被拒拨的号码。",
    ),
    ("camp.recent", "Latest refusals", "最近的拒拨"),
    (
        "camp.by_hour",
        "Answer rate by hour (callee's local time)",
        "按小时接通率（被叫当地时间）",
    ),
    ("camp.no_dials", "No dial placed yet.", "尚未拨打。"),
    ("camp.actions", "Actions", "操作"),
    ("camp.start", "Start dialing", "开始外呼"),
    ("camp.pause", "Pause", "暂停"),
    (
        "camp.started",
        "The campaign is dialing from this server.",
        "活动已在本服务器开始外呼。",
    ),
    (
        "camp.paused",
        "The campaign is paused; calls in flight finish first.",
        "活动已暂停；进行中的通话会正常结束。",
    ),
    (
        "camp.all_done",
        "Every contact is done.",
        "所有联系人已完成。",
    ),
    (
        "consent.import_title",
        "Import CSV (number,scope,proof,granted_at[,expires_at])",
        "导入 CSV（号码,范围,凭证,授权时间[,到期时间]）",
    ),
    ("consent.import", "Import", "导入"),
    ("consent.imported", "records imported", "条记录已导入"),
    ("consent.rejected", "rows rejected", "行被拒绝"),
    ("consent.line", "Line", "行号"),
    ("sc.campaigns", "Campaign scorecards", "各活动的评分表"),
    (
        "sc.campaigns_empty",
        "No campaign yet: open one by name to give it its own scorecard.",
        "暂无活动：输入活动名称即可为其设置评分表。",
    ),
    ("sc.open_label", "Campaign name", "活动名称"),
    ("sc.edit", "Edit", "编辑"),
    ("sc.view", "View", "查看"),
    ("sc.source", "Source", "来源"),
    ("sc.file", "Campaign file", "活动自有文件"),
    ("sc.default", "Built-in default", "内置默认"),
    (
        "sc.builtin",
        "Built-in default: this campaign has no scorecard of its own; saving creates one.",
        "内置默认：该活动尚无自己的评分表，保存后即创建。",
    ),
    ("sc.items", "items", "个项目"),
    ("sc.item_count", "Items", "项目数"),
    ("sc.check", "Check", "检查"),
    ("sc.save", "Save as new version", "保存为新版本"),
    ("sc.saved", "Saved as version", "已保存为版本"),
    ("sc.valid", "The scorecard is valid", "评分表有效"),
    ("sc.invalid", "The scorecard is invalid", "评分表无效"),
    ("sc.line", "line", "行"),
    ("sc.column", "column", "列"),
    ("sc.history", "Saved versions", "已保存的版本"),
    (
        "sc.history_empty",
        "No version has been saved here yet.",
        "尚未在此保存过版本。",
    ),
    ("sc.viewing", "an earlier version", "较早的版本"),
    ("sc.in_force", "in use", "使用中"),
    ("camp.at", "Time", "时间"),
    (
        "consent.empty",
        "No consent records. Import a CSV here or with `callqa campaign consent-import FILE`.",
        "暂无授权记录。可在此导入 CSV，或使用 `callqa campaign consent-import FILE`。",
    ),
    ("consent.scope", "Scope", "范围"),
    ("consent.proof", "Proof", "凭证"),
    ("consent.granted", "Granted", "授权时间"),
    (
        "sc.empty",
        "No call has been scored yet.",
        "尚无已评分的通话。",
    ),
    ("sc.name", "Scorecard", "评分表"),
    ("sc.version", "Version", "版本"),
    ("sc.mean", "Mean score", "平均分"),
    ("sc.current", "Current results", "当前结果数"),
    ("sc.last", "Last scored", "最近评分"),
    ("logout", "Log out", "退出"),
    ("login", "Log in", "登录"),
    ("login.title", "Log in to Call QA", "登录通话质检"),
    ("login.name", "User name", "用户名"),
    ("login.password", "Password", "密码"),
    (
        "login.failed",
        "Wrong user name or password.",
        "用户名或密码错误。",
    ),
    (
        "search.placeholder",
        "Search transcripts: 退款, refund AND complaint, \"我要投诉\"",
        "搜索通话内容：退款、refund AND complaint、\"我要投诉\"",
    ),
    ("search.button", "Search", "搜索"),
    ("from", "From", "开始日期"),
    ("to", "To", "结束日期"),
    ("campaign", "Campaign", "活动"),
    ("agent", "Agent", "坐席"),
    ("customer", "Customer", "客户"),
    ("speaker", "Speaker", "说话人"),
    ("speaker.any", "Anyone", "任意"),
    ("speaker.agent", "Agent", "坐席"),
    ("speaker.customer", "Customer", "客户"),
    ("speaker.mixed", "Mixed (mono)", "混合（单声道）"),
    ("min_score", "Min score", "最低分"),
    ("max_score", "Max score", "最高分"),
    ("flag", "Flag", "标记"),
    ("flag.any", "Any", "任意"),
    ("flag.complaint", "Complaint", "投诉"),
    ("flag.refund", "Refund", "退款"),
    ("flag.opt_out", "Opt-out", "拒绝来电"),
    ("flag.cancel", "Cancel", "取消"),
    ("flag.legal_threat", "Legal threat", "法律威胁"),
    ("results", "calls found", "个通话"),
    (
        "no_results",
        "No calls match. Try fewer words or filters.",
        "没有匹配的通话。请减少关键词或筛选条件。",
    ),
    (
        "bad_query",
        "The search could not be understood",
        "无法理解该搜索",
    ),
    ("facet.campaign", "Campaigns", "活动"),
    ("facet.agent", "Agents", "坐席"),
    ("facet.day", "Days", "日期"),
    ("prev", "Previous", "上一页"),
    ("next", "Next", "下一页"),
    ("page", "Page", "页"),
    ("score", "QA score", "质检分"),
    ("started", "Started", "开始时间"),
    ("duration", "Duration", "时长"),
    ("language", "Language", "语言"),
    ("status", "Status", "状态"),
    ("error", "Error", "错误"),
    ("transcript", "Transcript", "通话文本"),
    (
        "no_transcript",
        "This call has no transcript yet.",
        "该通话尚无文本。",
    ),
    ("qa", "QA result", "质检结果"),
    (
        "not_scored",
        "This call has not been scored yet.",
        "该通话尚未评分。",
    ),
    ("flags", "Flags", "标记"),
    ("item", "Item", "项目"),
    ("result", "Result", "结果"),
    ("points", "Points", "得分"),
    ("evidence", "Evidence", "依据"),
    ("passed", "Passed", "通过"),
    ("failed", "Failed", "未通过"),
    (
        "auto_failed",
        "Auto-fail item missed: score capped.",
        "触发一票否决：分数已封顶。",
    ),
    (
        "no_audio_role",
        "Listening to recordings needs the analyst role.",
        "收听录音需要分析员权限。",
    ),
    (
        "click_to_seek",
        "Click a line to play from there.",
        "点击任意一句从该处播放。",
    ),
    ("report.qa", "QA scores", "质检得分"),
    ("report.complaints", "Complaints", "投诉"),
    ("by", "Group by", "分组"),
    ("by.agent", "Agent", "坐席"),
    ("by.campaign", "Campaign", "活动"),
    ("by.day", "Day", "日期"),
    ("show", "Show", "显示"),
    ("csv", "Download CSV", "下载 CSV"),
    ("calls", "Calls", "通话数"),
    ("avg_score", "Average score", "平均分"),
    ("min", "Min", "最低"),
    ("max", "Max", "最高"),
    ("complaints", "Complaints", "投诉数"),
    ("complaint_rate", "Complaint rate", "投诉率"),
    ("refunds", "Refunds", "退款"),
    ("opt_outs", "Opt-outs", "拒绝来电"),
    ("legal_threats", "Legal threats", "法律威胁"),
    (
        "no_rows",
        "No scored calls in this range.",
        "该时间范围内没有已评分的通话。",
    ),
    ("number", "Number", "号码"),
    ("reason", "Reason", "原因"),
    ("source", "Source", "来源"),
    ("source_calls", "Source calls", "来源通话"),
    ("added", "Added", "加入时间"),
    ("expires", "Expires", "到期"),
    ("never", "Never", "永不"),
    ("add", "Add", "添加"),
    ("remove", "Remove", "移除"),
    ("bl.add_title", "Add a number", "添加号码"),
    (
        "bl.import_title",
        "Import CSV (number,reason[,expires_at])",
        "导入 CSV（号码,原因[,到期时间]）",
    ),
    ("bl.import", "Import", "导入"),
    ("bl.filter", "Find a number or reason", "查找号码或原因"),
    ("bl.empty", "The blacklist is empty.", "黑名单为空。"),
    ("bl.added", "Number added.", "号码已添加。"),
    ("bl.removed", "Number removed.", "号码已移除。"),
    ("bl.imported", "Import finished.", "导入完成。"),
    ("bl.remove_reason", "Reason for removal", "移除原因"),
    ("dl.empty", "No failed calls.", "没有失败的通话。"),
    ("dl.retry", "Retry", "重试"),
    (
        "dl.retried",
        "The call is queued again.",
        "该通话已重新排队。",
    ),
    (
        "forbidden",
        "Your role may not open this page.",
        "您的角色无权访问此页面。",
    ),
    ("not_found", "Not found.", "未找到。"),
    ("role", "Role", "角色"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_first_known() {
        assert_eq!(
            Lang::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"),
            Lang::Zh
        );
        assert_eq!(Lang::from_accept_language("en-US,en;q=0.9"), Lang::En);
        assert_eq!(Lang::from_accept_language("fr-FR, zh-TW;q=0.5"), Lang::Zh);
        assert_eq!(Lang::from_accept_language("de"), Lang::En);
    }

    #[test]
    fn labels_exist_in_both_languages() {
        assert_eq!(Lang::Zh.t("nav.search"), "搜索");
        assert_eq!(Lang::En.t("nav.search"), "Search");
        let mut keys: Vec<&str> = LABELS.iter().map(|l| l.0).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "duplicate label keys");
        assert!(LABELS
            .iter()
            .all(|(_, en, zh)| !en.is_empty() && !zh.is_empty()));
    }

    #[test]
    fn query_lang_is_read() {
        assert_eq!(query_lang(Some("q=x&lang=zh")), Some(Lang::Zh));
        assert_eq!(query_lang(Some("lang=fr")), None);
        assert_eq!(query_lang(None), None);
    }
}
