"""Drop-ins for praisonaiagents 1.7.17's own SQLite stores: ``SqliteTranscriptStore`` (one
row per session, rewritten per message) and ``SqliteSessionStore`` (JSON files plus an FTS5
index). Same constructor arguments; ``db_path`` is the sessiondb file, which holds both the
transcripts and the full-text index, so one import switches a user over."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from typing import Any, Optional

from .default import DATABASE_FILE, DefaultSessionStore


def _database_path(session_dir: Optional[str], db_path: Optional[str], resolved_dir: str) -> str:
    if db_path == ":memory:":
        # An ephemeral store: a private file, gone when the process ends.
        tmp = tempfile.mkdtemp(prefix="sessiondb-memory-")
        atexit.register(shutil.rmtree, tmp, True)
        return os.path.join(tmp, DATABASE_FILE)
    if db_path is None:
        return os.path.join(resolved_dir, DATABASE_FILE)
    return os.path.expanduser(db_path)


class SqliteTranscriptStore(DefaultSessionStore):
    """``praisonaiagents.session.SqliteTranscriptStore`` over sessiondb.

    Args:
        session_dir: As upstream: the directory ``db_path`` defaults into.
        db_path: The sessiondb file (``sessions.db`` in ``session_dir`` by default;
            ``":memory:"``: a private file removed at exit).
        **kwargs: As :class:`DefaultSessionStore` (``retention``, ``active_window``,
            ``max_messages``, ``lock_timeout``, ``mirror``, ``cache_maxsize``).
    """

    def __init__(self, session_dir: Optional[str] = None, db_path: Optional[str] = None, **kwargs: Any) -> None:
        from praisonaiagents.session import store as _upstream

        resolved = session_dir or _upstream._resolve_default_session_dir()
        path = _database_path(session_dir, db_path, resolved)
        if kwargs.get("store") is None:
            kwargs["path"] = path
        super().__init__(session_dir=resolved, **kwargs)
        self.db_path = db_path if db_path == ":memory:" else self.path
        if db_path != ":memory:" and kwargs.get("store") is None:
            self._import_legacy_json()

    def _import_legacy_json(self) -> None:
        """As upstream's first open: when the database holds no session yet, the PraisonAI
        JSON session files in ``session_dir`` (a ``DefaultSessionStore``'s, or
        ``SqliteSessionStore``'s transcripts) are imported, so switching to this store shows
        the sessions already there. Unreadable files are skipped, as upstream."""
        try:
            has_json = any(f.endswith(".json") for f in os.listdir(self.session_dir))
        except OSError:
            return
        if has_json and not self._store.list_sessions(limit=1):
            self._store.import_praisonai(self.session_dir, overwrite=False)


class SqliteSessionStore(SqliteTranscriptStore):
    """``praisonaiagents.session.SqliteSessionStore`` over sessiondb: its search index is
    sessiondb's full-text index, kept in the same transaction as every message."""

    INDEX_CONTENT_VERSION = 2
