#!/usr/bin/env bash
# Memory and recovery at scale (issue 15): posts N premiums for M members with `junbao bench`
# into a kept ledger, then SIGKILLs the process right after the last acknowledged batch (no
# checkpoint at close), and times the reopening that follows: loading the last checkpoint and
# replaying the journal after it, first as `junbao serve` (until it serves; its log line gives
# the open's phases), then as a command. Prints the bench's figures (resident size after
# posting) and the reopening times; then a full verify of the recovered ledger.
#
#   benches/recovery.sh [MEMBERS] [ENTRIES] [BATCH]     (defaults: 1000000 10000000 10000)
set -euo pipefail
members=${1:-1000000}
entries=${2:-10000000}
batch=${3:-10000}
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/junbao-target}
cargo build --release --locked --manifest-path "$root/Cargo.toml" >&2
junbao="$CARGO_TARGET_DIR/release/junbao"
work=$(mktemp -d)
serve_pid=""
trap '[ -z "$serve_pid" ] || kill "$serve_pid" 2> /dev/null || true; rm -rf "$work"' EXIT
ledger="$work/ledger"
# `serve` signs with a key kept outside the ledger; the bench's ledger has none, so one is made
# beside it (with a ledger of its own, never used) before the timed part.
"$junbao" --data "$work/keyholder" init --key "$work/serve.key" > /dev/null

echo "posting $entries premiums for $members members (batch $batch), then SIGKILL" >&2
set +e
"$junbao" bench --dir "$ledger" --members "$members" --entries "$entries" --batch "$batch" \
    --kill-after-post | tee "$work/bench.json"
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 137 ] || { echo "expected the bench to die of SIGKILL (137), got $status" >&2; exit 1; }

# The service's restart after the crash: `junbao serve` prints its address once the ledger is
# open (the checkpoint's records loaded, the tail replayed) and logs the open's phases. The
# address line is waited for every 5 ms, for ten minutes at most.
start=$(date +%s%N)
"$junbao" --data "$ledger" serve --addr 127.0.0.1:0 --log info --key "$work/serve.key" \
    > "$work/serve.out" 2> "$work/serve.log" &
serve_pid=$!
deadline=$((SECONDS + 600))
until [ -s "$work/serve.out" ] || ! kill -0 "$serve_pid" 2> /dev/null || [ "$SECONDS" -ge "$deadline" ]; do
    sleep 0.005
done
end=$(date +%s%N)
if [ ! -s "$work/serve.out" ]; then
    echo "serve did not start:" >&2
    cat "$work/serve.log" >&2
    exit 1
fi
kill -TERM "$serve_pid"
wait "$serve_pid" || true
serve_pid=""
awk -v ns=$((end - start)) 'BEGIN { printf "{\"serving_after_sigkill_seconds\": %.3f}\n", ns / 1e9 }'
grep -o 'opened the ledger.*' "$work/serve.log" >&2 || true

# Reopening again with a command: serve posted nothing, so the tail is still after the
# checkpoint and is replayed again (serve's open resumed the compactions, so the tables read
# may be fewer than right after the kill).
start=$(date +%s%N)
"$junbao" --data "$ledger" journal --from 1 --limit 1 --json > /dev/null
end=$(date +%s%N)
awk -v ns=$((end - start)) 'BEGIN { printf "{\"reopen_after_sigkill_seconds\": %.3f}\n", ns / 1e9 }'
start=$(date +%s%N)
"$junbao" --data "$ledger" verify
end=$(date +%s%N)
awk -v ns=$((end - start)) 'BEGIN { printf "{\"verify_seconds\": %.3f}\n", ns / 1e9 }'
