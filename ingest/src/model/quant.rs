//! ggml quantization of weight rows: q8_0 and q4_0 here in Rust, byte-identical to ggml's
//! `quantize_row_*_ref` (the path whisper.cpp's `quantize` tool writes files with); the
//! other types through ggml's own `ggml_quantize_chunk`, linked in with whisper.cpp.
//!
//! A q8_0 block is 32 consecutive values of a row, stored as `{ f16 d; i8 qs[32] }`
//! (34 bytes) with `d = max|x| / 127` and `qs = round(x * (1 / d))`.

use half::f16;

/// Values per q8_0 block.
pub(crate) const QK8_0: usize = 32;
/// Bytes per q8_0 block: the f16 scale plus 32 int8 values.
pub(crate) const BLOCK_BYTES: usize = 2 + QK8_0;

/// Quantizes `x` (a whole number of blocks; rows are laid end to end and
/// every row length is a multiple of 32, so blocks never straddle rows) and
/// appends the blocks to `out`.
pub(crate) fn quantize_q8_0(x: &[f32], out: &mut Vec<u8>) {
    debug_assert_eq!(x.len() % QK8_0, 0);
    out.reserve(x.len() / QK8_0 * BLOCK_BYTES);
    for block in x.chunks_exact(QK8_0) {
        // Same comparison as ggml's MAX(amax, fabsf(v)).
        let amax = block
            .iter()
            .fold(0.0f32, |m, v| if m > v.abs() { m } else { v.abs() });
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_bits().to_le_bytes());
        // C's roundf rounds half away from zero, as f32::round does; the
        // result is within [-127, 127], so the cast is exact.
        out.extend(block.iter().map(|&v| (v * id).round() as i8 as u8));
    }
}

/// Quantizes `x` to ggml q4_0 as `quantize_row_q4_0_ref` does: blocks of 32 stored as
/// `{ f16 d; u8 qs[16] }` (18 bytes), `d = max / -8` where `max` is the value of largest
/// magnitude, value `j` in the low nibble of byte `j` and value `j + 16` in its high nibble.
pub(crate) fn quantize_q4_0(x: &[f32], out: &mut Vec<u8>) {
    debug_assert_eq!(x.len() % QK8_0, 0);
    out.reserve(x.len() / QK8_0 * 18);
    for block in x.chunks_exact(QK8_0) {
        let (mut amax, mut max) = (0.0f32, 0.0f32);
        for &v in block {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_bits().to_le_bytes());
        let q = |v: f32| ((v * id + 8.5) as i8).min(15) as u8;
        out.extend((0..QK8_0 / 2).map(|j| q(block[j]) | (q(block[j + QK8_0 / 2]) << 4)));
    }
}

/// Quantizes `x` (whole rows of `per_row` values, `per_row` a multiple of the type's block
/// length, which the caller checks) to ggml type `ttype` with ggml's own quantizer, and
/// appends the rows to `out`.
pub(crate) fn quantize_with_ggml(
    ttype: whisper_rs_sys::ggml_type,
    x: &[f32],
    per_row: usize,
    out: &mut Vec<u8>,
) {
    if per_row == 0 || x.is_empty() {
        return;
    }
    let rows = x.len() / per_row;
    debug_assert_eq!(rows * per_row, x.len());
    // SAFETY: plain arithmetic on a valid ggml type id.
    let row_bytes = unsafe { whisper_rs_sys::ggml_row_size(ttype, per_row as i64) };
    let start = out.len();
    out.resize(start + rows * row_bytes, 0);
    // SAFETY: `x` holds `rows * per_row` floats, `out[start..]` has room for `rows` rows of
    // this type, `per_row` is a multiple of the block length (checked by the caller, so
    // ggml's assertions hold), and none of the types used needs an importance matrix.
    let written = unsafe {
        whisper_rs_sys::ggml_quantize_chunk(
            ttype,
            x.as_ptr(),
            out[start..].as_mut_ptr().cast(),
            0,
            rows as i64,
            per_row as i64,
            std::ptr::null(),
        )
    };
    debug_assert_eq!(written, rows * row_bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_0_block_layout_and_nibbles() {
        // The largest magnitude is -8, so d = 1 and a value v is stored as v + 8.
        let mut x = vec![0.0f32; 32];
        x[0] = -8.0;
        x[1] = 7.0;
        x[16] = 3.0;
        x[17] = -2.6;
        let mut out = Vec::new();
        quantize_q4_0(&x, &mut out);
        assert_eq!(out.len(), 18);
        assert_eq!(
            f16::from_bits(u16::from_le_bytes([out[0], out[1]])).to_f32(),
            1.0
        );
        // Byte j holds value j (low nibble) and value j + 16 (high nibble).
        assert_eq!(out[2], 11 << 4);
        assert_eq!(out[3], 15 | (5 << 4));
        assert_eq!(out[4], 8 | (8 << 4));
    }

    fn dequantize(bytes: &[u8]) -> Vec<f32> {
        bytes
            .chunks_exact(BLOCK_BYTES)
            .flat_map(|b| {
                let d = f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
                b[2..].iter().map(move |&q| f32::from(q as i8) * d)
            })
            .collect()
    }

    #[test]
    fn block_layout_scale_and_rounding() {
        // amax 127 gives d = 1 and id = 1, so the rounding is visible exactly.
        let mut x = vec![0.0f32; 32];
        x[0] = 127.0;
        x[1] = -127.0;
        x[2] = 0.5; // halves round away from zero, unlike round-half-even
        x[3] = -0.5;
        x[4] = 2.5;
        x[5] = 63.7;
        let mut out = Vec::new();
        quantize_q8_0(&x, &mut out);
        assert_eq!(out.len(), BLOCK_BYTES);
        let d = f16::from_bits(u16::from_le_bytes([out[0], out[1]]));
        assert_eq!(d, f16::ONE);
        let qs: Vec<i8> = out[2..].iter().map(|&b| b as i8).collect();
        assert_eq!(&qs[..6], &[127, -127, 1, -1, 3, 64]);
        assert!(qs[6..].iter().all(|&q| q == 0));
    }

    #[test]
    fn zero_block_has_zero_scale() {
        let mut out = Vec::new();
        quantize_q8_0(&[0.0; 64], &mut out);
        assert_eq!(out, vec![0u8; 2 * BLOCK_BYTES]);
    }

    #[test]
    fn round_trip_error_is_within_half_a_step_per_block() {
        let x: Vec<f32> = (0..256)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013)
            .collect();
        let mut out = Vec::new();
        quantize_q8_0(&x, &mut out);
        assert_eq!(out.len(), 8 * BLOCK_BYTES);
        let y = dequantize(&out);
        for (block_x, block_y) in x.chunks(32).zip(y.chunks(32)) {
            let amax = block_x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            // Half a quantization step, plus the f16 rounding of d.
            let tol = amax / 127.0 * 0.5 + amax * 1e-3;
            for (a, b) in block_x.iter().zip(block_y) {
                assert!((a - b).abs() <= tol, "{a} vs {b}");
            }
        }
    }
}
