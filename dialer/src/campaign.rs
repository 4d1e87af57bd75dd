//! A campaign as the operator writes it: TOML with inline contacts or a CSV contact list, the
//! caller-ID pool, calling window, attempt caps, pacing mode, abandon-rate cap and best-time
//! scheduling.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::agents::{AgentAuth, AgentEndpoint};
use crate::config::{CallingHours, DialerConfig};
use crate::error::DialerError;

/// Errors of campaign loading, storage and running; each names what failed.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("campaign file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("campaign file {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("contacts CSV {path}, line {line}: {reason}")]
    Csv {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error("campaign {name:?}: {reason}")]
    Invalid { name: String, reason: String },
    #[error("unknown campaign {name:?}: load it first with `callqa campaign load FILE`")]
    Unknown { name: String },
    #[error("campaign database: {op}: {source}")]
    Db {
        op: &'static str,
        source: sqlx::Error,
    },
    #[error("blacklist lookup: {0}")]
    Blacklist(#[from] callqa_qa::QaError),
    #[error("call record or transcription queue: {0}")]
    Ingest(#[from] callqa_ingest::error::IngestError),
    #[error(transparent)]
    Dialer(#[from] DialerError),
}

/// Service calls (reminders, notices) need no consent; marketing calls do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignKind {
    Service,
    Marketing,
}

/// How many calls are in flight per free agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PacingMode {
    /// One call per free agent.
    Progressive,
    /// Dials ahead of free agents from the measured answer rate, under the abandon cap.
    Predictive,
}

/// One number to call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub number: String,
    #[serde(default)]
    pub name: Option<String>,
    /// IANA zone (`America/Los_Angeles`) when the number's country code is not precise enough.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Caller ID for this contact, overriding the pool's rotation.
    #[serde(default)]
    pub caller_id: Option<String>,
    /// Audience label whose answer rates by hour `best_time` learns; without one the number's
    /// class (`+86 mobile`, `+86 landline`, `+44`, ...) is its segment.
    #[serde(default)]
    pub segment: Option<String>,
}

/// The campaign file. Defaults are the documented ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignConfig {
    pub name: String,
    #[serde(default = "default_kind")]
    pub kind: CampaignKind,
    #[serde(default = "default_mode")]
    pub mode: PacingMode,
    /// One trunk; merged into `trunks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trunk: Option<String>,
    /// Trunks the router may use; empty means every configured trunk.
    #[serde(default)]
    pub trunks: Vec<String>,
    /// Caller IDs presented in rotation; each must be in `[dialer] caller_ids` or the gate refuses.
    #[serde(default)]
    pub caller_ids: Vec<String>,
    /// Overrides `[dialer] calling_hours` (callee's local time).
    #[serde(default)]
    pub calling_hours: Option<String>,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Minutes between attempts to the same number.
    #[serde(default = "default_retry_spacing")]
    pub retry_spacing_min: f64,
    /// WAV played to answered calls (and the abandonment message to abandoned ones).
    pub prompt: PathBuf,
    /// Simulated agents (ignored when `agent_endpoints` names real ones).
    #[serde(default = "default_agents")]
    pub agents: u32,
    /// Real agents' SIP endpoints (`"sip:agent1@10.0.0.5:5060"`): each answered call is bridged
    /// to a free one, or abandoned with the prompt when none answers within the 2-second
    /// grace. Empty: agents are simulated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent_endpoints: Vec<String>,
    /// Digest credentials answered when an agent endpoint challenges our INVITE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_auth: Option<AgentAuth>,
    /// Simulated agent handle time per answered call; 0 means the call's own length.
    #[serde(default)]
    pub talk_time_ms: u64,
    /// Highest abandon rate allowed over the rolling window (US TSR: 3%).
    #[serde(default = "default_abandon_cap")]
    pub abandon_cap: f64,
    /// `"30d"` (US TSR) or `"24h"` (UK Ofcom).
    #[serde(default = "default_abandon_window")]
    pub abandon_window: String,
    /// Consent scope a marketing call needs.
    #[serde(default = "default_consent_scope")]
    pub consent_scope: String,
    /// Dial each due contact in its best local hours: highest learned answer rate first, and
    /// held back while a clearly better hour is still ahead today (see `best_time`).
    #[serde(default)]
    pub best_time: bool,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    /// CSV with columns `number[,name,timezone,segment]`, relative to the campaign file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts_csv: Option<PathBuf>,
}

