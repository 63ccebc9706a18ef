"""sessiondb.praisonai against the whole public API of praisonaiagents 1.7.17: every public
name upstream's stores have, and the same answers to the same calls (seeded random
sequences on both, results compared)."""

from __future__ import annotations

import multiprocessing
import random

import pytest
from cryptography.fernet import Fernet
from praisonaiagents.session.encrypted_store import EncryptedSessionStore
from praisonaiagents.session.hierarchy import HierarchicalSessionStore as UpstreamHierarchical
from praisonaiagents.session.protocols import (
    CheckpointQueryProtocol,
    RuntimeStateMirroringProtocol,
    SearchableSessionStoreProtocol,
    SessionMirrorProtocol,
)
from praisonaiagents.session.sqlite_store import SqliteSessionStore as UpstreamSqlite
from praisonaiagents.session.sqlite_transcript_store import SqliteTranscriptStore as UpstreamTranscript
from praisonaiagents.session.store import DefaultSessionStore as UpstreamDefault

from sessiondb.praisonai import (
    DefaultSessionStore,
    HierarchicalSessionStore,
    SessiondbMirror,
    SqliteSessionStore,
    SqliteTranscriptStore,
)

CALL = [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]

# Public names of upstream's classes that ours leave out on purpose.
DELIBERATE_OMISSIONS: dict = {
    # None: every public method and constant upstream's four stores have, ours have.
}


def public(cls) -> set:
    return {n for n in dir(cls) if not n.startswith("_")}


@pytest.mark.parametrize(
    "theirs, ours",
    [
        (UpstreamDefault, DefaultSessionStore),
        (UpstreamHierarchical, HierarchicalSessionStore),
        (UpstreamTranscript, SqliteTranscriptStore),
        (UpstreamSqlite, SqliteSessionStore),
    ],
)
def test_every_public_name_of_upstream_is_ours(theirs, ours):
    missing = public(theirs) - public(ours) - set(DELIBERATE_OMISSIONS.get(theirs.__name__, ()))
    assert not missing, f"{ours.__name__} lacks {sorted(missing)}"


def test_every_upstream_instance_attribute_is_ours(tmp_path):
    theirs = UpstreamTranscript(session_dir=str(tmp_path / "t"))
    ours = SqliteTranscriptStore(session_dir=str(tmp_path / "o"))
    wanted = {"session_dir", "max_messages", "lock_timeout", "retention", "active_window", "db_path"}
    assert wanted <= set(vars(theirs))
    for name in wanted:
        assert hasattr(ours, name), name
    assert (ours.retention, ours.active_window, ours.max_messages) == (
        theirs.retention, theirs.active_window, theirs.max_messages)


def test_protocols(tmp_path):
    ours = HierarchicalSessionStore(session_dir=str(tmp_path))
    for protocol in (SearchableSessionStoreProtocol, RuntimeStateMirroringProtocol, CheckpointQueryProtocol):
        assert isinstance(ours, protocol), protocol
    assert isinstance(SessiondbMirror(str(tmp_path / "m.db")), SessionMirrorProtocol)


def pair(tmp_path, **kwargs):
    return (
        HierarchicalSessionStore(session_dir=str(tmp_path / "ours"), **kwargs),
        UpstreamHierarchical(session_dir=str(tmp_path / "theirs"), **kwargs),
    )


def shape(data):
    """What a SessionData says, minus times (each store stamps its own)."""
    def msgs(ms):
        return [(m.role, m.content, m.metadata, m.tool_calls, m.tool_call_id) for m in ms]
    lc = data.last_compaction
    return {
        "messages": msgs(data.messages),
        "archived": msgs(data.archived_messages),
        "checkpoint": None if lc is None else (lc.summary, lc.message_index, lc.role),
        "agent": (data.agent_name, data.user_id, data.agent_id, data.gateway_session_id),
        "runtime": data.runtime_state,
        "metadata": data.metadata,
    }


