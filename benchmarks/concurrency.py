"""Sequential vs asyncio.gather for durable workflows of 10 tiny steps.

sequential: 20 workflows x 10 steps, one after another;
concurrent: 200 workflows x 10 steps, all under one asyncio.gather.
Both on a SQLite file (fresh temp dir per repeat) and on PostgreSQL (fresh
schema bench_<hex> per repeat, dropped afterwards). Median of --repeat runs.

Usage: python benchmarks/concurrency.py [--repeat 5] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

import durable

STEPS = 10


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
    workflows = 20 if mode == "sequential" else 200
    tag = f"{mode}-{uuid.uuid4().hex[:12]}"
    with durable.Runtime(url):
        start = time.perf_counter()
        asyncio.run((sequential if mode == "sequential" else concurrent)(tag, workflows))
        seconds = time.perf_counter() - start
    return workflows * STEPS / seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    print(f"durable.__file__: {durable.__file__}")
    admin = psycopg.connect(args.postgres_url, autocommit=True)
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeat):
        for backend in ("sqlite", "postgresql"):
            for mode in ("sequential", "concurrent"):
                if backend == "sqlite":
                    with tempfile.TemporaryDirectory(prefix="durable-conc-") as tmp:
                        rate = timed(f"sqlite:///{Path(tmp) / 'store.db'}", mode)
                else:
                    schema = f"bench_{uuid.uuid4().hex[:16]}"
                    try:
                        rate = timed(f"{args.postgres_url}?schema={schema}", mode)
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
    columns = ["backend", "sequential (20 x 10), steps/s", "concurrent (200 x 10), steps/s"]
    print("| " + " | ".join([*columns, "ratio"]) + " |")
    print("|---|--:|--:|--:|")
    for backend in ("sqlite", "postgresql"):
        seq = statistics.median(results[(backend, "sequential")])
        con = statistics.median(results[(backend, "concurrent")])
        print(f"| {backend} | {seq:,.0f} | {con:,.0f} | {con / seq:.2f}x |")
    for key, values in results.items():
        print(key, [f"{v:,.0f}" for v in values])


if __name__ == "__main__":
    main()
