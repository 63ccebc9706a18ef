"""Watching a session from Python (issue 23, item 15): a watcher in one process sees what
another process commits, change by change; Ctrl-C ends a blocked wait and the watcher keeps
its place; `async for` leaves the event loop free and survives cancellation without losing a
change; closing the store or the watcher leaves no connection and no thread behind."""

from __future__ import annotations

import asyncio
import gc
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import sessiondb

pytestmark = pytest.mark.timeout(180)

START_METHODS = ["spawn", "fork"]


def contents(messages):
    return [m["content"] for m in messages]


def open_files(db_path):
    """This process's file descriptors on the database, its -wal and its -shm."""
    if not os.path.isdir("/proc/self/fd"):
        if os.environ.get("CI") == "true":
            pytest.fail("no /proc/self/fd to count open files with")
        pytest.skip("no /proc/self/fd to count open files with")
    names = {db_path, db_path + "-wal", db_path + "-shm"}
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target in names:
            found.append(target)
    return sorted(found)


def _write_step_by_step(path, pipe):
    """Each step one write, reported with the session's version after it; the next waits
    for the watcher's go."""
    store = sessiondb.Store(path)
    steps = [
        lambda: store.add_user_message("s", "m1"),
        lambda: store.add_messages("s", [{"role": "assistant", "content": "m2"}, {"role": "user", "content": "m3"}]),
        lambda: store.start_stream("s", "model-x"),
        lambda: store.append_stream("s", "hel"),
        lambda: store.append_stream("s", "lo"),
        lambda: store.finish_stream("s"),
        lambda: store.set_chat_history("s", [{"role": "user", "content": "m0"}, {"role": "user", "content": "new"}]),
    ]
    for step in steps:
        step()
        pipe.send(store.version("s"))
        assert pipe.recv() == "go"


@pytest.mark.parametrize("method", START_METHODS)
def test_a_watcher_sees_another_processs_writes_change_by_change(db_path, method):
    ctx = multiprocessing.get_context(method)
    store = sessiondb.Store(db_path)
    store.add_user_message("s", "m0")
    watcher = store.watcher("s")
    assert watcher.cursor.version == store.version("s")
    here, there = ctx.Pipe()
    writer = ctx.Process(target=_write_step_by_step, args=(db_path, there))
    writer.start()
    seen = []
    for change in watcher:
        version = here.recv()
        assert change.version == version == change.cursor.version == watcher.cursor.version
        assert change.session_id == "s"
        seen.append((change.history, [(m["index"], m["role"], m["content"]) for m in change.messages],
                     change.length, change.stream, change.grew,
                     None if change.partial is None else change.partial["content"]))
        if len(seen) == 7:
            here.send("go")
            break
        here.send("go")
    writer.join(60)
    assert writer.exitcode == 0
    assert seen == [
        ("appended", [(1, "user", "m1")], 2, "unchanged", None, None),
        ("appended", [(2, "assistant", "m2"), (3, "user", "m3")], 4, "unchanged", None, None),
        ("unchanged", [], 4, "started", None, ""),
        ("unchanged", [], 4, "grew", "hel", "hel"),
        ("unchanged", [], 4, "grew", "lo", "hello"),
        ("appended", [(4, "assistant", "hello")], 5, "ended", None, None),
        ("replaced", [(0, "user", "m0"), (1, "user", "new")], 2, "unchanged", None, None),
    ]
    # Nothing more happened.
    assert watcher.wait(timeout=0) is None
    watcher.close()


def _append_burst(path, count):
    store = sessiondb.Store(path)
    for i in range(count):
        store.add_user_message("s", f"b{i}")


