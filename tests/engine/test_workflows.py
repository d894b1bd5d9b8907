"""Workflow identity, replay and the semantics of steps (DESIGN.md), on every store."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import durable

pytestmark = pytest.mark.usefixtures("runtime")


class Calls:
    """Counts what really ran (the side effects a replay must not repeat)."""

    def __init__(self) -> None:
        self.log: list[Any] = []

    def __call__(self, *item: Any) -> None:
        self.log.append(item if len(item) > 1 else item[0])


@pytest.fixture
def calls() -> Calls:
    return Calls()


async def test_derived_id_resumes_same_call_and_returns_recorded_result(
    runtime: durable.Runtime, calls: Calls
) -> None:
    @durable.step
    async def double(x: int) -> int:
        calls(x)
        return 2 * x

    @durable.durable_workflow(name="wf.derived")
    async def wf(x: int, y: int = 1) -> int:
        return await double(x) + y

    assert await wf(3) == 7
    assert await wf(3) == 7
    assert await wf(x=3, y=1) == 7  # the same call, spelled differently
    assert calls.log == [3]
    assert await wf(4) == 9
    assert calls.log == [3, 4]


async def test_explicit_workflow_id_and_conflict_names_both_calls(
    runtime: durable.Runtime, calls: Calls
) -> None:
    @durable.durable_workflow(name="wf.explicit")
    async def wf(x: int) -> int:
        calls(x)
        return x

    assert await wf.run(1, workflow_id="job-42") == 1
    assert runtime.get_workflow("job-42") is not None
    with pytest.raises(durable.WorkflowConflictError) as info:
        await wf.run(2, workflow_id="job-42")
    message = str(info.value)
    assert "'job-42' is already recorded for wf.explicit(1)" in message
    assert "now called as wf.explicit(2)" in message
    assert info.value.workflow_id == "job-42"
    assert calls.log == [1]


async def test_same_id_used_by_another_workflow_is_a_conflict(runtime: durable.Runtime) -> None:
    @durable.durable_workflow(name="wf.a")
    async def a() -> str:
        return "a"

    @durable.durable_workflow(name="wf.b")
    async def b() -> str:
        return "b"

    await a.run(workflow_id="shared")
    with pytest.raises(
        durable.WorkflowConflictError, match=r"recorded for wf\.a\(\).*called as wf\.b\(\)"
    ):
        await b.run(workflow_id="shared")


async def test_failed_workflow_new_attempt_reuses_successful_steps(
    runtime: durable.Runtime, calls: Calls
) -> None:
    fail = {"now": True}

    @durable.step
    async def expensive(x: int) -> int:
        calls("expensive", x)
        return x * 10

    @durable.step
    async def fragile(x: int) -> int:
        calls("fragile", x)
        if fail["now"]:
            raise ValueError("cell 9 threw")
        return x + 1

    @durable.durable_workflow(name="wf.fails")
    async def wf(x: int) -> int:
        return await fragile(await expensive(x))

    with pytest.raises(ValueError, match="cell 9 threw"):
        await wf(1)
    # Calling it again without a fix replays nothing stale: it is a new attempt.
    with pytest.raises(ValueError, match="cell 9 threw"):
        await wf(1)
    fail["now"] = False
    assert await wf(1) == 11
    assert calls.log == [("expensive", 1), ("fragile", 10), ("fragile", 10), ("fragile", 10)]
    info = runtime.get_workflow(wf.id_for(1))
    assert info is not None
    assert info.status is durable.WorkflowStatus.SUCCESS
    assert info.attempts == 3


class SimulatedCrash(BaseException):
    """Stands for the process dying: user code cannot catch it with ``except Exception``."""


async def test_gather_positions_are_fixed_at_call_time_and_replay(
    runtime: durable.Runtime, calls: Calls
) -> None:
    crash = {"armed": True}

    @durable.step
    async def slow(tag: str, delay: float) -> str:
        await asyncio.sleep(delay)
        calls(tag)
        return tag

    @durable.step
    async def after(parts: list[str]) -> str:
        if crash["armed"]:
            raise SimulatedCrash
        return "+".join(parts)

    @durable.durable_workflow(name="wf.gather")
    async def wf() -> str:
        # "a" finishes last but was called first: it owns position 1.
        parts = await asyncio.gather(slow("a", 0.05), slow("b", 0.0), slow("c", 0.01))
        return await after(list(parts))

    with pytest.raises(SimulatedCrash):
        await wf()
    crash["armed"] = False
    assert await wf() == "a+b+c"
    assert sorted(calls.log) == ["a", "b", "c"]  # none ran twice
    steps = runtime.list_steps(wf.id_for())
    assert [(s.position, s.name) for s in steps] == [
        (1, "test_gather_positions_are_fixed_at_call_time_and_replay.<locals>.slow"),
        (2, "test_gather_positions_are_fixed_at_call_time_and_replay.<locals>.slow"),
        (3, "test_gather_positions_are_fixed_at_call_time_and_replay.<locals>.slow"),
        (4, "test_gather_positions_are_fixed_at_call_time_and_replay.<locals>.after"),
    ]


async def test_changed_step_order_raises_non_determinism_error(runtime: durable.Runtime) -> None:
    order = {"first": "fetch"}

    @durable.step(name="fetch")
    async def fetch() -> int:
        return 1

    @durable.step(name="parse")
    async def parse() -> int:
        return 2

    @durable.step(name="crash")
    async def crash() -> None:
        raise SimulatedCrash

    @durable.durable_workflow(name="wf.order")
    async def wf() -> int:
        if order["first"] == "fetch":
            a, b = await fetch(), await parse()
        else:
            b, a = await parse(), await fetch()
        await crash()
        return a + b

    with pytest.raises(SimulatedCrash):
        await wf()
    order["first"] = "parse"
    with pytest.raises(durable.NonDeterminismError) as info:
        await wf()
    error = info.value
    assert (error.position, error.expected, error.found) == (1, "fetch", "parse")
    assert (
        "position 1: the record there is of step 'fetch', but the code now calls step 'parse'"
        in str(error)
    )


async def test_in_process_crash_leaves_a_resumable_workflow(
    runtime: durable.Runtime, calls: Calls
) -> None:
    crash_at = {"step": 2}

    @durable.step
    async def work(i: int) -> int:
        calls(i)
        if crash_at["step"] == i:
            raise SimulatedCrash
        return i

    @durable.durable_workflow(name="wf.crashes")
    async def wf() -> int:
        total = 0
        for i in range(1, 4):
            try:
                total += await work(i)
            except Exception:  # user code that swallows errors must not swallow a crash
                total -= 100
        return total

    with pytest.raises(SimulatedCrash):
        await wf()
    info = runtime.get_workflow(wf.id_for())
    assert info is not None
    assert info.status is durable.WorkflowStatus.RUNNING
    crash_at["step"] = 0
    assert await wf() == 6
    assert calls.log == [1, 2, 2, 3]


async def test_cancelled_workflow_resumes_where_it_stopped(
    runtime: durable.Runtime, calls: Calls
) -> None:
    started = asyncio.Event()

    @durable.step
    async def first() -> int:
        calls("first")
        return 1

    @durable.step
    async def second() -> int:
        calls("second")
        started.set()
        await asyncio.sleep(3600 if len(calls.log) < 3 else 0)
        return 2

    @durable.durable_workflow(name="wf.cancel")
    async def wf() -> int:
        return await first() + await second()

    task = asyncio.ensure_future(wf())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wf() == 3
    assert calls.log == ["first", "second", "second"]


async def test_caught_step_error_is_replayed_not_rerun_on_resume(
    runtime: durable.Runtime, calls: Calls
) -> None:
    crash = {"armed": True}

    @durable.step
    async def flaky() -> int:
        calls("flaky")
        raise LookupError("no such key")

    @durable.step
    async def tail() -> None:
        if crash["armed"]:
            raise SimulatedCrash

    @durable.durable_workflow(name="wf.caught")
    async def wf() -> str:
        try:
            await flaky()
        except LookupError as exc:
            outcome = f"fallback after {exc}"
        await tail()
        return outcome

    with pytest.raises(SimulatedCrash):
        await wf()
    crash["armed"] = False
    assert await wf() == "fallback after no such key"
    assert calls.log == ["flaky"]


async def test_child_workflows_are_recorded_in_the_parent(
    runtime: durable.Runtime, calls: Calls
) -> None:
    crash = {"armed": True}

    @durable.step
    async def leaf(x: int) -> int:
        calls("leaf", x)
        return x + 1

    @durable.durable_workflow(name="wf.child")
    async def child(x: int) -> int:
        return await leaf(x) * 2

    @durable.step
    async def tail() -> None:
        if crash["armed"]:
            raise SimulatedCrash

    @durable.durable_workflow(name="wf.parent")
    async def parent(x: int) -> int:
        a = await child(x)
        b = await child(x)  # same arguments, another position: another child
        await tail()
        return a + b

    with pytest.raises(SimulatedCrash):
        await parent(1)
    crash["armed"] = False
    assert await parent(1) == 8
    assert calls.log == [("leaf", 1), ("leaf", 1)]
    parent_id = parent.id_for(1)
    children = [runtime.get_workflow(f"{parent_id}/{pos}") for pos in (1, 2)]
    assert all(c is not None and c.parent_id == parent_id for c in children)
    assert [s.name for s in runtime.list_steps(parent_id)][:2] == ["wf.child", "wf.child"]


async def test_child_with_explicit_id_and_failing_child(runtime: durable.Runtime) -> None:
    @durable.durable_workflow(name="wf.bad_child")
    async def bad_child() -> None:
        raise KeyError("child failed")

    @durable.durable_workflow(name="wf.parent2")
    async def parent() -> str:
        try:
            await bad_child.run(workflow_id="the-child")
        except KeyError:
            return "handled"
        return "unreachable"

    assert await parent() == "handled"
    child = runtime.get_workflow("the-child")
    assert child is not None
    assert child.status is durable.WorkflowStatus.ERROR
    assert child.parent_id == parent.id_for()


async def test_steps_outside_workflows_and_nested_steps_are_plain_calls(
    runtime: durable.Runtime, calls: Calls
) -> None:
    @durable.step
    async def inner(x: int) -> int:
        calls("inner", x)
        return x

    @durable.step
    async def outer(x: int) -> int:
        return await inner(x) + await inner(x)

    assert await outer(2) == 4  # no workflow: nothing recorded, nothing required

    @durable.durable_workflow(name="wf.nested")
    async def wf() -> int:
        return await outer(3)

    assert await wf() == 6
    assert [s.position for s in runtime.list_steps(wf.id_for())] == [1]  # only `outer`
    assert await wf() == 6
    assert calls.log == [("inner", 2), ("inner", 2), ("inner", 3), ("inner", 3)]


def test_sync_workflow_with_sync_steps(runtime: durable.Runtime, calls: Calls) -> None:
    @durable.step
    def load(x: int) -> list[int]:
        calls("load", x)
        return list(range(x))

    @durable.durable_workflow(name="wf.sync")
    def wf(x: int) -> int:
        return sum(load(x))

    assert wf(4) == 6
    assert wf.run(4) == 6
    assert wf.run_sync(4) == 6
    assert wf.run(4, workflow_id="sync-job") == 6
    assert calls.log == [("load", 4), ("load", 4)]


async def test_sync_step_inside_async_workflow(runtime: durable.Runtime, calls: Calls) -> None:
    @durable.step
    def blocking(x: int) -> int:
        calls(x)
        return -x

    @durable.durable_workflow(name="wf.mixed")
    async def wf(x: int) -> int:
        return blocking(x) + blocking(x + 1)

    assert await wf(1) == -3
    assert await wf(1) == -3
    assert calls.log == [1, 2]


def test_async_step_in_sync_workflow_is_a_clear_error(runtime: durable.Runtime) -> None:
    @durable.step
    async def needs_await() -> int:
        return 1

    @durable.durable_workflow(name="wf.sync_calls_async")
    def wf() -> int:
        return needs_await()  # type: ignore[return-value]

    with pytest.raises(durable.ConfigurationError, match="make the workflow `async def`"):
        wf()


def test_run_sync_from_plain_code(runtime: durable.Runtime) -> None:
    @durable.durable_workflow(name="wf.run_sync")
    async def wf(x: int) -> int:
        return x * 3

    assert wf.run_sync(2) == 6
    assert wf.run_sync(2, workflow_id="explicit") == 6


async def test_run_sync_inside_a_running_event_loop(runtime: durable.Runtime) -> None:
    @durable.step
    async def step_in_loop(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    @durable.durable_workflow(name="wf.notebook")
    async def wf(x: int) -> int:
        return await step_in_loop(x)

    # As in a notebook cell: a loop is already running in this thread.
    assert wf.run_sync(1) == 2
    assert runtime.get_workflow(wf.id_for(1)) is not None


async def test_concurrent_calls_in_one_process_share_one_execution(
    runtime: durable.Runtime, calls: Calls
) -> None:
    @durable.step
    async def slow(x: int) -> int:
        calls(x)
        await asyncio.sleep(0.05)
        return x

    @durable.durable_workflow(name="wf.shared")
    async def wf(x: int) -> int:
        return await slow(x)

    assert await asyncio.gather(wf(5), wf(5), wf(5)) == [5, 5, 5]
    assert calls.log == [5]


async def test_on_running_raise_refuses_instead_of_waiting(runtime: durable.Runtime) -> None:
    release = asyncio.Event()

    @durable.step
    async def hold() -> str:
        await release.wait()
        return "done"

    @durable.durable_workflow(name="wf.busy", on_running="raise")
    async def wf() -> str:
        return await hold()

    first = asyncio.ensure_future(wf())
    await asyncio.sleep(0.01)
    with pytest.raises(durable.WorkflowAlreadyRunningError, match="not waiting for it"):
        await wf()
    release.set()
    assert await first == "done"
    assert await wf() == "done"


@pytest.mark.parametrize(
    ("bad_id", "message"),
    [
        ("", "must not be empty"),
        ("x" * 256, "is 256 characters long; the limit is 255"),
        ("a\x00b", "contains a NUL character"),
        (42, "must be a str, not int"),
    ],
)
async def test_invalid_workflow_ids_are_rejected_before_any_query(
    runtime: durable.Runtime, bad_id: Any, message: str
) -> None:
    @durable.durable_workflow(name="wf.ids")
    async def wf() -> None:
        pass

    with pytest.raises(durable.InvalidWorkflowIdError, match=message):
        await wf.run(workflow_id=bad_id)


@pytest.mark.parametrize(
    "odd_id",
    ["it's", 'say "hi"', "100%", "x;--DROP TABLE durable_steps", "back\\slash", "ünïcødé ✓"],
)
async def test_unusual_workflow_ids_round_trip(runtime: durable.Runtime, odd_id: str) -> None:
    @durable.durable_workflow(name="wf.odd")
    async def wf() -> str:
        return "ok"

    assert await wf.run(workflow_id=odd_id) == "ok"
    info = runtime.get_workflow(odd_id)
    assert info is not None
    assert info.workflow_id == odd_id


async def test_current_workflow_id_inside_body_steps_and_children(runtime: durable.Runtime) -> None:
    @durable.step
    async def key() -> str:
        return durable.current_workflow_id()

    @durable.durable_workflow(name="wf.kid")
    async def kid() -> str:
        return durable.current_workflow_id()

    @durable.durable_workflow(name="wf.ids_inside")
    async def wf() -> list[str]:
        return [durable.current_workflow_id(), await key(), await kid()]

    assert await wf.run(workflow_id="outer") == ["outer", "outer", "outer/2"]
    with pytest.raises(durable.NotInWorkflowError, match="called outside a workflow"):
        durable.current_workflow_id()


async def test_many_concurrent_workflows_record_each_step_once(runtime: durable.Runtime) -> None:
    @durable.step(name="c_step")
    async def c_step(w: int, i: int) -> int:
        await asyncio.sleep(0)
        return w * 100 + i

    @durable.durable_workflow(name="wf.many")
    async def many(w: int) -> int:
        return sum([await c_step(w, i) for i in range(5)])

    results = await asyncio.gather(*(many.run(w, workflow_id=f"many-{w}") for w in range(60)))
    assert results == [w * 500 + 10 for w in range(60)]
    for w in (0, 31, 59):
        assert [s.position for s in runtime.list_steps(f"many-{w}")] == [1, 2, 3, 4, 5]
    assert runtime.store.metrics().steps == 300
