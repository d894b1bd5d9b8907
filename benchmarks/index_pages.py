"""What each index of durable_workflows costs a short workflow on SQLite.

For each variant (the store as durable makes it, then without one index at a
time), a fresh store runs short workflows (3 tiny steps each) and this prints
the pages each workflow wrote to SQLite's log (the ``-wal`` file's growth: no
checkpoint runs meanwhile) and the CPU time per workflow. Dropping an index
here is only a measurement: durable needs them all. Deterministic instruction
counts: run it under ``valgrind --tool=callgrind`` with ``--only`` and
``--workflows`` N and 3N, and take the difference.

``python benchmarks/index_pages.py --markdown``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import durable
from durable.backends._schema import workflows

_FRAME_HEADER = 24


@durable.step(name="bench.tiny")
async def tiny(i: int) -> int:
    return i


@durable.durable_workflow(name="bench.tiny_chain")
async def chain(n: int) -> int:
    total = 0
    for i in range(n):
        total += await tiny(i)
    return total


def _indexes() -> list[str]:
    return sorted(str(i.name) for i in workflows.indexes if i.dialect_kwargs == {})


def measure(drop: str | None, count: int) -> tuple[float, float]:
    """Log pages and CPU microseconds per workflow, on a fresh store without ``drop``."""
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "b.db"
        with durable.Runtime(f"sqlite:///{db}"):
            pass  # made, then closed: the log is checkpointed away
        if drop is not None:
            with contextlib.closing(sqlite3.connect(db)) as conn:
                conn.execute(f"DROP INDEX {drop}")
        with durable.Runtime(f"sqlite:///{db}"):

            async def run() -> None:
                for i in range(count):
                    await chain.run(3, workflow_id=f"short-{i}")

            wal = Path(f"{db}-wal")
            before = wal.stat().st_size if wal.exists() else 0
            cpu = time.process_time()
            asyncio.run(run())
            cpu = time.process_time() - cpu
            written = wal.stat().st_size - before
        with contextlib.closing(sqlite3.connect(db)) as conn:
            page = int(conn.execute("PRAGMA page_size").fetchone()[0])
    return written / (page + _FRAME_HEADER) / count, cpu / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # 150 workflows write about 3 MiB by the checkpointer's count, under the
    # 4 MiB that starts a checkpoint, which would shrink the log.
    parser.add_argument("--workflows", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=["all", *_indexes()], default=None)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    variants: list[str | None] = [None, *_indexes()]
    if args.only is not None:
        variants = [None if args.only == "all" else args.only]
    rows = []
    for drop in variants:
        runs = [measure(drop, args.workflows) for _ in range(args.repeat)]
        pages = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        rows.append((f"without {drop}" if drop else "all indexes", pages, cpu))
    print(f"{args.workflows} workflows x 3 steps, median of {args.repeat}, pid {os.getpid()}")
    print("| store | log pages / workflow | CPU µs / workflow |")
    print("|---|--:|--:|")
    for name, pages, cpu in rows:
        print(f"| {name} | {pages:.2f} | {cpu:.0f} |")


if __name__ == "__main__":
    main()
