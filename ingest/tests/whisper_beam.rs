//! whisper.cpp as callqa builds it, with the fixes of `ingest/whisper-cpp/fixes.cmake`, on
//! the real model and real speech: a beam search, whose candidates whisper.cpp draws at
//! random, and a decode sampled at a temperature above 0 (whisper's fallback) each give the
//! same result however often they run on one whisper state. Unfixed whisper.cpp let its
//! first decoder's random generator run on from one decode to the next.
//!
//! The model is `CALLQA_MODEL`, else the one callqa picks from `~/.cache/callqa/models`
//! (`.ci/run` installs it); a missing model fails the test with how to make it.

use std::path::{Path, PathBuf};

use callqa_ingest::model::default_model;
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

mod common;
use common::speech;

/// Speech with numbers and names, where whisper base is unsure of many tokens, so that
/// different random draws give different words.
const TEXT: &str = "Your account ending in four two seven one is overdue by thirty six days. \
    Please call Marta Delgado back before Friday at nine fifteen.";

fn model() -> PathBuf {
    let path = std::env::var_os("CALLQA_MODEL").map_or_else(
        || {
            let home = std::env::var_os("HOME").expect("HOME is not set");
            default_model(&Path::new(&home).join(".cache/callqa/models"))
        },
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "whisper model {} is missing: run deploy/install-model.sh (or set CALLQA_MODEL)",
        path.display()
    );
    path
}

/// A decode's tokens, with their log-probabilities, and its text.
#[derive(Debug, PartialEq)]
struct Decode {
    tokens: Vec<(i32, f32)>,
    text: String,
}

/// One decode at `temperature`, without whisper's temperature fallback.
fn decode(
    state: &mut whisper_rs::WhisperState,
    strategy: SamplingStrategy,
    temperature: f32,
    pcm: &[f32],
) -> Decode {
    let mut p = FullParams::new(strategy);
    p.set_n_threads(2);
    p.set_language(Some("en"));
    p.set_no_timestamps(true);
    p.set_no_context(true);
    p.set_temperature(temperature);
    p.set_temperature_inc(0.0);
    p.set_print_progress(false);
    p.set_print_realtime(false);
    p.set_print_special(false);
    state.full(p, pcm).expect("whisper full() failed");
    let mut tokens = Vec::new();
    let mut text = String::new();
    for seg in state.as_iter() {
        text.push_str(&seg.to_str_lossy().unwrap());
        for i in 0..seg.n_tokens() {
            let t = seg.get_token(i).expect("token index in range").token_data();
            tokens.push((t.id, t.plog));
        }
    }
    Decode { tokens, text }
}

#[test]
fn beam_search_and_sampling_repeat_themselves_on_one_state() {
    whisper_rs::install_logging_hooks();
    let tmp = tempfile::tempdir().unwrap();
    let pcm = speech(tmp.path(), TEXT);
    let model = model();
    let ctx = WhisperContext::new_with_params(&model, WhisperContextParameters::default())
        .unwrap_or_else(|e| panic!("whisper.cpp cannot load {}: {e}", model.display()));
    let mut state = ctx.create_state().unwrap();

    let greedy = decode(
        &mut state,
        SamplingStrategy::Greedy { best_of: 1 },
        0.0,
        &pcm,
    );
    let lower = greedy.text.to_lowercase();
    assert!(
        lower.contains("account") && lower.contains("friday"),
        "greedy decode does not say the clip's words: {:?}",
        greedy.text
    );
    let beam = SamplingStrategy::BeamSearch {
        beam_size: 5,
        patience: -1.0,
    };
    // The same state decodes again and again (callqa keeps one per thread): the result
    // must not depend on what the state decoded before.
    let five = decode(&mut state, beam.clone(), 0.0, &pcm);
    assert!(!five.tokens.is_empty(), "beam search gave no tokens");
    for _ in 0..2 {
        assert_eq!(decode(&mut state, beam.clone(), 0.0, &pcm), five);
    }

    // Sampling at a temperature above 0 (whisper's fallback) starts from the same seed in
    // every decode, so it repeats too.
    let sampled = decode(
        &mut state,
        SamplingStrategy::Greedy { best_of: 1 },
        0.8,
        &pcm,
    );
    assert!(!sampled.tokens.is_empty(), "sampling gave no tokens");
    assert_eq!(
        decode(
            &mut state,
            SamplingStrategy::Greedy { best_of: 1 },
            0.8,
            &pcm
        ),
        sampled,
        "a sampled decode must not depend on what the state decoded before"
    );
    eprintln!(
        "greedy: {:?}\nbeam 5: {:?}\nsampled at 0.8: {:?}",
        greedy.text, five.text, sampled.text
    );
}
