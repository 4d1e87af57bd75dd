//! Reader for CTranslate2's `model.bin` (binary versions 4 to 6): the named
//! variables with their shapes, dtypes and raw little-endian data.
//!
//! Layout (CTranslate2 `model_spec.py` `_serialize`): u32 version, string spec
//! name, u32 spec revision, u32 variable count, then per variable: string
//! name, u8 rank, rank x u32 dims, u8 dtype, u32 byte count, raw data; then
//! u32 alias count and (alias, target) string pairs. A string is a u16 length
//! that counts a trailing NUL, the UTF-8 bytes, and the NUL. Nothing is
//! aligned, so values are decoded byte-wise, never by casting the buffer.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use half::{bf16, f16};

use super::ModelError;

/// Element type of a CTranslate2 variable (codes from `model_spec.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl DType {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::BF16,
            _ => return None,
        })
    }

    pub(crate) fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

/// One variable of the model: shape (row-major, outermost first), dtype and
/// where its bytes sit in the file buffer.
#[derive(Debug, Clone)]
pub(crate) struct Variable {
    pub dims: Vec<usize>,
    pub dtype: DType,
    data: Range<usize>,
}

impl Variable {
    pub(crate) fn n_elements(&self) -> usize {
        self.dims.iter().product()
    }
}

/// Decoded tensor values. float16 data is kept as raw bits so an f16 -> f16
/// conversion is a bit-exact copy; everything else is widened to f32.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Values {
    F16(Vec<u16>),
    F32(Vec<f32>),
}

impl Values {
    pub(crate) fn len(&self) -> usize {
        match self {
            Values::F16(v) => v.len(),
            Values::F32(v) => v.len(),
        }
    }

    /// Elements `range` (used to cut fused q/k/v rows apart).
    pub(crate) fn slice(&self, range: Range<usize>) -> Values {
        match self {
            Values::F16(v) => Values::F16(v[range].to_vec()),
            Values::F32(v) => Values::F32(v[range].to_vec()),
        }
    }

    /// f16 -> f32 widening is exact.
    pub(crate) fn to_f32(&self) -> Vec<f32> {
        match self {
            Values::F16(v) => v.iter().map(|&b| f16::from_bits(b).to_f32()).collect(),
            Values::F32(v) => v.clone(),
        }
    }

    /// Rounds f32 to nearest-even, as numpy's `astype(float16)` does.
    pub(crate) fn to_f16_bits(&self) -> Vec<u16> {
        match self {
            Values::F16(v) => v.clone(),
            Values::F32(v) => v.iter().map(|&x| f16::from_f32(x).to_bits()).collect(),
        }
    }
}

/// A parsed `model.bin`, holding the whole file in memory.
pub(crate) struct Ct2Model {
    pub path: PathBuf,
    pub spec_name: String,
    buf: Vec<u8>,
    vars: HashMap<String, Variable>,
}

impl std::fmt::Debug for Ct2Model {
    /// Leaves out the data buffer (hundreds of megabytes).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ct2Model")
            .field("path", &self.path)
            .field("spec_name", &self.spec_name)
            .field("n_variables", &self.vars.len())
            .finish()
    }
}

impl Ct2Model {
    pub(crate) fn open(path: &Path) -> Result<Self, ModelError> {
        let buf = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
        Self::parse(path, buf)
    }

