#!/usr/bin/env bash
# The whole test suite, as README shows it and CI runs it: the Rust tests, the async tests
# (feature `tokio`) and their doctest, then the Python package's tests and the OpenAI Agents
# SDK's own session tests against it (bindings/python/run-tests.sh builds it in a venv).
set -euo pipefail
cd "$(dirname "$0")"
cargo test
cargo test --features tokio --test async_store
cargo test --features tokio --doc async_store
bash bindings/python/run-tests.sh
