//! The tensor mapping from a CTranslate2 Whisper spec to whisper.cpp's ggml
//! names: which CT2 variable (or which rows of a fused one) becomes which
//! ggml tensor, with what shape and storage class, in openai's state_dict
//! order (the order whisper.cpp's own converter writes).
//!
//! CTranslate2 fuses q/k/v (self-attention) and k/v (cross-attention) along
//! the output rows and adds an all-zero key bias; whisper.cpp wants them
//! separate and has no key bias, so the plan splits rows and drops it.

use std::collections::BTreeSet;

use super::ct2::{Ct2Model, Values};
use super::ggml::Hparams;
use super::ModelError;

/// How a tensor is stored, before the quantization choice is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Always f32: 1-D tensors, the conv biases and positional embeddings
    /// (whisper.cpp allocates these as f32 whatever the file type).
    F32,
    /// A weight: f16 in an F16 file; a 2-D weight is q8_0 in a Q8_0 file
    /// (3-D conv weights stay f16, as whisper.cpp's quantizer leaves them).
    Weight,
}

/// Which CT2 data a ggml tensor holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Source {
    pub var: String,
    /// `Some((part, parts))`: the `part`-th of `parts` equal row blocks of a
    /// fused tensor.
    pub rows: Option<(usize, usize)>,
}

/// One tensor of the output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutTensor {
    pub name: String,
    /// ggml dims, innermost first (the reverse of the numpy shape).
    pub ne: Vec<usize>,
    pub class: Class,
    pub source: Source,
}

impl OutTensor {
    pub(crate) fn n_elements(&self) -> usize {
        self.ne.iter().product()
    }
}

/// The header values and the ordered tensor list of the ggml file.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub hparams: Hparams,
    pub tensors: Vec<OutTensor>,
}

impl Plan {
    pub(crate) fn new(model: &Ct2Model) -> Result<Self, ModelError> {
        let hparams = hparams(model)?;
        let mut b = Builder {
            model,
            tensors: Vec::new(),
        };
        let (d_a, d_t) = (
            hparams.n_audio_state as usize,
            hparams.n_text_state as usize,
        );

        b.whole(
            "encoder.positional_embedding",
            "encoder/position_encodings/encodings",
            Class::F32,
        )?;
        b.whole(
            "encoder.conv1.weight",
            "encoder/conv1/weight",
            Class::Weight,
        )?;
        b.conv_bias("encoder.conv1.bias", "encoder/conv1/bias")?;
        b.whole(
            "encoder.conv2.weight",
            "encoder/conv2/weight",
            Class::Weight,
        )?;
        b.conv_bias("encoder.conv2.bias", "encoder/conv2/bias")?;
        for i in 0..hparams.n_audio_layer as usize {
            let (ct2, ggml) = (format!("encoder/layer_{i}"), format!("encoder.blocks.{i}"));
            b.self_attention(&ct2, &ggml)?;
            b.ffn(&ct2, &ggml)?;
        }
        b.layer_norm("encoder.ln_post", "encoder/layer_norm")?;

        b.whole(
            "decoder.positional_embedding",
            "decoder/position_encodings/encodings",
            Class::F32,
        )?;
        b.whole(
            "decoder.token_embedding.weight",
            "decoder/embeddings/weight",
            Class::Weight,
        )?;
        for i in 0..hparams.n_text_layer as usize {
            let (ct2, ggml) = (format!("decoder/layer_{i}"), format!("decoder.blocks.{i}"));
            b.self_attention(&ct2, &ggml)?;
            b.cross_attention(&ct2, &ggml)?;
            b.ffn(&ct2, &ggml)?;
        }
        b.layer_norm("decoder.ln", "decoder/layer_norm")?;

        let tensors = b.tensors;
        // Every weight matrix must match the model width the header claims.
        for t in &tensors {
            let width = if t.name.starts_with("encoder.") {
                d_a
            } else {
                d_t
            };
            if t.class == Class::Weight && t.ne.len() == 2 && t.ne[0] != width && t.ne[1] != width {
                return Err(ModelError::bad_tensor(
                    &t.source.var,
                    format!("shape {:?} does not fit n_state {width}", t.ne),
                ));
            }
        }
        Ok(Plan { hparams, tensors })
    }
}

