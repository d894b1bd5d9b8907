"""Delayed enqueue (issue 16, part 2): ``delay=`` / ``start_at=``, on every backend."""

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
    assert drain(runtime).completed == [optioned.workflow_id, later.workflow_id]  # priority first
    durable_clock.advance(dt.timedelta(hours=1))
    assert drain(runtime).completed == [latest.workflow_id]
    assert RAN == [4, 3, 1, 2]
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
