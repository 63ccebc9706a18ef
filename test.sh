#!/usr/bin/env bash
# The whole test suite, as README shows it and CI runs it: the Rust tests on SQLite, the
# async tests (feature `tokio`) and their doctest, the same integration suite on a throwaway
# PostgreSQL server (feature `postgres`) and through PgBouncer, then the Python package's
# tests and the OpenAI Agents SDK's own session tests against it
# (bindings/python/run-tests.sh builds it in a venv).
set -euo pipefail
cd "$(dirname "$0")"

# Each stage's output goes through as it runs; a summary at the end (also after a failure)
# says which stages passed, failed or were skipped, with their test counts.
summary=()
logs="$(mktemp -d)"
report() {
    echo
    echo "== summary"
    for line in "${summary[@]}"; do echo "   $line"; done
    rm -rf "$logs"
}
trap report EXIT
stage() {
    local name="$1" log="$logs/${#summary[@]}" start=$SECONDS status=passed note=""
    shift
    "$@" 2>&1 | tee "$log" || status=FAILED
    if grep -q "did NOT run\|will NOT run" "$log"; then note="; some tests SKIPPED (see above)"; fi
    # cargo: "test result: ok. 12 passed; 0 failed; 1 ignored"; pytest: "3 passed, 1 skipped".
    local counts
    counts="$(grep -Eo "[0-9]+ (passed|failed|ignored|skipped|errors?)" "$log" |
        awk '{n[$2] += $1} END {for (k in n) printf "%s%d %s", (i++ ? ", " : ""), n[k], k}')"
    summary+=("$(printf '%-7s %-46s %s (%ss)%s' "$status" "$name" "${counts:-no counts}" \
        "$((SECONDS - start))" "$note")")
    [ "$status" = passed ]
}

stage "Rust on SQLite" cargo test
stage "async (tokio)" cargo test --features tokio --test async_store
stage "async doctest" cargo test --features tokio --doc async_store

# On PostgreSQL (built with tokio too, so the async tests run there as well): every
# integration test file but those about SQLite files themselves
# (permissions, the -wal, opening a file: they use a file whatever the backend, so running
# them again would add nothing), each test in its own database;
# once straight to the server and once through PgBouncer in transaction mode.
# tests/postgres/with-server.sh starts both from the system's packages, installed here when
# missing (Debian: postgresql, pgbouncer); without them it says so loudly, and fails under
# CI=true.
have_server() { command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
if { ! have_server || ! command -v pgbouncer >/dev/null 2>&1; } && command -v apt-get >/dev/null 2>&1; then
    echo "== installing postgresql and pgbouncer with apt-get (the PostgreSQL tests need them)"
    sudo=()
    if [ "$(id -u)" != 0 ]; then sudo=(sudo -n); fi
    { "${sudo[@]}" apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q postgresql pgbouncer; } ||
        echo "!!! could not install postgresql and pgbouncer" >&2
fi
sqlite_only="access faults open"
pg_tests=()
for file in tests/*.rs; do
    name="$(basename "$file" .rs)"
    case " $sqlite_only " in *" $name "*) continue ;; esac
    pg_tests+=(--test "$name")
done
# shellcheck disable=SC2016 # expanded by the inner shell
stage "PostgreSQL, direct and through PgBouncer" bash tests/postgres/with-server.sh bash -c '
    set -euo pipefail
    SESSIONDB_TEST_BACKEND=postgres SESSIONDB_CRASH_ROUNDS=60 cargo test --features postgres,tokio "$@"
    if [ -n "${SESSIONDB_TEST_PGBOUNCER:-}" ]; then
        echo "== the same through PgBouncer (transaction mode, pgbouncer=true)"
        SESSIONDB_TEST_BACKEND=pgbouncer SESSIONDB_CRASH_ROUNDS=20 cargo test --features postgres,tokio "$@"
    fi' pg-suite "${pg_tests[@]}"
stage "library unit tests with postgres built in" cargo test --features postgres,tokio --lib

stage "Python (SQLite, PostgreSQL, upstream suites)" bash bindings/python/run-tests.sh
