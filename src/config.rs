//! The one typed configuration: an optional TOML file, then `CALLQA_<SECTION>_<KEY>`
//! environment overrides. Every section's `Default` is the embedded single-machine setup.

use anyhow::{Context, Result};
use callqa_ingest::config::{DatabaseConfig, QueueConfig, StorageConfig, TranscribeConfig};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Indexing stage settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// Longest time a transcribed call waits before it becomes searchable.
    pub commit_interval_ms: u64,
    /// Calls per index commit at most.
    pub batch: usize,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            commit_interval_ms: 1000,
            batch: 256,
        }
    }
}

/// QA scoring and the blacklist policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QaConfig {
    /// Directory of per-campaign scorecards (`<campaign>.toml`); default
    /// `<data-dir>/scorecards`. A campaign without one uses the built-in default card.
    pub scorecards_dir: Option<std::path::PathBuf>,
    /// When calls put a number on the blacklist.
    pub blacklist: callqa_qa::BlacklistPolicy,
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub storage: StorageConfig,
    pub queue: QueueConfig,
    pub database: DatabaseConfig,
    pub transcribe: TranscribeConfig,
    pub search: SearchConfig,
    pub qa: QaConfig,
    pub dialer: callqa_dialer::DialerConfig,
    pub web: callqa_web::WebConfig,
}

/// Sections that environment variables may override.
const SECTIONS: &[&str] = &[
    "storage",
    "queue",
    "database",
    "transcribe",
    "search",
    "qa",
    "dialer",
    "web",
];

impl Config {
    /// Reads `file` (if any) and applies `CALLQA_*` overrides from the environment.
    pub fn load(file: Option<&Path>) -> Result<Config> {
        let mut root: toml::Table = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read config file {}", p.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("config file {} is not valid TOML", p.display()))?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut root, std::env::vars());
        let cfg: Config = toml::Value::Table(root)
            .try_into()
            .context("invalid configuration (file or CALLQA_* environment)")?;
        Ok(cfg)
    }
}

/// `CALLQA_STORAGE_ACCESS_KEY_ID=x` sets `[storage] access_key_id = "x"`. Values that parse
/// as integers, floats or booleans become those; everything else is a string.
fn apply_env(root: &mut toml::Table, vars: impl Iterator<Item = (String, String)>) {
    for (k, v) in vars {
        let Some(rest) = k.strip_prefix("CALLQA_") else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        let Some((section, key)) = SECTIONS.iter().find_map(|s| {
            rest.strip_prefix(s)
                .and_then(|r| r.strip_prefix('_'))
                .map(|key| (*s, key.to_string()))
        }) else {
            continue;
        };
        let value = if let Ok(i) = v.parse::<i64>() {
            toml::Value::Integer(i)
        } else if let Ok(f) = v.parse::<f64>() {
            toml::Value::Float(f)
        } else if let Ok(b) = v.parse::<bool>() {
            toml::Value::Boolean(b)
        } else {
            toml::Value::String(v)
        };
        let table = root
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = table {
            t.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_values() {
        let mut root: toml::Table = toml::from_str("[queue]\nprefetch = 4\n").unwrap();
        apply_env(
            &mut root,
            vec![
                ("CALLQA_QUEUE_URL".to_string(), "amqp://x".to_string()),
                (
                    "CALLQA_STORAGE_ACCESS_KEY_ID".to_string(),
                    "GK1".to_string(),
                ),
                ("CALLQA_TRANSCRIBE_THREADS".to_string(), "3".to_string()),
                ("CALLQA_DATA_DIR".to_string(), "/x".to_string()),
            ]
            .into_iter(),
        );
        let cfg: Config = toml::Value::Table(root).try_into().unwrap();
        assert_eq!(cfg.queue.url.as_deref(), Some("amqp://x"));
        assert_eq!(cfg.queue.prefetch, 4);
        assert_eq!(cfg.storage.access_key_id.as_deref(), Some("GK1"));
        assert_eq!(cfg.transcribe.threads, 3);
    }
}
