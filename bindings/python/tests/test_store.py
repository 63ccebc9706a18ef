"""sessiondb.Store: the core's operations in Python form."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import threading
import time

import pytest

import sessiondb


def contents(messages):
    return [(m["role"], m["content"]) for m in messages]


def test_message_dicts_have_the_history_json_shape(store):
    stored = store.add_message(
        "c",
        {
            "role": "assistant",
            "content": "4",
            "metadata": {"k": [1, 2]},
            "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            "model": "m",
            "input_tokens": 3,
            "output_tokens": 1,
        },
    )
    assert set(stored) == {
        "index", "role", "content", "metadata", "tool_calls", "model",
        "input_tokens", "output_tokens", "created_at",
    }
    assert stored["index"] == 0 and stored["metadata"] == {"k": [1, 2]}
    assert stored["created_at"].endswith("Z")
    assert store.chat_history("c") == [stored]


def test_history_json_of_the_cli_equals_chat_history(store, db_path):
    store.add_user_message("c", "hello")
    store.add_message("c", {"role": "tool", "content": "42", "tool_call_id": "t1"})
    cli = os.environ.get("SESSIONDB_CLI")
    if not cli:
        pytest.skip("SESSIONDB_CLI (the sessiondb binary) not set")
    out = subprocess.run(
        [cli, "--db", db_path, "history", "c", "--json"], check=True, capture_output=True, text=True
    ).stdout
    assert json.loads(out) == store.chat_history("c")


def test_add_messages_is_one_batch_and_keys_make_retries_idempotent(store):
    batch = [{"role": "user", "content": "a", "key": "k1"}, {"role": "assistant", "content": "b", "key": "k2"}]
    first = store.add_messages("c", batch)
    assert first["already_stored"] is False and [m["index"] for m in first["messages"]] == [0, 1]
    again = store.add_messages("c", batch)
    assert again["already_stored"] is True
    assert contents(store.chat_history("c")) == [("user", "a"), ("assistant", "b")]
    with pytest.raises(sessiondb.KeysPartlyStored) as err:
        store.add_messages("c", [batch[0], {"role": "user", "content": "new", "key": "k3"}])
    assert err.value.stored == ["k1"] and err.value.new == 1


def test_add_messages_with_keys_each_stores_exactly_the_new_messages_of_a_mixed_batch(store):
    first = store.add_messages("c", [{"role": "user", "content": "a", "key": "k1"}])
    mixed = [{"role": "user", "content": "ignored", "key": "k1"},
             {"role": "user", "content": "plain"},
             {"role": "assistant", "content": "b", "key": "k2"}]
    added = store.add_messages("c", mixed, keys="each", metadata={"turns": 2})
    assert added["written"] == [False, True, True] and added["already_stored"] is False
    assert [(m["index"], m["content"]) for m in added["messages"]] == [(0, "a"), (1, "plain"), (2, "b")]
    assert added["version"] == first["version"] + 1
    assert store.session("c")["metadata"] == {"turns": 2}
    assert contents(store.chat_history("c")) == [("user", "a"), ("user", "plain"), ("assistant", "b")]
    assert store.find_keys("c", ["k2", "nope", "k1"]) == {"version": added["version"], "indices": [2, None, 0]}
    # A keyed retry writes nothing, its metadata patch included.
    again = store.add_messages("c", [mixed[2], mixed[0]], keys="each", metadata={"turns": 9})
    assert (again["already_stored"], again["written"]) == (True, [False, False])
    assert store.session("c")["metadata"] == {"turns": 2}
    with pytest.raises(sessiondb.Conflict):
        store.add_messages("c", [{"role": "user", "content": "late", "key": "k3"}], keys="each",
                           expected_version=first["version"])
    with pytest.raises(sessiondb.InvalidInput, match='keys must be "batch" or "each", not "every"'):
        store.add_messages("c", mixed, keys="every")
    with pytest.raises(sessiondb.NotFound):
        store.find_keys("missing", ["k"])
    assert store.session("c")["version"] == added["version"]


def test_add_messages_with_new_session_creates_it_in_the_same_transaction(store):
    fields = {"agent_name": "bot", "user_id": "u1", "metadata": {"a": 1}}
    added = store.add_messages("n", [{"role": "user", "content": "hi"}], new_session=fields)
    session = store.session("n")
    assert (session["agent_name"], session["user_id"], session["metadata"]) == ("bot", "u1", {"a": 1})
    assert (session["version"], session["message_count"]) == (added["version"], 1)
    with pytest.raises(sessiondb.AlreadyExists):
        store.add_messages("n", [{"role": "user", "content": "again"}], new_session=fields)
    # A refused batch leaves no session; unknown fields are named.
    with pytest.raises(sessiondb.InvalidInput):
        store.add_messages("m", [{"role": "user", "content": "x", "cost": -1}], new_session=fields)
    with pytest.raises(sessiondb.InvalidInput, match="colour"):
        store.add_messages("m", [{"role": "user", "content": "x"}], new_session={"colour": "red"})
    assert not store.session_exists("m")
    assert store.session("n")["message_count"] == 1


def test_pop_message_returns_the_last_and_keeps_it_in_a_branch(store):
    store.add_user_message("c", "one")
    store.add_user_message("c", "two")
    popped = store.pop_message("c")
    assert popped["content"] == "two"
    assert contents(store.chat_history("c")) == [("user", "one")]
    superseded = [b for b in store.branches("c") if b["superseded_at"] is not None]
    assert [b["length"] for b in superseded] == [2]
    store.pop_message("c")
    assert store.pop_message("c") is None


def test_set_chat_history_keeps_the_common_prefix(store):
    for text in ["a", "b", "c"]:
        store.add_user_message("s", text)
    change = store.set_chat_history("s", [{"role": "user", "content": "a"}, {"role": "user", "content": "B"}])
    assert (change["kept"], change["written"], change["superseded"]) == (1, 1, True)
    assert contents(store.chat_history("s")) == [("user", "a"), ("user", "B")]


def test_expected_version_conflict_is_typed_and_writes_nothing(store):
    store.add_user_message("s", "a")
    messages, version, total = store.chat_history_versioned("s")
    store.add_user_message("s", "b")
    with pytest.raises(sessiondb.Conflict) as err:
        store.add_message("s", {"role": "user", "content": "c"}, expected_version=version)
    assert (err.value.session, err.value.expected) == ("s", version)
    assert err.value.actual == version + 1
    assert contents(store.chat_history("s")) == [("user", "a"), ("user", "b")]


def test_errors_are_typed_subclasses_of_error(store, tmp_path):
    with pytest.raises(sessiondb.NotFound) as nf:
        store.session("missing")
    assert (nf.value.kind, nf.value.id) == ("session", "missing")
    assert isinstance(nf.value, LookupError) and isinstance(nf.value, sessiondb.Error)
    with pytest.raises(sessiondb.InvalidInput):
        store.add_message("s", {"role": "wizard", "content": "x"})
    with pytest.raises(sessiondb.InvalidInput):
        store.add_message("s", {"content": "no role"})
    with pytest.raises(sessiondb.InvalidInput):
        store.add_user_message("", "empty id")
    with pytest.raises(sessiondb.InvalidInput):
        store.revert_to_message("s", -1)
    with pytest.raises(sessiondb.InvalidInput):
        sessiondb.Store(str(tmp_path / "x.db"), synchronous="sometimes")
    store.create_session("dup")
    with pytest.raises(sessiondb.AlreadyExists) as ae:
        store.create_session("dup")
    assert ae.value.id == "dup"
    not_db = tmp_path / "not.db"
    not_db.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(sessiondb.Error) as bad:
        sessiondb.Store(str(not_db))
    assert type(bad.value) in (sessiondb.NotSessionDb, sessiondb.Corrupt)
    ro = sessiondb.Store(store.path, read_only=True)
    with pytest.raises(sessiondb.ReadOnly):
        ro.add_user_message("s", "x")
    with pytest.raises(sessiondb.NotFound) as missing:
        sessiondb.Store(str(tmp_path / "absent.db"), create=False)
    assert missing.value.kind == "database"


def test_fork_branch_snapshot_revert(store):
    for text in ["a", "b", "c"]:
        store.add_user_message("s", text)
    fork = store.fork_session("s", 1, "alt")
    assert fork["parent_session"] == "s" and fork["title"] == "alt"
    assert contents(store.chat_history(fork["id"])) == [("user", "a"), ("user", "b")]
    assert [c["id"] for c in store.child_sessions("s")] == [fork["id"]]
    assert store.session_tree("s")["children"][0]["id"] == fork["id"]
    snap = store.create_snapshot("s", "before", {"why": "test"})
    store.revert_to_message("s", 0)
    assert contents(store.chat_history("s")) == [("user", "a")]
    store.restore_snapshot("s", snap["id"])
    assert contents(store.chat_history("s")) == [("user", "a"), ("user", "b"), ("user", "c")]
    store.create_branch("s", "side", 0)
    store.switch_branch("s", "side")
    assert contents(store.chat_history("s")) == [("user", "a")]
    assert [s["label"] for s in store.snapshots("s")] == ["before"]


def test_compaction_working_and_full_history(store):
    for text in ["a", "b", "c"]:
        store.add_user_message("s", text)
    store.compact("s", {"role": "system", "content": "summary"}, 1)
    assert contents(store.chat_history("s")) == [("system", "summary"), ("user", "c")]
    assert contents(store.full_history("s")) == [("user", "a"), ("user", "b"), ("user", "c")]
    assert [c["through_index"] for c in store.compactions("s")] == [1]


def test_streaming_keeps_partial_beside_history(store):
    store.add_user_message("s", "q")
    store.start_stream("s", "model-x")
    store.append_stream("s", "Hel")
    store.append_stream("s", "lo")
    history, partial = store.chat_history_with_partial("s")
    assert contents(history) == [("user", "q")] and partial["content"] == "Hello"
    done = store.finish_stream("s", output_tokens=2)
    assert (done["content"], done["model"], done["output_tokens"]) == ("Hello", "model-x", 2)
    assert store.partial_message("s") is None


def test_history_if_changed_and_session_with_history(store):
    store.add_user_message("s", "q")
    version = store.version("s")
    assert store.chat_history_if_changed("s", known_version=version) == (version, None, None)
    got, messages, partial = store.chat_history_if_changed("s", known_version=version - 1)
    assert (got, contents(messages), partial) == (version, [("user", "q")], None)
    store.start_stream("s")
    store.append_stream("s", "Hel")
    # Same version, but a reply is streaming: no messages, the partial.
    got, messages, partial = store.chat_history_if_changed("s", known_version=version)
    assert (got, messages, partial["content"]) == (version, None, "Hel")
    session, messages, partial = store.session_with_history("s")
    assert session == store.session("s")
    assert (contents(messages), partial["content"]) == ([("user", "q")], "Hel")
    with pytest.raises(sessiondb.NotFound):
        store.chat_history_if_changed("ghost", known_version=1)
    with pytest.raises(sessiondb.NotFound):
        store.session_with_history("ghost")


def test_search_recent_sessions_lists_current_matches_newest_first(store):
    store.add_user_message("a", "oslo rain")
    store.add_user_message("b", "oslo snow")
    store.add_user_message("a", "bergen")
    store.set_chat_history("b", [{"role": "user", "content": "nothing"}])
    assert store.search_recent_sessions("oslo") == ["a"]
    store.add_user_message("c", "oslo sun")
    assert store.search_recent_sessions("oslo", limit=5) == ["c", "a"]
    assert store.search_recent_sessions("oslo", limit=1) == ["c"]
    with pytest.raises(sessiondb.InvalidInput):
        store.search_recent_sessions('"unterminated')
    with pytest.raises(sessiondb.InvalidInput):
        store.search_recent_sessions("oslo", limit=-1)


def test_sessions_metadata_title_list_delete(store):
    store.create_session("a", title="A", agent_name="bot", user_id="u1", metadata={"x": 1})
    store.add_user_message("b", "hi")
    store.update_metadata("a", {"y": 2})
    store.set_title("b", "B")
    assert store.session("a")["metadata"] == {"x": 1, "y": 2}
    assert [s["id"] for s in store.list_sessions()] == ["b", "a"]
    assert [s["id"] for s in store.list_sessions(agent_name="bot")] == ["a"]
    assert [s["id"] for s in store.list_sessions(limit=1)] == ["b"]
    updated = store.update_session("a", title=None, user_id="u2", metadata={"x": None})
    assert (updated["title"], updated["user_id"], updated["metadata"]) == (None, "u2", {"y": 2})
    with pytest.raises(sessiondb.InvalidInput):
        store.update_session("a", colour="red")
    store.delete_session("a")
    assert store.session_exists("a") is False and store.session_exists("b") is True


def test_export_import_round_trip(store, tmp_path):
    store.add_user_message("s", "hello")
    doc = store.export(["s"])
    other = sessiondb.Store(str(tmp_path / "other.db"))
    report = other.import_export(doc)
    assert report["imported"] == 1
    assert contents(other.chat_history("s")) == [("user", "hello")]


def test_a_compacted_session_exported_and_imported_into_a_new_file_keeps_its_working_view(
    store, tmp_path
):
    for text in ["a", "b", "c", "d"]:
        store.add_user_message("s", text)
    summary = {"role": "system", "content": "summary of a-b", "input_tokens": 40, "output_tokens": 5}
    store.compact("s", summary, 1)
    store.add_user_message("s", "e")
    exported = tmp_path / "export.json"
    exported.write_text(json.dumps(store.export(["s"], all_branches=True)))
    other = sessiondb.Store(str(tmp_path / "other.db"))
    report = other.import_export(json.loads(exported.read_text()))
    assert (report["imported"], report["skipped"]) == (1, [])
    assert contents(other.chat_history("s")) == [
        ("system", "summary of a-b"), ("user", "c"), ("user", "d"), ("user", "e"),
    ]
    assert other.chat_history("s") == store.chat_history("s")
    assert other.full_history("s") == store.full_history("s")
    assert other.compactions("s") == store.compactions("s")


def test_threads_share_one_store_and_lose_nothing(store):
    def worker(n):
        for i in range(50):
            store.add_user_message("t", f"{n}-{i}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    texts = [m["content"] for m in store.chat_history("t")]
    assert sorted(texts) == sorted(f"{n}-{i}" for n in range(4) for i in range(50))
    for n in range(4):
        mine = [t for t in texts if t.startswith(f"{n}-")]
        assert mine == [f"{n}-{i}" for i in range(50)]


def test_calls_release_the_gil(store):
    """A thread blocked in the core (waiting for the write lock) lets Python run."""
    import sys

    store.add_user_message("g", "x")
    # Another process holds the write lock (POSIX locks do not conflict within one process).
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys, time\n"
         "c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\n"
         "c.execute('BEGIN IMMEDIATE'); print('held', flush=True); time.sleep(3)",
         store.path],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    slow = sessiondb.Store(store.path, busy_timeout=1.0)
    result = {}

    def blocked():
        try:
            slow.add_user_message("g", "y")
        except sessiondb.Busy as e:
            result["busy"] = e.timeout

    t = threading.Thread(target=blocked)
    started = time.monotonic()
    t.start()
    ticks = 0
    while t.is_alive() and time.monotonic() - started < 5:
        ticks += 1
        time.sleep(0.01)
    t.join()
    holder.wait(timeout=10)
    assert result["busy"] == pytest.approx(1.0)
    assert ticks >= 50  # the main thread ran while the other waited in the core
    assert [m["content"] for m in store.chat_history("g")] == ["x"]


def _child_append(store, n):
    for i in range(20):
        store.add_user_message("f", f"child{n}-{i}")


def test_store_works_in_forked_children(store):
    store.add_user_message("f", "parent")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_child_append, args=(store, n)) for n in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    stuck = [p for p in procs if p.exitcode is None]
    for p in stuck:
        p.kill()
        p.join(timeout=10)
    assert not stuck and [p.exitcode for p in procs] == [0, 0]
    store.add_user_message("f", "parent again")
    texts = [m["content"] for m in store.chat_history("f")]
    assert len(texts) == 42 and texts[0] == "parent" and texts[-1] == "parent again"
    assert sorted(texts[1:-1]) == sorted(f"child{n}-{i}" for n in range(2) for i in range(20))


def test_restore_replaces_the_contents_and_other_stores_read_it_whole(tmp_path):
    db, copy = str(tmp_path / "live.db"), str(tmp_path / "copy.db")
    writer, reader = sessiondb.Store(db), sessiondb.Store(db)
    writer.add_user_message("s", "kept")
    assert writer.backup(copy) > 0
    writer.add_user_message("s", "after the backup")
    writer.add_user_message("t", "gone")
    assert [m["content"] for m in reader.chat_history("s")] == ["kept", "after the backup"]
    assert writer.restore(copy) == {"sessions": 1, "branches": 1, "messages": 1, "snapshots": 0}
    # The reader's cached history is not served: it reads the restored one.
    assert [m["content"] for m in reader.chat_history("s")] == ["kept"]
    assert not reader.session_exists("t")
    with pytest.raises(sessiondb.InvalidInput):
        writer.restore(db)
    with pytest.raises(sessiondb.NotFound):
        writer.restore(str(tmp_path / "missing.db"))
