"""sessiondb.praisonai against praisonaiagents 1.7.17's stores: same API, same answers."""

from __future__ import annotations

import multiprocessing
import random

import pytest
from praisonaiagents.session import store as upstream_store
from praisonaiagents.session.hierarchy import HierarchicalSessionStore as UpstreamHierarchical
from praisonaiagents.session.protocols import (
    IncrementalSessionStoreProtocol,
    PortableSessionStoreProtocol,
    SessionStoreProtocol,
)
from praisonaiagents.session.store import DefaultSessionStore as UpstreamDefault

from sessiondb.praisonai import (
    DefaultSessionStore,
    ExtendedSessionData,
    HierarchicalSessionStore,
    SessionData,
    SessionSnapshot,
    install_as_default,
)

CALL = [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]


@pytest.fixture
def ours(tmp_path):
    return HierarchicalSessionStore(session_dir=str(tmp_path / "ours"))


def test_passes_praisonai_protocols(ours):
    for protocol in (SessionStoreProtocol, IncrementalSessionStoreProtocol, PortableSessionStoreProtocol):
        assert isinstance(ours, protocol)
        assert isinstance(DefaultSessionStore(session_dir=ours.session_dir), protocol)


def test_database_file_lives_in_session_dir(tmp_path):
    store = DefaultSessionStore(session_dir=str(tmp_path / "d"))
    store.add_user_message("s", "hi")
    assert (tmp_path / "d" / "sessions.db").exists()


def test_messages_tool_turns_and_windows(ours):
    assert ours.add_message("s", "system", "sys") is True
    ours.add_user_message("s", "q", metadata={"a": 1})
    ours.add_message("s", "assistant", "", tool_calls=CALL)
    ours.add_message("s", "tool", "42", tool_call_id="t1")
    ours.add_assistant_message("s", "done")
    assert ours.get_chat_history("s") == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "", "tool_calls": CALL},
        {"role": "tool", "content": "42", "tool_call_id": "t1"},
        {"role": "assistant", "content": "done"},
    ]
    # A window never starts on an orphaned tool result.
    assert ours.get_chat_history("s", 2) == [{"role": "assistant", "content": "done"}]
    session = ours.get_session("s")
    assert isinstance(session, SessionData) and session.messages[1].metadata == {"a": 1}
    assert session.messages[3].tool_call_id == "t1"


def test_partial_assistant_streaming(ours):
    ours.add_user_message("s", "q")
    ours.upsert_partial_assistant_message("s", "Hel")
    ours.upsert_partial_assistant_message("s", "Hello")
    assert ours.get_chat_history("s")[-1] == {"role": "assistant", "content": "Hello"}
    assert ours.get_session("s").messages[-1].metadata == {"partial": True}
    ours.upsert_partial_assistant_message("s", "Hello!", finalize=True)
    assert ours.get_chat_history("s") == [
        {"role": "user", "content": "q"}, {"role": "assistant", "content": "Hello!"}]
    ours.upsert_partial_assistant_message("s", "gone")
    assert ours.discard_partial_assistant_message("s") is True
    assert len(ours.get_chat_history("s")) == 2


def test_compaction_checkpoint_and_working_history(ours):
    for i in range(4):
        ours.add_user_message("s", f"m{i}")
    assert ours.append_compaction_checkpoint("s", "   ") is False
    assert ours.append_compaction_checkpoint("s", "summary", tokens_before=100, tokens_after=10) is True
    ours.add_user_message("s", "after")
    assert ours.get_working_history("s") == [
        {"role": "system", "content": "summary"}, {"role": "user", "content": "after"}]
    checkpoint = ours.get_session("s").last_compaction
    assert (checkpoint.summary, checkpoint.message_index) == ("summary", 4)
    assert len(ours.get_session("s").messages) == 5  # nothing was dropped


def test_session_fields_list_and_delete(ours):
    ours.add_user_message("a", "x")
    ours.set_agent_info("a", agent_name="bot", user_id="u")
    ours.update_session_metadata("a", model="gpt", skipped=None)
    ours.rename_session("a", " Title ")
    data = ours.get_session("a")
    assert (data.agent_name, data.user_id, data.metadata["model"]) == ("bot", "u", "gpt")
    assert data.metadata["title"] == "Title" and "skipped" not in data.metadata
    info = ours.store.session("a")
    assert (info["agent_name"], info["user_id"], info["title"]) == ("bot", "u", "Title")
    ours.update_session_metadata("a", agent_id="gw-1")
    assert ours.store.session("a")["agent_id"] == "gw-1" and ours.get_session("a").agent_id == "gw-1"
    listed = ours.list_sessions()
    assert [s["session_id"] for s in listed] == ["a"]
    assert (listed[0]["title"], listed[0]["message_count"], listed[0]["model"]) == ("Title", 1, "gpt")
    assert ours.session_exists("a") and ours.delete_session("a") and not ours.session_exists("a")
    assert ours.delete_session("a") is True
    ours.invalidate_cache()
    assert ours.get_chat_history("a") == []


