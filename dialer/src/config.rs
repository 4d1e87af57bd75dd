//! Dialer settings, mirroring the `[dialer]` section of the config file in CONTRACTS.md.

use std::time::Duration;

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};

use crate::error::DialerError;

/// `[dialer]`: registered caller IDs, calling window and the carrier trunks, plus call timing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DialerConfig {
    /// The registered caller-ID registry; a dial from any other number is refused.
    pub caller_ids: Vec<String>,
    /// Window in the callee's local time, `"HH:MM-HH:MM"`.
    pub calling_hours: String,
    pub trunks: Vec<TrunkConfig>,
    /// How long to let the callee ring before sending CANCEL.
    pub ring_timeout_ms: u64,
    /// Silence kept after the prompt ends before we hang up, so the callee can answer back.
    pub tail_ms: u64,
    /// Hard cap on an answered call's length.
    pub max_duration_ms: u64,
    /// RFC 3261 T1 (round-trip estimate) for UDP retransmissions.
    pub t1_ms: u64,
    /// Multipart part size for streamed recordings; S3 wants >= 5 MiB for all parts but the last.
    pub part_size: usize,
    /// Packets the jitter buffer holds back to reorder (20 ms each).
    pub jitter_depth: usize,
    /// Maximum attempts per number before the attempts gate refuses.
    pub max_attempts: u32,
}

impl Default for DialerConfig {
    fn default() -> Self {
        Self {
            caller_ids: Vec::new(),
            calling_hours: "08:00-21:00".to_string(),
            trunks: Vec::new(),
            ring_timeout_ms: 30_000,
            tail_ms: 3_000,
            max_duration_ms: 600_000,
            t1_ms: 500,
            part_size: 5 * 1024 * 1024,
            jitter_depth: 3,
            max_attempts: 3,
        }
    }
}

impl DialerConfig {
    pub fn trunk(&self, name: &str) -> Result<&TrunkConfig, DialerError> {
        self.trunks
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| DialerError::UnknownTrunk {
                name: name.to_string(),
            })
    }

    pub fn ring_timeout(&self) -> Duration {
        Duration::from_millis(self.ring_timeout_ms)
    }

    pub fn calling_hours(&self) -> Result<CallingHours, DialerError> {
        CallingHours::parse(&self.calling_hours)
    }
}

/// `[[dialer.trunks]]`: one carrier's SIP side.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TrunkConfig {
    pub name: String,
    /// `host:port` of the carrier (UDP).
    pub address: String,
    pub max_concurrent: u32,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl Default for TrunkConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            address: "127.0.0.1:5060".to_string(),
            max_concurrent: 100,
            username: None,
            password: None,
        }
    }
}

/// A daily window in local time; `start > end` wraps past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallingHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl CallingHours {
    pub fn parse(value: &str) -> Result<Self, DialerError> {
        let err = || DialerError::CallingHours {
            value: value.to_string(),
        };
        let (a, b) = value.split_once('-').ok_or_else(err)?;
        let start = NaiveTime::parse_from_str(a.trim(), "%H:%M").map_err(|_| err())?;
        let end = NaiveTime::parse_from_str(b.trim(), "%H:%M").map_err(|_| err())?;
        Ok(Self { start, end })
    }

    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.start <= self.end {
            t >= self.start && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_contract_example() {
        let cfg: DialerConfig = toml_like();
        assert_eq!(cfg.trunks[0].name, "carrier-a");
        assert_eq!(cfg.trunks[0].max_concurrent, 100);
        assert_eq!(cfg.tail_ms, 3000);
        let h = cfg.calling_hours().unwrap();
        assert!(h.contains(NaiveTime::from_hms_opt(8, 0, 0).unwrap()));
        assert!(!h.contains(NaiveTime::from_hms_opt(21, 0, 0).unwrap()));
        assert!(!h.contains(NaiveTime::from_hms_opt(7, 59, 0).unwrap()));
    }

    fn toml_like() -> DialerConfig {
        serde_json::from_str(
            r#"{"caller_ids":["+861012345678"],"calling_hours":"08:00-21:00",
                "trunks":[{"name":"carrier-a","address":"127.0.0.1:5070","max_concurrent":100}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn window_wraps_midnight_and_rejects_garbage() {
        let h = CallingHours::parse("22:00-02:00").unwrap();
        assert!(h.contains(NaiveTime::from_hms_opt(23, 30, 0).unwrap()));
        assert!(h.contains(NaiveTime::from_hms_opt(1, 0, 0).unwrap()));
        assert!(!h.contains(NaiveTime::from_hms_opt(12, 0, 0).unwrap()));
        assert!(CallingHours::parse("8-21").is_err());
        assert!(CallingHours::parse("25:00-21:00").is_err());
    }
}
