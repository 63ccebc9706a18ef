#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server: initdb + pg_ctl from the system's
# PostgreSQL packages in a temporary directory, listening on a Unix socket in it and on a free
# TCP port of 127.0.0.1 (the multi-host tests connect over TCP). As root the server runs as
# user `nobody`, since PostgreSQL refuses to run as root. Exports
#   SESSIONDB_TEST_PG      URL of the server's `postgres` database, over the socket
#   SESSIONDB_TEST_PG_TCP  the same over TCP
#   SESSIONDB_TEST_PGBOUNCER  the same through PgBouncer in transaction mode, with
#                          `pgbouncer=true`, when the system has PgBouncer (Debian: pgbouncer)
# for the command, and stops the server and removes the directory when the command ends.
#
#   bash tests/postgres/with-server.sh cargo test --features postgres
#
# Without the server binaries it says so loudly and runs nothing; under CI=true that fails.
set -euo pipefail

bindir=""
for dir in "$(pg_config --bindir 2>/dev/null || true)" /usr/lib/postgresql/*/bin; do
    if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
        bindir="$dir"
        break
    fi
done
if [ -z "$bindir" ]; then
    echo "!!! PostgreSQL server binaries (initdb, pg_ctl) not found: the PostgreSQL tests did NOT run." >&2
    echo "!!! Install them (Debian: apt-get install postgresql) to run them." >&2
    if [ "${CI:-}" = "true" ]; then
        exit 1
    fi
    exit 0
fi

work="$(mktemp -d)"
as_server=()
if [ "$(id -u)" = 0 ]; then
    chown nobody "$work"
    as_server=(runuser -u nobody --)
fi
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

stop() {
    if [ -f "$work/pgbouncer.pid" ]; then
        kill "$(cat "$work/pgbouncer.pid")" 2>/dev/null || true
    fi
    "${as_server[@]}" "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap stop EXIT

"${as_server[@]}" "$bindir/initdb" -D "$work/data" -U sessiondb --auth=trust \
    --encoding=UTF8 --locale=C >"$work/initdb.log" 2>&1 || {
    cat "$work/initdb.log" >&2
    exit 1
}
# fsync off: the tests kill clients, never the server, so its own durability is not under
# test, and a 2-core machine runs the suite much faster without it.
"${as_server[@]}" "$bindir/pg_ctl" -D "$work/data" -l "$work/server.log" -w -t 60 \
    -o "-k $work -c listen_addresses=127.0.0.1 -p $port -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null || {
    cat "$work/server.log" >&2
    exit 1
}

# PgBouncer in transaction mode with two server connections per database, so that the
# transactions of a test's many clients land on server connections other transactions used.
if command -v pgbouncer >/dev/null; then
    bport="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    echo '"sessiondb" ""' >"$work/users.txt"
    cat >"$work/pgbouncer.ini" <<EOF
[databases]
* = host=$work port=$port
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = trust
auth_file = $work/users.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 1000
; Every test makes its own database, so PgBouncer's pools are many and short-lived: close
; their idle server connections soon, or the server runs out of connections mid-suite.
server_idle_timeout = 5
logfile = $work/pgbouncer.log
pidfile = $work/pgbouncer.pid
EOF
    if [ "$(id -u)" = 0 ]; then
        chown nobody "$work/pgbouncer.ini" "$work/users.txt"
    fi
    "${as_server[@]}" pgbouncer -d "$work/pgbouncer.ini" || {
        cat "$work/pgbouncer.log" >&2
        exit 1
    }
    export SESSIONDB_TEST_PGBOUNCER="postgresql://sessiondb@127.0.0.1:$bport/postgres?pgbouncer=true"
elif [ "${CI:-}" = "true" ]; then
    echo "!!! PgBouncer not found: install it (Debian: apt-get install pgbouncer)." >&2
    exit 1
else
    echo "!!! PgBouncer not found: the tests through a transaction-mode pooler will NOT run." >&2
fi

export SESSIONDB_TEST_PG="postgresql://sessiondb@/postgres?host=$work&port=$port"
export SESSIONDB_TEST_PG_TCP="postgresql://sessiondb@127.0.0.1:$port/postgres"
echo "== PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on port $port (throwaway)" >&2
"$@"
