#!/usr/bin/env bash
# Runs every Gyre test, the same way CI does (.ci/run calls this script):
#   formatting and lints, unit and integration tests (real servers on
#   127.0.0.1), the load generator's smoke test, and the real-SDK suite
#   (centrifuge-js, centrifuge-python, cent, cent.js installed into ignored
#   folders under tests/sdk/).
# Gyre keeps everything in memory so far: no Redis or PostgreSQL is needed.
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

step() { printf '\n==> %s\n' "$*"; }

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
