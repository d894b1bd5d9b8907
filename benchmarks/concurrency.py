"""Sequential vs asyncio.gather for durable workflows of 10 tiny steps.

sequential: 200 workflows x 10 steps, one after another;
concurrent: 200 workflows x 10 steps, all under one asyncio.gather;
processes (with --processes N): N processes, each running 50 workflows x 10
steps under one asyncio.gather, on the same store. The processes are spawned
and open the store first; the parent then releases them all at once and
times from that moment until the last one reports done.
All on a SQLite file (fresh temp dir per repeat) and on PostgreSQL (fresh
schema bench_<hex> per repeat, dropped afterwards). Median of --repeat runs.

Usage: python benchmarks/concurrency.py [--repeat 5] [--processes N] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

import durable

STEPS = 10
PER_PROCESS = 50
"""Workflows each process runs under one asyncio.gather, in the --processes mode."""


async def tiny(i: int) -> int:
    return i


durable_tiny = durable.step(name="conc.tiny")(tiny)


@durable.durable_workflow(name="conc.chain")
async def chain(n: int) -> int:
    total = 0
    for i in range(n):
        total += await durable_tiny(i)
    return total


async def sequential(tag: str, workflows: int) -> None:
    for w in range(workflows):
        assert await chain.run(STEPS, workflow_id=f"{tag}-{w}") == 45


async def concurrent(tag: str, workflows: int) -> None:
    results = await asyncio.gather(
        *(chain.run(STEPS, workflow_id=f"{tag}-{w}") for w in range(workflows))
    )
    assert results == [45] * workflows


def timed(url: str, mode: str) -> float:
    """steps/s of one run on a fresh store at url."""
    workflows = 200
    tag = f"{mode}-{uuid.uuid4().hex[:12]}"
    with durable.Runtime(url):
        # Both modes start with the statements compiled and the tables in use.
        asyncio.run(sequential(f"{tag}-warm", 2))
        start = time.perf_counter()
        asyncio.run((sequential if mode == "sequential" else concurrent)(tag, workflows))
        seconds = time.perf_counter() - start
    return workflows * STEPS / seconds


def _worker(url: str, tag: str, ready: Any, go: Any, done: Any) -> None:
    """One process of the --processes mode: open the store, wait, run, report."""
    with durable.Runtime(url):
        ready.put(None)
        go.wait()
        asyncio.run(concurrent(tag, PER_PROCESS))
        # Before closing the store: as in timed(), closing is not timed.
        done.put(None)


def timed_processes(url: str, processes: int) -> float:
    """steps/s of ``processes`` processes on one fresh store, timed in the parent."""
    # Create the schema once, before the processes race to open the store.
    with durable.Runtime(url):
        pass
    ctx = multiprocessing.get_context("spawn")
    ready, done, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    tag = f"processes-{uuid.uuid4().hex[:12]}"
    workers = [
        ctx.Process(target=_worker, args=(url, f"{tag}-{p}", ready, go, done))
        for p in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        for _ in workers:
            ready.get(timeout=60)
        start = time.perf_counter()
        go.set()
        for _ in workers:
            done.get(timeout=300)
        seconds = time.perf_counter() - start
    finally:
        for worker in workers:
            worker.join(timeout=30)
    if any(worker.exitcode != 0 for worker in workers):
        raise RuntimeError(f"a worker failed: {[w.exitcode for w in workers]}")
    return processes * PER_PROCESS * STEPS / seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--processes",
        type=int,
        default=0,
        help=f"also run N processes x {PER_PROCESS} workflows under gather on one store",
    )
    ap.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    print(f"durable.__file__: {durable.__file__}")
    admin = psycopg.connect(args.postgres_url, autocommit=True)
    results: dict[tuple[str, str], list[float]] = {}
    modes = ["sequential", "concurrent"] + (["processes"] if args.processes else [])

    def run(url: str, mode: str) -> float:
        if mode == "processes":
            return timed_processes(url, args.processes)
        return timed(url, mode)

    for _ in range(args.repeat):
        for backend in ("sqlite", "postgresql"):
            for mode in modes:
                if backend == "sqlite":
                    with tempfile.TemporaryDirectory(prefix="durable-conc-") as tmp:
                        rate = run(f"sqlite:///{Path(tmp) / 'store.db'}", mode)
                else:
                    schema = f"bench_{uuid.uuid4().hex[:16]}"
                    try:
                        rate = run(f"{args.postgres_url}?schema={schema}", mode)
                    finally:
                        admin.execute(
                            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                                sql.Identifier(schema)
                            )
                        )
                results.setdefault((backend, mode), []).append(rate)
    left = admin.execute(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'bench\\_%%'"
    ).fetchone()
    admin.close()
    print(f"repeats: {args.repeat}; bench_ schemas left on the server: {left[0] if left else 0}")
    columns = ["backend", "sequential (200 x 10), steps/s", "concurrent (200 x 10), steps/s"]
    columns.append("ratio")
    if args.processes:
        n = args.processes
        columns += [f"{n} processes x ({PER_PROCESS} x 10), steps/s", "ratio to sequential"]
    print("| " + " | ".join(columns) + " |")
    print("|---|" + "--:|" * (len(columns) - 1))
    for backend in ("sqlite", "postgresql"):
        seq = statistics.median(results[(backend, "sequential")])
        con = statistics.median(results[(backend, "concurrent")])
        row = f"| {backend} | {seq:,.0f} | {con:,.0f} | {con / seq:.2f}x |"
        if args.processes:
            procs = statistics.median(results[(backend, "processes")])
            row += f" {procs:,.0f} | {procs / seq:.2f}x |"
        print(row)
    for key, values in results.items():
        print(key, [f"{v:,.0f}" for v in values])


if __name__ == "__main__":
    main()
