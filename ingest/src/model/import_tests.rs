//! `import_ct2` end to end on a synthetic miniature Whisper model (width 32,
//! one layer each side), with an int8 token embedding and a bfloat16 tensor,
//! checking the written records against the source values.

use std::path::Path;

use half::{bf16, f16};

use super::ct2::model_bin;
use super::{import_ct2, read_hparams, ModelError, Quantization};

const D: u32 = 32;

/// (name, dims, dtype code, data) of one synthetic variable.
type Var = (String, Vec<u32>, u8, Vec<u8>);

/// Distinct, exactly representable f32 values so slices are recognisable.
fn f32_var(name: &str, dims: &[u32], seed: u32) -> Var {
    let n: u32 = dims.iter().product();
    let data = (0..n)
        .flat_map(|i| (seed as f32 + i as f32 / 1024.0).to_le_bytes())
        .collect();
    (name.to_string(), dims.to_vec(), 0, data)
}

fn linear(vars: &mut Vec<Var>, prefix: &str, out: u32, inp: u32, seed: u32) {
    vars.push(f32_var(&format!("{prefix}/weight"), &[out, inp], seed));
    vars.push(f32_var(&format!("{prefix}/bias"), &[out], seed + 1));
}

fn layer_norm(vars: &mut Vec<Var>, prefix: &str, seed: u32) {
    vars.push(f32_var(&format!("{prefix}/gamma"), &[D], seed));
    vars.push(f32_var(&format!("{prefix}/beta"), &[D], seed + 1));
}

/// Zeroes elements `range` of an f32 variable (the fused key biases).
fn zero(var: &mut Var, range: std::ops::Range<usize>) {
    var.3[range.start * 4..range.end * 4].fill(0);
}

fn block(vars: &mut Vec<Var>, p: &str, cross: bool) {
    linear(vars, &format!("{p}/self_attention/linear_0"), 3 * D, D, 10);
    zero(vars.last_mut().unwrap(), D as usize..2 * D as usize);
    linear(vars, &format!("{p}/self_attention/linear_1"), D, D, 20);
    layer_norm(vars, &format!("{p}/self_attention/layer_norm"), 30);
    if cross {
        linear(vars, &format!("{p}/attention/linear_0"), D, D, 40);
        linear(vars, &format!("{p}/attention/linear_1"), 2 * D, D, 50);
        zero(vars.last_mut().unwrap(), 0..D as usize);
        linear(vars, &format!("{p}/attention/linear_2"), D, D, 60);
        layer_norm(vars, &format!("{p}/attention/layer_norm"), 70);
    }
    linear(vars, &format!("{p}/ffn/linear_0"), 4 * D, D, 80);
    linear(vars, &format!("{p}/ffn/linear_1"), D, 4 * D, 90);
    layer_norm(vars, &format!("{p}/ffn/layer_norm"), 100);
}

/// The token embedding is int8 (4 x 32, one scale per row) and the decoder
/// final layer-norm gamma is bfloat16, as other CT2 compute types store them.
fn synthetic_vars() -> Vec<Var> {
    let mut v = Vec::new();
    let q: Vec<u8> = (0..4 * D).map(|i| (i as i32 - 64) as i8 as u8).collect();
    v.push(("decoder/embeddings/weight".into(), vec![4, D], 1, q));
    let scale = [2.0f32, 4.0, 8.0, 16.0]
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    v.push(("decoder/embeddings/weight_scale".into(), vec![4], 0, scale));
    v.push((
        "decoder/num_heads".into(),
        vec![],
        2,
        1i16.to_le_bytes().to_vec(),
    ));
    v.push(f32_var("decoder/position_encodings/encodings", &[2, D], 1));
    block(&mut v, "decoder/layer_0", true);
    let gamma = (0..D)
        .flat_map(|i| bf16::from_f32(1.0 + i as f32 / 8.0).to_bits().to_le_bytes())
        .collect();
    v.push(("decoder/layer_norm/gamma".into(), vec![D], 5, gamma));
    v.push(f32_var("decoder/layer_norm/beta", &[D], 2));
    v.push(f32_var("encoder/conv1/weight", &[D, 2, 3], 3));
    v.push(f32_var("encoder/conv1/bias", &[D], 4));
    v.push(f32_var("encoder/conv2/weight", &[D, D, 3], 5));
    v.push(f32_var("encoder/conv2/bias", &[D], 6));
    v.push((
        "encoder/num_heads".into(),
        vec![],
        2,
        1i16.to_le_bytes().to_vec(),
    ));
    v.push(f32_var("encoder/position_encodings/encodings", &[3, D], 7));
    block(&mut v, "encoder/layer_0", false);
    layer_norm(&mut v, "encoder/layer_norm", 8);
    v
}

