"""``async for change in store.watcher(...)``: the waits of a :class:`sessiondb.Watcher` on
a thread of its own, so the event loop never waits for a change.

Each wait is short (:data:`WAIT_SLICE`); a cancelled ``__anext__`` leaves its wait running,
and the next ``__anext__`` takes its result: a change found while nobody awaited it is
delivered next, not lost. ``Watcher.close()`` ends the iteration and stops the thread
within one slice.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._core import Change, Watcher

WAIT_SLICE = 0.25
"""Seconds one wait on the watcher's thread runs before it looks again whether the watcher
is still wanted: how long its thread outlives an abandoned ``async for``."""


def _retrieve(job: asyncio.Future) -> None:
    # A wait whose awaiter was cancelled may end in an error; its next awaiter raises it.
    if not job.cancelled():
        job.exception()


async def next_change(watcher: Watcher) -> Change:
    """The next change of ``watcher``; ``StopAsyncIteration`` once the iteration is over."""
    while True:
        job = watcher._pending
        if job is None or job.cancelled():
            if watcher._done:
                raise StopAsyncIteration
            job = watcher._executor().submit(watcher._next_change, WAIT_SLICE)
            watcher._pending = job
        waiting = asyncio.wrap_future(job)
        waiting.add_done_callback(_retrieve)
        try:
            # Shielded: cancelling this awaiter leaves the wait running for the next one.
            change = await asyncio.shield(waiting)
        except asyncio.CancelledError:
            raise
        except BaseException:
            watcher._pending = None
            raise
        watcher._pending = None
        if change is not None:
            return change