def without_summary_text(history):
    """Both summaries start "[Session Summary]"; upstream's text then grows by a block per
    message rolled out (docs/praisonai.md), ours stays one gist."""
    return [
        {**m, "content": "<summary>"} if str(m.get("content", "")).startswith("[Session Summary]") else m
        for m in history
    ]


def same_session(ours, theirs, sid):
    a, b = shape(ours.get_session(sid)), shape(theirs.get_session(sid))
    for d in (a, b):
        d["messages"] = [
            (r, "<summary>", {"compaction": True, "compacted_count": m["compacted_count"]}, t, i)
            if m.get("compaction") else (r, c, m, t, i)
            for r, c, m, t, i in d["messages"]
        ]
    assert a == b


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("retention, window", [("compact", 5), ("truncate", 4), ("keep_all", 3)])
def test_retention_windows_match_upstream(tmp_path, seed, retention, window):
    rng = random.Random(seed)
    ours, theirs = pair(tmp_path, retention=retention, active_window=window)
    for step in range(60):
        op = rng.random()
        if op < 0.55:
            for s in (ours, theirs):
                s.add_user_message("s", f"u{step} about file{step}.py")
        elif op < 0.75:
            results = rng.randint(1, 3)
            for s in (ours, theirs):
                s.add_message("s", "assistant", "", tool_calls=CALL)
                for k in range(results):
                    s.add_message("s", "tool", f"r{step}.{k} wrote out{k}.txt", {"name": f"tool{k}"}, tool_call_id="t1")
        elif op < 0.85:
            for s in (ours, theirs):
                s.append_compaction_checkpoint("s", f"cp{step}", tokens_before=9)
        elif op < 0.92:
            n = rng.randint(1, 8)
            assert without_summary_text(ours.get_working_history("s", n)) == without_summary_text(
                theirs.get_working_history("s", n))
        else:
            n = rng.choice([None, 2, 7])
            assert without_summary_text(ours.get_chat_history("s", n)) == without_summary_text(
                theirs.get_chat_history("s", n))
        assert without_summary_text(ours.get_chat_history("s")) == without_summary_text(theirs.get_chat_history("s"))
    same_session(ours, theirs, "s")
    assert [s["message_count"] for s in ours.list_sessions()] == [s["message_count"] for s in theirs.list_sessions()]
    # sessiondb keeps every message whatever the policy.
    assert len(ours.store.full_history("s")) >= len(theirs.get_session("s").messages)


def test_default_retention_rule_is_upstreams(tmp_path):
    for kwargs in ({}, {"max_messages": 10}, {"max_messages": 10, "retention": "keep_all"}, {"active_window": 3}):
        ours = DefaultSessionStore(session_dir=str(tmp_path / "o"), **kwargs)
        theirs = UpstreamDefault(session_dir=str(tmp_path / "t"), **kwargs)
        assert (ours.retention, ours.active_window) == (theirs.retention, theirs.active_window)
    with pytest.raises(ValueError):
        DefaultSessionStore(session_dir=str(tmp_path), retention="lossy")


def test_compact_summary_stays_one_gist_however_long(tmp_path):
    ours = DefaultSessionStore(session_dir=str(tmp_path), active_window=10)
    for i in range(500):
        ours.add_user_message("s", f"m{i}")
    history = ours.get_chat_history("s")
    assert len(history) == 11 and [m["content"] for m in history[1:]] == [f"m{i}" for i in range(490, 500)]
    assert history[0]["content"].startswith("[Session Summary]\nPrevious conversation: 490 messages")
    assert len(history[0]["content"]) < 200
    assert len(ours.get_session("s").archived_messages) == 490
    assert len(ours.store.full_history("s")) == 500
    # The boundary is recorded in batches: reading never scans more than two windows.
    assert len(ours.store.chat_history("s")) <= 2 * 10 + 1


