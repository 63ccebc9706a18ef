"""The Agents SDK's wrappers over SessiondbSession: OpenAIResponsesCompactionSession (driven
by a scripted model and a stub compaction client, no network), EncryptedSession, the
``wrapper`` keyword, and cancellation while a write runs."""

from __future__ import annotations

import asyncio
import inspect
import threading
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import pytest
from agents import Agent, RunConfig, Runner, SQLiteSession
from agents.memory import OpenAIResponsesCompactionSession
from agents.testing import ScriptedModel
from openai.types.responses import ResponseOutputMessage, ResponseOutputText

from sessiondb import Store
from sessiondb.openai_agents import AdvancedSessiondbSession, SessiondbSession

ORIGINAL = [{"role": "user", "content": f"question {i}"} for i in range(4)]
SUMMARY = {"type": "compaction", "id": "cmp_1", "encrypted_content": "summary of it all"}


def _reply() -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id="msg_done",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text="done", annotations=[])],
    )


def _stub_client(output: list[Any]) -> MagicMock:
    client = MagicMock()
    client.responses.compact = AsyncMock(return_value=SimpleNamespace(output=output))
    return client


async def _run_compacting(backend: Any, output: list[Any], config: RunConfig) -> MagicMock:
    """One Runner turn over ``backend`` whose post-turn compaction returns ``output``."""
    client = _stub_client(output)
    session = OpenAIResponsesCompactionSession(
        "s",
        backend,
        client=client,
        compaction_mode="input",
        should_trigger_compaction=lambda _: True,
    )
    agent = Agent(name="worker", model=ScriptedModel(steps=[[_reply()]]))
    await Runner.run(agent, "continue", session=session, run_config=config)
    return client


def _stored_items(store: Store, session_id: str) -> list[Any]:
    return [m["metadata"]["openai_item"] for m in store.full_history(session_id)]


@pytest.mark.parametrize("output", [[SUMMARY], [ORIGINAL[0], SUMMARY], []], ids=["one", "two", "none"])
async def test_sdk_compaction_leaves_upstreams_items_and_keeps_the_full_history(
    tmp_path, output
):
    turn = [{"role": "user", "content": "continue"}, _reply().model_dump(exclude_unset=True)]
    upstream = SQLiteSession("s", tmp_path / "upstream.db")
    await upstream.add_items(ORIGINAL)
    await _run_compacting(upstream, output, RunConfig())

    store = Store(str(tmp_path / "sessions.db"))
    ours = SessiondbSession("s", store=store)
    await ours.add_items(ORIGINAL)
    client = await _run_compacting(ours, output, RunConfig())

    client.responses.compact.assert_awaited_once()
    assert client.responses.compact.call_args.kwargs["input"] == ORIGINAL + turn
    assert await upstream.get_items() == output
    assert await ours.get_items() == output
    assert await ours.get_items(limit=1) == output[-1:]
    # Nothing was deleted: every item before the compaction, then its output.
    assert _stored_items(store, "s") == ORIGINAL + turn + output
    # A fresh session object (no cached window) reads the same.
    assert await SessiondbSession("s", store=store).get_items() == output


async def test_items_added_after_an_sdk_compaction_follow_its_output(tmp_path):
    store = Store(str(tmp_path / "sessions.db"))
    ours = SessiondbSession("s", store=store)
    await ours.add_items(ORIGINAL)
    await _run_compacting(ours, [], RunConfig())
    assert await ours.get_items() == []
    assert await ours.pop_item() is None  # nothing to pop: the compacted items stay compacted
    await ours.add_items([{"role": "user", "content": "after"}])
    assert await ours.get_items() == [{"role": "user", "content": "after"}]
    assert await ours.pop_item() == {"role": "user", "content": "after"}
    assert await ours.get_items() == []
    assert len(store.full_history("s")) == len(ORIGINAL) + 2


