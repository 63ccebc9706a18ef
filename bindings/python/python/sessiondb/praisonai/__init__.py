"""PraisonAI's session stores over sessiondb: the whole public API of ``praisonaiagents``
1.7.17's ``DefaultSessionStore``, ``HierarchicalSessionStore``, ``SqliteTranscriptStore``
and ``SqliteSessionStore`` — same methods, arguments, return values and dataclasses —
without their lost writes.

    from sessiondb.praisonai import install_as_default
    install_as_default()          # every PraisonAI agent now keeps its sessions in sessiondb

The database file is ``sessions.db`` inside ``session_dir`` (PraisonAI's directory by default),
so one file holds every session, shared safely by any number of processes. Retention
(``"compact"``, ``"truncate"``, ``"keep_all"``) shapes the active window as upstream does, but
nothing is ever deleted: the full history stays in the file. ``SessiondbMirror`` makes a
sessiondb file (or PostgreSQL database) a ``SessionMirrorProtocol`` sink for PraisonAI's own
stores, and upstream's ``EncryptedSessionStore`` wraps these stores unchanged. What behaves
differently, and why, is listed in ``docs/praisonai.md``.

Requires ``praisonaiagents`` (``pip install 'sessiondb[praisonai]'``).
"""

from __future__ import annotations

from typing import Optional

from praisonaiagents.session import store as _upstream
from praisonaiagents.session.encrypted_store import EncryptedSessionStore
from praisonaiagents.session.hierarchy import ExtendedSessionData, SessionSnapshot
from praisonaiagents.session.protocols import ImportReport, SessionHit, SessionSummary
from praisonaiagents.session.store import CompactionCheckpoint, SessionData, SessionMessage

from .default import DefaultSessionStore
from .hierarchy import HierarchicalSessionStore
from .mirror import SessiondbMirror
from .sqlite import SqliteSessionStore, SqliteTranscriptStore

__all__ = [
    "DefaultSessionStore",
    "HierarchicalSessionStore",
    "SqliteTranscriptStore",
    "SqliteSessionStore",
    "SessiondbMirror",
    "EncryptedSessionStore",
    "install_as_default",
    "SessionData",
    "SessionMessage",
    "CompactionCheckpoint",
    "ExtendedSessionData",
    "SessionSnapshot",
    "SessionHit",
    "SessionSummary",
    "ImportReport",
]


def install_as_default(path: Optional[str] = None) -> DefaultSessionStore:
    """Makes PraisonAI's ``get_default_session_store()`` (used by every agent) return a
    sessiondb store: of the file ``path``, or ``sessions.db`` in PraisonAI's session
    directory. Returns it."""
    store = HierarchicalSessionStore(path=path) if path else HierarchicalSessionStore()
    _upstream._default_store = store
    return store