@pytest.mark.parametrize("seed", range(4))
def test_recall_search_window_recent_match_upstream(tmp_path, seed):
    rng = random.Random(seed)
    words = ["billing", "migration", "refund", "invoice", "deploy", "kernel"]
    ours = DefaultSessionStore(session_dir=str(tmp_path / "o"), retention="keep_all")
    theirs = UpstreamSqlite(session_dir=str(tmp_path / "t"), retention="keep_all")
    for n in range(12):
        sid = f"s{n}"
        for s in (ours, theirs):
            if n % 3 == 0:
                s.set_agent_info(sid, agent_name=f"agent{n % 2}")
        for k in range(rng.randint(1, 6)):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 4)))
            role = rng.choice(["user", "assistant"])
            for s in (ours, theirs):
                s.add_message(sid, role, f"{text} {k}")
    for query in ["billing", "refund invoice", "kernel deploy", "nothing", "Billing migration"]:
        for limit, window in ((5, 5), (3, 1)):
            a = ours.search(query, limit=limit, window=window)
            b = theirs.search(query, limit=limit, window=window)
            key = lambda h: (h.session_id, h.title, h.snippet, h.score, h.anchor_index,
                             [(m["index"], m["role"], m["content"]) for m in h.messages],
                             {k: [(m["index"], m["content"]) for m in v] for k, v in h.bookends.items()})
            # Equal scores are ordered by update time, which each store stamps itself.
            assert sorted(map(key, a)) == sorted(map(key, b)) or [h.score for h in a] == [h.score for h in b]
            assert [h.score for h in a] == [h.score for h in b]
    for sid, around in (("s1", None), ("s2", "1"), ("s3", "x"), ("s4", "99")):
        strip = lambda ws: [(w["index"], w["role"], w["content"], w["archived"]) for w in ws]
        assert strip(ours.window(sid, around, window=2)) == strip(theirs.window(sid, around, window=2))
    assert sorted((r.session_id, r.title, r.message_count) for r in ours.recent(limit=20)) == sorted(
        (r.session_id, r.title, r.message_count) for r in theirs.recent(limit=20))
    assert ours.search("  ") == theirs.search("  ") == []


def test_search_finds_messages_rolled_out_of_the_window(tmp_path):
    ours = DefaultSessionStore(session_dir=str(tmp_path), active_window=3)
    ours.add_user_message("s", "the zebra password is kept")
    for i in range(10):
        ours.add_user_message("s", f"filler {i}")
    [hit] = ours.search("zebra")
    assert hit.messages[hit.anchor_index - hit.messages[0]["index"]]["archived"] is True


