"""sessiondb.claude_agent_sdk.SessiondbSessionStore against the Claude Agent SDK's in-memory
reference store and a plain JSONL file, side by side in one run.

    python bench/claude_store.py [--entries 1000] [--repeat 200]

Every call is awaited inside one running event loop, as the SDK's transcript mirror awaits
it. Measured: ``append`` of a 10-entry batch (new uuids each time) to a main transcript of
--entries entries, and ``load`` of a transcript of --entries entries. Prints medians in
microseconds and the ratio other / ours (below 1: the other is faster).

What each does per append: the in-memory store extends a list and folds the summary; the
JSONL file appends 10 lines (no fsync, no summary, no uuid check); sessiondb checks the
batch's uuids, folds the summary and commits entries and summary in one transaction (WAL,
synchronous=NORMAL) from a worker thread.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import tempfile

from claude_agent_sdk import InMemorySessionStore

from sessiondb.claude_agent_sdk import SessiondbSessionStore
from timing import median_us_awaited as median_us

KEY = {"project_key": "-home-me-proj", "session_id": "0b6c1e2a-1111-2222-3333-444455556666"}


class JsonlFileStore:
    """The plainest store: one JSONL file per transcript, appended to and read whole."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def _path(self, key) -> str:
        return os.path.join(self.directory, f"{key['project_key']}--{key['session_id']}.jsonl")

    async def append(self, key, entries) -> None:
        with open(self._path(key), "a", encoding="utf-8") as f:
            f.write("".join(json.dumps(e) + "\n" for e in entries))

    async def load(self, key):
        try:
            with open(self._path(key), encoding="utf-8") as f:
                return [json.loads(line) for line in f]
        except FileNotFoundError:
            return None


_uuids = itertools.count()


def entries(n: int) -> list[dict]:
    """Transcript-shaped entries, about 600 bytes each, alternating user and assistant."""
    out = []
    for _ in range(n):
        i = next(_uuids)
        kind = "user" if i % 2 == 0 else "assistant"
        content = (f"question {i} " + "x" * 300 if kind == "user" else
                   [{"type": "text", "text": f"answer {i} " + "y" * 300},
                    {"type": "tool_use", "id": f"t{i}", "name": "Read", "input": {"path": f"src/{i}.rs"}}])
        out.append({"type": kind, "uuid": f"uuid-{i:08d}", "parentUuid": f"uuid-{i - 1:08d}",
                    "timestamp": "2026-01-01T00:00:00.000Z", "sessionId": KEY["session_id"],
                    "cwd": "/home/me/proj", "isSidechain": False,
                    "message": {"role": kind, "content": content}})
    return out


async def measure(store, n: int, repeat: int) -> dict[str, float]:
    loaded_key = {**KEY, "session_id": "loaded"}
    await store.append(loaded_key, entries(n))
    assert len(await store.load(loaded_key)) == n
    await store.append(KEY, entries(n))
    batches = iter([entries(10) for _ in range(repeat)])
    return {
        "append (10 entries)": await median_us(lambda: store.append(KEY, next(batches)), repeat),
        f"load ({n} entries)": await median_us(lambda: store.load(loaded_key), repeat),
    }


async def run(n: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stores = {
            "InMemorySessionStore": InMemorySessionStore(),
            "JSONL file": JsonlFileStore(tmp),
            "SessiondbSessionStore": SessiondbSessionStore(os.path.join(tmp, "sessions.db")),
        }
        results = {name: await measure(store, n, repeat) for name, store in stores.items()}
    ours = results["SessiondbSessionStore"]
    print(f"medians in microseconds; ratio = other / sessiondb ({repeat} calls each)")
    header = f"{'operation':<22}" + "".join(f"{name:>24}" for name in results)
    print(header + f"{'in-memory/ours':>16}{'JSONL/ours':>12}")
    for op in ours:
        row = f"{op:<22}" + "".join(f"{r[op]:>24.1f}" for r in results.values())
        mem, jsonl = results["InMemorySessionStore"][op], results["JSONL file"][op]
        print(row + f"{mem / ours[op]:>15.3f}x{jsonl / ours[op]:>11.3f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(run(args.entries, args.repeat))


if __name__ == "__main__":
    main()
