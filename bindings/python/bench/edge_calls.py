"""N calls of one kind through the binding, for an instruction count of the edge (the
conversion of arguments and results, the fork gate, the SQLite library):

    valgrind --tool=callgrind python bindings/python/bench/edge_calls.py OP N

with OP one of version, read (a cached last 20), one (add_message), batch (add_messages of
100). Run it with N and 2N: the difference divided by N is the cost of one call.
"""

from __future__ import annotations

import os
import sys
import tempfile

import sessiondb

MESSAGE = {
    "role": "assistant",
    "content": "x" * 200,
    "metadata": {"a": [1, 2, {"b": "c" * 50}], "score": 0.5, "tags": ["t1", "t2"]},
    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"q": 1}'}}],
}


def main() -> None:
    op, n = sys.argv[1], int(sys.argv[2])
    path = os.path.join(tempfile.mkdtemp(), "sessions.db")
    try:
        store = sessiondb.Store(path, separate_sqlite_ok=True)
    except TypeError:  # a build from before the option
        store = sessiondb.Store(path)
    batch = [dict(MESSAGE) for _ in range(100)]
    store.add_message("one", MESSAGE)
    calls = {
        "version": lambda: store.version("one"),
        "read": lambda: store.chat_history("one", 20),
        "one": lambda: store.add_message("one", MESSAGE),
        "batch": lambda: store.add_messages("many", batch),
    }
    call = calls[op]
    for _ in range(n):
        call()


if __name__ == "__main__":
    main()
