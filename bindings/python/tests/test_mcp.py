"""`sessiondb mcp` spoken to by the official MCP client (the `mcp` package): the client spawns
the built binary over stdio, lists its tools and resources, calls each tool and checks the
exact results against what the library (`sessiondb.Store`) and the CLI say, refuses hostile
arguments by name, and sees what other processes write on its next call."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

import sessiondb

READ_TOOLS = {"session_search", "session_list", "session_history", "session_tree"}
WRITE_TOOLS = {"session_fork", "session_snapshot"}


def built_cli() -> str:
    """The sessiondb binary under test (built with the features `mcp` and `postgres`)."""
    cli = os.environ.get("SESSIONDB_CLI")
    if not cli:
        if os.environ.get("CI") == "true":
            pytest.fail("SESSIONDB_CLI (the sessiondb binary, built with --features mcp) not set under CI")
        pytest.skip("SESSIONDB_CLI (the sessiondb binary, built with --features mcp) not set")
    return cli


@pytest.fixture
def cli() -> str:
    return built_cli()


def seed(store: sessiondb.Store) -> sessiondb.Store:
    """Four sessions, written in this order (so listed in the reverse one)."""
    store.create_session("trip", title="Trip to Lisbon", agent_name="planner", user_id="ana")
    store.add_user_message("trip", "Find flights to Lisbon in May")
    store.add_assistant_message("trip", "Three flights to Lisbon: TAP at 9:05, easyJet at 13:40, Ryanair at 18:15")
    store.add_user_message("trip", "Book the TAP one")
    store.add_assistant_message("trip", "Booked TAP 1234 to Lisbon")
    store.create_session("cooking", title="Dinner", agent_name="chef", user_id="bo")
    store.add_user_message("cooking", "A recipe for bacalhau")
    store.add_assistant_message("cooking", "Soak the cod for a day, then bake it with potatoes")
    # A history replaced: the old message stays searchable, out of the current history.
    store.add_user_message("draft", "old plan: Lisbon by train")
    store.set_chat_history("draft", [{"role": "user", "content": "new plan: Faro by bus"}])
    for i in range(12):
        store.add_user_message("notes", f"note {i}")
    return store


@pytest.fixture
def seeded(store: sessiondb.Store) -> sessiondb.Store:
    return seed(store)


@contextlib.asynccontextmanager
async def connect(cli: str, db_path: str, *options: str):
    params = StdioServerParameters(command=cli, args=["--db", db_path, "mcp", *options])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


async def call(session: ClientSession, tool: str, arguments: dict) -> dict:
    """The tool's structured result, which must also be its only text, as JSON."""
    result = await session.call_tool(tool, arguments)
    assert result.is_error is False, result
    assert [c.type for c in result.content] == ["text"]
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


async def refused(session: ClientSession, tool: str, arguments: dict) -> str:
    """The error message of a call that must fail as a tool error, JSON like any result."""
    result = await session.call_tool(tool, arguments)
    assert result.is_error is True, result
    assert json.loads(result.content[0].text) == result.structured_content
    assert list(result.structured_content) == ["error"]
    return result.structured_content["error"]


