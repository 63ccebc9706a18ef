"""sessiondb.langgraph.SessiondbSaver against LangGraph's SqliteSaver (and PostgresSaver with
--pg URL), side by side in one run.

    python bench/langgraph_savers.py [--turns 1000] [--repeat 200] [--pg postgres://... [--pg-only]]

Measures, for each saver: one put and one get_tuple (latest) on a thread holding 10 and
1,000 checkpoints, copy_thread of a 1,000-checkpoint thread (to a new thread each time),
prune(keep_latest) of 1,000 threads of 5 checkpoints, the database's size after --turns
turns of a graph whose state is a list of messages, and 4 processes putting 250 checkpoints each at once (with how many
survived). Prints medians and the ratio theirs / ours. A saver without a method prints n/a.
"""

from __future__ import annotations

import argparse
import multiprocessing
import operator
import os
import sqlite3
import tempfile
import time
import uuid
from contextlib import ExitStack
from typing import Annotated, TypedDict

from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import START, StateGraph

import sessiondb
from sessiondb.langgraph import SessiondbSaver
from timing import median_us


def ours(target: str) -> SessiondbSaver:
    return SessiondbSaver(sessiondb.Store(target))


def sqlite_saver(target: str) -> SqliteSaver:
    saver = SqliteSaver(sqlite3.connect(target, check_same_thread=False, timeout=30))
    saver.setup()
    return saver


def postgres_saver(url: str, stack: ExitStack):
    from langgraph.checkpoint.postgres import PostgresSaver

    saver = stack.enter_context(PostgresSaver.from_conn_string(url))
    saver.setup()
    return saver


def put_one(saver, tid: str, parent: dict | None, i: int, versions: dict) -> dict:
    cp = empty_checkpoint()
    new = {"messages": saver.get_next_version(versions.get("messages"), None)}
    versions.update(new)
    cp["channel_versions"] = dict(versions)
    cp["channel_values"] = {"messages": [{"role": "assistant", "content": f"reply {i}"}]}
    config = parent or {"configurable": {"thread_id": tid, "checkpoint_ns": ""}}
    return saver.put(config, cp, {"source": "loop", "step": i}, new)


def fill(saver, tid: str, n: int) -> tuple[dict, dict]:
    parent, versions = None, {}
    for i in range(n):
        parent = put_one(saver, tid, parent, i, versions)
    return parent, versions


def put_and_get(saver, n: int, repeat: int) -> tuple[float, float]:
    tid = str(uuid.uuid4())
    parent, versions = fill(saver, tid, n)
    state = {"parent": parent, "i": n}

    def put():
        state["parent"] = put_one(saver, tid, state["parent"], state["i"], versions)
        state["i"] += 1

    put_us = median_us(put, repeat)
    get_us = median_us(lambda: saver.get_tuple({"configurable": {"thread_id": tid}}), repeat)
    return put_us, get_us


def copy_1000(saver, repeat: int) -> float | None:
    tid = str(uuid.uuid4())
    fill(saver, tid, 1000)
    try:
        saver.copy_thread(tid, str(uuid.uuid4()))
    except NotImplementedError:
        return None
    # The median of many copies, as put and get_tuple: the first on a connection also
    # prepares its statements there.
    return median_us(lambda: saver.copy_thread(tid, str(uuid.uuid4())), repeat)


def prune_1000(saver) -> float | None:
    tids = [str(uuid.uuid4()) for _ in range(1000)]
    for tid in tids:
        fill(saver, tid, 5)
    try:
        t = time.perf_counter()
        saver.prune(tids, strategy="keep_latest")
        return (time.perf_counter() - t) * 1e6
    except NotImplementedError:
        return None


class Chat(TypedDict):
    messages: Annotated[list[dict], operator.add]


def reply(state: Chat) -> Chat:
    return {"messages": [{"role": "assistant", "content": f"reply {len(state['messages'])}"}]}


