"""Ctrl-C while a write waits for another process's lock: the wait ends, nothing is written,
and the store keeps working. A signal whose handler returns lets the write wait and commit.
Before, the signal was seen only once the lock came free, and the write was stored anyway."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import pytest

import sessiondb

# Another process takes the write lock, says so, and keeps it until told to let go.
HOLD_THE_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("held", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


class Stop(Exception):
    """What our SIGINT handler raises (KeyboardInterrupt would stop pytest if it strayed)."""


@pytest.fixture
def lock_holder(db_path):
    sessiondb.Store(db_path).add_user_message("s", "before")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, db_path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"

    def release():
        if holder.poll() is None:
            holder.stdin.write("go\n")
            holder.stdin.flush()
            holder.wait(timeout=30)

    yield holder, release
    release()


@pytest.fixture
def sigint_raises_stop():
    def handler(signum, frame):
        raise Stop()

    previous = signal.signal(signal.SIGINT, handler)
    yield
    signal.signal(signal.SIGINT, previous)


def signal_self_after(seconds: float, signum: int) -> threading.Timer:
    timer = threading.Timer(seconds, lambda: signal.raise_signal(signum))
    timer.start()
    return timer


def test_ctrl_c_ends_a_wait_for_the_lock_and_writes_nothing(db_path, lock_holder, sigint_raises_stop):
    holder, release = lock_holder
    store = sessiondb.Store(db_path, busy_timeout=60.0)
    timer = signal_self_after(0.3, signal.SIGINT)
    with pytest.raises(Stop):
        store.add_user_message("s", "during")
    timer.join()
    # The wait ended while the other process still held the lock.
    assert holder.poll() is None
    release()
    assert [m["content"] for m in store.chat_history("s", cached=False)] == ["before"]
    store.add_user_message("s", "after")
    assert [m["content"] for m in store.chat_history("s")] == ["before", "after"]


def test_ctrl_c_during_a_wait_in_add_messages_writes_no_message_of_the_batch(db_path, lock_holder, sigint_raises_stop):
    holder, release = lock_holder
    store = sessiondb.Store(db_path, busy_timeout=60.0)
    timer = signal_self_after(0.2, signal.SIGINT)
    with pytest.raises(Stop):
        store.add_messages("s", [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    timer.join()
    assert holder.poll() is None
    release()
    assert [m["content"] for m in store.chat_history("s", cached=False)] == ["before"]


def test_a_signal_whose_handler_returns_lets_the_write_wait_and_commit(db_path, lock_holder):
    holder, release = lock_holder
    store = sessiondb.Store(db_path, busy_timeout=60.0)
    handled_while_held = []

    def handler(signum, frame):
        # Runs during the wait (the holder has not let go yet), not after the call.
        handled_while_held.append(holder.poll() is None and not released.is_set())

    released = threading.Event()
    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        signal_self_after(0.2, signal.SIGUSR1)
        letting_go = threading.Timer(0.8, lambda: (released.set(), release()))
        letting_go.start()
        stored = store.add_user_message("s", "during")
        letting_go.join()
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert handled_while_held == [True]
    assert stored["content"] == "during" and stored["index"] == 1
    assert [m["content"] for m in store.chat_history("s", cached=False)] == ["before", "during"]


def test_a_wait_without_a_signal_still_ends_as_busy_after_the_timeout(db_path, lock_holder):
    store = sessiondb.Store(db_path, busy_timeout=0.3)
    with pytest.raises(sessiondb.Busy) as raised:
        store.add_user_message("s", "during")
    assert raised.value.timeout == pytest.approx(0.3)
    assert [m["content"] for m in store.chat_history("s")] == ["before"]
