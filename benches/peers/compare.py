"""Side-by-side comparison of sessiondb with the stores its users would pick instead.

Run it through `bash benches/peers/run.sh`, which pins the packages and builds sessiondb's
side (`peer_bench`). The same workload runs on a 1,000-message session in every store:

- 1,000 appends (per-append latency; medians of the first and the last 100),
- full read and last-20 read (median of 50),
- replacing the 1,000 messages with 1,000 new ones (median of 5),
- fork and snapshot where the store has them (median of 20),
- 4 processes appending 250 messages each to one session at once: messages acknowledged
  versus messages stored afterwards.

Writes results.md (table of medians and ratios), results.json and append_latency.svg next
to this file.
"""

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MESSAGES, READS, REPLACES, FORKS = 1000, 50, 5, 20
WORKERS, PER_WORKER = 4, 250


def text(i):
    return f"message {i}: a typical chat turn of about a hundred characters, give or take a few words."


def us(start):
    return (time.perf_counter_ns() - start) / 1000.0


def timed(n, fn):
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        fn()
        samples.append(us(start))
    return statistics.median(samples)


# --- PraisonAI -------------------------------------------------------------------------

def praison_store(kind, directory):
    if kind == "praisonai-default":
        from praisonaiagents.session.store import DefaultSessionStore
        return DefaultSessionStore(session_dir=directory, retention="keep_all")
    from praisonaiagents.session.hierarchy import HierarchicalSessionStore
    return HierarchicalSessionStore(session_dir=directory, retention="keep_all")


def praison_workload(kind, directory):
    store = praison_store(kind, directory)
    sid = "bench"
    appends = []
    for i in range(MESSAGES):
        role = "user" if i % 2 == 0 else "assistant"
        start = time.perf_counter_ns()
        store.add_message(sid, role, text(i))
        appends.append(us(start))
    full = timed(READS, lambda: store.get_chat_history(sid))
    last20 = timed(READS, lambda: store.get_chat_history(sid, max_messages=20))
    rounds = iter(range(REPLACES))

    def replace_all():
        r = next(rounds)
        store.set_chat_history(
            sid, [{"role": "user", "content": f"round {r}: {text(i)}"} for i in range(MESSAGES)])

    replace = timed(REPLACES, replace_all)
    fork = snapshot = None
    if kind == "praisonai-hierarchical":
        fork = timed(FORKS, lambda: store.fork_session(sid, from_message_index=MESSAGES - 1))
        snapshot = timed(FORKS, lambda: store.create_snapshot(sid, label="bench"))
    return dict(append_us=appends, full_read_us=full, last20_read_us=last20,
                replace_1000_us=replace, fork_us=fork, snapshot_us=snapshot)


def praison_append_worker(kind, directory, n):
    store = praison_store(kind, directory)
    acked = 0
    for i in range(n):
        try:
            store.add_message("shared", "user", f"{os.getpid()}-{i}")
            acked += 1
        except Exception:
            pass
    print(acked)


def praison_count(kind, directory):
    # A fresh store: what is on disk, not what one process cached.
    return len(praison_store(kind, directory).get_chat_history("shared"))


# --- OpenAI Agents SDK -----------------------------------------------------------------

def openai_session(kind, path, sid):
    if kind == "openai-sqlite":
        from agents import SQLiteSession
        return SQLiteSession(sid, path)
    from agents.extensions.memory import AdvancedSQLiteSession
    return AdvancedSQLiteSession(session_id=sid, db_path=path, create_tables=True)


def item(i, prefix=""):
    return {"role": "user" if i % 2 == 0 else "assistant", "content": prefix + text(i)}


