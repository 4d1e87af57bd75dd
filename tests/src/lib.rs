//! Test harness for callqa's integration tests: generated speech and call
//! recordings, a real Garage S3 server on loopback, RTP pcaps for SIPp, loopback UDP
//! ports for SIP peers, and
//! the paths of the built `callqa` binary and the whisper model.

pub mod bin;
pub mod error;
pub mod g711;
pub mod garage;
pub mod net;
pub mod pcap;
pub mod speech;
mod tool;

pub use bin::{callqa_bin, fixtures_dir, model_path, workspace_root};
pub use error::HarnessError;
pub use garage::Garage;
pub use net::{free_udp_port, wait_udp_bound};
pub use speech::{AudioFormat, Side, Turn, TurnAudio, TurnSpan};

/// Result of every fallible harness call.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;