    pub(crate) fn parse(path: &Path, buf: Vec<u8>) -> Result<Self, ModelError> {
        let mut r = Reader {
            buf: &buf,
            pos: 0,
            path,
        };
        let version = r.u32()?;
        if !(4..=6).contains(&version) {
            return Err(ModelError::bad_format(
                path,
                format!("CTranslate2 binary version {version} is not supported (only 4 to 6)"),
            ));
        }
        let spec_name = r.string()?;
        let _revision = r.u32()?;
        let n_vars = r.u32()?;
        let mut vars = HashMap::new();
        for _ in 0..n_vars {
            let name = r.string()?;
            let rank = r.u8()?;
            let dims = (0..rank)
                .map(|_| r.u32().map(|d| d as usize))
                .collect::<Result<Vec<_>, _>>()?;
            let code = r.u8()?;
            let dtype = DType::from_code(code).ok_or_else(|| {
                ModelError::bad_format(
                    path,
                    format!("variable `{name}` has unknown dtype code {code}"),
                )
            })?;
            let n_bytes = r.u32()? as usize;
            let expected = dims
                .iter()
                .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d));
            if expected != Some(n_bytes) {
                return Err(ModelError::bad_format(
                    path,
                    format!("variable `{name}` has {n_bytes} bytes, but its shape {dims:?} and dtype {dtype:?} need {expected:?}"),
                ));
            }
            let data = r.take(n_bytes)?;
            vars.insert(name, Variable { dims, dtype, data });
        }
        // The aliases (only `decoder/projection/weight` in Whisper models)
        // are not needed for ggml, so they are not read.
        Ok(Ct2Model {
            path: path.to_path_buf(),
            spec_name,
            buf,
            vars,
        })
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }

    pub(crate) fn var(&self, name: &str) -> Result<&Variable, ModelError> {
        self.vars
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor {
                name: name.to_string(),
            })
    }

    fn bytes(&self, var: &Variable) -> &[u8] {
        &self.buf[var.data.clone()]
    }

    /// A rank-0 integer (or integral float) scalar such as `encoder/num_heads`.
    pub(crate) fn scalar_int(&self, name: &str) -> Result<i64, ModelError> {
        let var = self.var(name)?;
        if var.n_elements() != 1 {
            return Err(ModelError::bad_tensor(
                name,
                format!("expected a scalar, found shape {:?}", var.dims),
            ));
        }
        let b = self.bytes(var);
        Ok(match var.dtype {
            DType::I8 => i64::from(b[0] as i8),
            DType::I16 => i64::from(i16::from_le_bytes([b[0], b[1]])),
            DType::I32 => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            DType::F32 | DType::F16 | DType::BF16 => {
                let v = decode_float(b, var.dtype)[0];
                if v.fract() != 0.0 {
                    return Err(ModelError::bad_tensor(
                        name,
                        format!("expected an integer, found {v}"),
                    ));
                }
                v as i64
            }
        })
    }

    /// The values of a weight or bias. Integer (quantized) weights are
    /// dequantized with their sibling `<name>_scale` (`weight` ->
    /// `weight_scale`), as CTranslate2 does: `w = q / scale`, the scale
    /// broadcast over axis 1.
    pub(crate) fn values(&self, name: &str) -> Result<Values, ModelError> {
        let var = self.var(name)?;
        let bytes = self.bytes(var);
        match var.dtype {
            DType::F16 => Ok(Values::F16(
                bytes
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect(),
            )),
            DType::F32 | DType::BF16 => Ok(Values::F32(decode_float(bytes, var.dtype))),
            DType::I8 | DType::I16 => {
                let scale_name = format!("{name}_scale");
                let scale_var = self.vars.get(&scale_name).ok_or_else(|| {
                    ModelError::bad_tensor(
                        name,
                        format!(
                            "is {:?} but has no `{scale_name}` to dequantize it",
                            var.dtype
                        ),
                    )
                })?;
                if !matches!(scale_var.dtype, DType::F32 | DType::F16 | DType::BF16) {
                    return Err(ModelError::bad_tensor(
                        &scale_name,
                        "a scale must be a float tensor",
                    ));
                }
                let scale = self.values(&scale_name)?.to_f32();
                let q = decode_int(bytes, var.dtype);
                dequantize(name, &q, &var.dims, &scale, &scale_var.dims).map(Values::F32)
            }
            DType::I32 => Err(ModelError::bad_tensor(
                name,
                "int32 weights are not supported",
            )),
        }
    }
}

/// Decodes little-endian float32 / float16 / bfloat16 bytes to f32.
pub(crate) fn decode_float(bytes: &[u8], dtype: DType) -> Vec<f32> {
    match dtype {
        DType::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        DType::F16 => bytes
            .chunks_exact(2)
            .map(|c| f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
            .collect(),
        // bfloat16 is the top half of an f32, so widening is exact.
        DType::BF16 => bytes
            .chunks_exact(2)
            .map(|c| bf16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
            .collect(),
        DType::I8 | DType::I16 | DType::I32 => decode_int(bytes, dtype),
    }
}

fn decode_int(bytes: &[u8], dtype: DType) -> Vec<f32> {
    match dtype {
        DType::I8 => bytes.iter().map(|&b| f32::from(b as i8)).collect(),
        DType::I16 => bytes
            .chunks_exact(2)
            .map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])))
            .collect(),
        DType::I32 => bytes
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
            .collect(),
        DType::F32 | DType::F16 | DType::BF16 => decode_float(bytes, dtype),
    }
}

