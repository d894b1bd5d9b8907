"""Wake-ups: suspended waits resumed when their event comes or their timer fires, not
at a worker's next scheduled look; held waits that stop polling the store while
nothing comes; resumes that read their arguments off the worker's event loop.

Each worker here looks for due work on its own only every 60 s
(``recovery_interval=60``): what a test sees within its few seconds came from
the wake-up under test.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

import durable
from tests.conftest import loop_ticks_while_locked, program_env

TIMEOUT = 20.0
"""Seconds a wake-up may take here at most: far below the worker's own 60 s."""


@durable.durable_workflow(name="wakeups.parked")
async def parked(i: int) -> int:
    return int(await durable.wait_for_event("go", suspend=True)) + i


@durable.durable_workflow(name="wakeups.napping")
async def napping(seconds: float) -> str:
    await durable.sleep(seconds, suspend=True)
    return "woke"


@durable.durable_workflow(name="wakeups.held")
async def held() -> int:
    return int(await durable.wait_for_event("go"))


def _worker(runtime: durable.Runtime, poll_interval: float = 0.05) -> durable.Worker:
    return durable.Worker(
        runtime=runtime, queues=["w"], recovery_interval=60, poll_interval=poll_interval
    )


async def _until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def _spy(monkeypatch: pytest.MonkeyPatch, backend: Any, operation: str) -> list[float]:
    """Note when each call of a storage operation of ``backend`` returned (it goes through)."""
    calls: list[float] = []
    real = getattr(backend, operation)

    async def counted(*args: Any, **kwargs: Any) -> Any:
        try:
            return await real(*args, **kwargs)
        finally:
            calls.append(time.monotonic())

    monkeypatch.setattr(backend, operation, counted)
    return calls


async def test_a_suspended_workflow_is_resumed_as_soon_as_its_event_arrives(
    runtime: durable.Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    looks = _spy(monkeypatch, runtime.backend, "resumable")
    worker = _worker(runtime)
    handle = await parked.enqueue(1, workflow_id="parked", queue="w")
    running = asyncio.create_task(worker.run())
    try:
        await _until(lambda: worker.report.suspended == ["parked"], "the workflow to suspend")
        await _until(lambda: bool(looks), "the worker's first look")  # the last for 60 s
        await durable.send_event("parked", "go", 6)
        assert await handle.result(timeout=TIMEOUT) == 7
    finally:
        worker.stop()
        report = await running
    assert report.resumed == ["parked"]


async def test_an_event_from_another_process_wakes_the_worker(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL relays the wake-up (NOTIFY); on SQLite the worker's file watcher
    reads the events sent since it last looked, at the other process's commit."""
    with durable.Runtime(db_url) as runtime:
        looks = _spy(monkeypatch, runtime.backend, "resumable")
        worker = _worker(runtime)
        handle = await parked.enqueue(2, workflow_id="parked-far", queue="w")
        running = asyncio.create_task(worker.run())
        try:
            await _until(lambda: worker.report.suspended == ["parked-far"], "it to suspend")
            await _until(lambda: bool(looks), "the worker's first look")
            code = (
                "import sys, durable; durable.Client(sys.argv[1]).send_event('parked-far', 'go', 5)"
            )
            sent = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-c", code, db_url],
                env=program_env(),
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert sent.returncode == 0, sent.stderr
            assert await handle.result(timeout=TIMEOUT) == 7
        finally:
            worker.stop()
            await running


async def test_a_storm_of_events_is_resumed_in_a_few_looks(
    runtime: durable.Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A look reads every active workflow's row: events coalesce, a look per poll interval."""
    ids = [f"storm-{i}" for i in range(30)]
    for i, workflow_id in enumerate(ids):
        await parked.enqueue(i, workflow_id=workflow_id, queue="w")
    worker = _worker(runtime, poll_interval=1.0)
    running = asyncio.create_task(worker.run())
    try:
        await _until(lambda: len(worker.report.suspended) == len(ids), "all to suspend")
        looks = _spy(monkeypatch, runtime.backend, "resumable")
        for workflow_id in ids:
            await durable.send_event(workflow_id, "go", 100)
        for i, workflow_id in enumerate(ids):
            assert await durable.WorkflowHandle(workflow_id).result(timeout=TIMEOUT) == 100 + i
    finally:
        worker.stop()
        await running
    assert 1 <= len(looks) < 10


async def test_a_suspended_timer_is_resumed_when_it_fires(runtime: durable.Runtime) -> None:
    worker = _worker(runtime)
    handle = await napping.enqueue(0.5, workflow_id="napping", queue="w")
    running = asyncio.create_task(worker.run())
    try:
        assert await handle.result(timeout=TIMEOUT) == "woke"
    finally:
        worker.stop()
        report = await running
    assert (report.suspended, report.resumed) == (["napping"], ["napping"])


async def test_a_worker_looks_again_when_the_timers_it_read_fire(
    runtime: durable.Runtime,
) -> None:
    """A timer suspended elsewhere: the worker's first look reads it, and comes back then."""
    with pytest.raises(durable.WorkflowSuspendedError):
        await napping.run(2.0, workflow_id="napped-here")
    worker = _worker(runtime)
    running = asyncio.create_task(worker.run())
    try:
        assert await durable.WorkflowHandle("napped-here").result(timeout=TIMEOUT) == "woke"
    finally:
        worker.stop()
        report = await running
    assert report.resumed == ["napped-here"]


async def test_a_held_event_wait_backs_its_polling_off_while_nothing_comes(
    durable_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It used to look for its event every ``event_poll_interval`` for as long as it
    waited: 1,000 held waits kept their worker's CPU a third busy doing nothing."""
    with durable.Runtime(durable_backend, event_poll_interval=0.02) as runtime:
        looks = _spy(monkeypatch, runtime.backend, "next_event")
        waiting = asyncio.create_task(held.run(workflow_id="held"))
        await _until(lambda: len(looks) >= 2, "the wait to look")
        await asyncio.sleep(2.5)  # 125 polls of 0.02 s; doubling, 7 or so
        assert len(looks) < 25
        # A notification still wakes it at once, however far it backed off.
        await durable.send_event("held", "go", 3)
        assert await asyncio.wait_for(waiting, TIMEOUT) == 3


async def test_a_resume_reads_its_arguments_off_the_event_loop(postgres_url: str) -> None:
    """A look returns rows without arguments; each resume reads its own. On the loop,
    5,000 resumes were 5,000 blocking round trips, each stalling every workflow the
    worker ran. Here a lock on the workflows table holds the read up for a second;
    the loop must tick meanwhile."""
    with durable.Runtime(postgres_url) as runtime:
        with pytest.raises(durable.WorkflowSuspendedError):
            await parked.run(3, workflow_id="parked-args")
        await durable.send_event("parked-args", "go", 4)
        recovery = runtime.parts.recovery
        (row,) = await recovery.due(runtime.engine.session(sync=True))
        assert row.args is None  # read by the resume
        resumes: list[asyncio.Task[Any]] = []
        ticks = await loop_ticks_while_locked(
            postgres_url,
            "durable_workflows",
            then=lambda: resumes.append(asyncio.create_task(recovery.rerun(row))),
        )
        assert [t for t in ticks if 0.3 < t < 0.9]
        (resume,) = resumes
        assert await resume == ("done", None)
        assert await durable.WorkflowHandle("parked-args").result(timeout=TIMEOUT) == 7
