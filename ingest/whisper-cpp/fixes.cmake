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

# rng-per-call: every decoder's random generator starts afresh with each whisper_full() call.
# whisper.cpp reset all but the first, whose draws then depended on what the state had decoded
# before. Its beam search draws each beam's candidates at random from the softmax, at every
# temperature, and so does the temperature fallback; callqa's threads take a call's windows in
# whatever order they finish, so the same recording came back with different words from one
# run to the next (`beam_size=5` on the `espeak15` benchmark corpus: WER 0.235, then 0.214).
#
# Tried and left out (session 15): candidates as the k most likely tokens, as in openai-whisper
# and CTranslate2, with distinct first tokens, and finished texts set apart from the beams. On
# the four benchmark corpora the WER moved by a few words either way, as much as a new seed
# moves it, for a larger patch.
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
