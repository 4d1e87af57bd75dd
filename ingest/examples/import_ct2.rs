//! Converts a CTranslate2 Whisper model dir to a whisper.cpp ggml file:
//! `cargo run --release -p callqa-ingest --example import_ct2 -- DIR OUT.bin [f16|q8_0]`.
//! The same conversion `callqa model import-ct2` runs, without the CLI.

use std::path::PathBuf;
use std::time::Instant;

use callqa_ingest::model::{import_ct2, Quantization};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, out, quant) = match args.as_slice() {
        [dir, out] => (dir, out, Quantization::F16),
        [dir, out, q] => (dir, out, q.parse::<Quantization>()?),
        _ => return Err("usage: import_ct2 CT2_DIR OUT.bin [f16|q8_0]".into()),
    };
    let start = Instant::now();
    let s = import_ct2(&PathBuf::from(dir), &PathBuf::from(out), quant)?;
    println!(
        "wrote {} ({}, {} tensors, {} tokens, {} bytes, n_vocab {}, {} audio / {} text layers) in {:.2} s",
        s.out.display(),
        s.quantization,
        s.n_tensors,
        s.n_tokens,
        s.bytes,
        s.hparams.n_vocab,
        s.hparams.n_audio_layer,
        s.hparams.n_text_layer,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
