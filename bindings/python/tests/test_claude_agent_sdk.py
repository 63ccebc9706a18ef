"""SessiondbSessionStore against the Claude Agent SDK's SessionStore protocol: the SDK's own
conformance suite, real processes racing and dying mid-append, the real CLI reading and
erasing what the SDK wrote, and hostile input. The PostgreSQL runs are in test_postgres.py
(they call the helpers below with a URL)."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest
from claude_agent_sdk import InMemorySessionStore, fold_session_summary
from claude_agent_sdk.testing import run_session_store_conformance
from claude_agent_sdk.types import SessionStore

import sessiondb
from sessiondb.claude_agent_sdk import AGENT_NAME, SessiondbSessionStore, session_id_for

KEY = {"project_key": "-home-me-proj", "session_id": "0b6c1e2a-1111-2222-3333-444455556666"}
SUB = {**KEY, "subpath": "subagents/agent-a1"}
OPTIONAL = ("list_sessions", "list_session_summaries", "delete", "list_subkeys")

TRANSCRIPT = [
    {"type": "user", "uuid": "u1", "parentUuid": None, "timestamp": "2026-01-01T00:00:00.000Z",
     "cwd": "/home/me/proj", "gitBranch": "main", "isSidechain": False,
     "message": {"role": "user", "content": "Where is the config parser? ünïcødé ✓"}},
    {"type": "assistant", "uuid": "u2", "parentUuid": "u1", "timestamp": "2026-01-01T00:00:01.500Z",
     "message": {"role": "assistant", "model": "claude-x", "usage": {"input_tokens": 12, "output_tokens": 7},
                 "content": [{"type": "thinking", "thinking": "look", "signature": "c2ln"},
                             {"type": "text", "text": "In src/config.rs, line 12."},
                             {"type": "tool_use", "id": "t1", "name": "Read",
                              "input": {"path": "src/config.rs", "limit": 2.5, "flags": [True, None, -3]}}]}},
    {"type": "user", "uuid": "u3", "parentUuid": "u2",
     "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                               "content": "fn parse_config() {}"}]}},
    {"type": "custom-title", "customTitle": "config hunt", "sessionId": KEY["session_id"]},
    {"type": "tag", "tag": "keep"},
]


def cli_path() -> str:
    cli = os.environ.get("SESSIONDB_CLI")
    if not cli:
        if os.environ.get("CI") == "true":
            pytest.fail("SESSIONDB_CLI (the sessiondb binary) not set under CI")
        pytest.skip("SESSIONDB_CLI (the sessiondb binary) not set")
    return cli


def cli(database: str, *args: str) -> str:
    out = subprocess.run([cli_path(), "--db", database, *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def fresh_files(tmp_path):
    names = itertools.count()
    return lambda: os.path.join(tmp_path, f"conformance-{next(names)}.db")


# -- helpers that test_postgres.py runs on PostgreSQL too --------------------------------


async def check_conformance(fresh_database) -> None:
    """The SDK's suite with no optional method skipped: each method is our own (the suite
    skips one only when it is the protocol's default)."""
    made = []

    def make():
        made.append(SessiondbSessionStore(store=sessiondb.Store(fresh_database())))
        return made[-1]

    for name in OPTIONAL:
        assert getattr(SessiondbSessionStore, name) is not getattr(SessionStore, name)
    await run_session_store_conformance(make, skip_optional=frozenset())
    assert len(made) == 15  # the probe and one store per contract: every contract ran


async def check_retries_and_mixed_batches(database: str) -> None:
    """A retried batch writes nothing; a mixed batch stores exactly its new entries, in
    order; the summary folds exactly what was stored (the SDK's in-memory store, given
    the entries that should be stored, is the oracle)."""
    store = SessiondbSessionStore(store=sessiondb.Store(database))
    oracle = InMemorySessionStore()
    id = session_id_for(KEY)
    await store.append(KEY, TRANSCRIPT[:3])
    await oracle.append(KEY, TRANSCRIPT[:3])
    version = store.store.session(id)["version"]
    await store.append(KEY, TRANSCRIPT[:3])
    assert store.store.session(id)["version"] == version
    assert await store.load(KEY) == TRANSCRIPT[:3]
    # Stored u2, a new one, stored u1, an entry without uuid, another new one, and u5 again.
    new_a = {"type": "user", "uuid": "u4", "message": {"role": "user", "content": "and the writer?"},
             "lastPrompt": "and the writer?"}
    new_b = {"type": "assistant", "uuid": "u5", "gitBranch": "feature",
             "message": {"role": "assistant", "content": [{"type": "text", "text": "src/write.rs"}]}}
    mixed = [TRANSCRIPT[1], new_a, TRANSCRIPT[0], TRANSCRIPT[3], new_b, dict(new_b, gitBranch="ignored")]
    await store.append(KEY, mixed)
    await oracle.append(KEY, [new_a, TRANSCRIPT[3], new_b])
    expected = TRANSCRIPT[:3] + [new_a, TRANSCRIPT[3], new_b]
    assert await store.load(KEY) == expected
    assert store.store.session(id)["version"] == version + 1
    ours = await store.list_session_summaries(KEY["project_key"])
    theirs = await oracle.list_session_summaries(KEY["project_key"])
    assert [(s["session_id"], s["data"]) for s in ours] == [(s["session_id"], s["data"]) for s in theirs]
    assert ours[0]["data"]["git_branch"] == "feature" and ours[0]["data"]["last_prompt"] == "and the writer?"
    # The summary's mtime is the session's, as list_sessions reports it.
    listed = await store.list_sessions(KEY["project_key"])
    assert listed == [{"session_id": KEY["session_id"], "mtime": ours[0]["mtime"]}]


