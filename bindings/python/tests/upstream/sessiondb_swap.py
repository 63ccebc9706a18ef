"""Pytest plugin: run the OpenAI Agents SDK's own ``SQLiteSession`` tests against
``sessiondb.openai_agents.SessiondbSession``.

Loaded with ``-p sessiondb_swap`` from the root of the SDK's sdist. It replaces
``SQLiteSession`` everywhere the tests import it from with a subclass of ``SessiondbSession``
taking ``SQLiteSession``'s constructor arguments, and deselects the tests listed (with the
reason) in ``openai_agents_deselect.txt`` beside this file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from sessiondb import Store
from sessiondb.openai_agents import SessiondbSession

DESELECT_FILE = Path(__file__).with_name("openai_agents_deselect.txt")


class SQLiteSession(SessiondbSession):
    """``SQLiteSession``'s signature over sessiondb; ``:memory:`` (its default) is a private
    file of this instance, as an in-memory database is private to its connection."""

    def __init__(
        self,
        session_id: str,
        db_path: str | Path = ":memory:",
        sessions_table: str = "agent_sessions",
        messages_table: str = "agent_messages",
        session_settings: Any = None,
    ) -> None:
        store = None
        if str(db_path) == ":memory:":
            self._private_dir = tempfile.TemporaryDirectory(prefix="sessiondb-memory-")
            store = Store(os.path.join(self._private_dir.name, "sessions.db"))
        else:
            # Tests hand SQLiteSession a path of their own; keep our file beside it.
            store = Store(str(db_path) + ".sessiondb")
        super().__init__(session_id, db_path, session_settings, store=store)
        self.sessions_table = sessions_table
        self.messages_table = messages_table


def pytest_configure(config: pytest.Config) -> None:
    import agents
    import agents.memory
    import agents.memory.sqlite_session

    for module in (agents, agents.memory, agents.memory.sqlite_session):
        module.SQLiteSession = SQLiteSession  # type: ignore[attr-defined]


def _deselected() -> set[str]:
    names = set()
    for line in DESELECT_FILE.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(line)
    return names


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = _deselected()
    keep, drop = [], []
    for item in items:
        (drop if item.nodeid in wanted else keep).append(item)
    unknown = wanted - {item.nodeid for item in drop}
    if unknown:
        raise pytest.UsageError(f"deselect list names tests that do not exist: {sorted(unknown)}")
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
