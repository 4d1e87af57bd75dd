#!/usr/bin/env bash
# Runs a single-node Garage S3 server on loopback for callqa's recordings.
#
# First run: creates the data dir, garage.toml (from garage.toml.example, with a
# random rpc_secret) and a credentials file holding a random access key and
# secret, then prints the [storage] section to paste into callqa's config.
# Every run: starts Garage in the foreground with --single-node --default-bucket,
# which (idempotently) sets up the layout, the key and the bucket before the S3
# port opens. Stop it with Ctrl-C or SIGTERM.
#
# Settings (environment):
#   CALLQA_GARAGE_DIR       data, config and credentials   (default /var/lib/callqa/garage)
#   CALLQA_GARAGE_BIN       the garage binary              (default: garage on PATH, else
#                           ~/.cache/callqa/garage-2.5.0/bin/garage)
#   CALLQA_GARAGE_S3_PORT   S3 API port on 127.0.0.1       (default 3900)
#   CALLQA_GARAGE_RPC_PORT  RPC port on 127.0.0.1          (default 3901)
#   CALLQA_GARAGE_BUCKET    bucket for recordings          (default recordings)
# Install Garage (about 25 min on 2 cores):
#   cargo install garage@2.5.0 --locked --root ~/.cache/callqa/garage-2.5.0
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
dir="${CALLQA_GARAGE_DIR:-/var/lib/callqa/garage}"
s3_port="${CALLQA_GARAGE_S3_PORT:-3900}"
rpc_port="${CALLQA_GARAGE_RPC_PORT:-3901}"
bucket="${CALLQA_GARAGE_BUCKET:-recordings}"

bin="${CALLQA_GARAGE_BIN:-$(command -v garage || echo "$HOME/.cache/callqa/garage-2.5.0/bin/garage")}"
if [ ! -x "$bin" ]; then
    echo "garage not found ($bin); install it with:" >&2
    echo "  cargo install garage@2.5.0 --locked --root ~/.cache/callqa/garage-2.5.0" >&2
    exit 1
fi

hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

umask 077
mkdir -p "$dir"
config="$dir/garage.toml"
credentials="$dir/credentials"

if [ ! -f "$config" ]; then
    sed -e "s|@DIR@|$dir|g" -e "s|@S3_PORT@|$s3_port|g" -e "s|@RPC_PORT@|$rpc_port|g" \
        -e "s|@RPC_SECRET@|$(hex 32)|g" "$here/garage.toml.example" > "$config"
    echo "wrote $config" >&2
fi
if [ ! -f "$credentials" ]; then
    # Garage 2.5.0 wants a key id of 8+ chars from [A-Za-z0-9-_.] and a secret of 16+.
    printf 'GARAGE_DEFAULT_ACCESS_KEY=GKcallqa%s\nGARAGE_DEFAULT_SECRET_KEY=%s\nGARAGE_DEFAULT_BUCKET=%s\n' \
        "$(hex 6)" "$(hex 32)" "$bucket" > "$credentials"
    echo "wrote $credentials" >&2
fi
set -a
# shellcheck source=/dev/null
. "$credentials"
set +a

endpoint="$(sed -n 's/^api_bind_addr = "\(.*\)".*/\1/p' "$config" | head -1)"
cat >&2 <<TOML
# callqa config for this store:
[storage]
url = "s3://$GARAGE_DEFAULT_BUCKET"
endpoint = "http://$endpoint"
region = "garage"
access_key_id = "$GARAGE_DEFAULT_ACCESS_KEY"
secret_access_key = "$GARAGE_DEFAULT_SECRET_KEY"
TOML

exec "$bin" -c "$config" server --single-node --default-bucket
