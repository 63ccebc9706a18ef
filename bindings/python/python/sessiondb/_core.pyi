"""Type stubs of sessiondb's compiled module (see ``sessiondb.Store``)."""

from __future__ import annotations

import os
from concurrent.futures import Future
from datetime import datetime
from typing import Any, Literal, Optional, Sequence, TypedDict

SCHEMA_VERSION: int
MAX_CONTENT_BYTES: int
MAX_SESSION_ID_BYTES: int
MAX_NESTING: int
"""Deepest nesting of dicts and lists accepted in a value (deeper, or a cycle: InvalidInput)."""
SQLITE_VERSION: str
POSTGRES_SUPPORT: bool
"""Whether this build opens ``postgres://`` URLs (built with ``--features postgres``)."""
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
    def merge_metadata_object(
        self, session_id: str, key: str, updates: Json, defaults: Optional[Json] = None
    ) -> Json: ...
    def update_session(self, session_id: str, **fields: Any) -> Json: ...
    def set_title(self, session_id: str, title: Optional[str]) -> Json: ...
    def clear(self, session_id: str) -> Json: ...
    def delete_session(self, session_id: str) -> None: ...
    # forks, branches, snapshots
    # LangGraph checkpoints (sessiondb.langgraph); values are serde's (type, bytes)
    def put_checkpoint(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        parent_checkpoint_id: Optional[str],
        checkpoint: tuple[str, Optional[bytes]],
        metadata: Optional[Json],
        channel_versions: list[tuple[str, str]],
        new_blobs: list[tuple[str, str, str, Optional[bytes]]],
        other_values: list[tuple[str, str, str, Optional[bytes]]],
    ) -> None:
        """Stores a checkpoint as the next message of session ``langgraph:<thread_id>``;
        ``new_blobs`` and ``other_values`` are ``(channel, version, type, bytes)``."""
    def put_checkpoint_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        task_id: str,
        task_path: str,
        writes: list[tuple[int, str, str, bytes]],
        replace: bool,
    ) -> None:
        """Stores ``(idx, channel, type, bytes)`` writes of a task against a checkpoint."""
    def get_checkpoint(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: Optional[str] = None
    ) -> Optional[tuple[Any, ...]]:
        """``(thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, (type, bytes),
        metadata, [(channel, type, bytes)], [(task_id, channel, type, bytes, task_path)])``."""
    def list_checkpoints(
        self,
        thread_id: Optional[str] = None,
        checkpoint_ns: Optional[str] = None,
        checkpoint_id: Optional[str] = None,
        filter: Optional[Json] = None,
        before: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> list[tuple[Any, ...]]:
        """Checkpoints as ``get_checkpoint`` gives them, newest id first."""
    def delete_checkpoint_thread(self, thread_id: str) -> None: ...
    def copy_checkpoint_thread(self, source: str, target: str) -> None: ...
    def delete_checkpoint_runs(self, run_ids: list[str]) -> None: ...
    def prune_checkpoints(self, thread_ids: list[str], strategy: str) -> None: ...
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
    def session_with_history(self, session_id: str) -> tuple[Json, list[Message], Optional[Json]]: ...
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
    def search_recent_sessions(self, query: str, *, limit: int = 20) -> list[str]: ...
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
    # leases: one run per session at a time, across processes
    def claim(self, session_id: str, owner: str, ttl: float) -> Lease:
        """Claims the lease of ``session_id`` for ``owner`` for ``ttl`` seconds (above zero, at
        most 366 days). Raises ``LeaseHeld`` (naming the holder and its expiry) while another
        owner holds it; an expired lease is taken over. A claim by the holder's owner takes its
        own lease over with a new token. The session need not exist yet."""
    def renew(self, lease: Lease, ttl: float) -> Lease:
        """Extends a held lease to ``ttl`` seconds from now (same token); ``LeaseLost`` if it
        expired, was released, broken or taken over."""
    def release(self, lease: Lease) -> bool:
        """Gives the lease up; returns whether it was still held."""
    def with_lease(self, lease: Lease) -> LeasedSession:
        """Writes to the lease's session that succeed only while ``lease`` is held."""
    def lease(self, session_id: str, owner: str, ttl: float) -> LeasedSession:
        """``with_lease(claim(session_id, owner, ttl))``, for ``with store.lease(...) as
        leased:``, which releases the lease when the block ends."""
    def lease_holder(self, session_id: str) -> Optional[Json]:
        """``{"owner", "acquired_at", "expires_at"}`` of an unexpired lease, or ``None``."""
    def leases(self) -> list[Json]:
        """Every stored lease, held or expired: ``[{"session_id", "owner", "acquired_at",
        "expires_at", "expired"}, ...]`` by session id."""
    def break_lease(self, session_id: str) -> Optional[Json]:
        """Removes the session's lease, held or not; returns what it was (``None``: none).
        The holder's next leased write raises ``LeaseLost``."""
    # watching a session for changes made by any process
    def watch(
        self, session_id: str, since: Since = None, *, timeout: Optional[float] = None
    ) -> Optional[Change]:
        """Blocks until ``session_id`` changed after ``since``, or ``timeout`` seconds passed
        (``None``: no limit; then returns ``None``). Returns at once if it already changed.
        A missing session raises ``NotFound``. Ctrl-C ends the wait (``KeyboardInterrupt``)."""
    def watcher(self, session_id: str, since: Since = None, *, poll_interval: Optional[float] = None) -> Watcher:
        """A watcher of ``session_id`` that has seen ``since``: ``for change in watcher``,
        ``async for change in watcher``, or ``watcher.wait(timeout)``."""

Since = Optional[int | WatchCursor | Change]
"""What a watch starts after: ``None`` (the session as it is when the watch opens), a
session version (the first change then carries the whole history), or the cursor of a
change or watcher (the next change carries only what is new)."""

class Lease:
    """A held lease, from ``Store.claim``. Equal leases are the same claim and expiry."""

    @property
    def session_id(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def acquired_at(self) -> datetime:
        """Aware, in UTC."""
    @property
    def expires_at(self) -> datetime:
        """Aware, in UTC."""
    @property
    def token(self) -> str:
        """The random token that proves this claim; a renewal keeps it."""
    @property
    def store_path(self) -> str:
        """``Store.path`` of the store that claimed it; another store refuses the lease."""

class LeasedSession:
    """The writes of one session under a lease: each checks, inside its own transaction, that
    the lease is still held, else raises ``LeaseLost`` and writes nothing. A context manager
    that releases the lease on exit."""

    @property
    def session_id(self) -> str: ...
    @property
    def lease(self) -> Lease: ...
    def add_message(self, message: Json, *, expected_version: Optional[int] = None) -> Message: ...
    def set_chat_history(self, messages: Sequence[Json], *, expected_version: Optional[int] = None) -> Json: ...
    def start_stream(self, model: Optional[str] = None, metadata: Optional[Json] = None) -> Json: ...
    def append_stream(self, chunk: str) -> None: ...
    def finish_stream(
        self,
        *,
        content: Optional[str] = None,
        model: Optional[str] = None,
        metadata: Optional[Json] = None,
        tool_calls: Optional[list[Any]] = None,
        input_tokens: Optional[int] = None,
        output_tokens: Optional[int] = None,
        cost: Optional[float] = None,
    ) -> Message: ...
    def discard_stream(self) -> None: ...
    def chat_history(self, max_messages: Optional[int] = None) -> list[Message]:
        """A read: not checked against the lease."""
    def renew(self, ttl: float) -> Lease:
        """``Store.renew`` of this handle's lease; the handle keeps working."""
    def release(self) -> bool:
        """``Store.release`` of this handle's lease."""
    def __enter__(self) -> LeasedSession: ...
    def __exit__(self, *exc: object) -> bool: ...

class WatchCursor:
    """What a watcher has seen of a session."""

    @staticmethod
    def at_version(version: int) -> WatchCursor: ...
    @property
    def version(self) -> int: ...

class Change:
    """A session's change since a cursor."""

    @property
    def session_id(self) -> str: ...
    @property
    def version(self) -> int:
        """The session's version now."""
    @property
    def length(self) -> int:
        """Length of the history now."""
    @property
    def history(self) -> Literal["unchanged", "appended", "replaced"]: ...
    @property
    def messages(self) -> list[Message]:
        """``"appended"``: the new messages; ``"replaced"``: the whole working history;
        ``"unchanged"``: none."""
    @property
    def partial(self) -> Optional[Json]:
        """The streamed reply in progress now, whole."""
    @property
    def stream(self) -> Literal["unchanged", "started", "grew", "ended"]: ...
    @property
    def grew(self) -> Optional[str]:
        """The text the streamed reply grew by (``stream == "grew"``)."""
    @property
    def cursor(self) -> WatchCursor: ...

class Watcher:
    """Waits for changes of one session made by any process, on a connection of its own.
    Iterate it (each step blocks until a change; Ctrl-C interrupts), ``async for`` it (the
    waits run on a thread of its own; cancelling loses nothing), or call ``wait``. A
    context manager that closes it."""

    @property
    def session_id(self) -> str: ...
    @property
    def cursor(self) -> WatchCursor: ...
    @property
    def closed(self) -> bool: ...
    def wait(self, timeout: Optional[float] = None) -> Optional[Change]:
        """The next change, or ``None`` after ``timeout`` seconds."""
    def close(self) -> None:
        """Closes its connection; an iteration in another thread ends."""
    def __enter__(self) -> Watcher: ...
    def __exit__(self, *exc: object) -> bool: ...
    def __iter__(self) -> Watcher: ...
    def __next__(self) -> Change: ...
    def __aiter__(self) -> Watcher: ...
    async def __anext__(self) -> Change: ...
    # for sessiondb._watch
    def _next_change(self, timeout: float) -> Optional[Change]: ...
    @property
    def _done(self) -> bool: ...
    def _executor(self) -> Any: ...
    _pending: Optional[Future[Optional[Change]]]

def copy_json(value: Any) -> Any:
    """A copy of a JSON-shaped value: new dicts and lists, shared strings and numbers."""

def openai_message(item: Any) -> dict[str, Any]:
    """The message an OpenAI Agents SDK item is stored as (what ``add_openai_items``
    writes), for ``set_chat_history``."""
