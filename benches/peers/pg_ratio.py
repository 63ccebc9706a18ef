"""Prints the ratios of pg_peers.sh: `python pg_ratio.py OURS_JSON THEIRS_JSON MESSAGES`.

A peer that rejects stale appends (ADK) also reports how many it rejected, and a round
that retries them until stored."""

import json
import sys

ours, theirs, messages = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
print(f"append at {messages}: {theirs['append_us'] / ours['append_us']:.1f}x faster")
print(
    f"full read: cached {theirs['read_full_us'] / ours['read_full_cached_us']:.1f}x faster, "
    f"uncached {theirs['read_full_us'] / ours['read_full_uncached_us']:.1f}x"
)
print(
    f"4 writers x 200: {theirs['four_writers_ms'] / ours['four_writers_ms']:.1f}x faster; "
    f"stored {ours['four_writers_stored']} and {theirs['four_writers_stored']} of 800"
)
if "four_writers_rejected" in theirs:
    print(f"  theirs rejected {theirs['four_writers_rejected']} as stale and did not store them")
    print(
        f"  retrying each until stored: {theirs['four_writers_retry_ms'] / ours['four_writers_ms']:.1f}x "
        f"faster; stored {theirs['four_writers_retry_stored']} of 800 after "
        f"{theirs['four_writers_retry_stale']} stale errors"
    )
