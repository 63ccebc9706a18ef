"""``DefaultSessionStore`` over sessiondb: praisonaiagents 1.7.17's whole public API."""

from __future__ import annotations

import copy
import json
import os
import tempfile
import threading
import time
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

from praisonaiagents.session import store as _upstream
from praisonaiagents.session.protocols import ImportReport, SessionHit, SessionSummary
from praisonaiagents.session.store import CompactionCheckpoint, SessionData, SessionMessage

from .. import InvalidInput, NotFound, Store
from .._core import copy_json
from . import _view
from ._view import (
    CHECKPOINT_KEY,
    GATEWAY_KEY,
    RESERVED,
    RUNTIME_PREFIX,
    iso,
    llm_message,
    message_in,
    public_metadata,
    session_message,
)

DATABASE_FILE = "sessions.db"
# Sessions (and windows) whose converted chat history a store keeps.
_LLM_CACHE_ENTRIES = 256
_Upstream = _upstream.DefaultSessionStore


def _trim(messages: List[Dict[str, Any]], limit: Optional[int]) -> List[Dict[str, Any]]:
    """The latest ``limit`` messages, never starting on an orphaned tool result."""
    if not limit or len(messages) <= limit:
        return messages
    start = len(messages) - limit
    while start < len(messages) and messages[start]["role"] == "tool":
        start += 1
    return messages[start:]


def _runtime_key(runtime_id: str, turn_id: str) -> str:
    return RUNTIME_PREFIX + json.dumps([runtime_id, turn_id])


