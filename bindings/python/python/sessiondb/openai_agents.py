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

- ``get_items`` first asks the store's history cache, which every session of the process
  shares: one primary-key read of the session's version (in WAL mode a reader never waits
  for a writer). If the cache holds the history at that version, or an earlier one it only
  grew from (then just the appended items are read), the items come from it at once;
  otherwise (a first read, a history replaced elsewhere) it reads in a thread.
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
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from agents import _debug
from agents.memory.session import SessionABC, _CompactionSnapshot
from agents.memory.session_settings import (
    SessionSettings,
    coerce_session_settings,
    resolve_session_limit,
)

from . import AlreadyExists, Busy, Conflict, InvalidInput, NotFound, Store
from ._adapters import settled as _settled, shared_store
from ._core import openai_message

if TYPE_CHECKING:
    from agents.items import TResponseInputItem
    from agents.run_context import RunContextWrapper

__all__ = ["SessiondbSession", "AdvancedSessiondbSession", "shared_store"]

# The item a compaction made through the SDK puts in place of the items it replaced (the
# summary of a sessiondb compaction): it holds no item of the conversation, so it is never
# returned. It can only be the first item of the working history.
_COMPACTED = "sessiondb.compacted"


def _is_marker(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") == _COMPACTED


def _is_marker_summary(compactions: list[dict[str, Any]]) -> bool:
    """Whether the compaction in effect (the last of ``compactions``) has a marker of
    ``_marker`` as its summary, rather than a summary written through another API."""
    if not compactions:
        return False
    metadata = compactions[-1]["summary"].get("metadata") or {}
    return _is_marker(metadata.get("openai_item"))


def _marker(replaced: int) -> dict[str, Any]:
    return {
        "role": "system",
        "content": f"{replaced} items were replaced by the items after this one "
        "(an OpenAI Responses compaction); the full history keeps them.",
        "metadata": {"openai_item": {"type": _COMPACTED}},
    }


def _visible(items: list[Any], from_start: bool, limit: int | None) -> list[Any]:
    """The latest ``limit`` items (all when ``None``) of the last ``len(items)`` items of a
    working history (all of it when ``from_start``), without a compaction marker."""
    if from_start and items and _is_marker(items[0]):
        items = items[1:]
    if limit is not None and limit < len(items):
        items = items[len(items) - limit :]
    return items


def _new_message(message: dict[str, Any]) -> dict[str, Any]:
    """A stored message as the message to write again (``set_chat_history`` keeps it)."""
    return {k: v for k, v in message.items() if k not in ("index", "created_at")}


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

    @property
    def store(self) -> Store:
        """The underlying :class:`sessiondb.Store`."""
        return self._store

    def _check_not_closed(self) -> None:
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")

    async def get_items(
        self, limit: int | None = None, *, wrapper: RunContextWrapper[Any] | None = None
    ) -> list[TResponseInputItem]:
        """The history, oldest first: the latest ``limit`` items (``session_settings.limit``
        when ``None``; everything when that is ``None`` too; a negative limit is everything,
        as ``SQLiteSession``'s ``LIMIT -1``). ``wrapper``, the run's context, which the SDK
        passes to sessions that accept it, changes nothing here."""
        session_limit = resolve_session_limit(limit, self.session_settings)
        if session_limit is not None and session_limit < 0:
            session_limit = None  # SQLiteSession's LIMIT -1: everything
        if session_limit == 0:
            return []

        # One item more than asked tells a compaction marker at the start from an item.
        want = None if session_limit is None else session_limit + 1
        try:
            got = self._store.cached_openai_items(self.session_id, want)
        except NotFound:
            await asyncio.sleep(0)
            return []
        except Busy:
            got = None
        if got is not None:
            await asyncio.sleep(0)
        else:

            def read() -> tuple[int, list[Any], int] | None:
                try:
                    return self._store.openai_items(self.session_id, want)
                except NotFound:
                    return None

            got = await asyncio.to_thread(read)
            if got is None:
                return []
        _, items, total = got
        return _visible(items, len(items) == total, session_limit)

    async def add_items(
        self,
        items: list[TResponseInputItem],
        *,
        wrapper: RunContextWrapper[Any] | None = None,
    ) -> None:
        """Appends ``items`` in one transaction: all of them or none. Cancelled while the
        write runs in a thread, it still waits for the write's outcome, then raises the
        cancellation (the items are stored if the write committed)."""
        self._check_not_closed()
        if not items:
            return
        batch = list(items)
        if self._inline_writes:
            try:
                self._store.add_openai_items(self.session_id, batch, wait=False)
            except Busy:
                pass
            else:
                await asyncio.sleep(0)
                return
        await _settled(self._store.add_openai_items, self.session_id, batch)

    async def pop_item(
        self, *, wrapper: RunContextWrapper[Any] | None = None
    ) -> TResponseInputItem | None:
        """Removes and returns the most recent item (``None`` when empty). The removed item
        stays readable in a superseded branch of the session. Cancelled meanwhile, it
        waits for the outcome and then raises the cancellation. When only a compaction's
        summary is left, there is nothing to pop (popping a compacted message would bring
        the compacted history back)."""

        def pop() -> Any:
            try:
                _, _, total = self._store.openai_items(self.session_id, 0)
                if total == 0 or (total == 1 and self._store.compactions(self.session_id)):
                    return None
                return self._store.pop_openai_item(self.session_id)
            except NotFound:
                return None

        return await _settled(pop)

    async def _pop_item_with_validation(
        self, validate: Callable[[TResponseInputItem], None] | None = None
    ) -> TResponseInputItem | None:
        """:meth:`pop_item`, removing the item only if ``validate(item)`` returns: if it
        raises, nothing is written and the exception propagates. ``EncryptedSession`` pops
        this way (it authenticates the envelope before it is removed), so a wrong key never
        removes a readable item.

        The check and the removal cannot share one transaction here: the history is read
        with its version, ``validate`` runs in the worker thread, and the removal is a
        ``set_chat_history`` of the history without its last item at that version, retried
        from the read if another writer changed the session in between. It costs a read
        and a compare of the whole history (``pop_item`` costs neither)."""

        def pop() -> Any:
            while True:
                try:
                    version, last, total = self._store.openai_items(self.session_id, 1)
                    compactions = self._store.compactions(self.session_id)
                except NotFound:
                    return None
                # Nothing, or only a compaction's summary: nothing to pop.
                if total == 0 or (total == 1 and compactions):
                    return None
                item = last[0]
                if validate is not None:
                    validate(item)
                try:
                    full = self._store.full_history(self.session_id)
                except NotFound:
                    return None
                kept = [_new_message(m) for m in full[:-1]]
                try:
                    self._store.set_chat_history(self.session_id, kept, expected_version=version)
                except Conflict:
                    continue
                except NotFound:
                    return None
                return item

        return await _settled(pop)

    async def clear_session(self, *, wrapper: RunContextWrapper[Any] | None = None) -> None:
        """Empties the history (the old one stays readable as a superseded branch until
        ``prune``). Cancelled meanwhile, it waits for the outcome, then raises the
        cancellation."""

        def clear() -> None:
            try:
                self._store.clear(self.session_id)
            except NotFound:
                pass

        await _settled(clear)

    # --- the hooks of the SDK's OpenAIResponsesCompactionSession ------------------------

    def _plain(self) -> bool:
        """Whether this class reads and writes items as ``SessiondbSession`` does. A class
        that overrides them (``AdvancedSessiondbSession``'s turns and usage, a subclass
        transforming items) must not have them bypassed by the compaction hooks, as the
        SDK's ``SQLiteSession`` offers its hook to itself only."""
        return all(
            getattr(type(self), name) is getattr(SessiondbSession, name)
            for name in ("get_items", "add_items", "pop_item", "clear_session")
        )

    def _compact_all(self, expected_version: int, output: list[Any]) -> bool:
        """Replaces the whole working history by ``output`` if the session is still at
        ``expected_version``: the output is appended, then everything before it is hidden
        behind a compaction marker (a sessiondb compaction: the full history keeps every
        item). Appending first means a process that dies between the two writes leaves
        the old items and the output visible, never a history without either. Returns
        whether the replacement happened (``False``: the session had changed)."""
        _, _, total = self._store.openai_items(self.session_id, 0)
        compactions = self._store.compactions(self.session_id)
        first = compactions[-1]["through_index"] if compactions else 0
        marked = _is_marker_summary(compactions)
        last_replaced = first + total - 1
        version = expected_version
        if output:
            added = self._store.add_messages(
                self.session_id,
                [openai_message(item) for item in output],
                expected_version=expected_version,
            )
            version = added["version"]
        while True:
            try:
                self._store.compact(
                    self.session_id,
                    _marker(total - (1 if marked else 0)),
                    last_replaced,
                    expected_version=version,
                )
                return True
            except Conflict:
                if not output:
                    return False
                # Another writer came after our output. If the output still follows what
                # it replaces, the same compaction is made at the new version; if the
                # history was replaced meanwhile, the output stays, the old items visible.
                version = self._store.version(self.session_id)
                full = self._store.openai_history(self.session_id, full=True)
                after = [item for _, item, _ in full[last_replaced + 1 : last_replaced + 1 + len(output)]]
                if after != list(output):
                    return True

    async def _get_compaction_snapshot(
        self,
        limit: int,
        *,
        prune_prefix: Callable[[TResponseInputItem], bool] | None = None,
    ) -> _CompactionSnapshot | None:
        """The latest ``limit`` items, with the operation that replaces a suffix of them by
        a compaction's output, for ``OpenAIResponsesCompactionSession``: it replaces only
        what the model saw, and only if the session did not change since this read.

        Replacing from the first item of the working history is a sessiondb compaction:
        :meth:`Store.full_history` keeps every replaced item and the output follows them.
        Replacing a later suffix keeps the items before it: the replaced items stay in a
        superseded branch (as a pop leaves them), and the cut and the output are one
        transaction. A compaction is two writes, the output first: a process that dies
        between them leaves the old items and the output visible. ``prune_prefix`` (expired encrypted items to
        delete) is accepted and ignored: sessiondb deletes nothing here."""
        if not self._plain():
            return None

        def read() -> tuple[int, list[Any], int, list[Any]] | None:
            try:
                version, raw, total = self._store.openai_items(self.session_id, limit + 1)
                compactions = self._store.compactions(self.session_id)
            except NotFound:
                return None
            return version, raw, total, compactions

        got = await asyncio.to_thread(read)
        if got is None:
            return _CompactionSnapshot([], True, self._replace_nothing)
        version, raw, total, compactions = got
        marked = _is_marker_summary(compactions)
        first = compactions[-1]["through_index"] if compactions else 0
        visible_total = total - (1 if marked else 0)
        items = _visible(raw, len(raw) == total, limit)

        async def replace_suffix(start: int, output: list[TResponseInputItem]) -> bool:
            if start >= len(items):
                return False
            position = visible_total - len(items) + start
            batch = list(output)

            def replace() -> bool:
                try:
                    if position == 0:
                        return self._compact_all(version, batch)
                    # One transaction: the kept items, then the output.
                    keep = first + position + (1 if marked else 0)
                    full = self._store.full_history(self.session_id)
                    if prune_prefix is not None:
                        full_items = self._store.openai_history(self.session_id, full=True)
                    kept = [_new_message(m) for m in full[:keep]]
                    kept += [openai_message(item) for item in batch]
                    changed = self._store.set_chat_history(
                        self.session_id, kept, expected_version=version
                    )
                except (Conflict, NotFound):
                    return False
                if prune_prefix is not None and (marked or not compactions):
                    # The items of the history just replaced: its first `keep` are kept.
                    kept_items = [item for _, item, _ in full_items[:keep]]
                    self._hide_expired_prefix(kept_items, first if marked else -1, keep,
                                              prune_prefix, changed["version"])
                return True

            return await _settled(replace)

        return _CompactionSnapshot(list(items), len(items) == visible_total, replace_suffix)

    def _hide_expired_prefix(
        self,
        items: list[Any],
        hidden_through: int,
        end: int,
        expired: Callable[[TResponseInputItem], bool],
        expected_version: int,
    ) -> None:
        """Hides the run of items from the first visible one (after ``hidden_through``) that
        ``expired`` accepts, stopping before ``end``: ``prune_prefix``, which the SDK's own
        stores answer by deleting those rows. Here they go behind a compaction marker, so
        reads skip them and ``full_history`` keeps them. A session changed since the
        replacement keeps them visible (harmless: ``EncryptedSession`` skips expired items)."""
        last = None
        for index in range(hidden_through + 1, end):
            if not expired(items[index]):
                break
            last = index
        if last is None:
            return
        try:
            self._store.compact(
                self.session_id,
                _marker(last - hidden_through),
                last,
                expected_version=expected_version,
            )
        except (Conflict, NotFound):
            pass

    @staticmethod
    async def _replace_nothing(start: int, output: list[TResponseInputItem]) -> bool:
        return False

    async def _atomic_replace_items(self, items: list[TResponseInputItem]) -> bool:
        """Replaces the whole history by ``items`` (``OpenAIResponsesCompactionSession``'s
        manual compaction): a sessiondb compaction, so :meth:`Store.full_history` keeps
        what was replaced. The output is written first, as in :meth:`_compact_all`."""
        if not self._plain():
            return False  # the SDK then clears and adds through the overridden methods
        self._check_not_closed()
        batch = list(items)

        def replace() -> bool:
            while True:
                try:
                    version, _, total = self._store.openai_items(self.session_id, 0)
                except NotFound:
                    total = 0
                if total == 0:
                    if batch:
                        self._store.add_openai_items(self.session_id, batch)
                    return True
                try:
                    if self._compact_all(version, batch):
                        return True
                except Conflict:
                    pass  # changed since the read: read again
                except NotFound:
                    pass

        return await _settled(replace)

    def close(self) -> None:
        """Marks the session closed; the shared store stays open for other sessions."""
        self._closed = True


# --- AdvancedSessiondbSession ---------------------------------------------------------------

_MAIN = "main"
# Session metadata key of the advanced session for a branch name once used (one key each, so
# concurrent writers never overwrite each other's entries); its value is the index of the
# branch's first own item (``True`` in files from before: 0).
_USED_BRANCH = "openai_agents.branch_used:"
# Item types that count as a tool use in get_tool_usage.
_TOOL_CALL_TYPES = frozenset(
    {
        "tool_call",
        "function_call",
        "computer_call",
        "file_search_call",
        "web_search_call",
        "code_interpreter_call",
        "tool_search_call",
        "custom_tool_call",
        "mcp_call",
        "mcp_approval_request",
        "shell_call",
        "apply_patch_call",
    }
)
# Hosted tools whose items carry no name: the type names the tool.
_TYPE_NAMED_TOOLS = frozenset(
    {
        "computer_call",
        "file_search_call",
        "web_search_call",
        "code_interpreter_call",
        "shell_call",
        "apply_patch_call",
    }
)


def _sql_time(text: str) -> str:
    """sessiondb's RFC 3339 UTC time as SQLite's ``CURRENT_TIMESTAMP`` prints it (what
    ``AdvancedSQLiteSession`` returns)."""
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S")


def _preview(content: Any, max_length: int | None = None) -> str:
    import json

    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    if max_length is not None and len(text) > max_length:
        return text[:max_length] + "..."
    return text


def _is_user(item: Any) -> bool:
    return isinstance(item, dict) and item.get("role") == "user"


def _item_type(item: Any) -> str:
    """``user``, ``assistant``, else the item's ``type`` (``function_call``, ``reasoning``,
    …), else ``other``."""
    if isinstance(item, dict):
        role = item.get("role")
        if role in ("user", "assistant"):
            return role
        if item.get("type"):
            return str(item["type"])
    return "other"


def _tool_name(item: Any) -> str | None:
    """The tool an item calls or answers: ``server.tool`` for MCP, the type for hosted tools
    without a name, ``tool_search`` for tool search, else the (namespaced) ``name``."""
    if not isinstance(item, dict):
        return None
    kind = item.get("type")
    if kind in ("mcp_call", "mcp_approval_request") and "server_label" in item:
        server, name = item.get("server_label"), item.get("name")
        if server and name:
            return f"{server}.{name}"
        return str(server) if server else (str(name) if name else None)
    if kind in ("tool_search_call", "tool_search_output"):
        return "tool_search"
    if kind in _TYPE_NAMED_TOOLS:
        return kind
    if "name" in item:
        name = item.get("name")
        if name is None:
            return None
        from agents._tool_identity import (
            is_reserved_synthetic_tool_namespace,
            tool_qualified_name,
        )

        namespace = item.get("namespace")
        namespace = str(namespace) if namespace is not None else None
        if is_reserved_synthetic_tool_namespace(str(name), namespace):
            return str(name)
        return tool_qualified_name(str(name), namespace) or str(name)
    return None


class _Turned(NamedTuple):
    """A stored item with its turn (the number of user items up to and including it) and its
    message's index."""

    turn: int
    item: Any
    created_at: str
    index: int


def _with_turns(history: list[tuple[int, Any, str]]) -> list[_Turned]:
    out, turn = [], 0
    for index, item, created_at in history:
        if _is_user(item):
            turn += 1
        out.append(_Turned(turn, item, created_at, index))
    return out


class AdvancedSessiondbSession(SessiondbSession):
    """``agents.extensions.memory.AdvancedSQLiteSession``'s API over sessiondb: branches from
    user turns, turn browsing and search, tool and token usage per turn and per session.

    A branch is a sessiondb branch of the session: creating one copies no message, whatever
    the history's length. The current branch is the session's head branch, kept in the file,
    so every instance and process on the session sees a switch (``AdvancedSQLiteSession``
    keeps it per instance). Turn ``n`` of a branch is its ``n``-th user item together with
    the items after it; a branch made from turn ``n`` holds the items before it.

    Usage (``store_run_usage``) is recorded in sessiondb against the turn's user item
    (``Store.recorded_usage`` reads it): it stays with that item, so popping the item or
    clearing the session drops it, and a branch counts only the turns after its start.

    Args:
        session_id: The session's id.
        db_path: The database file (sessiondb's default file when ``None``).
        create_tables: Accepted for compatibility; sessiondb's schema always exists.
        logger: Where failures of ``store_run_usage`` are logged.
        session_settings: Default ``limit`` of :meth:`get_items`.
        store: Use this :class:`sessiondb.Store` instead of opening ``db_path``.
    """

    def __init__(
        self,
        *,
        session_id: str,
        db_path: str | Path | None = None,
        create_tables: bool = False,
        logger: Any = None,
        session_settings: SessionSettings | dict[str, Any] | None = None,
        store: Store | None = None,
        inline_writes: bool = True,
    ) -> None:
        import logging

        super().__init__(
            session_id,
            db_path,
            session_settings,
            store=store,
            inline_writes=inline_writes,
        )
        self._logger = logger if logger is not None else logging.getLogger(__name__)

    # --- reading branches ---------------------------------------------------------------

    def _head(self) -> str:
        try:
            return self._store.session(self.session_id)["head_branch"]
        except NotFound:
            return _MAIN

    def _live_branches(self) -> list[dict[str, Any]]:
        try:
            branches = self._store.branches(self.session_id)
        except NotFound:
            return []
        return [b for b in branches if b.get("superseded_at") is None]

    def _turned(self, branch_id: str | None) -> list[_Turned]:
        """The items of ``branch_id`` (the current branch's working history when ``None``)
        with their turns; empty for an unknown branch or session."""
        try:
            if branch_id is None or branch_id == self._head():
                history = self._store.openai_history(self.session_id)
            else:
                history = self._store.openai_history(self.session_id, branch=branch_id)
        except NotFound:
            return []
        return _with_turns(history)

    async def get_items(
        self,
        limit: int | None = None,
        branch_id: str | None = None,
        *,
        wrapper: RunContextWrapper[Any] | None = None,
    ) -> list[TResponseInputItem]:
        """The latest ``limit`` items of ``branch_id`` (the current branch when ``None``;
        ``session_settings.limit`` when ``limit`` is ``None``)."""
        if branch_id is None:
            return await super().get_items(limit)
        session_limit = resolve_session_limit(limit, self.session_settings)

        def read() -> list[Any]:
            items = [t.item for t in self._turned(branch_id)]
            if session_limit is not None and session_limit >= 0:
                items = items[len(items) - session_limit :] if session_limit else []
            return items

        return await asyncio.to_thread(read)

    async def list_branches(self) -> list[dict[str, Any]]:
        """Branches holding at least one item, oldest first: ``branch_id``,
        ``message_count``, ``user_turns``, ``is_current``, ``created_at``."""

        def read() -> list[dict[str, Any]]:
            out = []
            for b in self._live_branches():
                if b["length"] == 0:
                    continue
                turned = self._turned(b["name"])
                out.append(
                    {
                        "branch_id": b["name"],
                        "message_count": len(turned),
                        "user_turns": sum(1 for t in turned if _is_user(t.item)),
                        "is_current": bool(b["is_head"]),
                        "created_at": _sql_time(b["created_at"]),
                    }
                )
            return out

        return await asyncio.to_thread(read)

    async def get_conversation_turns(self, branch_id: str | None = None) -> list[dict[str, Any]]:
        """The user turns of the branch: ``turn``, ``content`` (first 100 characters),
        ``full_content``, ``timestamp``, ``can_branch`` (always ``True``)."""

        def read() -> list[dict[str, Any]]:
            return [
                self._turn_info(t, 100)
                for t in self._turned(branch_id)
                if _is_user(t.item)
            ]

        return await asyncio.to_thread(read)

    @staticmethod
    def _turn_info(t: _Turned, preview: int | None) -> dict[str, Any]:
        content = t.item.get("content", "")
        return {
            "turn": t.turn,
            "content": _preview(content, preview),
            "full_content": content,
            "timestamp": _sql_time(t.created_at),
            "can_branch": True,
        }

    async def find_turns_by_content(
        self, search_term: str, branch_id: str | None = None
    ) -> list[dict[str, Any]]:
        """User turns whose text contains ``search_term`` (ASCII letters match either
        case), in the shape of :meth:`get_conversation_turns` with the whole content."""
        import re

        pattern = re.compile(re.escape(search_term), re.IGNORECASE | re.ASCII)

        def texts(content: Any) -> list[str]:
            if isinstance(content, str):
                return [content]
            if isinstance(content, list):
                return [p.get("text", "") for p in content if isinstance(p, dict)]
            return []

        def read() -> list[dict[str, Any]]:
            return [
                self._turn_info(t, None)
                for t in self._turned(branch_id)
                if _is_user(t.item)
                and any(pattern.search(x or "") for x in texts(t.item.get("content", "")))
            ]

        return await asyncio.to_thread(read)

    async def get_conversation_by_turns(
        self, branch_id: str | None = None
    ) -> dict[int, list[dict[str, str | None]]]:
        """Each turn's items in order, as ``{"type", "tool_name"}``."""

        def read() -> dict[int, list[dict[str, str | None]]]:
            turns: dict[int, list[dict[str, str | None]]] = {}
            for t in self._turned(branch_id):
                turns.setdefault(t.turn, []).append(
                    {"type": _item_type(t.item), "tool_name": _tool_name(t.item)}
                )
            return turns

        return await asyncio.to_thread(read)

    async def get_tool_usage(self, branch_id: str | None = None) -> list[tuple[str, int, int]]:
        """``(tool_name, uses, turn)`` per tool and turn, by turn then tool name. A tool
        search output counts only when its turn has no tool search call."""

        def read() -> list[tuple[str, int, int]]:
            counts: dict[tuple[int, str | None], int] = {}
            turned = self._turned(branch_id)
            searched = {
                t.turn for t in turned if _item_type(t.item) == "tool_search_call"
            }
            for t in turned:
                kind = _item_type(t.item)
                if kind in _TOOL_CALL_TYPES:
                    name = _tool_name(t.item)
                    if name is None and kind in ("shell_call", "apply_patch_call"):
                        name = kind
                elif kind == "tool_search_output" and t.turn not in searched:
                    name = _tool_name(t.item)
                else:
                    continue
                counts[(t.turn, name)] = counts.get((t.turn, name), 0) + 1
            order = sorted(counts, key=lambda k: (k[0], "" if k[1] is None else k[1]))
            return [(name, counts[(turn, name)], turn) for turn, name in order]  # type: ignore[misc]

        return await asyncio.to_thread(read)

    # --- changing branches --------------------------------------------------------------

    def _used(self, name: str) -> bool:
        if any(b["name"] == name for b in self._live_branches()):
            return True
        try:
            metadata = self._store.session(self.session_id)["metadata"]
        except NotFound:
            return False
        return (_USED_BRANCH + name) in metadata

    async def create_branch_from_turn(
        self, turn_number: int, branch_name: str | None = None
    ) -> str:
        """Creates a branch holding the current branch's items before user turn
        ``turn_number``, and makes it current. Returns its name (generated when ``None``:
        ``branch_from_turn_<n>_<unix time>``). A name once used in the session, even by a
        deleted branch, cannot be used again.

        Raises:
            ValueError: The turn has no user item, or the name is blank or used.
        """
        if branch_name is not None and not branch_name.strip():
            raise ValueError("Branch name cannot be empty")
        self._check_not_closed()

        def create() -> tuple[str, str, str]:
            import time

            source = self._head()
            turned = self._turned(None)
            at = next(
                (i for i, t in enumerate(turned) if _is_user(t.item) and t.turn == turn_number),
                None,
            )
            if at is None:
                raise ValueError(
                    f"Turn {turn_number} does not contain a user message in branch '{source}'"
                )
            if branch_name is not None:
                if self._used(branch_name):
                    raise ValueError(
                        f"Branch ID '{branch_name}' has already been used. Choose a new branch ID."
                    )
                name = branch_name
            else:
                base = f"branch_from_turn_{turn_number}_{int(time.time())}"
                name, suffix = base, 1
                while self._used(name):
                    suffix += 1
                    name = f"{base}_{suffix}"
            # The branch holds the messages before the turn's user item.
            start = turned[at].index
            try:
                self._store.create_branch(self.session_id, name, max(start - 1, 0))
            except InvalidInput as exc:
                raise ValueError(str(exc)) from exc
            except AlreadyExists as exc:
                raise ValueError(
                    f"Branch ID '{name}' has already been used. Choose a new branch ID."
                ) from exc
            self._store.update_metadata(self.session_id, {_USED_BRANCH + name: start})
            self._store.switch_branch(self.session_id, name)
            if at == 0:
                # A branch before the first turn is empty (the core's branches start from a
                # message): empty it; what it held stays as a superseded branch.
                self._store.clear(self.session_id)
            item = turned[at].item
            text = item.get("content") if isinstance(item, dict) else item
            return name, source, _preview(text, 50)

        name, source, content = await asyncio.to_thread(create)
        # As upstream logs it: the turn's text only where the SDK may log model data.
        if _debug.DONT_LOG_MODEL_DATA:
            self._logger.debug(
                "Created branch '%s' from turn %s in '%s'", name, turn_number, source
            )
        else:
            self._logger.debug(
                "Created branch '%s' from turn %s ('%s') in '%s'",
                name,
                turn_number,
                content,
                source,
            )
        return name

    async def create_branch_from_content(
        self, search_term: str, branch_name: str | None = None
    ) -> str:
        """:meth:`create_branch_from_turn` from the first user turn containing
        ``search_term``.

        Raises:
            ValueError: No user turn contains it, or the name is blank or used.
        """
        matches = await self.find_turns_by_content(search_term)
        if not matches:
            raise ValueError(f"No user turns found containing '{search_term}'")
        return await self.create_branch_from_turn(matches[0]["turn"], branch_name)

    async def switch_to_branch(self, branch_id: str) -> None:
        """Makes ``branch_id`` the current branch.

        Raises:
            ValueError: The session has no branch of that name holding an item.
        """

        def switch() -> None:
            if not any(
                b["name"] == branch_id and b["length"] > 0 for b in self._live_branches()
            ):
                raise ValueError(f"Branch '{branch_id}' does not exist")
            self._store.switch_branch(self.session_id, branch_id)

        await asyncio.to_thread(switch)

    async def delete_branch(self, branch_id: str, force: bool = False) -> None:
        """Deletes a branch and its usage. Its name stays used. Its items stay readable
        through sessiondb as a superseded branch until ``prune``.

        Raises:
            ValueError: The name is blank or ``main``, the branch does not exist, or it is
                the current branch and ``force`` is false (with ``force`` the session
                switches to ``main`` first).
        """
        if not branch_id or not branch_id.strip():
            raise ValueError("Branch ID cannot be empty")
        if branch_id == _MAIN:
            raise ValueError("Cannot delete the 'main' branch")

        def delete() -> None:
            live = self._live_branches()
            if not any(b["name"] == branch_id and b["length"] > 0 for b in live):
                raise ValueError(f"Branch '{branch_id}' does not exist")
            if any(b["name"] == branch_id and b["is_head"] for b in live):
                if not force:
                    raise ValueError(
                        f"Cannot delete current branch '{branch_id}'. Use force=True or switch branches first"  # noqa: E501
                    )
                self._store.switch_branch(self.session_id, _MAIN)
            self._store.delete_branch(self.session_id, branch_id)

        await asyncio.to_thread(delete)

    async def pop_item(
        self, *, wrapper: RunContextWrapper[Any] | None = None
    ) -> TResponseInputItem | None:
        """Removes and returns the current branch's last item; removing a turn's user item
        removes that turn's usage too (the usage is recorded against that item). Cancelled
        meanwhile, it waits for the outcome and then raises the cancellation."""

        def pop() -> Any:
            try:
                return self._store.pop_openai_item(self.session_id)
            except NotFound:
                return None

        return await _settled(pop)

    async def clear_session(self, *, wrapper: RunContextWrapper[Any] | None = None) -> None:
        """Empties every branch (deleting all but ``main``), drops all usage, and makes
        ``main`` current. Branch names stay used. Cancelled meanwhile, it waits for the
        outcome and then raises the cancellation."""

        def clear() -> None:
            live = self._live_branches()
            if not live:
                return
            if not any(b["name"] == _MAIN and b["is_head"] for b in live):
                if any(b["name"] == _MAIN for b in live):
                    self._store.switch_branch(self.session_id, _MAIN)
                else:
                    head = next(b["name"] for b in live if b["is_head"])
                    self._store.rename_branch(self.session_id, head, _MAIN)
            for b in live:
                if b["name"] != _MAIN and not b["is_head"] or (
                    b["name"] != _MAIN and b["is_head"] and any(x["name"] == _MAIN for x in live)
                ):
                    self._store.delete_branch(self.session_id, b["name"])
            self._store.clear(self.session_id)

        await _settled(clear)

    # --- usage --------------------------------------------------------------------------

    def _start(self, branch: str) -> int:
        """Index of ``branch``'s first own item: usage recorded against an earlier item it
        shares with the branch it came from is not this branch's (as upstream, where a
        branch starts without the usage of the turns it copied)."""
        try:
            metadata = self._store.session(self.session_id)["metadata"]
        except NotFound:
            return 0
        start = metadata.get(_USED_BRANCH + branch)
        return start if isinstance(start, int) and not isinstance(start, bool) else 0

    def _usage(self, branch: str) -> dict[int, dict[str, Any]]:
        """The usage of ``branch``'s turns, by turn number: the core's usage records against
        the branch's user items, from its first own item on."""
        try:
            records = self._store.recorded_usage(self.session_id, branch)
        except NotFound:
            return {}
        start = self._start(branch)
        turns = {t.index: t.turn for t in self._turned(branch) if _is_user(t.item)}
        out = {}
        for r in records:
            if r["index"] >= start and r["index"] in turns:
                details = r.get("details") or {}
                out[turns[r["index"]]] = {
                    "requests": r["requests"],
                    "input_tokens": r["input_tokens"],
                    "output_tokens": r["output_tokens"],
                    "total_tokens": r["total_tokens"],
                    "input_tokens_details": details.get("input_tokens_details"),
                    "output_tokens_details": details.get("output_tokens_details"),
                }
        return out

    async def store_run_usage(self, result: Any) -> None:
        """Records ``result``'s token usage against the current branch's latest turn
        (replacing what that turn had). Nothing is recorded while the branch has no turn.
        Failures are logged, not raised."""
        try:
            usage = result.context_wrapper.usage
            if usage is None:
                return

            def details(value: Any) -> Any:
                return dict(vars(value)) if value else None

            record = {
                "requests": usage.requests or 0,
                "input_tokens": usage.input_tokens or 0,
                "output_tokens": usage.output_tokens or 0,
                "total_tokens": usage.total_tokens or 0,
                "details": {
                    "input_tokens_details": details(getattr(usage, "input_tokens_details", None)),
                    "output_tokens_details": details(
                        getattr(usage, "output_tokens_details", None)
                    ),
                },
            }

            def store() -> None:
                branch = self._head()
                users = [t for t in self._turned(None) if _is_user(t.item)]
                if not users:
                    return
                if users[-1].index < self._start(branch):
                    # The turn's item is shared with the branch this one came from: a record
                    # against it would be that branch's too.
                    self._logger.debug(
                        "No usage recorded: turn %s of branch %s precedes the branch",
                        users[-1].turn,
                        branch,
                    )
                    return
                self._store.record_usage(self.session_id, users[-1].index, record)

            await asyncio.to_thread(store)
        except Exception:
            self._logger.exception("Failed to store session usage for %s", self.session_id)

    async def get_session_usage(self, branch_id: str | None = None) -> dict[str, int] | None:
        """Usage summed over the turns of ``branch_id`` (of every branch when ``None``):
        ``requests``, ``input_tokens``, ``output_tokens``, ``total_tokens``,
        ``total_turns``; ``None`` when nothing was recorded."""

        def read() -> dict[str, int] | None:
            names = [branch_id] if branch_id else [b["name"] for b in self._live_branches()]
            rows = [u for name in names for u in self._usage(name).values()]
            if not rows:
                return None
            total = {k: sum(u[k] for u in rows) for k in ("requests", "input_tokens", "output_tokens", "total_tokens")}
            total["total_turns"] = len(rows)
            return total

        return await asyncio.to_thread(read)

    async def get_turn_usage(
        self, user_turn_number: int | None = None, branch_id: str | None = None
    ) -> list[dict[str, Any]] | dict[str, Any]:
        """The usage of one turn of the branch (current when ``None``; ``{}`` if none was
        recorded), or of every turn in order (with ``user_turn_number``)."""

        def read() -> list[dict[str, Any]] | dict[str, Any]:
            branch = branch_id if branch_id is not None else self._head()
            mine = self._usage(branch)
            if user_turn_number is not None:
                return mine.get(user_turn_number, {})
            return [{"user_turn_number": t, **mine[t]} for t in sorted(mine)]

        return await asyncio.to_thread(read)
