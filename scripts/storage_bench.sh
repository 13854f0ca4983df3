#!/usr/bin/env bash
# Figures for Gyre's persistent protective storage (Redis and PostgreSQL),
# beside the in-memory default, plus the two figures of docs/performance.md
# a storage change could move (idle memory per connection, instructions per
# protective check). Prints a summary; every figure is also a JSON line in
# target/storage-bench/results.jsonl.
#
#   scripts/storage_bench.sh                      # all parts (about 10 minutes)
#   scripts/storage_bench.sh load write           # some parts only
#   QUICK=1 scripts/storage_bench.sh              # small counts, for a quick look
#
# Parts:
#   load       1M revoked UUID jtis written straight into the store; gyre is
#              started on it and on an empty store of the same config, RUNS
#              times each: load ms (the "protective entries loaded" log line)
#              and RSS growth per entry (VmRSS, full - empty) once the
#              process is idle again (the reload loops load everything once
#              more right after start), beside VmRSS when /health first
#              answers and after malloc_trim (through gdb, when present).
#   write      WRITES sequential POST /api/block_user (distinct users) over
#              one keep-alive connection: p50/p99 per storage.
#   propagate  two gyre nodes on one store (memory engine): block_user on
#              node A's API, close frame on node B's WebSocket, ROUNDS rounds
#              of gyre-loadgen `block --rounds` (one connection of the user
#              among 10), p50/p99 per storage; memory storage on one node
#              for reference.
#   idle       scripts/bench.sh's idle scenario (IDLE_N connections, hold
#              10 s, fresh server), IDLE_REPS times: server RSS per connection.
#   callgrind  scripts/callgrind.sh protect: instructions per protective check.
#
# Needs Redis on $REDIS_HOST:$REDIS_PORT (127.0.0.1:6379) and PostgreSQL at
# $PG_URL (postgresql://postgres@127.0.0.1:5432, trust auth), redis-cli,
# psql, python3, curl; valgrind for `callgrind`. Everything this script
# writes lives under one random name, gyrebench_<time>_<random>: Redis keys
# with that prefix and databases of that name (plus suffixes); they are
# deleted at the end, whatever happens. Nothing else in Redis or PostgreSQL
# is touched. Loopback only; every wait is bounded; every process started
# here is stopped by its pid.
set -euo pipefail
cd "$(dirname "$0")/.."

PARTS=${*:-load write propagate idle callgrind}
if [ "${QUICK:-0}" = 1 ]; then
  ENTRIES=${ENTRIES:-100000} RUNS=${RUNS:-1} WRITES=${WRITES:-200} ROUNDS=${ROUNDS:-20}
  IDLE_N=${IDLE_N:-2000} IDLE_REPS=${IDLE_REPS:-1}
