"""No acknowledged write is lost in ordinary Python situations: Python's own sqlite3 module
on the same file in the same process, os.fork() with a parent that lets its store go, and
forks while other threads are inside calls. Real threads, real processes, real files."""

from __future__ import annotations

import gc
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

import sessiondb

# A short-lived writer: another process that opens the file, appends a few messages, exits.
APPEND_A_FEW = """
import sys, sessiondb
store = sessiondb.Store(sys.argv[1])
for i in range(3):
    store.add_user_message(sys.argv[2], f"{sys.argv[2]}-{i}")
"""


def contents(messages):
    return [m["content"] for m in messages]


def integrity(path: str) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def short_lived_writers(path: str, count: int, stop: threading.Event, codes: list) -> None:
    for k in range(count):
        if stop.is_set():
            break
        done = subprocess.run([sys.executable, "-c", APPEND_A_FEW, path, f"visitor{k}"])
        codes.append(done.returncode)
        time.sleep(0.05)


def append_paced(store, session, count, pause, acked, errors):
    for i in range(count):
        try:
            store.add_user_message(session, f"m{i}")
            acked.append(f"m{i}")
        except sessiondb.Error as e:
            errors.append(repr(e))
        time.sleep(pause)


def test_sqlite_uses_one_library_shared_with_python():
    assert sessiondb.SQLITE_SHARED_WITH_PYTHON is True
    assert sessiondb.SQLITE_VERSION == sqlite3.sqlite_version


@pytest.mark.parametrize("neighbour", ["reads", "writes"])
def test_python_sqlite3_on_the_same_file_in_the_same_process_loses_nothing(db_path, neighbour):
    store = sessiondb.Store(db_path)
    store.add_user_message("s", "first")
    acked, errors, codes, neighbour_commits = ["first"], [], [], []
    done = threading.Event()

    def sqlite3_neighbour():
        # Opens, uses and closes the file every 20 ms, as a dashboard or a notebook would.
        while not done.is_set():
            conn = sqlite3.connect(db_path, timeout=10)
            if neighbour == "reads":
                conn.execute("SELECT count(*) FROM messages").fetchone()
            else:
                conn.execute("CREATE TABLE IF NOT EXISTS scratch (x INTEGER)")
                conn.execute("INSERT INTO scratch VALUES (?)", (len(neighbour_commits),))
                conn.commit()
                neighbour_commits.append(1)
            conn.close()
            time.sleep(0.02)

    threads = [
        threading.Thread(target=sqlite3_neighbour),
        threading.Thread(target=short_lived_writers, args=(db_path, 6, done, codes)),
    ]
    for t in threads:
        t.start()
    try:
        append_paced(store, "s", 400, 0.002, acked, errors)
    finally:
        done.set()
        for t in threads:
            t.join()

    assert errors == []
    assert len(acked) == 401
    assert contents(sessiondb.Store(db_path).chat_history("s")) == acked
    assert codes and set(codes) == {0}
    for k in range(len(codes)):
        assert contents(store.chat_history(f"visitor{k}")) == [f"visitor{k}-{i}" for i in range(3)]
    if neighbour == "writes":
        with sqlite3.connect(db_path) as conn:
            assert conn.execute("SELECT count(*) FROM scratch").fetchone()[0] == len(neighbour_commits)
    # The store keeps working, and so does the file.
    store.add_user_message("s", "last")
    assert contents(store.chat_history("s", cached=False))[-1] == "last"
    assert integrity(db_path) == "ok"


def child_reports(r: int) -> list[str]:
    with os.fdopen(r) as pipe:
        return pipe.read().splitlines()


def run_child(body) -> None:
    """In a forked child: runs `body`, never returns (and never runs pytest's code)."""
    code = 1
    try:
        body()
        code = 0
    except BaseException as e:  # noqa: BLE001 - reported through the exit code
        sys.stderr.write(f"child failed: {e!r}\n")
    finally:
        os._exit(code)