@pytest.mark.parametrize("method", START_METHODS)
def test_a_burst_of_appends_arrives_whole_and_in_order(db_path, method):
    ctx = multiprocessing.get_context(method)
    store = sessiondb.Store(db_path)
    store.add_user_message("s", "start")
    writer = ctx.Process(target=_append_burst, args=(db_path, 50))
    with store.watcher("s") as watcher:
        writer.start()
        received, versions = [], []
        for change in watcher:
            assert change.history == "appended"
            received += change.messages
            versions.append(change.version)
            if change.length == 51:
                break
    writer.join(60)
    assert writer.exitcode == 0
    assert [(m["index"], m["content"]) for m in received] == [(i + 1, f"b{i}") for i in range(50)]
    assert versions == sorted(set(versions)) and versions[-1] == store.version("s")


def test_since_a_version_a_cursor_or_a_change(store):
    store.add_user_message("s", "a")
    version = store.version("s")
    store.add_user_message("s", "b")
    # A version only: the change carries the whole history.
    change = store.watch("s", version, timeout=0)
    assert (change.history, contents(change.messages), change.length) == ("replaced", ["a", "b"], 2)
    assert store.watch("s", change, timeout=0) is None
    assert store.watch("s", change.cursor, timeout=0) is None
    assert store.watch("s", sessiondb.WatchCursor.at_version(version), timeout=0).history == "replaced"
    store.add_user_message("s", "c")
    after = store.watch("s", change, timeout=0)
    assert (after.history, contents(after.messages)) == ("appended", ["c"])
    assert store.watch("s", timeout=0) is None
    assert repr(after) == (
        f"sessiondb.Change(session_id='s', version={after.version}, length=3, history='appended', "
        "messages=<1 message>, stream='unchanged')"
    )
    assert repr(after.cursor) == f"sessiondb.WatchCursor(version={after.version})"
    assert after.cursor == after.cursor and after.cursor != change.cursor


def _add_later(path, text, delay):
    def add():
        with sessiondb.Store(path) as store:
            store.add_user_message("s", text)

    timer = threading.Timer(delay, add)
    timer.start()
    return timer


class Stop(Exception):
    """What our SIGINT handler raises (KeyboardInterrupt would stop pytest if it strayed)."""


