"""PraisonAI's session stores over sessiondb: same methods, arguments, return values and
dataclasses as ``praisonaiagents`` 1.7.17's ``DefaultSessionStore`` and
``HierarchicalSessionStore``, without their lost writes.

    from sessiondb.praisonai import install_as_default
    install_as_default()          # every PraisonAI agent now keeps its sessions in sessiondb

The database file is ``sessions.db`` inside ``session_dir`` (PraisonAI's directory by default),
so one file holds every session, shared safely by any number of processes. What behaves
differently, and why, is listed in ``docs/praisonai.md``: in short, nothing is ever dropped
(no truncation or summarising on write), concurrent writers never overwrite each other, and
forks, snapshots and reverts copy nothing and destroy nothing.

Requires ``praisonaiagents`` (``pip install 'sessiondb[praisonai]'``).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

from praisonaiagents.session import store as _upstream
from praisonaiagents.session.hierarchy import ExtendedSessionData, SessionSnapshot
from praisonaiagents.session.protocols import ImportReport
from praisonaiagents.session.store import (
    CompactionCheckpoint,
    SessionData,
    SessionMessage,
)

from . import InvalidInput, NotFound, Store
from ._core import copy_json

__all__ = [
    "DefaultSessionStore",
    "HierarchicalSessionStore",
    "install_as_default",
    "SessionData",
    "SessionMessage",
    "CompactionCheckpoint",
    "ExtendedSessionData",
    "SessionSnapshot",
    "ImportReport",
]

DATABASE_FILE = "sessions.db"
# Sessions (and windows) whose converted chat history a store keeps.
_LLM_CACHE_ENTRIES = 256
_PORTABLE_VERSION = 1


def _epoch(text: Optional[str]) -> float:
    if not text:
        return time.time()
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _iso(text: Optional[str]) -> str:
    """sessiondb's UTC timestamp in the form PraisonAI writes (``isoformat()``)."""
    if not text:
        return datetime.now(timezone.utc).isoformat()
    return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()


