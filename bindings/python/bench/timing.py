"""Medians of repeated calls, in microseconds: what every benchmark here reports."""

from __future__ import annotations

import statistics
import time


def median_us(fn, repeat: int) -> float:
    """The median time of ``repeat`` calls of ``fn()``."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


async def median_us_awaited(make, repeat: int) -> float:
    """Each call awaited inside one running event loop, as an agent's turn awaits it."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        await make()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6
