"""AdvancedSessiondbSession: AdvancedSQLiteSession's API on sessiondb branches."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from agents.usage import Usage
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

from sessiondb.openai_agents import AdvancedSessiondbSession


def user(text):
    return {"role": "user", "content": text}


def answer(text):
    return {"id": f"msg_{text}", "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def call(name, call_id):
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": "{}"}


def output(call_id):
    return {"type": "function_call_output", "call_id": call_id, "output": "ok"}


CONVERSATION = [
    user("plan a trip to Oslo"), call("weather", "c1"), output("c1"), answer("rainy"),
    user("and Bergen?"), call("weather", "c2"), output("c2"), call("maps", "c3"), output("c3"),
    answer("rainier"),
    user("thanks"), answer("welcome"),
]


def run_result(requests, input_tokens, output_tokens):
    usage = Usage(
        requests=requests,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
        input_tokens_details=InputTokensDetails(cached_tokens=1, cache_write_tokens=0),
        output_tokens_details=OutputTokensDetails(reasoning_tokens=2),
    )
    return SimpleNamespace(context_wrapper=SimpleNamespace(usage=usage))


@pytest.fixture
async def session(db_path):
    s = AdvancedSessiondbSession(session_id="adv", db_path=db_path)
    await s.add_items(CONVERSATION)
    return s


async def test_turns_are_the_user_items_in_order(session):
    turns = await session.get_conversation_turns()
    assert [(t["turn"], t["full_content"], t["can_branch"]) for t in turns] == [
        (1, "plan a trip to Oslo", True), (2, "and Bergen?", True), (3, "thanks", True)]
    assert all(len(t["timestamp"]) == len("2026-01-01 00:00:00") for t in turns)
    by_turn = await session.get_conversation_by_turns()
    assert by_turn == {
        1: [{"type": "user", "tool_name": None}, {"type": "function_call", "tool_name": "weather"},
            {"type": "function_call_output", "tool_name": None}, {"type": "assistant", "tool_name": None}],
        2: [{"type": "user", "tool_name": None}, {"type": "function_call", "tool_name": "weather"},
            {"type": "function_call_output", "tool_name": None}, {"type": "function_call", "tool_name": "maps"},
            {"type": "function_call_output", "tool_name": None}, {"type": "assistant", "tool_name": None}],
        3: [{"type": "user", "tool_name": None}, {"type": "assistant", "tool_name": None}],
    }
    assert await session.get_tool_usage() == [("weather", 1, 1), ("maps", 1, 2), ("weather", 1, 2)]


async def test_find_turns_matches_text_ignoring_ascii_case(session):
    found = await session.find_turns_by_content("BERGEN")
    assert [(t["turn"], t["content"]) for t in found] == [(2, "and Bergen?")]
    assert await session.find_turns_by_content("nowhere") == []


async def test_branch_from_a_turn_holds_the_items_before_it_and_becomes_current(session):
    name = await session.create_branch_from_turn(2, "retry")
    assert name == "retry"
    assert await session.get_items() == CONVERSATION[:4]
    await session.add_items([user("and Stavanger?")])
    assert await session.get_items() == CONVERSATION[:4] + [user("and Stavanger?")]
    assert await session.get_items(branch_id="main") == CONVERSATION
    assert await session.get_items(2, branch_id="main") == CONVERSATION[-2:]
    branches = await session.list_branches()
    assert [(b["branch_id"], b["message_count"], b["user_turns"], b["is_current"]) for b in branches] == [
        ("main", 12, 3, False), ("retry", 5, 2, True)]
    # Another instance sees the same current branch: it is the session's head.
    other = AdvancedSessiondbSession(session_id="adv", db_path=session.db_path)
    assert await other.get_items() == CONVERSATION[:4] + [user("and Stavanger?")]
    await session.switch_to_branch("main")
    assert await session.get_items() == CONVERSATION


async def test_branch_from_the_first_turn_is_empty(session):
    name = await session.create_branch_from_turn(1)
    assert name.startswith("branch_from_turn_1_")
    assert await session.get_items() == []
    assert [b["branch_id"] for b in await session.list_branches()] == ["main"]
    await session.add_items([user("start over")])
    assert await session.get_items() == [user("start over")]


async def test_branch_from_content_uses_the_first_match(session):
    await session.add_items([user("and Bergen again")])
    assert await session.create_branch_from_content("bergen", "b") == "b"
    assert await session.get_items() == CONVERSATION[:4]
    with pytest.raises(ValueError, match="No user turns found containing 'Tromsø'"):
        await session.create_branch_from_content("Tromsø")


async def test_branch_errors(session):
    with pytest.raises(ValueError, match="Branch name cannot be empty"):
        await session.create_branch_from_turn(1, "  ")
    with pytest.raises(ValueError, match="Turn 7 does not contain a user message in branch 'main'"):
        await session.create_branch_from_turn(7)
    with pytest.raises(ValueError, match="has already been used"):
        await session.create_branch_from_turn(2, "main")
    with pytest.raises(ValueError, match="Branch 'nope' does not exist"):
        await session.switch_to_branch("nope")
    with pytest.raises(ValueError, match="Cannot delete the 'main' branch"):
        await session.delete_branch("main")
    with pytest.raises(ValueError, match="Branch 'nope' does not exist"):
        await session.delete_branch("nope")
    await session.create_branch_from_turn(3, "b")
    with pytest.raises(ValueError, match="Cannot delete current branch 'b'"):
        await session.delete_branch("b")
    assert await session.get_items() == CONVERSATION[:10]


async def test_deleted_branch_names_stay_used(session):
    await session.create_branch_from_turn(2, "b")
    await session.delete_branch("b", force=True)
    assert [b["branch_id"] for b in await session.list_branches()] == ["main"]
    assert await session.get_items() == CONVERSATION
    with pytest.raises(ValueError, match="Branch ID 'b' has already been used"):
        await session.create_branch_from_turn(2, "b")


async def test_usage_per_turn_branch_and_session(session):
    await session.store_run_usage(run_result(1, 10, 5))
    assert await session.get_turn_usage(3) == {
        "requests": 1, "input_tokens": 10, "output_tokens": 5, "total_tokens": 15,
        "input_tokens_details": {"cached_tokens": 1, "cache_write_tokens": 0, "cache_write_tokens_details": None}, "output_tokens_details": {"reasoning_tokens": 2}}
    await session.store_run_usage(run_result(2, 20, 10))  # replaces turn 3's usage
    await session.create_branch_from_turn(3, "b")
    await session.add_items([user("bye")])
    await session.store_run_usage(run_result(1, 7, 3))
    assert [u["user_turn_number"] for u in await session.get_turn_usage()] == [3]
    assert (await session.get_turn_usage(branch_id="main"))[0]["total_tokens"] == 30
    assert await session.get_session_usage(branch_id="main") == {
        "requests": 2, "input_tokens": 20, "output_tokens": 10, "total_tokens": 30, "total_turns": 1}
    assert await session.get_session_usage() == {
        "requests": 3, "input_tokens": 27, "output_tokens": 13, "total_tokens": 40, "total_turns": 2}
    assert await session.get_turn_usage(9) == {}
    # Popping a turn's user item removes that turn's usage.
    assert await session.pop_item() == user("bye")
    assert await session.get_session_usage(branch_id="b") is None
    await session.clear_session()
    assert await session.get_session_usage() is None
    assert await session.get_items() == []
    assert [b["branch_id"] for b in await session.list_branches()] == []
    await session.add_items([user("again")])
    assert await session.list_branches() == [
        {**(await session.list_branches())[0], "branch_id": "main", "message_count": 1,
         "user_turns": 1, "is_current": True}]


async def test_usage_is_recorded_in_the_core_against_the_turns_user_item(session):
    await session.store_run_usage(run_result(1, 10, 5))  # turn 3: the item at index 10
    records = session.store.recorded_usage("adv")
    assert [(r["index"], r["input_tokens"], r["total_tokens"]) for r in records] == [(10, 10, 15)]
    assert records[0]["details"]["output_tokens_details"] == {"reasoning_tokens": 2}
    # Popping an item after the user item keeps the turn's usage.
    assert await session.pop_item() == answer("welcome")
    assert (await session.get_turn_usage(3))["total_tokens"] == 15
    # A branch from turn 3 shares turns 1 and 2, not turn 3's usage; main keeps it.
    await session.create_branch_from_turn(3, "b")
    assert await session.get_turn_usage() == []
    assert await session.get_session_usage() == {
        "requests": 1, "input_tokens": 10, "output_tokens": 5, "total_tokens": 15, "total_turns": 1}


async def test_usage_is_not_recorded_before_the_first_turn(db_path):
    s = AdvancedSessiondbSession(session_id="empty", db_path=db_path)
    await s.store_run_usage(run_result(1, 1, 1))
    assert await s.get_session_usage() is None
    await s.add_items([answer("hello")])
    await s.store_run_usage(run_result(1, 1, 1))
    assert await s.get_session_usage() is None
