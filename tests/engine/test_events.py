"""Durable waits: events, timeouts, suspension, and crash loops (quarantine)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

import durable
from durable.testing import CrashInjector, SimulatedCrash, VirtualClock

SEEN: list[Any] = []


@durable.step
async def note(value: Any) -> Any:
    SEEN.append(value)
    return value


@durable.durable_workflow(name="events.approval")
async def approval(claim: int) -> str:
    await note(f"asked {claim}")
    decision = await durable.wait_for_event("decision")
    await note(f"got {decision}")
    return f"claim {claim}: {decision}"


@durable.durable_workflow(name="events.with_timeout")
async def with_timeout(claim: int, seconds: float) -> str:
    try:
        decision = await durable.wait_for_event("decision", timeout=seconds)
    except durable.EventTimeoutError:
        decision = "timed out"
    return await note(decision)


@pytest.fixture(autouse=True)
def _clear() -> None:
    SEEN.clear()


async def _until_waiting(runtime: durable.Runtime, workflow_id: str) -> None:
    for _ in range(500):
        info = runtime.get_workflow(workflow_id)
        if info is not None and info.status is durable.WorkflowStatus.WAITING:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{workflow_id} never started waiting")


async def test_a_waiting_workflow_says_so_and_gets_the_value_sent(
    runtime: durable.Runtime,
) -> None:
    workflow_id = approval.id_for(1)
    task = asyncio.create_task(approval(1))
    await _until_waiting(runtime, workflow_id)
    assert await durable.send_event(workflow_id, "decision", {"ok": True})

    assert await task == "claim 1: {'ok': True}"
    info = runtime.get_workflow(workflow_id)
    assert info is not None
    assert info.status is durable.WorkflowStatus.SUCCESS
    kinds = [(e.kind, e.name) for e in runtime.store.history(workflow_id)]
    assert ("event", "wait_for_event('decision')") in kinds


async def test_an_event_sent_before_the_wait_is_not_lost(runtime: durable.Runtime) -> None:
    handle = await approval.enqueue(2)  # recorded, not started
    assert await durable.send_event(handle.workflow_id, "decision", "early")
    assert await approval(2) == "claim 2: early"


async def test_each_wait_consumes_one_event_oldest_first_and_replay_consumes_none(
    runtime: durable.Runtime,
) -> None:
    @durable.durable_workflow(name="events.two_waits")
    async def two_waits() -> list[str]:
        return [await durable.wait_for_event("k"), await durable.wait_for_event("k")]

    handle = await two_waits.enqueue(workflow_id="two")
    for value in ("first", "second", "third"):
        await durable.send_event("two", "k", value)
    assert await two_waits.run(workflow_id="two") == ["first", "second"]
    assert await two_waits.run(workflow_id="two") == ["first", "second"]  # recorded

    @durable.durable_workflow(name="events.two_waits")
    async def one_more() -> str:
        return await durable.wait_for_event("k")

    # The third event is still there for a later wait (a fork shares no events).
    assert handle.status() is durable.WorkflowStatus.SUCCESS
    new = await one_more.enqueue(workflow_id="three")
    await durable.send_event(new.workflow_id, "k", "own")
    assert await one_more.run(workflow_id="three") == "own"


async def test_a_crash_after_the_event_is_recorded_does_not_take_another(
    runtime: durable.Runtime, durable_crash: CrashInjector
) -> None:
    workflow_id = approval.id_for(3)
    await approval.enqueue(3)
    await durable.send_event(workflow_id, "decision", "yes")
    await durable.send_event(workflow_id, "decision", "a later one")
    crash = durable_crash
    crash.arm("after_commit", step="wait_for_event('decision')")
    with pytest.raises(SimulatedCrash):
        await approval(3)
    assert await approval(3) == "claim 3: yes"
    assert SEEN == ["asked 3", "got yes"]


async def test_a_crash_before_the_event_is_recorded_leaves_it_for_the_resume(
    runtime: durable.Runtime, durable_crash: CrashInjector
) -> None:
    workflow_id = approval.id_for(4)
    await approval.enqueue(4)
    await durable.send_event(workflow_id, "decision", "kept")
    crash = durable_crash
    crash.arm("after_step", step="wait_for_event('decision')")
    with pytest.raises(SimulatedCrash):
        await approval(4)
    assert await approval(4) == "claim 4: kept"


async def test_a_timeout_is_recorded_and_replayed_even_if_the_event_comes_later(
    runtime: durable.Runtime,
) -> None:
    runtime.clock = VirtualClock()  # auto-advancing: the 1-day timeout costs no time
    assert await with_timeout(5, 86400.0) == "timed out"
    await durable.send_event(with_timeout.id_for(5, 86400.0), "decision", "too late")
    assert await with_timeout(5, 86400.0) == "timed out"
    assert SEEN == ["timed out"]


async def test_a_resumed_wait_waits_only_what_is_left_of_its_timeout(
    runtime: durable.Runtime, durable_crash: CrashInjector
) -> None:
    clock = VirtualClock(auto_advance=False)
    runtime.clock = clock
    workflow_id = with_timeout.id_for(6, 100.0)
    crash = durable_crash
    crash.arm("before_step", step="wait_for_event('decision')")
    with pytest.raises(SimulatedCrash):
        await with_timeout(6, 100.0)  # the deadline (t0 + 100) is recorded
    clock.advance(100)  # the whole timeout passes while nothing runs
    assert await with_timeout(6, 100.0) == "timed out"
    assert SEEN == ["timed out"]
    info = runtime.get_workflow(workflow_id)
    assert info is not None
    assert info.status is durable.WorkflowStatus.SUCCESS


async def test_a_suspended_sleep_lets_the_process_go_and_recover_resumes_it_when_due(
    runtime: durable.Runtime,
) -> None:
    clock = VirtualClock(auto_advance=False)
    runtime.clock = clock

    @durable.durable_workflow(name="events.nightly")
    async def nightly() -> str:
        await note("before")
        await durable.sleep(dt.timedelta(hours=8), suspend=True)
        return await note("after")

    with pytest.raises(durable.WorkflowSuspendedError, match="suspended until") as info:
        await nightly.run(workflow_id="nightly")
    assert info.value.details["wake_at"] == pytest.approx(clock.time() + 8 * 3600)
    stored = runtime.get_workflow("nightly")
    assert stored is not None
    assert stored.status is durable.WorkflowStatus.WAITING
    assert stored.owner_host is None  # nobody holds it while it waits

    assert (await runtime.recover()).resumed == []  # not due yet
    clock.advance(8 * 3600)
    report = await runtime.recover()
    assert report.resumed == ["nightly"]
    assert SEEN == ["before", "after"]


async def test_a_suspended_event_wait_resumes_when_the_event_arrives(
    runtime: durable.Runtime,
) -> None:
    @durable.durable_workflow(name="events.parked")
    async def parked() -> str:
        return await durable.wait_for_event("go", suspend=True)

    with pytest.raises(durable.WorkflowSuspendedError, match="event 'go'"):
        await parked.run(workflow_id="parked")
    assert (await runtime.recover()).resumed == []
    await durable.send_event("parked", "go", "now")
    assert (await runtime.recover()).resumed == ["parked"]
    assert await parked.run(workflow_id="parked") == "now"


async def test_a_child_that_suspends_suspends_its_parent_and_resumes_through_it(
    runtime: durable.Runtime,
) -> None:
    @durable.durable_workflow(name="events.child")
    async def child() -> str:
        return await durable.wait_for_event("go", suspend=True)

    @durable.durable_workflow(name="events.parent")
    async def parent() -> str:
        value = await child()
        return await note(f"parent got {value}")

    with pytest.raises(durable.WorkflowSuspendedError):
        await parent.run(workflow_id="p")
    [child_info] = [w for w in runtime.store.list_workflows() if w.parent_id == "p"]
    assert runtime.get_workflow("p").status is durable.WorkflowStatus.WAITING  # type: ignore[union-attr]
    await durable.send_event(child_info.workflow_id, "go", "yes")
    report = await runtime.recover()
    assert report.resumed == ["p"]  # the root, which replays down to the child
    assert SEEN == ["parent got yes"]


async def test_send_event_checks_its_target_and_honours_idempotency_keys(
    runtime: durable.Runtime,
) -> None:
    with pytest.raises(durable.WorkflowNotFoundError, match="no such workflow"):
        await durable.send_event("nobody", "k", 1)
    with pytest.raises(durable.ConfigurationError, match="event key"):
        await durable.send_event("nobody", "", 1)
    handle = await approval.enqueue(7)
    assert await durable.send_event(handle.workflow_id, "decision", "a", idempotency_key="x")
    assert not await durable.send_event(handle.workflow_id, "decision", "b", idempotency_key="x")
    assert await approval(7) == "claim 7: a"


async def test_an_event_sent_by_a_workflow_is_sent_once_across_a_resume(
    runtime: durable.Runtime, durable_crash: CrashInjector
) -> None:
    @durable.durable_workflow(name="events.sender")
    async def sender(target: str) -> str:
        await durable.send_event(target, "ping", "hello")
        return await note("sent")

    @durable.durable_workflow(name="events.receiver")
    async def receiver() -> list[str]:
        first = await durable.wait_for_event("ping")
        try:
            second = await durable.wait_for_event("ping", timeout=0.2)
        except durable.EventTimeoutError:
            second = "no second ping"
        return [first, second]

    await receiver.enqueue(workflow_id="rx")
    crash = durable_crash
    crash.arm("before_step", step="note")
    with pytest.raises(SimulatedCrash):
        await sender("rx")
    assert await sender("rx") == "sent"
    assert await receiver.run(workflow_id="rx") == ["hello", "no second ping"]


async def test_waits_are_refused_where_they_cannot_work(runtime: durable.Runtime) -> None:
    with pytest.raises(durable.NotInWorkflowError):
        await durable.wait_for_event("k")

    @durable.durable_workflow(name="events.in_tx")
    async def in_tx() -> None:
        async with durable.transaction():
            await durable.wait_for_event("k")

    with pytest.raises(durable.ConfigurationError, match="cannot span a wait"):
        await in_tx()


def test_sync_workflows_wait_with_the_sync_form(runtime: durable.Runtime) -> None:
    @durable.durable_workflow(name="events.sync")
    def sync_flow() -> str:
        return str(durable.wait_for_event_sync("k"))

    handle = sync_flow.enqueue(workflow_id="sync")
    assert durable.send_event_sync(handle.workflow_id, "k", 42)
    assert sync_flow.run(workflow_id="sync") == "42"


async def test_interrupts_in_this_process_never_count_toward_quarantine(
    runtime: durable.Runtime, durable_crash: CrashInjector
) -> None:
    runtime.max_recoveries = 1

    @durable.durable_workflow(name="events.interrupted")
    async def interrupted() -> str:
        return await note("done")

    for _ in range(3):  # as a notebook user interrupting a cell, again and again
        durable_crash.arm("before_step", step="note")
        with pytest.raises(SimulatedCrash):
            await interrupted.run(workflow_id="interrupted")
    assert await interrupted.run(workflow_id="interrupted") == "done"


async def test_a_quarantined_workflow_waits_for_a_resume_by_hand(
    runtime: durable.Runtime, durable_crash: CrashInjector
) -> None:
    @durable.durable_workflow(name="events.poison")
    async def poison() -> str:
        return await note("done")

    durable_crash.arm("before_step", step="note")
    with pytest.raises(SimulatedCrash):
        await poison.run(workflow_id="poison")
    # As a worker does after max_recoveries deaths of the process running it
    # (tests/test_workers.py shows that with real processes).
    backend = runtime.backend
    row = backend.run_sync(backend.get_workflow, "poison")
    assert row is not None
    assert backend.run_sync(backend.quarantine, "poison", row.epoch)

    with pytest.raises(durable.WorkflowQuarantinedError, match="resume it by hand"):
        await poison.run(workflow_id="poison")
    assert (await runtime.recover()).resumed == []  # never resumed by itself
    from durable.testing import unregistered

    with (
        unregistered("events.poison"),
        pytest.raises(  # code not imported: stays quarantined
            durable.WorkflowNotFoundError, match="import the module"
        ),
    ):
        await runtime.resume("poison")
    info = runtime.get_workflow("poison")
    assert info is not None
    assert info.status is durable.WorkflowStatus.QUARANTINED
    assert await runtime.resume("poison") == "done"
    assert SEEN == ["done"]


@pytest.mark.usefixtures("postgres_url")
async def test_postgres_wakes_a_waiter_in_another_runtime_without_polling(
    postgres_url: str,
) -> None:
    # A poll interval far longer than the test: only a NOTIFY can wake it.
    with durable.Runtime(postgres_url, event_poll_interval=600) as waiter_side:
        workflow_id = approval.id_for(8)
        task = asyncio.create_task(approval(8))
        await _until_waiting(waiter_side, workflow_id)
        with durable.Runtime(postgres_url) as sender_side:
            assert sender_side.store.get_workflow(workflow_id) is not None
            await durable.send_event(workflow_id, "decision", "notified")
        assert await asyncio.wait_for(task, timeout=60) == "claim 8: notified"


async def test_cancelling_a_waiting_workflow_stops_its_wait(runtime: durable.Runtime) -> None:
    workflow_id = approval.id_for(9)
    task = asyncio.create_task(approval(9))
    await _until_waiting(runtime, workflow_id)
    assert runtime.store.cancel(workflow_id)
    with pytest.raises(durable.WorkflowCancelledError):
        await asyncio.wait_for(task, timeout=30)
    assert SEEN == ["asked 9"]


async def test_a_parent_suspended_by_its_child_resumes_when_the_child_ends_otherwise(
    runtime: durable.Runtime,
) -> None:
    @durable.durable_workflow(name="events.child2")
    async def child() -> str:
        return await durable.wait_for_event("go", suspend=True)

    @durable.durable_workflow(name="events.parent2")
    async def parent() -> str:
        try:
            value = await child()
        except durable.WorkflowCancelledError:
            value = "child cancelled"
        return await note(value)

    with pytest.raises(durable.WorkflowSuspendedError) as info:
        await parent.run(workflow_id="p2")
    assert info.value.details["workflow_id"] == "p2"  # the workflow called, not the child
    assert "its child 'p2/1' waits" in str(info.value)
    assert runtime.store.cancel("p2/1")
    assert (await runtime.recover()).resumed == ["p2"]
    assert SEEN == ["child cancelled"]


async def test_a_suspended_timer_is_not_resumed_before_it_is_due(
    runtime: durable.Runtime,
) -> None:
    runtime.clock = VirtualClock(auto_advance=False)

    @durable.durable_workflow(name="events.later")
    async def later() -> str:
        await durable.sleep(3600, suspend=True)
        return "later"

    with pytest.raises(durable.WorkflowSuspendedError):
        await later.run(workflow_id="later")
    for _ in range(3):
        report = await runtime.recover()
        assert (report.resumed, report.suspended) == ([], [])
    info = runtime.get_workflow("later")
    assert info is not None
    assert info.attempts == 1  # never claimed again before its time


async def test_cancelling_a_long_sleep_stops_it(runtime: durable.Runtime) -> None:
    @durable.durable_workflow(name="events.long_sleep")
    async def long_sleep() -> None:
        await durable.sleep(dt.timedelta(hours=1))
        await note("woke")

    task = asyncio.create_task(long_sleep.run(workflow_id="long"))
    await _until_waiting(runtime, "long")
    assert runtime.store.cancel("long")
    with pytest.raises(durable.WorkflowCancelledError):
        await asyncio.wait_for(task, timeout=60)
    assert SEEN == []


async def test_concurrent_waits_for_one_key_take_one_event_each(
    runtime: durable.Runtime,
) -> None:
    @durable.durable_workflow(name="events.approvals")
    async def approvals() -> list[str]:
        return sorted(await asyncio.gather(*(durable.wait_for_event("ok") for _ in range(3))))

    await approvals.enqueue(workflow_id="three")
    for who in ("ana", "bo", "cy"):
        await durable.send_event("three", "ok", who)
    assert await approvals.run(workflow_id="three") == ["ana", "bo", "cy"]
    info = runtime.get_workflow("three")
    assert info is not None
    assert info.attempts == 1  # no wait mistook another for a takeover
