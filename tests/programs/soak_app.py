"""Workflows for the queue soak (tests/engine/test_queue_soak.py), run by worker processes.

Worker processes set ``SOAK_APP_WORKER`` to their name: they declare the
queues' flow control (a rate-limited queue, a partitioned one) and a
schedule that ticks every second. The test process imports this module for the workflows alone,
to enqueue them and to read their records.

Every step execution appends one line (one ``write``, atomic for a short
line) to ``$SOAK_APP_LOG``: ``<workflow id> <step> <worker> <start time>``, the
worker named by ``$SOAK_APP_WORKER`` (a pid may be reused by a later worker). A
step may run again after a SIGKILL (at-least-once execution); its record is
written once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time

import durable

LOG = os.environ.get("SOAK_APP_LOG", os.devnull)
WORKER = os.environ.get("SOAK_APP_WORKER", "")

PLAIN = "soak-plain"
RATED = "soak-rated"
RATE = (5, 2.0)
"""At most 5 starts of the rated queue in any window of 2 s."""
PARTITIONED = "soak-part"
PER_PARTITION = 2
TICKS = "soak-ticks"
SCHEDULE = "soak-tick"
TICK_SECONDS = 1
QUEUES = (PLAIN, RATED, PARTITIONED, TICKS)

STEPS = {
    "soak.job": ["soak_app.begin", "sleep(0.3 s)", "soak_app.middle", "soak_app.end"],
    "soak.rated": ["soak_app.begin", "soak_app.end"],
    "soak.tenant": ["soak_app.begin", "soak_app.end"],
    "soak.tick": ["soak_app.begin"],
}
"""The steps each workflow records, in order (names as the store holds them)."""


def _log(workflow_id: str, step: str, started: float) -> None:
    line = f"{workflow_id} {step} {WORKER or f'pid-{os.getpid()}'} {started:.6f}\n"
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


async def _effect(step: str, seconds: float) -> None:
    started = time.time()
    await asyncio.sleep(seconds)  # long enough that kills land inside steps
    _log(durable.current_workflow_id(), step, started)


@durable.step(name="soak_app.begin")
async def begin(seconds: float) -> int:
    await _effect("begin", seconds)
    return 1


@durable.step(name="soak_app.middle")
async def middle(seconds: float) -> int:
    await _effect("middle", seconds)
    return 10


@durable.step(name="soak_app.end")
async def end(seconds: float) -> int:
    await _effect("end", seconds)
    return 100


@durable.durable_workflow(name="soak.job")
async def job(i: int) -> int:
    total = i + await begin(0.15)
    await durable.sleep(0.3)  # a durable timer: a resume sleeps only what is left
    total += await middle(0.1 + (i % 4) * 0.1)
    return total + await end(0.15)


@durable.durable_workflow(name="soak.rated")
async def rated(i: int) -> int:
    return i + await begin(0.2) + await end(0.2)


@durable.durable_workflow(name="soak.tenant")
async def tenant(key: str, i: int) -> str:
    await begin(0.25)
    await end(0.25)
    return f"{key}:{i}"


@durable.durable_workflow(name="soak.tick")
async def tick(at: dt.datetime) -> str:
    await begin(0.2)
    return at.isoformat()


if WORKER:
    durable.Queue(RATED, rate_limit=RATE)
    durable.Queue(PARTITIONED, partition_concurrency=PER_PARTITION)
    # Every worker declares the same schedule: each tick must run once.
    durable.scheduled(every=TICK_SECONDS, name=SCHEDULE, queue=TICKS, catch_up="all")(tick)