def _runtime_state(metadata: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    out: Dict[str, Dict[str, Any]] = {}
    for key, value in metadata.items():
        if key.startswith(RUNTIME_PREFIX):
            runtime_id, turn_id = json.loads(key[len(RUNTIME_PREFIX) :])
            out.setdefault(runtime_id, {})[turn_id] = value
    return out


class DefaultSessionStore:
    """``praisonaiagents.session.DefaultSessionStore`` over one sessiondb file.

    Args:
        session_dir: Directory of the database file (``sessions.db`` inside it);
            PraisonAI's session directory by default.
        max_messages: As upstream: the default window of :meth:`get_working_history`,
            and, when given without ``retention``, the ``"truncate"`` window.
        lock_timeout: How long a write waits for another process's write (seconds).
        retention: ``"compact"`` (default), ``"truncate"`` or ``"keep_all"``: what the
            active window (``get_chat_history``, ``SessionData.messages``) shows once a
            session outgrows ``active_window``. sessiondb deletes nothing either way: the
            full history stays in the file (``store.full_history(id)``).
        active_window: Messages kept in the active window (``max_messages`` by default).
        mirror: A ``SessionMirrorProtocol`` sink that gets every persisted message, on a
            background thread, as upstream.
        cache_maxsize: Entries of the version-checked history cache.
        path: The database file itself, overriding ``session_dir``.
        store: An open :class:`sessiondb.Store` to use (a file or a PostgreSQL URL),
            overriding ``path`` and ``session_dir``.
    """

    PORTABLE_VERSION = _Upstream.PORTABLE_VERSION
    BOOKEND_SIZE = _Upstream.BOOKEND_SIZE
    AUTOMATED_RATE_THRESHOLD = _Upstream.AUTOMATED_RATE_THRESHOLD
    AUTOMATED_DEMOTION = _Upstream.AUTOMATED_DEMOTION
    _data_class: type = SessionData

    def __init__(
        self,
        session_dir: Optional[str] = None,
        max_messages: int = _upstream.DEFAULT_MAX_MESSAGES,
        lock_timeout: float = _upstream.DEFAULT_LOCK_TIMEOUT,
        retention: Optional[str] = None,
        active_window: Optional[int] = None,
        mirror: Optional[Any] = None,
        cache_maxsize: int = _upstream.DEFAULT_CACHE_MAXSIZE,
        *,
        path: Optional[str] = None,
        store: Optional[Store] = None,
    ) -> None:
        if retention is None:
            retention = (
                _upstream.RETENTION_TRUNCATE
                if max_messages != _upstream.DEFAULT_MAX_MESSAGES
                else _upstream.DEFAULT_RETENTION
            )
        if retention not in ("compact", "truncate", "keep_all"):
            raise ValueError(
                f"Invalid retention {retention!r}; expected one of 'compact', 'truncate', 'keep_all'"
            )
        self.session_dir = session_dir or _upstream._resolve_default_session_dir()
        self.max_messages = max_messages
        self.lock_timeout = lock_timeout
        self.retention = retention
        self.active_window = active_window if active_window is not None else max_messages
        if store is not None:
            self._store = store
            self.path = store.path
        else:
            self.path = path or os.path.join(self.session_dir, DATABASE_FILE)
            # As upstream: an unusable directory is an OSError, raised before anything
            # (such as the mirror's thread) has started.
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            self._store = Store(
                self.path,
                busy_timeout=lock_timeout,
                cache_entries=cache_maxsize if cache_maxsize > 0 else 1024,
            )
        # get_chat_history's converted messages: (session, window) -> (version, messages).
        self._llm_cache: "OrderedDict[Tuple[str, Optional[int]], Tuple[int, Any]]" = OrderedDict()
        self._llm_lock = threading.Lock()
        # Per session: the recorded window boundary as this store last saw it.
        self._recorded_at: Dict[str, int] = {}
        self._mirror = mirror
        self._mirror_writer = _upstream._SessionMirrorWriter(mirror) if mirror is not None else None

    @property
    def store(self) -> Store:
        """The underlying :class:`sessiondb.Store`."""
        return self._store

    def _ensure(self, session_id: str, **fields: Any) -> bool:
        """Creates the session if missing (as upstream's writes do); True if it was."""
        if self._store.session_exists(session_id):
            return False
        try:
            self._store.create_session(session_id, **fields)
        except Exception as exc:  # another process created it first
            if not self._store.session_exists(session_id):
                raise exc
            return False
        return True

    def _windowed(self) -> bool:
        return self.retention != "keep_all" and bool(self.active_window and self.active_window > 0)

    # --- the retention window -------------------------------------------------------------

    def _window(self, session_id: str) -> Optional[_view.Window]:
        try:
            working, partial = self._store.chat_history_with_partial(session_id)
        except NotFound:
            return None
        return _view.window(working, self.retention, self.active_window, partial)

    def _record_window(self, session_id: str, *, always: bool = False) -> Optional[_view.Window]:
        """Records the window's boundary in the file (a core compaction) when more than a
        window of messages has piled up behind the last record, or ``always``."""
        w = self._window(session_id)
        if w is None or not self._windowed():
            return w
        behind = w.boundary - w.recorded
        if behind > 0 and (always or behind >= self.active_window):
            # A streaming reply is last and never leaves the window alone, so the boundary
            # is always a stored message.
            try:
                self._store.compact(session_id, _view.summary_record(w), w.boundary)
            except (InvalidInput, NotFound):
                pass
        return w

    def _after_write(self, session_id: str, index: Optional[int] = None) -> None:
        """Records the window's boundary once two windows have piled up behind the last
        record this store saw (another process's record only makes this one early)."""
        if not self._windowed():
            return
        seen = self._recorded_at.get(session_id, -1)
        if index is None or index - seen >= 2 * self.active_window:
            w = self._record_window(session_id)
            if w is not None:
                if len(self._recorded_at) >= _LLM_CACHE_ENTRIES:
                    self._recorded_at.pop(next(iter(self._recorded_at)))
                self._recorded_at[session_id] = max(w.boundary, w.recorded)

    # --- messages -------------------------------------------------------------------------

    def add_message(
        self,
        session_id: str,
        role: str,
        content: str,
        metadata: Optional[Dict[str, Any]] = None,
        tool_calls: Optional[List[Dict[str, Any]]] = None,
        tool_call_id: Optional[str] = None,
    ) -> bool:
        """Appends a message (one small transaction, whatever the history's length)."""
        stored = self._store.add_message(
            session_id, message_in(role, content, metadata, tool_calls, tool_call_id)
        )
        self._after_write(session_id, stored["index"])
        self._mirror_append(session_id, [stored])
        return True

    def add_user_message(
        self, session_id: str, content: str, metadata: Optional[Dict[str, Any]] = None
    ) -> bool:
        return self.add_message(session_id, "user", content, metadata)

    def add_assistant_message(
        self, session_id: str, content: str, metadata: Optional[Dict[str, Any]] = None
    ) -> bool:
        return self.add_message(session_id, "assistant", content, metadata)

    def upsert_partial_assistant_message(
        self, session_id: str, content: str, *, finalize: bool = False
    ) -> bool:
        """Persists the assistant text streamed so far (durably, chunk by chunk); with
        ``finalize`` the reply becomes a normal assistant message."""
        try:
            partial = self._store.partial_message(session_id)
        except NotFound:
            partial = None
        if finalize:
            if partial is not None:
                if content or partial["content"]:
                    stored = self._store.finish_stream(session_id, content=content or partial["content"])
                    self._after_write(session_id, stored["index"])
                    self._mirror_append(session_id, [stored])
                else:
                    self._store.discard_stream(session_id)
            elif content:
                self.add_assistant_message(session_id, content)
            return True
        if partial is not None and not content.startswith(partial["content"]):
            # Not an extension of what was streamed (an encrypting wrapper re-encrypts the
            # whole text each time): start the reply afresh.
            self._store.discard_stream(session_id)
            partial = None
        if partial is None:
            self._ensure(session_id)
            self._store.start_stream(session_id)
            already = ""
        else:
            already = partial["content"]
        if len(content) > len(already):
            self._store.append_stream(session_id, content[len(already) :])
        return True

    def discard_partial_assistant_message(self, session_id: str) -> bool:
        try:
            self._store.discard_stream(session_id)
        except NotFound:
            pass
        return True

    def _cached_llm(self, session_id: str, limit: Optional[int]) -> List[Dict[str, Any]]:
        key = (session_id, limit)
        known = self._llm_cache.get(key)  # one dict read: atomic, no lock needed
        windowed = self._windowed()
        try:
            version, messages, partial = self._store.chat_history_if_changed(
                session_id, None if windowed else limit, known_version=known[0] if known else None
            )
        except NotFound:
            return []
        if messages is None and partial is None and known is not None and known[1][1] is not None:
            # Unchanged since the last read (the common case): copies of the kept messages,
            # nothing else; the copy is the floor of any read that hands out fresh dicts.
            return copy_json(known[1][1])
        if messages is None and known is not None:
            messages, llm = known[1]
        else:
            llm = None
        if windowed:
            if partial is not None or llm is None:
                w = _view.window(messages, self.retention, self.active_window, partial)
                out = _trim([llm_message(m) for m in w.messages()], limit)
                if partial is not None:
                    self._remember(key, version, messages, None)
                    return out
                llm = out
        else:
            if llm is None:
                llm = [llm_message(m) for m in messages]
            if partial is not None:
                out = copy_json(llm)
                out.append({"role": "assistant", "content": partial["content"]})
                self._remember(key, version, messages, llm)
                return _trim(out, limit) if limit else out
        self._remember(key, version, messages, llm)
        return copy_json(llm)

    def _remember(self, key: Tuple[str, Optional[int]], version: int, messages: Any, llm: Any) -> None:
        if llm is None:
            return
        with self._llm_lock:
            self._llm_cache[key] = (version, (messages, llm))
            self._llm_cache.move_to_end(key)
            while len(self._llm_cache) > _LLM_CACHE_ENTRIES:
                self._llm_cache.popitem(last=False)

    def get_chat_history(
        self, session_id: str, max_messages: Optional[int] = None
    ) -> List[Dict[str, Any]]:
        """The active window (or its latest ``max_messages``) as ``{"role", "content"}``
        dicts (with ``tool_calls`` / ``tool_call_id`` when present); never starts on an
        orphaned tool result. Under ``retention="compact"`` a session longer than the
        window starts with the summary of what left it.

        Every call reads the session's version and its streaming reply from the file; the
        converted messages of the version last read are kept, so an unchanged history is
        handed out as fresh copies without converting it again."""
        return self._cached_llm(session_id, max_messages)

    def set_chat_history(self, session_id: str, messages: List[Dict[str, Any]]) -> bool:
        """Replaces the history in one transaction; the old one stays readable as a
        superseded branch. A message's ``timestamp`` (epoch seconds), when given, is its
        stored time. Clears the compaction checkpoint, as upstream."""
        new = []
        for m in messages:
            message = message_in(
                m.get("role", "user"),
                m.get("content"),
                m.get("metadata"),
                m.get("tool_calls"),
                m.get("tool_call_id"),
            )
            stamp = _view.stamp_text(m.get("timestamp"))
            if stamp:
                message["created_at"] = stamp
            new.append(message)
        self._ensure(session_id)
        # The checkpoint goes first: between the two writes (or after a crash there) the old
        # history reads whole, never the new one under the old summary.
        self._store.update_metadata(session_id, {CHECKPOINT_KEY: None})
        self._store.set_chat_history(session_id, new)
        self._after_write(session_id)
        if self._mirror_writer is not None:
            self._mirror_append(session_id, self._store.full_history(session_id)[-len(new) :] if new else [])
        return True

    def clear_session(self, session_id: str) -> bool:
        # The checkpoint first, as in set_chat_history.
        if not self._ensure(session_id):
            self._store.update_metadata(session_id, {CHECKPOINT_KEY: None})
            self._store.clear(session_id)
        return True

    def append_compaction_checkpoint(
        self,
        session_id: str,
        summary: str,
        *,
        role: str = "system",
        tokens_before: int = 0,
        tokens_after: int = 0,
        metadata: Optional[Dict[str, Any]] = None,
    ) -> bool:
        """Records a compaction checkpoint at the end of the history:
        :meth:`get_working_history` becomes ``summary`` followed by what is appended later.
        Nothing is removed, and :meth:`get_chat_history` is unchanged, as upstream."""
        summary = summary or ""
        if not summary.strip():
            return False
        self._ensure(session_id)
        w = self._window(session_id)
        raw_count = (w.boundary + 1 + len(w.active)) if w is not None else 0
        checkpoint = {
            "summary": summary,
            "raw_count": raw_count,
            "role": role,
            "tokens_before": tokens_before,
            "tokens_after": tokens_after,
            "timestamp": time.time(),
            "metadata": metadata or {},
        }
        self._store.update_metadata(session_id, {CHECKPOINT_KEY: checkpoint})
        return True

    def get_working_history(
        self, session_id: str, max_messages: Optional[int] = None
    ) -> List[Dict[str, Any]]:
        """The latest checkpoint's summary followed by the messages after it (the active
        window without one), at most ``max_messages`` (the store's ``max_messages``), the
        summary kept at the head."""
        limit = max_messages or self.max_messages
        data = self._session_data(session_id)
        return data.get_working_history(limit)

    # --- sessions -------------------------------------------------------------------------

    def _session_data(self, session_id: str, cls: Optional[type] = None) -> Any:
        cls = cls or self._data_class
        try:
            info = self._store.session(session_id)
        except NotFound:
            return cls(session_id=session_id)
        w = self._window(session_id)
        if w is None:
            return cls(session_id=session_id)
        raw_meta = info["metadata"]
        metadata = public_metadata(raw_meta)
        if info.get("title") is not None:
            metadata.setdefault("title", info["title"])
        messages = [session_message(m) for m in w.messages()]
        archived: List[SessionMessage] = []
        if w.boundary >= 0 and self.retention != "truncate":
            archived = [session_message(m) for m in self._store.full_history(session_id)[: w.boundary + 1]]
        checkpoint = None
        saved = raw_meta.get(CHECKPOINT_KEY)
        if isinstance(saved, dict):
            shown = 1 if w.summary is not None else 0
            checkpoint = CompactionCheckpoint(
                summary=saved["summary"],
                message_index=max(0, shown + saved["raw_count"] - (w.boundary + 1)),
                role=saved.get("role", "system"),
                tokens_before=saved.get("tokens_before", 0),
                tokens_after=saved.get("tokens_after", 0),
                timestamp=saved.get("timestamp", time.time()),
                metadata=saved.get("metadata") or {},
            )
        return cls(
            session_id=session_id,
            messages=messages,
            created_at=iso(info["created_at"]),
            updated_at=iso(info["updated_at"]),
            agent_name=info.get("agent_name") or metadata.get("agent_name"),
            user_id=info.get("user_id") or metadata.get("user_id"),
            metadata=metadata,
            gateway_session_id=raw_meta.get(GATEWAY_KEY),
            agent_id=info.get("agent_id") or metadata.get("agent_id"),
            runtime_state=_runtime_state(raw_meta),
            archived_messages=archived,
            last_compaction=checkpoint,
        )

    def get_session(self, session_id: str) -> SessionData:
        """Every field of the session; an empty ``SessionData`` for an unknown id."""
        return self._session_data(session_id)

    def get_session_model(self, session_id: str) -> Optional[str]:
        """The model recorded in the session's metadata, else the latest message's."""
        return self._recorded(session_id, ("model", "llm"))

    def get_session_reasoning_effort(self, session_id: str) -> Optional[str]:
        """The reasoning effort recorded in the session's metadata, else the latest
        message's."""
        return self._recorded(session_id, ("reasoning_effort",))

    def _recorded(self, session_id: str, keys: Tuple[str, ...]) -> Optional[str]:
        try:
            metadata = self._store.session(session_id)["metadata"]
        except NotFound:
            return None
        for key in keys:
            value = metadata.get(key)
            if isinstance(value, str) and value:
                return value
        w = self._window(session_id)
        for message in reversed(w.messages() if w else []):
            value = (message.get("metadata") or {}).get(keys[0])
            if isinstance(value, str) and value:
                return value
        return None

    def session_exists(self, session_id: str) -> bool:
        return self._store.session_exists(session_id)

    def set_agent_info(
        self, session_id: str, agent_name: Optional[str] = None, user_id: Optional[str] = None
    ) -> bool:
        fields = {k: v for k, v in (("agent_name", agent_name), ("user_id", user_id)) if v}
        if not self._ensure(session_id, **fields) and fields:
            self._store.update_session(session_id, **fields)
        return True

    def update_session_metadata(self, session_id: str, **fields: Any) -> bool:
        """Merges ``fields`` (``None`` values skipped) into the session's metadata;
        ``agent_id``, ``agent_name`` and ``user_id`` also set the session's own fields."""
        patch = {k: v for k, v in fields.items() if v is not None}
        if not patch:
            return True
        self._ensure(session_id)
        own = {k: v for k, v in patch.items() if k in ("agent_id", "agent_name", "user_id") and isinstance(v, str)}
        self._store.update_session(session_id, metadata=patch, **own)
        return True

    def merge_session_metadata_map(
        self,
        session_id: str,
        key: str,
        updates: Dict[str, Any],
        *,
        defaults: Optional[Dict[str, Any]] = None,
    ) -> bool:
        """``metadata[key]`` becomes ``defaults``, overridden by what is stored, overridden by
        ``updates``."""
        self._ensure(session_id)
        self._store.merge_metadata_object(session_id, key, updates, defaults)
        return True

    def rename_session(self, session_id: str, title: str) -> bool:
        """Sets the session's title; a blank one clears it, so displays fall back to the
        derived title (agent name, first user message, id)."""
        title = (title or "").strip()
        self._ensure(session_id)
        self._store.set_title(session_id, title or None)
        return True

    def delete_session(self, session_id: str) -> bool:
        """Deletes the session (a fork of it keeps its history)."""
        try:
            self._store.delete_session(session_id)
        except NotFound:
            pass
        return True

    def _summary_row(self, s: Dict[str, Any]) -> Dict[str, Any]:
        meta = s["metadata"]
        count = s["message_count"]
        if self._windowed() and count > self.active_window:
            w = self._window(s["id"])
            count = len(w.messages()) if w else 0
        return {
            "session_id": s["id"],
            "id": s["id"],
            "agent_name": s.get("agent_name") or meta.get("agent_name"),
            "title": s.get("title") or meta.get("title"),
            "agent_id": s.get("agent_id") or meta.get("agent_id"),
            "source": meta.get("source"),
            "parent_id": s.get("parent_session") or meta.get("parent_id"),
            "parent_session_id": meta.get("parent_session_id"),
            "agent_key": meta.get("agent_key"),
            "created_at": iso(s["created_at"]),
            "updated_at": iso(s["updated_at"]),
            "message_count": count,
            "model": meta.get("model") or meta.get("llm"),
            "total_tokens": meta.get("total_tokens") or meta.get("token_count"),
            "cost": meta.get("cost"),
        }

    def list_sessions(self, limit: int = 50) -> List[Dict[str, Any]]:
        """Sessions, most recently updated first, in upstream's summary shape."""
        return [self._summary_row(s) for s in self._store.list_sessions(limit=limit)]

    def invalidate_cache(self, session_id: Optional[str] = None) -> None:
        """Drops cached histories (never needed for freshness: every read checks the
        session's version)."""
        self._store.invalidate_cache(session_id)
        with self._llm_lock:
            for key in [k for k in self._llm_cache if session_id is None or k[0] == session_id]:
                del self._llm_cache[key]

    # --- agents and gateway routing -------------------------------------------------------

    def list_sessions_by_agent(self, agent_name: str, limit: int = 50) -> List[str]:
        """Ids of the agent's sessions, most recently updated first."""
        return [s["id"] for s in self._store.list_sessions(agent_name=agent_name, limit=limit)]

    def get_sessions_by_agent(self, agent_name: str, limit: int = 10) -> List[SessionData]:
        return [self._session_data(sid) for sid in self.list_sessions_by_agent(agent_name, limit)]

    def get_agent_chat_history(
        self, agent_name: str, max_messages: Optional[int] = None, max_sessions: int = 5
    ) -> List[Dict[str, Any]]:
        """The chat histories of the agent's latest ``max_messages`` sessions, each message
        tagged with its ``session_id`` and ``agent_name``."""
        out: List[Dict[str, Any]] = []
        for session in self.get_sessions_by_agent(agent_name, max_sessions):
            for message in session.get_chat_history(max_messages):
                out.append({**message, "session_id": session.session_id, "agent_name": agent_name})
        return out

    def set_gateway_info(
        self, session_id: str, gateway_session_id: Optional[str] = None, agent_id: Optional[str] = None
    ) -> bool:
        self._ensure(session_id)
        patch = {GATEWAY_KEY: gateway_session_id} if gateway_session_id else {}
        if agent_id:
            self._store.update_session(session_id, agent_id=agent_id, metadata=patch)
        elif patch:
            self._store.update_metadata(session_id, patch)
        return True

    def get_by_gateway_session(self, gateway_session_id: str) -> Optional[SessionData]:
        for s in self._store.list_sessions():
            if s["metadata"].get(GATEWAY_KEY) == gateway_session_id:
                return self._session_data(s["id"])
        return None

    def list_sessions_by_gateway_agent(self, agent_id: str, limit: int = 50) -> List[str]:
        return [s["id"] for s in self._store.list_sessions() if s.get("agent_id") == agent_id][:limit]

    # --- runtime state --------------------------------------------------------------------

    def set_runtime_state(
        self,
        session_id: str,
        runtime_id: str,
        turn_id: str,
        state: Dict[str, Any],
        mirror_enabled: bool = True,
    ) -> bool:
        """Stores a copy of ``state`` for the runtime's turn (nothing when not
        ``mirror_enabled``). Each turn is its own atomic write, so processes setting
        different turns at once never lose one another's."""
        if not mirror_enabled:
            return True
        self._ensure(session_id)
        self._store.update_metadata(session_id, {_runtime_key(runtime_id, turn_id): copy.deepcopy(state)})
        return True

    def get_runtime_state(
        self, session_id: str, runtime_id: str, turn_id: Optional[str] = None
    ) -> Dict[str, Any]:
        try:
            metadata = self._store.session(session_id)["metadata"]
        except NotFound:
            return {}
        state = _runtime_state(metadata).get(runtime_id, {})
        if turn_id is not None:
            return state.get(turn_id, {})
        return state

    def clear_runtime_state(self, session_id: str, runtime_id: Optional[str] = None) -> bool:
        self._ensure(session_id)
        metadata = self._store.session(session_id)["metadata"]
        patch = {}
        for key in metadata:
            if key.startswith(RUNTIME_PREFIX) and (
                runtime_id is None or json.loads(key[len(RUNTIME_PREFIX) :])[0] == runtime_id
            ):
                patch[key] = None
        if patch:
            self._store.update_metadata(session_id, patch)
        return True

    # --- mirror ---------------------------------------------------------------------------

    def _mirror_append(self, session_id: str, stored: List[Dict[str, Any]]) -> None:
        writer = self._mirror_writer
        if writer is None or not stored:
            return
        records = []
        for m in stored:
            record = session_message(m).to_dict()
            record["id"] = f"{session_id}:{record['timestamp']}"
            record["session_id"] = session_id
            records.append(record)
        writer.enqueue(session_id, records)

    def flush_mirror(self, timeout: Optional[float] = None) -> bool:
        """Waits until the mirror has every queued record (True at once without one)."""
        return True if self._mirror_writer is None else self._mirror_writer.flush(timeout)

    def close_mirror(self) -> None:
        """Stops the mirror's writer, after it has sent what is queued."""
        if self._mirror_writer is not None:
            self._mirror_writer.close()

    def close(self) -> None:
        """Drains and stops the mirror, then closes the database file."""
        self.close_mirror()
        self._store.close()

    # --- recall ---------------------------------------------------------------------------

    def _candidates(self, query: str, wanted: int) -> List[str]:
        """Up to ``wanted`` sessions to score for ``query`` (upstream's allowance), from the
        full-text index (archived messages included): those with a message holding the
        query as a phrase, then all its words, then any of them, each tier most recently
        written first. Nothing is ranked, so the cost does not grow with the number of
        matching messages (ranking every match of a common word is most of a search)."""
        words = "".join(c if c.isalnum() or c.isspace() else " " for c in query).split()
        if not words:
            return []
        quoted = ['"%s"' % w for w in words]
        ids: Dict[str, None] = {}

        def tier(found: List[str]) -> bool:
            ids.update(dict.fromkeys(found))  # the newest `wanted` hold every one it adds
            return len(ids) >= wanted

        search = self._store.search_recent_sessions
        if len(words) > 1:
            every = search(" ".join(quoted), limit=wanted)
            # A message holding the phrase holds every word: with no such message, no search
            # for the phrase.
            if every and tier(search('"%s"' % " ".join(words), limit=wanted)):
                return list(ids)[:wanted]
            if tier(every):
                return list(ids)[:wanted]
        tier(search(" OR ".join(quoted), limit=wanted))
        return list(ids)[:wanted]

    def search(self, query: str, *, limit: int = 5, window: int = 5) -> List[SessionHit]:
        """Sessions matching ``query`` best first, each with the messages around its best
        match, bookends, snippet and score as upstream computes them; candidates come from
        sessiondb's full-text index instead of a scan of every session."""
        query = (query or "").strip()
        if not query:
            return []
        needle = query.lower()
        terms = [t for t in needle.split() if t]
        hits = []
        for sid in self._candidates(query, max(limit * 5, limit)):
            data = self._recall_data(sid)
            if data is None:
                continue
            messages = _Upstream._searchable_messages(data)
            best_index, best_score, total = -1, 0.0, 0.0
            for idx, msg in enumerate(messages):
                lowered = str(msg.get("content", "")).lower()
                if not lowered:
                    continue
                score = (2.0 if needle in lowered else 0.0) + sum(1.0 for t in terms if t in lowered)
                total += score
                if score > best_score:
                    best_score, best_index = score, idx
            if best_index < 0:
                continue
            if _Upstream._is_automated_session(data, messages):
                total *= self.AUTOMATED_DEMOTION
            hit = SessionHit(
                session_id=sid,
                title=_Upstream._session_title(data),
                when=data.get("updated_at") or data.get("created_at"),
                snippet=_Upstream._make_snippet(messages[best_index].get("content", ""), query),
                score=total,
                anchor_index=best_index,
                messages=_around(messages, best_index, window),
                bookends=_Upstream._bookends(messages, self.BOOKEND_SIZE),
            )
            hits.append((_Upstream._lineage_key(data), hit))
        hits.sort(key=lambda item: (item[1].score, item[1].when or ""), reverse=True)
        out: List[SessionHit] = []
        seen = set()
        for lineage, hit in hits:
            if lineage is not None:
                if lineage in seen:
                    continue
                seen.add(lineage)
            out.append(hit)
            if len(out) >= limit:
                break
        return out

    def _recall_data(self, session_id: str) -> Optional[Dict[str, Any]]:
        """What recall scores a session by, in ``SessionData.to_dict()``'s shape: its
        messages (archived, then the active window), title, agent, times, metadata."""
        try:
            info, working, partial = self._store.session_with_history(session_id)
        except NotFound:
            return None
        w = _view.window(working, self.retention, self.active_window, partial)

        def record(m: Dict[str, Any]) -> Dict[str, Any]:
            return {"role": m["role"], "content": m.get("content") or "", "timestamp": _view.epoch(m.get("created_at"))}

        archived = []
        if w.boundary >= 0 and self.retention != "truncate":
            archived = [record(m) for m in self._store.full_history(session_id)[: w.boundary + 1]]
        metadata = public_metadata(info["metadata"])
        if info.get("title") is not None:
            metadata.setdefault("title", info["title"])
        return {
            "session_id": session_id,
            "messages": [record(m) for m in w.messages()],
            "archived_messages": archived,
            "agent_name": info.get("agent_name") or metadata.get("agent_name"),
            "metadata": metadata,
            "created_at": iso(info["created_at"]),
            "updated_at": iso(info["updated_at"]),
        }

    def window(
        self, session_id: str, around_message_id: Optional[str] = None, *, window: int = 5
    ) -> List[Dict[str, Any]]:
        """±``window`` messages around message ``around_message_id`` (an index into the
        archived-then-active messages, as :meth:`search` anchors); the latest without one."""
        messages = _Upstream._searchable_messages(self._session_data(session_id).to_dict())
        if not messages:
            return []
        anchor = len(messages) - 1
        if around_message_id is not None and str(around_message_id) != "":
            try:
                anchor = int(around_message_id)
            except (TypeError, ValueError):
                pass
        return _around(messages, max(0, min(anchor, len(messages) - 1)), window)

    def recent(self, *, limit: int = 10) -> List[SessionSummary]:
        """The most recently updated sessions."""
        return [
            SessionSummary(
                session_id=s["session_id"],
                title=s.get("agent_name") or s["session_id"],
                when=s.get("updated_at") or s.get("created_at"),
                message_count=s["message_count"],
            )
            for s in self.list_sessions(limit=limit)
        ]

    # --- export / import ------------------------------------------------------------------

    def export_session(self, session_id: str, *, include_lineage: bool = True) -> Dict[str, Any]:
        if not self.session_exists(session_id):
            return {"version": self.PORTABLE_VERSION, "sessions": []}
        session = self._session_data(session_id, SessionData)
        sessions = [session.to_dict()]
        lineage = _Upstream._lineage_key(sessions[0])
        if include_lineage and lineage:
            for s in self._store.list_sessions():
                if s["id"] != session_id and _Upstream._lineage_key({"metadata": s["metadata"]}) == lineage:
                    sessions.append(self._session_data(s["id"], SessionData).to_dict())
        return {"version": self.PORTABLE_VERSION, "sessions": sessions}

    def export_all(self) -> Dict[str, Any]:
        ids = [s["id"] for s in self._store.list_sessions()]
        return {
            "version": self.PORTABLE_VERSION,
            "sessions": [self._session_data(i, SessionData).to_dict() for i in ids],
        }

    def import_sessions(
        self,
        payload: Dict[str, Any],
        *,
        max_sessions: int = 10_000,
        reset_live_fields: bool = True,
        overwrite: bool = False,
    ) -> ImportReport:
        """Imports an export payload through sessiondb's PraisonAI importer: each session in
        one transaction; existing sessions are skipped unless ``overwrite``."""
        report = ImportReport(version=self.PORTABLE_VERSION)
        if not isinstance(payload, dict) or not isinstance(payload.get("sessions"), list):
            report.skipped.append({"session_id": "", "reason": "payload has no sessions list"})
            return report
        with tempfile.TemporaryDirectory(prefix="sessiondb-import-") as tmp:
            wanted = 0
            for n, record in enumerate(payload["sessions"]):
                sid = record.get("session_id") if isinstance(record, dict) else None
                if not isinstance(sid, str) or not sid:
                    report.skipped.append({"session_id": str(sid or ""), "reason": "malformed record"})
                    continue
                if wanted >= max_sessions:
                    report.skipped.append({"session_id": sid, "reason": "max_sessions exceeded"})
                    continue
                record = dict(record)
                if reset_live_fields:
                    for key in ("gateway_session_id", "agent_id"):
                        record[key] = None
                with open(os.path.join(tmp, f"{n}.json"), "w", encoding="utf-8") as f:
                    json.dump(record, f)
                wanted += 1
            if wanted:
                result = self._store.import_praisonai(tmp, overwrite=overwrite)
                report.imported = result["imported"] + result["updated"]
                for source, reason in result["skipped"]:
                    report.skipped.append({"session_id": source, "reason": reason})
        return report


def _around(messages: List[Dict[str, Any]], anchor: int, window: int) -> List[Dict[str, Any]]:
    start, end = max(0, anchor - window), min(len(messages), anchor + window + 1)
    return [
        {
            "index": i,
            "role": messages[i].get("role", ""),
            "content": messages[i].get("content", ""),
            "timestamp": messages[i].get("timestamp"),
            "archived": bool(messages[i].get("archived")),
        }
        for i in range(start, end)
    ]
