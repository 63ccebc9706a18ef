"""Pytest plugin: run the OpenAI Agents SDK's own tests of ``SQLiteSession``,
``AdvancedSQLiteSession`` and of the wrappers over them (``OpenAIResponsesCompactionSession``,
``EncryptedSession``, session limits) against ``sessiondb.openai_agents.SessiondbSession`` and
``AdvancedSessiondbSession``.

Loaded with ``-p sessiondb_swap`` from the root of the SDK's sdist. It replaces each class
everywhere the tests import it from with a subclass of ours taking the upstream constructor's
arguments, and deselects the tests listed (with the reason) in ``openai_agents_deselect.txt``
beside this file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from sessiondb import Store
from sessiondb.openai_agents import AdvancedSessiondbSession, SessiondbSession

DESELECT_FILE = Path(__file__).with_name("openai_agents_deselect.txt")


def _store_for(owner: Any, db_path: str | Path) -> Store:
    """``:memory:`` (the upstream default) is a private file of ``owner``, as an in-memory
    database is private to its connection; a path the tests choose gets our file beside it."""
    if str(db_path) == ":memory:":
        owner._private_dir = tempfile.TemporaryDirectory(prefix="sessiondb-memory-")
        return Store(os.path.join(owner._private_dir.name, "sessions.db"))
    return Store(str(db_path) + ".sessiondb")


class SQLiteSession(SessiondbSession):
    """``SQLiteSession``'s signature over sessiondb."""

    def __init__(
        self,
        session_id: str,
        db_path: str | Path = ":memory:",
        sessions_table: str = "agent_sessions",
        messages_table: str = "agent_messages",
        session_settings: Any = None,
    ) -> None:
        store = _store_for(self, db_path)
        super().__init__(session_id, db_path, session_settings, store=store)
        self.sessions_table = sessions_table
        self.messages_table = messages_table


class AdvancedSQLiteSession(AdvancedSessiondbSession):
    """``AdvancedSQLiteSession``'s signature over sessiondb."""

    def __init__(
        self,
        *,
        session_id: str,
        db_path: str | Path = ":memory:",
        create_tables: bool = False,
        logger: Any = None,
        session_settings: Any = None,
        sessions_table: str = "agent_sessions",
        messages_table: str = "agent_messages",
    ) -> None:
        store = _store_for(self, db_path)
        super().__init__(
            session_id=session_id,
            db_path=db_path,
            create_tables=create_tables,
            logger=logger,
            session_settings=session_settings,
            store=store,
        )
        self.sessions_table = sessions_table
        self.messages_table = messages_table

    @property
    def _current_branch_id(self) -> str:
        # Many upstream tests read the current branch through this private attribute; ours
        # is the session's head branch.
        return self._head()


def swap() -> None:
    """Puts our classes where the tests import the upstream ones from."""
    import agents
    import agents.extensions.memory
    import agents.extensions.memory.advanced_sqlite_session
    import agents.memory
    import agents.memory.sqlite_session

    for module in (agents, agents.memory, agents.memory.sqlite_session):
        module.SQLiteSession = SQLiteSession  # type: ignore[attr-defined]
    for module in (
        agents.extensions.memory,
        agents.extensions.memory.advanced_sqlite_session,
    ):
        module.AdvancedSQLiteSession = AdvancedSQLiteSession  # type: ignore[attr-defined]
    try:
        import agents.extensions.memory.encrypt_session as encrypt_session
    except ImportError:  # its extra (cryptography) is not installed
        return
    # EncryptedSession's validated pop is for SQLiteSession; it names the class it imported.
    encrypt_session.SQLiteSession = SQLiteSession  # type: ignore[attr-defined]


def pytest_configure(config: pytest.Config) -> None:
    # Child processes the tests start get the swap from sitecustomize.py beside this file.
    os.environ["SESSIONDB_SWAP"] = "1"
    swap()


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
    # Names of files this run collected must all exist (the list may name other files).
    files = {item.nodeid.split("::", 1)[0] for item in items}
    unknown = {n for n in wanted if n.split("::", 1)[0] in files} - {item.nodeid for item in drop}
    if unknown:
        raise pytest.UsageError(f"deselect list names tests that do not exist: {sorted(unknown)}")
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
