#!/usr/bin/env bash
# The whole test suite, as README shows it and CI runs it: the Rust tests on SQLite, the
# async tests (feature `tokio`) and their doctest, the same integration suite on a throwaway
# PostgreSQL server (feature `postgres`), then the Python package's tests and the OpenAI
# Agents SDK's own session tests against it (bindings/python/run-tests.sh builds it in a venv).
set -euo pipefail
cd "$(dirname "$0")"
cargo test
cargo test --features tokio --test async_store
cargo test --features tokio --doc async_store

# On PostgreSQL: every integration test file but those about SQLite files themselves
# (permissions, the -wal, backup by file copy, opening a file), each test in its own database.
# tests/postgres/with-server.sh starts the server from the system's packages; without them it
# says so loudly, and fails under CI=true.
sqlite_only="access backup faults open"
pg_tests=()
for file in tests/*.rs; do
    name="$(basename "$file" .rs)"
    case " $sqlite_only " in *" $name "*) continue ;; esac
    pg_tests+=(--test "$name")
done
bash tests/postgres/with-server.sh env SESSIONDB_TEST_BACKEND=postgres SESSIONDB_CRASH_ROUNDS=60 \
    cargo test --features postgres "${pg_tests[@]}"
cargo test --features postgres --lib

bash bindings/python/run-tests.sh
