"""The Claude Agent SDK's ``SessionStore`` over sessiondb.

``SessiondbSessionStore`` mirrors the SDK's session transcripts into a sessiondb file, or a
PostgreSQL database by URL::

    from claude_agent_sdk import ClaudeAgentOptions, query
    from sessiondb.claude_agent_sdk import SessiondbSessionStore

    options = ClaudeAgentOptions(session_store=SessiondbSessionStore("sessions.db"))
    async for message in query(prompt="Hi", options=options):
        ...

All six methods of ``claude_agent_sdk.types.SessionStore`` are implemented: ``append``,
``load``, ``list_sessions``, ``list_session_summaries``, ``delete`` and ``list_subkeys``.

How transcripts are stored:

- Each key is one sessiondb session (a subagent's ``subpath`` is a session of its own), with
  ``agent_name="claude-agent-sdk"``, ``user_id`` = the ``project_key`` (so
  ``sessiondb purge --user=<project_key>`` erases a project), and the key itself in its
  metadata under ``"claude_agent_sdk"``. Its id is :func:`session_id_for`.
- Each entry is one message: its text (what ``sessiondb history`` and ``search`` show), and
  the entry itself, which ``load`` returns deep-equal. An entry's ``uuid`` is the message's
  key: a retried batch writes nothing, and a batch that mixes stored and new uuids stores
  exactly the new ones, in order. Entries without a ``uuid`` are always appended.
- The summary that ``list_session_summaries`` returns (the SDK's ``fold_session_summary``) is
  kept in the main session's metadata and written in the same transaction as the entries it
  folds, at the version it was folded from: two processes appending at once never lose a
  fold (the loser of the race folds again from the winner's summary).
- ``mtime`` is the session's ``updated_at``, for ``list_sessions`` and the summaries alike.

The SDK never deletes; retention is the store's: ``sessiondb expire`` and ``sessiondb purge``
(or :meth:`Store.expire_sessions`, :meth:`Store.purge`) apply to these sessions as to any.

Every call runs in a worker thread (the core releases the GIL), so the event loop never waits
on the database. Requires ``claude-agent-sdk`` (``pip install 'sessiondb[claude-agent-sdk]'``).
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from claude_agent_sdk import fold_session_summary
from claude_agent_sdk.types import (
    SessionKey,
    SessionListSubkeysKey,
    SessionStore,
    SessionStoreEntry,
    SessionStoreListEntry,
    SessionSummaryEntry,
)

from . import MAX_SESSION_ID_BYTES, AlreadyExists, Conflict, InvalidInput, NotFound, Store
from ._core import copy_json
from . import Error as sessiondb_error
from ._adapters import settled, shared_store

__all__ = ["SessiondbSessionStore", "session_id_for", "AGENT_NAME"]

AGENT_NAME = "claude-agent-sdk"

# How many transcripts' converted entries a store keeps for loads of unchanged transcripts.
_LOADED_SESSIONS = 64
"""The ``agent_name`` of every session this store writes."""

# Session metadata: the key of the session, and (main transcripts) the folded summary.
_KEY = "claude_agent_sdk"
_PREFIX = "claude:"
_SUMMARY = "claude_agent_sdk_summary"
# The content part that holds the entry itself.
_ENTRY_PART = "claude_agent_sdk.entry"
# The text shown and indexed for search is cut here; the entry keeps everything.
_MAX_TEXT_BYTES = 256 * 1024
# Optimistic writes retried this often before the last Conflict is raised.
_MAX_ATTEMPTS = 1000


def _escape(text: str, keep_slash: bool) -> str:
    """``text`` with ``%``, control characters and (unless ``keep_slash``) ``/`` written as
    ``%XX`` of their UTF-8 bytes: injective, and the result has no ``/`` unless kept."""
    out = []
    for ch in text:
        if ch == "%" or (ch == "/" and not keep_slash) or _is_control(ch):
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
        else:
            out.append(ch)
    return "".join(out)


def _is_control(ch: str) -> bool:
    # Rust's char::is_control, the rule sessiondb applies to ids: Unicode category Cc.
    code = ord(ch)
    return code < 0x20 or 0x7F <= code <= 0x9F


def _text_field(key: Any, name: str, *, required: bool) -> str | None:
    value = key.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidInput(
            f"session key {name} must be a non-empty string, not {value!r} (key {key!r})"
        )
    return value


def _parts(key: Any) -> tuple[str, str, str | None]:
    if not isinstance(key, Mapping):
        raise InvalidInput(f"a session key is a dict, not {type(key).__name__}: {key!r}")
    return (
        _text_field(key, "project_key", required=True),  # type: ignore[return-value]
        _text_field(key, "session_id", required=True),  # type: ignore[return-value]
        _text_field(key, "subpath", required=False),
    )


def session_id_for(key: SessionKey | SessionListSubkeysKey) -> str:
    """The id of the sessiondb session that holds ``key``'s transcript (for ``sessiondb
    history``, ``search``, ``purge``): ``claude:<project_key>/<session_id>``, then
    ``/<subpath>`` for a subagent's transcript, where ``%``, control characters and (in the
    first two) ``/`` are written as ``%XX`` of their UTF-8 bytes. Distinct keys get distinct
    ids, whatever characters they hold (the first two ``/`` end the project key and the
    session id; a main transcript's id has one ``/``). The prefix keeps an id apart from
    other sessions' and off the command line's options (SDK project keys start with ``-``).
    An id longer than sessiondb's limit (256 bytes) is ``InvalidInput``."""
    project_key, session_id, subpath = _parts(key)
    id = f"{_PREFIX}{_escape(project_key, False)}/{_escape(session_id, False)}"
    if subpath is not None:
        id += "/" + _escape(subpath, True)
    if len(id.encode("utf-8", "surrogatepass")) > MAX_SESSION_ID_BYTES:
        raise InvalidInput(
            f"session key {dict(key)!r} makes a session id of more than "
            f"{MAX_SESSION_ID_BYTES} bytes, sessiondb's limit"
        )
    return id


def _text(entry: Mapping[str, Any]) -> str:
    """What a person reads of an entry (``sessiondb history``, ``search``): a message's text
    and the tools it calls, or a system entry's type and its text."""
    message = entry.get("message")
    if isinstance(message, Mapping):
        text = _blocks_text(message.get("content"))
    else:
        text = str(entry.get("type", ""))
        for field in ("content", "summary", "customTitle", "aiTitle", "tag", "lastPrompt"):
            value = entry.get(field)
            if isinstance(value, str) and value:
                text = f"{text}: {value}" if text else value
                break
    if len(text) > _MAX_TEXT_BYTES // 4 and len(text.encode("utf-8", "surrogatepass")) > _MAX_TEXT_BYTES:
        text = text.encode("utf-8", "surrogatepass")[:_MAX_TEXT_BYTES].decode("utf-8", "ignore")
    return text


def _blocks_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    lines = []
    for block in content:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            lines.append(block["text"])
        elif kind == "tool_use" and isinstance(block.get("name"), str):
            lines.append(f"[tool: {block['name']}]")
        elif kind == "tool_result":
            result = _blocks_text(block.get("content"))
            if result:
                lines.append(result)
    return "\n".join(lines)


def _messages(
    entries: Any,
) -> tuple[list[dict[str, Any]], list[Mapping[str, Any]], list[int]]:
    """The messages ``entries`` are stored as, the entries they hold and their positions in
    ``entries``: an entry whose ``uuid`` came earlier in the batch is left out (the SDK's
    uuid is an idempotency key)."""
    if not isinstance(entries, (list, tuple)):
        raise InvalidInput(f"entries must be a list of dicts, not {type(entries).__name__}")
    messages: list[dict[str, Any]] = []
    kept: list[Mapping[str, Any]] = []
    positions: list[int] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise InvalidInput(
                f"entry {i} is a {type(entry).__name__}, not a dict (a JSON object): {entry!r:.80}"
            )
        uuid = entry.get("uuid")
        if uuid is not None and (not isinstance(uuid, str) or not uuid):
            raise InvalidInput(f"entry {i}: uuid must be a non-empty string, not {uuid!r:.80}")
        if uuid is not None:
            if uuid in seen:
                continue
            seen.add(uuid)
        kind = entry.get("type")
        role = kind if kind in ("user", "assistant") else "system"
        parts: list[dict[str, Any]] = []
        text = _text(entry)
        if text:
            parts.append({"type": "text", "text": text})
        parts.append({"type": _ENTRY_PART, "entry": entry})
        message: dict[str, Any] = {"role": role, "content": parts}
        if uuid is not None:
            message["key"] = uuid
        messages.append(message)
        kept.append(entry)
        positions.append(i)
    return messages, kept, positions


def _mtime(session: Mapping[str, Any]) -> int:
    """A session's ``updated_at`` in Unix epoch milliseconds."""
    stamp = session["updated_at"]
    if stamp.endswith("Z"):
        stamp = stamp[:-1] + "+00:00"
    return int(datetime.fromisoformat(stamp).timestamp() * 1000)


def _entry(message: Mapping[str, Any]) -> Any:
    content = message.get("content")
    if isinstance(content, list) and content:
        last = content[-1]
        if isinstance(last, dict) and last.get("type") == _ENTRY_PART:
            return last["entry"]
    return None


class SessiondbSessionStore(SessionStore):
    """Claude Agent SDK session transcripts in a sessiondb database.

    Args:
        path_or_url: The database: a file path, or a ``postgres://`` URL. ``None`` is
            sessiondb's default file (``$SESSIONDB_PATH``, else ``sessions.db`` in the user's
            data directory). Stores of one database in a process share one
            :class:`sessiondb.Store`.
        store: Use this :class:`sessiondb.Store` instead of opening ``path_or_url``.
    """

    def __init__(
        self,
        path_or_url: str | os.PathLike[str] | None = None,
        *,
        store: Store | None = None,
    ) -> None:
        if store is not None and path_or_url is not None:
            raise InvalidInput("pass path_or_url or store, not both")
        self._store = store if store is not None else shared_store(path_or_url)
        # The entries of the transcripts loaded last, by session id, with the version they
        # were read at: a load of an unchanged transcript is one version read and a copy.
        self._loaded: OrderedDict[str, tuple[int, list[Any]]] = OrderedDict()
        self._loaded_lock = threading.Lock()

    @property
    def store(self) -> Store:
        """The underlying :class:`sessiondb.Store`."""
        return self._store

    # -- SessionStore ---------------------------------------------------------------------

    async def append(self, key: SessionKey, entries: list[SessionStoreEntry]) -> None:
        """Appends ``entries`` to ``key``'s transcript in one transaction (see the module's
        documentation for keys and summaries). Bad input raises ``InvalidInput`` and stores
        nothing."""
        id = session_id_for(key)
        messages, kept, positions = _messages(entries)
        if not messages:
            return
        try:
            await settled(self._append, key, id, messages, kept)
        except InvalidInput as exc:
            # Name the entry as the caller numbered it, not the message it became.
            text = re.sub(
                r"messages\[(\d+)\](?:\.content\[\d+\]\.entry)?",
                lambda m: f"entry {positions[int(m.group(1))]}",
                str(exc),
            )
            if text == str(exc):
                raise
            raise InvalidInput(text) from exc

    async def load(self, key: SessionKey) -> list[SessionStoreEntry] | None:
        """Every entry of ``key``'s transcript, in order; ``None`` if nothing was ever
        appended (or it was deleted)."""
        id = session_id_for(key)
        return await settled(self._load, id)

    async def list_sessions(self, project_key: str) -> list[SessionStoreListEntry]:
        """The main transcripts of ``project_key``: ``session_id`` and ``mtime``."""
        sessions = await settled(self._project, project_key)
        return [
            {"session_id": s["metadata"][_KEY]["session_id"], "mtime": _mtime(s)}
            for s in sessions
            if s["metadata"][_KEY].get("subpath") is None
        ]

    async def list_session_summaries(self, project_key: str) -> list[SessionSummaryEntry]:
        """The folded summaries of ``project_key``'s main transcripts."""
        sessions = await settled(self._project, project_key)
        return [
            {
                "session_id": s["metadata"][_KEY]["session_id"],
                "mtime": _mtime(s),
                "data": s["metadata"][_SUMMARY],
            }
            for s in sessions
            if s["metadata"][_KEY].get("subpath") is None and _SUMMARY in s["metadata"]
        ]

    async def delete(self, key: SessionKey) -> None:
        """Deletes ``key``'s transcript; a main transcript takes its subagents' with it. A
        key never written is no error."""
        id = session_id_for(key)
        await settled(self._delete, key, id)

    async def list_subkeys(self, key: SessionListSubkeysKey) -> list[str]:
        """The ``subpath`` of every subagent transcript under ``key``."""
        project_key, session_id, _ = _parts(key)
        sessions = await settled(self._project, project_key)
        return [
            s["metadata"][_KEY]["subpath"]
            for s in sessions
            if s["metadata"][_KEY].get("session_id") == session_id
            and s["metadata"][_KEY].get("subpath") is not None
        ]

    # -- in a worker thread ---------------------------------------------------------------

    def _append(
        self,
        key: SessionKey,
        id: str,
        messages: list[dict[str, Any]],
        entries: list[Mapping[str, Any]],
    ) -> None:
        store = self._store
        project_key, session_id, subpath = _parts(key)
        owner = {"project_key": project_key, "session_id": session_id, "subpath": subpath}
        last: Conflict | None = None
        for _ in range(_MAX_ATTEMPTS):
            try:
                session = store.session(id)
            except NotFound:
                # Created with its fields (and first summary) by the batch's own transaction:
                # a refused batch leaves no session behind.
                metadata: dict[str, Any] = {_KEY: owner}
                if subpath is None:
                    metadata[_SUMMARY] = fold_session_summary(None, key, entries)["data"]  # type: ignore[arg-type]
                fields = {"agent_name": AGENT_NAME, "user_id": project_key, "metadata": metadata}
                try:
                    store.add_messages(id, messages, keys="each", new_session=fields)
                    return
                except AlreadyExists:
                    continue  # created meanwhile: append to it
            if session.get("agent_name") != AGENT_NAME or session["metadata"].get(_KEY) != owner:
                raise InvalidInput(
                    f"session {id!r} exists and was not written by SessiondbSessionStore "
                    f"for key {dict(key)!r}; nothing was appended"
                )
            version = session["version"]
            patch = None
            if subpath is None:
                # The summary folds exactly the entries this write stores: those whose uuid
                # the history does not hold at `version`, which the write is bound to.
                uuids = [m["key"] for m in messages if "key" in m]
                stored: set[str] = set()
                if uuids and session["message_count"]:
                    found = store.find_keys(id, uuids)
                    if found["version"] != version:
                        continue
                    stored = {k for k, i in zip(uuids, found["indices"]) if i is not None}
                new = [e for m, e in zip(messages, entries) if m.get("key") not in stored]
                if not new:
                    return
                data = session["metadata"].get(_SUMMARY)
                prev = None if data is None else {"session_id": session_id, "mtime": 0, "data": data}
                folded = fold_session_summary(prev, key, new)  # type: ignore[arg-type]
                patch = {_SUMMARY: folded["data"]}
            try:
                store.add_messages(
                    id, messages, expected_version=version, keys="each", metadata=patch
                )
                return
            except Conflict as exc:
                last = exc
            except NotFound:
                pass  # deleted meanwhile: created afresh on the next attempt
        if last is not None:
            raise last
        raise sessiondb_error(
            f"session {id!r}: {_MAX_ATTEMPTS} attempts to append lost to other writers; "
            "nothing was appended"
        )

    def _load(self, id: str) -> list[Any] | None:
        try:
            with self._loaded_lock:
                known = self._loaded.get(id)
            if known is not None and self._store.version(id) == known[0]:
                # Unchanged since the last load: fresh copies of what it converted (the
                # caller may change what it gets).
                with self._loaded_lock:
                    self._loaded.move_to_end(id)
                return copy_json(known[1]) or None
            # The cached working history is the whole transcript unless someone compacted
            # the session (then it is shorter than the history): read the full one then.
            history, version, total = self._store.chat_history_versioned(id)
            if len(history) != total:
                history = self._store.full_history(id)
                version = None  # read apart from the version: not kept
        except NotFound:
            with self._loaded_lock:
                self._loaded.pop(id, None)
            return None
        entries = [e for e in map(_entry, history) if e is not None]
        if version is not None:
            with self._loaded_lock:
                self._loaded[id] = (version, entries)
                self._loaded.move_to_end(id)
                while len(self._loaded) > _LOADED_SESSIONS:
                    self._loaded.popitem(last=False)
            return copy_json(entries) or None
        return entries or None

    def _project(self, project_key: str) -> list[dict[str, Any]]:
        """The non-empty sessions this store wrote for ``project_key``."""
        if not isinstance(project_key, str) or not project_key:
            raise InvalidInput(f"project_key must be a non-empty string, not {project_key!r}")
        return [
            s
            for s in self._store.list_sessions(agent_name=AGENT_NAME, user_id=project_key)
            if s["message_count"] > 0
            and isinstance(s["metadata"].get(_KEY), dict)
            and s["metadata"][_KEY].get("project_key") == project_key
        ]

    def _delete(self, key: SessionKey, id: str) -> None:
        project_key, session_id, subpath = _parts(key)
        owner = {"project_key": project_key, "session_id": session_id, "subpath": subpath}
        doomed = []
        for s in self._store.list_sessions(agent_name=AGENT_NAME, user_id=project_key):
            held = s["metadata"].get(_KEY)
            if not isinstance(held, dict):
                continue
            # Only sessions this store wrote: the key's own, and under a main key its
            # subagents'.
            if held == owner or (
                subpath is None
                and held.get("project_key") == project_key
                and held.get("session_id") == session_id
                and held.get("subpath") is not None
            ):
                doomed.append(s["id"])
        for doomed_id in doomed:
            try:
                self._store.delete_session(doomed_id)
            except NotFound:
                pass