def test_runtime_state_gateway_agents_sharing_and_getters_match_upstream(tmp_path):
    ours, theirs = pair(tmp_path)
    for s in (ours, theirs):
        s.add_user_message("a", "hi", {"model": "m-msg", "reasoning_effort": "low"})
        s.set_agent_info("a", agent_name="bot", user_id="u")
        s.set_agent_info("b", agent_name="bot")
        s.add_user_message("b", "yo")
        s.set_runtime_state("a", "native", "t1", {"calls": ["x"], "n": None})
        s.set_runtime_state("a", "native", "t2", {"calls": []})
        s.set_runtime_state("a", "plugin", "t1", {"k": 1})
        s.set_runtime_state("a", "skip", "t1", {"k": 1}, mirror_enabled=False)
        s.set_gateway_info("a", gateway_session_id="gw-1", agent_id="ag-1")
        s.set_gateway_info("b", agent_id="ag-1")
        s.merge_session_metadata_map("a", "tools", {"x": 1}, defaults={"x": 0, "y": 0})
        s.merge_session_metadata_map("a", "tools", {"y": 2}, defaults={"x": 5, "z": 5})
        s.share_session("a")
    for s in (ours, theirs):
        state = s.get_runtime_state("a", "native")
        state["t1"]["calls"].append("mutated")  # a copy: the store keeps its own
    for args in (("a", "native"), ("a", "native", "t1"), ("a", "plugin", "t9"), ("a", "skip"), ("zz", "native")):
        assert ours.get_runtime_state(*args) == theirs.get_runtime_state(*args)
    assert ours.get_session_model("a") == theirs.get_session_model("a") == "m-msg"
    assert ours.get_session_reasoning_effort("a") == theirs.get_session_reasoning_effort("a") == "low"
    for s in (ours, theirs):
        s.update_session_metadata("a", model="m-session", reasoning_effort="high")
    assert ours.get_session_model("a") == theirs.get_session_model("a") == "m-session"
    assert ours.get_session_reasoning_effort("a") == theirs.get_session_reasoning_effort("a") == "high"
    assert ours.get_session_model("none") is theirs.get_session_model("none") is None
    assert ours.get_by_gateway_session("gw-1").session_id == theirs.get_by_gateway_session("gw-1").session_id == "a"
    assert ours.get_by_gateway_session("gw-x") is theirs.get_by_gateway_session("gw-x") is None
    assert sorted(ours.list_sessions_by_gateway_agent("ag-1")) == sorted(theirs.list_sessions_by_gateway_agent("ag-1"))
    assert sorted(ours.list_sessions_by_agent("bot")) == sorted(theirs.list_sessions_by_agent("bot")) == ["a", "b"]
    assert sorted(s.session_id for s in ours.get_sessions_by_agent("bot")) == ["a", "b"]
    assert sorted(map(str, ours.get_agent_chat_history("bot"))) == sorted(map(str, theirs.get_agent_chat_history("bot")))
    assert ours.is_shared("a") and theirs.is_shared("a") and not ours.is_shared("b")
    for s in (ours, theirs):
        s.unshare_session("a")
        s.clear_runtime_state("a", "native")
    assert not ours.is_shared("a") and not theirs.is_shared("a")
    assert ours.get_runtime_state("a", "native") == theirs.get_runtime_state("a", "native") == {}
    assert ours.get_runtime_state("a", "plugin") == theirs.get_runtime_state("a", "plugin") == {"t1": {"k": 1}}
    same_session(ours, theirs, "a")
    for s in (ours, theirs):
        s.clear_runtime_state("a")
    assert ours.get_session("a").runtime_state == theirs.get_session("a").runtime_state == {}


def test_rename_to_empty_restores_the_derived_title(tmp_path):
    ours = DefaultSessionStore(session_dir=str(tmp_path / "o"))
    theirs = UpstreamDefault(session_dir=str(tmp_path / "t"))
    for s in (ours, theirs):
        s.add_user_message("s", "how do   refunds work")
        s.rename_session("s", "Refunds")
    assert ours.search("refunds")[0].title == theirs.search("refunds")[0].title == "Refunds"
    assert ours.list_sessions()[0]["title"] == theirs.list_sessions()[0]["title"] == "Refunds"
    for s in (ours, theirs):
        s.rename_session("s", "   ")
    assert ours.search("refunds")[0].title == theirs.search("refunds")[0].title == "how do refunds work"
    assert ours.list_sessions()[0]["title"] is theirs.list_sessions()[0]["title"] is None
    assert "title" not in ours.get_session("s").metadata


def test_checkpoints_are_snapshots(tmp_path):
    ours = HierarchicalSessionStore(session_dir=str(tmp_path))
    ours.add_user_message("s", "one")
    first = ours.create_snapshot("s", label="one", metadata={"why": "test"})
    ours.add_assistant_message("s", "two")
    [cp] = ours.list_checkpoints("s")
    assert (cp["id"], cp["label"], cp["message_index"], cp["metadata"]) == (first, "one", 0, {"why": "test"})
    got = ours.get_checkpoint("s", first)
    assert got["messages"] == [{"role": "user", "content": "one"}]
    assert ours.get_checkpoint("s", "999") is None and ours.get_checkpoint("s", "x") is None
    assert ours.list_checkpoints("none") == []


def test_constructors_take_store_and_sqlite_drop_ins_take_db_path(tmp_path):
    shared = DefaultSessionStore(path=str(tmp_path / "one.db"))
    other = HierarchicalSessionStore(store=shared.store)
    shared.add_user_message("s", "hi")
    assert other.get_chat_history("s") == [{"role": "user", "content": "hi"}]
    transcript = SqliteTranscriptStore(db_path=str(tmp_path / "one.db"))
    assert transcript.db_path == str(tmp_path / "one.db")
    assert transcript.get_chat_history("s") == [{"role": "user", "content": "hi"}]
    indexed = SqliteSessionStore(session_dir=str(tmp_path / "dir"))
    assert indexed.db_path == str(tmp_path / "dir" / "sessions.db")
    memory = SqliteTranscriptStore(db_path=":memory:")
    memory.add_user_message("m", "x")
    assert memory.get_chat_history("m") == [{"role": "user", "content": "x"}] and memory.db_path == ":memory:"


