"""SessiondbSession against the Agents SDK Session protocol and against SQLiteSession."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import threading
import time

import pytest
from agents import SQLiteSession
from agents.memory import Session, SessionSettings

from sessiondb import Store
from sessiondb.openai_agents import SessiondbSession

ITEMS = [
    {"role": "user", "content": "What is the weather?"},
    {"role": "user", "content": [{"type": "input_text", "text": "look"}, {"type": "input_image", "image_url": "data:x"}]},
    {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{\"city\": \"Oslo\"}", "id": "fc_1", "status": "completed"},
    {"type": "function_call_output", "call_id": "c1", "output": "rain"},
    {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "thinking"}], "content": None},
    {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
     "content": [{"type": "output_text", "text": "It rains.", "annotations": [], "logprobs": []}]},
    {"role": "developer", "content": "be brief"},
    {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "q"}},
]


def test_is_a_session_by_the_sdk_protocol(db_path):
    assert isinstance(SessiondbSession("s", db_path), Session)


async def test_every_item_shape_round_trips_exactly(db_path):
    session = SessiondbSession("s", db_path)
    await session.add_items(ITEMS)
    items = await session.get_items()
    assert items == ITEMS
    assert [list(i) for i in items] == [list(i) for i in ITEMS]  # key order too
    assert await SessiondbSession("s", db_path).get_items(limit=2) == ITEMS[-2:]


async def test_limits_follow_session_settings(db_path):
    session = SessiondbSession("s", db_path, session_settings=SessionSettings(limit=3))
    await session.add_items([{"role": "user", "content": str(i)} for i in range(5)])
    assert [i["content"] for i in await session.get_items()] == ["2", "3", "4"]
    assert [i["content"] for i in await session.get_items(limit=1)] == ["4"]
    assert await session.get_items(limit=0) == []


async def test_pop_clear_and_unknown_sessions(db_path):
    session = SessiondbSession("s", db_path)
    assert await session.pop_item() is None
    assert await session.get_items() == []
    await session.add_items(ITEMS[:3])
    assert await session.pop_item() == ITEMS[2]
    assert await session.get_items() == ITEMS[:2]
    await session.clear_session()
    assert await session.get_items() == []
    await session.clear_session()
    await session.add_items([])
    assert await session.get_items() == []


async def test_add_items_is_all_or_nothing(db_path):
    session = SessiondbSession("s", db_path)
    await session.add_items([ITEMS[0]])
    with pytest.raises(Exception):
        await session.add_items([ITEMS[1], {"role": "wizard", "content": "bad role"}])
    assert await session.get_items() == [ITEMS[0]]


async def test_calls_do_not_block_the_event_loop(db_path):
    session = SessiondbSession("s", db_path)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    for n in range(20):
        await session.add_items([{"role": "user", "content": str(n)}])
    task.cancel()
    assert ticks >= 20
    assert len(await session.get_items()) == 20


def test_closed_session_refuses_writes(db_path):
    session = SessiondbSession("s", db_path)
    session.close()
    with pytest.raises(RuntimeError):
        asyncio.run(session.add_items([ITEMS[0]]))


@pytest.mark.parametrize("seed", range(5))
async def test_same_operations_same_results_as_sqlite_session(tmp_path, seed):
    rng = random.Random(seed)
    ours = SessiondbSession("d", str(tmp_path / "ours.db"))
    theirs = SQLiteSession("d", str(tmp_path / "theirs.db"))
    for step in range(60):
        op = rng.choice(["add", "add", "add", "get", "get_limit", "pop", "clear"] if step % 25 else ["clear"])
        if op == "add":
            batch = rng.sample(ITEMS, rng.randint(1, 3))
            await ours.add_items(batch)
            await theirs.add_items(batch)
        elif op == "get":
            assert await ours.get_items() == await theirs.get_items()
        elif op == "get_limit":
            n = rng.randint(1, 6)
            assert await ours.get_items(n) == await theirs.get_items(n)
        elif op == "pop":
            assert await ours.pop_item() == await theirs.pop_item()
        else:
            await ours.clear_session()
            await theirs.clear_session()
    assert await ours.get_items() == await theirs.get_items()
    theirs.close()


def _append_worker(db_path, worker, count):
    async def run():
        session = SessiondbSession("shared", db_path)
        for i in range(count):
            await session.add_items([
                {"role": "user", "content": f"w{worker}-{i}"},
                {"type": "function_call_output", "call_id": f"w{worker}-{i}", "output": "ok"},
            ])
    asyncio.run(run())


def test_four_processes_append_to_one_session_nothing_lost(db_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_worker, args=(db_path, w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    items = asyncio.run(SessiondbSession("shared", db_path).get_items())
    assert len(items) == 200
    for w in range(4):
        mine = [i["content"] for i in items if i.get("role") == "user" and i["content"].startswith(f"w{w}-")]
        assert mine == [f"w{w}-{i}" for i in range(25)]
    # Each batch stayed together: a user item is always followed by its own output.
    for a, b in zip(items[::2], items[1::2]):
        assert b["call_id"] == a["content"]


async def test_items_handed_out_are_copies_the_session_keeps_its_own(db_path):
    session = SessiondbSession("s", db_path)
    await session.add_items(ITEMS)
    first = await session.get_items()
    first[1]["content"][0]["text"] = "changed"
    first[4]["summary"].append({"type": "summary_text", "text": "extra"})
    first.pop()
    assert await session.get_items() == ITEMS
    last = await session.get_items(2)
    last[0]["role"] = "user"
    assert await session.get_items(2) == ITEMS[-2:]


async def test_reads_see_writes_made_through_another_store(tmp_path):
    path = str(tmp_path / "s.db")
    ours = SessiondbSession("s", store=Store(path))
    other = SessiondbSession("s", store=Store(path))
    await ours.add_items(ITEMS[:2])
    assert await ours.get_items() == ITEMS[:2]
    await other.add_items(ITEMS[2:4])
    assert await ours.get_items() == ITEMS[:4]
    await ours.add_items([ITEMS[4]])  # our own append right after someone else's
    assert await ours.get_items() == ITEMS[:5]
    assert await other.pop_item() == ITEMS[4]
    assert await ours.get_items(3) == ITEMS[1:4]
    await other.clear_session()
    assert await ours.get_items() == []
    await other.add_items([ITEMS[5]])
    assert await ours.get_items() == [ITEMS[5]]


async def test_a_window_read_with_a_limit_then_a_full_read(db_path):
    session = SessiondbSession("s", db_path)
    await session.add_items(ITEMS)
    fresh = SessiondbSession("s", db_path)
    assert await fresh.get_items(3) == ITEMS[-3:]
    assert await fresh.get_items(2) == ITEMS[-2:]
    assert await fresh.get_items() == ITEMS
    await fresh.add_items([ITEMS[0]])
    assert await fresh.get_items() == ITEMS + [ITEMS[0]]


async def test_stored_items_read_back_as_json_values(db_path):
    session = SessiondbSession("s", db_path)
    await session.add_items([{"role": "user", "content": [{"type": "input_text", "text": "t"}], "n": (1, 2)}])
    expected = [{"role": "user", "content": [{"type": "input_text", "text": "t"}], "n": [1, 2]}]
    assert await session.get_items() == expected
    assert await SessiondbSession("s", db_path).get_items() == expected


def _hold_write_lock(path, seconds, ready):
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    ready.set()
    time.sleep(seconds)
    conn.execute("COMMIT")
    conn.close()


async def test_a_write_that_finds_the_lock_held_waits_in_a_thread(db_path):
    session = SessiondbSession("s", db_path)
    await session.add_items([ITEMS[0]])
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_write_lock, args=(db_path, 0.5, ready))
    holder.start()
    try:
        assert ready.wait(60)
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await session.add_items([ITEMS[1]])
        task.cancel()
    finally:
        holder.join(timeout=60)
    assert holder.exitcode == 0
    # The append waited for the other process's commit while the loop kept running (on the
    # loop it would have allowed no tick at all).
    assert ticks >= 100
    assert await session.get_items() == ITEMS[:2]


async def test_function_calls_without_a_call_id_round_trip(db_path):
    items = [
        {"type": "function_call", "name": "lookup", "arguments": "{}"},
        {"type": "function_call", "name": "lookup", "arguments": "{}", "call_id": None},
    ]
    await SessiondbSession("s", db_path).add_items(items)
    assert await SessiondbSession("s", db_path).get_items() == items
