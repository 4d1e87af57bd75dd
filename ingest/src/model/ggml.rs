//! Writer (and header reader) for whisper.cpp's legacy ggml model file: magic,
//! 11 i32 hyper-parameters, the mel filterbank, the vocabulary, then tensors
//! until end of file. Little-endian, no padding anywhere.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use super::convert::{self, Class, Plan};
use super::ct2::Ct2Model;
use super::quant;
use super::{mel, ModelError, Quantization};
use whisper_rs_sys as sys;

/// `ggml` in ASCII, read as a little-endian u32.
pub(crate) const MAGIC: u32 = 0x6767_6d6c;

/// whisper.cpp's `quantize` stores `GGML_QNT_VERSION * 1000 + ftype` and the
/// loader takes `ftype % 1000`; writing the same value keeps a Q8_0 import
/// byte-identical to quantizing the F16 import with whisper.cpp's tool.
const QNT_VERSION: i32 = 2;
const QNT_VERSION_FACTOR: i32 = 1000;

/// Tensor element types (ggml `enum ggml_type`) the writer uses for non-weights.
pub(crate) const TYPE_F32: i32 = 0;
pub(crate) const TYPE_F16: i32 = 1;

/// How a storage choice is written: the header's `ftype` (ggml `enum ggml_ftype`, from the
/// whisper.cpp bindings); the weights' tensor type and block follow from it through ggml's
/// own tables, as whisper.cpp's loader derives them.
struct Layout {
    ftype: sys::ggml_ftype,
}

impl Layout {
    fn new(q: Quantization) -> Layout {
        let ftype = match q {
            Quantization::F16 => sys::ggml_ftype_GGML_FTYPE_MOSTLY_F16,
            Quantization::Q4_0 => sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q4_0,
            Quantization::Q8_0 => sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q8_0,
            Quantization::Q5_0 => sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q5_0,
            Quantization::Q5_1 => sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q5_1,
            Quantization::Q4K => sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q4_K,
            Quantization::Q5K => sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q5_K,
            Quantization::Q6K => sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q6_K,
            Quantization::Iq4Nl => sys::ggml_ftype_GGML_FTYPE_MOSTLY_IQ4_NL,
        };
        Layout { ftype }
    }

    /// The 2-D weights' tensor type (ggml `enum ggml_type`).
    fn ttype(&self) -> sys::ggml_type {
        // SAFETY: a table lookup on one of ggml's own ftype values.
        unsafe { sys::ggml_ftype_to_ggml_type(self.ftype) }
    }

    /// Values per quantization block of the weights' type (1 for f16).
    fn block(&self) -> usize {
        // SAFETY: a table lookup on a valid ggml type id.
        unsafe { sys::ggml_blck_size(self.ttype()) as usize }
    }
}

/// The header of a whisper ggml file, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hparams {
    pub n_vocab: i32,
    pub n_audio_ctx: i32,
    pub n_audio_state: i32,
    pub n_audio_head: i32,
    pub n_audio_layer: i32,
    pub n_text_ctx: i32,
    pub n_text_state: i32,
    pub n_text_head: i32,
    pub n_text_layer: i32,
    pub n_mels: i32,
    /// As stored: 1 for f16; for quantized files the quantization version
    /// times 1000 plus the ggml ftype (2007 for q8_0).
    pub ftype: i32,
}

impl Hparams {
    fn to_array(self) -> [i32; 11] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            self.ftype,
        ]
    }

    fn from_array(a: [i32; 11]) -> Self {
        Hparams {
            n_vocab: a[0],
            n_audio_ctx: a[1],
            n_audio_state: a[2],
            n_audio_head: a[3],
            n_audio_layer: a[4],
            n_text_ctx: a[5],
            n_text_state: a[6],
            n_text_head: a[7],
            n_text_layer: a[8],
            n_mels: a[9],
            ftype: a[10],
        }
    }

    /// The ggml file type without the quantization version (1 = f16,
    /// 7 = q8_0), as whisper.cpp interprets it.
    pub fn file_type(&self) -> i32 {
        self.ftype % QNT_VERSION_FACTOR
    }
}

