"""Deadlines and timeouts: a workflow's (recorded at start, kept, inherited) and a step's."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import pytest

import durable
from durable.testing import CrashInjector, SimulatedCrash, VirtualClock, crash_sweep

DAY = 86400.0
RAN: list[str] = []


@durable.step
async def note(what: str) -> str:
    RAN.append(what)
    return what


@durable.durable_workflow(name="timeouts.month", timeout=dt.timedelta(days=7))
async def month() -> str:
    await note("before")
    await durable.sleep(dt.timedelta(days=30))
    await note("after")
    return "done"


@durable.durable_workflow(name="timeouts.sync_month", timeout=7 * DAY)
def sync_month() -> str:
    durable.sleep(30 * DAY)  # type: ignore[unused-awaitable]
    return "done"


@durable.durable_workflow(name="timeouts.quick")
async def quick(days: float) -> str:
    await note("one")
    await durable.sleep(days * DAY)
    await note("two")
    return "done"


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


@pytest.fixture
def clock(runtime: durable.Runtime) -> VirtualClock:
    runtime.clock = VirtualClock()
    return runtime.clock


async def test_a_week_long_timeout_cancels_the_workflow_in_no_time(
    runtime: durable.Runtime, clock: VirtualClock
) -> None:
    with pytest.raises(durable.WorkflowTimeoutError, match="timed out") as caught:
        await month.run(workflow_id="m")
    error = caught.value
    assert isinstance(error, durable.WorkflowCancelledError)
    assert isinstance(error, TimeoutError)
    assert (error.workflow_id, error.timeout) == ("m", 7 * DAY)
    assert clock.elapsed == 7 * DAY  # the sleep ended at the deadline
    assert RAN == ["before"]
    info = runtime.get_workflow("m")
    assert info is not None
    assert info.status is durable.WorkflowStatus.CANCELLED
    assert info.deadline == error.deadline == clock.time()
    assert info.timeout == 7 * DAY
    # Its outcome is recorded: every way of asking raises the same error.
    with pytest.raises(durable.WorkflowTimeoutError):
        await month.run(workflow_id="m")
    with pytest.raises(durable.WorkflowTimeoutError):
        await durable.WorkflowHandle("m").result()
    with pytest.raises(durable.WorkflowTimeoutError):
        runtime.store.result("m")
    assert RAN == ["before"]


def test_sync_workflows_time_out_too(runtime: durable.Runtime, clock: VirtualClock) -> None:
    with pytest.raises(durable.WorkflowTimeoutError):
        sync_month.run_sync(workflow_id="s")
    assert clock.elapsed == 7 * DAY


async def test_a_resumed_workflow_gets_what_is_left_not_a_new_budget(
    runtime: durable.Runtime, clock: VirtualClock
) -> None:
    crash = CrashInjector(runtime)
    crash.arm("after_commit", step="note")
    with pytest.raises(SimulatedCrash):
        await quick.run(3, workflow_id="q", timeout=dt.timedelta(days=5))
    info = runtime.get_workflow("q")
    assert info is not None
    deadline = info.deadline
    assert deadline == clock.time() + 5 * DAY
    clock.advance(4 * DAY)  # down for four days
    with pytest.raises(durable.WorkflowTimeoutError):
        await quick.run(3, workflow_id="q", timeout=dt.timedelta(days=5))
    after = runtime.get_workflow("q")
    assert after is not None
    assert after.deadline == deadline  # not a new budget from the resume
    assert clock.time() == deadline  # the 3-day sleep was cut at the deadline
    assert RAN == ["one"]


async def test_the_call_overrides_the_decorator_and_within_it_all_goes_well(
    runtime: durable.Runtime, clock: VirtualClock
) -> None:
    assert await month.run(workflow_id="m", timeout=dt.timedelta(days=31)) == "done"
    assert RAN == ["before", "after"]
    assert await quick.run(1, workflow_id="q", timeout=2 * DAY) == "done"


async def test_an_enqueued_workflow_starts_its_clock_when_a_worker_starts_it(
    runtime: durable.Runtime, clock: VirtualClock
) -> None:
    enqueued_at = clock.time()
    handle = await quick.enqueue(1, workflow_id="e", timeout=3 * DAY)
    info = runtime.get_workflow("e")
    assert info is not None
    assert (info.timeout, info.deadline) == (3 * DAY, None)
    clock.advance(10 * DAY)  # a long time in the queue does not count
    report = await durable.Worker(runtime=runtime).run(until_idle=True)
    assert report.completed == ["e"]
    assert await handle.result() == "done"
    started = runtime.get_workflow("e")
    assert started is not None
    assert started.deadline is not None
    assert started.deadline == enqueued_at + 10 * DAY + 3 * DAY


async def test_children_inherit_the_deadline_and_may_only_shorten_it(
    runtime: durable.Runtime, clock: VirtualClock
) -> None:
    @durable.durable_workflow(name="timeouts.child", timeout=100 * DAY)
    async def child(days: float) -> str:
        await durable.sleep(days * DAY)
        return "child done"

    @durable.durable_workflow(name="timeouts.short_child", timeout=DAY)
    async def short_child() -> str:
        await durable.sleep(2 * DAY)
        return "never"

    @durable.durable_workflow(name="timeouts.parent", timeout=10 * DAY)
    async def parent() -> list[str]:
        got = [await child(1)]
        try:
            got.append(await short_child())
        except durable.WorkflowTimeoutError as exc:
            got.append(f"child timed out: {exc.timeout:g}")
        got.append(await child(30))  # past the parent's deadline
        return got

    with pytest.raises(durable.WorkflowTimeoutError):
        await parent.run(workflow_id="p")
    infos = {i.workflow_id: i for i in runtime.store.list_workflows()}
    parent_deadline = infos["p"].deadline
    assert parent_deadline is not None
    assert infos["p/1"].deadline == parent_deadline  # 100 days of its own: the parent's
    assert infos["p/2"].deadline is not None
    assert infos["p/2"].deadline < parent_deadline  # its own day
    assert infos["p/2"].status is infos["p/3"].status is durable.WorkflowStatus.CANCELLED
    assert infos["p"].status is durable.WorkflowStatus.CANCELLED
    history = [(e.name, e.status) for e in runtime.store.history("p")]
    assert history[:2] == [("timeouts.child", "success"), ("timeouts.short_child", "error")]


async def test_an_event_wait_ends_at_the_deadline(
    runtime: durable.Runtime, clock: VirtualClock
) -> None:
    @durable.durable_workflow(name="timeouts.approval", timeout=2 * DAY)
    async def approval() -> Any:
        return await durable.wait_for_event("decision")

    with pytest.raises(durable.WorkflowTimeoutError):
        await approval.run(workflow_id="a")
    assert clock.elapsed == 2 * DAY


async def test_a_suspended_workflow_is_timed_out_when_recovered_after_its_deadline(
    runtime: durable.Runtime, clock: VirtualClock
) -> None:
    @durable.durable_workflow(name="timeouts.suspended", timeout=DAY)
    async def suspended() -> Any:
        return await durable.wait_for_event("decision", suspend=True)

    with pytest.raises(durable.WorkflowSuspendedError):
        await suspended.run(workflow_id="s")
    info = runtime.get_workflow("s")
    assert info is not None
    assert info.wake_at == info.deadline  # due for recovery at its deadline
    clock.advance(2 * DAY)
    await runtime.recover()
    with pytest.raises(durable.WorkflowTimeoutError):
        await durable.WorkflowHandle("s").result()


async def test_an_async_step_is_cancelled_at_its_timeout_and_retried(
    runtime: durable.Runtime,
) -> None:
    attempts: list[int] = []

    @durable.step(timeout=0.05, retries=2, backoff=0)
    async def hangs_twice() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            await asyncio.sleep(60)
        return "third time"

    @durable.step(timeout=0.05, retries=3, backoff=0, retry_on=(ValueError,))
    async def hangs() -> None:
        attempts.append(2)
        await asyncio.sleep(60)

    @durable.durable_workflow(name="timeouts.steps")
    async def steps() -> list[str]:
        got = [await hangs_twice()]
        try:
            await hangs()
        except durable.StepTimeoutError as exc:
            got.append(f"{exc.step} {exc.timeout:g}")
        return got

    result = await steps.run(workflow_id="st")
    assert result[0] == "third time"
    assert result[1].endswith("hangs 0.05")
    assert attempts == [1, 1, 1, 2]  # not retried: retry_on does not match
    statuses = [(e.position, e.status) for e in runtime.store.history("st")]
    assert statuses == [(1, "retried"), (1, "retried"), (1, "success"), (2, "error")]


async def test_a_step_timeout_follows_a_hand_moved_virtual_clock(runtime: durable.Runtime) -> None:
    clock = runtime.clock = VirtualClock(auto_advance=False)

    @durable.step(timeout=dt.timedelta(days=7))
    async def waits_on_a_person() -> None:
        await asyncio.Event().wait()

    @durable.durable_workflow(name="timeouts.manual")
    async def manual() -> str:
        try:
            await waits_on_a_person()
        except durable.StepTimeoutError:
            return "gave up"
        return "answered"

    task = asyncio.create_task(manual.run(workflow_id="v"))
    await asyncio.sleep(0.05)
    assert not task.done()
    clock.advance(dt.timedelta(days=7))
    assert await asyncio.wait_for(task, 60) == "gave up"


def test_a_sync_step_that_returns_late_fails_and_its_result_is_dropped(
    runtime: durable.Runtime,
) -> None:
    @durable.step(timeout=0.01)
    def slow() -> str:
        time.sleep(0.05)
        return "late"

    @durable.durable_workflow(name="timeouts.sync_step")
    def sync_steps() -> str:
        return slow()

    with pytest.raises(durable.StepTimeoutError, match="cannot be interrupted"):
        sync_steps.run_sync(workflow_id="ss")
    (entry,) = runtime.store.history("ss")
    assert entry.status == "error"


async def test_a_running_async_step_is_cut_at_the_workflow_deadline(
    runtime: durable.Runtime,
) -> None:
    @durable.step
    async def forever() -> None:
        await asyncio.sleep(3600)
        RAN.append("finished")

    @durable.durable_workflow(name="timeouts.cut", timeout=0.1)
    async def cut() -> None:
        await forever()

    with pytest.raises(durable.WorkflowTimeoutError):
        await cut.run(workflow_id="c")
    assert RAN == []
    assert runtime.store.history("c") == []  # the cut step recorded nothing


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "7", True])
def test_bad_timeouts_are_refused_before_anything_runs(bad: Any) -> None:
    with pytest.raises(durable.ConfigurationError, match="timeout"):
        durable.durable_workflow(timeout=bad)
    with pytest.raises(durable.ConfigurationError, match="timeout"):
        durable.step(timeout=bad)


def test_a_bad_call_timeout_is_refused(runtime: durable.Runtime) -> None:
    with pytest.raises(durable.ConfigurationError, match="timeout"):
        quick.run_sync(1, timeout=-5)
    assert runtime.store.list_workflows() == []


def test_crash_sweep_of_a_workflow_with_a_deadline() -> None:
    crash_sweep(month, setup=RAN.clear).assert_ok()