fn write_model_dir(dir: &Path, vars: &[Var]) {
    let refs: Vec<(&str, &[u32], u8, Vec<u8>)> = vars
        .iter()
        .map(|(n, d, c, b)| (n.as_str(), d.as_slice(), *c, b.clone()))
        .collect();
    std::fs::write(dir.join("model.bin"), model_bin(&refs)).unwrap();
    let vocab: Vec<String> = (0..50_300).map(|i| format!("t{i}")).collect();
    std::fs::write(dir.join("vocabulary.txt"), vocab.join("\n")).unwrap();
}

/// name -> (ttype, ne, data) for every tensor record of a ggml file.
fn records(bytes: &[u8]) -> Vec<(String, i32, Vec<usize>, Vec<u8>)> {
    let i32_at = |at: usize| i32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let mut at = 56 + 4 * (i32_at(48) * i32_at(52)) as usize;
    let n_tokens = i32_at(at);
    at += 4;
    for _ in 0..n_tokens {
        at += 4 + i32_at(at) as usize;
    }
    let mut out = Vec::new();
    while at < bytes.len() {
        let (n_dims, name_len, ttype) =
            (i32_at(at) as usize, i32_at(at + 4) as usize, i32_at(at + 8));
        at += 12;
        let ne: Vec<usize> = (0..n_dims).map(|i| i32_at(at + 4 * i) as usize).collect();
        at += 4 * n_dims;
        let name = String::from_utf8(bytes[at..at + name_len].to_vec()).unwrap();
        at += name_len;
        let n: usize = ne.iter().product();
        let size = match ttype {
            0 => 4 * n,
            1 => 2 * n,
            8 => n / 32 * 34,
            2 | 20 => n / 32 * 18, // q4_0, iq4_nl
            6 => n / 32 * 22,      // q5_0
            7 => n / 32 * 24,      // q5_1
            t => panic!("{name}: ttype {t}"),
        };
        out.push((name, ttype, ne, bytes[at..at + size].to_vec()));
        at += size;
    }
    out
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn f16s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(2)
        .map(|c| f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
        .collect()
}

/// Source values of a synthetic f32 variable.
fn source(vars: &[Var], name: &str) -> Vec<f32> {
    f32s(&vars.iter().find(|v| v.0 == name).unwrap().3)
}

#[test]
fn f16_import_maps_splits_and_orders_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let vars = synthetic_vars();
    write_model_dir(dir.path(), &vars);
    let out = dir.path().join("out.bin");
    let summary = import_ct2(dir.path(), &out, Quantization::F16).unwrap();
    let h = read_hparams(&out).unwrap();
    assert_eq!(summary.hparams, h);
    assert_eq!(
        (h.n_vocab, h.n_audio_ctx, h.n_audio_state, h.n_audio_layer),
        (4, 3, 32, 1)
    );
    assert_eq!(
        (
            h.n_text_ctx,
            h.n_text_state,
            h.n_text_layer,
            h.n_mels,
            h.ftype
        ),
        (2, 32, 1, 2, 1)
    );

    let recs = records(&std::fs::read(&out).unwrap());
    assert_eq!(recs.len(), 11 + 15 + 24);
    assert_eq!(summary.n_tensors, recs.len());
    let names: Vec<&str> = recs.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        &names[..7],
        &[
            "encoder.positional_embedding",
            "encoder.conv1.weight",
            "encoder.conv1.bias",
            "encoder.conv2.weight",
            "encoder.conv2.bias",
            "encoder.blocks.0.attn.query.weight",
            "encoder.blocks.0.attn.query.bias",
        ]
    );
    assert_eq!(
        &names[names.len() - 2..],
        &["decoder.ln.weight", "decoder.ln.bias"]
    );
    assert!(!names.iter().any(|n| n.contains("key.bias")));
    let get = |name: &str| recs.iter().find(|r| r.0 == name).unwrap();

    // Conv bias: f32, ne [1, d]. Positional embedding: f32 despite 2-D.
    let conv_b = get("encoder.conv1.bias");
    assert_eq!((conv_b.1, conv_b.2.clone()), (0, vec![1, 32]));
    assert_eq!(f32s(&conv_b.3), source(&vars, "encoder/conv1/bias"));
    assert_eq!(get("decoder.positional_embedding").1, 0);
    assert_eq!(get("encoder.conv1.weight").2, vec![3, 2, 32]);

    // Fused q/k/v rows split in order; the value bias is the third slice.
    let fused = source(&vars, "encoder/layer_0/self_attention/linear_0/weight");
    let n = 32 * 32;
    for (i, part) in ["query", "key", "value"].iter().enumerate() {
        let r = get(&format!("encoder.blocks.0.attn.{part}.weight"));
        assert_eq!((r.1, r.2.clone()), (1, vec![32, 32]));
        let want: Vec<f32> = fused[i * n..(i + 1) * n]
            .iter()
            .map(|&x| f16::from_f32(x).to_f32())
            .collect();
        assert_eq!(f16s(&r.3), want, "{part}");
    }
    let bias = source(&vars, "decoder/layer_0/attention/linear_1/bias");
    assert_eq!(
        f32s(&get("decoder.blocks.0.cross_attn.value.bias").3),
        &bias[32..]
    );

    // int8 embedding dequantized by its per-row scale; bf16 widened exactly.
    let emb = f16s(&get("decoder.token_embedding.weight").3);
    assert_eq!(
        (emb[0], emb[32], emb[127]),
        (-64.0 / 2.0, -32.0 / 4.0, 63.0 / 16.0)
    );
    let gamma = f32s(&get("decoder.ln.weight").3);
    assert_eq!((gamma[0], gamma[31]), (1.0, 1.0 + 31.0 / 8.0));
}