fi
ENTRIES=${ENTRIES:-1000000}  # revoked jtis loaded at start
RUNS=${RUNS:-3}              # starts per store (min and median reported)
WRITES=${WRITES:-1000}       # measured block_user calls per storage
WARMUP=${WARMUP:-50}         # unmeasured calls first (connection, caches)
ROUNDS=${ROUNDS:-100}        # propagation rounds per storage
IDLE_N=${IDLE_N:-10000}      # idle connections
IDLE_REPS=${IDLE_REPS:-2}
PORT=${BENCH_PORT:-18250}    # node A; node B is PORT+1
REDIS_HOST=${REDIS_HOST:-127.0.0.1} REDIS_PORT=${REDIS_PORT:-6379}
PG_URL=${PG_URL:-postgresql://postgres@127.0.0.1:5432}
NAME=gyrebench_$(date +%s)_$RANDOM
OUT=target/storage-bench
mkdir -p "$OUT"
: >"$OUT/results.jsonl"
KEYS=crates/gyre/tests/keys
GYRE=target/release/gyre
LG=target/release/gyre-loadgen
RCLI=(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT")

# ---------------------------------------------------------------- clean-up
PIDS=()   # gyre processes still running
DBS=()    # databases created here
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  PIDS=()
  # Only keys under this run's own prefix (UNLINK in batches of 500).
  "${RCLI[@]}" --scan --pattern "${NAME}*" 2>/dev/null | xargs -r -n 500 "${RCLI[@]}" unlink >/dev/null 2>&1 || true
  local db
  for db in "${DBS[@]}"; do
    psql "$PG_URL/postgres" -qAt -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  done
  DBS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

record() { # record JSON: one result line
  echo "$1" >>"$OUT/results.jsonl"
}

# ------------------------------------------------------------------ config
# conf FILE PORT STORAGE STORE: a gyre config; STORAGE memory|redis|database,
# STORE the Redis prefix or the database name. All three protective
# features use the same storage.
conf() {
  python3 - "$@" "$REDIS_HOST:$REDIS_PORT" "$PG_URL" <<'PY'
import json, sys
path, port, storage, store, redis_addr, pg = sys.argv[1:7]
c = {
    "http_server": {"port": int(port)},
    "log": {"level": "info"},
    "client": {"token": {"hmac_secret_key": "bench-secret"}},
    "http_api": {"key": "bench-key"},
    "health": {"enabled": True},
    "prometheus": {"enabled": True},
    "channel": {"without_namespace": {"allow_subscribe_for_client": True}},
}
feature = {"storage_type": storage}
if storage == "redis":
    feature["redis"] = {"address": redis_addr, "prefix": store}
elif storage == "database":
    c["database"] = {"enabled": True, "postgresql": {"dsn": f"{pg}/{store}"}}
for f in ("user_block", "token_revoke", "user_tokens_invalidate"):
    c[f] = dict(feature)
json.dump(c, open(path, "w"))
PY
}

# start NAME CONFIG PORT: starts gyre (log in $OUT/NAME.log), waits until
# /health answers (60 s at most); sets STARTED to its pid.
STARTED=""
start() {
  local name=$1 config=$2 port=$3
  "$GYRE" -c "$config" >"$OUT/$name.log" 2>&1 &
  STARTED=$!
  PIDS+=("$STARTED")
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return 0
    kill -0 "$STARTED" 2>/dev/null || break
    sleep 0.1
  done
  echo "gyre ($name) did not start; see $OUT/$name.log" >&2
  tail -5 "$OUT/$name.log" >&2
  exit 1
}

stop() { # stop PID
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system, 10 ms ticks

# settle PID: waits until the process's CPU time has stayed put (at most one
# tick) for 2 s, 60 s at most: after the start-up load, the reload loops
# run once more in the background.
settle() {
  local pid=$1 last=-1 same=0 t
  for _ in $(seq 1 120); do
    t=$(cpu_ticks "$pid")
    if [ "$last" -ge 0 ] && [ $((t - last)) -le 1 ]; then same=$((same + 1)); else same=0; fi
    last=$t
    [ "$same" -ge 4 ] && return 0
    sleep 0.5
  done
  echo "    (pid $pid still busy after 60 s)" >&2
}

# Busy CPU of the whole machine (all cores, 10 ms ticks; this script's own
# processes included): a figure far above what the measured work needs
# means something else competed for the two cores meanwhile.
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat; }
BUSY_AT=0 BUSY_T0=0
busy_start() { BUSY_AT=$(machine_ticks); BUSY_T0=$(date +%s%N); }
busy_pct() { # machine busy % of one core since busy_start
  local ticks=$(( $(machine_ticks) - BUSY_AT )) ns=$(( $(date +%s%N) - BUSY_T0 ))
  echo $(( ticks * 1000000000 / (ns + 1) ))
}

# metric PORT NAME: a Prometheus counter's value (0 when absent).
metric() {
  curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n {print $2; f=1} END {if (!f) print 0}'
}

# trimmed_rss PID: VmRSS after glibc's malloc_trim(0), called through gdb:
# what the heap really holds, without the freed memory malloc keeps.
# "null" without gdb or when attaching is not allowed.
trimmed_rss() {
  if command -v gdb >/dev/null \
    && timeout 60 gdb -p "$1" -batch -ex 'call (int)malloc_trim(0)' >/dev/null 2>&1; then
    rss_kib "$1"
  else
    echo null
  fi
}

# loaded LOG FEATURE: "entries ms" of the feature's "protective entries loaded" line.
loaded() {
  grep "protective entries loaded" "$1" | grep "feature=\"$2\"" | tail -1 \
    | sed -E 's/.*entries=([0-9]+) ms=([0-9]+).*/\1 \2/'
}

# new_db NAME: creates a database and lets gyre create its schema once.
new_db() {
  local db=$1
  psql "$PG_URL/postgres" -qAt -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$db\"" >/dev/null
  DBS+=("$db")
  conf "$OUT/migrate.json" "$PORT" database "$db"
  start migrate "$OUT/migrate.json" "$PORT"
  stop "$STARTED"
  psql "$PG_URL/$db" -qAt -v ON_ERROR_STOP=1 -c "SELECT 1 FROM gyre_token_revoke LIMIT 1" >/dev/null
}

echo "==> building release binaries"
nice -n 10 cargo build --release --locked -p gyre -p gyre-loadgen
for c in redis-cli psql python3 curl; do command -v "$c" >/dev/null || { echo "$c not found" >&2; exit 1; }; done
"${RCLI[@]}" ping >/dev/null
psql "$PG_URL/postgres" -qAt -c "SELECT 1" >/dev/null
echo "==> store names: $NAME* (Redis prefix, databases); removed at the end"

# ---------------------------------------------------------------- 1. load
part_load() {
  local now exp now_ms
  now=$(date +%s); exp=$((now + 86400)); now_ms=$((now * 1000))
  echo "==> load: writing $ENTRIES revoked UUID jtis into Redis (${NAME}_full) and PostgreSQL (${NAME}_full)"
  # The layout of crates/gyre/src/protect/store/redis.rs: hash field = jti,
  # value {"c":created_ms,"e":expire_at}; the expiry index beside it.
  python3 - "$ENTRIES" "${NAME}_full.protect.token_revoke" "$now_ms" "$exp" <<'PY' \
    | "${RCLI[@]}" --pipe >"$OUT/redis_pipe.txt"
import sys, uuid
n, key, c, e = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
out = sys.stdout.buffer
def cmd(*parts):
    b = [b"*%d\r\n" % len(parts)]
    for p in parts:
        p = p.encode() if isinstance(p, str) else p
        b.append(b"$%d\r\n%s\r\n" % (len(p), p))
    return b"".join(b)
value = ('{"c":%s,"e":%s}' % (c, e)).encode()
batch = 1000
for start in range(0, n, batch):
    ids = [str(uuid.uuid4()).encode() for _ in range(min(batch, n - start))]
    hset = [b"HSET", key.encode()]
    zadd = [b"ZADD", (key + ".expire").encode()]
    for i in ids:
        hset += [i, value]
        zadd += [e.encode(), i]
    out.write(cmd(*hset))
    out.write(cmd(*zadd))
out.write(cmd("INCR", key + ".version"))
PY
  grep -q "errors: 0" "$OUT/redis_pipe.txt" || { cat "$OUT/redis_pipe.txt" >&2; exit 1; }
  [ "$("${RCLI[@]}" hlen "${NAME}_full.protect.token_revoke")" = "$ENTRIES" ]
  new_db "${NAME}_full"
  new_db "${NAME}_empty"
  psql "$PG_URL/${NAME}_full" -qAt -v ON_ERROR_STOP=1 <<SQL >/dev/null
INSERT INTO gyre_token_revoke (uid, expire_at, created_ms)
  SELECT gen_random_uuid()::text, $exp, $now_ms FROM generate_series(1, $ENTRIES);
UPDATE gyre_protect_version SET version = version + 1 WHERE feature = 'token_revoke';
VACUUM ANALYZE gyre_token_revoke;
SQL
  local storage run kind store entries ms rss ready cpu reloads trimmed busy log
  for storage in redis database; do
    for run in $(seq 1 "$RUNS"); do
      for kind in empty full; do
        store="${NAME}_$kind"
        conf "$OUT/load.json" "$PORT" "$storage" "$store"
        log="load_${storage}_${kind}_$run"
        busy_start
        start "$log" "$OUT/load.json" "$PORT"
        ready=$(rss_kib "$STARTED")  # as soon as /health answers
        settle "$STARTED"
        rss=$(rss_kib "$STARTED")    # the figure: after the start-up reloads too
        cpu=$(( $(cpu_ticks "$STARTED") * 10 ))
        reloads=$(metric "$PORT" gyre_protect_reloads_total)
        busy=$(busy_pct)
        trimmed=$(trimmed_rss "$STARTED")
        stop "$STARTED"
        read -r entries ms < <(loaded "$OUT/$log.log" token_revoke)
        echo "    $storage $kind run $run: entries=$entries ms=$ms rss=$rss KiB (at ready $ready, after malloc_trim $trimmed) cpu=${cpu} ms reloads=$reloads machine_busy=${busy}%"
        record "{\"part\":\"load\",\"storage\":\"$storage\",\"store\":\"$kind\",\"run\":$run,\"entries\":$entries,\"load_ms\":$ms,\"rss_kib\":$rss,\"rss_ready_kib\":$ready,\"rss_trimmed_kib\":$trimmed,\"cpu_ms\":$cpu,\"reloads\":$reloads,\"machine_busy_pct\":$busy}"
      done
    done
  done
}

# --------------------------------------------------------------- 2. write
part_write() {
  local storage store
  new_db "${NAME}_w"
  for storage in memory redis database; do
    store="${NAME}_w"
    conf "$OUT/write.json" "$PORT" "$storage" "$store"
    start "write_$storage" "$OUT/write.json" "$PORT"
    echo "==> write: $WRITES x block_user, $storage storage"
    busy_start
    python3 - "$PORT" "$WRITES" "$WARMUP" "$storage" "$NAME" <<'PY' >"$OUT/write_$storage.json"
import http.client, json, sys, time
port, n, warm, storage, tag = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
headers = {"X-API-Key": "bench-key", "Content-Type": "application/json"}
expire = int(time.time()) + 3600
times = []
for i in range(warm + n):
    body = json.dumps({"user": f"{tag}-w-{storage}-{i}", "expire_at": expire})
    t0 = time.perf_counter_ns()
    conn.request("POST", "/api/block_user", body, headers)
    resp = conn.getresponse()
    data = resp.read()
    dt = time.perf_counter_ns() - t0
    if resp.status != 200 or b'"error"' in data:
        sys.exit(f"block_user failed: {resp.status} {data[:200]!r}")
    if i >= warm:
        times.append(dt / 1e6)
conn.close()
s = sorted(times)
q = lambda p: s[min(len(s) - 1, max(0, int(round(p * len(s))) - 1))]  # nearest rank
print(json.dumps({"part": "write", "storage": storage, "calls": n, "warmup": warm,
                  "p50_ms": round(q(0.50), 3), "p99_ms": round(q(0.99), 3),
                  "max_ms": round(s[-1], 3), "mean_ms": round(sum(s) / len(s), 3)}))
PY
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["machine_busy_pct"]=int(sys.argv[2]); print(json.dumps(d))' \
      "$OUT/write_$storage.json" "$(busy_pct)" >>"$OUT/results.jsonl"
    tail -1 "$OUT/results.jsonl" | sed 's/^/    /'
    stop "$STARTED"
  done
}

# ----------------------------------------------------------- 3. propagate
part_propagate() {
  local storage store a b url api
  new_db "${NAME}_p"
  for storage in memory redis database; do
    store="${NAME}_p"
    conf "$OUT/node_a.json" "$PORT" "$storage" "$store"
    start "propagate_${storage}_a" "$OUT/node_a.json" "$PORT"
    a=$STARTED
    if [ "$storage" = memory ]; then
      # No store to share: one node, for reference.
      b=$a; url=$PORT
    else
      conf "$OUT/node_b.json" "$((PORT + 1))" "$storage" "$store"
      start "propagate_${storage}_b" "$OUT/node_b.json" "$((PORT + 1))"
      b=$STARTED; url=$((PORT + 1))
    fi
    api=$PORT
    echo "==> propagate: $storage, block_user on :$api, close seen on :$url, $ROUNDS rounds"
    "$LG" block --connections 10 --user-connections 1 --revoke --rounds "$ROUNDS" --grace-ms 100 \
      --url "ws://127.0.0.1:$url/connection/websocket" --api-url "http://127.0.0.1:$api/api" \
      --api-key bench-key --secret bench-secret --server-pid "$b" --max-time 600 \
      >"$OUT/propagate_$storage.txt"
    tail -1 "$OUT/propagate_$storage.txt" \
      | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); d["part"]="propagate"; d["storage"]=sys.argv[1]; d["nodes"]=int(sys.argv[2]); print(json.dumps(d))' \
        "$storage" "$([ "$a" = "$b" ] && echo 1 || echo 2)" >>"$OUT/results.jsonl"
    tail -1 "$OUT/results.jsonl" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print("    block p50=%s p99=%s max=%s ms, revoke p50=%s p99=%s ms, ok=%s" % (d.get("block_close_p50_ms"), d.get("block_close_p99_ms"), d.get("block_close_max_ms"), d.get("revoke_close_p50_ms"), d.get("revoke_close_p99_ms"), d.get("ok")))'
    [ "$a" = "$b" ] || stop "$b"
    stop "$a"
  done
}

# ---------------------------------------------------------------- 4. idle
part_idle() {
  # The config and the call of scripts/bench.sh's idle scenario.
  python3 - "$OUT/idle.json" "$PORT" "$KEYS/rsa_public.pem" <<'PY'
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
  local rep
  for rep in $(seq 1 "$IDLE_REPS"); do
    start "idle_$rep" "$OUT/idle.json" "$PORT"
    echo "==> idle: $IDLE_N connections, run $rep"
    "$LG" idle --connections "$IDLE_N" --hold 10 \
      --url "ws://127.0.0.1:$PORT/connection/websocket" --api-url "http://127.0.0.1:$PORT/api" \
      --api-key bench-key --secret bench-secret --server-pid "$STARTED" >"$OUT/idle_$rep.txt"
    stop "$STARTED"
    tail -1 "$OUT/idle_$rep.txt" \
      | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); d["part"]="idle"; d["run"]=int(sys.argv[1]); print(json.dumps(d))' "$rep" \
        >>"$OUT/results.jsonl"
    tail -1 "$OUT/results.jsonl" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print("    opened=%s rss/conn=%s B" % (d.get("opened"), d.get("server_rss_per_conn_bytes")))'
  done
}

