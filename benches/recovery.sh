#!/usr/bin/env bash
# Memory and recovery at scale (issue 15): posts N premiums for M members with `junbao bench`
# into a kept ledger, then SIGKILLs the process right after the last acknowledged batch (no
# checkpoint at close), and times the reopening that follows: loading the last checkpoint and
# replaying the journal after it. Prints the bench's figures (resident size after posting) and
# the reopening time; then a full verify of the recovered ledger.
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
trap 'rm -rf "$work"' EXIT
ledger="$work/ledger"

echo "posting $entries premiums for $members members (batch $batch), then SIGKILL" >&2
set +e
"$junbao" bench --dir "$ledger" --members "$members" --entries "$entries" --batch "$batch" \
    --kill-after-post | tee "$work/bench.json"
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 137 ] || { echo "expected the bench to die of SIGKILL (137), got $status" >&2; exit 1; }

# Reopening after the crash: the checkpoint's records are loaded, the tail replayed.
start=$(date +%s%N)
"$junbao" --data "$ledger" journal --from 1 --limit 1 --json > /dev/null
end=$(date +%s%N)
awk -v ns=$((end - start)) 'BEGIN { printf "{\"reopen_after_sigkill_seconds\": %.3f}\n", ns / 1e9 }'
start=$(date +%s%N)
"$junbao" --data "$ledger" verify
end=$(date +%s%N)
awk -v ns=$((end - start)) 'BEGIN { printf "{\"verify_seconds\": %.3f}\n", ns / 1e9 }'
