"""The OpenAI Agents SDK's SQLAlchemySession on PostgreSQL, the same operations as
pg_peer.rs, printed as one JSON object (medians in microseconds).

    python pg_peers.py URL MESSAGES REPEAT      (URL: postgresql+asyncpg://...)
"""

import asyncio
import json
import multiprocessing
import statistics
import sys
import time

from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession


def writer(url, tag, n):
    async def run():
        session = SQLAlchemySession.from_url("four", url=url, create_tables=True)
        for i in range(n):
            await session.add_items([{"role": "user", "content": f"{tag} {i}"}])
        await session.engine.dispose()

    asyncio.run(run())


async def main(url, messages, repeat):
    session = SQLAlchemySession.from_url("peer", url=url, create_tables=True)
    await session.add_items(
        [{"role": "user", "content": f"message {i} " + "x" * 200} for i in range(messages)]
    )

    async def median(op):
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            await op()
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1e6

    append = await median(lambda: session.add_items([{"role": "user", "content": "more"}]))
    read = await median(lambda: session.get_items())
    await session.engine.dispose()

    started = time.perf_counter()
    procs = [
        multiprocessing.Process(target=writer, args=(url, f"w{w}", 200)) for w in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    four_ms = (time.perf_counter() - started) * 1e3
    check = SQLAlchemySession.from_url("four", url=url)
    stored = len(await check.get_items())
    await check.engine.dispose()
    print(json.dumps({
        "append_us": round(append, 1),
        "read_full_us": round(read, 1),
        "four_writers_ms": round(four_ms, 1),
        "four_writers_stored": stored,
    }))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