def test_clear_and_set_history(ours):
    ours.add_user_message("s", "a")
    assert ours.set_chat_history("s", [{"role": "user", "content": "x"}, {"role": "assistant", "content": None}])
    assert ours.get_chat_history("s") == [{"role": "user", "content": "x"}, {"role": "assistant", "content": ""}]
    assert ours.clear_session("s") and ours.get_chat_history("s") == []
    assert ours.clear_session("new") and ours.session_exists("new")


def test_hierarchy_forks_snapshots_reverts(ours):
    for i in range(3):
        ours.add_user_message("p", f"m{i}")
    child = ours.fork_session("p", from_message_index=1, title="alt")
    assert ours.get_chat_history(child) == [{"role": "user", "content": "m0"}, {"role": "user", "content": "m1"}]
    assert ours.get_children("p") == [child] and ours.get_parent(child) == "p"
    empty_child = ours.create_session(title="empty", parent_id="p")
    assert ours.get_children("p") == [child, empty_child]
    tree = ours.get_session_tree("p")
    assert (tree["session_id"], tree["message_count"]) == ("p", 3)
    assert [(c["session_id"], c["title"], c["message_count"]) for c in tree["children"]] == [
        (child, "alt", 2), (empty_child, "empty", 0)]
    snap = ours.create_snapshot("p", label="three")
    ours.add_user_message("p", "m3")
    assert ours.revert_to_snapshot("p", snap) is True
    assert len(ours.get_chat_history("p")) == 3
    snaps = ours.get_snapshots("p")
    assert [(type(s), s.label, s.message_index) for s in snaps] == [(SessionSnapshot, "three", 2)]
    assert ours.revert_to_message("p", 0) is True
    assert ours.get_chat_history("p") == [{"role": "user", "content": "m0"}]
    assert ours.revert_to_message("p", 5) is False
    assert ours.revert_to_snapshot("p", "999") is False
    ext = ours.get_extended_session("p")
    assert isinstance(ext, ExtendedSessionData) and ext.children_ids == [child, empty_child]


def test_export_import(ours, tmp_path):
    ours.add_user_message("s", "hello")
    ours.add_message("s", "assistant", "", tool_calls=CALL)
    payload = DefaultSessionStore.export_session(ours, "s")
    assert [s["session_id"] for s in payload["sessions"]] == ["s"]
    other = DefaultSessionStore(session_dir=str(tmp_path / "other"))
    report = other.import_sessions(payload)
    assert (report.imported, report.skipped) == (1, [])
    assert other.get_chat_history("s") == ours.get_chat_history("s")
    again = other.import_sessions(payload)
    assert again.imported == 0 and len(again.skipped) == 1
    new_id = ours.import_session(ours.export_session("s"), new_session_id="copy")
    assert new_id == "copy" and ours.get_chat_history("copy") == ours.get_chat_history("s")
    assert [s["session_id"] for s in other.export_all()["sessions"]] == ["s"]


def test_install_as_default(tmp_path, monkeypatch):
    monkeypatch.setattr(upstream_store, "_default_store", None)
    installed = install_as_default(str(tmp_path / "x.db"))
    assert upstream_store.get_default_session_store() is installed
    from praisonaiagents.session import get_default_session_store
    assert get_default_session_store() is installed