/// Reads the header values from tensor shapes and the two `num_heads`
/// scalars: CTranslate2's config.json holds no model dimensions.
fn hparams(model: &Ct2Model) -> Result<Hparams, ModelError> {
    let dims = |name: &str, rank: usize| -> Result<Vec<usize>, ModelError> {
        let v = model.var(name)?;
        if v.dims.len() != rank {
            return Err(ModelError::bad_tensor(
                name,
                format!("expected rank {rank}, found shape {:?}", v.dims),
            ));
        }
        Ok(v.dims.clone())
    };
    let enc_pos = dims("encoder/position_encodings/encodings", 2)?;
    let dec_pos = dims("decoder/position_encodings/encodings", 2)?;
    let embed = dims("decoder/embeddings/weight", 2)?;
    let conv1 = dims("encoder/conv1/weight", 3)?;
    let int = |v: usize, what: &str| {
        i32::try_from(v)
            .map_err(|_| ModelError::bad_tensor(what, format!("dimension {v} does not fit in i32")))
    };
    let heads = |name: &str| {
        let h = model.scalar_int(name)?;
        i32::try_from(h)
            .ok()
            .filter(|&h| h > 0)
            .ok_or_else(|| ModelError::bad_tensor(name, format!("invalid head count {h}")))
    };
    Ok(Hparams {
        n_vocab: int(embed[0], "decoder/embeddings/weight")?,
        n_audio_ctx: int(enc_pos[0], "encoder/position_encodings/encodings")?,
        n_audio_state: int(enc_pos[1], "encoder/position_encodings/encodings")?,
        n_audio_head: heads("encoder/num_heads")?,
        n_audio_layer: int(count_layers(model, "encoder")?, "encoder/layer_N")?,
        n_text_ctx: int(dec_pos[0], "decoder/position_encodings/encodings")?,
        n_text_state: int(embed[1], "decoder/embeddings/weight")?,
        n_text_head: heads("decoder/num_heads")?,
        n_text_layer: int(count_layers(model, "decoder")?, "decoder/layer_N")?,
        n_mels: int(conv1[1], "encoder/conv1/weight")?,
        ftype: 1,
    })
}

/// Counts `{stack}/layer_N/...` layers by parsing N (variables are sorted as
/// strings, so `layer_10` comes before `layer_2`) and checks they are 0..n.
fn count_layers(model: &Ct2Model, stack: &str) -> Result<usize, ModelError> {
    let prefix = format!("{stack}/layer_");
    let mut seen = BTreeSet::new();
    for name in model.names() {
        // `{stack}/layer_norm/...` shares the prefix; only digits make a layer.
        let Some(number) = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('/').next())
        else {
            continue;
        };
        if number.bytes().all(|b| b.is_ascii_digit()) {
            let n = number
                .parse::<usize>()
                .map_err(|_| ModelError::bad_tensor(name, "cannot parse the layer number"))?;
            seen.insert(n);
        }
    }
    if seen.is_empty() {
        return Err(ModelError::MissingTensor {
            name: format!("{prefix}0"),
        });
    }
    if let Some(gap) = (0..seen.len()).find(|i| !seen.contains(i)) {
        return Err(ModelError::MissingTensor {
            name: format!("{prefix}{gap}"),
        });
    }
    Ok(seen.len())
}

struct Builder<'a> {
    model: &'a Ct2Model,
    tensors: Vec<OutTensor>,
}