/// `w[a, b, r] = q[a, b, r] / scale[a, r]`: CTranslate2 quantizes with one
/// scale per output row (per row and kernel tap for 3-D convolutions), the
/// scale's shape being the weight's shape with axis 1 removed.
pub(crate) fn dequantize(
    name: &str,
    q: &[f32],
    dims: &[usize],
    scale: &[f32],
    scale_dims: &[usize],
) -> Result<Vec<f32>, ModelError> {
    if dims.len() < 2 {
        return Err(ModelError::bad_tensor(
            name,
            "a quantized weight must have at least 2 dimensions",
        ));
    }
    let mut expected_scale_dims = dims.to_vec();
    expected_scale_dims.remove(1);
    if scale_dims != expected_scale_dims.as_slice() {
        return Err(ModelError::bad_tensor(
            name,
            format!("weight shape {dims:?} needs a scale of shape {expected_scale_dims:?}, found {scale_dims:?}"),
        ));
    }
    let (outer, mid) = (dims[0], dims[1]);
    let inner: usize = dims[2..].iter().product();
    let mut out = Vec::with_capacity(q.len());
    for a in 0..outer {
        for b in 0..mid {
            for r in 0..inner {
                let s = scale[a * inner + r];
                out.push(q[(a * mid + b) * inner + r] / s);
            }
        }
    }
    Ok(out)
}

/// Bounds-checked little-endian cursor over the file buffer.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<Range<usize>, ModelError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let range = self.pos..end;
                self.pos = end;
                Ok(range)
            }
            None => Err(ModelError::bad_format(
                self.path,
                format!(
                    "truncated: needed {n} bytes at offset {}, file has {}",
                    self.pos,
                    self.buf.len()
                ),
            )),
        }
    }

    fn u8(&mut self) -> Result<u8, ModelError> {
        let r = self.take(1)?;
        Ok(self.buf[r.start])
    }

    fn u16(&mut self) -> Result<u16, ModelError> {
        let r = self.take(2)?;
        Ok(u16::from_le_bytes([
            self.buf[r.start],
            self.buf[r.start + 1],
        ]))
    }

    fn u32(&mut self) -> Result<u32, ModelError> {
        let r = self.take(4)?;
        let b = &self.buf[r];
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// u16 length (counting the trailing NUL), bytes, NUL.
    fn string(&mut self) -> Result<String, ModelError> {
        let at = self.pos;
        let len = self.u16()? as usize;
        let r = self.take(len)?;
        let bytes = &self.buf[r];
        match bytes.split_last() {
            Some((0, text)) => String::from_utf8(text.to_vec()).map_err(|_| {
                ModelError::bad_format(self.path, format!("string at offset {at} is not UTF-8"))
            }),
            _ => Err(ModelError::bad_format(
                self.path,
                format!("string at offset {at} does not end with a NUL"),
            )),
        }
    }
}