def wait_for(pid: int, seconds: float) -> int:
    """The child's exit code; kills it and fails if it has not exited within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"child {pid} made no progress for {seconds} s")


def test_a_parent_dropping_its_store_after_fork_loses_no_write_of_the_child(db_path):
    store = sessiondb.Store(db_path)
    store.add_user_message("parent", "p0")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)

        def child():
            with os.fdopen(w, "w") as report:
                for i in range(150):
                    try:
                        store.add_user_message("child", f"c{i}")
                        report.write(f"ok c{i}\n")
                    except sessiondb.Error as e:
                        report.write(f"error {e!r}\n")
                    report.flush()
                    time.sleep(0.01)

        run_child(child)
    os.close(w)
    # The parent lets its store go while the child writes, and others come and go.
    del store
    gc.collect()
    codes: list[int] = []
    short_lived_writers(db_path, 5, threading.Event(), codes)
    reports = child_reports(r)
    assert wait_for(pid, 60) == 0
    assert [line for line in reports if not line.startswith("ok ")] == []
    acked = [line.removeprefix("ok ") for line in reports]
    assert acked == [f"c{i}" for i in range(150)]
    reader = sessiondb.Store(db_path)
    assert contents(reader.chat_history("child")) == acked
    assert contents(reader.chat_history("parent")) == ["p0"]
    assert set(codes) == {0}
    assert integrity(db_path) == "ok"


def test_fork_while_threads_are_inside_calls_gives_children_a_working_store(db_path):
    store = sessiondb.Store(db_path, busy_timeout=5.0)
    stop = threading.Event()
    acked: dict[int, list[str]] = {t: [] for t in range(3)}
    errors: list[str] = []

    def writer(t: int) -> None:
        i = 0
        while not stop.is_set():
            try:
                store.add_user_message(f"writer{t}", f"w{t}-{i}")
                acked[t].append(f"w{t}-{i}")
            except sessiondb.Error as e:
                errors.append(repr(e))
            i += 1

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    children = []
    try:
        for k in range(12):
            time.sleep(0.03)
            pid = os.fork()
            if pid == 0:

                def child(k=k):
                    for i in range(10):
                        store.add_user_message(f"child{k}", f"k{k}-{i}")

                run_child(child)
            children.append(pid)
    finally:
        stop.set()
        for t in threads:
            t.join()
    # A child works or fails within its busy timeout; it never hangs.
    assert [wait_for(pid, 30) for pid in children] == [0] * 12
    assert errors == []
    reader = sessiondb.Store(db_path)
    for k in range(12):
        assert contents(reader.chat_history(f"child{k}")) == [f"k{k}-{i}" for i in range(10)]
    for t in range(3):
        assert acked[t] and contents(reader.chat_history(f"writer{t}")) == acked[t]
    assert integrity(db_path) == "ok"


def test_close_ends_the_store_and_later_calls_raise_closed(db_path):
    with sessiondb.Store(db_path) as store:
        store.add_user_message("s", "hi")
        assert store.closed is False
    assert store.closed is True
    with pytest.raises(sessiondb.Closed) as raised:
        store.chat_history("s")
    assert raised.value.path == store.path
    with pytest.raises(sessiondb.Closed):
        store.add_user_message("s", "after close")
    store.close()  # again: nothing happens
    # Its connections are closed: the last one checkpointed and removed the -wal.
    assert not os.path.exists(db_path + "-wal")
    assert contents(sessiondb.Store(db_path).chat_history("s")) == ["hi"]


def test_close_waits_for_a_call_in_another_thread(db_path):
    store = sessiondb.Store(db_path)
    results: list[object] = []

    def write_many():
        try:
            for i in range(200):
                store.add_user_message("s", f"m{i}")
                results.append(i)
        except sessiondb.Closed:
            results.append("closed")

    t = threading.Thread(target=write_many)
    t.start()
    time.sleep(0.05)
    store.close()
    t.join()
    written = [r for r in results if r != "closed"]
    assert results[-1] == "closed" or len(written) == 200
    # Every write that returned is stored, in order; nothing after close was written.
    assert contents(sessiondb.Store(db_path).chat_history("s")) == [f"m{i}" for i in written]


# Appends until killed, printing each message after its call returned.
APPEND_UNTIL_KILLED = """
import sys, sessiondb
store = sessiondb.Store(sys.argv[1])
i = 0
while True:
    store.add_messages("s", [{"role": "user", "content": f"u{i}"}, {"role": "assistant", "content": f"a{i}"}])
    print(f"u{i}", flush=True)
    i += 1
"""


def test_a_writer_killed_with_sigkill_keeps_every_acknowledged_turn(db_path):
    sessiondb.Store(db_path).add_user_message("s", "first")
    for round_ in range(3):  # a different moment each round
        child = subprocess.Popen([sys.executable, "-c", APPEND_UNTIL_KILLED, db_path], stdout=subprocess.PIPE, text=True)
        acked = []
        for line in child.stdout:
            acked.append(line.strip())
            if len(acked) == 40 + 17 * round_:
                break
        child.send_signal(signal.SIGKILL)
        child.wait()
        acked += [line.strip() for line in child.stdout]  # printed before the kill landed
        history = [m["content"] for m in sessiondb.Store(db_path).chat_history("s", cached=False)]
        # Every acknowledged turn is there whole; at most the one in flight follows it, whole.
        turns = history[1:]
        assert len(turns) % 2 == 0
        written = [turns[k] for k in range(0, len(turns), 2)]
        assert [turns[k + 1] for k in range(0, len(turns), 2)] == [u.replace("u", "a") for u in written]
        assert len(written) in (len(acked), len(acked) + 1)
        assert written[: len(acked)] == acked
        # The next round starts numbering again: use a fresh session each round.
        sessiondb.Store(db_path).clear("s")
        sessiondb.Store(db_path).add_user_message("s", "first")
    assert integrity(db_path) == "ok"


def test_a_database_moved_over_a_live_one_is_refused_from_python_too(tmp_path):
    """Issue 23, item 3, from Python: `mv y.db x.db` while another process (a `history
    --follow`) keeps x.db's -wal. Opening x.db then raises ForeignWal naming both files, and
    neither file changes."""
    cli = os.environ.get("SESSIONDB_CLI")
    if not cli:
        if os.environ.get("CI") == "true":
            pytest.fail("SESSIONDB_CLI (the sessiondb binary) not set under CI")
        pytest.skip("SESSIONDB_CLI (the sessiondb binary) not set")
    x, y = tmp_path / "x.db", tmp_path / "y.db"
    with sessiondb.Store(str(y)) as store:
        store.add_user_message("t", "y1")
    with sessiondb.Store(str(x)) as store:
        store.add_user_message("s", "x1")
    follower = subprocess.Popen([cli, "--db", str(x), "history", "s", "--follow"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert follower.stdout.readline() == b"[0] user: x1\n"
        with sessiondb.Store(str(x)) as store:
            for text in ("x2", "x3", "x4"):
                store.add_user_message("s", text)
        os.replace(y, x)
        wal = tmp_path / "x.db-wal"
        before = (x.read_bytes(), wal.read_bytes())
        with pytest.raises(sessiondb.ForeignWal) as caught:
            sessiondb.Store(str(x))
        assert caught.value.path == str(x)
        assert caught.value.wal == str(wal)
        assert "sessiondb restore" in str(caught.value)
        assert (x.read_bytes(), wal.read_bytes()) == before
    finally:
        follower.kill()
        follower.wait()