@pytest.mark.parametrize("ours_cls, theirs_cls", [(SqliteTranscriptStore, UpstreamTranscript),
                                                  (SqliteSessionStore, UpstreamSqlite)])
@pytest.mark.parametrize("seed", range(3))
def test_sqlite_drop_ins_answer_as_upstreams(tmp_path, ours_cls, theirs_cls, seed):
    rng = random.Random(seed)
    ours = ours_cls(session_dir=str(tmp_path / "o"), db_path=str(tmp_path / "o.db"), active_window=6)
    theirs = theirs_cls(session_dir=str(tmp_path / "t"), db_path=str(tmp_path / "t.db"), active_window=6)
    for step in range(50):
        sid = rng.choice(["a", "b"])
        op = rng.choice(["add", "add", "tool", "stream", "clear", "set", "delete", "meta"])
        for s in (ours, theirs):
            if op == "add":
                s.add_user_message(sid, f"alpha u{step}")
            elif op == "tool":
                s.add_message(sid, "assistant", "", tool_calls=CALL)
                s.add_message(sid, "tool", f"r{step}", tool_call_id="t1")
            elif op == "stream":
                s.upsert_partial_assistant_message(sid, "be")
                s.upsert_partial_assistant_message(sid, "beta", finalize=True)
            elif op == "clear":
                s.clear_session(sid)
            elif op == "set":
                s.set_chat_history(sid, [{"role": "user", "content": f"alpha s{step}"}])
            elif op == "delete":
                s.delete_session(sid)
            else:
                s.update_session_metadata(sid, model="m", cost=0.5)
        assert without_summary_text(ours.get_chat_history(sid)) == without_summary_text(theirs.get_chat_history(sid))
        assert ours.session_exists(sid) == theirs.session_exists(sid)
    assert sorted(h.session_id for h in ours.search("alpha")) == sorted(h.session_id for h in theirs.search("alpha"))


def test_encrypted_store_wraps_ours_streamed_partials_included(tmp_path):
    key = Fernet.generate_key().decode()
    ours = DefaultSessionStore(session_dir=str(tmp_path))
    enc = EncryptedSessionStore(ours, key)
    enc.add_user_message("s", "card 4111", {"pii": True})
    enc.add_message("s", "assistant", "", tool_calls=CALL)
    enc.add_message("s", "tool", "42", tool_call_id="t1")
    enc.upsert_partial_assistant_message("s", "Hel")
    enc.upsert_partial_assistant_message("s", "Hello")
    assert enc.get_chat_history("s")[-1] == {"role": "assistant", "content": "Hello"}
    enc.upsert_partial_assistant_message("s", "Hello!", finalize=True)
    assert enc.get_chat_history("s") == [
        {"role": "user", "content": "card 4111"},
        {"role": "assistant", "content": "", "tool_calls": CALL},
        {"role": "tool", "content": "42", "tool_call_id": "t1"},
        {"role": "assistant", "content": "Hello!"},
    ]
    assert enc.get_session("s").messages[0].metadata == {"pii": True}
    # At rest: ciphertext only.
    stored = ours.store.full_history("s")
    assert all("4111" not in str(m) and "Hello" not in str(m) for m in stored)
    enc.upsert_partial_assistant_message("s", "gone")
    enc.discard_partial_assistant_message("s")
    assert len(enc.get_chat_history("s")) == 4


