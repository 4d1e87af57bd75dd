//! Webhooks: POSTs a finished call's result to the configured CRM URL, signed with
//! HMAC-SHA256 of the body, retried with backoff.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::WebError;
use crate::WebConfig;

/// Header carrying `sha256=<hex HMAC of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Callqa-Signature";
const ATTEMPTS: u32 = 3;

/// `sha256=<hex>` of `body` under `secret`; receivers recompute it to trust the payload.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends `payload` to `cfg.webhook_url` (nothing to do without one). Tries three times,
/// waiting `cfg.webhook_backoff_ms`, then twice that; a 2xx answer is success.
pub async fn send_webhook(cfg: &WebConfig, payload: &serde_json::Value) -> Result<(), WebError> {
    let Some(url) = cfg.webhook_url.as_deref() else {
        return Ok(());
    };
    let body = serde_json::to_vec(payload).map_err(|source| WebError::Json {
        what: "webhook payload".into(),
        source,
    })?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| WebError::Webhook {
            url: url.to_string(),
            attempts: 0,
            reason: e.to_string(),
        })?;
    let mut reason = String::new();
    for attempt in 1..=ATTEMPTS {
        let mut req = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone());
        if let Some(secret) = cfg.webhook_secret.as_deref() {
            req = req.header(SIGNATURE_HEADER, signature(secret, &body));
        }
        match req.send().await {
            Ok(res) if res.status().is_success() => {
                crate::metrics::count_webhook(true);
                return Ok(());
            }
            Ok(res) => reason = format!("HTTP {}", res.status()),
            Err(e) => reason = e.to_string(),
        }
        tracing::warn!(url, attempt, "webhook failed: {reason}");
        if attempt < ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(
                cfg.webhook_backoff_ms << (attempt - 1),
            ))
            .await;
        }
    }
    crate::metrics::count_webhook(false);
    Err(WebError::Webhook {
        url: url.to_string(),
        attempts: ATTEMPTS,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
