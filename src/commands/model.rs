//! `callqa model fetch|import-ct2|import-silero`: get a ggml whisper model, convert a
//! CTranslate2 (faster-whisper) model directory into one, or convert faster-whisper's
//! Silero voice-activity model to whisper.cpp's format.

use anyhow::{Context, Result};
use callqa_ingest::model::{fetch, import_ct2, import_silero, Quantization};
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Download a ggml model (tiny, base, small, ...) into <data-dir>/models; also
    /// whisper.cpp's Silero voice-activity models (silero-v6.2.0, silero-v5.1.2).
    Fetch {
        name: String,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Convert a CTranslate2 whisper model directory to a ggml file.
    #[command(name = "import-ct2")]
    ImportCt2 {
        dir: PathBuf,
        out: PathBuf,
        /// f16 (exact copy of the weights), q8_0 (smaller, faster, as accurate), q4_k (half
        /// q8_0's size, less accurate), q4_0 (less accurate still); also q6_k,
        /// q5_k, q5_1, q5_0 and iq4_nl. The k-quants (q4_k, q5_k, q6_k) need rows of 256
        /// values: whisper base and larger, not tiny.
        #[arg(long, default_value = "f16")]
        quantize: String,
    },
    /// Convert a Silero voice-activity model (ONNX, e.g. faster-whisper's
    /// `faster_whisper/assets/silero_vad_v6.onnx`) to whisper.cpp's ggml VAD format.
    /// Installed as `ggml-silero-v6.bin` next to the whisper model (by default in
    /// <data-dir>/models), callqa uses it to tell speech from noise.
    #[command(name = "import-silero")]
    ImportSilero { onnx: PathBuf, out: PathBuf },
}

pub async fn run(data_dir: &Path, cmd: Cmd) -> Result<i32> {
    match cmd {
        Cmd::Fetch { name, dir } => {
            let dir = dir.unwrap_or_else(|| data_dir.join("models"));
            let path = fetch(&name, &dir)
                .await
                .with_context(|| format!("cannot fetch model {name}"))?;
            println!("{}", path.display());
        }
        Cmd::ImportCt2 { dir, out, quantize } => {
            let q: Quantization = quantize.parse().map_err(anyhow::Error::msg)?;
            let summary = tokio::task::spawn_blocking(move || import_ct2(&dir, &out, q))
                .await
                .context("converter panicked")?
                .context("model conversion failed")?;
            eprintln!("{summary:?}");
        }
        Cmd::ImportSilero { onnx, out } => {
            let summary = tokio::task::spawn_blocking(move || import_silero(&onnx, &out))
                .await
                .context("converter panicked")?
                .context("VAD model conversion failed")?;
            eprintln!("{summary:?}");
        }
    }
    Ok(0)
}