def file_size_after_turns(saver, turns: int, path: str) -> int:
    graph = StateGraph(Chat)
    graph.add_node("reply", reply)
    graph.add_edge(START, "reply")
    app = graph.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "chat"}}
    for i in range(turns):
        app.invoke({"messages": [{"role": "user", "content": f"question {i}"}]}, config)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return os.path.getsize(path)


def writer(kind: str, target: str, me: int, n: int, start, out) -> None:
    saver = ours(target) if kind == "sessiondb" else sqlite_saver(target)
    start.wait()
    stored = 0
    parent, versions = None, {}
    for i in range(n):
        try:
            parent = put_one(saver, f"proc-{me}", parent, i, versions)
            stored += 1
        except Exception:  # noqa: BLE001 - counted as lost
            pass
    out.put(stored)


def four_processes(kind: str, target: str, n: int = 250) -> tuple[float, int]:
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(5), ctx.Queue()
    procs = [ctx.Process(target=writer, args=(kind, target, me, n, start, out)) for me in range(4)]
    for p in procs:
        p.start()
    start.wait()
    t = time.perf_counter()
    stored = sum(out.get() for _ in procs)
    elapsed = time.perf_counter() - t
    for p in procs:
        p.join()
    return elapsed * 1e3, stored


def row(name: str, theirs: float | None, mine: float | None, unit: str) -> None:
    def show(v):
        return "n/a" if v is None else f"{v:,.0f} {unit}"

    ratio = f"{theirs / mine:.2f}" if theirs is not None and mine else "-"
    print(f"| {name} | {show(mine)} | {show(theirs)} | {ratio} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--pg", help="also compare on this PostgreSQL database")
    parser.add_argument("--pg-only", action="store_true", help="skip the SQLite comparison")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        pairs = [("SqliteSaver", lambda name: ours(os.path.join(tmp, f"s-{name}.db")),
                  lambda name: sqlite_saver(os.path.join(tmp, f"l-{name}.db")))]
        if args.pg_only:
            pairs = []
        if args.pg:
            pairs.append(("PostgresSaver", lambda name: ours(args.pg),
                          lambda name: postgres_saver(args.pg, stack)))
        for label, make_ours, make_theirs in pairs:
            print(f"\n### SessiondbSaver vs {label}\n")
            print("| operation | sessiondb | theirs | theirs / ours |")
            print("|---|---|---|---|")
            for n in (10, 1000):
                mine = put_and_get(make_ours(f"pg{n}"), n, args.repeat)
                theirs = put_and_get(make_theirs(f"pg{n}"), n, args.repeat)
                row(f"put, thread of {n}", theirs[0], mine[0], "µs")
                row(f"get_tuple, thread of {n}", theirs[1], mine[1], "µs")
            row("copy_thread, 1,000 checkpoints", copy_1000(make_theirs("copy"), args.repeat),
                copy_1000(make_ours("copy"), args.repeat), "µs")
            row("prune keep_latest, 1,000 threads", prune_1000(make_theirs("prune")),
                prune_1000(make_ours("prune")), "µs")
            if label == "SqliteSaver":
                mine_path, theirs_path = os.path.join(tmp, "s-chat.db"), os.path.join(tmp, "l-chat.db")
                row(f"file size after {args.turns} turns",
                    file_size_after_turns(sqlite_saver(theirs_path), args.turns, theirs_path) / 1024,
                    file_size_after_turns(ours(mine_path), args.turns, mine_path) / 1024, "KiB")
                mine = four_processes("sessiondb", os.path.join(tmp, "s-procs.db"))
                theirs = four_processes("sqlite", os.path.join(tmp, "l-procs.db"))
                row("4 processes x 250 puts, wall time", theirs[0], mine[0], "ms")
                print(f"\nstored of 1,000: sessiondb {mine[1]}, SqliteSaver {theirs[1]}")


if __name__ == "__main__":
    main()