def _llm_message(message: Dict[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {"role": message["role"], "content": message.get("content")}
    if message.get("tool_calls"):
        out["tool_calls"] = message["tool_calls"]
    if message.get("tool_call_id") is not None:
        out["tool_call_id"] = message["tool_call_id"]
    return out


def _session_message(message: Dict[str, Any]) -> SessionMessage:
    return SessionMessage(
        role=message["role"],
        content=message.get("content") or "",
        timestamp=_epoch(message.get("created_at")),
        metadata=dict(message.get("metadata") or {}),
        tool_calls=message.get("tool_calls"),
        tool_call_id=message.get("tool_call_id"),
    )


def _message_in(
    role: str,
    content: Optional[str],
    metadata: Optional[Dict[str, Any]] = None,
    tool_calls: Optional[List[Dict[str, Any]]] = None,
    tool_call_id: Optional[str] = None,
) -> Dict[str, Any]:
    message: Dict[str, Any] = {"role": role, "content": content or ""}
    if metadata:
        message["metadata"] = metadata
    if tool_calls:
        message["tool_calls"] = tool_calls
    if tool_call_id is not None:
        message["tool_call_id"] = tool_call_id
    return message


class DefaultSessionStore:
    """``praisonaiagents.session.DefaultSessionStore`` over one sessiondb file.

    Args:
        session_dir: Directory of the database file (``sessions.db`` inside it);
            PraisonAI's session directory by default.
        max_messages: Default window of :meth:`get_working_history`, as upstream.
            History is never trimmed on write (see ``docs/praisonai.md``).
        lock_timeout: How long a write waits for another process's write (seconds).
        retention, active_window, mirror, cache_maxsize: Accepted for compatibility;
            sessiondb keeps every message (``retention`` is always ``"keep_all"``) and its
            cache is bounded and version-checked.
        path: The database file itself, overriding ``session_dir``.
    """

    PORTABLE_VERSION = _PORTABLE_VERSION

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
    ) -> None:
        if retention not in (None, "compact", "truncate", "keep_all"):
            raise ValueError(
                f"Invalid retention {retention!r}; expected one of 'compact', 'truncate', 'keep_all'"
            )
        self.session_dir = session_dir or _upstream._resolve_default_session_dir()
        self.max_messages = max_messages
        self.lock_timeout = lock_timeout
        self.retention = "keep_all"
        self.active_window = active_window if active_window is not None else max_messages
        self.path = path or os.path.join(self.session_dir, DATABASE_FILE)
        self._store = Store(
            self.path,
            busy_timeout=lock_timeout,
            cache_entries=cache_maxsize if cache_maxsize > 0 else 1024,
        )
        # get_chat_history's converted messages: session, window -> (version, messages).
        self._llm_cache: "OrderedDict[tuple[str, Optional[int]], tuple[int, List[Dict[str, Any]]]]" = OrderedDict()
        self._llm_lock = threading.Lock()

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
        self._store.add_message(
            session_id, _message_in(role, content, metadata, tool_calls, tool_call_id)
        )
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
                self._store.finish_stream(session_id, content=content or partial["content"])
            elif content:
                self.add_assistant_message(session_id, content)
            return True
        if partial is not None and not content.startswith(partial["content"]):
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

    def _messages(self, session_id: str, max_messages: Optional[int]) -> List[Dict[str, Any]]:
        """The history with a streaming reply as its trailing partial message, as upstream
        shows it."""
        try:
            messages, partial = self._store.chat_history_with_partial(session_id, max_messages)
        except NotFound:
            return []
        if partial is not None:
            messages.append(
                {
                    "role": "assistant",
                    "content": partial["content"],
                    "metadata": {**(partial.get("metadata") or {}), "partial": True},
                    "created_at": partial["updated_at"],
                }
            )
            if max_messages and len(messages) > max_messages:
                messages = messages[len(messages) - max_messages :]
        return messages

    def get_chat_history(
        self, session_id: str, max_messages: Optional[int] = None
    ) -> List[Dict[str, Any]]:
        """The latest ``max_messages`` (all when ``None``) as ``{"role", "content"}`` dicts
        (with ``tool_calls`` / ``tool_call_id`` when present); never starts on an orphaned
        tool result.

        Every call reads the session's version and its streaming reply from the file; the
        converted messages of the version last read are kept, so an unchanged history is
        handed out as fresh copies without converting it again."""
        key = (session_id, max_messages)
        with self._llm_lock:
            known = self._llm_cache.get(key)
        try:
            version, messages, partial = self._store.chat_history_if_changed(
                session_id, max_messages, known_version=known[0] if known else None
            )
        except NotFound:
            return []
        if messages is None and known is not None:
            llm = known[1]
        else:
            llm = [_llm_message(m) for m in messages]
            with self._llm_lock:
                self._llm_cache[key] = (version, llm)
                self._llm_cache.move_to_end(key)
                while len(self._llm_cache) > _LLM_CACHE_ENTRIES:
                    self._llm_cache.popitem(last=False)
        out = copy_json(llm)
        if partial is not None:
            out.append({"role": "assistant", "content": partial["content"]})
            if max_messages and len(out) > max_messages:
                out = out[len(out) - max_messages :]
        return out

    def set_chat_history(self, session_id: str, messages: List[Dict[str, Any]]) -> bool:
        """Replaces the history in one transaction; the old one stays readable as a
        superseded branch. A message's ``timestamp`` (epoch seconds), when given, is its
        stored time."""
        new = []
        for m in messages:
            message = _message_in(
                m.get("role", "user"),
                m.get("content"),
                m.get("metadata"),
                m.get("tool_calls"),
                m.get("tool_call_id"),
            )
            stamp = m.get("timestamp")
            if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
                # Upstream messages carry their time (epoch seconds): keep it.
                message["created_at"] = datetime.fromtimestamp(stamp, timezone.utc).isoformat()
            new.append(message)
        self._ensure(session_id)
        self._store.set_chat_history(session_id, new)
        return True

    def clear_session(self, session_id: str) -> bool:
        if not self._ensure(session_id):
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
        """Records a compaction: the working history becomes ``summary`` followed by what is
        appended later. Nothing is removed (``get_session`` still has every message)."""
        summary = summary or ""
        if not summary.strip():
            return False
        try:
            length = len(self._store.full_history(session_id))
        except NotFound:
            length = 0
        if length == 0:
            return False
        message = _message_in(role, summary, metadata)
        message["input_tokens"] = tokens_before
        message["output_tokens"] = tokens_after
        try:
            self._store.compact(session_id, message, length - 1)
        except InvalidInput:
            return False
        return True

    def get_working_history(
        self, session_id: str, max_messages: Optional[int] = None
    ) -> List[Dict[str, Any]]:
        """The latest compaction's summary followed by the messages after it (the whole
        history without one), at most ``max_messages`` (the store's ``max_messages``), the
        summary kept at the head."""
        limit = max_messages or self.max_messages
        try:
            compactions = self._store.compactions(session_id)
        except NotFound:
            return []
        if not compactions:
            return self.get_chat_history(session_id, limit)
        summary = compactions[-1]["summary"]
        tail = self._messages(session_id, limit - 1) if limit > 1 else []
        tail = [m for m in tail if "index" not in m or m["index"] > summary["index"]]
        return [{"role": summary["role"], "content": summary["content"]}] + [
            _llm_message(m) for m in tail
        ]

    # --- sessions -------------------------------------------------------------------------

    def _session_data(self, session_id: str, cls: type = SessionData) -> Any:
        try:
            info = self._store.session(session_id)
        except NotFound:
            return cls(session_id=session_id)
        metadata = dict(info["metadata"])
        if info.get("title") is not None:
            metadata.setdefault("title", info["title"])
        full = self._store.full_history(session_id)
        compactions = self._store.compactions(session_id)
        checkpoint = None
        if compactions:
            last = compactions[-1]
            checkpoint = CompactionCheckpoint(
                summary=last["summary"]["content"] or "",
                message_index=last["through_index"] + 1,
                role=last["summary"]["role"],
                tokens_before=last.get("tokens_before") or 0,
                tokens_after=last.get("tokens_after") or 0,
                timestamp=_epoch(last["created_at"]),
                metadata=dict(last["summary"].get("metadata") or {}),
            )
        messages = [_session_message(m) for m in full]
        partial = self._store.partial_message(session_id)
        if partial is not None:
            messages.append(
                SessionMessage(
                    role="assistant",
                    content=partial["content"],
                    timestamp=_epoch(partial["updated_at"]),
                    metadata={**(partial.get("metadata") or {}), "partial": True},
                )
            )
        data = cls(
            session_id=session_id,
            messages=messages,
            created_at=_iso(info["created_at"]),
            updated_at=_iso(info["updated_at"]),
            agent_name=info.get("agent_name") or metadata.get("agent_name"),
            user_id=info.get("user_id") or metadata.get("user_id"),
            metadata=metadata,
            agent_id=info.get("agent_id") or metadata.get("agent_id"),
            last_compaction=checkpoint,
        )
        return data

    def get_session(self, session_id: str) -> SessionData:
        """Every field of the session; an empty ``SessionData`` for an unknown id."""
        return self._session_data(session_id)

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

    def rename_session(self, session_id: str, title: str) -> bool:
        """Sets (or, when blank, clears) the session's title."""
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

    def list_sessions(self, limit: int = 50) -> List[Dict[str, Any]]:
        """Sessions, most recently updated first, in upstream's summary shape."""
        out = []
        for s in self._store.list_sessions(limit=limit):
            meta = s["metadata"]
            out.append(
                {
                    "session_id": s["id"],
                    "id": s["id"],
                    "agent_name": s.get("agent_name") or meta.get("agent_name"),
                    "title": s.get("title") or meta.get("title"),
                    "agent_id": s.get("agent_id") or meta.get("agent_id"),
                    "source": meta.get("source"),
                    "parent_id": s.get("parent_session") or meta.get("parent_id"),
                    "parent_session_id": meta.get("parent_session_id"),
                    "agent_key": meta.get("agent_key"),
                    "created_at": _iso(s["created_at"]),
                    "updated_at": _iso(s["updated_at"]),
                    "message_count": s["message_count"],
                    "model": meta.get("model") or meta.get("llm"),
                    "total_tokens": meta.get("total_tokens") or meta.get("token_count"),
                    "cost": meta.get("cost"),
                }
            )
        return out

    def invalidate_cache(self, session_id: Optional[str] = None) -> None:
        """Drops cached histories (never needed for freshness: every read checks the
        session's version)."""
        self._store.invalidate_cache(session_id)
        with self._llm_lock:
            for key in [k for k in self._llm_cache if session_id is None or k[0] == session_id]:
                del self._llm_cache[key]

    # --- export / import ------------------------------------------------------------------

    def export_session(self, session_id: str, *, include_lineage: bool = True) -> Dict[str, Any]:
        if not self.session_exists(session_id):
            return {"version": self.PORTABLE_VERSION, "sessions": []}
        return {"version": self.PORTABLE_VERSION, "sessions": [self.get_session(session_id).to_dict()]}

    def export_all(self) -> Dict[str, Any]:
        ids = [s["id"] for s in self._store.list_sessions()]
        return {"version": self.PORTABLE_VERSION, "sessions": [self.get_session(i).to_dict() for i in ids]}

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


class HierarchicalSessionStore(DefaultSessionStore):
    """``praisonaiagents.session.HierarchicalSessionStore`` over sessiondb: forks share their
    parent's messages, snapshots are pointers, and reverting keeps what it replaces."""

    def create_session(
        self,
        session_id: Optional[str] = None,
        title: Optional[str] = None,
        parent_id: Optional[str] = None,
        agent_name: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
    ) -> str:
        metadata = dict(metadata or {})
        if parent_id is not None:
            # An empty child (upstream's create_session copies nothing): the link is recorded
            # in metadata, as the core links only forks.
            metadata["parent_id"] = parent_id
        created = self._store.create_session(
            session_id, title=title, agent_name=agent_name, metadata=metadata or {}
        )
        return created["id"]

    def fork_session(
        self, session_id: str, from_message_index: Optional[int] = None, title: Optional[str] = None
    ) -> str:
        """A new session with messages ``0..=from_message_index`` (all when ``None``) of
        ``session_id``; copies no message."""
        fork = self._store.fork_session(session_id, from_message_index, title)
        return fork["id"]

    def get_children(self, session_id: str) -> List[str]:
        try:
            forks = [s["id"] for s in self._store.child_sessions(session_id)]
        except NotFound:
            return []
        linked = [
            s["id"]
            for s in self._store.list_sessions()
            if s["metadata"].get("parent_id") == session_id and s["id"] not in forks
        ]
        return forks + linked

    def get_parent(self, session_id: str) -> Optional[str]:
        try:
            parent = self._store.parent_session(session_id)
        except NotFound:
            return None
        if parent is not None:
            return parent
        return self._store.session(session_id)["metadata"].get("parent_id")

    def get_session_tree(self, session_id: str) -> Dict[str, Any]:
        """The session and its children (forks and ``create_session(parent_id=…)``
        children), recursively."""

        def node(sid: str, path: frozenset) -> Dict[str, Any]:
            if sid in path:
                raise ValueError(f"Cycle detected in session tree at '{sid}'")
            try:
                info = self._store.session(sid)
                title, count = info.get("title"), info["message_count"]
            except NotFound:
                title, count = None, 0
            children = [node(c, path | {sid}) for c in self.get_children(sid)]
            return {"session_id": sid, "title": title, "message_count": count, "children": children}

        return node(session_id, frozenset())

    def create_snapshot(
        self, session_id: str, label: Optional[str] = None, metadata: Optional[Dict[str, Any]] = None
    ) -> str:
        return str(self._store.create_snapshot(session_id, label, metadata or {})["id"])

    def get_snapshots(self, session_id: str) -> List[SessionSnapshot]:
        try:
            snapshots = self._store.snapshots(session_id)
        except NotFound:
            return []
        return [
            SessionSnapshot(
                id=str(s["id"]),
                session_id=s["session_id"],
                message_index=max(0, s["length"] - 1),
                created_at=_epoch(s["created_at"]),
                label=s.get("label"),
                metadata=dict(s["metadata"]),
            )
            for s in snapshots
        ]

    def revert_to_snapshot(self, session_id: str, snapshot_id: str) -> bool:
        try:
            self._store.restore_snapshot(session_id, int(snapshot_id))
        except (NotFound, ValueError):
            return False
        return True

    def revert_to_message(self, session_id: str, message_index: int) -> bool:
        """Keeps messages ``0..=message_index``; the replaced history stays as a branch."""
        if message_index < 0:
            return False
        try:
            self._store.revert_to_message(session_id, message_index)
        except (NotFound, InvalidInput):
            return False
        return True

    def get_session(self, session_id: str) -> ExtendedSessionData:
        return self.get_extended_session(session_id)

    def get_extended_session(self, session_id: str, force_reload: bool = False) -> ExtendedSessionData:
        data = self._session_data(session_id, ExtendedSessionData)
        if self.session_exists(session_id):
            data.parent_id = self.get_parent(session_id)
            data.children_ids = self.get_children(session_id)
            data.snapshots = self.get_snapshots(session_id)
            data.title = self._store.session(session_id).get("title")
        return data

    def set_title(self, session_id: str, title: str) -> bool:
        return self.rename_session(session_id, title)

    def export_session(self, session_id: str) -> Dict[str, Any]:  # type: ignore[override]
        return self.get_extended_session(session_id).to_dict()

    def import_session(self, data: Dict[str, Any], new_session_id: Optional[str] = None) -> str:
        import uuid

        record = dict(data)
        record["session_id"] = new_session_id or str(uuid.uuid4())
        for key in ("parent_id", "forked_from_message_id"):
            record[key] = None
        record["children_ids"] = []
        report = self.import_sessions({"sessions": [record]}, reset_live_fields=False, overwrite=True)
        if report.skipped:
            raise OSError(f"Failed to save imported session {record['session_id']}: {report.skipped}")
        return record["session_id"]


def install_as_default(path: Optional[str] = None) -> DefaultSessionStore:
    """Makes PraisonAI's ``get_default_session_store()`` (used by every agent) return a
    sessiondb store: of the file ``path``, or ``sessions.db`` in PraisonAI's session
    directory. Returns it."""
    store = HierarchicalSessionStore(path=path) if path else HierarchicalSessionStore()
    _upstream._default_store = store
    return store
