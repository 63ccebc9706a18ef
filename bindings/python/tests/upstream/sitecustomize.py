"""The upstream tests' child processes (multiprocessing's spawn and forkserver) start
without pytest's plugins: they get the same swap as the test process, so both sides of a
multi-process test use sessiondb. Only on the path of the upstream run."""

import os

if os.environ.get("SESSIONDB_SWAP") == "1":
    import sessiondb_swap

    sessiondb_swap.swap()
