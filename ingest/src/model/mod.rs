//! Whisper model files: import a CTranslate2 (faster-whisper) model directory
//! as a whisper.cpp ggml file, and download ready-made ggml files.
//!
//! The import is a pure format conversion (see `ct2` for the input, `ggml` for
//! the output, `convert` for the tensor mapping); it needs no Python and no
//! network, which is why it exists: the usual model hubs may be unreachable.

mod convert;
mod ct2;
mod fetch;
mod ggml;
#[cfg(test)]
mod import_tests;
mod mel;
mod onnx;
mod quant;
mod silero;
mod vocab;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use fetch::{
    fetch, fetch_from, model_file_name, HF_BASE_URL, MODEL_NAMES, VAD_BASE_URL, VAD_MODEL_NAMES,
};
pub use ggml::{read_hparams, Hparams};
pub use silero::{import_silero, SileroSummary};

/// Everything that can go wrong while importing or fetching a model. Every
/// variant names the file, tensor or URL it is about.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid model file: {reason}")]
    BadFormat { path: PathBuf, reason: String },
    #[error("tensor `{name}` is missing from the CTranslate2 model")]
    MissingTensor { name: String },
    #[error("tensor `{name}`: {reason}")]
    BadTensor { name: String, reason: String },
    #[error(
        "unknown model `{name}`; expected one of: {}, or a voice-activity model: {}",
        MODEL_NAMES.join(", "),
        VAD_MODEL_NAMES.join(", ")
    )]
    UnknownModel { name: String },
    #[error(
        "cannot download {url}. If this machine has no internet access, \
         download the file elsewhere and copy it to {dest}, or {offline}"
    )]
    Network {
        url: String,
        dest: PathBuf,
        /// What to do instead without internet: the converter for this kind of model.
        offline: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("downloading {url} failed: HTTP {status}")]
    HttpStatus { url: String, status: u16 },
}

impl ModelError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn bad_format(path: &Path, reason: impl Into<String>) -> Self {
        ModelError::BadFormat {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    pub(crate) fn bad_tensor(name: &str, reason: impl Into<String>) -> Self {
        ModelError::BadTensor {
            name: name.to_string(),
            reason: reason.into(),
        }
    }
}

/// Storage type of the weight matrices in the written ggml file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quantization {
    /// The layout of whisper.cpp's own `convert-pt-to-ggml.py`: 2-D weights
    /// f16, the rest f32. Bit-exact copy of a float16 CTranslate2 model.
    #[default]
    F16,
    /// ggml q8_0 for the tensors whisper.cpp's `quantize` tool quantizes:
    /// about half the size of F16 and faster on CPU, with a tiny accuracy cost.
    Q8_0,
    /// ggml q4_0 (4-bit blocks of 32): a quarter of F16; on x86 with AVX2 whisper.cpp
    /// repacks it for its fastest matrix kernels.
    Q4_0,
    /// ggml q5_0 (5-bit blocks of 32, one scale).
    Q5_0,
    /// ggml q5_1 (5-bit blocks of 32, scale and minimum).
    Q5_1,
    /// ggml k-quant q4_K (super-blocks of 256 with 6-bit sub-block scales): about the size
    /// of q4_0, more accurate, and repacked on x86 with AVX2 like q4_0. Rows must be a
    /// multiple of 256 values (whisper base and larger; not tiny).
    Q4K,
    /// ggml k-quant q5_K (super-blocks of 256).
    Q5K,
    /// ggml k-quant q6_K (super-blocks of 256).
    Q6K,
    /// ggml iq4_nl (4-bit non-linear levels, blocks of 32); repacked on x86 with AVX2.
    Iq4Nl,
}

impl Quantization {
    /// Every storage type, in the order `--quantize` help lists them.
    pub const ALL: [Quantization; 9] = [
        Quantization::F16,
        Quantization::Q8_0,
        Quantization::Q6K,
        Quantization::Q5K,
        Quantization::Q5_1,
        Quantization::Q5_0,
        Quantization::Q4K,
        Quantization::Iq4Nl,
        Quantization::Q4_0,
    ];

    /// The name used on the command line and in file names (`f16`, `q8_0`, `q4_k`).
    pub fn as_str(self) -> &'static str {
        match self {
            Quantization::F16 => "f16",
            Quantization::Q8_0 => "q8_0",
            Quantization::Q4_0 => "q4_0",
            Quantization::Q5_0 => "q5_0",
            Quantization::Q5_1 => "q5_1",
            Quantization::Q4K => "q4_k",
            Quantization::Q5K => "q5_k",
            Quantization::Q6K => "q6_k",
            Quantization::Iq4Nl => "iq4_nl",
        }
    }
}

