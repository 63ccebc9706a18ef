"""The OpenAI Agents SDK ``Session`` protocol over sessiondb.

``SessiondbSession`` is a drop-in for ``agents.SQLiteSession``::

    from sessiondb.openai_agents import SessiondbSession
    result = await Runner.run(agent, "Hi", session=SessiondbSession("user-42", "sessions.db"))

Items of any shape the SDK produces (messages, function calls and their outputs, reasoning
items, …) are stored as sessiondb messages a person can read (``sessiondb history``), each
keeping the item itself, which is what ``get_items`` returns: items round-trip exactly.
``add_items`` is one transaction; many processes may append to one session at once without
losing an item.

Which calls run on the event loop and which in a worker thread: a call that could wait runs in
a thread (``asyncio.to_thread``), where the core releases the GIL. A call that cannot wait for
a lock runs inline, because handing it to a thread costs more (about 50–200 µs) than the call
itself:

- ``get_items`` first reads the session's version (one primary-key read; in WAL mode a reader
  never waits for a writer). If this session object already holds the history at that version
  it returns copies of its items at once; otherwise it reads in a thread.
- ``add_items`` first tries to write without waiting for the lock (a zero busy timeout). If
  another writer holds it, nothing was written and the write is retried in a thread, where it
  waits as long as the store's ``busy_timeout``. A store opened with ``synchronous="full"``
  waits for the disk at every commit: give such sessions ``inline_writes=False``, and every
  write goes to a thread.
- ``pop_item`` and ``clear_session`` always run in a thread.

Every call yields to the event loop once, so other tasks run between any two calls. An inline
write still does the write itself (tens of microseconds; now and then SQLite's automatic WAL
checkpoint, a few milliseconds of I/O).

Requires ``openai-agents`` (``pip install 'sessiondb[openai-agents]'``).
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from agents.memory.session import SessionABC
from agents.memory.session_settings import (
    SessionSettings,
    coerce_session_settings,
    resolve_session_limit,
)

from . import Busy, NotFound, Store
from ._core import copy_json

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
    return {"role": message["role"], "content": message.get("content")}


class _Window(NamedTuple):
    """The last ``count`` items of the session's working history at ``version``, which has
    ``total`` items. ``items[:count]`` are they; the list only ever grows, so a window stays
    valid while a newer one extends the same list. Never handed out: callers get copies."""

    version: int
    total: int
    items: list[Any]
    count: int

    def serve(self, limit: int | None) -> list[Any] | None:
        """Copies of the latest ``limit`` items (all when ``None``), or ``None`` if this
        window does not reach back that far."""
        want = self.total if limit is None else min(limit, self.total)
        if want > self.count:
            return None
        return copy_json(self.items[self.count - want : self.count])


class SessiondbSession(SessionABC):
    """Conversation history of one ``session_id`` in a sessiondb file.

    Args:
        session_id: The session's id (any text up to 256 bytes, no control characters).
        db_path: The database file; ``None`` is sessiondb's default file
            (``$SESSIONDB_PATH``, else ``sessions.db`` in the user's data directory).
        session_settings: Default ``limit`` of :meth:`get_items`, as for ``SQLiteSession``.
        store: Use this :class:`sessiondb.Store` instead of opening ``db_path``.
        inline_writes: Try each write on the event loop without waiting for the lock, before
            handing it to a thread (see the module's documentation). ``False`` always uses a
            thread.
    """

    session_settings: SessionSettings | None = None

    def __init__(
        self,
        session_id: str,
        db_path: str | Path | None = None,
        session_settings: SessionSettings | dict[str, Any] | None = None,
        *,
        store: Store | None = None,
        inline_writes: bool = True,
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
        self._inline_writes = inline_writes
        self._window: _Window | None = None
        self._window_lock = threading.Lock()

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

        try:
            version: int | None = self._store.version(self.session_id, wait=False)
        except NotFound:
            await asyncio.sleep(0)
            return []
        except Busy:
            version = None
        window = self._window
        if window is not None and window.version == version:
            items = window.serve(session_limit)
            if items is not None:
                await asyncio.sleep(0)
                return items

        def read() -> _Window | None:
            try:
                version, items, total = self._store.openai_items(self.session_id, session_limit)
            except NotFound:
                return None
            return _Window(version, total, items, len(items))

        window = await asyncio.to_thread(read)
        if window is None:
            return []
        self._window = window
        return copy_json(window.items)

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Appends ``items`` in one transaction: all of them or none."""
        self._check_not_closed()
        if not items:
            return
        batch = list(items)
        stored = None
        if self._inline_writes:
            try:
                stored = self._store.add_openai_items(self.session_id, batch, wait=False)
            except Busy:
                pass
            else:
                await asyncio.sleep(0)
        if stored is None:
            stored = await asyncio.to_thread(self._store.add_openai_items, self.session_id, batch)
        self._extend_window(*stored)

    def _extend_window(self, version: int, stored: list[Any]) -> None:
        """After our own append: if nothing else changed the session since the window was
        read (its version moved by exactly our one write), the window grows by what we
        stored; otherwise the next read goes to the file."""
        with self._window_lock:
            window = self._window
            if window is None or window.version + 1 != version:
                self._window = None
                return
            if len(window.items) != window.count:
                # Another window already grew this list: start a list of our own.
                items = window.items[: window.count]
            else:
                items = window.items
            items.extend(stored)
            self._window = _Window(version, window.total + len(stored), items, len(items))

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
