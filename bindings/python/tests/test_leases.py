"""Leases from Python (issue 23, item 15): one run per session at a time, across real
processes started with spawn and with fork. A claim while another owner holds the lease
raises LeaseHeld naming it; a write under a lease that expired, was taken over or broken
(`sessiondb lease break`) raises LeaseLost and stores nothing."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import subprocess
import time
from datetime import timedelta, timezone

import pytest

import sessiondb

pytestmark = pytest.mark.timeout(180)

START_METHODS = ["spawn", "fork"]


def contents(messages):
    return [m["content"] for m in messages]


def _claim(path, owner, barrier, results):
    store = sessiondb.Store(path)
    barrier.wait()
    try:
        lease = store.claim("s", owner, 60)
    except sessiondb.LeaseHeld as held:
        results.put(("held", owner, held.session, held.owner, held.expires_at))
    else:
        results.put(("won", owner, lease.session_id, lease.owner, lease.expires_at))


@pytest.mark.parametrize("method", START_METHODS)
def test_processes_claiming_one_session_at_once_exactly_one_wins(db_path, method):
    sessiondb.Store(db_path).add_user_message("s", "before")
    check_claim_race(db_path, method)


def check_claim_race(db_path, method="spawn"):
    """Four processes claim "s" at once (a file or a URL): exactly one wins, and every other
    is told who holds it and until when."""
    ctx = multiprocessing.get_context(method)
    owners = [f"worker-{i}" for i in range(4)]
    barrier, results = ctx.Barrier(len(owners)), ctx.Queue()
    procs = [ctx.Process(target=_claim, args=(db_path, o, barrier, results)) for o in owners]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=60) for _ in owners]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    won = [o for o in outcomes if o[0] == "won"]
    assert len(won) == 1
    _, winner, session, owner, expires_at = won[0]
    assert (session, owner) == ("s", winner)
    held = sorted(o for o in outcomes if o[0] == "held")
    # Every loser was told who holds the session and until when, exactly.
    assert held == [("held", o, "s", winner, expires_at) for o in owners if o != winner]
    assert expires_at.tzinfo == timezone.utc
    holder = sessiondb.Store(db_path).lease_holder("s")
    assert holder["owner"] == winner
    assert [(r["session_id"], r["owner"], r["expired"]) for r in sessiondb.Store(db_path).leases()] == [
        ("s", winner, False)
    ]


def _hold_then_write(path, ttl, pipe):
    """Claims "s" for `ttl` seconds, writes under it, then on each command tries another
    leased write and reports how it went."""
    store = sessiondb.Store(path)
    leased = store.lease("s", "worker-a", ttl)
    leased.add_message({"role": "user", "content": "a1"})
    pipe.send(("claimed", leased.lease.token, leased.lease.expires_at))
    while True:
        command = pipe.recv()
        if command == "stop":
            return
        tries = {
            "add_message": lambda: leased.add_message({"role": "user", "content": "a2"}),
            "set_chat_history": lambda: leased.set_chat_history([{"role": "user", "content": "a-only"}]),
            "start_stream": lambda: leased.start_stream("m"),
            "renew": lambda: leased.renew(60),
            "store.renew": lambda: store.renew(leased.lease, 60),
        }
        report = {}
        for name, attempt in tries.items():
            try:
                attempt()
                report[name] = "written"
            except sessiondb.LeaseLost as lost:
                report[name] = (lost.session, lost.owner, lost.holder, lost.reason)
        report["release"] = leased.release()
        pipe.send(report)


def _claim_and_write(path, owner, text, pipe):
    store = sessiondb.Store(path)
    lease = store.claim("s", owner, 60)
    store.with_lease(lease).add_message({"role": "assistant", "content": text})
    pipe.send((lease.owner, lease.expires_at))


@pytest.mark.parametrize("method", START_METHODS)
def test_an_expired_lease_is_taken_over_and_the_old_holder_writes_nothing(db_path, method):
    ctx = multiprocessing.get_context(method)
    store = sessiondb.Store(db_path)
    here, there = ctx.Pipe()
    a = ctx.Process(target=_hold_then_write, args=(db_path, 0.4, there))
    a.start()
    kind, token, a_expires = here.recv()
    assert kind == "claimed" and len(token) == 32
    # Held: another process is refused, naming the holder.
    with pytest.raises(sessiondb.LeaseHeld) as held:
        store.claim("s", "worker-b", 60)
    assert (held.value.owner, held.value.expires_at) == ("worker-a", a_expires)
    while store.lease_holder("s") is not None:
        time.sleep(0.05)
    # Expired: another process takes it over and writes.
    b_here, b_there = ctx.Pipe()
    b = ctx.Process(target=_claim_and_write, args=(db_path, "worker-b", "b1", b_there))
    b.start()
    b_owner, b_expires = b_here.recv()
    b.join(60)
    assert b.exitcode == 0 and b_owner == "worker-b"
    here.send("try")
    report = here.recv()
    lost = ("s", "worker-a", "worker-b", f'"worker-b" holds it until {b_expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}')
    assert report == {
        "add_message": lost,
        "set_chat_history": lost,
        "start_stream": lost,
        "renew": lost,
        "store.renew": lost,
        "release": False,
    }
    here.send("stop")
    a.join(60)
    assert a.exitcode == 0
    # Nothing worker-a tried after losing the lease is stored; worker-b still holds it.
    assert contents(store.chat_history("s", cached=False)) == ["a1", "b1"]
    assert len(store.branches("s")) == 1
    assert store.partial_message("s") is None
    assert store.lease_holder("s")["owner"] == "worker-b"


def cli():
    path = os.environ.get("SESSIONDB_CLI")
    if not path:
        if os.environ.get("CI") == "true":
            pytest.fail("SESSIONDB_CLI (the sessiondb binary) not set under CI")
        pytest.skip("SESSIONDB_CLI (the sessiondb binary) not set")
    return path


@pytest.mark.parametrize("method", START_METHODS)
def test_lease_break_from_the_cli_stops_a_worker_and_frees_the_session(db_path, method):
    binary = cli()
    ctx = multiprocessing.get_context(method)
    here, there = ctx.Pipe()
    worker = ctx.Process(target=_hold_then_write, args=(db_path, 600, there))
    worker.start()
    _, _, expires = here.recv()
    shown = subprocess.run([binary, "--db", db_path, "lease", "show", "s", "--json"],
                           capture_output=True, text=True, check=True)
    assert json.loads(shown.stdout)["owner"] == "worker-a"
    broken = subprocess.run([binary, "--db", db_path, "lease", "break", "s", "--json"],
                            capture_output=True, text=True)
    assert broken.returncode == 0, broken.stderr
    record = json.loads(broken.stdout)
    assert (record["session_id"], record["owner"], record["expired"]) == ("s", "worker-a", False)
    assert record["expires_at"] == expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    here.send("try")
    report = here.recv()
    lost = ("s", "worker-a", None, "it was released")
    assert report == {
        "add_message": lost,
        "set_chat_history": lost,
        "start_stream": lost,
        "renew": lost,
        "store.renew": lost,
        "release": False,
    }
    here.send("stop")
    worker.join(60)
    assert worker.exitcode == 0
    store = sessiondb.Store(db_path)
    assert contents(store.chat_history("s")) == ["a1"]
    # Anyone may claim it at once.
    assert store.claim("s", "worker-b", 60).owner == "worker-b"


def _write_under(lease_and_store, text, results):
    store, lease = lease_and_store
    try:
        store.with_lease(lease).add_message({"role": "user", "content": text})
        results.put("written")
    except sessiondb.LeaseLost as lost:
        results.put(lost.reason)


def test_a_forked_child_writes_under_its_parents_lease_until_the_parent_releases_it(db_path):
    ctx = multiprocessing.get_context("fork")
    store = sessiondb.Store(db_path)
    lease = store.claim("s", "parent", 60)
    results = ctx.Queue()
    child = ctx.Process(target=_write_under, args=((store, lease), "from the child", results))
    child.start()
    assert results.get(timeout=60) == "written"
    child.join(60)
    assert store.release(lease) is True
    child = ctx.Process(target=_write_under, args=((store, lease), "too late", results))
    child.start()
    assert results.get(timeout=60) == "it was released"
    child.join(60)
    assert child.exitcode == 0
    assert contents(store.chat_history("s", cached=False)) == ["from the child"]


def test_a_lease_mirrors_the_core_struct_and_renewing_keeps_its_token(store):
    lease = store.claim("s", "w", 30)
    assert (lease.session_id, lease.owner, lease.store_path) == ("s", "w", store.path)
    assert lease.acquired_at.tzinfo == timezone.utc and lease.expires_at.tzinfo == timezone.utc
    assert lease.expires_at - lease.acquired_at == timedelta(seconds=30)
    assert repr(lease) == (
        f"sessiondb.Lease(session_id='s', owner='w', expires_at='{lease.expires_at.isoformat()}')"
    )
    renewed = store.renew(lease, 120)
    assert renewed.token == lease.token and renewed.acquired_at == lease.acquired_at
    assert renewed.expires_at > lease.expires_at and renewed != lease
    assert renewed == renewed and store.lease_holder("s") == {
        "owner": "w",
        "acquired_at": lease.acquired_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "expires_at": renewed.expires_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    # The handle of the first claim works across the renewal (same token).
    store.with_lease(lease).add_message({"role": "user", "content": "one"})
    # A new claim by the same owner gets a new token; the old one stops working.
    again = store.claim("s", "w", 30)
    assert again.token != lease.token
    with pytest.raises(sessiondb.LeaseLost, match="another claim replaced it|holds it until"):
        store.with_lease(lease).add_message({"role": "user", "content": "stale"})
    assert store.release(lease) is False
    assert store.lease_holder("s")["owner"] == "w"
    assert store.release(again) is True
    assert store.release(again) is False
    assert store.lease_holder("s") is None
    assert contents(store.chat_history("s")) == ["one"]


def test_a_leased_session_mirrors_the_core_handle(store):
    with store.lease("s", "w", 60) as leased:
        assert (leased.session_id, leased.lease.owner) == ("s", "w")
        assert repr(leased) == "sessiondb.LeasedSession(session_id='s', owner='w')"
        leased.add_message({"role": "user", "content": "q"})
        version = store.version("s")
        leased.add_message({"role": "assistant", "content": "a"}, expected_version=version)
        with pytest.raises(sessiondb.Conflict):
            leased.add_message({"role": "user", "content": "late"}, expected_version=version)
        leased.start_stream("model-x")
        leased.append_stream("str")
        leased.append_stream("eamed")
        assert leased.finish_stream(output_tokens=3)["content"] == "streamed"
        leased.start_stream()
        leased.append_stream("dropped")
        leased.discard_stream()
        assert contents(leased.chat_history()) == ["q", "a", "streamed"]
        assert contents(leased.chat_history(1)) == ["streamed"]
        change = leased.set_chat_history([{"role": "user", "content": "q"}, {"role": "user", "content": "r"}])
        assert (change["kept"], change["written"]) == (1, 1)
        renewed = leased.renew(600)
        assert leased.lease == renewed and renewed.expires_at - renewed.acquired_at > timedelta(seconds=590)
        assert store.lease_holder("s")["owner"] == "w"
    # Leaving the block released the lease.
    assert store.lease_holder("s") is None
    with pytest.raises(sessiondb.LeaseLost, match="it was released"):
        leased.add_message({"role": "user", "content": "after"})
    assert contents(store.chat_history("s")) == ["q", "r"]


def test_a_lease_block_releases_its_lease_when_the_block_raises(store):
    with pytest.raises(RuntimeError, match="boom"):
        with store.lease("s", "w", 60):
            with pytest.raises(sessiondb.LeaseHeld, match='leased to "w"'):
                store.claim("s", "other", 60)
            raise RuntimeError("boom")
    assert store.claim("s", "other", 60).owner == "other"


def test_hostile_lease_arguments_get_clear_errors_and_store_nothing(db_path, tmp_path):
    store = sessiondb.Store(db_path)
    for ttl, message in [
        (0, "ttl must be a number of seconds above zero, got 0"),
        (-5, "ttl must be a number of seconds above zero, got -5"),
        (math.nan, "ttl must be a number of seconds above zero, got NaN"),
        (-math.inf, "ttl must be a number of seconds above zero, got -inf"),
        (math.inf, "ttl of inf seconds is too long for a lease"),
        (1e30, "ttl of 1000000000000000000000000000000 seconds is too long for a lease"),
        (367 * 86400, "lease ttl 31708800s must be above zero and at most 366 days"),
    ]:
        with pytest.raises(sessiondb.InvalidInput) as bad:
            store.claim("s", "w", ttl)
        assert str(bad.value) == f"invalid input: {message}"
    with pytest.raises(TypeError):
        store.claim("s", "w", "30")
    with pytest.raises(sessiondb.InvalidInput, match="lease owner is empty"):
        store.claim("s", "", 30)
    with pytest.raises(sessiondb.InvalidInput, match="lease owner is 4097 bytes; the limit is 4096"):
        store.claim("s", "w" * 4097, 30)
    with pytest.raises(sessiondb.InvalidInput, match="session id is empty"):
        store.claim("", "w", 30)
    with pytest.raises(sessiondb.InvalidInput, match="session id"):
        store.claim("x" * (sessiondb.MAX_SESSION_ID_BYTES + 1), "w", 30)
    lease = store.claim("s", "w", 30)
    for bad_ttl in (0, math.nan, -1):
        with pytest.raises(sessiondb.InvalidInput, match="ttl must be"):
            store.renew(lease, bad_ttl)
    # A lease of another database's store is refused by name, by every call that takes one.
    other = sessiondb.Store(os.path.join(tmp_path, "other.db"))
    for attempt in (lambda: other.renew(lease, 30), lambda: other.release(lease), lambda: other.with_lease(lease)):
        with pytest.raises(sessiondb.InvalidInput) as foreign:
            attempt()
        assert str(foreign.value) == (
            f'invalid input: the lease of session "s" was claimed through the store of {store.path}, '
            f"not this store of {other.path}"
        )
    # Not a lease at all.
    for attempt in (lambda: store.release({"session_id": "s"}), lambda: store.with_lease("s"), lambda: store.renew(None, 3)):
        with pytest.raises(TypeError, match="Lease"):
            attempt()
    assert other.leases() == [] and other.list_sessions() == []
    assert [(r["session_id"], r["owner"]) for r in store.leases()] == [("s", "w")]
    assert store.list_sessions() == []
    # Another Store object of the same file takes the lease.
    assert sessiondb.Store(db_path).release(lease) is True


def test_a_closed_store_refuses_leased_writes(db_path):
    store = sessiondb.Store(db_path)
    leased = store.lease("s", "w", 60)
    store.close()
    with pytest.raises(sessiondb.Closed):
        leased.add_message({"role": "user", "content": "x"})
    with pytest.raises(sessiondb.Closed):
        leased.release()
    assert sessiondb.Store(db_path).lease_holder("s")["owner"] == "w"