# ----------------------------------------------------------- 5. callgrind
part_callgrind() {
  echo "==> callgrind: protect"
  nice -n 10 bash scripts/callgrind.sh protect | tee "$OUT/callgrind.txt"
  awk '/instructions per operation/ {printf "{\"part\":\"callgrind\",\"path\":\"%s\",\"instructions_per_op\":%s}\n", $1, $2}' \
    "$OUT/callgrind.txt" >>"$OUT/results.jsonl"
}

for part in $PARTS; do
  case $part in
    load|write|propagate|idle|callgrind) "part_$part" ;;
    *) echo "unknown part: $part (load write propagate idle callgrind)" >&2; exit 2 ;;
  esac
done
cleanup

echo
echo "==> summary ($(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), $(git rev-parse --short HEAD))"
python3 - "$OUT/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def med(xs): return statistics.median(xs) if xs else float("nan")
load = [r for r in rows if r["part"] == "load"]
for storage in ("redis", "database"):
    runs = sorted({r["run"] for r in load if r["storage"] == storage})
    if not runs: continue
    ms, per, ready, trimmed, cpu, reloads, busy, full, empty, n = [], [], [], [], [], [], [], [], [], 0
    for run in runs:
        f = next(r for r in load if r["storage"] == storage and r["run"] == run and r["store"] == "full")
        e = next(r for r in load if r["storage"] == storage and r["run"] == run and r["store"] == "empty")
        n = max(f["entries"], 1)
        ms.append(f["load_ms"]); full.append(f["rss_kib"]); empty.append(e["rss_kib"])
        per.append((f["rss_kib"] - e["rss_kib"]) * 1024 / n)
        ready.append((f["rss_ready_kib"] - e["rss_ready_kib"]) * 1024 / n)
        if f["rss_trimmed_kib"] is not None and e["rss_trimmed_kib"] is not None:
            trimmed.append((f["rss_trimmed_kib"] - e["rss_trimmed_kib"]) * 1024 / n)
        cpu.append(f["cpu_ms"]); reloads.append(f["reloads"]); busy.append(f["machine_busy_pct"])
    print(f"load {storage:<9} entries={n} load_ms min={min(ms)} median={med(ms):g}  "
          f"bytes/entry (settled) min={min(per):.1f} median={med(per):.1f}  "
          f"(rss full {min(full)}..{max(full)} KiB, empty {min(empty)}..{max(empty)} KiB, {len(runs)} runs)")
    print(f"     {storage:<9} bytes/entry at ready median={med(ready):.1f}; after malloc_trim median={med(trimmed):.1f}; "
          f"start cpu median={med(cpu):g} ms; reloads after start {min(reloads)}..{max(reloads)} (all features); "
          f"machine busy {min(busy)}..{max(busy)}% of a core")