#[test]
fn quantized_imports_quantize_only_2d_weights() {
    // (quantization, header ftype, ftype, ggml type of the 2-D weights)
    for (quant, header, ftype, wtype) in [
        (Quantization::Q8_0, 2007, 7, 8),
        (Quantization::Q4_0, 2002, 2, 2),
        (Quantization::Q5_0, 2008, 8, 6),
        (Quantization::Q5_1, 2009, 9, 7),
        (Quantization::Iq4Nl, 2019, 19, 20),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_model_dir(dir.path(), &synthetic_vars());
        let out = dir.path().join("out.bin");
        let summary = import_ct2(dir.path(), &out, quant).unwrap();
        assert_eq!(
            (summary.hparams.ftype, summary.hparams.file_type()),
            (header, ftype)
        );
        for (name, ttype, ne, _) in records(&std::fs::read(&out).unwrap()) {
            let want = if name.ends_with("conv1.weight") || name.ends_with("conv2.weight") {
                1
            } else if ne.len() == 2 && name.ends_with("weight") {
                wtype
            } else {
                0
            };
            assert_eq!(ttype, want, "{quant}: {name} {ne:?}");
        }
    }
}

#[test]
fn k_quants_refuse_rows_shorter_than_a_super_block() {
    // The synthetic model's rows are 32 values; q4_K packs 256 per super-block.
    let dir = tempfile::tempdir().unwrap();
    write_model_dir(dir.path(), &synthetic_vars());
    let out = dir.path().join("out.bin");
    let err = import_ct2(dir.path(), &out, Quantization::Q4K).unwrap_err();
    assert!(
        matches!(&err, ModelError::BadTensor { reason, .. } if reason.contains("blocks of 256")),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn nonzero_key_bias_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut vars = synthetic_vars();
    let name = "decoder/layer_0/self_attention/linear_0/bias";
    let bias = vars.iter_mut().find(|v| v.0 == name).unwrap();
    bias.3[32 * 4..33 * 4].copy_from_slice(&1.0f32.to_le_bytes());
    write_model_dir(dir.path(), &vars);
    let out = dir.path().join("out.bin");
    let err = import_ct2(dir.path(), &out, Quantization::F16).unwrap_err();
    assert!(
        matches!(&err, ModelError::BadTensor { name: n, .. } if n == name),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn missing_tensor_is_named_and_no_file_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let vars: Vec<Var> = synthetic_vars()
        .into_iter()
        .filter(|v| v.0 != "decoder/layer_0/ffn/linear_1/weight")
        .collect();
    write_model_dir(dir.path(), &vars);
    let out = dir.path().join("out.bin");
    let err = import_ct2(dir.path(), &out, Quantization::F16).unwrap_err();
    assert!(
        matches!(&err, ModelError::MissingTensor { name } if name == "decoder/layer_0/ffn/linear_1/weight"),
        "{err}"
    );
    assert!(!out.exists());
    assert!(!dir.path().join("out.bin.tmp").exists());
}
