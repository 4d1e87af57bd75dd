//! Versioned scorecards: TOML files of weighted items, parsed strictly and validated
//! into typed checks; the default and marketing scorecards are embedded in the binary.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use thiserror::Error;

use crate::matcher::Phrase;

/// The flag categories every call is checked for, in the order flags are reported.
pub const FLAG_CATEGORIES: [&str; 5] = ["complaint", "refund", "opt_out", "cancel", "legal_threat"];

/// Built-in phrases of a keyword category (zh + en). A scorecard item's own `phrases`
/// are added to these.
pub fn category_phrases(category: &str) -> Option<&'static [&'static str]> {
    let phrases: &'static [&'static str] = match category {
        "complaint" => &[
            "投诉",
            "举报",
            "12315",
            "12321",
            "我要告你们",
            "file a complaint",
            "complain",
            "make a complaint",
            "report you",
        ],
        "refund" => &[
            "退款",
            "退钱",
            "退费",
            "把钱退给我",
            "钱退回来",
            "refund",
            "money back",
            "reimburse",
        ],
        "opt_out" => &[
            // The bare verb phrase too: whisper often mangles the final particle
            // (不要再打了 -> 不要再打门), and 不要再打扰我 means the same.
            "不要再打",
            "别再打",
            "不要再打了",
            "别再打了",
            "不要再打电话",
            "别再打电话",
            "不要再给我打电话",
            "别再给我打电话",
            "别给我打电话",
            "不要给我打电话",
            "别打了",
            "不要打了",
            "删掉我的号码",
            "删除我的号码",
            "把我的号码删",
            "stop calling",
            "don't call me again",
            "do not call me again",
            "don't call me",
            "do not call me",
            "remove my number",
            "take me off your list",
            "take my number off",
        ],
        "cancel" => &[
            "取消",
            "退订",
            "注销",
            "解约",
            "销户",
            "不想续",
            "cancel",
            "unsubscribe",
            "terminate my",
            "close my account",
        ],
        "legal_threat" => &[
            "律师",
            "起诉",
            "告你们",
            "法院",
            "打官司",
            "报警",
            "lawyer",
            "attorney",
            "sue you",
            "will sue",
            "going to sue",
            "legal action",
            "take you to court",
        ],
        _ => return None,
    };
    Some(phrases)
}

/// Why a scorecard was rejected. Item-level variants name the item.
#[derive(Debug, Error)]
pub enum ScorecardError {
    #[error("cannot parse scorecard TOML: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("scorecard has an empty `id`")]
    EmptyId,
    #[error("scorecard {card:?} has no items")]
    NoItems { card: String },
    #[error("auto_fail_cap {value} is outside 0..=100")]
    BadCap { value: f64 },
    #[error("item {item:?} appears twice")]
    DuplicateItem { item: String },
    #[error("item {item:?}: unknown kind {kind:?} (required_phrase, forbidden_phrase, keyword_category, talk_ratio, longest_silence_ms, overtalk_ms, speech_rate, sentiment)")]
    UnknownKind { item: String, kind: String },
    #[error("item {item:?} ({kind}): missing `{field}`")]
    MissingField {
        item: String,
        kind: String,
        field: &'static str,
    },
    #[error("item {item:?} ({kind}): `{field}` does not apply to this kind")]
    FieldNotAllowed {
        item: String,
        kind: String,
        field: &'static str,
    },
    #[error("item {item:?}: speaker {value:?} is not agent, customer or any")]
    BadSpeaker { item: String, value: String },
    #[error("item {item:?}: require {value:?} is not any or all")]
    BadRequire { item: String, value: String },
    #[error("item {item:?}: weight {weight} must be a finite number >= 0")]
    BadWeight { item: String, weight: f64 },
    #[error("item {item:?}: range min {min} > max {max}")]
    BadRange { item: String, min: f64, max: f64 },
    #[error("item {item:?}: phrase {phrase:?} has nothing to match after normalising")]
    EmptyPhrase { item: String, phrase: String },
    #[error("item {item:?}: no phrases")]
    NoPhrases { item: String },
    #[error("item {item:?}: category {category:?} has no built-in phrases; list its `phrases`")]
    UnknownCategory { item: String, category: String },
    #[error("no built-in scorecard named {0:?} (default, marketing)")]
    UnknownBuiltin(String),
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: Box<ScorecardError>,
    },
}