async def test_sdk_compaction_of_a_limited_suffix_matches_upstream(tmp_path):
    # With a session limit the model sees only the latest item, so only the turn's suffix
    # is replaced; the items before it stay.
    config = RunConfig(session_settings={"limit": 1})
    upstream = SQLiteSession("s", tmp_path / "upstream.db")
    await upstream.add_items(ORIGINAL)
    await _run_compacting(upstream, [SUMMARY], config)

    ours = SessiondbSession("s", tmp_path / "sessions.db")
    await ours.add_items(ORIGINAL)
    await _run_compacting(ours, [SUMMARY], config)

    expected = await upstream.get_items()
    assert expected == ORIGINAL[:-1] + [SUMMARY]
    assert await ours.get_items() == expected


async def test_sdk_compaction_skips_a_session_changed_since_its_snapshot(tmp_path):
    ours = SessiondbSession("s", tmp_path / "sessions.db")
    await ours.add_items(ORIGINAL)
    newer = {"role": "user", "content": "written during the compaction request"}

    async def compact(**kwargs: Any) -> Any:
        await SessiondbSession("s", tmp_path / "sessions.db").add_items([newer])
        return SimpleNamespace(output=[SUMMARY])

    client = MagicMock()
    client.responses.compact = AsyncMock(side_effect=compact)
    session = OpenAIResponsesCompactionSession(
        "s", ours, client=client, compaction_mode="input", should_trigger_compaction=lambda _: True
    )
    agent = Agent(name="worker", model=ScriptedModel(steps=[[_reply()]]))
    await Runner.run(agent, "continue", session=session)
    assert await ours.get_items() == ORIGINAL + [
        {"role": "user", "content": "continue"},
        _reply().model_dump(exclude_unset=True),
        newer,
    ]


async def test_manual_sdk_compaction_keeps_the_full_history(tmp_path):
    store = Store(str(tmp_path / "sessions.db"))
    ours = SessiondbSession("s", store=store)
    await ours.add_items(ORIGINAL)
    session = OpenAIResponsesCompactionSession("s", ours, client=_stub_client([SUMMARY]))
    await session.run_compaction({"force": True})
    assert await ours.get_items() == [SUMMARY]
    assert _stored_items(store, "s") == ORIGINAL + [SUMMARY]
    # Again: the second compaction covers the first.
    await ours.add_items([{"role": "user", "content": "more"}])
    await session.run_compaction({"force": True})
    assert await ours.get_items() == [SUMMARY]
    assert _stored_items(store, "s") == ORIGINAL + [SUMMARY, {"role": "user", "content": "more"}, SUMMARY]


@pytest.mark.parametrize("expired", [False, True])
async def test_encrypted_pop_through_the_validated_hook_with_the_wrong_key_removes_nothing(
    db_path, expired, monkeypatch
):
    pytest.importorskip("cryptography")
    import agents.extensions.memory.encrypt_session as encrypt_session
    from cryptography.fernet import InvalidToken

    # EncryptedSession 0.24.0 calls the hook only on the class it knows by name.
    monkeypatch.setattr(encrypt_session, "SQLiteSession", SessiondbSession)
    clock = [1_000]
    monkeypatch.setattr("cryptography.fernet.time.time", lambda: clock[0])
    backend = SessiondbSession("s", db_path)
    right = encrypt_session.EncryptedSession("s", backend, "right key", ttl=10)
    wrong = encrypt_session.EncryptedSession("s", backend, "wrong key", ttl=10)
    items = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "second"}]
    await right.add_items(items)
    stored = await backend.get_items()
    if expired:
        clock[0] += 20
    with pytest.raises(InvalidToken):
        await wrong.pop_item()
    assert await backend.get_items() == stored
    reader = encrypt_session.EncryptedSession("s", backend, "right key", ttl=60)
    assert await reader.pop_item() == items[1]
    assert await reader.get_items() == items[:1]


