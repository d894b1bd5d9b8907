"""Durability modes side by side, and recovery latency after a SIGKILL.

1. One workflow of 2000 tiny async steps in each durability mode (``normal``,
   ``full``, ``batched``), on SQLite and on PostgreSQL (when reachable):
   µs per step, median of 3.
2. Recovery latency: a process runs a 6-step workflow and is SIGKILLed after
   step 3; a fresh process then calls it again. Reported: the time from
   starting that process to the first resumed step running (interpreter
   start-up and imports included), median of 5.

Run: ``python benchmarks/durability.py``
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import durable

POSTGRES = os.environ.get("DURABLE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
STEPS = 2000


@durable.step
async def tiny(i: int) -> int:
    return i


@durable.durable_workflow(name="bench.durability")
async def chain(n: int) -> int:
    total = 0
    for i in range(n):
        total += await tiny(i)
    return total


def per_step(url: str, mode: str) -> float:
    times = []
    for _ in range(3):
        with durable.Runtime(url, durability=mode):
            started = time.perf_counter()
            asyncio.run(chain.run(STEPS, workflow_id=uuid.uuid4().hex))
            times.append((time.perf_counter() - started) / STEPS * 1e6)
    return statistics.median(times)


def postgres_url() -> str | None:
    try:
        import psycopg

        psycopg.connect(POSTGRES, connect_timeout=2).close()
    except Exception:
        return None
    return POSTGRES


def drop_schema(url: str) -> None:
    import psycopg

    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


CHILD = """
import asyncio, os, sys, time
import durable

@durable.step
async def work(i: int) -> int:
    if i == 4 and os.environ.get("RESUMING"):
        print(time.time(), flush=True)
    if i == 4 and not os.environ.get("RESUMING"):
        print("ready", flush=True)
        time.sleep(3600)
    return i

@durable.durable_workflow(name="bench.recovery")
async def six() -> int:
    return sum([await work(i) for i in range(1, 7)])

durable.configure(url=sys.argv[1])
asyncio.run(six.run(workflow_id="recover-me"))
"""


def recovery_latency(url: str) -> float:
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "child.py"
        script.write_text(CHILD)
        first = subprocess.Popen(
            [sys.executable, str(script), url], stdout=subprocess.PIPE, text=True
        )
        assert first.stdout is not None
        assert first.stdout.readline().strip() == "ready"
        first.send_signal(signal.SIGKILL)
        first.communicate()
        started = time.time()
        second = subprocess.run(
            [sys.executable, str(script), url],
            env={**os.environ, "RESUMING": "1"},
            capture_output=True,
            text=True,
            check=True,
        )
        return (float(second.stdout.split()[0]) - started) * 1000


def main() -> None:
    folder = tempfile.mkdtemp()
    stores = {"sqlite": lambda: f"sqlite:///{folder}/{uuid.uuid4().hex}.db"}
    if postgres_url():
        stores["postgresql"] = lambda: f"{POSTGRES}?schema=bench_{uuid.uuid4().hex[:10]}"
    print(f"durability modes, {STEPS} tiny async steps, µs/step (median of 3):")
    print("| store | normal | full | batched |")
    print("|---|--:|--:|--:|")
    for name, make in stores.items():
        cells = []
        for mode in ("normal", "full", "batched"):
            url = make()
            cells.append(f"{per_step(url, mode):.0f}")
            if name == "postgresql":
                drop_schema(url)
        print(f"| {name} | {' | '.join(cells)} |")
    print()
    print("recovery latency after SIGKILL, process start to first resumed step, ms (median of 5):")
    print("| store | latency |")
    print("|---|--:|")
    for name, make in stores.items():
        samples = []
        for _ in range(5):
            url = make()
            samples.append(recovery_latency(url))
            if name == "postgresql":
                drop_schema(url)
        print(f"| {name} | {statistics.median(samples):.0f} |")


if __name__ == "__main__":
    main()
