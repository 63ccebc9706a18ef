"""The statements (each a round trip) every SessiondbSaver call sends to PostgreSQL, counted in
the server's log. Only on the throwaway server of tests/postgres/with-server.sh, whose log it
reads and whose settings it changes (log_statement = all):

    bash tests/postgres/with-server.sh python bindings/python/bench/langgraph_statements.py [-v]

Each call is counted once its statements are prepared on the connection, as in a running
graph; -v prints them.
"""

from __future__ import annotations

import os
import re
import sys
import time
import uuid
from urllib.parse import parse_qs, urlparse

import psycopg
from langgraph.checkpoint.base import empty_checkpoint

import sessiondb
from sessiondb.langgraph import SessiondbSaver

URL = os.environ["SESSIONDB_TEST_PG_TCP"]
# with-server.sh keeps the server's log beside its socket.
LOG = os.path.join(parse_qs(urlparse(os.environ["SESSIONDB_TEST_PG"]).query)["host"][0], "server.log")
VERBOSE = "-v" in sys.argv


def put_one(saver, tid: str, parent: dict | None, i: int, versions: dict) -> dict:
    cp = empty_checkpoint()
    new = {"messages": saver.get_next_version(versions.get("messages"), None)}
    versions.update(new)
    cp["channel_versions"] = dict(versions)
    cp["channel_values"] = {"messages": [{"role": "assistant", "content": f"reply {i}"}]}
    config = parent or {"configurable": {"thread_id": tid, "checkpoint_ns": ""}}
    return saver.put(config, cp, {"source": "loop", "step": i}, new)


def counted(name: str, call) -> None:
    time.sleep(0.3)
    start = os.path.getsize(LOG)
    call()
    time.sleep(0.5)  # the server writes its log asynchronously
    with open(LOG) as f:
        f.seek(start)
        lines = [
            line
            for line in f.read().splitlines()
            if line.startswith("[sessiondb]") and ("LOG:  statement:" in line or "LOG:  execute" in line)
        ]
    print(f"| {name} | {len(lines)} |")
    if VERBOSE:
        for line in lines:
            print("    ", re.sub(r"\s+", " ", line)[:160])


def main() -> None:
    with psycopg.connect(URL, autocommit=True) as db:
        db.execute("ALTER SYSTEM SET log_statement = 'all'")
        db.execute("ALTER SYSTEM SET log_line_prefix = '[%a] '")
        db.execute("SELECT pg_reload_conf()")
    saver = SessiondbSaver(sessiondb.Store(URL))
    # Every statement prepared once on the pool's connection first.
    for _ in range(2):
        tid = str(uuid.uuid4())
        parent, versions = None, {}
        for i in range(10):
            parent = put_one(saver, tid, parent, i, versions)
        saver.put_writes(parent, [("messages", 1)], "task")
        saver.get_tuple({"configurable": {"thread_id": tid}})
        saver.get_tuple(parent)
        saver.copy_thread(tid, str(uuid.uuid4()))
    tid = str(uuid.uuid4())
    state: dict = {"parent": None, "versions": {}}

    def put() -> None:
        state["parent"] = put_one(saver, tid, state["parent"], 0, state["versions"])

    print("| call | statements |\n|---|---|")
    counted("put, a new thread", put)
    for _ in range(9):
        put()
    counted("put, thread of 10", put)
    counted("put_writes", lambda: saver.put_writes(state["parent"], [("messages", 1)], "task"))
    counted("get_tuple (latest)", lambda: saver.get_tuple({"configurable": {"thread_id": tid}}))
    counted("get_tuple (by id)", lambda: saver.get_tuple(state["parent"]))
    copy = str(uuid.uuid4())
    counted("copy_thread", lambda: saver.copy_thread(tid, copy))
    counted("get_tuple (latest) of the copy", lambda: saver.get_tuple({"configurable": {"thread_id": copy}}))
    on_copy = {"parent": saver.get_tuple({"configurable": {"thread_id": copy}}).config}

    def put_on_copy() -> None:
        on_copy["parent"] = put_one(saver, copy, on_copy["parent"], 0, state["versions"])

    counted("put on the copy", put_on_copy)


if __name__ == "__main__":
    main()
