"""Exceptions raised by sessiondb, one class per variant of the core's ``Error``.

Every class derives from :class:`Error`; attributes carry what the core reported (the id
that was not found, the versions of a conflict, the path of a file) so a caller can act
without parsing the message.
"""

from __future__ import annotations

from datetime import datetime


class Error(Exception):
    """Base class of every sessiondb error."""


class NotFound(Error, LookupError):
    """The named thing does not exist. ``kind`` is ``"session"``, ``"branch"``,
    ``"snapshot"``, ``"message"`` or ``"database"``; ``id`` is what was asked for."""

    kind: str
    id: str


class AlreadyExists(Error):
    """A session with this ``id`` already exists (``create_session``)."""

    id: str


class InvalidInput(Error, ValueError):
    """The caller passed something the store refuses; nothing was written."""


class Conflict(Error):
    """A write carried ``expected_version`` and the session had moved on to ``actual``.
    Nothing was written: re-read and decide again."""

    session: str
    expected: int
    actual: int


class Busy(Error):
    """Another connection held the write lock longer than ``timeout`` seconds. Nothing was
    written; retrying later is safe."""

    timeout: float


class KeysPartlyStored(Error):
    """A batch mixed messages whose keys are ``stored`` already with ``new`` that are not;
    nothing was written."""

    session: str
    stored: list[str]
    new: int


class LeaseHeld(Error):
    """Another ``owner`` holds the lease of ``session`` until ``expires_at`` (an aware
    ``datetime`` in UTC), so the claim failed and nothing was written. Claim again after
    ``expires_at``, or leave the session to ``owner``."""

    session: str
    owner: str
    expires_at: datetime


class LeaseLost(Error):
    """A write or renewal passed a lease of ``session`` by ``owner`` that is no longer held
    (``reason``: it expired, was released or broken, or another claim replaced it;
    ``holder`` is who holds it now, if anyone). Nothing was written: stop the run, or claim
    again and re-read the session before going on."""

    session: str
    owner: str
    holder: str | None
    reason: str


class SchemaTooNew(Error):
    """The file at ``path`` was written by a newer sessiondb (schema ``found`` >
    ``supported``)."""

    path: str
    found: int
    supported: int


class NotSessionDb(Error):
    """The file at ``path`` is not a sessiondb database; it was left untouched."""

    path: str


class ReadOnly(Error):
    """The store or the file at ``path`` is read-only and the operation writes."""

    path: str


class Corrupt(Error):
    """The file's contents are damaged; restore from a backup or run ``sessiondb check``."""


class StorageFull(Error):
    """The disk or quota is full; the failed call wrote nothing."""


class IoError(Error):
    """An operating-system error on ``path``."""

    path: str


class FileExists(Error):
    """A file to be written (a backup, an export) exists at ``path`` and ``force`` was not
    given; nothing was written."""

    path: str


class UnsafePermissions(Error):
    """The database at ``path`` or its directory can be changed by other users; pass
    ``shared=True`` when that is on purpose."""

    path: str


class FileReplaced(Error):
    """The database or its ``-wal`` at ``path`` was deleted or replaced since it was opened;
    nothing was written. Open the path again."""

    path: str


class ForeignWal(Error):
    """The ``-wal`` beside the database at ``path`` belongs to another database file (one
    was moved over the other while a process had it open); nothing was read or written.
    ``sessiondb restore`` is the way to replace a live database."""

    path: str
    wal: str


class WalDeleted(Error):
    """The database's ``-wal`` (``wal``) was deleted while other processes had the database
    at ``path`` open; nothing was read or written. Stop them and open it again."""

    path: str
    wal: str


class Interrupted(Error):
    """A wait for another writer's lock was interrupted; nothing was written. (Ctrl-C
    raises what the signal handler raised, ``KeyboardInterrupt`` by default, instead.)"""


class Closed(Error):
    """The store at ``path`` was closed (``Store.close()`` or a ``with`` block ended);
    open the path again."""

    path: str


class SeparateSqlite(Error):
    """Python's ``sqlite3`` module in this interpreter carries its own copy of SQLite, so
    the two would not see each other's locks on the file at ``path`` (see the README, "One
    SQLite per process"). Nothing was opened."""

    path: str


class SqliteError(Error):
    """Any other SQLite error."""


class PoolError(Error):
    """No pooled connection could be had in time, or (PostgreSQL) none could be made."""


class PostgresError(Error):
    """Any other error the PostgreSQL server or its client reported."""


class CommitOutcomeUnknown(PostgresError):
    """The connection to the PostgreSQL server broke while it was committing a write, before
    the server said how it went: the write may or may not have been stored. A write of
    messages that all carry a ``key`` can simply be sent again (a stored one is returned, not
    written twice); otherwise read the session back and decide. A subclass of
    :class:`PostgresError`, which such failures were before."""


__all__ = [
    "Error",
    "NotFound",
    "AlreadyExists",
    "InvalidInput",
    "Conflict",
    "Busy",
    "KeysPartlyStored",
    "LeaseHeld",
    "LeaseLost",
    "SchemaTooNew",
    "NotSessionDb",
    "ReadOnly",
    "Corrupt",
    "StorageFull",
    "IoError",
    "FileExists",
    "UnsafePermissions",
    "FileReplaced",
    "ForeignWal",
    "WalDeleted",
    "Interrupted",
    "Closed",
    "SeparateSqlite",
    "SqliteError",
    "PoolError",
    "PostgresError",
    "CommitOutcomeUnknown",
]
