#!/usr/bin/env bash
# Builds the Python package and runs its tests (on SQLite, then on a throwaway PostgreSQL
# server; among them `sessiondb mcp` driven by the official MCP client, the Claude Agent
# SDK's SessionStore conformance suite and LangGraph's checkpointer conformance suite, on
# both), then the OpenAI Agents SDK's own tests of SQLiteSession, AdvancedSQLiteSession and
# the wrappers over them (compaction, encryption, limits) against sessiondb.openai_agents'
# sessions (tests/upstream/ swaps them in).
# Needs a Rust toolchain, CPython 3.10+ with pip and libsqlite3-dev (installed here when missing);
# everything else comes from the package
# registries into a venv under bindings/python/target/ (ignored by git).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/target/venv"
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"

# Pinned: the adapters are checked against exactly these upstream releases.
pins=(maturin==1.15.0 pytest==8.4.2 pytest-asyncio==1.4.0 pytest-timeout==2.4.0 praisonaiagents==1.7.17
    openai-agents==0.24.0 sqlalchemy==2.1.9 mcp==2.3.0 claude-agent-sdk==0.2.184
    langgraph==1.2.24 langgraph-checkpoint==4.3.2 langgraph-checkpoint-conformance==0.0.2
    langgraph-checkpoint-sqlite==3.1.2 langgraph-checkpoint-postgres==3.2.0 "psycopg[binary]==3.3.9")

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}"

# The extension links the system's shared libsqlite3 (the one Python's sqlite3 module
# loads); building needs its development files.
if ! ls /usr/lib/*/libsqlite3.so /usr/lib/libsqlite3.so /usr/lib64/libsqlite3.so >/dev/null 2>&1 &&
    command -v apt-get >/dev/null 2>&1; then
    echo "== installing libsqlite3-dev with apt-get (the extension links the system's SQLite)"
    sudo=()
    if [ "$(id -u)" != 0 ]; then sudo=(sudo -n); fi
    { "${sudo[@]}" apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q libsqlite3-dev; } ||
        echo "!!! could not install libsqlite3-dev: the build below needs it" >&2
fi

(cd "$here" && cargo fmt --check)
develop() { (cd "$here" && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" maturin develop --quiet "$@"); }
echo "== build as pip install builds it (maturin develop, debug; no PostgreSQL)"
develop
(cd "$here" && SESSIONDB_EXPECT_POSTGRES=0 "$venv/bin/python" -m pytest tests/test_build.py -q -p no:cacheprovider)
echo "== build with PostgreSQL (maturin develop --features postgres, debug), for every test below"
develop --features postgres
export SESSIONDB_EXPECT_POSTGRES=1

echo "== the sessiondb CLI, with its MCP server and PostgreSQL (for the CLI and MCP tests, on both)"
(cd "$root" && cargo build --quiet --features mcp,postgres --bin sessiondb)
# Wherever cargo puts it (CARGO_TARGET_DIR may point outside the checkout).
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps |
    "$python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
export SESSIONDB_CLI="$target_dir/debug/sessiondb"

echo "== pytest: bindings/python/tests"
(cd "$here" && "$venv/bin/python" -m pytest tests -q -p no:cacheprovider --ignore tests/test_postgres.py)

echo "== pytest: the package on a throwaway PostgreSQL server"
(cd "$here" && bash "$root/tests/postgres/with-server.sh" \
    "$venv/bin/python" -m pytest tests/test_postgres.py -q -p no:cacheprovider)

echo "== the OpenAI Agents SDK's session tests (SQLite, Advanced, compaction, encryption, limits) against ours"
upstream="$here/target/upstream"
mkdir -p "$upstream"
if [ ! -d "$upstream/openai_agents-0.24.0/tests" ]; then
    "$venv/bin/python" -m pip download --quiet --disable-pip-version-check \
        --no-binary :all: --no-deps openai-agents==0.24.0 -d "$upstream"
    tar -xzf "$upstream/openai_agents-0.24.0.tar.gz" -C "$upstream"
fi
(cd "$upstream/openai_agents-0.24.0" &&
    PYTHONPATH="$here/tests/upstream" "$venv/bin/python" -m pytest -p sessiondb_swap \
        tests/memory/test_session.py tests/extensions/memory/test_advanced_sqlite_session.py \
        tests/memory/test_openai_responses_compaction_session.py \
        tests/extensions/memory/test_encrypt_session.py tests/memory/test_session_limit.py \
        tests/memory/test_compaction_model_visibility.py \
        -q -p no:cacheprovider --timeout=120)
