//! callqa-dialer: places outbound calls through SIP trunks, plays a prompt over G.711 RTP or
//! bridges the call to an agent's SIP phone, records both directions in stereo straight into
//! object storage, and refuses calls that break the compliance rules.

pub mod agent_leg;
pub mod agents;
pub mod bench;
pub mod best_time;
pub mod booking;
pub mod bridge;
pub mod call;
pub mod campaign;
pub mod campaign_store;
pub mod compliance;
pub mod config;
pub mod consent;
pub mod error;
pub mod g711;
pub mod jitter;
pub mod media;
pub mod number;
pub mod pacing;
pub mod prompt;
pub mod recording;
pub mod routing;
pub mod rtp;
pub mod rtp_sockets;
pub mod runner;
pub mod sip;
mod talk;
pub mod wav;

pub use agent_leg::AgentOutcome;
pub use agents::{AgentAuth, AgentDesk, AgentEndpoint, Agents};
pub use best_time::{AnswerModel, HourlyRates, Level, PastAttempt};
pub use booking::CallBook;
pub use call::{
    dial, dial_checked, dial_with_agents, outcome_for, CallReport, DialRequest, Outcome,
    RecordingInfo, RtpStats,
};
pub use campaign::{CampaignConfig, CampaignError, CampaignKind, Contact, PacingMode};
pub use campaign_store::{CampaignState, CampaignStatus, CampaignStore, RefusedCounts};
pub use compliance::{check, ComplianceContext, ComplianceLookup, Refusal, RefusalKind};
pub use config::{CallingHours, DialerConfig, TrunkConfig};
pub use consent::{ConsentRecord, Consents};
pub use error::DialerError;
pub use recording::{drain_spool, recover_and_drain, recover_orphans, RecordingStore};
pub use routing::{dial_routed, dial_routed_with_agents, TrunkRouter};
pub use runner::{RunOptions, RunSummary, Runner};