/// Reads the magic and hyper-parameters of a ggml file.
pub fn read_hparams(path: &Path) -> Result<Hparams, ModelError> {
    let mut head = [0u8; 48];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .map_err(|e| ModelError::io(path, e))?;
    let word = |i: usize| {
        [
            head[4 * i],
            head[4 * i + 1],
            head[4 * i + 2],
            head[4 * i + 3],
        ]
    };
    if u32::from_le_bytes(word(0)) != MAGIC {
        return Err(ModelError::bad_format(path, "no ggml magic at the start"));
    }
    let mut a = [0i32; 11];
    for (i, v) in a.iter_mut().enumerate() {
        *v = i32::from_le_bytes(word(i + 1));
    }
    Ok(Hparams::from_array(a))
}

/// Counts bytes so the summary can report the file size without a stat.
struct Out<W: Write> {
    w: W,
    n: u64,
}

impl<W: Write> Out<W> {
    fn bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.n += b.len() as u64;
        self.w.write_all(b)
    }

    fn i32(&mut self, v: i32) -> std::io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
}

/// Converts a `usize` count to the file's i32 fields.
fn to_i32(v: usize, what: &str) -> Result<i32, ModelError> {
    i32::try_from(v)
        .map_err(|_| ModelError::bad_tensor(what, format!("{v} does not fit in an i32 field")))
}

/// Writes the whole ggml file to `path`; returns the header as written and
/// the file size.
pub(crate) fn write_file(
    path: &Path,
    model: &Ct2Model,
    plan: &Plan,
    filters: &[f32],
    tokens: &[Vec<u8>],
    quant: Quantization,
) -> Result<(Hparams, u64), ModelError> {
    let io = |e| ModelError::io(path, e);
    let file = File::create(path).map_err(io)?;
    let mut out = Out {
        w: BufWriter::with_capacity(1 << 20, file),
        n: 0,
    };

    let mut hparams = plan.hparams;
    let layout = Layout::new(quant);
    hparams.ftype = match quant {
        Quantization::F16 => layout.ftype,
        _ => QNT_VERSION * QNT_VERSION_FACTOR + layout.ftype,
    };
    out.i32(MAGIC as i32).map_err(io)?;
    for v in hparams.to_array() {
        out.i32(v).map_err(io)?;
    }

    out.i32(hparams.n_mels).map_err(io)?;
    out.i32(mel::N_BINS as i32).map_err(io)?;
    let mel_bytes: Vec<u8> = filters.iter().flat_map(|v| v.to_le_bytes()).collect();
    out.bytes(&mel_bytes).map_err(io)?;

    out.i32(to_i32(tokens.len(), "vocabulary")?).map_err(io)?;
    for token in tokens {
        out.bytes(&(token.len() as u32).to_le_bytes()).map_err(io)?;
        out.bytes(token).map_err(io)?;
    }

    let mut data = Vec::new();
    for t in &plan.tensors {
        let values = convert::load(model, t)?;
        let quantize = quant != Quantization::F16 && t.class == Class::Weight && t.ne.len() == 2;
        if quantize && t.ne[0] % layout.block() != 0 {
            return Err(ModelError::bad_tensor(
                &t.name,
                format!(
                    "rows of {} values cannot be cut into {quant} blocks of {}",
                    t.ne[0],
                    layout.block()
                ),
            ));
        }
        data.clear();
        let ttype = match t.class {
            Class::F32 => {
                data.extend(values.to_f32().iter().flat_map(|v| v.to_le_bytes()));
                TYPE_F32
            }
            Class::Weight if quantize => {
                let x = values.to_f32();
                match quant {
                    Quantization::Q8_0 => quant::quantize_q8_0(&x, &mut data),
                    Quantization::Q4_0 => quant::quantize_q4_0(&x, &mut data),
                    _ => quant::quantize_with_ggml(layout.ttype(), &x, t.ne[0], &mut data),
                }
                layout.ttype() as i32
            }
            Class::Weight => {
                data.extend(values.to_f16_bits().iter().flat_map(|v| v.to_le_bytes()));
                TYPE_F16
            }
        };
        out.i32(to_i32(t.ne.len(), &t.name)?).map_err(io)?;
        out.i32(to_i32(t.name.len(), &t.name)?).map_err(io)?;
        out.i32(ttype).map_err(io)?;
        for &n in &t.ne {
            out.i32(to_i32(n, &t.name)?).map_err(io)?;
        }
        out.bytes(t.name.as_bytes()).map_err(io)?;
        out.bytes(&data).map_err(io)?;
    }

    let n = out.n;
    let file = out.w.into_inner().map_err(|e| io(e.into_error()))?;
    // The rename that follows must not publish a file whose data is still
    // only in the page cache if the machine goes down.
    file.sync_all().map_err(io)?;
    Ok((hparams, n))
}