async def openai_workload_async(kind, path):
    session = openai_session(kind, path, "bench")
    appends = []
    for i in range(MESSAGES):
        start = time.perf_counter_ns()
        await session.add_items([item(i)])
        appends.append(us(start))

    async def atimed(n, fn):
        samples = []
        for _ in range(n):
            start = time.perf_counter_ns()
            await fn()
            samples.append(us(start))
        return statistics.median(samples)

    full = await atimed(READS, lambda: session.get_items())
    last20 = await atimed(READS, lambda: session.get_items(limit=20))
    rounds = iter(range(REPLACES))

    async def replace_all():
        r = next(rounds)
        await session.clear_session()
        await session.add_items([item(i, f"round {r}: ") for i in range(MESSAGES)])

    replace = await atimed(REPLACES, replace_all)
    fork = None
    if kind == "openai-advanced":
        # Branch from the last user turn (the whole history, like the other stores' forks),
        # then go back to main untimed: creating a branch also switches to it.
        last_turn = max(t["turn"] for t in await session.get_conversation_turns())
        samples = []
        for n in range(FORKS):
            start = time.perf_counter_ns()
            await session.create_branch_from_turn(last_turn, branch_name=f"b{n}")
            samples.append(us(start))
            await session.switch_to_branch("main")
        fork = statistics.median(samples)
    session.close()
    return dict(append_us=appends, full_read_us=full, last20_read_us=last20,
                replace_1000_us=replace, fork_us=fork, snapshot_us=None)


async def openai_append_worker_async(kind, path, n):
    session = openai_session(kind, path, "shared")
    acked = 0
    for i in range(n):
        try:
            await session.add_items([{"role": "user", "content": f"{os.getpid()}-{i}"}])
            acked += 1
        except Exception:
            pass
    session.close()
    print(acked)


async def openai_count_async(kind, path):
    session = openai_session(kind, path, "shared")
    count = len(await session.get_items())
    session.close()
    return count


# --- driving ---------------------------------------------------------------------------

PYTHON_STORES = ["praisonai-default", "praisonai-hierarchical", "openai-sqlite", "openai-advanced"]


def target(kind, work):
    """Where a store keeps its data inside `work`: a directory or a database file."""
    return os.path.join(work, "sessions" if kind.startswith("praisonai") else "sessions.db")


def run_workload(kind, work, peer_bench):
    location = target(kind, work)
    if kind == "sessiondb":
        out = subprocess.run([peer_bench, "workload", location], check=True,
                             capture_output=True, text=True).stdout
        return json.loads(out)
    if kind.startswith("praisonai"):
        return praison_workload(kind, location)
    return asyncio.run(openai_workload_async(kind, location))


def run_concurrency(kind, work, peer_bench):
    location = target(kind, work)
    if kind == "sessiondb":
        command = lambda: [peer_bench, "append", location, "shared", str(PER_WORKER)]
    else:
        command = lambda: [sys.executable, __file__, "worker", kind, location, str(PER_WORKER)]
    if kind == "openai-advanced":
        asyncio.run(openai_count_async(kind, location))  # create the tables once
    start = time.perf_counter_ns()
    procs = [subprocess.Popen(command(), stdout=subprocess.PIPE, text=True) for _ in range(WORKERS)]
    acked = sum(int(p.communicate()[0].strip() or 0) for p in procs)
    wall_ms = us(start) / 1000.0
    if kind == "sessiondb":
        stored = int(subprocess.run([peer_bench, "count", location, "shared"], check=True,
                                    capture_output=True, text=True).stdout)
    elif kind.startswith("praisonai"):
        stored = praison_count(kind, location)
    else:
        stored = asyncio.run(openai_count_async(kind, location))
    return dict(acknowledged=acked, stored=stored, wall_ms=wall_ms)


