#!/usr/bin/env bash
# Runs every Gyre test, the same way CI does (.ci/run calls this script):
#   formatting and lints, unit and integration tests (real servers on
#   127.0.0.1), the load generator's smoke test, and the real-SDK suite
#   (centrifuge-js, centrifuge-python, cent, cent.js installed into ignored
#   folders under tests/sdk/).
# The storage tests need Redis and PostgreSQL on loopback: the machine's own
# (127.0.0.1:6379, 127.0.0.1:5432, user postgres, trust) when they run, else
# private instances this script starts on free ports and stops at exit
# (override with GYRE_TEST_REDIS=host:port and GYRE_TEST_POSTGRES=<dsn>).
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "scripts/test.sh: '$1' not found: $2" >&2
    exit 1
  fi
}
need cargo "install the Rust toolchain (rustup), 1.95 or newer"
need node "install Node.js 20+ with npm (e.g. apt-get install nodejs npm)"
need npm "install npm (e.g. apt-get install npm)"
need python3 "install Python 3.10+ with venv (e.g. apt-get install python3 python3-venv)"
# The cluster tests start their own Redis processes (shards, a Redis Cluster, restarts).
need redis-server "install Redis 7 (e.g. apt-get install redis-server): the cluster tests start private redis-server processes"
need redis-cli "install Redis 7's redis-cli (apt-get install redis-tools): the Redis Cluster test creates its cluster with it"

step() { printf '\n==> %s\n' "$*"; }
die() { echo "scripts/test.sh: $*" >&2; exit 1; }

CLEANUP=()
cleanup() { for c in "${CLEANUP[@]}"; do eval "$c" || true; done; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

ensure_redis() {
  if [ -n "${GYRE_TEST_REDIS:-}" ]; then return; fi
  if command -v redis-cli >/dev/null 2>&1 && redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
    export GYRE_TEST_REDIS=127.0.0.1:6379
    return
  fi
  command -v redis-server >/dev/null 2>&1 ||
    die "Redis is not running on 127.0.0.1:6379 and redis-server is not installed: apt-get install redis-server (or set GYRE_TEST_REDIS=host:port)"
  local port dir
  port=$(free_port)
  dir=$(mktemp -d)
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  CLEANUP+=("kill \$(cat '$dir/redis.pid') 2>/dev/null; rm -rf '$dir'")
  for _ in $(seq 1 50); do
    redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
  done
  export GYRE_TEST_REDIS=127.0.0.1:$port
  echo "started a private Redis on $GYRE_TEST_REDIS"
}

ensure_postgres() {
  if [ -n "${GYRE_TEST_POSTGRES:-}" ]; then return; fi
  if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; then
    export GYRE_TEST_POSTGRES=postgresql://postgres@127.0.0.1:5432/postgres
    return
  fi
  local bin
  bin=$(dirname "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | tail -n 1)")
  [ -x "$bin/initdb" ] && [ -x "$bin/pg_ctl" ] ||
    die "PostgreSQL is not running on 127.0.0.1:5432 and is not installed: apt-get install postgresql (or set GYRE_TEST_POSTGRES=postgresql://user@host:port/db)"
  local port dir as=()
  port=$(free_port)
  dir=$(mktemp -d)
  # initdb refuses to run as root: use the postgres account when root.
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' user to start PostgreSQL"
    chown postgres "$dir"
    as=(runuser -u postgres --)
  fi
  "${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust >/dev/null
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null
  CLEANUP+=("${as[*]} '$bin/pg_ctl' -D '$dir/data' -m fast stop >/dev/null; rm -rf '$dir'")
  export GYRE_TEST_POSTGRES=postgresql://postgres@127.0.0.1:$port/postgres
  echo "started a private PostgreSQL on 127.0.0.1:$port"
}

step "services for the storage tests"
ensure_redis
ensure_postgres
echo "Redis: $GYRE_TEST_REDIS; PostgreSQL: $GYRE_TEST_POSTGRES"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo build"
cargo build --workspace --locked

step "cargo test (unit, integration, CLI, loadgen smoke)"
cargo test --workspace --locked

step "real SDK compatibility suite"
GYRE_BIN="$PWD/target/debug/gyre" bash tests/sdk/run.sh
