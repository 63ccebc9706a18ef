"""sessiondb: AI-agent sessions, messages, branches and snapshots in one SQLite file.

Many processes may open the same file at once; no message is lost, no reader sees a
half-written history. :class:`Store` is the library's ``Store`` in Python form: messages are
plain dicts shaped like ``sessiondb history --json`` prints them, errors are subclasses of
:class:`Error`, and every call releases the GIL.

Adapters that speak other stores' APIs live beside it: :mod:`sessiondb.praisonai`,
:mod:`sessiondb.openai_agents` and :mod:`sessiondb.claude_agent_sdk`.
"""

from __future__ import annotations

from ._core import (
    MAX_CONTENT_BYTES,
    MAX_NESTING,
    MAX_SESSION_ID_BYTES,
    SCHEMA_VERSION,
    SQLITE_SHARED_WITH_PYTHON,
    SQLITE_VERSION,
    Store,
)
from . import _errors
from ._errors import *  # noqa: F403  (the exception classes; _errors.__all__ lists them)

__all__ = [
    "Store",
    "SCHEMA_VERSION",
    "MAX_CONTENT_BYTES",
    "MAX_SESSION_ID_BYTES",
    "MAX_NESTING",
    "SQLITE_VERSION",
    "SQLITE_SHARED_WITH_PYTHON",
    *_errors.__all__,
]