for r in rows:
    if r["part"] == "write":
        print(f'write {r["storage"]:<9} block_user x{r["calls"]}: p50={r["p50_ms"]} p99={r["p99_ms"]} max={r["max_ms"]} ms (mean {r["mean_ms"]}; machine busy {r["machine_busy_pct"]}% of a core)')
for r in rows:
    if r["part"] == "propagate":
        print(f'propagate {r["storage"]:<9} nodes={r["nodes"]} rounds={r.get("rounds", 1)}: block->close p50={r.get("block_close_p50_ms")} '
              f'p99={r.get("block_close_p99_ms")} max={r.get("block_close_max_ms")} ms; revoke->close p50={r.get("revoke_close_p50_ms")} '
              f'p99={r.get("revoke_close_p99_ms")} ms; closes {r.get("block_closes_seen")}/{r.get("block_targets")} ok={r.get("ok")}; '
              f'other cpu {r.get("other_cpu_pct")}%')
for r in rows:
    if r["part"] == "idle":
        print(f'idle run {r["run"]}: {r.get("opened")} connections, server rss/conn={r.get("server_rss_per_conn_bytes")} B; '
              f'other cpu while opening {r.get("open_other_cpu_pct")}%, holding {r.get("hold_other_cpu_pct")}%')
for r in rows:
    if r["part"] == "callgrind":
        print(f'callgrind {r["path"]}: {r["instructions_per_op"]} instructions per operation')
PY
