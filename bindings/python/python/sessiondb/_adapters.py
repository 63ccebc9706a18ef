"""What the framework adapters share: one :class:`Store` per database in a process, and store
calls awaited from a worker thread so they never block the event loop."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ._core import Store

_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def shared_store(db_path: str | os.PathLike[str] | None = None) -> Store:
    """The process-wide :class:`sessiondb.Store` of ``db_path`` (the default file when
    ``None``; a ``postgres://`` URL is kept as it is): every session of one database shares
    its connections and history cache."""
    if db_path is None:
        key = ""
    else:
        text = os.fspath(db_path)
        key = text if "://" in str(text) else os.path.abspath(text)
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = Store(key or None)
            _stores[key] = store
        return store


_T = TypeVar("_T")


async def settled(call: Callable[..., _T], *args: Any) -> _T:
    """``call(*args)`` in a worker thread, awaited to its end even when the task is
    cancelled meanwhile: a write that committed stays committed, and the cancellation is
    raised once its outcome is known (after a failure too), as the SDKs' own stores do."""
    task = asyncio.ensure_future(asyncio.to_thread(call, *args))
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError as exc:
            if cancelled is None:
                cancelled = exc
    if cancelled is not None:
        if not task.cancelled():
            task.exception()  # retrieved, so a failed write logs no "never retrieved"
        raise cancelled
    return task.result()
