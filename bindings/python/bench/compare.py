"""The adapters against the stores they replace, side by side in one run.

    python bench/compare.py [--messages 1000] [--repeat 200]

For each pair (sessiondb.openai_agents.SessiondbSession vs agents.SQLiteSession, measured
twice: each call awaited inside one running event loop, and each call run by its own
loop.run_until_complete,
sessiondb.praisonai.DefaultSessionStore vs praisonaiagents' DefaultSessionStore) it measures,
at a history of --messages messages: one append, a full read, a last-20 read,
set_chat_history of the history with its last message changed, a fork (hierarchical
stores only), and 4 processes appending 100 messages each to one session (with how many
messages survived). Prints a table of medians and the ratio theirs / ours.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import tempfile
import time

from agents import SQLiteSession
from praisonaiagents.session.hierarchy import HierarchicalSessionStore as PraisonHierarchical
from praisonaiagents.session.sqlite_store import SqliteSessionStore as PraisonSqlite
from praisonaiagents.session.sqlite_transcript_store import SqliteTranscriptStore as PraisonTranscript
from praisonaiagents.session.store import DefaultSessionStore as PraisonDefault

from sessiondb.openai_agents import SessiondbSession
from sessiondb._core import copy_json
from sessiondb.praisonai import DefaultSessionStore, HierarchicalSessionStore
from sessiondb.praisonai import SqliteSessionStore, SqliteTranscriptStore
from timing import median_us, median_us_awaited

def openai_pair(tmp, n, repeat, in_loop):
    """With ``in_loop`` each call is awaited inside one running loop; otherwise each is its
    own ``loop.run_until_complete``, which adds the loop's start-up to every call."""
    results = {}
    for name, make in (
        ("SQLiteSession", lambda: SQLiteSession("b", os.path.join(tmp, f"sdk-{in_loop}.db"))),
        ("SessiondbSession", lambda: SessiondbSession("b", os.path.join(tmp, f"ours-{in_loop}.db"))),
    ):
        s = make()
        loop = asyncio.new_event_loop()
        run = loop.run_until_complete
        run(s.add_items([{"role": "user", "content": f"message {i} " + "x" * 200} for i in range(n)]))
        ops = {
            "append": lambda: s.add_items([{"role": "user", "content": "more"}]),
            "read_full": lambda: s.get_items(),
            "read_last20": lambda: s.get_items(20),
        }
        r = {}
        for op, call in ops.items():
            if in_loop:
                r[op] = run(median_us_awaited(call, repeat))
            else:
                r[op] = median_us(lambda: run(call()), repeat)
        loop.close()
        results[name] = r
    return results


