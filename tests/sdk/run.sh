#!/usr/bin/env bash
# Real-SDK compatibility suite for Gyre.
#
#   bash tests/sdk/run.sh                 # every scenario
#   bash tests/sdk/run.sh js_basic cent   # only scenarios whose name contains one of the words
#
# Installs the pinned SDKs on first use (tests/sdk/node_modules, tests/sdk/.venv),
# starts $GYRE_BIN (default: target/debug/gyre under the repository root) on a
# free loopback port with a generated config, runs every scenario script as a
# subprocess with a time limit, and prints "ok NAME" / "FAILED NAME" (plus the
# script output) per scenario and a final "sdk: N passed, M failed" line.
# Exit status: 0 when all passed, 1 otherwise, 2 when the suite could not start.
#
# Environment: GYRE_BIN (default $CARGO_TARGET_DIR or target, then debug/gyre), SDK_TIMEOUT (seconds per scenario, default 45),
# SDK_VERBOSE=1 (print every scenario's output and frames), SDK_KEEP_LOG=1
# (keep the temp dir with config and server log).
set -euo pipefail

SDK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SDK_DIR/../.." && pwd)"
SCENARIO_TIMEOUT="${SDK_TIMEOUT:-45}"

die() {
  echo "sdk: $*" >&2
  exit 2
}

command -v node >/dev/null 2>&1 || die "node not found (Node 20 or newer is required)"
command -v npm >/dev/null 2>&1 || die "npm not found"
command -v python3 >/dev/null 2>&1 || die "python3 not found"
command -v curl >/dev/null 2>&1 || die "curl not found"

# --- gyre binary -------------------------------------------------------------
GYRE_BIN="${GYRE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/gyre}"
if [[ ! -f "$GYRE_BIN" || ! -x "$GYRE_BIN" ]]; then
  die "gyre binary not found or not executable at '$GYRE_BIN': build it with 'cargo build -p gyre' or set GYRE_BIN"
fi
GYRE_BIN="$(cd "$(dirname "$GYRE_BIN")" && pwd)/$(basename "$GYRE_BIN")"

