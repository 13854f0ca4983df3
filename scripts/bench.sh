#!/usr/bin/env bash
# Reproduces Gyre's performance report (docs/performance.md) with one command:
# builds release binaries, starts a fresh Gyre on 127.0.0.1 for each group of
# scenarios, drives it with gyre-loadgen over real WebSockets and the HTTP
# API, and prints a summary table. Every JSON line lands in
# target/bench/results.jsonl. Loopback only; every run is bounded.
#
#   scripts/bench.sh            # all scenarios (about 5 minutes)
#   PROFILE=1 scripts/bench.sh  # also perf profiles of fan-out and connect
#   QUICK=1 scripts/bench.sh    # smaller counts, for a quick look
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=target/bench
mkdir -p "$OUT"
: > "$OUT/results.jsonl"
PORT=${BENCH_PORT:-18200}
KEYS=crates/gyre/tests/keys

echo "==> building release binaries"
cargo build --release --locked -p gyre -p gyre-loadgen
GYRE=target/release/gyre
LG=target/release/gyre-loadgen

python3 - "$OUT/config.json" "$PORT" "$KEYS/rsa_public.pem" <<'PY'
import json, sys
path, port, rsa = sys.argv[1], int(sys.argv[2]), open(sys.argv[3]).read()
json.dump({
    "http_server": {"port": port},
    "log": {"level": "error"},
    "client": {"token": {"hmac_secret_key": "bench-secret", "rsa_public_key": rsa}},
    "http_api": {"key": "bench-key"},
    "health": {"enabled": True},
    "prometheus": {"enabled": True},
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

run() { # run NAME ARGS... : one loadgen scenario; keeps its JSON line
  local name=$1; shift
  echo "==> $name"
  "$LG" "$@" --url "ws://127.0.0.1:$PORT/connection/websocket" --api-url "http://127.0.0.1:$PORT/api" \
    --api-key bench-key --secret bench-secret --server-pid "$PID" | tee "$OUT/$name.txt" | tail -n 1 \
    | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); d["name"]=sys.argv[1]; print(json.dumps(d))' "$name" >>"$OUT/results.jsonl"
}

profiled() { # profiled NAME SECONDS ARGS... : like run, with perf sampling the server meanwhile
  local name=$1 secs=$2; shift 2
  if [ "${PROFILE:-0}" != 1 ] || ! command -v perf >/dev/null; then return 0; fi
  perf record -F 999 -g -p "$PID" -o "$OUT/$name.perf.data" -- sleep "$secs" >/dev/null 2>&1 &
  local perf_pid=$!
  run "$name" "$@"
  wait "$perf_pid" || true
  perf report -i "$OUT/$name.perf.data" --stdio --no-children --sort symbol -g none 2>/dev/null | grep '%' | head -40 >"$OUT/$name.perf.txt" || true
}

if [ "${QUICK:-0}" = 1 ]; then N=2000; BIG=4000; K=200; else N=10000; BIG=19000; K=1000; fi

start_server; run idle_$N idle --connections "$N" --hold 10
start_server; run idle_$BIG idle --connections "$BIG" --procs 2 --hold 10
start_server; run connect_hs256 connect --connections 5000 --concurrency 100
start_server; profiled connect_hs256_profiled 4 connect --connections 5000 --concurrency 100
start_server; run connect_hs256_1m_protect connect --connections 5000 --concurrency 100 --preload 1000000
start_server; run connect_rs256 connect --connections 5000 --concurrency 100 --rsa-key "$KEYS/rsa_private.pem"
start_server
for rate in 200 500 1000; do run "fanout_1k_r$rate" fanout --subscribers 1000 --rate "$rate" --duration 10; done
profiled fanout_1k_r1000_profiled 8 fanout --subscribers 1000 --rate 1000 --duration 8
start_server
for rate in 20 50 100; do run "fanout_10k_r$rate" fanout --subscribers 10000 --rate "$rate" --duration 10; done
run fanout_1k_100ch fanout --subscribers 1000 --channels 100 --rate 5000 --duration 10
start_server; run block_15k_$K block --connections 15000 --user-connections "$K" --revoke
start_server; run block_15k_100 block --connections 15000 --user-connections 100 --revoke
stop_server

echo
echo "==> summary ($(nproc) cores, $(date -u +%Y-%m-%d))"
python3 - "$OUT/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def g(d, *ks):
    for k in ks:
        if k in d: return d[k]
    return ""
for d in rows:
    s = d.get("scenario")
    if s == "idle":
        print(f'{d["name"]:<26} conns={g(d,"opened")} rss/conn={g(d,"server_rss_per_conn_bytes")} B  connect/s={g(d,"connect_rate_per_s")}')
    elif s == "connect":
        print(f'{d["name"]:<26} connects/s={g(d,"connects_per_s")} p50={g(d,"connect_reply_p50_ms")} p99={g(d,"connect_reply_p99_ms")} ms  server_cpu={g(d,"server_cpu_s")}s client_cpu={g(d,"client_cpu_s")}s')
    elif s == "fanout":
        print(f'{d["name"]:<26} delivered/s={g(d,"delivered_per_s")} p50={g(d,"latency_p50_ms")} p99={g(d,"latency_p99_ms")} max={g(d,"latency_max_ms")} ms loss={g(d,"loss")}  server_cpu%={g(d,"server_cpu_pct")} client_cpu%={g(d,"client_cpu_pct")}')
    elif s == "block":
        print(f'{d["name"]:<26} block close p50={g(d,"block_close_p50_ms")} p99={g(d,"block_close_p99_ms")} ms  revoke close p50={g(d,"revoke_close_p50_ms")} p99={g(d,"revoke_close_p99_ms")} ms  others_closed={g(d,"others_closed")}')
PY