def test_mirror_both_ways(tmp_path):
    # Upstream's JSON store mirrors into a sessiondb file...
    sink = SessiondbMirror(str(tmp_path / "mirror.db"))
    theirs = UpstreamDefault(session_dir=str(tmp_path / "t"), mirror=sink)
    theirs.add_user_message("s", "hi", {"k": 1})
    theirs.add_message("s", "assistant", "", tool_calls=CALL)
    theirs.set_chat_history("s", [m.to_dict() for m in theirs.get_session("s").messages])  # re-mirrors all
    assert theirs.flush_mirror(timeout=10)
    theirs.close_mirror()
    records = sink.load("s")
    assert [(r["role"], r["content"], r["metadata"]) for r in records] == [
        ("user", "hi", {"k": 1}), ("assistant", "", {})]
    assert records[1]["tool_calls"] == CALL and all(r["session_id"] == "s" for r in records)
    # ...idempotently per record id, in any mix of new and known records.
    sink.append("s", records + [{"id": "new", "role": "user", "content": "x", "timestamp": 1.0}])
    assert [r["id"] for r in sink.load("s")] == [r["id"] for r in records] + ["new"]
    assert sink.list_sessions() [0]["session_id"] == "s" and sink.load("none") == []
    # ...and ours accepts mirror= as upstream does.
    other = SessiondbMirror(str(tmp_path / "other.db"))
    ours = DefaultSessionStore(session_dir=str(tmp_path / "o"), mirror=other)
    ours.add_user_message("s", "one")
    ours.upsert_partial_assistant_message("s", "tw")
    ours.upsert_partial_assistant_message("s", "two", finalize=True)
    assert ours.flush_mirror(timeout=10)
    ours.close()
    assert [(r["role"], r["content"]) for r in other.load("s")] == [("user", "one"), ("assistant", "two")]


ADAPTERS = {
    "DefaultSessionStore": lambda path: DefaultSessionStore(path=path, active_window=20),
    "HierarchicalSessionStore": lambda path: HierarchicalSessionStore(path=path, active_window=20),
    "SqliteTranscriptStore": lambda path: SqliteTranscriptStore(db_path=path, active_window=20),
    "SqliteSessionStore": lambda path: SqliteSessionStore(db_path=path, active_window=20),
}


def _worker(adapter, path, worker, count):
    store = ADAPTERS[adapter](path)
    for i in range(count):
        store.add_user_message("shared", f"w{worker}-{i} needle{worker}")
        store.add_user_message(f"own-{worker}", f"m{i}")
        store.set_runtime_state("shared", "native", f"w{worker}-t{i}", {"i": i})
        store.merge_session_metadata_map("shared", "tools", {f"w{worker}-{i}": i}, defaults={"d": worker})
        if i % 10 == 0:
            store.set_chat_history(f"own-{worker}", store.get_chat_history(f"own-{worker}") + [
                {"role": "assistant", "content": f"r{i}"}])
        assert store.search(f"needle{worker}", limit=1)[0].session_id == "shared"


@pytest.mark.parametrize("adapter", list(ADAPTERS))
def test_eight_processes_nothing_lost(tmp_path, adapter):
    path = str(tmp_path / "sessions.db")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(adapter, path, w, 30)) for w in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * 8
    store = ADAPTERS[adapter](path)
    texts = [m["content"] for m in store.store.full_history("shared")]
    assert len(texts) == 240
    for w in range(8):
        assert [t for t in texts if t.startswith(f"w{w}-")] == [f"w{w}-{i} needle{w}" for i in range(30)]
        assert store.get_runtime_state("shared", "native", f"w{w}-t29") == {"i": 29}
        assert [h.session_id for h in store.search(f"needle{w}")] == ["shared"]
        own = [m["content"] for m in store.store.full_history(f"own-{w}")]
        assert [t for t in own if t.startswith("m")][-1] == "m29"
    assert len(store.get_runtime_state("shared", "native")) == 240
    # Every process merged its keys into one map: none is lost, the first default stays.
    tools = store.store.session("shared")["metadata"]["tools"]
    assert {k: v for k, v in tools.items() if k != "d"} == {f"w{w}-{i}": i for w in range(8) for i in range(30)}
    assert tools["d"] in range(8)
    assert len(store.get_chat_history("shared")) == 21


