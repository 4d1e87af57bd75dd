//! Converts a Silero voice-activity model from ONNX (as faster-whisper ships it,
//! `faster_whisper/assets/silero_vad_v6.onnx`) to whisper.cpp's ggml VAD format.
//!
//! The network: an STFT as a convolution (258 filters of 256 samples), four 1-D
//! convolutions, one LSTM cell of 128 and a 1x1 convolution to a speech probability per
//! 512 samples at 16 kHz. ONNX orders the LSTM's gates input, output, forget, cell;
//! whisper.cpp (as PyTorch) input, forget, cell, output: the importer reorders them.

use super::ggml::{MAGIC as GGML_MAGIC, TYPE_F16, TYPE_F32};
use super::onnx::{self, Graph, Tensor};
use super::ModelError;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What `import_silero` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SileroSummary {
    pub out: PathBuf,
    /// Tensors written (15).
    pub n_tensors: usize,
    pub bytes: u64,
}

/// Samples per probability, and the context whisper.cpp's graph is built for.
const N_WINDOW: i32 = 512;
const N_CONTEXT: i32 = 64;
const HIDDEN: usize = 128;

/// One tensor as whisper.cpp's VAD loader wants it: its name, ggml dimensions
/// (innermost first), storage type and values.
struct Out {
    name: &'static str,
    ne: Vec<usize>,
    ttype: i32,
    data: Vec<f32>,
}

/// Converts the Silero ONNX model at `onnx_path` to a ggml VAD file at `out` (written to
/// `out` + `.tmp`, then renamed into place).
pub fn import_silero(onnx_path: &Path, out: &Path) -> Result<SileroSummary, ModelError> {
    let buf = std::fs::read(onnx_path).map_err(|e| ModelError::io(onnx_path, e))?;
    let graph = onnx::parse_model(&buf).map_err(|r| ModelError::bad_format(onnx_path, r))?;
    let (layers, tensors) = plan(&graph).map_err(|r| ModelError::bad_format(onnx_path, r))?;

    let mut tmp_name = out.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let bytes = encode(&layers, &tensors);
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(&bytes)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, out)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(ModelError::io(out, e));
    }
    Ok(SileroSummary {
        out: out.to_path_buf(),
        n_tensors: tensors.len(),
        bytes: bytes.len() as u64,
    })
}

/// (in channels, out channels, kernel) of each encoder convolution.
type Layer = (usize, usize, usize);

/// Finds the model's weights by the graph's structure (convolutions in order, the LSTM's
/// inputs), checks their shapes, and lays them out for whisper.cpp.
fn plan(g: &Graph) -> Result<(Vec<Layer>, Vec<Out>), String> {
    let tensor = |name: &str| -> Result<&Tensor, String> {
        g.tensors
            .get(name)
            .ok_or_else(|| format!("weights `{name}` are not in the file"))
    };
    let input = |node: &onnx::Node, i: usize| -> Result<String, String> {
        node.inputs
            .get(i)
            .filter(|s| !s.is_empty())
            .cloned()
            .ok_or_else(|| format!("a {} node has no input {i}", node.op_type))
    };
    let convs: Vec<&onnx::Node> = g.nodes.iter().filter(|n| n.op_type == "Conv").collect();
    let lstm = g
        .nodes
        .iter()
        .find(|n| n.op_type == "LSTM")
        .ok_or("no LSTM in the graph: not a Silero VAD model")?;
    if convs.len() != 6 {
        return Err(format!(
            "{} convolutions in the graph; a Silero VAD model (v5, v6) has 6",
            convs.len()
        ));
    }
    let mut out = Vec::new();

    let basis = tensor(&input(convs[0], 1)?)?;
    expect_dims(basis, &[258, 1, 256], "STFT basis")?;
    out.push(f16("_model.stft.forward_basis_buffer", basis));

    const ENC: [(&str, &str); 4] = [
        (
            "_model.encoder.0.reparam_conv.weight",
            "_model.encoder.0.reparam_conv.bias",
        ),
        (
            "_model.encoder.1.reparam_conv.weight",
            "_model.encoder.1.reparam_conv.bias",
        ),
        (
            "_model.encoder.2.reparam_conv.weight",
            "_model.encoder.2.reparam_conv.bias",
        ),
        (
            "_model.encoder.3.reparam_conv.weight",
            "_model.encoder.3.reparam_conv.bias",
        ),
    ];
    let mut layers = Vec::new();
    let mut channels = 129;
    for (conv, (w_name, b_name)) in convs[1..5].iter().zip(ENC) {
        let w = tensor(&input(conv, 1)?)?;
        let b = tensor(&input(conv, 2)?)?;
        let [cout, cin, k] = w.dims[..] else {
            return Err(format!("encoder weights of dimensions {:?}", w.dims));
        };
        if cin != channels || k != 3 || b.dims != [cout] {
            return Err(format!(
                "encoder layer {w_name}: weights {:?}, bias {:?} after {channels} channels",
                w.dims, b.dims
            ));
        }
        layers.push((cin, cout, k));
        out.push(f16(w_name, w));
        out.push(f32(b_name, b));
        channels = cout;
    }
    if channels != HIDDEN {
        return Err(format!(
            "the encoder ends with {channels} channels, not {HIDDEN}"
        ));
    }

    let w = tensor(&input(lstm, 1)?)?;
    let r = tensor(&input(lstm, 2)?)?;
    let b = tensor(&input(lstm, 3)?)?;
    expect_dims(w, &[1, 4 * HIDDEN, HIDDEN], "LSTM input weights")?;
    expect_dims(r, &[1, 4 * HIDDEN, HIDDEN], "LSTM hidden weights")?;
    expect_dims(b, &[1, 8 * HIDDEN], "LSTM biases")?;
    let gates = |name: &'static str, x: &[f32], cols: usize| Out {
        name,
        ne: if cols == 1 {
            vec![4 * HIDDEN]
        } else {
            vec![cols, 4 * HIDDEN]
        },
        ttype: TYPE_F32,
        data: onnx_to_torch_gates(x, cols),
    };
    out.push(gates("_model.decoder.rnn.weight_ih", &w.data, HIDDEN));
    out.push(gates("_model.decoder.rnn.weight_hh", &r.data, HIDDEN));
    out.push(gates(
        "_model.decoder.rnn.bias_ih",
        &b.data[..4 * HIDDEN],
        1,
    ));
    out.push(gates(
        "_model.decoder.rnn.bias_hh",
        &b.data[4 * HIDDEN..],
        1,
    ));

    let last = convs[5];
    let fw = tensor(&input(last, 1)?)?;
    let fb = tensor(&input(last, 2)?)?;
    expect_dims(fw, &[1, HIDDEN, 1], "final convolution")?;
    expect_dims(fb, &[1], "final bias")?;
    out.push(Out {
        name: "_model.decoder.decoder.2.weight",
        ne: vec![HIDDEN, 1],
        ttype: TYPE_F16,
        data: fw.data.clone(),
    });
    out.push(f32("_model.decoder.decoder.2.bias", fb));
    Ok((layers, out))
}