def cli_json(cli: str, db_path: str, *args: str):
    out = subprocess.run([cli, "--db", db_path, *args, "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


async def test_lists_the_read_tools_and_with_allow_writes_also_fork_and_snapshot(cli, seeded, db_path):
    async with connect(cli, db_path) as session:
        info = await session.initialize()  # the result of the handshake, kept
        tools = (await session.list_tools()).tools
        assert {t.name for t in tools} == READ_TOOLS
        assert all(t.annotations.read_only_hint is True for t in tools)
        schemas = {t.name: t.input_schema for t in tools}
    assert set(schemas["session_search"]["properties"]) == {"query", "limit", "session", "agent", "user"}
    assert schemas["session_search"]["required"] == ["query"]
    assert set(schemas["session_list"]["properties"]) == {"limit", "after", "agent", "user", "title"}
    assert set(schemas["session_history"]["properties"]) == {"session", "index", "before", "after", "last"}
    assert schemas["session_tree"]["required"] == ["session"]
    assert all(s["additionalProperties"] is False for s in schemas.values())
    assert info.server_info.name == "sessiondb"
    assert info.capabilities.tools is not None and info.capabilities.resources is not None

    async with connect(cli, db_path, "--allow-writes") as session:
        tools = (await session.list_tools()).tools
        assert {t.name for t in tools} == READ_TOOLS | WRITE_TOOLS
        writers = {t.name: t for t in tools if t.name in WRITE_TOOLS}
        assert all(t.annotations.read_only_hint is False for t in writers.values())
        assert set(writers["session_fork"].input_schema["properties"]) == {"session", "at", "title"}
        assert set(writers["session_snapshot"].input_schema["properties"]) == {"session", "label"}


async def test_search_finds_messages_with_their_session_index_snippet_and_whether_current(cli, seeded, db_path):
    async with connect(cli, db_path) as session:
        found = await call(session, "session_search", {"query": "Lisbon"})
        hits = found["hits"]
        assert sorted((h["session_id"], h["index"], h["in_current_history"]) for h in hits) == [
            ("draft", 0, False),
            ("trip", 0, True),
            ("trip", 1, True),
            ("trip", 3, True),
        ]
        by_place = {(h["session_id"], h["index"]): h for h in hits}
        assert by_place[("trip", 0)]["snippet"] == "Find flights to [Lisbon] in May"
        assert by_place[("trip", 0)]["role"] == "user" and by_place[("trip", 0)]["branch"] == "main"
        assert by_place[("draft", 0)]["snippet"] == "old plan: [Lisbon] by train"
        assert by_place[("draft", 0)]["branch"] != seeded.session("draft")["head_branch"]
        # The same hits, in the same order, as `sessiondb search --json`.
        assert hits == cli_json(cli, db_path, "search", "Lisbon", "--limit", "10")

        only_one = await call(session, "session_search", {"query": "Lisbon", "limit": 1})
        assert only_one["hits"] == hits[:1]
        booked = await call(session, "session_search", {"query": "TAP Lisbon", "agent": "planner"})
        assert sorted((h["session_id"], h["index"]) for h in booked["hits"]) == [("trip", 1), ("trip", 3)]
        assert booked["hits"] == cli_json(cli, db_path, "search", "TAP Lisbon", "--agent", "planner", "--limit", "10")
        assert await call(session, "session_search", {"query": "Lisbon", "agent": "chef"}) == {"hits": []}
        assert [h["session_id"] for h in (await call(session, "session_search", {"query": "cod", "user": "bo"}))["hits"]] == [
            "cooking"
        ]
        assert await call(session, "session_search", {"query": "Lisbon", "session": "cooking"}) == {"hits": []}
        in_draft = await call(session, "session_search", {"query": "plan", "session": "draft"})
        assert [(h["index"], h["snippet"]) for h in in_draft["hits"]] == [(0, "new [plan]: Faro by bus")]


async def test_list_is_recent_first_with_filters_and_pages(cli, seeded, db_path):
    everyone = ["notes", "draft", "cooking", "trip"]
    async with connect(cli, db_path) as session:
        listed = await call(session, "session_list", {})
        assert [s["id"] for s in listed["sessions"]] == everyone
        assert listed["next"] is None
        assert listed["sessions"] == [seeded.session(id) for id in everyone]

        first = await call(session, "session_list", {"limit": 3})
        assert [s["id"] for s in first["sessions"]] == everyone[:3]
        assert first["next"] is not None
        rest = await call(session, "session_list", {"limit": 3, "after": first["next"]})
        assert [s["id"] for s in rest["sessions"]] == everyone[3:]
        assert rest["next"] is None

        assert [s["id"] for s in (await call(session, "session_list", {"agent": "chef"}))["sessions"]] == ["cooking"]
        assert [s["id"] for s in (await call(session, "session_list", {"user": "ana"}))["sessions"]] == ["trip"]
        assert [s["id"] for s in (await call(session, "session_list", {"title": "lisbon"}))["sessions"]] == ["trip"]
        assert await call(session, "session_list", {"user": "nobody"}) == {"sessions": [], "next": None}


async def test_history_reads_a_window_around_an_index_or_the_last_messages(cli, seeded, db_path):
    notes = seeded.full_history("notes")
    async with connect(cli, db_path) as session:
        window = await call(session, "session_history", {"session": "notes", "index": 5, "before": 2, "after": 1})
        assert window == {
            "session": "notes",
            "messages": notes[3:7],
            "total_messages": 12,
            "version": seeded.version("notes"),
        }
        assert [m["content"] for m in window["messages"]] == ["note 3", "note 4", "note 5", "note 6"]
        # Defaults: 5 on either side, cut at the ends of the history.
        start = await call(session, "session_history", {"session": "notes", "index": 0})
        assert [m["index"] for m in start["messages"]] == [0, 1, 2, 3, 4, 5]
        end = await call(session, "session_history", {"session": "notes", "index": 11})
        assert [m["index"] for m in end["messages"]] == [6, 7, 8, 9, 10, 11]
        alone = await call(session, "session_history", {"session": "notes", "index": 7, "before": 0, "after": 0})
        assert alone["messages"] == [notes[7]]

        last = await call(session, "session_history", {"session": "notes", "last": 3})
        assert last["messages"] == notes[9:]
        assert [m["content"] for m in last["messages"]] == ["note 9", "note 10", "note 11"]
        every = await call(session, "session_history", {"session": "notes"})
        assert every["messages"] == notes and every["total_messages"] == 12
        trip = await call(session, "session_history", {"session": "trip"})
        assert trip["messages"] == seeded.chat_history("trip")


async def test_tree_is_the_session_its_branches_and_forks(cli, seeded, db_path):
    fork = seeded.fork_session("trip", 1, "Without booking")
    seeded.create_branch("trip", "alt", 0)
    async with connect(cli, db_path) as session:
        tree = await call(session, "session_tree", {"session": "trip"})
    assert tree == seeded.session_tree("trip")
    assert tree["id"] == "trip" and tree["message_count"] == 4
    assert [b["name"] for b in tree["branches"]] == ["main", "alt"]
    assert [(c["id"], c["title"], c["message_count"]) for c in tree["children"]] == [
        (fork["id"], "Without booking", 2)
    ]


async def test_fork_and_snapshot_write_only_with_allow_writes(cli, seeded, db_path):
    async with connect(cli, db_path) as session:
        with pytest.raises(MCPError, match="tool not found"):
            await session.call_tool("session_fork", {"session": "trip"})
        with pytest.raises(MCPError, match="tool not found"):
            await session.call_tool("session_snapshot", {"session": "trip"})
    assert seeded.child_sessions("trip") == [] and seeded.snapshots("trip") == []

    async with connect(cli, db_path, "--allow-writes") as session:
        fork = await call(session, "session_fork", {"session": "trip", "at": 1, "title": "Alt"})
        assert fork == seeded.session(fork["id"])
        assert (fork["title"], fork["parent_session"], fork["message_count"]) == ("Alt", "trip", 2)
        assert seeded.full_history(fork["id"]) == seeded.full_history("trip")[:2]
        whole = await call(session, "session_fork", {"session": "cooking"})
        assert (whole["title"], whole["message_count"], whole["agent_name"]) == ("Fork of Dinner", 2, "chef")

        snapshot = await call(session, "session_snapshot", {"session": "trip", "label": "before booking"})
        assert [snapshot] == seeded.snapshots("trip")
        assert (snapshot["label"], snapshot["session_id"]) == ("before booking", "trip")
        unlabelled = await call(session, "session_snapshot", {"session": "notes"})
        assert unlabelled["label"] is None and seeded.snapshots("notes") == [unlabelled]
    assert sorted(s["id"] for s in seeded.child_sessions("trip")) == [fork["id"]]


async def test_sessions_are_resources(cli, seeded, db_path):
    odd = "team/a b%c"
    seeded.add_user_message(odd, "hi")
    async with connect(cli, db_path) as session:
        listed = (await session.list_resources()).resources
        assert [(r.uri, r.name, r.title) for r in listed] == [
            ("sessiondb://session/team%2Fa%20b%25c", odd, None),
            ("sessiondb://session/notes", "notes", None),
            ("sessiondb://session/draft", "draft", None),
            ("sessiondb://session/cooking", "cooking", "Dinner"),
            ("sessiondb://session/trip", "trip", "Trip to Lisbon"),
        ]
        assert all(r.mime_type == "application/json" for r in listed)
        trip = seeded.session("trip")
        assert listed[-1].description == f"4 messages, updated {trip['updated_at']}"
        templates = (await session.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["sessiondb://session/{id}"]

        for id, uri in ((odd, listed[0].uri), ("trip", "sessiondb://session/trip")):
            contents = (await session.read_resource(uri)).contents
            assert len(contents) == 1 and contents[0].mime_type == "application/json"
            assert json.loads(contents[0].text) == {
                "session": seeded.session(id),
                "messages": seeded.chat_history(id),
            }
        with pytest.raises(MCPError, match='session "nope" not found'):
            await session.read_resource("sessiondb://session/nope")
        for bad in ("sessiondb://session/%zz", "sessiondb://session/%ff", "file:///etc/passwd", "sessiondb://session/"):
            with pytest.raises(MCPError) as error:
                await session.read_resource(bad)
            assert error.value.error.code == -32602
        # Still serving after all that.
        assert len((await session.list_resources()).resources) == 5


async def test_resources_come_a_page_at_a_time(cli, store, db_path):
    for i in range(53):
        store.add_user_message(f"s{i:02}", "x")
    async with connect(cli, db_path) as session:
        first = await session.list_resources()
        assert [r.name for r in first.resources] == [f"s{i:02}" for i in range(52, 2, -1)]
        assert first.next_cursor is not None
        from mcp.types import PaginatedRequestParams

        second = await session.list_resources(params=PaginatedRequestParams(cursor=first.next_cursor))
        assert [r.name for r in second.resources] == ["s02", "s01", "s00"]
        assert second.next_cursor is None
        with pytest.raises(MCPError) as error:
            await session.list_resources(params=PaginatedRequestParams(cursor="not a cursor"))
        assert error.value.error.code == -32602


HOSTILE = [
    ("session_search", {}, 'argument "query" is required'),
    ("session_search", {"query": 5}, 'argument "query" must be a string, not 5'),
    ("session_search", {"query": ["a"]}, 'argument "query" must be a string, not ["a"]'),
    ("session_search", {"query": "x", "limit": -1}, 'argument "limit" must be a whole number from 1 to 100, not -1'),
    ("session_search", {"query": "x", "limit": 0}, 'argument "limit" must be a whole number from 1 to 100, not 0'),
    ("session_search", {"query": "x", "limit": 101}, 'argument "limit" must be a whole number from 1 to 100, not 101'),
    (
        "session_search",
        {"query": "x", "limit": 10**30},
        'argument "limit" must be a whole number from 1 to 100, not 1e+30',
    ),
    ("session_search", {"query": "x", "limit": 2.5}, 'argument "limit" must be a whole number from 1 to 100, not 2.5'),
    ("session_search", {"query": "x", "limit": "10"}, 'argument "limit" must be a whole number from 1 to 100, not "10"'),
    ("session_search", {"query": "x", "limit": True}, 'argument "limit" must be a whole number from 1 to 100, not true'),
    (
        "session_search",
        {"query": "x", "bogus": 1},
        'unknown argument "bogus" (this tool takes query, limit, session, agent, user)',
    ),
    ("session_search", {"query": "   "}, "the search query has no words"),
    ("session_search", {"query": "x", "session": ""}, "session id is empty"),
    ("session_list", {"after": "garbage"}, 'argument "after" is not a cursor this tool returned as `next`: "garbage"'),
    ("session_list", {"limit": 1000}, 'argument "limit" must be a whole number from 1 to 100, not 1000'),
    ("session_history", {}, 'argument "session" is required'),
    ("session_history", {"session": "nope"}, 'session "nope" not found'),
    ("session_history", {"session": "nope", "index": 0}, 'session "nope" not found'),
    ("session_history", {"session": "a\u0000b"}, 'session id "a\\0b" contains a control character'),
    (
        "session_history",
        {"session": "notes", "index": 12},
        'argument "index" is 12, past the last message of session "notes" (its indexes are 0 to 11)',
    ),
    (
        "session_history",
        {"session": "notes", "index": 2**64 - 1},
        f'argument "index" is {2**64 - 1}, past the last message of session "notes" (its indexes are 0 to 11)',
    ),
    (
        "session_history",
        {"session": "notes", "index": -1},
        'argument "index" must be a message index, a whole number from 0, not -1',
    ),
    ("session_history", {"session": "notes", "index": 1, "last": 2}, 'pass "index" (with "before" and "after") or "last", not both'),
    (
        "session_history",
        {"session": "notes", "before": 2},
        'arguments "before" and "after" count from "index", which is missing',
    ),
    ("session_history", {"session": "notes", "last": 0}, 'argument "last" must be a whole number from 1 to 100, not 0'),
    ("session_tree", {"session": 5}, 'argument "session" must be a string, not 5'),
    ("session_tree", {"session": {"id": "trip"}}, 'argument "session" must be a string, not {"id":"trip"}'),
    ("session_tree", {"session": "x" * 2000}, None),
]


async def test_hostile_arguments_are_tool_errors_naming_them(cli, seeded, db_path):
    def stored():
        return {k: v for k, v in seeded.export(all_branches=True).items() if k != "exported_at"}

    before = stored()
    async with connect(cli, db_path) as session:
        for tool, arguments, expected in HOSTILE:
            message = await refused(session, tool, arguments)
            if expected is None:
                assert message.startswith("invalid input: session id"), message
            elif expected.endswith("not found"):
                assert message == expected
            else:
                assert message == f"invalid input: {expected}", (tool, arguments)
        # An unknown tool is the protocol's error, not a crash.
        with pytest.raises(MCPError, match="tool not found"):
            await session.call_tool("session_delete", {"session": "trip"})
        # A null is an argument left out.
        assert (await call(session, "session_list", {"limit": None, "agent": None}))["next"] is None
        # And the server still answers.
        still = await call(session, "session_search", {"query": "TAP", "session": "trip"})
        assert sorted(h["index"] for h in still["hits"]) == [1, 2, 3]
    async with connect(cli, db_path, "--allow-writes") as session:
        assert await refused(session, "session_fork", {"session": "trip", "at": 99}) == (
            'invalid input: message index 99 is past the end of session "trip", which has 4 messages'
        )
        assert await refused(session, "session_fork", {"session": "nope"}) == 'session "nope" not found'
        assert await refused(session, "session_snapshot", {"session": "trip", "label": 7}) == (
            'invalid input: argument "label" must be a string, not 7'
        )
    assert stored() == before


async def test_writes_of_other_processes_show_in_the_next_call(cli, seeded, db_path):
    async with connect(cli, db_path) as session:
        assert [m["content"] for m in (await call(session, "session_history", {"session": "trip", "last": 1}))["messages"]] == [
            "Booked TAP 1234 to Lisbon"
        ]
        assert (await call(session, "session_search", {"query": "Porto"}))["hits"] == []
        # Another process: the CLI appends; this process (not the server's) appends too.
        subprocess.run([cli, "--db", db_path, "add", "trip", "user", "And a day trip to Porto"], check=True, capture_output=True)
        seeded.add_assistant_message("trip", "Trains to Porto leave hourly")
        last = await call(session, "session_history", {"session": "trip", "last": 2})
        assert [m["content"] for m in last["messages"]] == ["And a day trip to Porto", "Trains to Porto leave hourly"]
        assert last["total_messages"] == 6 and last["version"] == seeded.version("trip")
        hits = (await call(session, "session_search", {"query": "Porto"}))["hits"]
        assert sorted((h["session_id"], h["index"]) for h in hits) == [("trip", 4), ("trip", 5)]
        assert [s["id"] for s in (await call(session, "session_list", {"limit": 1}))["sessions"]] == ["trip"]
        contents = (await session.read_resource("sessiondb://session/trip")).contents
        assert len(json.loads(contents[0].text)["messages"]) == 6
        # A history replaced elsewhere is read anew, not from a stale cache.
        seeded.set_chat_history("trip", [{"role": "user", "content": "start over"}])
        again = await call(session, "session_history", {"session": "trip"})
        assert [m["content"] for m in again["messages"]] == ["start over"]
        seeded.delete_session("trip")
        assert await refused(session, "session_history", {"session": "trip"}) == 'session "trip" not found'


INITIALIZE = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
)


def test_closed_stdin_ends_the_server_with_status_0(cli, seeded, db_path):
    done = subprocess.run([cli, "--db", db_path, "mcp"], input=b"", capture_output=True, timeout=30)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    # After a whole exchange too: every request is answered before it ends.
    calls = [
        INITIALIZE,
        '{"jsonrpc":"2.0","method":"notifications/initialized"}',
        '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"session_tree","arguments":{"session":"trip"}}}',
    ]
    done = subprocess.run([cli, "--db", db_path, "mcp"], input="\n".join(calls) + "\n", capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stderr) == (0, "")
    answers = {a["id"]: a for a in map(json.loads, done.stdout.splitlines())}
    assert sorted(answers) == [1, 2]
    assert answers[2]["result"]["structuredContent"] == seeded.session_tree("trip")


def test_closed_stdout_ends_the_server_quietly(cli, seeded, db_path):
    server = subprocess.Popen(
        [cli, "--db", db_path, "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        server.stdin.write(INITIALIZE.encode() + b"\n")
        server.stdin.flush()
        assert json.loads(server.stdout.readline())["id"] == 1
        server.stdout.close()
        server.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        server.stdin.write(b'{"jsonrpc":"2.0","id":2,"method":"tools/list"}\n')
        server.stdin.flush()
        # Stdin stays open: the failed write alone ends it, with the status of a closed pipe.
        assert server.wait(timeout=30) == 141
        assert server.stderr.read() == b""
    finally:
        server.kill()
        server.wait()


def test_mcp_refuses_allow_writes_with_read_only_and_a_missing_database(cli, seeded, db_path, tmp_path):
    done = subprocess.run([cli, "--db", db_path, "--read-only", "mcp", "--allow-writes"], capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "sessiondb: --allow-writes and --read-only contradict each other: pass one\n"
    missing = tmp_path / "missing.db"
    done = subprocess.run([cli, "--db", str(missing), "mcp"], capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith(f"sessiondb: nothing has been stored at {missing} yet")
    assert not missing.exists()
