"""durable.sleep / sleep_until: timers recorded as steps; a resume sleeps only what is left."""

from __future__ import annotations

import datetime as dt

import pytest

import durable
from durable.testing import CrashInjector, SimulatedCrash, VirtualClock, crash_sweep

RAN: list[str] = []


@durable.step(name="before")
async def before() -> None:
    RAN.append("before")


@durable.step(name="after")
async def after() -> None:
    RAN.append("after")


@durable.durable_workflow(name="sleep.flow")
async def flow() -> str:
    await before()
    await durable.sleep(dt.timedelta(seconds=100))
    await after()
    return "woke"


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


async def test_a_resume_sleeps_only_what_is_left(durable_backend: str) -> None:
    clock = VirtualClock()
    with durable.Runtime(durable_backend, clock=clock) as runtime:
        CrashInjector(runtime).arm("after_commit", step="sleep(100 s)")
        with pytest.raises(SimulatedCrash):
            await flow.run(workflow_id="nap")
        assert clock.elapsed == 0  # crashed right after recording the timer
        clock.advance(40)  # the process was down for 40 s
        assert await flow.run(workflow_id="nap") == "woke"
        assert clock.elapsed == 100  # 40 down + 60 left, not 40 + 100
        assert RAN == ["before", "after"]
        kinds = [(e.kind, e.name) for e in runtime.store.history("nap")]
        assert kinds == [("step", "before"), ("sleep", "sleep(100 s)"), ("step", "after")]


async def test_a_finished_sleep_is_not_slept_again(durable_runtime: durable.Runtime) -> None:
    clock = VirtualClock()
    durable_runtime.clock = clock
    CrashInjector(durable_runtime).arm("before_step", step="after")
    with pytest.raises(SimulatedCrash):
        await flow.run(workflow_id="done-sleeping")
    assert clock.elapsed == 100
    assert await flow.run(workflow_id="done-sleeping") == "woke"
    assert clock.elapsed == 100


def test_sleep_until_in_a_sync_workflow(durable_runtime: durable.Runtime) -> None:
    clock = VirtualClock(start=1_800_000_000)
    durable_runtime.clock = clock

    @durable.durable_workflow(name="sleep.until")
    def until() -> float:
        durable.sleep_until(dt.datetime.fromtimestamp(1_800_003_600, tz=dt.timezone.utc))
        return clock.time()

    assert until() == 1_800_003_600
    assert until() == 1_800_003_600  # finished: the recorded result


def test_bad_sleeps_are_refused(durable_runtime: durable.Runtime) -> None:
    with pytest.raises(durable.ConfigurationError, match="duration=-1 is negative"):
        durable.sleep(-1)
    with pytest.raises(durable.ConfigurationError, match="has no time zone"):
        durable.sleep_until(dt.datetime(2030, 1, 1))

    @durable.step(name="sleepy_step")
    async def sleepy_step() -> None:
        await durable.sleep(1)

    @durable.durable_workflow(name="sleep.in_step")
    async def wf() -> None:
        await sleepy_step()

    durable_runtime.clock = VirtualClock()
    with pytest.raises(durable.NotInWorkflowError, match="inside a step"):
        wf.run_sync()


async def test_outside_a_workflow_it_is_a_plain_sleep(durable_runtime: durable.Runtime) -> None:
    clock = VirtualClock()
    durable_runtime.clock = clock
    await durable.sleep(5)
    assert clock.elapsed == 5


def test_crash_sweep_of_a_sleeping_workflow() -> None:
    crash_sweep(flow, setup=RAN.clear).assert_ok()