fn expect_dims(t: &Tensor, dims: &[usize], what: &str) -> Result<(), String> {
    if t.dims == dims {
        Ok(())
    } else {
        Err(format!(
            "{what} of dimensions {:?}, expected {dims:?}",
            t.dims
        ))
    }
}

fn f16(name: &'static str, t: &Tensor) -> Out {
    Out {
        name,
        ne: t.dims.iter().rev().copied().collect(),
        ttype: TYPE_F16,
        data: t.data.clone(),
    }
}

fn f32(name: &'static str, t: &Tensor) -> Out {
    Out {
        ttype: TYPE_F32,
        ..f16(name, t)
    }
}

/// Rows of four gate blocks (`cols` values per row) from ONNX's order (i, o, f, c) to
/// PyTorch's (i, f, c, o).
fn onnx_to_torch_gates(x: &[f32], cols: usize) -> Vec<f32> {
    let block = HIDDEN * cols;
    [0, 2, 3, 1]
        .iter()
        .flat_map(|&g| &x[g * block..(g + 1) * block])
        .copied()
        .collect()
}

/// The whole file: header, hyper-parameters, tensors.
fn encode(layers: &[Layer], tensors: &[Out]) -> Vec<u8> {
    let mut b = Vec::new();
    let i32s = |b: &mut Vec<u8>, v: &[i32]| b.extend(v.iter().flat_map(|x| x.to_le_bytes()));
    b.extend(GGML_MAGIC.to_le_bytes());
    let kind = b"silero-16k";
    i32s(&mut b, &[kind.len() as i32]);
    b.extend(kind);
    i32s(&mut b, &[6, 0, 0, N_WINDOW, N_CONTEXT, layers.len() as i32]);
    for &(cin, cout, k) in layers {
        i32s(&mut b, &[cin as i32, cout as i32, k as i32]);
    }
    let h = HIDDEN as i32;
    i32s(&mut b, &[h, h, h, 1]);
    for t in tensors {
        i32s(&mut b, &[t.ne.len() as i32, t.name.len() as i32, t.ttype]);
        i32s(&mut b, &t.ne.iter().map(|&n| n as i32).collect::<Vec<_>>());
        b.extend(t.name.as_bytes());
        if t.ttype == TYPE_F16 {
            b.extend(
                t.data
                    .iter()
                    .flat_map(|&v| half::f16::from_f32(v).to_bits().to_le_bytes()),
            );
        } else {
            b.extend(t.data.iter().flat_map(|v| v.to_le_bytes()));
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_move_from_onnx_order_to_torch_order() {
        // One value per gate row block, cols = 1: i, o, f, c -> i, f, c, o.
        let x: Vec<f32> = (0..4 * HIDDEN).map(|i| (i / HIDDEN) as f32).collect();
        let y = onnx_to_torch_gates(&x, 1);
        let firsts: Vec<f32> = (0..4).map(|g| y[g * HIDDEN]).collect();
        assert_eq!(firsts, [0.0, 2.0, 3.0, 1.0]);
        assert_eq!(y.len(), x.len());
    }

    #[test]
    fn a_graph_without_silero_layers_is_refused() {
        let g = Graph::default();
        let err = plan(&g).err().unwrap_or_default();
        assert!(err.contains("no LSTM"), "{err}");
    }
}
