#!/usr/bin/env bash
# Measures Gyre's Redis engine (docs/cluster.md, docs/performance.md
# "Cluster"): release binaries, a private redis-server on a free loopback
# port (never the machine's own), up to three Gyre nodes on it.
#
#   propagate  block_user / revoke_token through node A, close frames seen on
#              nodes B and C (gyre-loadgen block --rounds, cross-node);
#   fanout     1,000 subscribers on one channel, publications through node
#              A's API: memory engine on one node (reference), then Redis
#              with the subscribers spread over two nodes; the Redis round
#              trips per publication are counted from INFO commandstats;
#   outage     the Redis restart and block-during-outage bounds
#              (cargo run --release --example cluster_outage).
#
#   scripts/cluster_bench.sh               # everything (~3 minutes)
#   scripts/cluster_bench.sh propagate     # one part
#   ROUNDS=300 RATES="500 1000" scripts/cluster_bench.sh
# Results: target/cluster-bench/results.jsonl and a summary at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=target/cluster-bench
mkdir -p "$OUT"
: >"$OUT/results.jsonl"
PORT=${BENCH_PORT:-18400}
ROUNDS=${ROUNDS:-200}
RATES=${RATES:-"200 1000"}
PARTS=${*:-"propagate fanout outage"}

echo "==> building release binaries"
cargo build --release --locked -p gyre -p gyre-loadgen
GYRE=target/release/gyre
LG=target/release/gyre-loadgen

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

PIDS=()
REDIS_DIR=$(mktemp -d)
REDIS_PORT=$(free_port)
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$REDIS_DIR/redis.pid" ] && kill "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null || true
  rm -rf "$REDIS_DIR"
}
trap cleanup EXIT
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$REDIS_DIR" \
  --daemonize yes --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log"
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
echo "==> private Redis on 127.0.0.1:$REDIS_PORT"

conf() { # conf FILE PORT ENGINE(memory|redis) NAME
  python3 - "$@" "$REDIS_PORT" <<'PY'
import json, sys
path, port, engine, name, rport = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
c = {
    "http_server": {"port": port},
    "log": {"level": "error"},
    "client": {"token": {"hmac_secret_key": "bench-secret"}},
    "http_api": {"key": "bench-key"},
    "health": {"enabled": True},
    "node": {"name": name},
    "channel": {"without_namespace": {"allow_subscribe_for_client": True}},
}
if engine == "redis":
    c["engine"] = {"type": "redis", "redis": {"address": f"127.0.0.1:{rport}", "prefix": "bench"}}
json.dump(c, open(path, "w"))
PY
}

STARTED=""
start() { # start NAME CONFIG PORT
  "$GYRE" -c "$2" >"$OUT/$1.log" 2>&1 &
  STARTED=$!
  PIDS+=("$STARTED")
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$3/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "gyre $1 did not start; see $OUT/$1.log" >&2
  exit 1
}
stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  PIDS=()
}
nodes() { # nodes ENGINE N: starts N nodes on PORT, PORT+1, ...
  stop_all
  for i in $(seq 0 $(($2 - 1))); do
    conf "$OUT/node$i.json" "$((PORT + i))" "$1" "node$i"
    start "node$i" "$OUT/node$i.json" "$((PORT + i))"
  done
  sleep 1 # heartbeats: every node knows the others
}
ws() { local out=""; for p in "$@"; do out="${out:+$out,}ws://127.0.0.1:$p/connection/websocket"; done; echo "$out"; }
record() { # record PART EXTRA_JSON < loadgen output
  tail -1 | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); d.update(json.loads(sys.argv[1])); print(json.dumps(d))' "$1" >>"$OUT/results.jsonl"
}
calls() { # total EVALSHA+EVAL+PUBLISH calls so far on the private Redis
  redis-cli -p "$REDIS_PORT" info commandstats | python3 -c '
import sys
n = 0
for line in sys.stdin:
    for cmd in ("cmdstat_evalsha:", "cmdstat_eval:", "cmdstat_publish:"):
        if line.startswith(cmd):
            n += int(line.split("calls=")[1].split(",")[0])
print(n)'
}

