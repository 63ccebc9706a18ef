#!/usr/bin/env bash
# sessiondb against the OpenAI Agents SDK's SQLAlchemySession and Google ADK's
# DatabaseSessionService on one throwaway PostgreSQL server, in one run: append at 1,000
# messages, full read, 4 processes appending. Each has its own database on the server.
#
#   bash benches/peers/pg_peers.sh [MESSAGES] [REPEAT]
#
# Installs each peer into its own venv under target/ (openai-agents[sqlalchemy], asyncpg;
# google-adk[db], asyncpg).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
messages="${1:-1000}"
repeat="${2:-200}"
venv="$root/target/pgpeers-venv"
adk="$root/target/adk-venv"
for v in "$venv" "$adk"; do
    if [ ! -x "$v/bin/python" ]; then
        python3 -m venv "$v"
    fi
done
"$venv/bin/pip" install -q --disable-pip-version-check "openai-agents[sqlalchemy]==0.24.0" asyncpg==0.32.0
"$adk/bin/pip" install -q --disable-pip-version-check "google-adk[db]==2.13.0" asyncpg==0.32.0
cargo build -q --release --features postgres --example pg_peer
exec bash tests/postgres/with-server.sh bash -c '
    set -euo pipefail
    # Durable commits for a benchmark: the test server turns them off.
    psql -q "$SESSIONDB_TEST_PG" -c "ALTER SYSTEM SET fsync = on" -c "ALTER SYSTEM SET synchronous_commit = on" -c "SELECT pg_reload_conf()" >/dev/null
    psql -q "$SESSIONDB_TEST_PG" -c "CREATE DATABASE ours" -c "CREATE DATABASE theirs" -c "CREATE DATABASE adk"
    tcp="${SESSIONDB_TEST_PG_TCP%/postgres}"
    ours=$(target/release/examples/pg_peer "$tcp/ours" '"$messages"' '"$repeat"')
    theirs=$("'"$venv"'/bin/python" benches/peers/pg_peers.py "${tcp/postgresql:/postgresql+asyncpg:}/theirs" '"$messages"' '"$repeat"')
    adk=$("'"$adk"'/bin/python" benches/peers/pg_adk.py "${tcp/postgresql:/postgresql+asyncpg:}/adk" '"$messages"' '"$repeat"')
    echo "sessiondb:              $ours"
    echo "SQLAlchemySession:      $theirs"
    echo "DatabaseSessionService: $adk"
    echo "-- against SQLAlchemySession"
    python3 benches/peers/pg_ratio.py "$ours" "$theirs" '"$messages"'
    echo "-- against DatabaseSessionService"
    python3 benches/peers/pg_ratio.py "$ours" "$adk" '"$messages"'
'
