#!/usr/bin/env bash
# The whole test suite, as README shows it and CI runs it: the Rust tests, the async tests
# (feature `tokio`) and their doctest.
set -euo pipefail
cd "$(dirname "$0")"
cargo test
cargo test --features tokio --test async_store
cargo test --features tokio --doc async_store
