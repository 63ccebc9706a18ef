"""sessiondb.langgraph.SessiondbSaver against LangGraph's own conformance suite and real
graphs (docs/design.md, "LangGraph checkpoints")."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def require(module: str) -> ModuleType:
    """``module``, pinned in run-tests.sh: missing, the tests skip (and fail under CI)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(
            f"{module} is not installed: run bindings/python/run-tests.sh",
            allow_module_level=True,
        )


require("langgraph.checkpoint.conformance")

from langgraph.checkpoint.conformance import checkpointer_test, validate  # noqa: E402
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES  # noqa: E402

import sessiondb  # noqa: E402
from sessiondb.langgraph import SessiondbSaver  # noqa: E402


async def run_conformance(target: str) -> None:
    @checkpointer_test(name="SessiondbSaver")
    async def factory():
        yield SessiondbSaver(sessiondb.Store(target))

    report = await validate(factory)
    failures = {
        name: result.failures for name, result in report.results.items() if not result.passed
    }
    assert failures == {}
    assert {name for name, r in report.results.items() if r.detected} == {
        c.value for c in ALL_CAPABILITIES
    }
    assert all(r.tests_failed == 0 and r.tests_passed > 0 for r in report.results.values())


async def test_conformance_suite_passes_every_capability(db_path: str) -> None:
    await run_conformance(db_path)


# -- a real graph: a tool loop and an interrupt, no model calls

import json  # noqa: E402
import multiprocessing  # noqa: E402
import operator  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
from typing import Annotated, TypedDict  # noqa: E402

from langgraph.channels import DeltaChannel  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402
from langgraph.types import Command, interrupt  # noqa: E402


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    calls: int
    answer: str


def agent(state: State) -> State:
    return {"log": [f"agent {state.get('calls', 0)}"]}


def route(state: State) -> str:
    return "tool" if state.get("calls", 0) < 3 else "review"


def tool(state: State) -> State:
    calls = state.get("calls", 0) + 1
    return {"calls": calls, "log": [f"tool {calls}"]}


def review(state: State) -> State:
    answer = interrupt({"question": "approve?", "calls": state["calls"]})
    return {"answer": answer, "log": [f"review {answer}"]}


def build(saver: SessiondbSaver):
    graph = StateGraph(State)
    graph.add_node("agent", agent)
    graph.add_node("tool", tool)
    graph.add_node("review", review)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", route, ["tool", "review"])
    graph.add_edge("tool", "agent")
    graph.add_edge("review", END)
    return graph.compile(checkpointer=saver)


def thread(tid: str) -> dict:
    return {"configurable": {"thread_id": tid}}


LOOP = ["agent 0", "tool 1", "agent 1", "tool 2", "agent 2", "tool 3", "agent 3"]


def resume_in_child(target: str, tid: str, answer: str, out) -> None:
    graph = build(SessiondbSaver(sessiondb.Store(target)))
    out.put(graph.invoke(Command(resume=answer), thread(tid)))


def resume_elsewhere(target: str, tid: str, answer: str) -> dict:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=resume_in_child, args=(target, tid, answer, out))
    child.start()
    result = out.get(timeout=60)
    child.join(60)
    assert child.exitcode == 0
    return result


def cli(*args: str) -> str:
    binary = os.environ.get("SESSIONDB_CLI")
    if not binary:
        if os.environ.get("CI") == "true":
            pytest.fail("SESSIONDB_CLI (the sessiondb binary) not set under CI")
        pytest.skip("SESSIONDB_CLI (the sessiondb binary) not set")
    done = subprocess.run([binary, *args], capture_output=True, text=True, check=True)
    return done.stdout