/// Whose speech an item looks at. Segments of a mono (`mixed`) recording count for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeakerSel {
    Agent,
    Customer,
    Any,
}

/// Alternatives (synonyms) any one of which satisfies the group.
#[derive(Debug, Clone)]
pub struct PhraseGroup {
    pub alternatives: Vec<Phrase>,
}

/// What an item checks, with its parameters validated.
#[derive(Debug, Clone)]
pub enum Check {
    /// Said by `speaker`; with `require_all` every group must be said, else any one.
    RequiredPhrase {
        speaker: SpeakerSel,
        groups: Vec<PhraseGroup>,
        require_all: bool,
        within_ms: Option<u64>,
        last_ms: Option<u64>,
    },
    /// Never said (not negated) by `speaker`.
    ForbiddenPhrase {
        speaker: SpeakerSel,
        groups: Vec<PhraseGroup>,
    },
    /// Raises flag `category` when said; fails the item only with `fail_on_match`.
    KeywordCategory {
        category: String,
        speaker: SpeakerSel,
        phrases: Vec<Phrase>,
        fail_on_match: bool,
    },
    /// Agent share of talk time, agent / (agent + customer), within `min..=max`.
    TalkRatio { min: f64, max: f64 },
    /// Longest stretch where nobody speaks, at most `max_ms`.
    LongestSilence { max_ms: u64 },
    /// Total time both parties speak at once, at most `max_ms`.
    Overtalk { max_ms: u64 },
    /// Chinese characters plus English words per minute of `speaker`'s talk time.
    SpeechRate {
        speaker: SpeakerSel,
        min: f64,
        max: f64,
    },
    /// Customer sentiment of the last third minus the first third, at least `min_delta`.
    Sentiment { min_delta: f64 },
}

impl Check {
    /// The `kind` name used in TOML and in results.
    pub fn kind(&self) -> &'static str {
        match self {
            Check::RequiredPhrase { .. } => "required_phrase",
            Check::ForbiddenPhrase { .. } => "forbidden_phrase",
            Check::KeywordCategory { .. } => "keyword_category",
            Check::TalkRatio { .. } => "talk_ratio",
            Check::LongestSilence { .. } => "longest_silence_ms",
            Check::Overtalk { .. } => "overtalk_ms",
            Check::SpeechRate { .. } => "speech_rate",
            Check::Sentiment { .. } => "sentiment",
        }
    }
}

/// One weighted item of a scorecard.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: String,
    pub label: String,
    pub weight: f64,
    /// Failing this item caps the call's score at the card's `auto_fail_cap`.
    pub auto_fail: bool,
    pub check: Check,
}

/// A validated scorecard.
#[derive(Debug, Clone)]
pub struct Scorecard {
    pub id: String,
    pub version: u32,
    pub name: String,
    pub description: Option<String>,
    pub auto_fail_cap: f64,
    pub items: Vec<Item>,
}

const DEFAULT_TOML: &str = include_str!("../scorecards/default.toml");
const MARKETING_TOML: &str = include_str!("../scorecards/marketing.toml");

impl Scorecard {
    /// Parses and validates a scorecard file's text.
    pub fn from_toml(text: &str) -> Result<Scorecard, ScorecardError> {
        let raw: RawCard = toml::from_str(text)?;
        raw.validate()
    }

    /// An embedded scorecard: `default` or `marketing`.
    pub fn builtin(name: &str) -> Result<Scorecard, ScorecardError> {
        match name {
            "default" => Scorecard::from_toml(DEFAULT_TOML),
            "marketing" => Scorecard::from_toml(MARKETING_TOML),
            other => Err(ScorecardError::UnknownBuiltin(other.to_string())),
        }
    }

    /// The text of an embedded scorecard (`default` or `marketing`), e.g. as a starting
    /// point for a campaign's own file.
    pub fn builtin_toml(name: &str) -> Option<&'static str> {
        match name {
            "default" => Some(DEFAULT_TOML),
            "marketing" => Some(MARKETING_TOML),
            _ => None,
        }
    }

    /// The scorecard used when a campaign has none of its own.
    pub fn default_card() -> Scorecard {
        // The embedded file is validated by a unit test, so this cannot fail at run time
        // unless the crate was built with a broken file; fall back to an empty card then.
        Scorecard::builtin("default").unwrap_or_else(|e| {
            tracing::error!("embedded default scorecard is invalid: {e}");
            Scorecard {
                id: "default".into(),
                version: 0,
                name: "invalid".into(),
                description: None,
                auto_fail_cap: 0.0,
                items: vec![],
            }
        })
    }
}

