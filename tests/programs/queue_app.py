"""Workflows for the worker tests: each step execution is logged to a side-effect file.

A line per execution, written in one append (atomic for a short line):
``<workflow id> <step> <pid> <start time> <end time>``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import durable

LOG = os.environ.get("QUEUE_APP_LOG", os.devnull)
STEP_SECONDS = float(os.environ.get("QUEUE_APP_STEP_SECONDS", "0.005"))


def _log(line: str) -> None:
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@durable.step
async def work(workflow_id: str, n: int) -> int:
    started = time.time()
    await asyncio.sleep(STEP_SECONDS)
    _log(f"{workflow_id} {n} {os.getpid()} {started:.6f} {time.time():.6f}")
    return n


@durable.durable_workflow(name="queue_app.job")
async def job(i: int) -> int:
    workflow_id = durable.current_workflow_id()
    total = i
    for n in range(5):
        total += await work(workflow_id, n)
    return total


@durable.durable_workflow(name="queue_app.slow")
async def slow(seconds: float) -> str:
    await work(durable.current_workflow_id(), 0)
    await asyncio.sleep(seconds)  # not a step: a long stretch of workflow code
    await work(durable.current_workflow_id(), 1)
    return "slept"


@durable.step
async def crash_the_process() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@durable.durable_workflow(name="queue_app.poison")
async def poison() -> None:
    await work(durable.current_workflow_id(), 0)
    await crash_the_process()


@durable.durable_workflow(name="queue_app.sync_job")
def sync_job(i: int) -> int:
    return i * 2


@durable.durable_workflow(name="queue_app.ticker")
async def ticker(at: object) -> str:
    await work(durable.current_workflow_id(), 0)
    return str(at)


if os.environ.get("QUEUE_APP_SCHEDULE"):
    # Every worker that imports this declares the same schedule: each tick must run once.
    durable.schedule(ticker, every=1, name="ticker", catch_up="all")


if __name__ == "__main__":
    # python queue_app.py enqueue N: enqueue N jobs on the store at $DURABLE_URL.
    count = int(sys.argv[2])
    for i in range(count):
        job.enqueue_sync(i, workflow_id=f"job-{i:05d}")
    print(count)
