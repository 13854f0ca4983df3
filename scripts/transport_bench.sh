#!/usr/bin/env bash
# Measures the protobuf protocol and the streaming transports
# (docs/transports.md "Measured"): release binaries, a fresh Gyre on
# 127.0.0.1 for each run, the same method as scripts/bench.sh.
#
#   idle     memory per idle connection: JSON WebSocket (reference),
#            protobuf WebSocket (gyre-loadgen idle --protobuf-every 1), SSE
#            emulation (scripts/sse_idle.py, N EventSource-style streams,
#            each subscribed through its token's `channels`);
#   fanout   1,000 subscribers on one channel, 1,000 publications/s:
#            all JSON, then half JSON and half protobuf (--protobuf-every 2);
#   counts   instructions per operation (scripts/callgrind.sh): fan-out with
#            one or two encodings, decode + dispatch of 10 publishes in JSON
#            and in protobuf.
#
#   scripts/transport_bench.sh [idle] [fanout] [counts]
#   N=10000 RUNS=3 scripts/transport_bench.sh idle
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=target/transport-bench
mkdir -p "$OUT"
: >"$OUT/results.jsonl"
PORT=${BENCH_PORT:-18500}
N=${N:-10000}
RUNS=${RUNS:-3}
PARTS=${*:-"idle fanout counts"}

echo "==> building release binaries"
cargo build --release --locked -p gyre -p gyre-loadgen
GYRE=target/release/gyre
LG=target/release/gyre-loadgen

python3 - "$OUT/config.json" "$PORT" <<'PY'
import json, sys
path, port = sys.argv[1], int(sys.argv[2])
json.dump({
    "http_server": {"port": port},
    "log": {"level": "error"},
    "client": {"token": {"hmac_secret_key": "bench-secret"}},
    "http_api": {"key": "bench-key"},
    "health": {"enabled": True},
    "sse": {"enabled": True},
    "channel": {"without_namespace": {"allow_subscribe_for_client": True}},
}, open(path, "w"))
PY

PID=""
stop_server() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; fi
}
trap stop_server EXIT
start_server() {
  stop_server
  "$GYRE" -c "$OUT/config.json" >"$OUT/gyre.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "gyre did not start; see $OUT/gyre.log" >&2
  exit 1
}
lg() { # lg PART EXTRA_JSON ARGS...: one loadgen run, its JSON line recorded
  local part=$1 extra=$2; shift 2
  "$LG" "$@" --url "ws://127.0.0.1:$PORT/connection/websocket" --api-url "http://127.0.0.1:$PORT/api" \
    --api-key bench-key --secret bench-secret --server-pid "$PID" >"$OUT/last.txt"
  tail -1 "$OUT/last.txt" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); d.update(json.loads(sys.argv[1])); d["part"]=sys.argv[2]; print(json.dumps(d))' "$extra" "$part" \
    >>"$OUT/results.jsonl"
}

for part in $PARTS; do
  case $part in
  idle)
    for run in $(seq 1 "$RUNS"); do
      echo "==> idle run $run: $N JSON WebSocket connections"
      start_server; lg idle '{"kind":"websocket-json"}' idle --connections "$N" --hold 10
      echo "==> idle run $run: $N protobuf WebSocket connections"
      start_server; lg idle '{"kind":"websocket-protobuf"}' idle --connections "$N" --hold 10 --protobuf-every 1
      echo "==> idle run $run: $N SSE (emulation) connections"
      start_server
      python3 scripts/sse_idle.py --port "$PORT" --pid "$PID" --connections "$N" --secret bench-secret \
        | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); d["part"]="idle"; d["kind"]="sse"; print(json.dumps(d))' \
        >>"$OUT/results.jsonl"
    done
    ;;
  fanout)
    for run in $(seq 1 "$RUNS"); do
      echo "==> fanout run $run: 1,000 JSON subscribers, 1,000 publications/s"
      start_server; lg fanout '{"kind":"json"}' fanout --subscribers 1000 --rate 1000 --duration 10
      echo "==> fanout run $run: 500 JSON + 500 protobuf subscribers, 1,000 publications/s"
      start_server; lg fanout '{"kind":"mixed"}' fanout --subscribers 1000 --rate 1000 --duration 10 --protobuf-every 2
    done
    ;;
  counts)
    echo "==> instruction counts"
    scripts/callgrind.sh fanout_json fanout_mixed dispatch dispatch_pb | tee "$OUT/counts.txt"
    ;;
  esac
done
stop_server

echo
echo "==> summary ($OUT/results.jsonl)"
python3 - "$OUT/results.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["part"] == "idle":
        print(f'idle {r["kind"]:<19} {r.get("connections") or r.get("opened")} connections: '
              f'{r.get("server_bytes_per_conn") or r.get("server_rss_per_conn_bytes")} bytes per connection')
    else:
        print(f'fanout {r["kind"]:<6}: {r.get("delivered_per_s")} deliveries/s, p50={r.get("latency_p50_ms")} '
              f'p99={r.get("latency_p99_ms")} ms, loss={r.get("loss")}')
PY