# --- dependencies --------------------------------------------------------------
install_log="$(mktemp)"
node_ok() {
  [[ -f "$SDK_DIR/node_modules/centrifuge/package.json" && -f "$SDK_DIR/node_modules/ws/package.json" &&
    -f "$SDK_DIR/node_modules/cent.js/package.json" && -f "$SDK_DIR/node_modules/eventsource/package.json" ]] &&
    (cd "$SDK_DIR" && node -e '
      const fs = require("fs");
      const want = {centrifuge: "5.8.0", ws: "8.23.0", "cent.js": "6.1.0", eventsource: "4.1.1"};
      for (const [p, v] of Object.entries(want)) {
        const got = JSON.parse(fs.readFileSync("node_modules/" + p + "/package.json", "utf8")).version;
        if (got !== v) process.exit(1);
      }' >/dev/null 2>&1)
}
if ! node_ok; then
  echo "sdk: installing npm packages into tests/sdk/node_modules"
  if [[ -f "$SDK_DIR/package-lock.json" ]]; then
    npm_cmd=(npm ci --no-audit --no-fund)
  else
    npm_cmd=(npm install --no-audit --no-fund)
  fi
  if ! (cd "$SDK_DIR" && "${npm_cmd[@]}" </dev/null >"$install_log" 2>&1); then
    cat "$install_log" >&2
    die "npm install failed"
  fi
  node_ok || die "npm packages still missing or at unexpected versions after install"
fi

PY="$SDK_DIR/.venv/bin/python"
py_ok() {
  [[ -x "$PY" ]] && "$PY" - <<'PYEOF' >/dev/null 2>&1
from importlib.metadata import version
assert version("cent") == "5.2.0"
assert version("centrifuge-python") == "0.7.0"
import cent, centrifuge  # noqa: F401
PYEOF
}
if ! py_ok; then
  echo "sdk: installing Python packages into tests/sdk/.venv"
  if ! { [[ -x "$PY" ]] || python3 -m venv "$SDK_DIR/.venv"; } </dev/null >"$install_log" 2>&1 ||
    ! "$PY" -m pip install --disable-pip-version-check -q -r "$SDK_DIR/requirements.txt" </dev/null >>"$install_log" 2>&1; then
    cat "$install_log" >&2
    die "Python venv / pip install failed"
  fi
  py_ok || die "Python packages still missing or at unexpected versions after install"
fi
rm -f "$install_log"

# --- server --------------------------------------------------------------------
TMP="$(mktemp -d "${TMPDIR:-/tmp}/gyre-sdk.XXXXXX")"
GYRE_PID=""
cleanup() {
  if [[ -n "$GYRE_PID" ]] && kill -0 "$GYRE_PID" 2>/dev/null; then
    kill "$GYRE_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$GYRE_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$GYRE_PID" 2>/dev/null || true
    wait "$GYRE_PID" 2>/dev/null || true
  fi
  if [[ "${SDK_KEEP_LOG:-}" == "1" ]]; then
    echo "sdk: config and server log kept in $TMP"
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
SECRET="sdk-secret-$RANDOM$RANDOM"
API_KEY="sdk-api-key-$RANDOM$RANDOM"
NS="sdk"

# client.allowed_origins stays empty: the SDKs on Node/Python send no Origin.
# expired_close_delay / expired_sub_close_delay are short so that a token
# refresh (connection or subscription) that does not work is
# visible within the token-refresh scenarios; the ping interval is short so
# that the SDKs' ping/pong handling is exercised in the longer scenarios.
# http_stream and sse: centrifuge-js's bidirectional emulation transports
# (POST /connection/http_stream, GET /connection/sse, commands to /emulation).
cat >"$TMP/config.json" <<EOF
{
  "http_server": {"address": "127.0.0.1", "port": $PORT},
  "log": {"level": "info"},
  "health": {"enabled": true},
  "client": {
    "token": {"hmac_secret_key": "$SECRET"},
    "ping_interval": "4s",
    "pong_timeout": "3s",
    "expired_close_delay": "3s",
    "expired_sub_close_delay": "3s"
  },
  "http_api": {"key": "$API_KEY"},
  "http_stream": {"enabled": true},
  "sse": {"enabled": true},
  "channel": {
    "namespaces": [
      {
        "name": "$NS",
        "presence": true,
        "join_leave": true,
        "force_push_join_leave": true,
        "history_size": 100,
        "history_ttl": "300s",
        "force_recovery": true,
        "allow_subscribe_for_client": true,
        "allow_publish_for_subscriber": true,
        "allow_presence_for_subscriber": true,
        "allow_history_for_subscriber": true
      }
    ]
  }
}
EOF

"$GYRE_BIN" checkconfig --strict -c "$TMP/config.json" </dev/null >"$TMP/checkconfig.log" 2>&1 ||
  { cat "$TMP/checkconfig.log" >&2; die "gyre rejected the generated config"; }

NO_COLOR=1 "$GYRE_BIN" -c "$TMP/config.json" </dev/null >"$TMP/gyre.log" 2>&1 &
GYRE_PID=$!

listening=0
for _ in $(seq 1 150); do
  if ! kill -0 "$GYRE_PID" 2>/dev/null; then
    cat "$TMP/gyre.log" >&2
    die "gyre exited during startup"
  fi
  if [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health" 2>/dev/null || true)" == "200" ]]; then
    listening=1
    break
  fi
  sleep 0.1
done
[[ "$listening" == "1" ]] || { cat "$TMP/gyre.log" >&2; die "gyre did not answer /health on port $PORT within 15 s"; }

export SDK_WS_URL="ws://127.0.0.1:$PORT/connection/websocket"
export SDK_API_URL="http://127.0.0.1:$PORT/api"
export SDK_HTTP_URL="http://127.0.0.1:$PORT"
export SDK_API_KEY="$API_KEY"
export SDK_HMAC_SECRET="$SECRET"
export SDK_NS="$NS"
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"
export PYTHONUNBUFFERED=1
export PYTHONDONTWRITEBYTECODE=1
export NODE_PATH="$SDK_DIR/node_modules"

echo "sdk: gyre $("$GYRE_BIN" version 2>/dev/null || echo '?') on 127.0.0.1:$PORT"

# --- scenarios -----------------------------------------------------------------
mapfile -t all < <(cd "$SDK_DIR/scenarios" && ls -1 -- *.js *.py 2>/dev/null | sort)
selected=()
for f in "${all[@]}"; do
  if [[ $# -eq 0 ]]; then
    selected+=("$f")
  else
    for want in "$@"; do
      if [[ "$f" == *"$want"* ]]; then
        selected+=("$f")
        break
      fi
    done
  fi
done
[[ ${#selected[@]} -gt 0 ]] || die "no scenario matches: $*"

passed=0
failed=0
failed_names=()
for f in "${selected[@]}"; do
  name="${f%.*}"
  case "$f" in
    *.js) cmd=(node "$SDK_DIR/scenarios/$f") ;;
    *.py) cmd=("$PY" "$SDK_DIR/scenarios/$f") ;;
  esac
  out="$TMP/$name.out"
  t0=$(date +%s.%N)
  rc=0
  (cd "$SDK_DIR" && timeout -k 5 "$SCENARIO_TIMEOUT" "${cmd[@]}") </dev/null >"$out" 2>&1 || rc=$?
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  if [[ $rc -eq 0 ]]; then
    passed=$((passed + 1))
    echo "ok $name (${secs}s)"
    if [[ "${SDK_VERBOSE:-}" == "1" ]]; then sed 's/^/    /' "$out"; fi
  else
    failed=$((failed + 1))
    failed_names+=("$name")
    if [[ $rc -eq 124 || $rc -eq 137 ]]; then
      echo "FAILED $name (${secs}s, killed after ${SCENARIO_TIMEOUT}s)"
    else
      echo "FAILED $name (${secs}s, exit $rc)"
    fi
    sed 's/^/    /' "$out"
  fi
  if ! kill -0 "$GYRE_PID" 2>/dev/null; then
    echo "sdk: gyre died while running $name; server log:"
    sed 's/^/    /' "$TMP/gyre.log" | tail -n 100
    GYRE_PID=""
    break
  fi
done

# Scenarios not run because the server died count as failed.
not_run=$((${#selected[@]} - passed - failed))
failed=$((failed + not_run))

if [[ $failed -gt 0 ]]; then
  echo "sdk: failed: ${failed_names[*]:-}"
  if [[ -n "$GYRE_PID" ]]; then
    echo "sdk: last lines of the gyre log:"
    tail -n 40 "$TMP/gyre.log" | sed 's/^/    /'
  fi
fi
echo "sdk: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