@pytest.mark.parametrize("seed", range(5))
def test_same_operations_same_results_as_praisonai(tmp_path, seed):
    rng = random.Random(seed)
    ours = HierarchicalSessionStore(session_dir=str(tmp_path / "ours"))
    theirs = UpstreamHierarchical(session_dir=str(tmp_path / "theirs"))
    ids = ["a", "b"]
    for step in range(80):
        sid = rng.choice(ids)
        op = rng.choice(["user", "assistant", "tool_turn", "get", "get_n", "set", "clear",
                         "exists", "stream", "revert", "delete"])
        if op == "user":
            text = f"u{step}"
            assert ours.add_user_message(sid, text) == theirs.add_user_message(sid, text)
        elif op == "assistant":
            assert ours.add_assistant_message(sid, f"a{step}", {"n": step}) == theirs.add_assistant_message(sid, f"a{step}", {"n": step})
        elif op == "tool_turn":
            for store in (ours, theirs):
                store.add_message(sid, "assistant", "", tool_calls=CALL)
                store.add_message(sid, "tool", f"r{step}", tool_call_id="t1")
        elif op == "get":
            assert ours.get_chat_history(sid) == theirs.get_chat_history(sid)
        elif op == "get_n":
            n = rng.randint(1, 5)
            assert ours.get_chat_history(sid, n) == theirs.get_chat_history(sid, n)
        elif op == "set":
            history = theirs.get_chat_history(sid)[: rng.randint(0, 3)] + [{"role": "user", "content": f"s{step}"}]
            assert ours.set_chat_history(sid, history) == theirs.set_chat_history(sid, history)
        elif op == "clear":
            assert ours.clear_session(sid) == theirs.clear_session(sid)
        elif op == "exists":
            assert ours.session_exists(sid) == theirs.session_exists(sid)
        elif op == "stream":
            finalize = rng.random() < 0.5
            for store in (ours, theirs):
                store.upsert_partial_assistant_message(sid, "par")
                store.upsert_partial_assistant_message(sid, "partial")
                if finalize:
                    store.upsert_partial_assistant_message(sid, "partial!", finalize=True)
                else:
                    store.discard_partial_assistant_message(sid)
        elif op == "revert":
            index = rng.randint(-1, 6)
            assert ours.revert_to_message(sid, index) == theirs.revert_to_message(sid, index)
        else:
            assert ours.delete_session(sid) == theirs.delete_session(sid)
        assert len(theirs.get_session(sid).messages) < 100  # below upstream's window
    for sid in ids:
        assert ours.get_chat_history(sid) == theirs.get_chat_history(sid)
        assert [(m.role, m.content, m.metadata, m.tool_calls, m.tool_call_id) for m in ours.get_session(sid).messages] == [
            (m.role, m.content, m.metadata, m.tool_calls, m.tool_call_id) for m in theirs.get_session(sid).messages]


def _append(session_dir, hierarchical, worker, count):
    cls = HierarchicalSessionStore if hierarchical else DefaultSessionStore
    store = cls(session_dir=session_dir)
    for i in range(count):
        store.add_user_message("shared", f"w{worker}-{i}")


@pytest.mark.parametrize("hierarchical", [False, True])
def test_four_processes_append_to_one_session_nothing_lost(tmp_path, hierarchical):
    session_dir = str(tmp_path / "dir")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append, args=(session_dir, hierarchical, w, 50)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    # The active window holds the latest 100; the file keeps every message.
    texts = [m["content"] for m in DefaultSessionStore(session_dir=session_dir).store.full_history("shared")]
    assert len(texts) == 200
    for w in range(4):
        assert [t for t in texts if t.startswith(f"w{w}-")] == [f"w{w}-{i}" for i in range(50)]


def test_set_chat_history_keeps_the_timestamps_messages_carry(ours):
    ours.set_chat_history("t", [
        {"role": "user", "content": "hi", "timestamp": 1700000000.25},
        {"role": "assistant", "content": "hello", "timestamp": 1700000060.5},
    ])
    assert [(m.content, m.timestamp) for m in ours.get_session("t").messages] == [
        ("hi", 1700000000.25),
        ("hello", 1700000060.5),
    ]
    # Same messages with a new time for the second: it is rewritten with that time.
    ours.set_chat_history("t", [
        {"role": "user", "content": "hi", "timestamp": 1700000000.25},
        {"role": "assistant", "content": "hello", "timestamp": 1700000120.0},
    ])
    assert [m.timestamp for m in ours.get_session("t").messages] == [1700000000.25, 1700000120.0]


def test_chat_history_kept_between_calls_is_never_stale_nor_shared(tmp_path):
    reader = DefaultSessionStore(session_dir=str(tmp_path / "d"))
    writer = DefaultSessionStore(session_dir=str(tmp_path / "d"))  # another process's store
    writer.add_user_message("s", "q")
    writer.add_assistant_message("s", "a")
    first = reader.get_chat_history("s")
    assert first == [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    # What a caller does to its copy stays its own.
    first[0]["content"] = "changed"
    first.append({"role": "user", "content": "mine"})
    assert reader.get_chat_history("s") == [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    # The other store's writes show at once, windows included.
    writer.add_user_message("s", "q2")
    assert reader.get_chat_history("s", 2) == [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q2"}]
    assert [m["content"] for m in reader.get_chat_history("s")] == ["q", "a", "q2"]
    # A streaming reply changes no version, and still shows, grows and goes.
    writer.upsert_partial_assistant_message("s", "par")
    assert reader.get_chat_history("s")[-1] == {"role": "assistant", "content": "par"}
    writer.upsert_partial_assistant_message("s", "partial")
    assert reader.get_chat_history("s", 2) == [{"role": "user", "content": "q2"}, {"role": "assistant", "content": "partial"}]
    writer.discard_partial_assistant_message("s")
    assert [m["content"] for m in reader.get_chat_history("s")] == ["q", "a", "q2"]
    writer.set_chat_history("s", [{"role": "user", "content": "new"}])
    assert reader.get_chat_history("s") == [{"role": "user", "content": "new"}]
    writer.delete_session("s")
    assert reader.get_chat_history("s") == []
    reader.invalidate_cache()
    assert reader._llm_cache == {}