/// Builds a model.bin in memory: (name, dims, dtype code, raw data) per
/// variable, plus the one alias Whisper models carry.
#[cfg(test)]
pub(crate) fn model_bin(vars: &[(&str, &[u32], u8, Vec<u8>)]) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }
    let mut out = Vec::new();
    out.extend_from_slice(&6u32.to_le_bytes());
    string(&mut out, "WhisperSpec");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(vars.len() as u32).to_le_bytes());
    for (name, dims, code, data) in vars {
        string(&mut out, name);
        out.push(dims.len() as u8);
        for d in *dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.push(*code);
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    out.extend_from_slice(&1u32.to_le_bytes());
    string(&mut out, "decoder/projection/weight");
    string(&mut out, "decoder/embeddings/weight");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: Vec<u8>) -> Result<Ct2Model, ModelError> {
        Ct2Model::parse(Path::new("model.bin"), bytes)
    }

    #[test]
    fn reads_float_dtypes_and_scalars() {
        let f32s: Vec<u8> = [1.5f32, -2.25]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let f16s: Vec<u8> = [0.5f32, -3.0]
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_bits().to_le_bytes())
            .collect();
        // bfloat16 of 1.0 is 0x3F80 and of -0.375 is 0xBEC0.
        let bf16s: Vec<u8> = [0x3F80u16, 0xBEC0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let m = parse(model_bin(&[
            ("a", &[2], 0, f32s),
            ("b", &[1, 2], 4, f16s),
            ("c", &[2], 5, bf16s),
            ("encoder/num_heads", &[], 2, 8i16.to_le_bytes().to_vec()),
            ("decoder/activation", &[], 1, vec![3]),
        ]))
        .unwrap();
        assert_eq!(m.spec_name, "WhisperSpec");
        assert_eq!(m.values("a").unwrap(), Values::F32(vec![1.5, -2.25]));
        let b = m.values("b").unwrap();
        assert!(matches!(b, Values::F16(_)));
        assert_eq!(b.to_f32(), vec![0.5, -3.0]);
        assert_eq!(m.values("c").unwrap(), Values::F32(vec![1.0, -0.375]));
        assert_eq!(m.var("b").unwrap().dims, vec![1, 2]);
        assert_eq!(m.scalar_int("encoder/num_heads").unwrap(), 8);
        assert_eq!(m.scalar_int("decoder/activation").unwrap(), 3);
        assert!(
            matches!(m.values("zzz"), Err(ModelError::MissingTensor { name }) if name == "zzz")
        );
    }

    #[test]
    fn dequantizes_int8_per_output_row() {
        // 2 x 3 int8 weight, one scale per row: w = q / scale.
        let q: Vec<u8> = [127i8, -64, 0, 10, 20, -30]
            .iter()
            .map(|&v| v as u8)
            .collect();
        let scale: Vec<u8> = [127.0f32, 10.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let m = parse(model_bin(&[
            ("l/weight", &[2, 3], 1, q),
            ("l/weight_scale", &[2], 0, scale),
        ]))
        .unwrap();
        let w = m.values("l/weight").unwrap().to_f32();
        let expected = [1.0, -64.0 / 127.0, 0.0, 1.0, 2.0, -3.0];
        for (got, want) in w.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{w:?}");
        }
    }

    #[test]
    fn dequantizes_3d_with_scale_per_row_and_tap() {
        // [out=1, in=2, k=2], scale [1, 2].
        let q = [2.0, 4.0, 6.0, 8.0];
        let w = dequantize("conv", &q, &[1, 2, 2], &[2.0, 4.0], &[1, 2]).unwrap();
        assert_eq!(w, vec![1.0, 1.0, 3.0, 2.0]);
        assert!(dequantize("conv", &q, &[1, 2, 2], &[2.0], &[1]).is_err());
    }

    #[test]
    fn int8_without_scale_is_an_error_naming_the_tensor() {
        let m = parse(model_bin(&[("l/weight", &[1, 2], 1, vec![1, 2])])).unwrap();
        let err = m.values("l/weight").unwrap_err().to_string();
        assert!(err.contains("l/weight_scale"), "{err}");
    }

    #[test]
    fn f32_to_f16_rounds_to_nearest_even() {
        // 1 + 2^-11 is exactly halfway between 1.0 and the next f16; even wins.
        let v = Values::F32(vec![
            1.0 + f32::powi(2.0, -11),
            1.0 + 3.0 * f32::powi(2.0, -11),
        ]);
        assert_eq!(v.to_f16_bits(), vec![0x3C00, 0x3C02]);
    }

    #[test]
    fn rejects_bad_sizes_and_truncation() {
        let err = parse(model_bin(&[("a", &[3], 0, vec![0; 8])])).unwrap_err();
        assert!(err.to_string().contains("variable `a`"), "{err}");
        let mut bytes = model_bin(&[("a", &[2], 0, vec![0; 8])]);
        bytes.truncate(30);
        assert!(matches!(parse(bytes), Err(ModelError::BadFormat { .. })));
        let mut v7 = model_bin(&[]);
        v7[0] = 7;
        assert!(parse(v7).unwrap_err().to_string().contains("version 7"));
    }
}
