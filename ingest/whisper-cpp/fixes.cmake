# Fixes to whisper.cpp's source, applied to whisper-rs-sys's private build copy of it (under
# Cargo's OUT_DIR) when CMake configures that copy. `.cargo/config.toml` names this file as
# CMAKE_PROJECT_INCLUDE, which whisper-rs-sys hands to CMake with every other CMAKE_* variable;
# CMake runs it after each project() call, and it acts only on whisper.cpp's own project.
#
# Each fix names the exact text it replaces. A whisper.cpp whose text differs stops the build
# with the fix's name, so an upgrade of whisper-rs-sys cannot drop a fix without notice.
# After editing this file, `cargo clean -p whisper-rs-sys` (`.ci/run` does it by itself).
if(NOT PROJECT_NAME STREQUAL "whisper.cpp")
  return()
endif()

set(_callqa_src "${PROJECT_SOURCE_DIR}/src/whisper.cpp")
file(READ "${_callqa_src}" _callqa_text)
set(_callqa_before "${_callqa_text}")

# Replaces OLD by NEW in the source text, once; a text that already has NEW (CMake runs this
# after both of whisper.cpp's project() calls) is left as it is.
macro(callqa_fix name old new)
  string(FIND "${_callqa_text}" "${new}" _callqa_done)
  if(_callqa_done EQUAL -1)
    string(FIND "${_callqa_text}" "${old}" _callqa_at)
    if(_callqa_at EQUAL -1)
      message(FATAL_ERROR "callqa whisper.cpp fix '${name}': the text it replaces is not in ${_callqa_src}")
    endif()
    string(REPLACE "${old}" "${new}" _callqa_text "${_callqa_text}")
    message(STATUS "callqa whisper.cpp fix '${name}' applied")
  endif()
endmacro()

# beam-topk: a beam's candidates at temperature 0 are its k most likely tokens, as in
# openai-whisper and CTranslate2. whisper.cpp drew k random samples from the softmax instead,
# at every temperature: a beam search that explored at random and whose output depended on
# what the state had decoded before. Sampling stays for temperatures above 0.
callqa_fix(beam-topk-signature
  [=[            whisper_decoder & decoder,
                        int   k) {
    const auto & vocab = ctx.vocab;]=]
  [=[            whisper_decoder & decoder,
                        int   k,
                       bool   sample) {
    const auto & vocab = ctx.vocab;]=])
callqa_fix(beam-topk-choice
  [=[    for (int i = 0; i < k; ++i) {
        const auto id = dist(decoder.rng);]=]
  [=[    for (int i = 0; i < k; ++i) {
        if (!sample && logits_id[i].first == -INFINITY) {
            break; // fewer than k tokens are allowed here
        }
        const auto id = sample ? dist(decoder.rng) : logits_id[i].second;]=])
callqa_fix(beam-topk-call
  [=[whisper_sample_token_topk(*ctx, decoder, params.beam_search.beam_size);]=]
  [=[whisper_sample_token_topk(*ctx, decoder, params.beam_search.beam_size, t_cur > 1e-6f);]=])

# beam-first-token: beams take distinct first tokens. All beams start from the same prompt, so
# their first candidates are the same k tokens k times over; whisper.cpp skipped duplicates only
# from the second token on, and every beam took the single most likely first token.
callqa_fix(beam-first-token
  [=[whisper_sequence_tokens_equal(beam_candidates[cur_c].sequence, cur.sequence) && i > 0) {]=]
  [=[whisper_sequence_tokens_equal(beam_candidates[cur_c].sequence, cur.sequence)) {]=])

# rng-per-call: every decoder's random generator starts afresh with each whisper_full() call.
# whisper.cpp reset all but the first, whose draws (beam candidates above temperature 0, and
# the temperature fallback) then depended on what the state had decoded before; callqa's
# threads take a call's windows in whatever order they finish, so the same recording could
# come back with different words.
callqa_fix(rng-per-call
  [=[        decoder.rng = std::mt19937(j);
    }
]=]
  [=[        decoder.rng = std::mt19937(j);
    }
    state->decoders[0].rng = std::mt19937(0);
]=])

if(NOT _callqa_text STREQUAL _callqa_before)
  file(WRITE "${_callqa_src}" "${_callqa_text}")
endif()
