#!/usr/bin/env bash
# The peer comparison, one command: `bash benches/peers/run.sh`.
# Makes a Python virtual environment with the pinned stores, builds sessiondb's side in
# release mode, runs the same workload on every store, and writes results.md, results.json
# and append_latency.svg beside this script. Takes a few minutes; not part of CI.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r "$here/requirements.txt"
fi
cargo build --release --example peer_bench
"$venv/bin/python" "$here/compare.py" "$PWD/target/release/examples/peer_bench"