def praison_pair(tmp, n, repeat):
    results = {}
    for name, make in (
        ("praisonai Hierarchical", lambda: PraisonHierarchical(session_dir=os.path.join(tmp, "p"), retention="keep_all")),
        ("sessiondb Hierarchical", lambda: HierarchicalSessionStore(session_dir=os.path.join(tmp, "o"))),
    ):
        s = make()
        history = [{"role": "user", "content": f"message {i} " + "x" * 200} for i in range(n)]
        s.set_chat_history("b", history)
        r = {}
        # Appends are few: each of PraisonAI's rewrites the whole file.
        r["append"] = median_us(lambda: s.add_user_message("b", "more"), max(5, repeat // 10))
        r["read_full"] = median_us(lambda: s.get_chat_history("b"), repeat)
        r["read_last20"] = median_us(lambda: s.get_chat_history("b", 20), repeat)
        edited = s.get_chat_history("b")
        flip = [0]

        def set_history():
            flip[0] ^= 1
            edited[-1] = {"role": "user", "content": f"edit {flip[0]}"}
            s.set_chat_history("b", edited)

        r["set_chat_history"] = median_us(set_history, max(5, repeat // 10))
        r["fork"] = median_us(lambda: s.fork_session("b"), max(5, repeat // 10))
        results[name] = r
    return results


def praison_sqlite_peers(tmp, n, repeat, sessions):
    """PraisonAI's own SQLite stores against the drop-ins, each with its default retention:
    append and reads at ``n`` messages (SqliteTranscriptStore rewrites the session's row per
    message), search over ``sessions`` sessions (SqliteSessionStore: FTS5 index, then the
    matching sessions' JSON files)."""
    out = {}
    history = [{"role": "user", "content": f"message {i} " + "x" * 200} for i in range(n)]
    for name, make in (
        ("praisonai SqliteTranscriptStore", lambda: PraisonTranscript(session_dir=os.path.join(tmp, "pt"))),
        ("sessiondb SqliteTranscriptStore", lambda: SqliteTranscriptStore(session_dir=os.path.join(tmp, "ot"))),
    ):
        s = make()
        for m in history:  # appended one by one, so retention rolls the window as in use
            s.add_user_message("b", m["content"])
        r = {"append": median_us(lambda: s.add_user_message("b", "more"), max(5, repeat // 10))}
        r["read_full"] = median_us(lambda: s.get_chat_history("b"), repeat)
        r["read_last20"] = median_us(lambda: s.get_chat_history("b", 20), repeat)
        full = s.get_chat_history("b")
        r["copy_of_read (floor)"] = median_us(lambda: copy_json(full), repeat)
        out[name] = r
    words = ["billing", "migration", "refund", "invoice", "deploy", "kernel", "network", "printer"]
    for name, make in (
        ("praisonai SqliteSessionStore", lambda: PraisonSqlite(session_dir=os.path.join(tmp, "ps"))),
        ("sessiondb SqliteSessionStore", lambda: SqliteSessionStore(session_dir=os.path.join(tmp, "os"))),
    ):
        s = make()
        for i in range(sessions):
            s.add_user_message(f"s{i}", f"{words[i % 8]} {words[(i * 3) % 8]} ticket {i}")
            s.add_assistant_message(f"s{i}", f"answer {i} about {words[(i * 5) % 8]}")
        out[name] = {f"search@{sessions}": median_us(lambda: s.search("refund kernel", limit=5), max(5, repeat // 10))}
    return out


def _praison_worker(kind, session_dir, worker, count, start, times):
    # keep_all on both sides: the count read back is every message, not a window of them.
    store = (PraisonDefault if kind == "theirs" else DefaultSessionStore)(
        session_dir=session_dir, retention="keep_all")
    start.wait(timeout=120)
    t = time.perf_counter()
    for i in range(count):
        store.add_user_message("shared", f"w{worker}-{i}")
    times.put(time.perf_counter() - t)


def _sdk_worker(kind, path, worker, count, start, times):
    async def go():
        s = (SQLiteSession if kind == "theirs" else SessiondbSession)("shared", path)
        start.wait(timeout=120)
        t = time.perf_counter()
        for i in range(count):
            await s.add_items([{"role": "user", "content": f"w{worker}-{i}"}])
        times.put(time.perf_counter() - t)
    asyncio.run(go())


def four_process_append(tmp, count=100):
    ctx = multiprocessing.get_context("spawn")
    out = {}
    for label, target, kind, where, reader in (
        ("SQLiteSession", _sdk_worker, "theirs", os.path.join(tmp, "mp-sdk.db"),
         lambda p: len(asyncio.run(SQLiteSession("shared", p).get_items()))),
        ("SessiondbSession", _sdk_worker, "ours", os.path.join(tmp, "mp-ours.db"),
         lambda p: len(asyncio.run(SessiondbSession("shared", p).get_items()))),
        ("praisonai Default", _praison_worker, "theirs", os.path.join(tmp, "mp-p"),
         lambda p: len(PraisonDefault(session_dir=p, retention="keep_all").get_chat_history("shared"))),
        ("sessiondb Default", _praison_worker, "ours", os.path.join(tmp, "mp-o"),
         lambda p: len(DefaultSessionStore(session_dir=p, retention="keep_all").get_chat_history("shared"))),
    ):
        # Imports and opening happen before the barrier; the figure is the slowest worker's
        # append loop.
        start, times = ctx.Barrier(4), ctx.Queue()
        procs = [ctx.Process(target=target, args=(kind, where, w, count, start, times)) for w in range(4)]
        for p in procs:
            p.start()
        elapsed = max(times.get(timeout=300) for _ in procs)
        for p in procs:
            p.join(timeout=300)
        out[label] = (elapsed, reader(where), 4 * count)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"history of {args.messages} messages; medians in microseconds")
        pairs = (
            ("each call awaited in one running event loop", openai_pair(tmp, args.messages, args.repeat, True)),
            ("each call its own loop.run_until_complete", openai_pair(tmp, args.messages, args.repeat, False)),
            ("", praison_pair(tmp, args.messages, args.repeat)),
        )
        for title, pair in pairs:
            (theirs_name, theirs), (ours_name, ours) = pair.items()
            if title:
                print(f"\n{title}:")
            print(f"\n{'operation':<18}{theirs_name:>24}{ours_name:>24}{'ratio':>10}")
            for op in theirs:
                print(f"{op:<18}{theirs[op]:>24.1f}{ours[op]:>24.1f}{theirs[op] / ours[op]:>9.1f}x")
        peers = praison_sqlite_peers(tmp, args.messages, args.repeat, args.sessions)
        print("\nPraisonAI's SQLite stores (default retention on both sides):")
        names = list(peers)
        for theirs_name, ours_name in zip(names[::2], names[1::2]):
            theirs, ours = peers[theirs_name], peers[ours_name]
            print(f"\n{'operation':<22}{theirs_name:>32}{ours_name:>32}{'ratio':>10}")
            for op in theirs:
                print(f"{op:<22}{theirs[op]:>32.1f}{ours[op]:>32.1f}{theirs[op] / ours[op]:>9.1f}x")
            if "copy_of_read (floor)" in ours:
                floor = ours["read_full"] / ours["copy_of_read (floor)"]
                print(f"{ours_name}: cached full read = {floor:.2f}x the copy of its result")
        print("\n4 processes x 100 appends to one session (slowest worker's append loop)")
        for label, (elapsed, kept, sent) in four_process_append(tmp).items():
            print(f"{label:<22} {elapsed:6.2f} s   {kept}/{sent} messages kept")


if __name__ == "__main__":
    main()