for part in $PARTS; do
  case $part in
  propagate)
    nodes redis 3
    echo "==> propagate: block_user/revoke_token through node0, connections on node1 and node2, $ROUNDS rounds"
    "$LG" block --connections 10 --user-connections 1 --revoke --rounds "$ROUNDS" --grace-ms 100 \
      --url "$(ws $((PORT + 1)) $((PORT + 2)))" --api-url "http://127.0.0.1:$PORT/api" \
      --api-key bench-key --secret bench-secret --max-time 600 | tee "$OUT/propagate.txt" \
      | record '{"part":"propagate","nodes":3}'
    ;;
  fanout)
    for rate in $RATES; do
      nodes memory 1
      echo "==> fanout: memory engine, one node, 1,000 subscribers, $rate publications/s"
      "$LG" fanout --subscribers 1000 --rate "$rate" --duration 10 --url "$(ws $PORT)" \
        --api-url "http://127.0.0.1:$PORT/api" --api-key bench-key --secret bench-secret \
        --server-pid "${PIDS[0]}" | tee "$OUT/fanout_memory_$rate.txt" \
        | record "{\"part\":\"fanout\",\"engine\":\"memory\",\"nodes\":1,\"rate\":$rate}"
      nodes redis 2
      before=$(calls)
      echo "==> fanout: Redis engine, subscribers over two nodes, 1,000 subscribers, $rate publications/s"
      "$LG" fanout --subscribers 1000 --rate "$rate" --duration 10 --url "$(ws $PORT $((PORT + 1)))" \
        --api-url "http://127.0.0.1:$PORT/api" --api-key bench-key --secret bench-secret \
        >"$OUT/fanout_redis_$rate.txt"
      after=$(calls) # read once the run is over
      record "{\"part\":\"fanout\",\"engine\":\"redis\",\"nodes\":2,\"rate\":$rate,\"redis_calls_before\":$before,\"redis_calls_after\":$after}" \
        <"$OUT/fanout_redis_$rate.txt"
    done
    ;;
  outage)
    stop_all
    echo "==> outage: Redis restart and block-during-outage bounds (5 runs)"
    for i in 1 2 3 4 5; do
      cargo run -q --release -p gyre --example cluster_outage | tee -a "$OUT/outage.txt" \
        | record '{"part":"outage"}'
    done
    ;;
  esac
done
stop_all

echo
echo "==> summary ($OUT/results.jsonl)"
python3 - "$OUT/results.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    p = r["part"]
    if p == "propagate":
        print(f'propagate nodes=3 rounds={r.get("rounds")}: block->close p50={r.get("block_close_p50_ms")} p99={r.get("block_close_p99_ms")} '
              f'max={r.get("block_close_max_ms")} ms; revoke->close p50={r.get("revoke_close_p50_ms")} p99={r.get("revoke_close_p99_ms")} '
              f'max={r.get("revoke_close_max_ms")} ms; ok={r.get("ok")}')
    elif p == "fanout":
        pubs = r.get("published") or 0
        rt = ""
        if "redis_calls_after" in r and pubs:
            rt = f'; Redis calls per publication {(r["redis_calls_after"] - r["redis_calls_before"]) / pubs:.2f}'
        print(f'fanout {r["engine"]:<6} nodes={r["nodes"]} rate={r["rate"]}: {r.get("delivered_per_s")} deliveries/s, '
              f'p50={r.get("latency_p50_ms")} p99={r.get("latency_p99_ms")} ms, loss={r.get("loss")}, '
              f'publish call p50={r.get("publish_http_p50_ms")} p99={r.get("publish_http_p99_ms")} ms{rt}')
    elif p == "outage":
        print("outage: " + ", ".join(f"{k}={v}" for k, v in r.items() if k != "part"))
PY
