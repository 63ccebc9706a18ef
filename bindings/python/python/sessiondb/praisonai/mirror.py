"""A sessiondb file (or PostgreSQL database) as PraisonAI's ``SessionMirrorProtocol`` sink:
pass ``SessiondbMirror(path)`` as ``mirror=`` to PraisonAI's own stores and every message
they persist lands here too, once per record id, whichever process or machine sends it."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from .. import KeysPartlyStored, NotFound, Store
from ._view import RESERVED, stamp_text

# Record fields kept as the message's own; the rest ride in its metadata.
_OWN = ("role", "content", "metadata", "tool_calls", "tool_call_id", "id", "session_id")
_EXTRA = RESERVED + ".record"


def _message(record: Dict[str, Any]) -> Dict[str, Any]:
    message: Dict[str, Any] = {
        "role": record.get("role", "user"),
        "content": record.get("content") if record.get("content") is not None else "",
        "key": str(record["id"]),
    }
    metadata = dict(record.get("metadata") or {})
    extra = {k: v for k, v in record.items() if k not in _OWN}
    if extra:
        metadata[_EXTRA] = extra
    if metadata:
        message["metadata"] = metadata
    if isinstance(record.get("tool_calls"), list) and record["tool_calls"]:
        message["tool_calls"] = record["tool_calls"]
    if record.get("tool_call_id") is not None:
        message["tool_call_id"] = record["tool_call_id"]
    stamp = stamp_text(record.get("timestamp"))
    if stamp:
        message["created_at"] = stamp
    return message


def _record(session_id: str, message: Dict[str, Any]) -> Dict[str, Any]:
    metadata = dict(message.get("metadata") or {})
    extra = metadata.pop(_EXTRA, {})
    record: Dict[str, Any] = {"id": message.get("key"), "session_id": session_id, **extra}
    record.update(role=message["role"], content=message.get("content"), metadata=metadata)
    if message.get("tool_calls"):
        record["tool_calls"] = message["tool_calls"]
    if message.get("tool_call_id") is not None:
        record["tool_call_id"] = message["tool_call_id"]
    return record


class SessiondbMirror:
    """``SessionMirrorProtocol`` on sessiondb. Each record is a message keyed by its ``id``:
    appending a record again (a retry, another process, another machine) stores nothing
    new, and a batch is one transaction.

    Args:
        path: The sessiondb file or a ``postgres://`` URL.
        store: An open :class:`sessiondb.Store` instead.
    """

    def __init__(self, path: Optional[str] = None, *, store: Optional[Store] = None) -> None:
        self._store = store if store is not None else Store(path)

    @property
    def store(self) -> Store:
        return self._store

    def append(self, session_id: str, records: List[Dict[str, Any]]) -> None:
        batch = [_message(r) for r in records if isinstance(r, dict) and r.get("id") is not None]
        # Records without an id cannot be deduplicated; upstream always tags them.
        while batch:
            try:
                self._store.add_messages(session_id, batch)
                return
            except KeysPartlyStored as exc:
                stored = set(exc.stored)
                batch = [m for m in batch if m["key"] not in stored]

    def load(self, session_id: str) -> List[Dict[str, Any]]:
        try:
            return [_record(session_id, m) for m in self._store.full_history(session_id)]
        except NotFound:
            return []

    def list_sessions(self, *, user_id: Optional[str] = None) -> List[Dict[str, Any]]:
        return [
            {
                "session_id": s["id"],
                "user_id": s.get("user_id"),
                "updated_at": s["updated_at"],
                "message_count": s["message_count"],
            }
            for s in self._store.list_sessions(user_id=user_id)
        ]

    def close(self) -> None:
        self._store.close()
