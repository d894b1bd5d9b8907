"""Large results on SQLite in the long run: is a background checkpoint a real saving?

bench.py's scenario 3 stops the clock when the workflow returns, and at that
moment durable's checkpoint thread may still have pages to copy into the
database file; the raw baseline has already paid for its checkpoints inside
its commits. This runs N steps of 1 MiB (default 300, far past the 64 MiB at
which durable starts its log over) and reports the time per MiB both when
the workflow returns and once the store is closed (the thread joined, the
last checkpoint done, the -wal file removed), with the -wal file's size at
the end, for durable and for raw sqlite3 (WAL + synchronous=NORMAL, one
INSERT per step, SQLite's own checkpoints). Opening the store is timed too,
for both. Median of --repeat runs, each on a fresh temp directory.

Usage: python benchmarks/checkpoints.py [--steps 300] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import durable

MIB = 1 << 20
PAYLOADS = [os.urandom(MIB) for _ in range(20)]


@durable.step(name="checkpoints.blob")
async def blob(i: int) -> bytes:
    return PAYLOADS[i % len(PAYLOADS)]


@durable.durable_workflow(name="checkpoints.blobs")
async def blobs(steps: int) -> None:
    for i in range(steps):
        await blob(i)


def run_durable(path: Path, steps: int) -> tuple[float, float, int]:
    start = time.perf_counter()
    with durable.Runtime(f"sqlite:///{path}"):
        asyncio.run(blobs.run(steps, workflow_id="blobs"))
        returned = time.perf_counter()
        wal = os.path.getsize(f"{path}-wal")
    return returned - start, time.perf_counter() - start, wal


def run_raw(path: Path, steps: int) -> tuple[float, float, int]:
    start = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE steps (workflow_id TEXT, position INTEGER, output BLOB,"
        " PRIMARY KEY (workflow_id, position))"
    )
    for i in range(steps):
        output = pickle.dumps(PAYLOADS[i % len(PAYLOADS)], protocol=pickle.HIGHEST_PROTOCOL)
        conn.execute("INSERT INTO steps VALUES (?, ?, ?)", ("blobs", i, output))
    returned = time.perf_counter()
    wal = os.path.getsize(f"{path}-wal")
    conn.close()
    return returned - start, time.perf_counter() - start, wal


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    setups: dict[str, Callable[[Path, int], tuple[float, float, int]]] = {
        "durable": run_durable,
        "raw sqlite3": run_raw,
    }
    print(f"{args.steps} steps of 1 MiB on a SQLite file, median of {args.repeat}")
    print(
        "| setup | µs/MiB when the workflow returns | µs/MiB once closed | -wal at the end, MiB |"
    )
    print("|---|--:|--:|--:|")
    for name, run in setups.items():
        runs = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="durable-ckpt-") as tmp:
                runs.append(run(Path(tmp) / "store.db", args.steps))
        returned, closed, wal = (statistics.median(column) for column in zip(*runs, strict=True))
        print(
            f"| {name} | {returned / args.steps * 1e6:,.0f} | {closed / args.steps * 1e6:,.0f}"
            f" | {wal / MIB:.0f} |"
        )


if __name__ == "__main__":
    main()
