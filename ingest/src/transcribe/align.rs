//! Which of a whisper model's cross-attention heads align text to audio, for whisper.cpp's
//! DTW token times: the published heads of the standard models, recognised by their shape.

use crate::model::Hparams;
use whisper_rs::{DtwMode, DtwModelPreset};

/// Vocabulary size of the English-only models (the multilingual ones have 51,865 or more).
const ENGLISH_ONLY_VOCAB: i32 = 51_864;

/// The alignment heads for a model of shape `h`: a standard model's published heads, or the
/// heads of the upper half of the text decoder for a shape that is not a standard one.
pub(super) fn dtw_mode(h: &Hparams) -> DtwMode<'static> {
    match preset(h) {
        Some(model_preset) => DtwMode::ModelPreset { model_preset },
        None => DtwMode::TopMost {
            n_top: (h.n_text_layer / 2).max(1),
        },
    }
}

/// The standard model of shape `h`, if it is one. Large v1 and v2 share a shape and not
/// their heads, so neither is guessed.
fn preset(h: &Hparams) -> Option<DtwModelPreset> {
    let en = h.n_vocab == ENGLISH_ONLY_VOCAB;
    Some(match (h.n_text_layer, h.n_text_state, h.n_mels, en) {
        (4, 384, 80, true) => DtwModelPreset::TinyEn,
        (4, 384, 80, false) => DtwModelPreset::Tiny,
        (6, 512, 80, true) => DtwModelPreset::BaseEn,
        (6, 512, 80, false) => DtwModelPreset::Base,
        (12, 768, 80, true) => DtwModelPreset::SmallEn,
        (12, 768, 80, false) => DtwModelPreset::Small,
        (24, 1024, 80, true) => DtwModelPreset::MediumEn,
        (24, 1024, 80, false) => DtwModelPreset::Medium,
        (32, 1280, 128, false) => DtwModelPreset::LargeV3,
        (4, 1280, 128, false) => DtwModelPreset::LargeV3Turbo,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(n_vocab: i32, n_text_layer: i32, n_text_state: i32, n_mels: i32) -> Hparams {
        Hparams {
            n_vocab,
            n_audio_ctx: 1500,
            n_audio_state: n_text_state,
            n_audio_head: n_text_state / 64,
            n_audio_layer: n_text_layer,
            n_text_ctx: 448,
            n_text_state,
            n_text_head: n_text_state / 64,
            n_text_layer,
            n_mels,
            ftype: 1,
        }
    }

    #[test]
    fn standard_models_get_their_heads() {
        assert!(matches!(
            preset(&shape(51_865, 6, 512, 80)),
            Some(DtwModelPreset::Base)
        ));
        assert!(matches!(
            preset(&shape(51_864, 4, 384, 80)),
            Some(DtwModelPreset::TinyEn)
        ));
        assert!(matches!(
            preset(&shape(51_866, 4, 1280, 128)),
            Some(DtwModelPreset::LargeV3Turbo)
        ));
    }

    #[test]
    fn other_shapes_use_the_upper_layers() {
        // Large v1 and v2: same shape, different heads.
        assert!(preset(&shape(51_865, 32, 1280, 80)).is_none());
        assert!(matches!(
            dtw_mode(&shape(51_865, 32, 1280, 80)),
            DtwMode::TopMost { n_top: 16 }
        ));
        assert!(matches!(
            dtw_mode(&shape(51_865, 1, 256, 80)),
            DtwMode::TopMost { n_top: 1 }
        ));
    }
}
