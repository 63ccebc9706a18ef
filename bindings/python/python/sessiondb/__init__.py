"""sessiondb: AI-agent sessions, messages, branches and snapshots in one SQLite file.

Many processes may open the same file at once; no message is lost, no reader sees a
half-written history. :class:`Store` is the library's ``Store`` in Python form: messages are
plain dicts shaped like ``sessiondb history --json`` prints them, errors are subclasses of
:class:`Error`, and every call releases the GIL. Leases (:meth:`Store.claim`,
:meth:`Store.lease`) give one worker a session at a time; :meth:`Store.watcher` waits for
another process's changes, with ``for`` or ``async for``.

Adapters that speak other stores' APIs live beside it: :mod:`sessiondb.praisonai`,
:mod:`sessiondb.openai_agents`, :mod:`sessiondb.claude_agent_sdk` and :mod:`sessiondb.langgraph`.
"""

from __future__ import annotations

from ._core import (
    MAX_CONTENT_BYTES,
    MAX_NESTING,
    MAX_SESSION_ID_BYTES,
    POSTGRES_SUPPORT,
    SCHEMA_VERSION,
    SQLITE_SHARED_WITH_PYTHON,
    SQLITE_VERSION,
    Change,
    Lease,
    LeasedSession,
    Store,
    WatchCursor,
    Watcher,
)
from . import _errors
from ._errors import *  # noqa: F403  (the exception classes; _errors.__all__ lists them)

__all__ = [
    "Store",
    "Lease",
    "LeasedSession",
    "Watcher",
    "WatchCursor",
    "Change",
    "SCHEMA_VERSION",
    "MAX_CONTENT_BYTES",
    "MAX_SESSION_ID_BYTES",
    "POSTGRES_SUPPORT",
    "MAX_NESTING",
    "SQLITE_VERSION",
    "SQLITE_SHARED_WITH_PYTHON",
    *_errors.__all__,
]
