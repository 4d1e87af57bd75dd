//! The SIP user agent pieces: UDP transport, RFC 3261 client transactions, dialog state,
//! digest authentication and the SDP offer/answer, on top of `rsip` messages.

pub mod auth;
pub mod demux;
pub mod dialog;
pub mod message;
pub mod sdp;
pub mod transaction;
pub mod transport;

/// Errors from building or reading SIP messages.
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    #[error("malformed SIP message: {reason}")]
    Malformed { reason: String },
    #[error("SIP message lacks the {header} header")]
    MissingHeader { header: &'static str },
    #[error("bad SIP URI {uri:?}: {reason}")]
    Uri { uri: String, reason: String },
    #[error("bad SDP: {reason}")]
    Sdp { reason: String },
}