def test_a_graph_resumes_in_another_process_time_travels_and_forks(db_path: str) -> None:
    saver = SessiondbSaver(sessiondb.Store(db_path))
    graph = build(saver)
    graph.invoke({"log": [], "calls": 0}, thread("t"))
    paused = graph.get_state(thread("t"))
    assert paused.next == ("review",)
    assert paused.values["log"] == LOOP
    assert [i.value for i in paused.interrupts] == [{"question": "approve?", "calls": 3}]

    # Another process resumes the interrupted run from the file.
    assert resume_elsewhere(db_path, "t", "yes") == {
        "log": [*LOOP, "review yes"],
        "calls": 3,
        "answer": "yes",
    }
    done = graph.get_state(thread("t"))
    assert done.next == ()
    assert done.values["answer"] == "yes"

    # Time travel: back to the checkpoint before the second tool call, and on from there.
    before = [
        s for s in graph.get_state_history(thread("t")) if s.next == ("tool",) and s.values["calls"] == 1
    ]
    assert len(before) == 1
    graph.invoke(None, before[0].config)
    again = graph.get_state(thread("t"))
    assert again.next == ("review",)
    assert again.values["log"] == LOOP
    assert again.parent_config is not None

    # copy_thread: the copy resumes on its own; neither sees the other's answer.
    saver.copy_thread("t", "t2")
    assert graph.get_state(thread("t2")).values == again.values
    assert graph.invoke(Command(resume="no"), thread("t2"))["answer"] == "no"
    assert graph.get_state(thread("t")).next == ("review",)
    assert graph.invoke(Command(resume="maybe"), thread("t"))["answer"] == "maybe"
    assert graph.get_state(thread("t2")).values["answer"] == "no"

    # The CLI reads both threads as sessions: one message per checkpoint, in put order.
    history = json.loads(cli("--db", db_path, "history", "--json", "langgraph:t"))
    ids = [m["metadata"]["langgraph"]["checkpoint_id"] for m in history]
    stored = [c.config["configurable"]["checkpoint_id"] for c in saver.list(thread("t"))]
    assert ids == stored[::-1]
    assert all(m["role"] == "assistant" and m["content"].startswith("checkpoint ") for m in history)
    tree = cli("--db", db_path, "tree", "langgraph:t")
    assert "langgraph:t2" in tree
    copy = json.loads(cli("--db", db_path, "history", "--json", "langgraph:t2"))
    assert copy[: len(history) - 2] == history[: len(history) - 2]


def test_a_copy_resumes_as_before_after_its_source_is_purged(db_path: str) -> None:
    graph = build(SessiondbSaver(sessiondb.Store(db_path)))
    graph.invoke({"log": [], "calls": 0}, thread("t"))
    graph.get_state(thread("t"))
    SessiondbSaver(sessiondb.Store(db_path)).copy_thread("t", "copy")
    before = list(graph.get_state_history(thread("copy")))
    assert len(before) == 9

    report = json.loads(cli("--db", db_path, "purge", "langgraph:t", "--yes", "--json"))
    assert report["purged"] == ["langgraph:t"]
    assert report["forks_kept"] == ["langgraph:copy"]

    # A new saver on the file reads the copy's whole history as before, and resumes it in
    # another process.
    graph = build(SessiondbSaver(sessiondb.Store(db_path)))
    assert graph.get_state(thread("t")).values == {}
    after = list(graph.get_state_history(thread("copy")))
    assert [(s.values, s.next, s.config, s.parent_config, s.tasks) for s in after] == [
        (s.values, s.next, s.config, s.parent_config, s.tasks) for s in before
    ]
    assert resume_elsewhere(db_path, "copy", "yes") == {
        "log": [*LOOP, "review yes"],
        "calls": 3,
        "answer": "yes",
    }


def test_a_thread_exported_and_imported_elsewhere_resumes_where_it_stopped(db_path: str, tmp_path) -> None:
    saver = SessiondbSaver(sessiondb.Store(db_path))
    graph = build(saver)
    graph.invoke({"log": [], "calls": 0}, thread("t"))
    saver.copy_thread("t", "t2")
    assert graph.invoke(Command(resume="no"), thread("t2"))["answer"] == "no"
    # The source keeps only its latest checkpoint; the copy still reads the ones it inherited.
    saver.prune(["t"], strategy="keep_latest")
    states = {t: graph.get_state(thread(t)) for t in ("t", "t2")}
    histories = {t: list(graph.get_state_history(thread(t))) for t in ("t", "t2")}
    assert states["t"].next == ("review",)
    assert len(histories["t"]) == 1 and len(histories["t2"]) == 10
    # The source shows no parent of its one checkpoint; the copy shows its whole chain.
    assert states["t"].parent_config is None
    assert [s.parent_config for s in histories["t2"][:-1]] == [s.config for s in histories["t2"][1:]]

    out = str(tmp_path / "export.json")
    cli("--db", db_path, "export", "--out", out)
    elsewhere = str(tmp_path / "elsewhere.db")
    assert cli("--db", elsewhere, "import", "--format", "sessiondb", out).strip() == (
        "2 imported, 0 updated, 0 unchanged, 0 skipped"
    )

    moved = build(SessiondbSaver(sessiondb.Store(elsewhere)))
    for t in ("t", "t2"):
        assert moved.get_state(thread(t)) == states[t]
        assert list(moved.get_state_history(thread(t))) == histories[t]
    # The interrupted run goes on from the imported checkpoint.
    assert moved.invoke(Command(resume="yes"), thread("t")) == {
        "log": [*LOOP, "review yes"],
        "calls": 3,
        "answer": "yes",
    }


