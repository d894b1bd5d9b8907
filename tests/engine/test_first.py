"""``durable.wait_first`` and ``durable.as_completed``: the order of completion is recorded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import durable
from durable.testing import CrashInjector, SimulatedCrash, crash_sweep

RAN: list[str] = []
DELAYS: dict[str, float] = {}


@durable.step
async def answer(source: str) -> str:
    RAN.append(f"start {source}")
    await asyncio.sleep(DELAYS.get(source, 0))
    RAN.append(f"done {source}")
    return f"{source} answered"


@durable.step
async def fails(source: str) -> str:
    RAN.append(f"start {source}")
    raise ValueError(f"{source} is down")


@durable.step
async def after(what: Any) -> Any:
    RAN.append(f"after {what}")
    return what


@durable.durable_workflow(name="first.race")
async def race() -> tuple[int, str]:
    index, value = await durable.wait_first([answer("slow"), answer("fast")])
    await after(value)
    return index, value


@durable.durable_workflow(name="first.all")
async def in_order() -> list[int]:
    order = []
    async for index, _ in durable.as_completed([answer("a"), answer("b"), answer("c")]):
        order.append(index)
        await after(index)
    return order


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()
    DELAYS.clear()


async def test_the_first_to_finish_wins_and_the_others_are_cancelled(
    runtime: durable.Runtime,
) -> None:
    DELAYS.update(slow=30, fast=0)
    assert await race.run(workflow_id="r") == (1, "fast answered")
    assert "done slow" not in RAN
    history = [(e.name, e.status) for e in runtime.store.history("r")]
    assert ("wait_first", "success") in history
    assert ("answer", "success") in history


async def test_a_resumed_workflow_takes_the_recorded_winner(runtime: durable.Runtime) -> None:
    DELAYS.update(slow=0.5, fast=0)
    crash = CrashInjector(runtime)
    crash.arm("before_step", step="after")
    with pytest.raises(SimulatedCrash):
        await race.run(workflow_id="r")
    RAN.clear()
    DELAYS.update(slow=0, fast=30)  # the other one would win now
    assert await race.run(workflow_id="r") == (1, "fast answered")
    assert RAN == ["after fast answered"]  # nothing raced again


async def test_as_completed_goes_the_recorded_order_again(runtime: durable.Runtime) -> None:
    DELAYS.update(a=0.3, b=0, c=0.1)
    assert await in_order.run(workflow_id="o") == [1, 2, 0]
    DELAYS.update(a=0, b=0.3, c=0.1)
    RAN.clear()
    assert await in_order.run(workflow_id="o") == [1, 2, 0]  # recorded: replayed
    assert RAN == []


async def test_the_winners_error_is_raised_and_recorded(runtime: durable.Runtime) -> None:
    DELAYS.update(slow=30)

    @durable.durable_workflow(name="first.failing")
    async def failing() -> str:
        try:
            await durable.wait_first([answer("slow"), fails("broken")])
        except ValueError as exc:
            return f"caught {exc}"
        return "no error"

    assert await failing.run(workflow_id="f") == "caught broken is down"
    RAN.clear()
    assert await failing.run(workflow_id="f") == "caught broken is down"
    assert RAN == []


async def test_handles_of_enqueued_workflows_race_too(runtime: durable.Runtime) -> None:
    @durable.durable_workflow(name="first.quick")
    async def quick(n: int) -> int:
        return n

    @durable.durable_workflow(name="first.handles")
    async def handles() -> tuple[int, int]:
        return await durable.wait_first(
            [durable.WorkflowHandle("never"), durable.WorkflowHandle("q2")]
        )

    await quick.run(2, workflow_id="q2")
    await quick.enqueue(1, workflow_id="never")  # enqueued, never run here
    assert await handles.run(workflow_id="h") == (1, 2)


async def test_outside_a_workflow_it_is_a_plain_race() -> None:
    DELAYS.update(slow=30)
    assert await durable.wait_first([answer("slow"), answer("fast")]) == (1, "fast answered")
    seen = [i async for i, _ in durable.as_completed([answer("x"), asyncio.sleep(0, "y")])]
    assert sorted(seen) == [0, 1]


def test_bad_input_is_refused(runtime: durable.Runtime) -> None:
    with pytest.raises(durable.ConfigurationError, match="at least one"):
        asyncio.run(durable.wait_first([]))
    with pytest.raises(durable.ConfigurationError, match="item 0 is int"):
        asyncio.run(durable.wait_first([42]))  # type: ignore[list-item]

    @durable.durable_workflow(name="first.sync")
    def sync_flow() -> Any:
        return asyncio.run(durable.wait_first([asyncio.sleep(0)]))

    with pytest.raises(durable.ConfigurationError, match="sync workflow"):
        sync_flow.run_sync(workflow_id="s")


def _decided(**delays: float) -> Any:
    """A sweep's setup: a race whose winner does not depend on the machine's speed."""

    def setup() -> None:
        RAN.clear()
        DELAYS.clear()
        DELAYS.update(delays)

    return setup


def test_crash_sweep_of_a_race() -> None:
    crash_sweep(race, setup=_decided(slow=5, fast=0)).assert_ok()


def test_crash_sweep_of_as_completed() -> None:
    crash_sweep(in_order, setup=_decided(a=0.2, b=0, c=0.1)).assert_ok()
