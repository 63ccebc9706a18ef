"""Type stubs of sessiondb's compiled module (see ``sessiondb.Store``)."""

from __future__ import annotations

import os
from typing import Any, Literal, Optional, Sequence, TypedDict

SCHEMA_VERSION: int
MAX_CONTENT_BYTES: int
MAX_SESSION_ID_BYTES: int
MAX_NESTING: int
"""Deepest nesting of dicts and lists accepted in a value (deeper, or a cycle: InvalidInput)."""
SQLITE_VERSION: str
SQLITE_SHARED_WITH_PYTHON: bool
"""Whether Python's ``sqlite3`` module calls the same SQLite library as sessiondb."""

class _MessageRequired(TypedDict):
    index: int
    role: Literal["system", "developer", "user", "assistant", "tool"]
    created_at: str

class Message(_MessageRequired, total=False):
    """A stored message, shaped like ``sessiondb history --json`` prints it."""

    content: str | list[Any] | None
    tool_calls: list[Any]
    tool_call_id: str
    metadata: dict[str, Any]
    model: str
    input_tokens: int
    output_tokens: int
    cost: float
    key: str

Json = dict[str, Any]

class Store:
    """A sessiondb file. Share one between threads; after ``os.fork()`` the child lets go of
    the parent's connections and opens the file afresh on its first call (``os.fork`` waits
    for calls in flight in other threads). Every call releases the GIL; errors are
    ``sessiondb.Error`` subclasses. A context manager: ``with Store(p) as s:`` closes it."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        busy_timeout: float = 10.0,
        synchronous: Literal["normal", "full"] = "normal",
        cache_entries: int = 1024,
        cache_bytes: int = 64 * 1024 * 1024,
        pool_size: int = 8,
        read_only: bool = False,
        create: bool = True,
        shared: bool = False,
        separate_sqlite_ok: bool = False,
    ) -> None: ...
    @property
    def path(self) -> str: ...
    def close(self) -> None:
        """Closes the connections; later calls raise ``sessiondb.Closed``."""
    @property
    def closed(self) -> bool: ...
    def __enter__(self) -> Store: ...
    def __exit__(self, *exc: object) -> bool: ...
    # messages
    def add_message(self, session_id: str, message: Json, *, expected_version: Optional[int] = None) -> Message: ...
    def add_user_message(self, session_id: str, content: str) -> Message: ...
    def add_assistant_message(self, session_id: str, content: str) -> Message: ...
    def add_messages(
        self,
        session_id: str,
        messages: Sequence[Json],
        *,
        expected_version: Optional[int] = None,
        keys: Literal["batch", "each"] = "batch",
        metadata: Optional[Json] = None,
        new_session: Optional[Json] = None,
    ) -> Json:
        """``{"messages": [...], "written": [bool, ...], "already_stored": bool, "version": int}``.

        ``keys="batch"``: a batch whose keys are all stored writes nothing; partly stored is
        ``KeysPartlyStored``. ``keys="each"``: the messages whose keys are stored are skipped
        and the others appended, in order (``written`` says which). ``metadata`` is merged
        into the session's metadata in the same transaction, when anything is written.
        ``new_session`` (``title``, ``agent_name``, ``agent_id``, ``user_id``, ``metadata``,
        each optional) creates the session in the same transaction: it must not exist
        (``AlreadyExists``), and a refused batch leaves none behind."""
    def find_keys(self, session_id: str, keys: Sequence[str]) -> Json:
        """``{"version": int, "indices": [int | None, ...]}``: where each key is in the
        session's current history (``NotFound`` for a missing session)."""
    def add_openai_items(
        self, session_id: str, items: Sequence[Any], *, wait: bool = True
    ) -> tuple[Optional[int], list[Any]]:
        """``(version afterwards, the items as they read back)``; ``(None, [])`` for no items.
        With ``wait=False`` a lock held by another writer raises ``Busy`` at once."""
    def openai_items(self, session_id: str, limit: Optional[int] = None) -> tuple[int, list[Any], int]:
        """``(version, the latest limit items, length of the working history)``"""
    def cached_openai_items(
        self, session_id: str, limit: Optional[int] = None
    ) -> Optional[tuple[int, list[Any], int]]:
        """``openai_items`` answered by this process's history cache (one primary-key read,
        plus the items appended since the cached version); ``None`` otherwise."""
    def openai_history(
        self, session_id: str, *, branch: Optional[str] = None, full: bool = False
    ) -> list[tuple[int, Any, str]]:
        """``[(index, item, created_at), ...]`` of the working history, of branch ``branch``,
        or of the full history (``full=True``)."""
    def pop_openai_item(self, session_id: str) -> Any:
        """Removes the last message; returns its item (``None`` when the history is empty)."""
    def pop_message(self, session_id: str) -> Optional[Message]: ...
    def chat_history(
        self, session_id: str, max_messages: Optional[int] = None, *, cached: bool = True, whole_turns: bool = True
    ) -> list[Message]: ...
    def chat_history_versioned(self, session_id: str, max_messages: Optional[int] = None) -> tuple[list[Message], int, int]: ...
    def messages_before(self, session_id: str, index: int, limit: int) -> list[Message]: ...
    def messages_after(self, session_id: str, index: int, limit: int) -> list[Message]: ...
    def set_chat_history(self, session_id: str, messages: Sequence[Json], *, expected_version: Optional[int] = None) -> Json:
        """``{"version", "kept", "written", "superseded"}``"""
    def compact(self, session_id: str, summary: Json, through_index: int, *, expected_version: Optional[int] = None) -> Json: ...
    def full_history(self, session_id: str) -> list[Message]: ...
    def record_usage(self, session_id: str, index: int, usage: Json) -> None:
        """Records ``{"requests", "input_tokens", "output_tokens", "total_tokens", "details"}``
        against message ``index`` of the current history, replacing what was there."""
    def recorded_usage(self, session_id: str, branch: Optional[str] = None) -> list[Json]:
        """``[{"index", "requests", "input_tokens", "output_tokens", "total_tokens",
        "details", "recorded_at"}, ...]`` of the current history or of ``branch``."""
    def compactions(self, session_id: str) -> list[Json]: ...
    # sessions
    def create_session(
        self,
        session_id: Optional[str] = None,
        *,
        title: Optional[str] = None,
        agent_name: Optional[str] = None,
        agent_id: Optional[str] = None,
        user_id: Optional[str] = None,
        metadata: Optional[Json] = None,
    ) -> Json: ...
    def session(self, session_id: str) -> Json: ...
    def session_exists(self, session_id: str) -> bool: ...
    def version(self, session_id: str, *, wait: bool = True) -> int: ...
    def list_sessions(self, *, agent_name: Optional[str] = None, user_id: Optional[str] = None, title_contains: Optional[str] = None, limit: Optional[int] = None) -> list[Json]: ...
    def update_metadata(self, session_id: str, patch: Json) -> Json: ...
    def update_session(self, session_id: str, **fields: Any) -> Json: ...
    def set_title(self, session_id: str, title: Optional[str]) -> Json: ...
    def clear(self, session_id: str) -> Json: ...
    def delete_session(self, session_id: str) -> None: ...
    # forks, branches, snapshots
    def fork_session(self, source: str, at_index: Optional[int] = None, title: Optional[str] = None) -> Json: ...
    def parent_session(self, session_id: str) -> Optional[str]: ...
    def child_sessions(self, session_id: str) -> list[Json]: ...
    def session_tree(self, session_id: str) -> Json: ...
    def create_branch(self, session_id: str, name: str, at_index: Optional[int] = None) -> Json: ...
    def switch_branch(self, session_id: str, name: str) -> Json: ...
    def branch_history(self, session_id: str, name: str) -> list[Message]: ...
    def branches(self, session_id: str) -> list[Json]: ...
    def rename_branch(self, session_id: str, name: str, new_name: str) -> Json: ...
    def delete_branch(self, session_id: str, name: str) -> Json: ...
    def revert_to_message(self, session_id: str, index: int) -> Json: ...
    def create_snapshot(self, session_id: str, label: Optional[str] = None, metadata: Optional[Json] = None) -> Json: ...
    def snapshots(self, session_id: str) -> list[Json]: ...
    def restore_snapshot(self, session_id: str, snapshot_id: int) -> Json: ...
    def delete_snapshot(self, session_id: str, snapshot_id: int) -> None: ...
    # streamed replies
    def start_stream(self, session_id: str, model: Optional[str] = None, metadata: Optional[Json] = None) -> Json: ...
    def append_stream(self, session_id: str, chunk: str) -> None: ...
    def finish_stream(
        self,
        session_id: str,
        *,
        content: Optional[str] = None,
        model: Optional[str] = None,
        metadata: Optional[Json] = None,
        tool_calls: Optional[list[Any]] = None,
        input_tokens: Optional[int] = None,
        output_tokens: Optional[int] = None,
        cost: Optional[float] = None,
    ) -> Message: ...
    def discard_stream(self, session_id: str) -> None: ...
    def partial_message(self, session_id: str) -> Optional[Json]: ...
    def chat_history_with_partial(self, session_id: str, max_messages: Optional[int] = None) -> tuple[list[Message], Optional[Json]]: ...
    def chat_history_if_changed(
        self, session_id: str, max_messages: Optional[int] = None, *, known_version: Optional[int] = None
    ) -> tuple[int, Optional[list[Message]], Optional[Json]]:
        """``(version, messages, partial)``; ``messages`` is ``None`` when the history is at
        ``known_version``."""
    # search, transfer, maintenance
    def search(
        self,
        query: str,
        *,
        limit: int = 20,
        session_id: Optional[str] = None,
        agent_name: Optional[str] = None,
        user_id: Optional[str] = None,
        role: Optional[str] = None,
        newest_first: bool = False,
    ) -> list[Json]: ...
    def export(self, session_ids: Sequence[str] = ..., *, all_branches: bool = False) -> Json: ...
    def import_export(self, document: Json, *, overwrite: bool = True, dry_run: bool = False) -> Json: ...
    def import_praisonai(self, path: str | os.PathLike[str], *, overwrite: bool = True, dry_run: bool = False) -> Json: ...
    def backup(self, out: str | os.PathLike[str], *, force: bool = False) -> int: ...
    def restore(self, source: str | os.PathLike[str]) -> Json:
        """Replaces the whole contents with the backup's, in one transaction; returns
        ``{"sessions", "branches", "messages", "snapshots"}`` restored."""
    def prune(self, older_than: float = ..., *, dry_run: bool = False) -> Json: ...
    def expire_sessions(self, idle_longer_than: float, *, dry_run: bool = False) -> Json: ...
    def purge(self, session_ids: Sequence[str] = ..., *, user_id: Optional[str] = None, with_forks: bool = False) -> Json: ...
    def maintain(self, *, vacuum: bool = False) -> Json: ...
    def check(self) -> Json: ...
    def stats(self, older_than: float = ...) -> Json: ...
    def invalidate_cache(self, session_id: Optional[str] = None) -> None: ...
    def cache_stats(self) -> Json: ...

def copy_json(value: Any) -> Any:
    """A copy of a JSON-shaped value: new dicts and lists, shared strings and numbers."""

def openai_message(item: Any) -> dict[str, Any]:
    """The message an OpenAI Agents SDK item is stored as (what ``add_openai_items``
    writes), for ``set_chat_history``."""