@pytest.fixture
def sigint_raises_stop():
    def handler(signum, frame):
        raise Stop()

    previous = signal.signal(signal.SIGINT, handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("how", ["wait", "iterate", "watch"])
def test_sigint_to_the_main_thread_ends_a_blocked_wait_and_the_watcher_keeps_its_place(
    db_path, sigint_raises_stop, how
):
    store = sessiondb.Store(db_path)
    store.add_user_message("s", "a")
    watcher = store.watcher("s")
    main = threading.main_thread().ident
    timer = threading.Timer(0.3, lambda: signal.pthread_kill(main, signal.SIGINT))
    with pytest.raises(Stop):
        timer.start()
        if how == "wait":
            watcher.wait()
        elif how == "iterate":
            next(watcher)
        else:
            store.watch("s")
    timer.join()
    # Nothing changed, nothing was consumed: the next change is the next write.
    store.add_user_message("s", "b")
    change = watcher.wait(timeout=60)
    assert (change.history, contents(change.messages)) == ("appended", ["b"])


WATCH_UNTIL_CTRL_C = """
import sys, sessiondb
store = sessiondb.Store(sys.argv[1])
watcher = store.watcher("s")
print("watching", flush=True)
try:
    if sys.argv[2] == "iterate":
        for change in watcher:
            print("unexpected change", flush=True)
    else:
        store.watch("s")
except KeyboardInterrupt:
    print("interrupted", flush=True)
store.add_user_message("s", "after")
change = watcher.wait(timeout=60)
print(change.history, [m["content"] for m in change.messages], flush=True)
"""


@pytest.mark.parametrize("how", ["iterate", "watch"])
def test_ctrl_c_stops_a_process_blocked_in_a_watch(db_path, how):
    sessiondb.Store(db_path).add_user_message("s", "a")
    child = subprocess.Popen([sys.executable, "-c", WATCH_UNTIL_CTRL_C, db_path, how],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "watching\n"
        time.sleep(0.3)  # into the wait (a signal before it ends the script the same way)
        os.kill(child.pid, signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert (out, child.returncode) == ("interrupted\nappended ['after']\n", 0), err


def test_closing_the_store_ends_a_watch_in_another_thread_and_closes_its_connection(db_path):
    store = sessiondb.Store(db_path)
    store.add_user_message("s", "a")
    watcher = store.watcher("s")
    ended = []

    def iterate():
        try:
            for change in watcher:
                ended.append(change)
        except sessiondb.Closed as closed:
            ended.append(closed)

    thread = threading.Thread(target=iterate)
    thread.start()
    assert len(open_files(db_path)) >= 2
    store.close()
    thread.join(60)
    assert not thread.is_alive()
    assert len(ended) == 1 and isinstance(ended[0], sessiondb.Closed)
    assert open_files(db_path) == []
    # The iteration is over.
    assert list(watcher) == []


def test_closing_the_store_closes_the_connections_of_its_idle_watchers(db_path):
    store = sessiondb.Store(db_path)
    store.add_user_message("s", "a")
    watchers = [store.watcher("s"), store.watcher("s", poll_interval=0.01)]
    assert watchers[0].wait(0) is None
    store.close()
    # Nobody waits on them, and they are still referenced: closed all the same.
    assert open_files(db_path) == []
    for watcher in watchers:
        with pytest.raises(sessiondb.Closed):
            watcher.wait(0)
    assert open_files(db_path) == []
    assert [w.closed for w in watchers] == [False, False]


def test_closing_the_watcher_ends_its_iteration_in_another_thread(db_path):
    store = sessiondb.Store(db_path)
    store.add_user_message("s", "a")
    watcher = store.watcher("s")
    thread = threading.Thread(target=lambda: list(watcher))
    thread.start()
    watcher.close()
    thread.join(60)
    assert not thread.is_alive() and watcher.closed
    with pytest.raises(sessiondb.Closed, match='the watcher of session "s" was closed'):
        watcher.wait(0)
    # The store goes on; only the store's own connections are left.
    store.add_user_message("s", "b")
    store.close()
    assert open_files(db_path) == []


def test_breaking_out_of_the_loop_leaves_no_connection_once_the_watcher_is_gone(db_path):
    store = sessiondb.Store(db_path)
    store.add_user_message("s", "a")
    writer = _add_later(db_path, "b", 0.1)
    for change in store.watcher("s"):
        assert contents(change.messages) == ["b"]
        break
    writer.join()
    gc.collect()
    store.close()
    assert open_files(db_path) == []


def test_a_forked_child_watches_with_its_own_connection_from_where_the_parent_was(db_path):
    ctx = multiprocessing.get_context("fork")
    store = sessiondb.Store(db_path)
    store.add_user_message("s", "a")
    watcher = store.watcher("s")
    store.add_user_message("s", "b")
    assert contents(watcher.wait(60).messages) == ["b"]
    results = ctx.Queue()

    def child():
        change = watcher.wait(60)
        results.put((change.history, contents(change.messages)))

    proc = ctx.Process(target=child)
    proc.start()
    store.add_user_message("s", "c")
    assert results.get(timeout=60) == ("appended", ["c"])
    proc.join(60)
    assert proc.exitcode == 0
    # The parent's watcher is untouched by the child.
    assert contents(watcher.wait(60).messages) == ["c"]
    store.add_user_message("s", "d")
    assert contents(watcher.wait(60).messages) == ["d"]


def test_a_deleted_session_ends_the_iteration_after_raising_not_found(store):
    store.add_user_message("s", "a")
    watcher = store.watcher("s")
    store.delete_session("s")
    with pytest.raises(sessiondb.NotFound):
        next(watcher)
    assert list(watcher) == []


def test_hostile_watch_arguments_get_clear_errors(store):
    store.add_user_message("s", "a")
    with pytest.raises(sessiondb.NotFound):
        store.watch("missing", timeout=0)
    with pytest.raises(sessiondb.NotFound):
        store.watcher("missing")
    with pytest.raises(sessiondb.InvalidInput, match="session id is empty"):
        store.watcher("", 0)
    for since in ("3", 2.5, True, [1], {"version": 1}):
        with pytest.raises(TypeError, match="since must be None, a session version"):
            store.watch("s", since, timeout=0)
    for timeout in (-1, math.nan, math.inf):
        with pytest.raises(sessiondb.InvalidInput, match="timeout must be a number of seconds"):
            store.watch("s", timeout=timeout)
        with pytest.raises(sessiondb.InvalidInput, match="timeout must be a number of seconds"):
            store.watcher("s").wait(timeout)
    with pytest.raises(sessiondb.InvalidInput, match="poll_interval must be a number of seconds"):
        store.watcher("s", poll_interval=math.nan)
    assert contents(store.chat_history("s")) == ["a"]


async def test_an_async_watcher_leaves_the_event_loop_to_other_tasks(db_path):
    store = sessiondb.Store(db_path)
    store.add_user_message("s", "a")
    ticks = []

    async def ticker():
        # Writes only after ticking while the watcher waits: a blocked loop never gets here.
        while len(ticks) < 5:
            ticks.append(len(ticks))
            await asyncio.sleep(0.01)
        await asyncio.to_thread(sessiondb.Store(db_path).add_user_message, "s", "b")

    async def watch():
        async for change in store.watcher("s"):
            return change

    change, _ = await asyncio.gather(watch(), ticker())
    assert (change.history, contents(change.messages)) == ("appended", ["b"])
    assert ticks == [0, 1, 2, 3, 4]


def watch_threads():
    return [t for t in threading.enumerate() if t.name.startswith("sessiondb-watch")]


async def test_cancelling_an_async_wait_loses_no_change_and_close_stops_its_thread(db_path):
    store = sessiondb.Store(db_path)
    store.add_user_message("s", "a")
    watcher = store.watcher("s")
    before = set(watch_threads())
    waiting = asyncio.ensure_future(anext(watcher))
    await asyncio.sleep(0.1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    # Written while nobody awaits: the wait the cancelled awaiter left running finds it.
    store.add_user_message("s", "b")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(anext(watcher), 0)
    change = await asyncio.wait_for(anext(watcher), 60)
    assert (change.history, contents(change.messages)) == ("appended", ["b"])
    store.add_user_message("s", "c")
    change = await asyncio.wait_for(anext(watcher), 60)
    assert contents(change.messages) == ["c"]
    mine = set(watch_threads()) - before
    assert len(mine) == 1
    watcher.close()
    with pytest.raises(StopAsyncIteration):
        await anext(watcher)
    for thread in mine:
        await asyncio.to_thread(thread.join, 60)
        assert not thread.is_alive()
    store.close()
    assert open_files(db_path) == []


def test_an_async_watcher_goes_on_in_a_forked_child_with_a_thread_of_its_own(db_path):
    ctx = multiprocessing.get_context("fork")
    store = sessiondb.Store(db_path)
    store.add_user_message("s", "a")
    watcher = store.watcher("s")

    async def next_change():
        return await asyncio.wait_for(anext(watcher), 60)

    # The parent's waits ran on the watcher's thread, which the child does not have.
    store.add_user_message("s", "b")
    assert contents(asyncio.run(next_change()).messages) == ["b"]
    results = ctx.Queue()

    def child():
        results.put(contents(asyncio.run(next_change()).messages))

    proc = ctx.Process(target=child)
    proc.start()
    store.add_user_message("s", "c")
    assert results.get(timeout=90) == ["c"]
    proc.join(60)
    assert proc.exitcode == 0
    assert contents(asyncio.run(next_change()).messages) == ["c"]
    watcher.close()


async def test_an_async_watcher_raises_a_deleted_session_once_then_ends(store):
    store.add_user_message("s", "a")
    watcher = store.watcher("s")
    store.delete_session("s")
    with pytest.raises(sessiondb.NotFound):
        await anext(watcher)
    assert [c async for c in watcher] == []
    watcher.close()
