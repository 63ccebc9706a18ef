"""Acknowledged writes against writes found, in the Python situations that used to lose them
(RELIABILITY.md, "Python"): Python's own sqlite3 module on the same file in the same process
(reading, then writing), a parent dropping its store after os.fork(), and forks while other
threads are inside calls. Prints one line per scenario.

    python bindings/python/bench/faults.py [--appends 800]
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

import sessiondb

VISITOR = """
import sys, sessiondb
store = sessiondb.Store(sys.argv[1])
for i in range(3):
    store.add_user_message(sys.argv[2], f"{sys.argv[2]}-{i}")
"""


def found(path: str, session: str) -> set[str]:
    try:
        return {m["content"] for m in sessiondb.Store(path).chat_history(session, cached=False)}
    except sessiondb.Error:
        return set()


def integrity(path: str) -> str:
    try:
        with sqlite3.connect(path) as conn:
            return conn.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.Error as e:
        return repr(e)


def visitors(path: str, count: int) -> None:
    for k in range(count):
        subprocess.run([sys.executable, "-c", VISITOR, path, f"visitor{k}"], capture_output=True)
        time.sleep(0.05)


def same_process_sqlite3(path: str, appends: int, writes: bool) -> str:
    store = sessiondb.Store(path)
    acked, errors, done = [], [], threading.Event()

    def neighbour():
        while not done.is_set():
            try:
                conn = sqlite3.connect(path, timeout=10)
                if writes:
                    conn.execute("CREATE TABLE IF NOT EXISTS scratch (x INTEGER)")
                    conn.execute("INSERT INTO scratch VALUES (1)")
                    conn.commit()
                else:
                    conn.execute("SELECT count(*) FROM messages").fetchone()
                conn.close()
            except sqlite3.Error:
                pass
            time.sleep(0.02)

    threads = [threading.Thread(target=neighbour), threading.Thread(target=visitors, args=(path, 6))]
    for t in threads:
        t.start()
    for i in range(appends):
        try:
            store.add_user_message("s", f"m{i}")
            acked.append(f"m{i}")
        except sessiondb.Error as e:
            errors.append(type(e).__name__)
        time.sleep(0.002)
    done.set()
    for t in threads:
        t.join()
    lost = len(set(acked) - found(path, "s"))
    return f"acknowledged {len(acked)}, lost {lost}, refused {len(errors)} {sorted(set(errors))}, integrity {integrity(path)}"


def parent_drops_after_fork(path: str) -> str:
    store = sessiondb.Store(path)
    store.add_user_message("parent", "p0")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        with os.fdopen(w, "w") as report:
            for i in range(150):
                try:
                    store.add_user_message("child", f"c{i}")
                    report.write(f"ok c{i}\n")
                except sessiondb.Error as e:
                    report.write(f"error {type(e).__name__}\n")
                report.flush()
                time.sleep(0.01)
        os._exit(0)
    os.close(w)
    del store
    gc.collect()
    visitors(path, 5)
    with os.fdopen(r) as pipe:
        lines = pipe.read().splitlines()
    os.waitpid(pid, 0)
    acked = [line[3:] for line in lines if line.startswith("ok ")]
    errors = sorted({line[6:] for line in lines if line.startswith("error ")})
    lost = len(set(acked) - found(path, "child"))
    return f"acknowledged {len(acked)}, lost {lost}, refused {len(lines) - len(acked)} {errors}, integrity {integrity(path)}"


def forks_under_writing_threads(path: str) -> str:
    store = sessiondb.Store(path, busy_timeout=5.0)
    stop = threading.Event()

    def writer(t: int) -> None:
        i = 0
        while not stop.is_set():
            try:
                store.add_user_message(f"writer{t}", f"w{i}")
            except sessiondb.Error:
                pass
            i += 1

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    children = []
    for k in range(12):
        time.sleep(0.03)
        pid = os.fork()
        if pid == 0:
            ok = 0
            for i in range(10):
                try:
                    store.add_user_message(f"child{k}", f"k{i}")
                    ok += 1
                except sessiondb.Error:
                    pass
            os._exit(ok)
        children.append(pid)
    stop.set()
    for t in threads:
        t.join()
    acked, hung = 0, 0
    deadline = time.monotonic() + 30
    for pid in children:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                acked += os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                hung += 1
                break
            time.sleep(0.01)
    stored = sum(len(found(path, f"child{k}")) for k in range(12))
    return f"children 12, hung {hung}; acknowledged {acked} of 120, found {stored}, integrity {integrity(path)}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--appends", type=int, default=800)
    args = parser.parse_args()
    ours = getattr(sessiondb, "SQLITE_VERSION", "bundled (before the shared library)")
    print(f"sessiondb SQLite {ours}, Python sqlite3 {sqlite3.sqlite_version}")
    scenarios = [
        ("sqlite3 module reading the file in-process", lambda p: same_process_sqlite3(p, args.appends, False)),
        ("sqlite3 module writing the file in-process", lambda p: same_process_sqlite3(p, args.appends, True)),
        ("parent drops its store after fork", parent_drops_after_fork),
        ("12 forks under 3 writing threads", forks_under_writing_threads),
    ]
    for name, run in scenarios:
        with tempfile.TemporaryDirectory() as d:
            print(f"{name}: {run(os.path.join(d, 'sessions.db'))}", flush=True)


if __name__ == "__main__":
    main()