def counts(db_path: str) -> dict[str, int]:
    with sqlite3.connect(db_path) as db:
        return {
            table: db.execute(f"SELECT count(*) FROM langgraph_{table}").fetchone()[0]
            for table in ("checkpoints", "blobs", "channels", "writes")
        }


def put_chain(saver: SessiondbSaver, tid: str, n: int) -> list[dict]:
    """n checkpoints on tid; channel "fixed" is written once, "step" every time."""
    from langgraph.checkpoint.base import empty_checkpoint

    configs, parent = [], thread(tid) | {}
    parent["configurable"]["checkpoint_ns"] = ""
    versions: dict[str, str] = {}
    for i in range(n):
        cp = empty_checkpoint()
        new = {"step": saver.get_next_version(versions.get("step"))}
        if i == 0:
            new["fixed"] = saver.get_next_version(None)
        versions.update(new)
        cp["channel_versions"] = dict(versions)
        cp["channel_values"] = {"fixed": {"big": "x" * 100}, "step": i}
        parent = saver.put(parent, cp, {"source": "loop", "step": i}, new)
        configs.append(parent)
    return configs


def test_values_are_stored_once_per_version_and_nothing_is_left_behind(db_path: str) -> None:
    saver = SessiondbSaver(sessiondb.Store(db_path))
    configs = put_chain(saver, "a", 5)
    saver.put_writes(configs[-1], [("step", 99)], "task")
    assert counts(db_path) == {
        "checkpoints": 5,
        "blobs": 6,
        "channels": 10,
        "writes": 1,
    }
    # A copy adds no row; the source's prune hides what the copy still reads.
    saver.copy_thread("a", "b")
    assert counts(db_path)["blobs"] == 6
    saver.prune(["a"], strategy="keep_latest")
    assert [t.checkpoint["channel_values"]["step"] for t in saver.list(thread("a"))] == [4]
    assert [t.checkpoint["channel_values"]["step"] for t in saver.list(thread("b"))] == [4, 3, 2, 1, 0]
    assert saver.get_tuple(thread("a")).parent_config is None
    assert [t.parent_config for t in saver.list(thread("a"))] == [None]
    in_b = list(saver.list(thread("b")))
    assert saver.get_tuple(thread("b")).parent_config == in_b[1].config
    assert saver.get_tuple(thread("a")).pending_writes == [("task", "step", 99)]
    # With the copy gone, pruning again frees what only the copy still read.
    saver.delete_thread("b")
    saver.prune(["a"], strategy="keep_latest")
    assert counts(db_path) == {
        "checkpoints": 1,
        "blobs": 2,
        "channels": 2,
        "writes": 1,
    }
    fresh = put_chain(saver, "c", 3)
    saver.prune(["c"], strategy="keep_latest")
    assert saver.get_tuple(fresh[-1]).checkpoint["channel_values"] == {"fixed": {"big": "x" * 100}, "step": 2}
    saver.delete_thread("a")
    saver.delete_thread("c")
    assert counts(db_path) == {
        "checkpoints": 0,
        "blobs": 0,
        "channels": 0,
        "writes": 0,
    }


def test_bad_thread_ids_and_strategies_are_refused_by_name(db_path: str) -> None:
    saver = SessiondbSaver(sessiondb.Store(db_path))
    with pytest.raises(sessiondb.InvalidInput, match="thread_id"):
        saver.get_tuple(thread("a\x00b"))
    with pytest.raises(sessiondb.InvalidInput, match="strategy"):
        saver.prune(["a"], strategy="oldest")
    with pytest.raises(sessiondb.NotFound):
        saver.copy_thread("missing", "x")


# -- many processes

