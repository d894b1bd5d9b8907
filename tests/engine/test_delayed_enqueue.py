"""Delayed and deduplicated enqueues (issue 16, part 2), on every backend."""

from __future__ import annotations

import datetime as dt

import pytest

import durable
from durable.testing import VirtualClock

RAN: list[int] = []


@durable.durable_workflow(name="delayed.job")
def job(n: int) -> int:
    RAN.append(n)
    return n


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


def drain(runtime: durable.Runtime) -> durable.WorkerReport:
    return durable.Worker(runtime=runtime).run_sync(until_idle=True, handle_signals=False)


def test_a_delayed_enqueue_waits_for_its_time_and_does_not_hold_up_others(
    runtime: durable.Runtime, durable_clock: VirtualClock
) -> None:
    later = job.enqueue_sync(1, delay=dt.timedelta(hours=1))
    at = dt.datetime.fromtimestamp(durable_clock.time(), dt.timezone.utc) + dt.timedelta(hours=2)
    latest = job.enqueue_sync(2, start_at=at)
    optioned = job.options(delay=30 * 60, priority=9).enqueue_sync(3)
    now = job.enqueue_sync(4)
    assert drain(runtime).completed == [now.workflow_id]
    info = runtime.store.get_workflow(later.workflow_id)
    assert info is not None
    assert info.status == "enqueued"
    assert info.wake_at == durable_clock.time() + 3600  # shown as when it wakes
    durable_clock.advance(dt.timedelta(hours=1))
    # Both due now: claimed in one batch, run side by side.
    assert set(drain(runtime).completed) == {optioned.workflow_id, later.workflow_id}
    durable_clock.advance(dt.timedelta(hours=1))
    assert drain(runtime).completed == [latest.workflow_id]
    assert (RAN[0], set(RAN[1:3]), RAN[3]) == (4, {1, 3}, 2)
    assert runtime.store.get_workflow(latest.workflow_id).wake_at is None  # type: ignore[union-attr]


async def test_the_async_form_and_a_start_in_the_past(
    runtime: durable.Runtime, durable_clock: VirtualClock
) -> None:
    @durable.durable_workflow(name="delayed.ajob")
    async def ajob(n: int) -> int:
        return n * 10

    past = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    handle = await ajob.enqueue(5, start_at=past)  # due already: claimed at once
    await durable.Worker(runtime=runtime).run(until_idle=True)
    assert await handle.result() == 50


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"delay": 60, "start_at": dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)}, "not both"),
        ({"start_at": dt.datetime(2030, 1, 1)}, "start_at must be an aware datetime"),
        ({"delay": -1}, "delay"),
        ({"delay": "soon"}, "delay"),
    ],
)
def test_a_bad_start_is_refused_before_anything_is_recorded(
    runtime: durable.Runtime, options: dict[str, object], message: str
) -> None:
    with pytest.raises(durable.ConfigurationError, match=message):
        job.enqueue_sync(1, **options)  # type: ignore[arg-type]
    with pytest.raises(durable.ConfigurationError, match=message):
        job.options(**options)  # type: ignore[arg-type]
    assert runtime.store.list_workflows() == []


@durable.durable_workflow(name="delayed.gated")
async def gated(n: int) -> int:
    await durable.wait_for_event("go", suspend=True)
    return n


def test_a_dedup_id_enqueues_once_while_the_first_has_work_left(
    runtime: durable.Runtime,
) -> None:
    first = job.enqueue_sync(1, dedup_id="user-7")
    with pytest.raises(durable.WorkflowDeduplicatedError, match="has dedup_id 'user-7'") as raised:
        job.enqueue_sync(2, dedup_id="user-7")
    assert raised.value.details["workflow_id"] == first.workflow_id
    same = job.options(dedup_id="user-7", on_duplicate="return").enqueue_sync(3)
    assert same.workflow_id == first.workflow_id
    assert job.enqueue_sync(1, dedup_id="user-7").workflow_id == first.workflow_id  # same call
    other_queue = job.enqueue_sync(4, dedup_id="user-7", queue="other")
    assert {w.workflow_id for w in runtime.store.list_workflows()} == {
        other_queue.workflow_id,
        first.workflow_id,
    }
    drain(runtime)
    assert RAN == [1]
    again = job.enqueue_sync(5, dedup_id="user-7")  # the first finished: free again
    assert again.workflow_id != first.workflow_id


async def test_a_suspended_workflow_keeps_its_dedup_id(runtime: durable.Runtime) -> None:
    waiting = await gated.enqueue(1, dedup_id="batch")
    await durable.Worker(runtime=runtime).run(until_idle=True)
    assert waiting.status().value == "waiting"
    with pytest.raises(durable.WorkflowDeduplicatedError):
        await gated.enqueue(2, dedup_id="batch")
    await durable.send_event(waiting.workflow_id, "go", None)
    await durable.Worker(runtime=runtime).run(until_idle=True)
    assert await waiting.result() == 1
    assert (await gated.enqueue(3, dedup_id="batch")).workflow_id != waiting.workflow_id


def test_a_bad_dedup_option_is_refused(runtime: durable.Runtime) -> None:
    with pytest.raises(durable.ConfigurationError, match="dedup_id"):
        job.enqueue_sync(1, dedup_id="")
    with pytest.raises(
        durable.ConfigurationError, match="on_duplicate must be 'raise' or 'return'"
    ):
        job.options(dedup_id="x", on_duplicate="ignore")  # type: ignore[arg-type]
    assert runtime.store.list_workflows() == []


def test_until_on_a_virtual_clock_stops_at_each_wake_up_on_the_way(
    runtime: durable.Runtime, durable_clock: VirtualClock
) -> None:
    woke: list[float] = []

    @durable.step(name="delayed.note")
    def note() -> None:
        woke.append(durable_clock.elapsed)

    @durable.durable_workflow(name="delayed.napper")
    async def napper() -> None:
        await durable.sleep(600, suspend=True)
        note()

    nap = napper.enqueue_sync()
    later = job.enqueue_sync(9, delay=dt.timedelta(hours=2))
    report = durable.Worker(runtime=runtime).run_sync(
        until=dt.timedelta(days=1), handle_signals=False
    )
    assert woke == [600.0]  # resumed when its timer fired, not at the end of the day
    assert RAN == [9]
    assert durable_clock.elapsed == 86400
    assert (report.completed, report.resumed) == ([later.workflow_id], [nap.workflow_id])


def test_enqueued_and_started_times_are_recorded(runtime: durable.Runtime) -> None:
    # On a real clock both times are the store's (a virtual clock's worker records its own).
    queued = job.enqueue_sync(1, workflow_id="queued")
    job.run_sync(2, workflow_id="direct")
    drain(runtime)
    info = runtime.store.get_workflow("queued")
    direct = runtime.store.get_workflow("direct")
    assert info is not None
    assert direct is not None
    assert info.enqueued_at == info.created_at
    assert info.started_at is not None
    assert info.started_at >= info.created_at
    assert direct.enqueued_at is None
    assert direct.started_at == pytest.approx(direct.created_at, abs=0.01)
    assert queued.result_sync() == 1
