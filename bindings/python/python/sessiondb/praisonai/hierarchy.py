"""``HierarchicalSessionStore`` over sessiondb: forks share their parent's messages,
snapshots are pointers, and reverting keeps what it replaces."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Dict, List, Optional

from praisonaiagents.session.hierarchy import ExtendedSessionData, SessionSnapshot

from .. import InvalidInput, NotFound
from ._view import SHARED_KEY, llm_message
from .default import DefaultSessionStore
from ._view import epoch


class HierarchicalSessionStore(DefaultSessionStore):
    """``praisonaiagents.session.HierarchicalSessionStore`` over sessiondb.

    Message indexes (``fork_session``, ``revert_to_message``, snapshots) count the active
    window as upstream does: under ``retention="compact"`` index 0 of a long session is its
    summary. Snapshots double as ``CheckpointQueryProtocol`` checkpoints."""

    _data_class = ExtendedSessionData

    def _raw_index(self, session_id: str, index: int) -> Optional[int]:
        """The full-history index of active-window message ``index`` (recording the window
        first, so what the index names cannot move), or None when out of range."""
        w = self._record_window(session_id, always=True)
        if w is None:
            return None
        shown = w.messages()
        if index < 0 or index >= len(shown):
            return None
        if w.summary is not None:
            return w.boundary + index
        return w.boundary + 1 + index

    def create_session(
        self,
        session_id: Optional[str] = None,
        title: Optional[str] = None,
        parent_id: Optional[str] = None,
        agent_name: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
    ) -> str:
        sid = session_id or str(uuid.uuid4())
        if parent_id == sid:
            raise ValueError(f"Session {sid} cannot be its own parent")
        metadata = dict(metadata or {})
        if parent_id is not None:
            # An empty child (upstream's create_session copies nothing): the link is recorded
            # in metadata, as the core links only forks.
            metadata["parent_id"] = parent_id
        created = self._store.create_session(sid, title=title, agent_name=agent_name, metadata=metadata)
        return created["id"]

    def fork_session(
        self, session_id: str, from_message_index: Optional[int] = None, title: Optional[str] = None
    ) -> str:
        """A new session with messages ``0..=from_message_index`` (all when ``None``) of
        ``session_id``'s active window; copies no message. Raises ``ValueError`` for an
        index outside it, as upstream."""
        if from_message_index is None:
            self._record_window(session_id, always=True)
            at = None
        else:
            at = self._raw_index(session_id, from_message_index)
            if at is None:
                raise ValueError(f"Invalid message index {from_message_index}")
        try:
            parent = self._store.session(session_id)
        except NotFound:
            parent = None
        if title is None:
            title = f"Fork of {(parent or {}).get('title') or session_id}"
        if parent is None:
            return self.create_session(title=title)
        fork = self._store.fork_session(session_id, at, title)
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
            data = self._session_data(sid)
            children = [node(c, path | {sid}) for c in self.get_children(sid)]
            return {
                "session_id": sid,
                "title": data.title,
                "message_count": len(data.messages),
                "children": children,
            }

        return node(session_id, frozenset())

    def create_snapshot(
        self, session_id: str, label: Optional[str] = None, metadata: Optional[Dict[str, Any]] = None
    ) -> str:
        self._ensure(session_id)
        self._record_window(session_id, always=True)
        return str(self._store.create_snapshot(session_id, label, metadata or {})["id"])

    def _snapshot(self, s: Dict[str, Any]) -> SessionSnapshot:
        return SessionSnapshot(
            id=str(s["id"]),
            session_id=s["session_id"],
            message_index=s["length"] - 1,
            created_at=epoch(s["created_at"]),
            label=s.get("label"),
            metadata=dict(s["metadata"]),
        )

    def get_snapshots(self, session_id: str) -> List[SessionSnapshot]:
        try:
            return [self._snapshot(s) for s in self._store.snapshots(session_id)]
        except NotFound:
            return []

    def revert_to_snapshot(self, session_id: str, snapshot_id: str) -> bool:
        try:
            self._store.restore_snapshot(session_id, int(snapshot_id))
        except (NotFound, ValueError, InvalidInput):
            return False
        return True

    def revert_to_message(self, session_id: str, message_index: int) -> bool:
        """Keeps active messages ``0..=message_index``; the replaced history stays as a
        branch."""
        at = self._raw_index(session_id, message_index)
        if at is None:
            return False
        try:
            self._store.revert_to_message(session_id, at)
        except (NotFound, InvalidInput):
            return False
        return True

    # --- checkpoints (CheckpointQueryProtocol, on snapshots) ------------------------------

    def list_checkpoints(self, session_id: str) -> List[Dict[str, Any]]:
        """The session's snapshots, oldest first: ``id``, ``session_id``, ``label``,
        ``message_index``, ``created_at``, ``metadata``."""
        return [s.to_dict() for s in self.get_snapshots(session_id)]

    def get_checkpoint(self, session_id: str, checkpoint_id: str) -> Optional[Dict[str, Any]]:
        """One snapshot with the ``messages`` it restores; None when there is none."""
        try:
            wanted = int(checkpoint_id)
            found = [s for s in self._store.snapshots(session_id) if s["id"] == wanted]
        except (NotFound, ValueError):
            return None
        if not found:
            return None
        s = found[0]
        history = self._store.branch_history(session_id, s["branch"])[: s["length"]]
        out = self._snapshot(s).to_dict()
        out["messages"] = [llm_message(m) for m in history]
        return out

    # --- sharing and titles ---------------------------------------------------------------

    def share_session(self, session_id: str) -> bool:
        self._ensure(session_id)
        self._store.update_metadata(session_id, {SHARED_KEY: True})
        return True

    def unshare_session(self, session_id: str) -> bool:
        self._ensure(session_id)
        self._store.update_metadata(session_id, {SHARED_KEY: None})
        return True

    def is_shared(self, session_id: str) -> bool:
        try:
            return bool(self._store.session(session_id)["metadata"].get(SHARED_KEY))
        except NotFound:
            return False

    def set_title(self, session_id: str, title: str) -> bool:
        return self.rename_session(session_id, title)

    async def auto_title(self, session_id: str) -> bool:
        """Titles an untitled session from its first exchange with PraisonAI's title
        generator (an LLM call); False when it has a title or no exchange yet."""
        data = await asyncio.to_thread(self._session_data, session_id)
        if data.title and data.title.strip():
            return False
        user = assistant = None
        for m in data.messages:
            if m.role == "user" and not user and isinstance(m.content, str) and m.content.strip():
                user = m.content
            elif m.role == "assistant" and user and isinstance(m.content, str) and m.content.strip():
                assistant = m.content
                break
        if not user or not assistant:
            return False
        try:
            from praisonaiagents.session.title import generate_title_async

            title = await generate_title_async(user, assistant)
        except Exception:
            return False
        if not title or not title.strip():
            return False
        info = await asyncio.to_thread(self._store.session, session_id)
        if info.get("title"):
            return False
        await asyncio.to_thread(self._store.set_title, session_id, title.strip())
        return True

    # --- sessions -------------------------------------------------------------------------

    def _session_data(self, session_id: str, cls: Optional[type] = None) -> Any:
        data = super()._session_data(session_id, cls)
        if isinstance(data, ExtendedSessionData) and self.session_exists(session_id):
            info = self._store.session(session_id)
            data.parent_id = self.get_parent(session_id)
            data.children_ids = self.get_children(session_id)
            data.snapshots = self.get_snapshots(session_id)
            data.title = info.get("title")
            data.is_shared = bool(info["metadata"].get(SHARED_KEY))
        return data

    def get_session(self, session_id: str) -> ExtendedSessionData:
        return self._session_data(session_id)

    def get_extended_session(self, session_id: str, force_reload: bool = False) -> ExtendedSessionData:
        return self._session_data(session_id)

    def export_session(self, session_id: str) -> Dict[str, Any]:  # type: ignore[override]
        return self._session_data(session_id).to_dict()

    def import_session(self, data: Dict[str, Any], new_session_id: Optional[str] = None) -> str:
        record = dict(data)
        record["session_id"] = new_session_id or str(uuid.uuid4())
        for key in ("parent_id", "forked_from_message_id"):
            record[key] = None
        record["children_ids"] = []
        report = self.import_sessions({"sessions": [record]}, reset_live_fields=False, overwrite=True)
        if report.skipped:
            raise OSError(f"Failed to save imported session {record['session_id']}: {report.skipped}")
        return record["session_id"]