def test_sqlite_drop_ins_import_the_json_sessions_beside_them_on_first_open(tmp_path):
    # A JSON store's sessions (upstream's DefaultSessionStore, or SqliteSessionStore's
    # transcripts) are there when a drop-in first opens its database beside them, as
    # upstream's SqliteTranscriptStore imports them.
    legacy = UpstreamDefault(session_dir=str(tmp_path))
    legacy.add_user_message("old", "legacy transcript")
    legacy.add_message("old", "assistant", "", tool_calls=CALL)
    for cls in (SqliteTranscriptStore, SqliteSessionStore):
        store = cls(session_dir=str(tmp_path), db_path=str(tmp_path / f"{cls.__name__}.db"))
        assert store.get_chat_history("old") == legacy.get_chat_history("old")
        assert [h.session_id for h in store.search("legacy")] == ["old"]
    # Once: a database that holds sessions imports nothing more.
    legacy.add_user_message("later", "after the switch")
    again = SqliteSessionStore(session_dir=str(tmp_path), db_path=str(tmp_path / "SqliteSessionStore.db"))
    assert not again.session_exists("later")


def test_an_unusable_session_dir_is_an_oserror_and_starts_no_mirror_thread(tmp_path):
    import threading

    (tmp_path / "afile").write_text("x")
    mirror = SessiondbMirror(str(tmp_path / "m.db"))
    before = threading.active_count()
    with pytest.raises(OSError):
        DefaultSessionStore(session_dir=str(tmp_path / "afile" / "sessions"), mirror=mirror)
    assert threading.active_count() == before


def test_search_scores_the_sessions_holding_the_whole_query_among_many_matches(tmp_path):
    # Hundreds of sessions match one word; the few with a message holding the whole query
    # (as a phrase, or all its words) are the ones scored and returned, as a scan finds them.
    ours = DefaultSessionStore(session_dir=str(tmp_path / "o"), retention="keep_all")
    theirs = UpstreamDefault(session_dir=str(tmp_path / "t"), retention="keep_all")
    sessions = [(f"n{i}", ["refund request"]) for i in range(300)]
    sessions[40] = ("phrase", ["the refund kernel broke"])
    sessions[120] = ("both", ["kernel panic", "kernel panic, refund please"])
    sessions += [(f"k{i}", ["kernel update"]) for i in range(300)]
    for s in (ours, theirs):
        for sid, texts in sessions:
            for text in texts:
                s.add_user_message(sid, text)
    for query, limit in (("refund kernel", 2), ("kernel refund", 2), ("refund kernel", 1)):
        a, b = ours.search(query, limit=limit), theirs.search(query, limit=limit)
        assert [(h.session_id, h.score, h.anchor_index) for h in a] == [
            (h.session_id, h.score, h.anchor_index) for h in b]


class _Failing:
    """A store whose history writes fail: a process killed between two writes."""

    def __init__(self, store):
        self._inner = store

    def __getattr__(self, name):
        if name in ("set_chat_history", "clear"):
            raise RuntimeError(f"killed before {name}")
        return getattr(self._inner, name)


def test_a_history_replaced_or_cleared_half_way_never_reads_under_the_old_summary(tmp_path):
    ours = DefaultSessionStore(path=str(tmp_path / "s.db"))
    for i in range(6):
        ours.add_user_message("s", f"m{i}")
    ours.append_compaction_checkpoint("s", "summary of m0..m5")
    assert [m["content"] for m in ours.get_working_history("s")] == ["summary of m0..m5"]
    inner = ours._store
    ours._store = _Failing(inner)
    for call in (lambda: ours.set_chat_history("s", [{"role": "user", "content": "new"}]),
                 lambda: ours.clear_session("s")):
        with pytest.raises(RuntimeError):
            call()
        # The old history, whole: no summary of a history that is no longer there.
        ours._store = inner
        ours.invalidate_cache()
        assert [m["content"] for m in ours.get_working_history("s")] == [f"m{i}" for i in range(6)]
        ours.append_compaction_checkpoint("s", "summary of m0..m5")
        ours._store = _Failing(inner)
    ours._store = inner
