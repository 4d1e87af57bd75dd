//! Downloads ready-made whisper.cpp ggml models (`ggml-{name}.bin`) from the
//! whisper.cpp model repository on Hugging Face, streaming to a temp file
//! that is renamed into place only when complete.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::ModelError;

/// Where whisper.cpp's own download script gets its models.
pub const HF_BASE_URL: &str = "https://huggingface.co/ggerganov/whisper.cpp/resolve/main";

/// Where whisper.cpp's Silero voice-activity models (ggml) are published.
pub const VAD_BASE_URL: &str = "https://huggingface.co/ggml-org/whisper-vad/resolve/main";

/// The Silero models `fetch` accepts (`ggml-silero-v6.2.0.bin`, ...).
pub const VAD_MODEL_NAMES: &[&str] = &["silero-v6.2.0", "silero-v5.1.2"];

/// The model names `fetch` accepts: the sizes that run on a CPU, each also
/// as a q5_0, q5_1 or q8_0 quantized file.
pub const MODEL_NAMES: &[&str] = &[
    "tiny",
    "tiny.en",
    "base",
    "base.en",
    "small",
    "small.en",
    "tiny-q5_1",
    "tiny.en-q5_1",
    "base-q5_1",
    "base.en-q5_1",
    "small-q5_1",
    "small.en-q5_1",
    "tiny-q5_0",
    "tiny.en-q5_0",
    "base-q5_0",
    "base.en-q5_0",
    "small-q5_0",
    "small.en-q5_0",
    "tiny-q8_0",
    "tiny.en-q8_0",
    "base-q8_0",
    "base.en-q8_0",
    "small-q8_0",
    "small.en-q8_0",
];

/// `ggml-{name}.bin` for a known model name; the check also keeps a name
/// from smuggling a path or URL fragment into the request.
pub fn model_file_name(name: &str) -> Result<String, ModelError> {
    if MODEL_NAMES.contains(&name) || VAD_MODEL_NAMES.contains(&name) {
        Ok(format!("ggml-{name}.bin"))
    } else {
        Err(ModelError::UnknownModel {
            name: name.to_string(),
        })
    }
}

/// Downloads `ggml-{name}.bin` from Hugging Face into `dest_dir` and returns
/// its path. A file already there is kept and returned without a download
/// (files only ever appear there complete, by rename).
pub async fn fetch(name: &str, dest_dir: &Path) -> Result<PathBuf, ModelError> {
    let base = if VAD_MODEL_NAMES.contains(&name) {
        VAD_BASE_URL
    } else {
        HF_BASE_URL
    };
    fetch_from(base, name, dest_dir).await
}

