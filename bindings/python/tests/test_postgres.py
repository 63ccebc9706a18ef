"""The package on PostgreSQL: a ``postgres://`` URL instead of a path. Runs when
``SESSIONDB_TEST_PG_TCP`` names a server (``run-tests.sh`` starts a throwaway one through
``tests/postgres/with-server.sh``); each test gets its own database."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import subprocess

import pytest

import sessiondb
from sessiondb.openai_agents import SessiondbSession

SERVER = os.environ.get("SESSIONDB_TEST_PG_TCP")
pytestmark = pytest.mark.skipif(not SERVER, reason="no PostgreSQL server (SESSIONDB_TEST_PG_TCP)")

_names = itertools.count()


def _fresh_database() -> str:
    assert SERVER is not None
    name = f"py_{os.getpid()}_{next(_names)}"
    subprocess.run(["psql", "-q", SERVER, "-c", f"CREATE DATABASE {name}"], check=True)
    return SERVER.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def url() -> str:
    return _fresh_database()


def contents(messages):
    return [(m["role"], m["content"]) for m in messages]


def test_the_store_on_postgres_keeps_histories_forks_and_snapshots(url):
    store = sessiondb.Store(url)
    assert store.path == url
    store.add_user_message("c", "a")
    store.add_assistant_message("c", "b")
    snapshot = store.create_snapshot("c", "two")
    change = store.set_chat_history("c", [{"role": "user", "content": "a"}, {"role": "user", "content": "x"}])
    assert (change["kept"], change["written"]) == (1, 1)
    fork = store.fork_session("c", 0)
    assert contents(store.chat_history(fork["id"])) == [("user", "a")]
    store.restore_snapshot("c", snapshot["id"])
    assert contents(store.chat_history("c")) == [("user", "a"), ("assistant", "b")]
    # Another store (another host) reads what this one wrote, past its own cache.
    other = sessiondb.Store(url)
    assert other.chat_history("c") == store.chat_history("c")
    other.add_user_message("c", "from the other host")
    assert contents(store.chat_history("c"))[-1] == ("user", "from the other host")


def test_errors_on_postgres_are_typed_and_never_show_a_password(url):
    store = sessiondb.Store(url)
    store.add_user_message("c", "a")
    version = store.session("c")["version"]
    store.add_user_message("c", "b")
    with pytest.raises(sessiondb.Conflict) as conflict:
        store.add_message("c", {"role": "user", "content": "late"}, expected_version=version)
    assert (conflict.value.expected, conflict.value.actual) == (version, version + 1)
    with pytest.raises(sessiondb.NotFound):
        store.session("missing")
    with pytest.raises(sessiondb.InvalidInput, match="pgbouncer=maybe") as bad:
        sessiondb.Store("postgres://app:s3cret@127.0.0.1:1/db?pgbouncer=maybe")
    assert "s3cret" not in str(bad.value)
    with pytest.raises(sessiondb.PoolError, match="cannot connect") as refused:
        sessiondb.Store("postgres://app:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in str(refused.value)
    assert contents(store.chat_history("c")) == [("user", "a"), ("user", "b")]


def test_sdk_items_round_trip_on_postgres(url):
    items = [
        {"role": "user", "content": "add 2 and 2"},
        {"type": "function_call", "call_id": "c1", "name": "add", "arguments": '{"a":2,"b":2}'},
        {"type": "function_call_output", "call_id": "c1", "output": "4"},
        {"type": "reasoning", "id": "rs_1", "summary": []},
    ]
    session = SessiondbSession("sdk", store=sessiondb.Store(url))

    async def run():
        await session.add_items(items)
        assert await session.get_items() == items
        assert await session.get_items(limit=2) == items[2:]
        assert await session.pop_item() == items[-1]
        fresh = SessiondbSession("sdk", store=sessiondb.Store(url))
        assert await fresh.get_items() == items[:3]

    asyncio.run(run())


def _append(url: str, writer: int, count: int) -> None:
    store = sessiondb.Store(url)
    for i in range(count):
        store.add_user_message("shared", f"w{writer}-{i}")


def test_four_processes_appending_to_one_postgres_session_lose_nothing(url):
    sessiondb.Store(url).add_user_message("shared", "start")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append, args=(url, w, 50)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    history = [m["content"] for m in sessiondb.Store(url).chat_history("shared")]
    assert len(history) == 201 and history[0] == "start"
    for w in range(4):
        assert [c for c in history if c.startswith(f"w{w}-")] == [f"w{w}-{i}" for i in range(50)]


# Leases and watch on PostgreSQL: the same workers as test_leases.py and test_watch.py, given
# the URL instead of a path.


def test_processes_claiming_one_postgres_session_at_once_exactly_one_wins(url):
    from test_leases import check_claim_race

    check_claim_race(url)


def test_a_broken_postgres_lease_refuses_the_old_holders_writes(url):
    from test_leases import _hold_then_write

    ctx = multiprocessing.get_context("spawn")
    here, there = ctx.Pipe()
    worker = ctx.Process(target=_hold_then_write, args=(url, 600, there))
    worker.start()
    assert here.recv()[0] == "claimed"
    store = sessiondb.Store(url)
    with pytest.raises(sessiondb.LeaseHeld, match='leased to "worker-a"'):
        store.claim("s", "worker-b", 60)
    assert store.break_lease("s")["owner"] == "worker-a"
    lease = store.claim("s", "worker-b", 60)
    here.send("try")
    report = here.recv()
    here.send("stop")
    worker.join(60)
    assert worker.exitcode == 0
    lost = ("s", "worker-a", "worker-b", f'"worker-b" holds it until {lease.expires_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}')
    assert report == {name: lost for name in ("add_message", "set_chat_history", "start_stream", "renew", "store.renew")} | {
        "release": False
    }
    assert [m["content"] for m in store.chat_history("s")] == ["a1"]
    assert store.partial_message("s") is None


def test_a_postgres_watcher_sees_another_processs_writes_change_by_change(url):
    from test_watch import _write_step_by_step

    ctx = multiprocessing.get_context("spawn")
    store = sessiondb.Store(url)
    store.add_user_message("s", "m0")
    here, there = ctx.Pipe()
    seen = []
    with store.watcher("s") as watcher:
        writer = ctx.Process(target=_write_step_by_step, args=(url, there))
        writer.start()
        for change in watcher:
            assert change.version == here.recv()
            seen.append((change.history, [m["content"] for m in change.messages], change.stream, change.grew))
            here.send("go")
            if len(seen) == 7:
                break
    writer.join(60)
    assert writer.exitcode == 0
    assert seen == [
        ("appended", ["m1"], "unchanged", None),
        ("appended", ["m2", "m3"], "unchanged", None),
        ("unchanged", [], "started", None),
        ("unchanged", [], "grew", "hel"),
        ("unchanged", [], "grew", "lo"),
        ("appended", ["hello"], "ended", None),
        ("replaced", ["m0", "new"], "unchanged", None),
    ]


def test_an_async_postgres_watcher_survives_cancellation(url):
    store = sessiondb.Store(url)
    store.add_user_message("s", "a")

    async def run():
        watcher = store.watcher("s")
        waiting = asyncio.ensure_future(anext(watcher))
        await asyncio.sleep(0.1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.to_thread(store.add_user_message, "s", "b")
        change = await asyncio.wait_for(anext(watcher), 60)
        watcher.close()
        return change

    change = asyncio.run(run())
    assert (change.history, contents(change.messages)) == ("appended", [("user", "b")])


# -- the Claude Agent SDK's SessionStore on PostgreSQL (helpers in test_claude_agent_sdk.py) --


async def test_the_claude_sdks_conformance_suite_passes_on_postgres_with_no_optional_method_skipped():
    from test_claude_agent_sdk import check_conformance

    await check_conformance(_fresh_database)


async def test_claude_sdk_retries_and_mixed_batches_on_postgres(url):
    from test_claude_agent_sdk import check_retries_and_mixed_batches

    await check_retries_and_mixed_batches(url)


async def test_eight_processes_appending_sdk_batches_on_postgres_lose_and_double_nothing(url):
    from test_claude_agent_sdk import check_processes_racing

    await check_processes_racing(url)


def test_add_messages_each_key_mode_on_postgres(url):
    store = sessiondb.Store(url)
    first = store.add_messages("c", [{"role": "user", "content": "a", "key": "a"}],
                               new_session={"user_id": "u", "metadata": {"m": 1}})
    mixed = [{"role": "user", "content": "x", "key": "a"}, {"role": "user", "content": "b", "key": "b"}]
    added = store.add_messages("c", mixed, keys="each", expected_version=first["version"],
                               metadata={"m": 2})
    assert added["written"] == [False, True]
    assert [m["content"] for m in added["messages"]] == ["a", "b"]
    assert store.session("c")["metadata"] == {"m": 2}
    assert store.find_keys("c", ["b", "z", "a"]) == {"version": added["version"], "indices": [1, None, 0]}


def test_version_check_and_recent_sessions_on_postgres(url):
    store = sessiondb.Store(url)
    store.add_user_message("a", "oslo rain")
    store.add_user_message("b", "oslo snow")
    version = store.version("a")
    assert store.chat_history_if_changed("a", known_version=version) == (version, None, None)
    store.start_stream("a")
    store.append_stream("a", "Hel")
    got, messages, partial = store.chat_history_if_changed("a", known_version=version)
    assert (got, messages, partial["content"]) == (version, None, "Hel")
    session, messages, partial = store.session_with_history("a")
    assert (session["id"], contents(messages), partial["content"]) == ("a", [("user", "oslo rain")], "Hel")
    assert store.search_recent_sessions("oslo") == ["b", "a"]
    store.set_chat_history("b", [{"role": "user", "content": "nothing"}])
    assert store.search_recent_sessions("oslo", limit=5) == ["a"]


def test_langgraph_conformance_suite_passes_every_capability_on_postgres(url):
    from test_langgraph import run_conformance

    asyncio.run(run_conformance(url))


def test_langgraph_processes_on_postgres_lose_nothing_and_tear_nothing(url):
    import test_langgraph

    test_langgraph.test_processes_writing_checkpoints_lose_nothing_and_tear_nothing(url)


def test_langgraph_keep_latest_on_postgres_keeps_a_delta_channels_chain(url):
    import test_langgraph

    test_langgraph.test_keep_latest_keeps_the_chain_a_delta_channel_is_rebuilt_from(url)


# Checkpoints put again, namespaces and ids holding separators, filters, circular parents
# (counts() reads a file, so the test that checks the rows left behind runs on SQLite only).
LANGGRAPH_TESTS = [
    "test_a_checkpoint_put_again_after_a_copy_changes_the_source_only",
    "test_a_checkpoint_pruned_and_put_again_is_stored_again",
    "test_namespaces_and_ids_holding_separators_never_clash",
    "test_a_namespace_over_4_kib_is_stored",
    "test_list_filters_compare_numbers_by_value_as_upstreams_savers_do",
    "test_keep_latest_ends_when_parents_run_in_a_circle",
    "test_deleting_the_run_that_put_an_inherited_checkpoint_again_does_not_bring_it_back",
    "test_keep_latest_on_a_copy_that_put_an_inherited_checkpoint_again_keeps_only_the_latest",
]


@pytest.mark.parametrize("name", LANGGRAPH_TESTS)
def test_langgraph_on_postgres(url, name):
    import test_langgraph

    getattr(test_langgraph, name)(url)


def test_langgraph_copy_putting_a_checkpoint_again_is_exported_and_imported_on_postgres(url, tmp_path):
    import test_langgraph

    test_langgraph.test_a_copy_that_puts_an_inherited_checkpoint_again_is_exported_and_imported(url, tmp_path)


# `sessiondb mcp` on PostgreSQL: test_mcp.py's tests, each on a fresh database. Left out: the
# refusal of a missing database file, which is about files.
MCP_TESTS = [
    "test_lists_the_read_tools_and_with_allow_writes_also_fork_and_snapshot",
    "test_search_finds_messages_with_their_session_index_snippet_and_whether_current",
    "test_list_is_recent_first_with_filters_and_pages",
    "test_history_reads_a_window_around_an_index_or_the_last_messages",
    "test_tree_is_the_session_its_branches_and_forks",
    "test_fork_and_snapshot_write_only_with_allow_writes",
    "test_sessions_are_resources",
    "test_resources_come_a_page_at_a_time",
    "test_hostile_arguments_are_tool_errors_naming_them",
    "test_writes_of_other_processes_show_in_the_next_call",
    "test_closed_stdin_ends_the_server_with_status_0",
    "test_closed_stdout_ends_the_server_quietly",
]


@pytest.mark.parametrize("name", MCP_TESTS)
def test_the_mcp_server_on_postgres(url, name):
    import test_mcp

    store = sessiondb.Store(url)
    if name != "test_resources_come_a_page_at_a_time":
        test_mcp.seed(store)
    run = getattr(test_mcp, name)(test_mcp.built_cli(), store, url)
    if asyncio.iscoroutine(run):
        asyncio.run(run)