def summarize(results):
    rows = [
        ("append, first 100 (median µs)", lambda r: statistics.median(r["append_us"][:100])),
        ("append, last 100 (median µs)", lambda r: statistics.median(r["append_us"][-100:])),
        ("full read of 1,000 (µs)", lambda r: r["full_read_us"]),
        ("last-20 read (µs)", lambda r: r["last20_read_us"]),
        ("replace 1,000 messages (µs)", lambda r: r["replace_1000_us"]),
        ("fork (µs)", lambda r: r["fork_us"]),
        ("snapshot (µs)", lambda r: r["snapshot_us"]),
    ]
    stores = list(results)
    lines = ["| workload | " + " | ".join(stores) + " |",
             "|---|" + "---|" * len(stores)]
    for label, get in rows:
        base = get(results["sessiondb"]["workload"])
        cells = []
        for s in stores:
            value = get(results[s]["workload"])
            if value is None:
                cells.append("n/a")
            elif s == "sessiondb":
                cells.append(f"{value:,.0f}")
            else:
                cells.append(f"{value:,.0f} ({value / base:,.1f}x)")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    uncached = results["sessiondb"]["workload"].get("full_read_uncached_us")
    lines.append(f"| full read, sessiondb uncached (µs) | {uncached:,.0f} |" + " |" * (len(stores) - 1))
    lines.append("| 4 processes × 250 appends: acknowledged / stored | " + " | ".join(
        f"{results[s]['concurrency']['acknowledged']} / {results[s]['concurrency']['stored']}"
        for s in stores) + " |")
    lines.append("| 4 processes × 250 appends: wall time, process start included (ms) | " + " | ".join(
        f"{results[s]['concurrency']['wall_ms']:,.0f}" for s in stores) + " |")
    return "\n".join(lines)


def svg_plot(results, path):
    """Append latency (median of each block of 50) against history length, log scale."""
    import math
    width, height, left, bottom, top, right = 780, 420, 90, 50, 20, 190
    colors = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd"]
    series = {}
    for store, result in results.items():
        lat = result["workload"]["append_us"]
        series[store] = [(i + 50, statistics.median(lat[i:i + 50])) for i in range(0, len(lat), 50)]
    values = [v for pts in series.values() for _, v in pts]
    lo, hi = math.log10(max(min(values), 1)), math.log10(max(values))
    lo, hi = math.floor(lo), math.ceil(hi)
    x = lambda n: left + (width - left - right) * n / MESSAGES
    y = lambda v: top + (height - top - bottom) * (hi - math.log10(max(v, 1))) / max(hi - lo, 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           'font-family="Helvetica, Arial, sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="14">Append latency against history length (median of each 50 appends)</text>']
    for p in range(lo, hi + 1):
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(10 ** p)}" y2="{y(10 ** p)}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 8}" y="{y(10 ** p) + 4}" text-anchor="end">{10 ** p:,} µs</text>')
    for n in range(0, MESSAGES + 1, 200):
        out.append(f'<text x="{x(n)}" y="{height - bottom + 18}" text-anchor="middle">{n}</text>')
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 10}" text-anchor="middle">messages already stored</text>')
    for k, (store, pts) in enumerate(series.items()):
        color = colors[k % len(colors)]
        d = " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in pts)
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{d}"/>')
        out.append(f'<text x="{width - right + 10}" y="{top + 20 + 18 * k}" fill="{color}">{store}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    peer_bench = sys.argv[1]
    stores = ["sessiondb"] + PYTHON_STORES
    results = {}
    for kind in stores:
        work = tempfile.mkdtemp(prefix="peers-")
        try:
            print(f"{kind}: workload", file=sys.stderr)
            workload = run_workload(kind, work, peer_bench)
            shutil.rmtree(work)
            os.makedirs(work)
            print(f"{kind}: {WORKERS} processes appending", file=sys.stderr)
            concurrency = run_concurrency(kind, work, peer_bench)
            results[kind] = dict(workload=workload, concurrency=concurrency)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    table = summarize(results)
    with open(os.path.join(HERE, "results.json"), "w") as f:
        json.dump(results, f)
    with open(os.path.join(HERE, "results.md"), "w") as f:
        f.write(table + "\n")
    svg_plot(results, os.path.join(HERE, "append_latency.svg"))
    print(table)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        kind, location, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
        if kind.startswith("praisonai"):
            praison_append_worker(kind, location, n)
        else:
            asyncio.run(openai_append_worker_async(kind, location, n))
    else:
        main()