impl Builder<'_> {
    fn push(&mut self, name: String, mut shape: Vec<usize>, class: Class, source: Source) {
        shape.reverse();
        self.tensors.push(OutTensor {
            name,
            ne: shape,
            class,
            source,
        });
    }

    fn whole(&mut self, name: &str, var: &str, class: Class) -> Result<(), ModelError> {
        let dims = self.model.var(var)?.dims.clone();
        let source = Source {
            var: var.to_string(),
            rows: None,
        };
        self.push(name.to_string(), dims, class, source);
        Ok(())
    }

    /// whisper.cpp holds conv biases as [n_state, 1] (ne [1, n_state]) so
    /// they broadcast over time.
    fn conv_bias(&mut self, name: &str, var: &str) -> Result<(), ModelError> {
        let dims = self.model.var(var)?.dims.clone();
        if dims.len() != 1 {
            return Err(ModelError::bad_tensor(
                var,
                format!("expected a 1-D bias, found shape {dims:?}"),
            ));
        }
        let source = Source {
            var: var.to_string(),
            rows: None,
        };
        self.push(name.to_string(), vec![dims[0], 1], Class::F32, source);
        Ok(())
    }

    /// Part `part` of `parts` equal row blocks of `var`.
    fn rows(
        &mut self,
        name: &str,
        var: &str,
        part: usize,
        parts: usize,
        class: Class,
    ) -> Result<(), ModelError> {
        let mut dims = self.model.var(var)?.dims.clone();
        if dims.is_empty() || dims[0] % parts != 0 {
            return Err(ModelError::bad_tensor(
                var,
                format!("shape {dims:?} does not split into {parts} row blocks"),
            ));
        }
        dims[0] /= parts;
        let source = Source {
            var: var.to_string(),
            rows: Some((part, parts)),
        };
        self.push(name.to_string(), dims, class, source);
        Ok(())
    }

    /// Checks that part `part` of `parts` of a fused bias is all zeros before
    /// it is dropped: whisper.cpp has no key bias, so a non-zero one would be
    /// silently lost.
    fn assert_zero_rows(&self, var: &str, part: usize, parts: usize) -> Result<(), ModelError> {
        let values = self.model.values(var)?;
        let n = values.len() / parts;
        let slice = values.slice(part * n..(part + 1) * n);
        let nonzero = match &slice {
            Values::F16(v) => v.iter().any(|&b| b & 0x7FFF != 0),
            Values::F32(v) => v.iter().any(|&x| x != 0.0),
        };
        if nonzero {
            return Err(ModelError::bad_tensor(
                var,
                "the key bias is not zero, but whisper.cpp has no key bias to hold it",
            ));
        }
        Ok(())
    }

    fn linear(&mut self, ggml: &str, ct2: &str) -> Result<(), ModelError> {
        self.whole(
            &format!("{ggml}.weight"),
            &format!("{ct2}/weight"),
            Class::Weight,
        )?;
        self.whole(&format!("{ggml}.bias"), &format!("{ct2}/bias"), Class::F32)
    }

    fn layer_norm(&mut self, ggml: &str, ct2: &str) -> Result<(), ModelError> {
        self.whole(
            &format!("{ggml}.weight"),
            &format!("{ct2}/gamma"),
            Class::F32,
        )?;
        self.whole(&format!("{ggml}.bias"), &format!("{ct2}/beta"), Class::F32)
    }

    /// `linear_0` is q, k, v fused along rows; `linear_1` is the output.
    fn self_attention(&mut self, ct2: &str, ggml: &str) -> Result<(), ModelError> {
        let (w, bias) = (
            format!("{ct2}/self_attention/linear_0/weight"),
            format!("{ct2}/self_attention/linear_0/bias"),
        );
        self.assert_zero_rows(&bias, 1, 3)?;
        self.rows(
            &format!("{ggml}.attn.query.weight"),
            &w,
            0,
            3,
            Class::Weight,
        )?;
        self.rows(&format!("{ggml}.attn.query.bias"), &bias, 0, 3, Class::F32)?;
        self.rows(&format!("{ggml}.attn.key.weight"), &w, 1, 3, Class::Weight)?;
        self.rows(
            &format!("{ggml}.attn.value.weight"),
            &w,
            2,
            3,
            Class::Weight,
        )?;
        self.rows(&format!("{ggml}.attn.value.bias"), &bias, 2, 3, Class::F32)?;
        self.linear(
            &format!("{ggml}.attn.out"),
            &format!("{ct2}/self_attention/linear_1"),
        )?;
        self.layer_norm(
            &format!("{ggml}.attn_ln"),
            &format!("{ct2}/self_attention/layer_norm"),
        )
    }

    /// `linear_0` is the query; `linear_1` is k, v fused; `linear_2` the output.
    fn cross_attention(&mut self, ct2: &str, ggml: &str) -> Result<(), ModelError> {
        self.linear(
            &format!("{ggml}.cross_attn.query"),
            &format!("{ct2}/attention/linear_0"),
        )?;
        let (w, bias) = (
            format!("{ct2}/attention/linear_1/weight"),
            format!("{ct2}/attention/linear_1/bias"),
        );
        self.assert_zero_rows(&bias, 0, 2)?;
        self.rows(
            &format!("{ggml}.cross_attn.key.weight"),
            &w,
            0,
            2,
            Class::Weight,
        )?;
        self.rows(
            &format!("{ggml}.cross_attn.value.weight"),
            &w,
            1,
            2,
            Class::Weight,
        )?;
        self.rows(
            &format!("{ggml}.cross_attn.value.bias"),
            &bias,
            1,
            2,
            Class::F32,
        )?;
        self.linear(
            &format!("{ggml}.cross_attn.out"),
            &format!("{ct2}/attention/linear_2"),
        )?;
        self.layer_norm(
            &format!("{ggml}.cross_attn_ln"),
            &format!("{ct2}/attention/layer_norm"),
        )
    }

    fn ffn(&mut self, ct2: &str, ggml: &str) -> Result<(), ModelError> {
        self.linear(&format!("{ggml}.mlp.0"), &format!("{ct2}/ffn/linear_0"))?;
        self.linear(&format!("{ggml}.mlp.2"), &format!("{ct2}/ffn/linear_1"))?;
        self.layer_norm(&format!("{ggml}.mlp_ln"), &format!("{ct2}/ffn/layer_norm"))
    }
}

/// Loads the values a planned tensor holds (cutting fused rows apart).
pub(crate) fn load(model: &Ct2Model, t: &OutTensor) -> Result<Values, ModelError> {
    let values = model.values(&t.source.var)?;
    let values = match t.source.rows {
        None => values,
        Some((part, parts)) => {
            let n = values.len() / parts;
            values.slice(part * n..(part + 1) * n)
        }
    };
    if values.len() != t.n_elements() {
        return Err(ModelError::bad_tensor(
            &t.source.var,
            format!(
                "holds {} values, `{}` needs {}",
                values.len(),
                t.name,
                t.n_elements()
            ),
        ));
    }
    Ok(values)
}
