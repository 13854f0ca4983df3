#!/usr/bin/env bash
# Instruction counts of Gyre's hot paths (fan-out, dispatch, connect, the
# protective check) under callgrind: repeatable on a noisy machine, for
# before/after comparisons of a change. Prints instructions per operation.
#   scripts/callgrind.sh            # all paths
#   scripts/callgrind.sh fanout     # one path
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind not found (apt-get install valgrind)" >&2; exit 1; }
cargo build --release -q -p gyre --example hot_path_counts
bin=target/release/examples/hot_path_counts
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for path in "${@:-fanout fanout_json fanout_mixed dispatch dispatch_pb connect protect}"; do
  for p in $path; do
    ops=$(valgrind --tool=callgrind --callgrind-out-file="$out/$p.cg" \
      --toggle-collect='*measured_*' "$bin" "$p" 2>/dev/null | awk '{print $2}')
    ir=$(callgrind_annotate "$out/$p.cg" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    awk -v p="$p" -v ir="$ir" -v ops="$ops" 'BEGIN { printf "%-9s %12.1f instructions per operation (%s ops)\n", p, ir / ops, ops }'
  done
done