def writer(target: str, me: int, n: int, start) -> None:
    saver = SessiondbSaver(sessiondb.Store(target))
    start.wait(30)
    graph = build(saver)
    graph.invoke({"log": [], "calls": 0}, thread(f"own-{me}"))
    from langgraph.checkpoint.base import empty_checkpoint

    for i in range(n):
        cp = empty_checkpoint()
        version = saver.get_next_version(None, None)
        cp["channel_versions"] = {"value": version}
        cp["channel_values"] = {"value": {"who": me, "i": i, "pad": "p" * (i * 50)}}
        stored = saver.put(
            {"configurable": {"thread_id": "shared", "checkpoint_ns": ""}},
            cp,
            {"source": "loop", "step": i, "writer": me},
            {"value": version},
        )
        saver.put_writes(stored, [("value", {"who": me, "i": i})], f"task-{me}-{i}")


def test_processes_writing_checkpoints_lose_nothing_and_tear_nothing(db_path: str) -> None:
    sessiondb.Store(db_path)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(4)
    n = 20
    workers = [ctx.Process(target=writer, args=(db_path, me, n, start)) for me in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
        assert w.exitcode == 0
    saver = SessiondbSaver(sessiondb.Store(db_path))
    shared = list(saver.list(thread("shared")))
    assert len(shared) == 4 * n
    seen = set()
    for t in shared:
        value = t.checkpoint["channel_values"]["value"]
        me, i = value["who"], value["i"]
        assert t.metadata["writer"] == me and t.metadata["step"] == i
        assert value["pad"] == "p" * (i * 50)
        assert t.pending_writes == [(f"task-{me}-{i}", "value", {"who": me, "i": i})]
        seen.add((me, i))
    assert seen == {(me, i) for me in range(4) for i in range(n)}
    graph = build(saver)
    for me in range(4):
        state = graph.get_state(thread(f"own-{me}"))
        assert state.next == ("review",) and state.values["log"] == LOOP


def extend(state: list[int], writes: list[list[int]]) -> list[int]:
    return state + [x for w in writes for x in w]


class Counted(TypedDict, total=False):
    seen: Annotated[list[int], DeltaChannel(extend, snapshot_frequency=4)]
    n: int


def count_up(state: Counted) -> Counted:
    n = state.get("n", 0) + 1
    return {"seen": [n], "n": n}


def build_delta(saver: SessiondbSaver):
    graph = StateGraph(Counted)
    graph.add_node("count", count_up)
    graph.add_edge(START, "count")
    graph.add_conditional_edges("count", lambda s: "count" if s["n"] < 10 else END, ["count", END])
    return graph.compile(checkpointer=saver)


def test_keep_latest_keeps_the_chain_a_delta_channel_is_rebuilt_from(db_path: str) -> None:
    saver = SessiondbSaver(sessiondb.Store(db_path))
    graph = build_delta(saver)
    graph.invoke({"seen": [0], "n": 0}, thread("d"))
    before = graph.get_state(thread("d")).values
    assert before == {"seen": list(range(11)), "n": 10}
    stored = len(list(saver.list(thread("d"))))
    saver.prune(["d"], strategy="keep_latest")
    kept = list(saver.list(thread("d")))
    # Fewer checkpoints, but the delta channel still rebuilds to the same value.
    assert 1 < len(kept) < stored
    assert graph.get_state(thread("d")).values == before
    history = saver.get_delta_channel_history(config=kept[0].config, channels=["seen"])
    assert "seed" in history["seen"]


def test_a_backup_restored_brings_back_every_checkpoint_value_and_write(db_path: str, tmp_path) -> None:
    store = sessiondb.Store(db_path)
    saver = SessiondbSaver(store)
    configs = put_chain(saver, "a", 4)
    saver.put_writes(configs[-1], [("step", "w")], "task", "path")
    saver.copy_thread("a", "b")
    on_b = {"configurable": {**configs[-1]["configurable"], "thread_id": "b"}}
    saver.put_writes(on_b, [("step", "only b")], "task-b")
    before = {t: [(c.checkpoint, c.metadata, c.pending_writes) for c in saver.list(thread(t))] for t in "ab"}
    assert before["a"][0][2] == [("task", "step", "w")]
    assert before["b"][0][2] == [("task-b", "step", "only b"), ("task", "step", "w")]
    out = str(tmp_path / "backup.db")
    store.backup(out)
    saver.delete_thread("a")
    saver.delete_thread("b")
    put_chain(saver, "c", 2)
    store.restore(out)
    after = {t: [(c.checkpoint, c.metadata, c.pending_writes) for c in saver.list(thread(t))] for t in "ab"}
    assert after == before
    assert list(saver.list(thread("c"))) == []
    assert counts(db_path)["blobs"] == 5


def test_langgraphs_own_sqlite_saver_shares_the_file_without_a_clash(db_path: str) -> None:
    sqlite_saver = require("langgraph.checkpoint.sqlite")
    ours = SessiondbSaver(sessiondb.Store(db_path))
    theirs = sqlite_saver.SqliteSaver(sqlite3.connect(db_path, check_same_thread=False))
    theirs.setup()
    for saver in (ours, theirs):
        graph = build(saver)
        graph.invoke({"log": [], "calls": 0}, thread("same id"))
        assert graph.get_state(thread("same id")).values["log"] == LOOP
    assert len(list(ours.list(thread("same id")))) == len(list(theirs.list(thread("same id"))))


# -- checkpoints put again, and namespaces and ids LangGraph's separators appear in

def put_one(saver: SessiondbSaver, tid: str, ns: str, checkpoint_id: str, value, metadata: dict) -> dict:
    from langgraph.checkpoint.base import empty_checkpoint

    cp = empty_checkpoint()
    cp["id"] = checkpoint_id
    version = saver.get_next_version(None, None)
    cp["channel_versions"] = {"value": version}
    cp["channel_values"] = {"value": value}
    config = {"configurable": {"thread_id": tid, "checkpoint_ns": ns}}
    return saver.put(config, cp, metadata, {"value": version})


def shown(saver: SessiondbSaver, tid: str) -> list:
    return [
        (t.config["configurable"]["checkpoint_ns"], t.config["configurable"]["checkpoint_id"],
         t.checkpoint["channel_values"]["value"], t.metadata)
        for t in saver.list(thread(tid))
    ]


def test_a_checkpoint_put_again_replaces_its_values_and_metadata(db_path: str) -> None:
    saver = SessiondbSaver(sessiondb.Store(db_path))
    put_one(saver, "a", "", "1", "first", {"step": 1})
    put_one(saver, "a", "", "1", "again", {"step": 2})
    assert shown(saver, "a") == [("", "1", "again", {"step": 2})]
    assert counts(db_path) == {"checkpoints": 1, "blobs": 1, "channels": 1, "writes": 0}


def test_a_checkpoint_put_again_after_a_copy_changes_the_source_only(db_path: str) -> None:
    saver = SessiondbSaver(sessiondb.Store(db_path))
    put_one(saver, "a", "", "1", "first", {"step": 1})
    saver.copy_thread("a", "b")
    put_one(saver, "a", "", "1", "again", {"step": 2})
    put_one(saver, "a", "", "1", "third", {"step": 3})
    assert shown(saver, "a") == [("", "1", "third", {"step": 3})]
    assert shown(saver, "b") == [("", "1", "first", {"step": 1})]


def test_a_checkpoint_pruned_and_put_again_is_stored_again(db_path: str) -> None:
    saver = SessiondbSaver(sessiondb.Store(db_path))
    put_one(saver, "a", "", "1", "one", {"step": 1})
    put_one(saver, "a", "", "2", "two", {"step": 2})
    saver.prune(["a"], strategy="keep_latest")
    put_one(saver, "a", "", "1", "one again", {"step": 1})
    assert shown(saver, "a") == [("", "2", "two", {"step": 2}), ("", "1", "one again", {"step": 1})]


def test_a_copy_that_puts_an_inherited_checkpoint_again_is_exported_and_imported(db_path: str, tmp_path) -> None:
    store = sessiondb.Store(db_path)
    saver = SessiondbSaver(store)
    put_one(saver, "a", "", "1", "first", {"step": 1})
    saver.copy_thread("a", "b")
    put_one(saver, "b", "", "1", "in b", {"step": 2})
    assert shown(saver, "b") == [("", "1", "in b", {"step": 2})]
    elsewhere = sessiondb.Store(str(tmp_path / "elsewhere.db"))
    elsewhere.import_export(store.export(["langgraph:b"]))
    assert shown(SessiondbSaver(elsewhere), "b") == [("", "1", "in b", {"step": 2})]


def test_namespaces_and_ids_holding_separators_never_clash(db_path: str) -> None:
    saver = SessiondbSaver(sessiondb.Store(db_path))
    put_one(saver, "a", "p", "x:y", "one", {"step": 1})
    put_one(saver, "a", "p:x", "y", "two", {"step": 2})
    put_one(saver, "a", "p:x|q:z", "y", "three", {"step": 3})
    assert sorted(shown(saver, "a")) == [
        ("p", "x:y", "one", {"step": 1}),
        ("p:x", "y", "two", {"step": 2}),
        ("p:x|q:z", "y", "three", {"step": 3}),
    ]


def test_a_namespace_over_4_kib_is_stored(db_path: str) -> None:
    saver = SessiondbSaver(sessiondb.Store(db_path))
    ns = "|".join(f"node{i}:1f0a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8" for i in range(100))
    put_one(saver, "a", ns, "1", "deep", {"step": 1})
    found = saver.get_tuple({"configurable": {"thread_id": "a", "checkpoint_ns": ns}})
    assert found.checkpoint["channel_values"] == {"value": "deep"}


def test_list_filters_compare_numbers_by_value_as_upstreams_savers_do(db_path: str) -> None:
    saver = SessiondbSaver(sessiondb.Store(db_path))
    put_one(saver, "a", "", "1", "v", {"step": 1, "score": 0.5, "tags": {"k": [2, 3]}})
    put_one(saver, "a", "", "2", "w", {"step": 2, "score": 1, "tags": {"k": [2]}})

    def ids(**filter) -> list[str]:
        return [t.config["configurable"]["checkpoint_id"] for t in saver.list(thread("a"), filter=filter)]

    assert ids(step=1.0) == ["1"]
    assert ids(score=1.0) == ["2"]
    assert ids(score=0.5) == ["1"]
    assert ids(tags={"k": [2.0, 3]}) == ["1"]
    assert ids(tags={"k": [2.0]}) == ["2"]
    assert ids(step=1.5) == []
    assert ids(step="1") == []


def test_keep_latest_ends_when_parents_run_in_a_circle(db_path: str) -> None:
    import threading

    from langgraph.checkpoint.base import empty_checkpoint

    saver = SessiondbSaver(sessiondb.Store(db_path))
    # A checkpoint put with its own config (not its parent's) names itself as parent; with a
    # delta channel never snapshotted, the walk to its snapshot must still end.
    delta = {"step": 1, "counters_since_delta_snapshot": {"seen": 3}}
    for checkpoint_id, parent in (("1", "2"), ("2", "1"), ("3", "3")):
        cp = empty_checkpoint()
        cp["id"] = checkpoint_id
        config = {"configurable": {"thread_id": "a", "checkpoint_ns": "", "checkpoint_id": parent}}
        saver.put(config, cp, delta, {})
    pruning = threading.Thread(target=saver.prune, args=(["a"],), daemon=True)
    pruning.start()
    pruning.join(30)
    assert not pruning.is_alive()
    assert [t.config["configurable"]["checkpoint_id"] for t in saver.list(thread("a"))] == ["3"]


def test_deleting_the_run_that_put_an_inherited_checkpoint_again_does_not_bring_it_back(db_path: str) -> None:
    saver = SessiondbSaver(sessiondb.Store(db_path))
    put_one(saver, "a", "", "1", "a1", {"step": 1, "run_id": "r1"})
    put_one(saver, "a", "", "2", "a2", {"step": 2, "run_id": "r1"})
    saver.copy_thread("a", "b")
    put_one(saver, "b", "", "1", "b1", {"step": 1, "run_id": "r2"})
    saver.delete_for_runs(["r2"])
    # The copy's checkpoint "1" was run r2's: it is gone, as upstream's savers delete it.
    assert shown(saver, "b") == [("", "2", "a2", {"step": 2, "run_id": "r1"})]
    assert shown(saver, "a") == [
        ("", "2", "a2", {"step": 2, "run_id": "r1"}),
        ("", "1", "a1", {"step": 1, "run_id": "r1"}),
    ]


def test_keep_latest_on_a_copy_that_put_an_inherited_checkpoint_again_keeps_only_the_latest(db_path: str) -> None:
    saver = SessiondbSaver(sessiondb.Store(db_path))
    put_one(saver, "a", "", "1", "a1", {"step": 1})
    put_one(saver, "a", "", "2", "a2", {"step": 2})
    saver.copy_thread("a", "b")
    put_one(saver, "b", "", "1", "b1", {"step": 1})
    put_one(saver, "b", "", "3", "b3", {"step": 3})
    saver.prune(["b"], strategy="keep_latest")
    assert shown(saver, "b") == [("", "3", "b3", {"step": 3})]
    assert [c[1] for c in shown(saver, "a")] == ["2", "1"]
