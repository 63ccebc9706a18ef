"""Google ADK's DatabaseSessionService on PostgreSQL, the same operations as pg_peer.rs
and pg_peers.py, printed as one JSON object (medians in microseconds).

    python pg_adk.py URL MESSAGES REPEAT      (URL: postgresql+asyncpg://...)

ADK checks for a stale session on every append: a writer whose loaded session is older
than the stored one gets StaleSessionError. The 4 writers try each event once; on that
error they reload the session, as the error asks, and go on, so a rejected event is not
stored (four_writers_rejected counts them). A second round retries each rejected event
after the reload until it is stored (four_writers_retry_*).
"""

import asyncio
import json
import multiprocessing
import statistics
import sys
import time

from google.adk.errors import StaleSessionError
from google.adk.events.event import Event
from google.adk.sessions import DatabaseSessionService
from google.genai import types

APP, USER = "bench", "user"


def event(text):
    return Event(
        author="user",
        invocation_id="bench",
        content=types.Content(role="user", parts=[types.Part(text=text)]),
    )


def writer(url, session_id, tag, n, retry, rejected):
    async def run():
        service = DatabaseSessionService(url)
        session = await service.get_session(app_name=APP, user_id=USER, session_id=session_id)
        stale = 0
        for i in range(n):
            while True:
                try:
                    await service.append_event(session, event(f"{tag} {i}"))
                    break
                except StaleSessionError:
                    stale += 1
                    session = await service.get_session(
                        app_name=APP, user_id=USER, session_id=session_id
                    )
                    if not retry:
                        break
        await service.close()
        rejected.put(stale)

    asyncio.run(run())


async def stored(url, session_id):
    service = DatabaseSessionService(url)
    session = await service.get_session(app_name=APP, user_id=USER, session_id=session_id)
    await service.close()
    return len(session.events)


async def four_writers(url, session_id, retry):
    service = DatabaseSessionService(url)
    await service.create_session(app_name=APP, user_id=USER, session_id=session_id)
    await service.close()
    rejected = multiprocessing.Queue()
    started = time.perf_counter()
    procs = [
        multiprocessing.Process(
            target=writer, args=(url, session_id, f"w{w}", 200, retry, rejected)
        )
        for w in range(4)
    ]
    for p in procs:
        p.start()
    stale = sum(rejected.get() for _ in procs)
    for p in procs:
        p.join()
        assert p.exitcode == 0, f"writer exited with {p.exitcode}"
    ms = (time.perf_counter() - started) * 1e3
    return ms, await stored(url, session_id), stale


async def main(url, messages, repeat):
    service = DatabaseSessionService(url)
    session = await service.create_session(app_name=APP, user_id=USER, session_id="peer")
    # ADK has no batch append: the seed is one append_event per event.
    for i in range(messages):
        await service.append_event(session, event(f"message {i} " + "x" * 200))
    session = await service.get_session(app_name=APP, user_id=USER, session_id="peer")

    async def median(op):
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            await op()
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1e6

    append = await median(lambda: service.append_event(session, event("more")))
    read = await median(
        lambda: service.get_session(app_name=APP, user_id=USER, session_id="peer")
    )
    await service.close()

    four_ms, four_stored, four_rejected = await four_writers(url, "four", retry=False)
    retry_ms, retry_stored, retry_stale = await four_writers(url, "four-retry", retry=True)
    print(json.dumps({
        "append_us": round(append, 1),
        "read_full_us": round(read, 1),
        "four_writers_ms": round(four_ms, 1),
        "four_writers_stored": four_stored,
        "four_writers_rejected": four_rejected,
        "four_writers_retry_ms": round(retry_ms, 1),
        "four_writers_retry_stored": retry_stored,
        "four_writers_retry_stale": retry_stale,
    }))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
