"""The OpenAI Agents SDK ``Session`` protocol over sessiondb.

``SessiondbSession`` is a drop-in for ``agents.SQLiteSession``::

    from sessiondb.openai_agents import SessiondbSession
    result = await Runner.run(agent, "Hi", session=SessiondbSession("user-42", "sessions.db"))

Items of any shape the SDK produces (messages, function calls and their outputs, reasoning
items, …) are stored as sessiondb messages a person can read (``sessiondb history``), each
keeping the item itself, which is what ``get_items`` returns: items round-trip exactly.
``add_items`` is one transaction; many processes may append to one session at once without
losing an item. Every call runs in a worker thread (``asyncio.to_thread``), never blocking the
event loop; the core releases the GIL.

Requires ``openai-agents`` (``pip install 'sessiondb[openai-agents]'``).
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.memory.session import SessionABC
from agents.memory.session_settings import (
    SessionSettings,
    coerce_session_settings,
    resolve_session_limit,
)

from . import NotFound, Store

if TYPE_CHECKING:
    from agents.items import TResponseInputItem

__all__ = ["SessiondbSession", "shared_store"]

_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def shared_store(db_path: str | os.PathLike[str] | None = None) -> Store:
    """The process-wide :class:`sessiondb.Store` of ``db_path`` (the default file when
    ``None``): every session of one file shares its connections and history cache."""
    key = os.path.abspath(os.fspath(db_path)) if db_path is not None else ""
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = Store(key or None)
            _stores[key] = store
        return store


def _item_of(message: dict[str, Any]) -> Any:
    """The SDK item a stored message holds (a message written by another API reads as the
    chat message it is)."""
    metadata = message.get("metadata")
    if metadata is not None and "openai_item" in metadata:
        return metadata["openai_item"]
    return {"role": message["role"], "content": message["content"]}


class SessiondbSession(SessionABC):
    """Conversation history of one ``session_id`` in a sessiondb file.

    Args:
        session_id: The session's id (any text up to 256 bytes, no control characters).
        db_path: The database file; ``None`` is sessiondb's default file
            (``$SESSIONDB_PATH``, else ``sessions.db`` in the user's data directory).
        session_settings: Default ``limit`` of :meth:`get_items`, as for ``SQLiteSession``.
        store: Use this :class:`sessiondb.Store` instead of opening ``db_path``.
    """

    session_settings: SessionSettings | None = None

    def __init__(
        self,
        session_id: str,
        db_path: str | Path | None = None,
        session_settings: SessionSettings | dict[str, Any] | None = None,
        *,
        store: Store | None = None,
    ) -> None:
        self.session_id = session_id
        self.session_settings = (
            coerce_session_settings(session_settings)
            if session_settings is not None
            else SessionSettings()
        )
        self.db_path = db_path
        self._store = store if store is not None else shared_store(db_path)
        self._closed = False

    @property
    def store(self) -> Store:
        """The underlying :class:`sessiondb.Store`."""
        return self._store

    def _check_not_closed(self) -> None:
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The history, oldest first: the latest ``limit`` items (``session_settings.limit``
        when ``None``; everything when that is ``None`` too)."""
        session_limit = resolve_session_limit(limit, self.session_settings)
        if session_limit is not None and session_limit < 0:
            session_limit = None  # SQLiteSession's LIMIT -1: everything
        if session_limit == 0:
            return []

        def read() -> list[Any]:
            try:
                messages = self._store.chat_history(
                    self.session_id, session_limit, whole_turns=False
                )
            except NotFound:
                return []
            return [_item_of(m) for m in messages]

        return await asyncio.to_thread(read)

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Appends ``items`` in one transaction: all of them or none."""
        self._check_not_closed()
        if not items:
            return
        batch = list(items)
        await asyncio.to_thread(self._store.add_openai_items, self.session_id, batch)

    async def pop_item(self) -> TResponseInputItem | None:
        """Removes and returns the most recent item (``None`` when empty). The removed item
        stays readable in a superseded branch of the session."""

        def pop() -> Any:
            try:
                message = self._store.pop_message(self.session_id)
            except NotFound:
                return None
            return None if message is None else _item_of(message)

        return await asyncio.to_thread(pop)

    async def clear_session(self) -> None:
        """Empties the history (the old one stays readable as a superseded branch until
        ``prune``)."""

        def clear() -> None:
            try:
                self._store.clear(self.session_id)
            except NotFound:
                pass

        await asyncio.to_thread(clear)

    def close(self) -> None:
        """Marks the session closed; the shared store stays open for other sessions."""
        self._closed = True