impl fmt::Display for Quantization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Quantization {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "q8" => Ok(Quantization::Q8_0),
            "q4" => Ok(Quantization::Q4_0),
            name => Quantization::ALL
                .into_iter()
                .find(|q| q.as_str() == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = Quantization::ALL.iter().map(|q| q.as_str()).collect();
                    format!(
                        "unknown quantization `{s}`; use one of {}",
                        names.join(", ")
                    )
                }),
        }
    }
}

/// The model files looked for under a models directory when none is configured, best
/// first: base in q8_0 (faster-whisper's int8 precision; a lower word error rate than q4_K
/// on three of the four benchmark corpora, recorded speech among them, and as fast on an
/// AVX-512 CPU once tinyBLAS does its int8 products; see README), in q4_K, then
/// whisper.cpp's own f16 `ggml-base.bin`.
pub const DEFAULT_MODEL_FILES: [&str; 3] =
    ["ggml-base-q8_0.bin", "ggml-base-q4_k.bin", "ggml-base.bin"];

/// The model to use when none is configured: the first of [`DEFAULT_MODEL_FILES`] present
/// in `models_dir`, else `models_dir/ggml-base.bin` (whose absence the loader reports).
pub fn default_model(models_dir: &Path) -> PathBuf {
    DEFAULT_MODEL_FILES
        .iter()
        .map(|name| models_dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| models_dir.join("ggml-base.bin"))
}

/// The Silero voice-activity model to use when none is configured: the newest (by name)
/// `ggml-silero*.bin` in `dir`, else none.
pub fn default_vad_model(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("ggml-silero") && n.ends_with(".bin"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// What `import_ct2` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    /// The ggml file written.
    pub out: PathBuf,
    /// The hyper-parameters written to its header (`ftype` as written).
    pub hparams: Hparams,
    pub quantization: Quantization,
    /// Number of tensors written (245 for base, 167 for tiny).
    pub n_tensors: usize,
    /// Number of vocabulary tokens written (always 50,257; whisper.cpp adds
    /// the special and timestamp tokens itself).
    pub n_tokens: usize,
    /// Size of the written file in bytes.
    pub bytes: u64,
}

/// Converts a CTranslate2 Whisper model directory (`model.bin` plus
/// `vocabulary.txt` or `vocabulary.json`) into a whisper.cpp ggml file at
/// `out`. The file is written to `out` + `.tmp` and renamed into place, so a
/// crash never leaves a half-written model under the final name.
pub fn import_ct2(
    dir: &Path,
    out: &Path,
    quant: Quantization,
) -> Result<ImportSummary, ModelError> {
    let model = ct2::Ct2Model::open(&dir.join("model.bin"))?;
    let tokens = vocab::read_ggml_tokens(dir)?;
    let plan = convert::Plan::new(&model)?;
    let filters = mel::mel_filters(plan.hparams.n_mels as usize);

    let mut tmp_name = out.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let written = ggml::write_file(&tmp, &model, &plan, &filters, &tokens, quant);
    let (hparams, bytes) = match written {
        Ok(v) => v,
        Err(e) => {
            // Best effort: the temp file is garbage now, and the error that
            // matters is the one that made it so.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    if let Err(e) = std::fs::rename(&tmp, out) {
        let _ = std::fs::remove_file(&tmp);
        return Err(ModelError::io(out, e));
    }
    Ok(ImportSummary {
        out: out.to_path_buf(),
        hparams,
        quantization: quant,
        n_tensors: plan.tensors.len(),
        n_tokens: tokens.len(),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_model_prefers_q8_0_then_q4_k_then_f16() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(default_model(dir.path()), dir.path().join("ggml-base.bin"));
        for name in ["ggml-base.bin", "ggml-base-q4_k.bin", "ggml-base-q8_0.bin"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
            assert_eq!(default_model(dir.path()), dir.path().join(name));
        }
    }

    #[test]
    fn vad_model_is_the_newest_silero_file_of_the_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ggml-base.bin"), b"x").unwrap();
        assert_eq!(default_vad_model(dir.path()), None);
        std::fs::write(dir.path().join("ggml-silero-v5.1.2.bin"), b"x").unwrap();
        std::fs::write(dir.path().join("ggml-silero-v6.2.0.bin"), b"x").unwrap();
        let want = dir.path().join("ggml-silero-v6.2.0.bin");
        assert_eq!(default_vad_model(dir.path()), Some(want));
        assert_eq!(default_vad_model(&dir.path().join("missing")), None);
    }

    #[test]
    fn quantization_parses_its_own_names() {
        for q in Quantization::ALL {
            assert_eq!(q.as_str().parse::<Quantization>(), Ok(q));
        }
        assert_eq!("Q8_0".parse::<Quantization>(), Ok(Quantization::Q8_0));
        assert_eq!("Q4_K".parse::<Quantization>(), Ok(Quantization::Q4K));
        assert!("q3_k".parse::<Quantization>().is_err());
        assert_eq!(Quantization::default(), Quantization::F16);
    }
}