/// The scorecards in force: one per campaign, and the default for the rest.
#[derive(Debug, Clone)]
pub struct Scorecards {
    pub default: Scorecard,
    pub by_campaign: HashMap<String, Scorecard>,
}

impl Scorecards {
    /// Only the embedded default card.
    pub fn builtin() -> Scorecards {
        Scorecards {
            default: Scorecard::default_card(),
            by_campaign: HashMap::new(),
        }
    }

    /// Loads every `*.toml` in `dir`: `CAMPAIGN.toml` is that campaign's card and
    /// `default.toml`, if present, replaces the embedded default.
    pub fn load_dir(dir: &Path) -> Result<Scorecards, ScorecardError> {
        let io = |source| ScorecardError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut cards = Scorecards::builtin();
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|source| ScorecardError::Io {
                path: shown.clone(),
                source,
            })?;
            let card = Scorecard::from_toml(&text).map_err(|e| ScorecardError::File {
                path: shown,
                source: Box::new(e),
            })?;
            let campaign = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if campaign == "default" {
                cards.default = card;
            } else {
                cards.by_campaign.insert(campaign, card);
            }
        }
        Ok(cards)
    }

    /// The card for `campaign`, or the default.
    pub fn for_campaign(&self, campaign: Option<&str>) -> &Scorecard {
        campaign
            .and_then(|c| self.by_campaign.get(c))
            .unwrap_or(&self.default)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCard {
    id: String,
    version: u32,
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    auto_fail_cap: Option<f64>,
    #[serde(default)]
    items: Vec<RawItem>,
}

/// A phrase entry: one phrase, or a list of synonyms that count as one.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawPhrase {
    One(String),
    Synonyms(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    id: String,
    kind: String,
    label: Option<String>,
    weight: Option<f64>,
    auto_fail: Option<bool>,
    speaker: Option<String>,
    phrases: Option<Vec<RawPhrase>>,
    require: Option<String>,
    within_ms: Option<u64>,
    last_ms: Option<u64>,
    category: Option<String>,
    fail_on_match: Option<bool>,
    min: Option<f64>,
    max: Option<f64>,
    max_ms: Option<u64>,
    min_delta: Option<f64>,
}

impl RawCard {
    fn validate(self) -> Result<Scorecard, ScorecardError> {
        if self.id.trim().is_empty() {
            return Err(ScorecardError::EmptyId);
        }
        if self.items.is_empty() {
            return Err(ScorecardError::NoItems { card: self.id });
        }
        let cap = self.auto_fail_cap.unwrap_or(0.0);
        if !(0.0..=100.0).contains(&cap) {
            return Err(ScorecardError::BadCap { value: cap });
        }
        let mut items: Vec<Item> = Vec::with_capacity(self.items.len());
        for raw in self.items {
            if items.iter().any(|i| i.id == raw.id) {
                return Err(ScorecardError::DuplicateItem { item: raw.id });
            }
            items.push(raw.validate()?);
        }
        Ok(Scorecard {
            id: self.id,
            version: self.version,
            name: self.name,
            description: self.description,
            auto_fail_cap: cap,
            items,
        })
    }
}

impl RawItem {
    /// Names of the kind-specific fields this item sets.
    fn present_fields(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let fields: [(&'static str, bool); 11] = [
            ("speaker", self.speaker.is_some()),
            ("phrases", self.phrases.is_some()),
            ("require", self.require.is_some()),
            ("within_ms", self.within_ms.is_some()),
            ("last_ms", self.last_ms.is_some()),
            ("category", self.category.is_some()),
            ("fail_on_match", self.fail_on_match.is_some()),
            ("min", self.min.is_some()),
            ("max", self.max.is_some()),
            ("max_ms", self.max_ms.is_some()),
            ("min_delta", self.min_delta.is_some()),
        ];
        for (name, set) in fields {
            if set {
                out.push(name);
            }
        }
        out
    }

    fn validate(self) -> Result<Item, ScorecardError> {
        let allowed: &[&str] = match self.kind.as_str() {
            "required_phrase" => &["speaker", "phrases", "require", "within_ms", "last_ms"],
            "forbidden_phrase" => &["speaker", "phrases"],
            "keyword_category" => &["speaker", "phrases", "category", "fail_on_match"],
            "talk_ratio" => &["min", "max"],
            "longest_silence_ms" | "overtalk_ms" => &["max_ms"],
            "speech_rate" => &["speaker", "min", "max"],
            "sentiment" => &["min_delta"],
            other => {
                return Err(ScorecardError::UnknownKind {
                    item: self.id,
                    kind: other.to_string(),
                })
            }
        };
        if let Some(field) = self
            .present_fields()
            .into_iter()
            .find(|f| !allowed.contains(f))
        {
            return Err(ScorecardError::FieldNotAllowed {
                item: self.id,
                kind: self.kind,
                field,
            });
        }
        let weight = self.weight.unwrap_or(if self.kind == "keyword_category" {
            0.0
        } else {
            1.0
        });
        if !weight.is_finite() || weight < 0.0 {
            return Err(ScorecardError::BadWeight {
                item: self.id,
                weight,
            });
        }
        let check = self.check()?;
        Ok(Item {
            label: self.label.unwrap_or_else(|| self.id.clone()),
            id: self.id,
            weight,
            auto_fail: self.auto_fail.unwrap_or(false),
            check,
        })
    }

    fn missing(&self, field: &'static str) -> ScorecardError {
        ScorecardError::MissingField {
            item: self.id.clone(),
            kind: self.kind.clone(),
            field,
        }
    }

    fn speaker(&self, default: SpeakerSel) -> Result<SpeakerSel, ScorecardError> {
        match self.speaker.as_deref() {
            None => Ok(default),
            Some("agent") => Ok(SpeakerSel::Agent),
            Some("customer") => Ok(SpeakerSel::Customer),
            Some("any") => Ok(SpeakerSel::Any),
            Some(other) => Err(ScorecardError::BadSpeaker {
                item: self.id.clone(),
                value: other.to_string(),
            }),
        }
    }

    fn compile(&self, text: &str) -> Result<Phrase, ScorecardError> {
        Phrase::compile(text).ok_or_else(|| ScorecardError::EmptyPhrase {
            item: self.id.clone(),
            phrase: text.to_string(),
        })
    }

    fn groups(&self) -> Result<Vec<PhraseGroup>, ScorecardError> {
        let raw = self
            .phrases
            .as_ref()
            .ok_or_else(|| self.missing("phrases"))?;
        let mut groups = Vec::with_capacity(raw.len());
        for entry in raw {
            let texts: Vec<&String> = match entry {
                RawPhrase::One(p) => vec![p],
                RawPhrase::Synonyms(ps) => ps.iter().collect(),
            };
            let alternatives = texts
                .into_iter()
                .map(|t| self.compile(t))
                .collect::<Result<Vec<_>, _>>()?;
            if !alternatives.is_empty() {
                groups.push(PhraseGroup { alternatives });
            }
        }
        if groups.is_empty() {
            return Err(ScorecardError::NoPhrases {
                item: self.id.clone(),
            });
        }
        Ok(groups)
    }

    fn range(&self) -> Result<(f64, f64), ScorecardError> {
        let min = self.min.unwrap_or(0.0);
        let max = self.max.unwrap_or(f64::INFINITY);
        if self.min.is_none() && self.max.is_none() {
            return Err(self.missing("min"));
        }
        if min > max || min.is_nan() || max.is_nan() {
            return Err(ScorecardError::BadRange {
                item: self.id.clone(),
                min,
                max,
            });
        }
        Ok((min, max))
    }

    fn check(&self) -> Result<Check, ScorecardError> {
        Ok(match self.kind.as_str() {
            "required_phrase" => {
                let require_all = match self.require.as_deref() {
                    None | Some("any") => false,
                    Some("all") => true,
                    Some(other) => {
                        return Err(ScorecardError::BadRequire {
                            item: self.id.clone(),
                            value: other.to_string(),
                        })
                    }
                };
                Check::RequiredPhrase {
                    speaker: self.speaker(SpeakerSel::Agent)?,
                    groups: self.groups()?,
                    require_all,
                    within_ms: self.within_ms,
                    last_ms: self.last_ms,
                }
            }
            "forbidden_phrase" => Check::ForbiddenPhrase {
                speaker: self.speaker(SpeakerSel::Agent)?,
                groups: self.groups()?,
            },
            "keyword_category" => {
                let category = self
                    .category
                    .clone()
                    .ok_or_else(|| self.missing("category"))?;
                let mut phrases = Vec::new();
                if let Some(builtin) = category_phrases(&category) {
                    for p in builtin {
                        phrases.push(self.compile(p)?);
                    }
                } else if self.phrases.is_none() {
                    return Err(ScorecardError::UnknownCategory {
                        item: self.id.clone(),
                        category,
                    });
                }
                if self.phrases.is_some() {
                    phrases.extend(self.groups()?.into_iter().flat_map(|g| g.alternatives));
                }
                Check::KeywordCategory {
                    category,
                    // Flags are about what the customer says: an agent explaining how to
                    // file a complaint must not flag the call.
                    speaker: self.speaker(SpeakerSel::Customer)?,
                    phrases,
                    fail_on_match: self.fail_on_match.unwrap_or(false),
                }
            }
            "talk_ratio" => {
                let (min, max) = self.range()?;
                Check::TalkRatio {
                    min,
                    max: max.min(1.0),
                }
            }
            "longest_silence_ms" => Check::LongestSilence {
                max_ms: self.max_ms.ok_or_else(|| self.missing("max_ms"))?,
            },
            "overtalk_ms" => Check::Overtalk {
                max_ms: self.max_ms.ok_or_else(|| self.missing("max_ms"))?,
            },
            "speech_rate" => {
                let (min, max) = self.range()?;
                Check::SpeechRate {
                    speaker: self.speaker(SpeakerSel::Agent)?,
                    min,
                    max,
                }
            }
            "sentiment" => Check::Sentiment {
                min_delta: self.min_delta.unwrap_or(-0.2),
            },
            other => {
                return Err(ScorecardError::UnknownKind {
                    item: self.id.clone(),
                    kind: other.to_string(),
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_cards_are_valid() {
        for name in ["default", "marketing"] {
            let card = Scorecard::builtin(name).unwrap();
            assert_eq!(card.id, name);
            assert!(card.version >= 1);
            assert_eq!(
                card.items.iter().any(|i| i.auto_fail),
                name == "marketing",
                "{name} auto-fail items"
            );
            for cat in FLAG_CATEGORIES {
                assert!(
                    card.items.iter().any(|i| matches!(&i.check, Check::KeywordCategory { category, .. } if category == cat)),
                    "{name} lacks category {cat}"
                );
            }
        }
        assert!(matches!(
            Scorecard::builtin("nope"),
            Err(ScorecardError::UnknownBuiltin(_))
        ));
    }

    #[test]
    fn parses_a_minimal_card_with_defaults() {
        let card = Scorecard::from_toml(
            r#"
            id = "c1"
            version = 3
            name = "Card"
            [[items]]
            id = "hello"
            kind = "required_phrase"
            phrases = ["您好", ["hello", "hi there"]]
            within_ms = 10000
            "#,
        )
        .unwrap();
        assert_eq!(card.version, 3);
        assert_eq!(card.auto_fail_cap, 0.0);
        let item = &card.items[0];
        assert_eq!(item.label, "hello");
        assert_eq!(item.weight, 1.0);
        match &item.check {
            Check::RequiredPhrase {
                speaker,
                groups,
                require_all,
                within_ms,
                ..
            } => {
                assert_eq!(*speaker, SpeakerSel::Agent);
                assert_eq!(groups.len(), 2);
                assert_eq!(groups[1].alternatives.len(), 2);
                assert!(!require_all);
                assert_eq!(*within_ms, Some(10000));
            }
            other => panic!("wrong check {other:?}"),
        }
    }

    fn err(toml_items: &str) -> ScorecardError {
        let text = format!("id = \"c\"\nversion = 1\nname = \"n\"\n{toml_items}");
        Scorecard::from_toml(&text).unwrap_err()
    }

    #[test]
    fn validation_errors_name_the_item() {
        let e = err("[[items]]\nid = \"x\"\nkind = \"shout\"\n");
        assert!(
            matches!(&e, ScorecardError::UnknownKind { item, kind } if item == "x" && kind == "shout")
        );
        let e = err("[[items]]\nid = \"greet\"\nkind = \"required_phrase\"\n");
        assert!(
            matches!(&e, ScorecardError::MissingField { item, field: "phrases", .. } if item == "greet")
        );
        let e = err("[[items]]\nid = \"sil\"\nkind = \"longest_silence_ms\"\nmax_ms = 5\nphrases = [\"a\"]\n");
        assert!(
            matches!(&e, ScorecardError::FieldNotAllowed { item, field: "phrases", .. } if item == "sil")
        );
        let e = err("[[items]]\nid = \"tr\"\nkind = \"talk_ratio\"\nmin = 0.8\nmax = 0.2\n");
        assert!(matches!(&e, ScorecardError::BadRange { item, .. } if item == "tr"));
        let e = err("[[items]]\nid = \"w\"\nkind = \"sentiment\"\nweight = -1.0\n");
        assert!(matches!(&e, ScorecardError::BadWeight { item, .. } if item == "w"));
        let e = err("[[items]]\nid = \"s\"\nkind = \"forbidden_phrase\"\nspeaker = \"robot\"\nphrases = [\"x\"]\n");
        assert!(matches!(&e, ScorecardError::BadSpeaker { item, .. } if item == "s"));
        let e = err("[[items]]\nid = \"p\"\nkind = \"forbidden_phrase\"\nphrases = [\"!!\"]\n");
        assert!(matches!(&e, ScorecardError::EmptyPhrase { item, .. } if item == "p"));
        let e = err("[[items]]\nid = \"k\"\nkind = \"keyword_category\"\ncategory = \"spam\"\n");
        assert!(matches!(&e, ScorecardError::UnknownCategory { item, .. } if item == "k"));
        let e = err("[[items]]\nid = \"d\"\nkind = \"sentiment\"\n[[items]]\nid = \"d\"\nkind = \"sentiment\"\n");
        assert!(matches!(&e, ScorecardError::DuplicateItem { item } if item == "d"));
        assert!(matches!(err(""), ScorecardError::NoItems { .. }));
        // Typos in field names are rejected rather than silently ignored.
        assert!(matches!(
            err("[[items]]\nid = \"t\"\nkind = \"sentiment\"\nwieght = 2\n"),
            ScorecardError::Parse(_)
        ));
    }

    #[test]
    fn cards_per_campaign_from_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let card = |id: &str, v: u32| {
            format!("id = \"{id}\"\nversion = {v}\nname = \"n\"\n[[items]]\nid = \"s\"\nkind = \"sentiment\"\n")
        };
        std::fs::write(dir.path().join("loans.toml"), card("loans", 4)).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let cards = Scorecards::load_dir(dir.path()).unwrap();
        assert_eq!(cards.for_campaign(Some("loans")).version, 4);
        assert_eq!(cards.for_campaign(Some("other")).id, "default");
        assert_eq!(cards.for_campaign(None).id, "default");
        std::fs::write(dir.path().join("default.toml"), card("house", 9)).unwrap();
        assert_eq!(
            Scorecards::load_dir(dir.path())
                .unwrap()
                .for_campaign(None)
                .id,
            "house"
        );
        std::fs::write(dir.path().join("bad.toml"), "id = 1").unwrap();
        match Scorecards::load_dir(dir.path()) {
            Err(ScorecardError::File { path, .. }) => assert!(path.ends_with("bad.toml")),
            other => panic!("expected a file error, got {other:?}"),
        }
        assert!(matches!(
            Scorecards::load_dir(&dir.path().join("missing")),
            Err(ScorecardError::Io { .. })
        ));
    }

    #[test]
    fn custom_category_needs_phrases_and_extends_builtins() {
        let card = Scorecard::from_toml(
            "id = \"c\"\nversion = 1\nname = \"n\"\n[[items]]\nid = \"spam\"\nkind = \"keyword_category\"\ncategory = \"spam\"\nphrases = [\"广告\"]\n[[items]]\nid = \"ref\"\nkind = \"keyword_category\"\ncategory = \"refund\"\nphrases = [\"返还\"]\n",
        )
        .unwrap();
        match &card.items[1].check {
            Check::KeywordCategory {
                phrases, speaker, ..
            } => {
                assert_eq!(*speaker, SpeakerSel::Customer);
                assert_eq!(phrases.len(), category_phrases("refund").unwrap().len() + 1);
            }
            other => panic!("wrong check {other:?}"),
        }
    }
}