# Each writer sets its own summary field (two share), so a fold lost to a race shows in the
# final summary.
FIELDS = ["customTitle", "aiTitle", "lastPrompt", "summary", "gitBranch", "tag"]


def _appender(database: str, writer: int, batches: int) -> None:
    """One process: batches of 3 entries, each appended, then appended again (a retry),
    and every other one resent with the next batch (a mixed batch). The SDK's fold is
    slowed down, which widens the window a read-fold-write race would need."""
    import sessiondb.claude_agent_sdk as adapter

    def slow_fold(*args):
        time.sleep(0.002)
        return fold_session_summary(*args)

    adapter.fold_session_summary = slow_fold
    field = FIELDS[writer % len(FIELDS)]

    async def run():
        store = SessiondbSessionStore(database)
        previous = []
        for b in range(batches):
            batch = [
                {"type": "tag" if field == "tag" else "user", "uuid": f"w{writer}-b{b}-e{e}",
                 "writer": writer, "n": b * 3 + e, field: f"w{writer} b{b} e{e}",
                 "message": {"role": "user", "content": f"writer {writer} batch {b} entry {e}"}}
                for e in range(3)
            ]
            if b % 2 == 1:
                await store.append(KEY, previous + batch)
            else:
                await store.append(KEY, batch)
            await store.append(KEY, batch)
            previous = batch

    asyncio.run(run())


