//! The transcript of one call: per-speaker segments with millisecond timestamps.
//! This is the format every downstream stage (search, QA, web) reads.

use serde::{Deserialize, Serialize};

/// Who spoke a segment. Stereo recordings map channels to agent/customer;
/// a mono recording carries both parties and its segments are `Mixed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    Agent,
    Customer,
    Mixed,
}

impl Speaker {
    pub fn as_str(self) -> &'static str {
        match self {
            Speaker::Agent => "agent",
            Speaker::Customer => "customer",
            Speaker::Mixed => "mixed",
        }
    }

    pub fn parse(s: &str) -> Option<Speaker> {
        match s {
            "agent" => Some(Speaker::Agent),
            "customer" => Some(Speaker::Customer),
            "mixed" => Some(Speaker::Mixed),
            _ => None,
        }
    }
}

/// One stretch of speech by one speaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub speaker: Speaker,
    pub start_ms: u64,
    pub end_ms: u64,
    /// Text as whisper wrote it, with Chinese normalised to simplified characters.
    pub text: String,
}

/// The whole transcript of a call, segments sorted by `start_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    pub call_id: String,
    /// ISO 639-1 code of the dominant language (`zh`, `en`, ...), if known.
    pub language: Option<String>,
    /// Length of the recording in milliseconds.
    pub duration_ms: u64,
    /// Name of the model that produced it (e.g. `ggml-base`).
    pub model: String,
    pub segments: Vec<Segment>,
}

impl Transcript {
    /// Segments spoken by `speaker`, in time order.
    pub fn by_speaker(&self, speaker: Speaker) -> impl Iterator<Item = &Segment> {
        self.segments.iter().filter(move |s| s.speaker == speaker)
    }

    /// All text of the call in time order, one segment per line.
    pub fn full_text(&self) -> String {
        let mut out = String::new();
        for s in &self.segments {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&s.text);
        }
        out
    }
}

/// Metadata of a call that downstream stages need besides the transcript
/// (search filters, QA report grouping).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallMeta {
    pub call_id: String,
    pub campaign: Option<String>,
    pub agent: Option<String>,
    /// Customer number in E.164 form, when known.
    pub customer: Option<String>,
    /// When the call started, RFC 3339 UTC.
    pub started_at: String,
    pub duration_ms: u64,
    pub language: Option<String>,
}