/// `fetch` from another server or mirror laid out like the Hugging Face
/// repository (`{base_url}/ggml-{name}.bin`).
pub async fn fetch_from(
    base_url: &str,
    name: &str,
    dest_dir: &Path,
) -> Result<PathBuf, ModelError> {
    let file_name = model_file_name(name)?;
    let dest = dest_dir.join(&file_name);
    if tokio::fs::metadata(&dest).await.is_ok_and(|m| m.len() > 0) {
        return Ok(dest);
    }
    tokio::fs::create_dir_all(dest_dir)
        .await
        .map_err(|e| ModelError::io(dest_dir, e))?;
    let url = format!("{}/{file_name}", base_url.trim_end_matches('/'));
    let offline = if VAD_MODEL_NAMES.contains(&name) {
        "convert a Silero ONNX model (faster-whisper ships one) with `callqa model import-silero`"
    } else {
        "convert a CTranslate2 model with `callqa model import-ct2`"
    };
    let network = |source| ModelError::Network {
        url: url.clone(),
        dest: dest.clone(),
        offline,
        source,
    };

    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(20))
        // Without a read timeout a stalled transfer would hang forever.
        .read_timeout(Duration::from_secs(60))
        .build()
        .map_err(network)?;
    let response = client.get(&url).send().await.map_err(network)?;
    let status = response.status();
    if !status.is_success() {
        return Err(ModelError::HttpStatus {
            url,
            status: status.as_u16(),
        });
    }
    let expected_len = response.content_length();

    let tmp = dest_dir.join(format!("{file_name}.tmp"));
    let result = async {
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| ModelError::io(&tmp, e))?;
        let mut written = 0u64;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(network)?;
            file.write_all(&chunk)
                .await
                .map_err(|e| ModelError::io(&tmp, e))?;
            written += chunk.len() as u64;
        }
        file.sync_all().await.map_err(|e| ModelError::io(&tmp, e))?;
        if let Some(expected) = expected_len.filter(|&n| n != written) {
            return Err(ModelError::bad_format(
                &tmp,
                format!("download of {url} ended after {written} of {expected} bytes"),
            ));
        }
        if written == 0 {
            return Err(ModelError::bad_format(
                &tmp,
                format!("{url} returned an empty file"),
            ));
        }
        tokio::fs::rename(&tmp, &dest)
            .await
            .map_err(|e| ModelError::io(&dest, e))
    }
    .await;
    if result.is_err() {
        // Best effort: the partial file is useless and the download error
        // is the one to report.
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result.map(|()| dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_known_names_only() {
        assert_eq!(model_file_name("base").unwrap(), "ggml-base.bin");
        assert_eq!(
            model_file_name("silero-v6.2.0").unwrap(),
            "ggml-silero-v6.2.0.bin"
        );
        assert_eq!(model_file_name("tiny.en").unwrap(), "ggml-tiny.en.bin");
        assert_eq!(
            model_file_name("small.en-q8_0").unwrap(),
            "ggml-small.en-q8_0.bin"
        );
        for bad in [
            "",
            "large-v3",
            "../base",
            "base.bin",
            "BASE",
            "base?x=1",
            "base-q4_0",
        ] {
            let err = model_file_name(bad).unwrap_err();
            assert!(
                matches!(&err, ModelError::UnknownModel { name } if name == bad),
                "{bad}"
            );
            assert!(
                err.to_string().contains("tiny.en"),
                "the error lists the valid names"
            );
        }
    }

    #[tokio::test]
    async fn unknown_name_fails_before_any_network_or_disk_access() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("not-created");
        let err = fetch("huge", &dest).await.unwrap_err();
        assert!(matches!(err, ModelError::UnknownModel { .. }));
        assert!(!dest.exists());
    }

    #[tokio::test]
    async fn unreachable_server_is_a_network_error_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        // Port 9 (discard) on loopback: nothing listens, the connect is refused.
        let err = fetch_from("http://127.0.0.1:9", "tiny", dir.path())
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ModelError::Network { .. }), "{msg}");
        assert!(msg.contains("http://127.0.0.1:9/ggml-tiny.bin"), "{msg}");
        assert!(
            msg.contains("import-ct2"),
            "the error says what to do: {msg}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let err = fetch_from("http://127.0.0.1:9", "silero-v6.2.0", dir.path())
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("import-silero") && !msg.contains("import-ct2"),
            "a voice-activity model names its own converter: {msg}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// Serves one canned HTTP response on loopback; returns the base URL and
    /// a handle yielding the request line it received.
    async fn one_shot_server(
        status: &'static str,
        body: &'static [u8],
    ) -> (String, tokio::task::JoinHandle<String>) {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = sock.read(&mut buf).await.unwrap();
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            sock.write_all(head.as_bytes()).await.unwrap();
            sock.write_all(body).await.unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            request.lines().next().unwrap_or_default().to_string()
        });
        (format!("http://{addr}"), handle)
    }

    #[tokio::test]
    async fn downloads_into_dest_dir_and_reuses_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (url, server) = one_shot_server("200 OK", b"not really a model").await;
        let path = fetch_from(&url, "base.en", dir.path()).await.unwrap();
        assert_eq!(path, dir.path().join("ggml-base.en.bin"));
        assert_eq!(std::fs::read(&path).unwrap(), b"not really a model");
        assert_eq!(server.await.unwrap(), "GET /ggml-base.en.bin HTTP/1.1");
        assert!(!dir.path().join("ggml-base.en.bin.tmp").exists());
        // The server is gone; a second fetch must not need it.
        assert_eq!(fetch_from(&url, "base.en", dir.path()).await.unwrap(), path);
    }

    #[tokio::test]
    async fn http_error_status_is_reported_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let (url, _server) = one_shot_server("404 Not Found", b"nope").await;
        let err = fetch_from(&url, "tiny", dir.path()).await.unwrap_err();
        assert!(
            matches!(err, ModelError::HttpStatus { status: 404, .. }),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