async def check_processes_racing(database: str, writers: int = 8, batches: int = 12) -> None:
    """`writers` processes append to one session with retried and mixed batches: every
    entry once, each writer's in its order, and the summary equals the fold of the stored
    transcript in stored order (no fold lost to a race)."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_appender, args=(database, w, batches)) for w in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    store = SessiondbSessionStore(store=sessiondb.Store(database))
    loaded = await store.load(KEY)
    uuids = [e["uuid"] for e in loaded]
    assert len(uuids) == len(set(uuids)) == writers * batches * 3
    for w in range(writers):
        assert [e["n"] for e in loaded if e["writer"] == w] == list(range(batches * 3))
    [summary] = await store.list_session_summaries(KEY["project_key"])
    expected = fold_session_summary(None, KEY, loaded)["data"]
    assert {k: expected.get(k) for k in ("custom_title", "ai_title", "last_prompt", "summary_hint",
                                         "git_branch", "tag")} == {
        k: summary["data"].get(k) for k in ("custom_title", "ai_title", "last_prompt", "summary_hint",
                                           "git_branch", "tag")}
    assert summary["data"] == expected


# -- SQLite -------------------------------------------------------------------------------


async def test_the_sdks_conformance_suite_passes_with_no_optional_method_skipped(tmp_path):
    await check_conformance(fresh_files(tmp_path))


async def test_a_retried_batch_writes_nothing_and_a_mixed_batch_stores_exactly_its_new_entries(db_path):
    await check_retries_and_mixed_batches(db_path)


async def test_eight_processes_with_retried_batches_lose_nothing_and_double_nothing(db_path):
    await check_processes_racing(db_path)


async def test_entries_round_trip_exactly_and_the_cli_reads_them(db_path):
    store = SessiondbSessionStore(db_path)
    await store.append(KEY, TRANSCRIPT)
    await store.append(SUB, [{"type": "user", "uuid": "s1", "isSidechain": True,
                              "message": {"role": "user", "content": "find the parser"}}])
    loaded = await store.load(KEY)
    assert loaded == TRANSCRIPT
    assert json.dumps(loaded) == json.dumps(TRANSCRIPT)  # key order kept too
    id = "claude:-home-me-proj/0b6c1e2a-1111-2222-3333-444455556666"
    assert session_id_for(KEY) == id
    assert cli(db_path, "history", id) == (
        "[0] user: Where is the config parser? ünïcødé ✓\n"
        "    [claude_agent_sdk.entry]\n"
        "[1] assistant: In src/config.rs, line 12.\n"
        "    [tool: Read]\n"
        "    [claude_agent_sdk.entry]\n"
        "[2] user: fn parse_config() {}\n"
        "    [claude_agent_sdk.entry]\n"
        "[3] system: custom-title: config hunt\n"
        "    [claude_agent_sdk.entry]\n"
        "[4] system: tag: keep\n"
        "    [claude_agent_sdk.entry]\n"
    )
    as_json = json.loads(cli(db_path, "history", id, "--json"))
    assert [m["content"][-1]["entry"] for m in as_json] == TRANSCRIPT
    assert [m.get("key") for m in as_json] == ["u1", "u2", "u3", None, None]
    assert cli(db_path, "search", "parser") == (  # best first: the shorter message
        f"{id}/subagents/agent-a1 [0] user on main: find the [parser]\n"
        f"{id} [0] user on main: Where is the config [parser]? ünïcødé ✓\n"
    )
    sessions = sessiondb.Store(db_path).list_sessions(agent_name=AGENT_NAME, user_id=KEY["project_key"])
    assert sorted(s["id"] for s in sessions) == [id, id + "/subagents/agent-a1"]


async def test_sdk_sessions_are_expired_and_purged_by_the_cli(db_path):
    store = SessiondbSessionStore(db_path)
    old = {"project_key": "-p", "session_id": "old"}
    await store.append(old, TRANSCRIPT[:2])
    await store.append({**old, "subpath": "subagents/agent-1"}, TRANSCRIPT[2:3])
    time.sleep(0.3)  # so that "idle for longer than 200ms" parts the two
    fresh = {"project_key": "-p", "session_id": "fresh"}
    await store.append(fresh, TRANSCRIPT[:1])
    other = {"project_key": "-q", "session_id": "kept"}
    await store.append(other, TRANSCRIPT[:1])
    assert cli(db_path, "expire", "--older-than", "200ms", "--yes") == (
        "claude:-p/old\nclaude:-p/old/subagents/agent-1\nexpired 2 sessions, 3 messages\n"
    )
    assert await store.load(old) is None
    assert await store.list_subkeys(old) == []
    assert [s["session_id"] for s in await store.list_sessions("-p")] == ["fresh"]
    # purge --user erases a project (its project_key is the sessions' user).
    assert cli(db_path, "purge", "--user=-p", "--yes") == (
        "purged claude:-p/fresh\nerased 1 branch, 1 message, 0 snapshots\n"
    )
    assert await store.list_sessions("-p") == []
    assert await store.list_session_summaries("-p") == []
    assert await store.load(other) == TRANSCRIPT[:1]


def _append_big_batch(database: str, ready) -> None:
    store = SessiondbSessionStore(database)
    ready.set()
    asyncio.run(store.append(KEY, big_batch()))


def big_batch() -> list[dict]:
    return [{"type": "user", "uuid": f"big-{i}", "message": {"role": "user", "content": f"{i} " + "x" * 2000}}
            for i in range(3000)]


async def test_a_process_killed_mid_append_then_a_retry_leaves_exactly_one_copy(db_path):
    store = SessiondbSessionStore(db_path)
    await store.append(KEY, TRANSCRIPT[:1])
    ctx = multiprocessing.get_context("spawn")
    outcomes = set()
    for delay in (0.0, 0.05, 0.2, 0.4):
        ready = ctx.Event()
        proc = ctx.Process(target=_append_big_batch, args=(db_path, ready))
        proc.start()
        assert ready.wait(60)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        assert proc.exitcode in (-signal.SIGKILL, 0)
        # All of the batch or none of it, never a part.
        before = await store.load(KEY)
        assert before in (TRANSCRIPT[:1], TRANSCRIPT[:1] + big_batch())
        outcomes.add(len(before))
        await store.append(KEY, big_batch())
        assert await store.load(KEY) == TRANSCRIPT[:1] + big_batch()
        await store.delete(KEY)
        await store.append(KEY, TRANSCRIPT[:1])
    assert outcomes <= {1, 3001}


async def test_a_write_waiting_for_the_lock_does_not_block_the_event_loop(db_path):
    store = SessiondbSessionStore(db_path)
    await store.append(KEY, TRANSCRIPT[:1])
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys\n"
         f"c = sqlite3.connect({db_path!r}, isolation_level=None)\n"
         "c.execute('BEGIN IMMEDIATE'); print('held', flush=True); sys.stdin.readline()\n"
         "c.execute('ROLLBACK')"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        append = asyncio.create_task(store.append(KEY, TRANSCRIPT[1:3]))
        for _ in range(5):
            await asyncio.sleep(0.01)  # the loop runs while the append waits
        assert not append.done()
        holder.stdin.write("\n")
        holder.stdin.flush()
        await append
    finally:
        holder.kill()
        holder.wait()
    assert await store.load(KEY) == TRANSCRIPT[:3]


class Opaque:
    pass


def _deep(levels):
    value = 1
    for _ in range(levels):
        value = [value]
    return value


def _cycle():
    d = {"type": "user", "uuid": "c"}
    d["self"] = d
    return d


@pytest.mark.parametrize(
    "entries, message",
    [
        ([{"type": "x", "v": {1, 2}}], "set"),
        ([{"type": "x", "v": Opaque()}], "Opaque"),
        ([{"type": "x", "v": math.nan}], "NaN"),
        ([{"type": "x", "v": math.inf}], "inf"),
        ([_cycle()], "entry 1.self contains itself"),
        ([{"type": "x", 3: "int key"}], "key"),
        (["not a dict"], "entry 1 is a str"),
        ([{"type": "x"}, None], "entry 2 is a NoneType"),
        ([{"type": "x"}, ["a", "list"]], "entry 2 is a list"),
        ([{"type": "x", "deep": _deep(200)}], "entry 1.deep"),
        ([{"type": "x", "uuid": 7}], "uuid must be a non-empty string"),
        ([{"type": "x", "uuid": ""}], "uuid must be a non-empty string"),
        ({"type": "x"}, "entries must be a list"),
    ],
)
async def test_entries_json_cannot_hold_are_refused_and_nothing_is_stored(db_path, entries, message):
    store = SessiondbSessionStore(db_path)
    await store.append(KEY, TRANSCRIPT[:1])
    version = store.store.session(session_id_for(KEY))["version"]
    with pytest.raises(sessiondb.InvalidInput, match=message):
        await store.append(KEY, [TRANSCRIPT[1], *entries] if isinstance(entries, list) else entries)
    assert await store.load(KEY) == TRANSCRIPT[:1]
    assert store.store.session(session_id_for(KEY))["version"] == version
    with pytest.raises(sessiondb.InvalidInput, match=message.replace("entry 1", "entry 0").replace("entry 2", "entry 1")):
        await store.append({"project_key": "-p", "session_id": "new"}, entries)
    # Not even an empty session is left behind.
    assert [s["id"] for s in store.store.list_sessions()] == [session_id_for(KEY)]


@pytest.mark.parametrize(
    "key, message",
    [
        ({"session_id": "s"}, "project_key must be a non-empty string, not None"),
        ({"project_key": "", "session_id": "s"}, "project_key must be a non-empty string, not ''"),
        ({"project_key": "p", "session_id": ""}, "session_id must be a non-empty string"),
        ({"project_key": "p"}, "session_id must be a non-empty string, not None"),
        ({"project_key": "p", "session_id": 5}, "session_id must be a non-empty string, not 5"),
        ({"project_key": "p", "session_id": "s", "subpath": ""}, "subpath must be a non-empty string"),
        ("p/s", "a session key is a dict, not str"),
        ({"project_key": "p" * 300, "session_id": "s"}, "more than 256 bytes"),
    ],
)
async def test_bad_keys_are_refused_by_every_method_and_nothing_is_stored(db_path, key, message):
    store = SessiondbSessionStore(db_path)
    for call in (lambda: store.append(key, TRANSCRIPT[:1]), lambda: store.load(key),
                 lambda: store.delete(key)):
        with pytest.raises(sessiondb.InvalidInput, match=message):
            await call()
    if "bytes" not in message and (isinstance(key, str) or "subpath" not in key):
        with pytest.raises(sessiondb.InvalidInput, match=message):
            await store.list_subkeys(key)
    assert sessiondb.Store(db_path).list_sessions() == []
    with pytest.raises(sessiondb.InvalidInput, match="project_key must be a non-empty string"):
        await store.list_sessions("")


def test_ids_are_distinct_for_distinct_keys_whatever_they_hold():
    keys = [
        {"project_key": "a/b", "session_id": "c"},
        {"project_key": "a", "session_id": "b/c"},
        {"project_key": "a", "session_id": "b", "subpath": "c"},
        {"project_key": "a%2Fb", "session_id": "c"},
        {"project_key": "a", "session_id": "b\nc"},
        {"project_key": "a", "session_id": "b%0Ac"},
        {"project_key": "a", "session_id": "b", "subpath": "c/d"},
        {"project_key": "a", "session_id": "b/c", "subpath": "d"},
        {"project_key": "a", "session_id": "b", "subpath": "/"},
        {"project_key": "a", "session_id": "b", "subpath": "%2F"},
    ]
    ids = [session_id_for(k) for k in keys]
    assert ids == [
        "claude:a%2Fb/c", "claude:a/b%2Fc", "claude:a/b/c", "claude:a%252Fb/c",
        "claude:a/b%0Ac", "claude:a/b%250Ac", "claude:a/b/c/d", "claude:a/b%2Fc/d",
        "claude:a/b//", "claude:a/b/%252F",
    ]
    assert len(set(ids)) == len(ids)


async def test_keys_with_any_characters_are_stored_apart(db_path):
    store = SessiondbSessionStore(db_path)
    a = {"project_key": "p/q", "session_id": "s\u0085"}
    b = {"project_key": "p", "session_id": "q/s\u0085"}
    await store.append(a, [{"type": "x", "n": 1}])
    await store.append(b, [{"type": "x", "n": 2}])
    assert await store.load(a) == [{"type": "x", "n": 1}]
    assert await store.load(b) == [{"type": "x", "n": 2}]
    assert await store.list_sessions("p/q") != []
    assert [s["session_id"] for s in await store.list_sessions("p")] == ["q/s\u0085"]


async def test_a_session_this_store_did_not_write_is_left_alone(db_path):
    plain = sessiondb.Store(db_path)
    id = session_id_for(KEY)
    plain.add_user_message(id, "written by someone else")
    store = SessiondbSessionStore(store=plain)
    with pytest.raises(sessiondb.InvalidInput, match="was not written by SessiondbSessionStore"):
        await store.append(KEY, TRANSCRIPT[:1])
    assert await store.load(KEY) is None
    await store.delete(KEY)
    assert [m["content"] for m in plain.chat_history(id)] == ["written by someone else"]


async def test_delete_of_a_main_key_takes_its_subagents_and_nothing_else(db_path):
    store = SessiondbSessionStore(db_path)
    await store.append(KEY, TRANSCRIPT[:1])
    await store.append(SUB, TRANSCRIPT[1:2])
    other = {**KEY, "session_id": "other"}
    await store.append({**other, "subpath": "subagents/agent-a1"}, TRANSCRIPT[2:3])
    await store.delete(KEY)
    assert await store.load(KEY) is None and await store.load(SUB) is None
    assert await store.list_subkeys(other) == ["subagents/agent-a1"]
    # A subagent written before its main transcript is listed, and its main is not.
    assert await store.list_sessions(KEY["project_key"]) == []


async def test_load_returns_every_entry_of_a_session_an_operator_compacted(db_path):
    store = SessiondbSessionStore(db_path)
    await store.append(KEY, TRANSCRIPT)
    store.store.compact(session_id_for(KEY), {"role": "system", "content": "summary"}, 2)
    assert len(store.store.chat_history(session_id_for(KEY))) == 3
    assert await store.load(KEY) == TRANSCRIPT


def _append_one(database: str) -> None:
    asyncio.run(SessiondbSessionStore(database).append(KEY, [{"type": "tag", "uuid": "t9", "tag": "late"}]))


async def test_a_repeated_load_hands_out_fresh_copies_and_sees_other_processes_writes(db_path):
    store = SessiondbSessionStore(db_path)
    await store.append(KEY, TRANSCRIPT)
    loads = []
    for _ in range(3):  # the first reads the file, the others an unchanged transcript
        loaded = await store.load(KEY)
        assert loaded == TRANSCRIPT
        assert all(loaded[1]["message"] is not other[1]["message"] for other in loads)
        loaded[1]["message"]["content"][1]["text"] = "changed by the caller"
        loaded.append({"type": "tag", "tag": "mine"})
        loads.append(loaded)
    # Another process appends: the next load (same store, same loop) has it.
    process = multiprocessing.get_context("spawn").Process(target=_append_one, args=(str(db_path),))
    process.start()
    process.join(60)
    assert process.exitcode == 0
    assert await store.load(KEY) == TRANSCRIPT + [{"type": "tag", "uuid": "t9", "tag": "late"}]
    # Deleted elsewhere: None, not what was loaded before.
    await SessiondbSessionStore(db_path).delete(KEY)
    assert await store.load(KEY) is None