async def test_encrypted_pop_without_the_hook_leaves_the_items_in_a_superseded_branch(db_path):
    pytest.importorskip("cryptography")
    from agents.extensions.memory import EncryptedSession

    store = Store(db_path)
    backend = SessiondbSession("s", store=store)
    items = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "second"}]
    await EncryptedSession("s", backend, "right key").add_items(items)
    stored = await backend.get_items()
    # Over a session it does not know, EncryptedSession pops first and authenticates after:
    # the wrong key drains the history. sessiondb's pop only moves the head.
    assert await EncryptedSession("s", backend, "wrong key").pop_item() is None
    assert await backend.get_items() == []
    superseded = [b for b in store.branches("s") if b["length"] == len(items)]
    assert [m["metadata"]["openai_item"] for m in store.branch_history("s", superseded[0]["name"])] == stored


async def test_validated_pop_removes_the_item_it_validated(db_path):
    session = SessiondbSession("s", db_path)
    await session.add_items(ORIGINAL)
    seen = []
    assert await session._pop_item_with_validation(seen.append) == ORIGINAL[-1]
    assert seen == [ORIGINAL[-1]]
    assert await session.get_items() == ORIGINAL[:-1]

    def refuse(item: Any) -> None:
        raise ValueError("no")

    with pytest.raises(ValueError):
        await session._pop_item_with_validation(refuse)
    assert await session.get_items() == ORIGINAL[:-1]


@pytest.mark.parametrize("cls", [SessiondbSession, AdvancedSessiondbSession])
async def test_every_session_method_takes_the_run_context_wrapper(db_path, cls):
    from agents.memory.session import _session_accepts_wrapper

    session = (
        cls("s", db_path) if cls is SessiondbSession else cls(session_id="s", db_path=db_path)
    )
    for name in ("get_items", "add_items", "pop_item", "clear_session"):
        wrapper = inspect.signature(getattr(session, name)).parameters["wrapper"]
        assert wrapper.kind is inspect.Parameter.KEYWORD_ONLY and wrapper.default is None
    assert _session_accepts_wrapper(session)
    context = SimpleNamespace(context=None)
    await session.add_items(ORIGINAL, wrapper=context)
    assert await session.get_items(wrapper=context) == ORIGINAL
    assert await session.pop_item(wrapper=context) == ORIGINAL[-1]
    await session.clear_session(wrapper=context)
    assert await session.get_items(wrapper=context) == []


@pytest.mark.parametrize("cls", [SessiondbSession, AdvancedSessiondbSession])
async def test_session_settings_limit_as_the_sdk_resolves_it(db_path, cls):
    def make(settings: Any) -> Any:
        if cls is SessiondbSession:
            return cls("s", db_path, settings)
        return cls(session_id="s", db_path=db_path, session_settings=settings)

    session = make({"limit": 2})
    await session.add_items(ORIGINAL)
    assert await session.get_items() == ORIGINAL[-2:]
    assert await session.get_items(limit=3) == ORIGINAL[-3:]  # an explicit limit wins
    assert await session.get_items(limit=0) == []
    assert await make(None).get_items() == ORIGINAL
    session.session_settings = {"limit": 1}  # a dict set later is coerced as upstream does
    assert await session.get_items() == ORIGINAL[-1:]


class _PausingStore:
    """A Store whose writes pause after they committed, until released."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.committed = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name not in ("add_openai_items", "pop_message", "pop_openai_item", "clear"):
            return attr

        def paused(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            self.committed.set()
            assert self.release.wait(10)
            return result

        return paused


@pytest.mark.parametrize("operation", ["add", "pop", "clear"])
async def test_cancelled_write_keeps_the_committed_write_and_raises_after_it(db_path, operation):
    item = {"role": "user", "content": "once"}
    store = Store(db_path)
    session = SessiondbSession("s", store=store, inline_writes=False)
    if operation != "add":
        await session.add_items([item])
    pausing = _PausingStore(store)
    session._store = pausing  # type: ignore[assignment]
    call = {
        "add": lambda: session.add_items([item]),
        "pop": session.pop_item,
        "clear": session.clear_session,
    }[operation]
    task = asyncio.ensure_future(call())
    assert await asyncio.to_thread(pausing.committed.wait, 10)
    task.cancel()
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.sleep(0)
    assert not task.done()  # still waiting for the write's outcome
    pausing.release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    expected = [item] if operation == "add" else []
    assert await SessiondbSession("s", store=store).get_items() == expected