fn default_kind() -> CampaignKind {
    CampaignKind::Service
}
fn default_mode() -> PacingMode {
    PacingMode::Progressive
}
fn default_max_attempts() -> u32 {
    3
}
fn default_retry_spacing() -> f64 {
    60.0
}
fn default_agents() -> u32 {
    1
}
fn default_abandon_cap() -> f64 {
    0.03
}
fn default_abandon_window() -> String {
    "30d".to_string()
}
fn default_consent_scope() -> String {
    "marketing".to_string()
}

impl CampaignConfig {
    /// Reads a campaign TOML; relative `prompt` and `contacts_csv` paths are resolved against
    /// the file's directory, and CSV contacts are appended to the inline ones.
    pub fn load(path: &Path) -> Result<Self, CampaignError> {
        let text = std::fs::read_to_string(path).map_err(|source| CampaignError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml(&text, base).map_err(|e| match e {
            CampaignError::Parse { reason, .. } => CampaignError::Parse {
                path: path.to_path_buf(),
                reason,
            },
            other => other,
        })
    }

    /// Parses campaign TOML, resolving relative paths against `base`.
    pub fn from_toml(text: &str, base: &Path) -> Result<Self, CampaignError> {
        let mut c: CampaignConfig = toml::from_str(text).map_err(|e| CampaignError::Parse {
            path: PathBuf::from("<toml>"),
            reason: e.to_string(),
        })?;
        if let Some(t) = c.trunk.take() {
            if !c.trunks.contains(&t) {
                c.trunks.insert(0, t);
            }
        }
        if c.prompt.is_relative() {
            c.prompt = base.join(&c.prompt);
        }
        if let Some(csv_path) = c.contacts_csv.take() {
            let csv_path = if csv_path.is_relative() {
                base.join(csv_path)
            } else {
                csv_path
            };
            let file = std::fs::File::open(&csv_path).map_err(|source| CampaignError::Read {
                path: csv_path.clone(),
                source,
            })?;
            c.contacts.extend(read_contacts_csv(file, &csv_path)?);
            c.contacts_csv = Some(csv_path);
        }
        c.validate()?;
        Ok(c)
    }

    /// Checks what can be checked without the dialer config.
    pub fn validate(&self) -> Result<(), CampaignError> {
        let bad = |reason: String| CampaignError::Invalid {
            name: self.name.clone(),
            reason,
        };
        if self.name.trim().is_empty() {
            return Err(bad("name is empty".into()));
        }
        if !(0.0..1.0).contains(&self.abandon_cap) {
            return Err(bad(format!(
                "abandon_cap {} must be in [0, 1)",
                self.abandon_cap
            )));
        }
        self.window()?;
        if let Some(h) = &self.calling_hours {
            CallingHours::parse(h)?;
        }
        if self.agents == 0 {
            return Err(bad("agents must be at least 1".into()));
        }
        let endpoints = self.agent_endpoints().map_err(bad)?;
        for (i, e) in endpoints.iter().enumerate() {
            if endpoints[..i].iter().any(|o| o.name == e.name) {
                return Err(bad(format!(
                    "agent endpoints name agent {:?} twice: names must be unique",
                    e.name
                )));
            }
        }
        for c in &self.contacts {
            if let Some(tz) = &c.timezone {
                tz.parse::<chrono_tz::Tz>()
                    .map_err(|_| bad(format!("contact {}: unknown timezone {tz:?}", c.number)))?;
            }
        }
        Ok(())
    }

    /// Checks the campaign against the dialer config: trunks exist. Caller IDs outside the
    /// registry are not an error here: the gate refuses (and counts) each dial that uses one.
    pub fn check_against(&self, dialer: &DialerConfig) -> Result<Vec<String>, CampaignError> {
        for t in &self.trunks {
            dialer.trunk(t)?;
        }
        Ok(self
            .caller_ids
            .iter()
            .filter(|c| !dialer.caller_ids.contains(c))
            .map(|c| format!("caller ID {c} is not registered in [dialer] caller_ids"))
            .collect())
    }

    /// The real agents' endpoints, parsed (empty when agents are simulated).
    pub fn agent_endpoints(&self) -> Result<Vec<AgentEndpoint>, String> {
        self.agent_endpoints
            .iter()
            .map(|u| AgentEndpoint::parse(u))
            .collect()
    }

    /// The number of agents: the endpoints when there are any, else the simulated `agents`.
    pub fn agent_count(&self) -> u32 {
        if self.agent_endpoints.is_empty() {
            self.agents
        } else {
            self.agent_endpoints.len() as u32
        }
    }

    /// The rolling window of the abandon rate.
    pub fn window(&self) -> Result<Duration, CampaignError> {
        parse_window(&self.abandon_window).ok_or_else(|| CampaignError::Invalid {
            name: self.name.clone(),
            reason: format!(
                "abandon_window {:?} must look like \"30d\" or \"24h\"",
                self.abandon_window
            ),
        })
    }

    /// The dialer config this campaign dials with: its window, attempts and trunks.
    pub fn dialer_config(&self, base: &DialerConfig) -> DialerConfig {
        let mut cfg = base.clone();
        if let Some(h) = &self.calling_hours {
            cfg.calling_hours = h.clone();
        }
        cfg.max_attempts = self.max_attempts;
        if !self.trunks.is_empty() {
            cfg.trunks.retain(|t| self.trunks.contains(&t.name));
        }
        cfg
    }
}

/// `"30d"`, `"24h"`, `"90m"` or `"45s"`.
pub fn parse_window(value: &str) -> Option<Duration> {
    let v = value.trim();
    let (num, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = num.parse().ok()?;
    let secs = match unit {
        "d" => n.checked_mul(86_400)?,
        "h" => n.checked_mul(3_600)?,
        "m" => n.checked_mul(60)?,
        "s" => n,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}

/// The CSV dialect of contact and consent files: no header handling (a `number` header row
/// is skipped by the callers), ragged rows allowed, cells trimmed, `#` comments.
pub(crate) fn csv_reader<R: std::io::Read>(reader: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(reader)
}

/// Reads `number[,name,timezone,segment]` rows; a header row whose first cell is `number` is
/// skipped.
pub fn read_contacts_csv<R: std::io::Read>(
    reader: R,
    path: &Path,
) -> Result<Vec<Contact>, CampaignError> {
    let mut rdr = csv_reader(reader);
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| CampaignError::Csv {
            path: path.to_path_buf(),
            line: e.position().map_or(i as u64 + 1, |p| p.line()),
            reason: e.to_string(),
        })?;
        let cell = |k: usize| rec.get(k).filter(|s| !s.is_empty()).map(str::to_string);
        let Some(number) = cell(0) else { continue };
        if i == 0 && number.eq_ignore_ascii_case("number") {
            continue;
        }
        out.push(Contact {
            number,
            name: cell(1),
            timezone: cell(2),
            caller_id: None,
            segment: cell(3),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
name = "renewals"
kind = "marketing"
mode = "predictive"
trunk = "carrier-a"
caller_ids = ["+861012345678"]
calling_hours = "09:00-20:00"
max_attempts = 2
retry_spacing_min = 30
prompt = "prompt.wav"
agents = 4
abandon_window = "24h"
contacts = [{ number = "+8613800138000", name = "Li" }]
contacts_csv = "contacts.csv"
"#;

    #[test]
    fn loads_toml_with_csv_contacts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("contacts.csv"),
            "number,name,timezone,segment\n+12025550100,Ann,America/Los_Angeles,west\n13900139000\n\n",
        )
        .unwrap();
        let c = CampaignConfig::from_toml(TOML, dir.path()).unwrap();
        assert_eq!(c.kind, CampaignKind::Marketing);
        assert_eq!(c.mode, PacingMode::Predictive);
        assert_eq!(c.trunks, vec!["carrier-a".to_string()]);
        assert_eq!(c.prompt, dir.path().join("prompt.wav"));
        assert_eq!(c.abandon_cap, 0.03);
        assert_eq!(c.window().unwrap(), Duration::from_secs(86_400));
        assert_eq!(c.contacts.len(), 3);
        assert_eq!(
            c.contacts[1].timezone.as_deref(),
            Some("America/Los_Angeles")
        );
        assert_eq!(c.contacts[1].segment.as_deref(), Some("west"));
        assert_eq!(c.contacts[2].number, "13900139000");
        assert_eq!(c.contacts[2].name, None);
        assert_eq!(c.contacts[2].segment, None);
        assert_eq!(c.contacts[0].segment, None);
        assert!(!c.best_time);
    }

    #[test]
    fn rejects_bad_fields() {
        let dir = tempfile::tempdir().unwrap();
        let no_csv = TOML.replace("contacts_csv = \"contacts.csv\"", "");
        let bad_cap = no_csv.replace("agents = 4", "agents = 4\nabandon_cap = 1.5");
        assert!(CampaignConfig::from_toml(&bad_cap, dir.path()).is_err());
        let bad_window = no_csv.replace("\"24h\"", "\"3 weeks\"");
        assert!(CampaignConfig::from_toml(&bad_window, dir.path()).is_err());
        let bad_tz = no_csv.replace("name = \"Li\"", "timezone = \"Mars/Olympus\"");
        assert!(CampaignConfig::from_toml(&bad_tz, dir.path()).is_err());
        let unknown = no_csv.replace("agents = 4", "agentz = 4");
        assert!(CampaignConfig::from_toml(&unknown, dir.path()).is_err());
        // The CSV is missing.
        assert!(CampaignConfig::from_toml(TOML, dir.path()).is_err());
    }

    #[test]
    fn best_time_and_segments_are_optional_keys() {
        let dir = tempfile::tempdir().unwrap();
        let text = TOML
            .replace("contacts_csv = \"contacts.csv\"", "best_time = true")
            .replace("name = \"Li\"", "name = \"Li\", segment = \"retirees\"");
        let c = CampaignConfig::from_toml(&text, dir.path()).unwrap();
        assert!(c.best_time);
        assert_eq!(c.contacts[0].segment.as_deref(), Some("retirees"));
        // A config stored before these keys existed still reads.
        let mut old = serde_json::to_value(&c).unwrap();
        old.as_object_mut().unwrap().remove("best_time");
        old["contacts"][0]
            .as_object_mut()
            .unwrap()
            .remove("segment");
        let back: CampaignConfig = serde_json::from_value(old).unwrap();
        assert!(!back.best_time);
        assert_eq!(back.contacts[0].segment, None);
    }

    #[test]
    fn agent_endpoints_are_validated_and_set_the_agent_count() {
        let dir = tempfile::tempdir().unwrap();
        let no_csv = TOML.replace("contacts_csv = \"contacts.csv\"", "");
        let c = CampaignConfig::from_toml(&no_csv, dir.path()).unwrap();
        assert!(c.agent_endpoints.is_empty());
        assert_eq!(c.agent_count(), 4);
        let real = no_csv.replace(
            "agents = 4",
            "agents = 4\nagent_endpoints = [\"sip:agent1@127.0.0.1:5090\", \"sip:agent2@127.0.0.1:5092\"]\nagent_auth = { username = \"dialer\", password = \"pw\" }",
        );
        let c = CampaignConfig::from_toml(&real, dir.path()).unwrap();
        assert_eq!(c.agent_count(), 2);
        let eps = c.agent_endpoints().unwrap();
        assert_eq!(
            (eps[1].name.as_str(), eps[1].address.as_str()),
            ("agent2", "127.0.0.1:5092")
        );
        assert_eq!(c.agent_auth.as_ref().unwrap().username, "dialer");
        // Stored configs round-trip through JSON.
        let back: CampaignConfig =
            serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        let bad_uri = real.replace("sip:agent2@", "agent2@");
        let err = CampaignConfig::from_toml(&bad_uri, dir.path()).unwrap_err();
        assert!(err.to_string().contains("must start with sip:"), "{err}");
        let twice = real.replace("sip:agent2@", "sip:agent1@");
        assert!(CampaignConfig::from_toml(&twice, dir.path()).is_err());
    }

    #[test]
    fn windows_parse() {
        assert_eq!(parse_window("30d"), Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_window("90m"), Some(Duration::from_secs(5_400)));
        assert_eq!(parse_window("0d"), None);
        assert_eq!(parse_window("d"), None);
        assert_eq!(parse_window(""), None);
    }

    #[test]
    fn dialer_config_narrows_trunks_and_overrides_hours() {
        let dir = tempfile::tempdir().unwrap();
        let c = CampaignConfig::from_toml(&TOML.replace("contacts_csv", "#"), dir.path());
        let c = c.unwrap();
        let base: DialerConfig = serde_json::from_str(
            r#"{"caller_ids":["+861012345678"],"trunks":[{"name":"carrier-a"},{"name":"b"}]}"#,
        )
        .unwrap();
        let d = c.dialer_config(&base);
        assert_eq!(d.trunks.len(), 1);
        assert_eq!(d.calling_hours, "09:00-20:00");
        assert_eq!(d.max_attempts, 2);
        assert!(c.check_against(&base).unwrap().is_empty());
        let mut c2 = c.clone();
        c2.caller_ids.push("+861099999999".into());
        assert_eq!(c2.check_against(&base).unwrap().len(), 1);
        c2.trunks.push("nope".into());
        assert!(c2.check_against(&base).is_err());
    }
}
