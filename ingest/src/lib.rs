//! callqa-ingest: the recording pipeline's foundation — object storage, call metadata,
//! the durable job queue, audio decoding and whisper transcription.

pub mod blas;
pub mod booking;
pub mod config;
pub mod db;
pub mod decode;
pub mod error;
mod gsm;
pub mod metrics;
pub mod model;
mod pbx_audio;
pub mod queue;
pub mod resample;
pub mod speech_gate;
pub mod storage;
pub mod text;
pub mod tone;
pub mod transcribe;
pub mod transcript;
pub mod vad;

pub use config::IngestConfig;
pub use error::IngestError;
