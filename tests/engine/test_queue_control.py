"""Queue flow control (issue 16, part 2): rate limits, per-worker and partition limits,
pausing, queue timeouts, and queues declared in code or set at run time; on every backend."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator

import pytest

import durable
from durable.testing import VirtualClock

STARTS: list[tuple[str, float]] = []
RUNNING: dict[str, int] = {}
MOST: dict[str, int] = {}


@pytest.fixture(autouse=True)
def _clear() -> Iterator[None]:
    STARTS.clear()
    RUNNING.clear()
    MOST.clear()
    yield
    for queue in durable.Queue.declared():
        queue.undeclare()


@durable.durable_workflow(name="flow.tick")
def tick(n: int) -> int:
    STARTS.append((str(n), durable.current_runtime().clock.time()))
    return n


@durable.durable_workflow(name="flow.busy")
async def busy(key: str, n: int) -> int:
    """Holds its slot for a moment, counting how many of its key run at once."""
    STARTS.append((key, 0.0))
    RUNNING[key] = RUNNING.get(key, 0) + 1
    RUNNING["*"] = RUNNING.get("*", 0) + 1
    MOST[key] = max(MOST.get(key, 0), RUNNING[key])
    MOST["*"] = max(MOST.get("*", 0), RUNNING["*"])
    await asyncio.sleep(0.05)
    RUNNING[key] -= 1
    RUNNING["*"] -= 1
    return n


def test_a_rate_limit_spreads_starts_over_its_period(
    runtime: durable.Runtime, durable_clock: VirtualClock
) -> None:
    durable.Queue("rated", rate_limit=(3, dt.timedelta(minutes=1)))
    handles = [tick.enqueue_sync(n, queue="rated") for n in range(10)]
    report = durable.Worker(runtime=runtime, queues=["rated"]).run_sync(
        until=dt.timedelta(hours=1), handle_signals=False
    )
    assert sorted(report.completed) == sorted(h.workflow_id for h in handles)
    starts = sorted(at for _, at in STARTS)
    # In any window of 60 s, at most 3 starts (recorded starts, the store's view).
    infos = [runtime.store.get_workflow(h.workflow_id) for h in handles]
    recorded = sorted(i.started_at for i in infos if i is not None and i.started_at is not None)
    assert len(recorded) == 10
    for at in recorded:
        assert sum(1 for other in recorded if at <= other < at + 60) <= 3
    assert starts[-1] - starts[0] >= 180  # 10 starts at 3 a minute: a fourth window
    assert durable_clock.elapsed <= 3600


def test_worker_and_global_concurrency_hold_across_workers(runtime: durable.Runtime) -> None:
    durable.Queue("slots", concurrency=3, worker_concurrency=2)
    for n in range(12):
        busy.enqueue_sync("slots", n, queue="slots")

    async def two_workers() -> list[durable.WorkerReport]:
        workers = [
            durable.Worker(runtime=runtime, queues=["slots"], concurrency=8) for _ in range(2)
        ]
        return await asyncio.gather(*(w.run(until_idle=True) for w in workers))

    reports = asyncio.run(two_workers())
    assert sum(len(r.completed) for r in reports) == 12
    assert MOST["slots"] <= 3  # never more, whatever the timing
    assert all(report.completed for report in reports)  # both workers took part


def test_one_worker_keeps_to_its_worker_concurrency(runtime: durable.Runtime) -> None:
    runtime.store.set_queue("narrow", worker_concurrency=2)
    for n in range(6):
        busy.enqueue_sync("narrow", n, queue="narrow")
    report = durable.Worker(runtime=runtime, queues=["narrow"], concurrency=10).run_sync(
        until_idle=True, handle_signals=False
    )
    assert len(report.completed) == 6
    assert MOST["narrow"] == 2


def test_a_partition_runs_its_share_and_a_burst_does_not_starve_the_others(
    runtime: durable.Runtime,
) -> None:
    tenants = durable.Queue("tenants", partition_concurrency=1)
    for n in range(6):
        busy.enqueue_sync("big", n, queue=tenants, partition="big")
    busy.options(queue=tenants, partition="small").enqueue_sync("small", 0)
    busy.options(queue=tenants, partition="tiny").enqueue_sync("tiny", 0)
    report = durable.Worker(runtime=runtime, queues=[tenants], concurrency=10).run_sync(
        until_idle=True, handle_signals=False
    )
    assert len(report.completed) == 8
    assert (MOST["big"], MOST["small"], MOST["tiny"]) == (1, 1, 1)
    first = {key for key, _ in STARTS[:3]}
    assert first == {"big", "small", "tiny"}  # the burst came first, yet waited its turn
    info = runtime.store.get_workflow(busy.id_for("small", 0))
    assert info is not None
    assert info.partition == "small"


def test_a_paused_queue_keeps_its_work_until_resumed(runtime: durable.Runtime) -> None:
    store = runtime.store
    store.pause_queue("held")
    handle = tick.enqueue_sync(1, queue="held")
    other = tick.enqueue_sync(2)  # another queue goes on
    worker = durable.Worker(runtime=runtime, queues=["held", "default"])  # names
    assert worker.run_sync(until_idle=True, handle_signals=False).completed == [other.workflow_id]
    (held,) = [q for q in store.queues() if q.name == "held"]
    assert (held.paused, held.enqueued, held.running, held.concurrency) == (True, 1, 0, None)
    store.resume_queue("held")
    worker = durable.Worker(runtime=runtime, queues=["held"])
    assert worker.run_sync(until_idle=True, handle_signals=False).completed == [handle.workflow_id]
    assert handle.result_sync() == 1


def test_a_queue_timeout_cancels_what_no_worker_started(
    runtime: durable.Runtime, durable_clock: VirtualClock
) -> None:
    runtime.store.pause_queue("slow")
    waited = tick.enqueue_sync(1, queue="slow", queue_timeout=30, dedup_id="only-one")
    delayed = tick.options(queue="slow", delay=600, queue_timeout=30).enqueue_sync(2)
    durable.Worker(runtime=runtime, queues=["slow"]).run_sync(
        until=dt.timedelta(minutes=5), handle_signals=False
    )
    with pytest.raises(durable.QueueTimeoutError, match="waited in queue 'slow'") as caught:
        waited.result_sync()
    assert isinstance(caught.value, durable.WorkflowTimeoutError)
    assert caught.value.details["queue"] == "slow"
    info = runtime.store.get_workflow(waited.workflow_id)
    assert info is not None
    assert (info.status, info.attempts) == ("cancelled", 0)  # it never ran
    # Its time counts from when it may start: the delayed one is still waiting.
    late = runtime.store.get_workflow(delayed.workflow_id)
    assert late is not None
    assert late.status == "enqueued"
    # The dedup id is free again.
    again = tick.enqueue_sync(3, queue="slow", dedup_id="only-one")
    assert again.workflow_id != waited.workflow_id
    assert STARTS == []


def test_declared_queues_are_put_by_workers_and_changed_at_run_time(
    runtime: durable.Runtime,
) -> None:
    store = runtime.store
    mail = durable.Queue("mail", concurrency=4, rate_limit=(100, 60), partition_concurrency=2)
    assert repr(mail) == (
        "durable.Queue('mail', concurrency=4, rate_limit=(100, 60.0), partition_concurrency=2)"
    )
    assert store.queues() == []  # not in the store before a worker starts
    tick.enqueue_sync(1, queue=mail)
    durable.Worker(runtime=runtime, queues=["mail"]).run_sync(until_idle=True, handle_signals=False)
    info = store.get_queue("mail")
    assert (info.concurrency, info.rate_limit, info.partition_concurrency) == (4, (100, 60.0), 2)
    assert (info.declared, info.recent_starts, info.enqueued) == (True, 1, 0)
    store.pause_queue("mail")
    changed = store.set_queue("mail", worker_concurrency=1, rate_limit=None)
    assert (changed.concurrency, changed.worker_concurrency, changed.paused) == (4, 1, True)
    assert changed.rate_limit is None  # lifted; the terms not given stay
    # A worker whose code declares it puts the declared terms back; the pause stays.
    durable.Worker(runtime=runtime, queues=["mail"]).run_sync(until_idle=True, handle_signals=False)
    again = store.get_queue("mail")
    assert (again.concurrency, again.worker_concurrency, again.paused) == (4, None, True)
    assert store.delete_queue("mail") is True
    assert store.delete_queue("mail") is False
    assert store.get_queue("mail").declared is False


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"concurrency": 0}, "concurrency of queue 'q' must be an int from 1"),
        ({"worker_concurrency": 1.5}, "worker_concurrency of queue 'q' must be an int"),
        ({"rate_limit": 5}, r"rate_limit of queue 'q' must be \(starts, period\)"),
        ({"rate_limit": (5, 60, 1)}, r"rate_limit of queue 'q' must be \(starts, period\)"),
        ({"rate_limit": (5, 0)}, "period of queue 'q'"),
        ({"rate_limit": (0, 60)}, "starts of queue 'q'"),
        ({"partition_concurrency": -1}, "partition_concurrency of queue 'q'"),
    ],
)
def test_bad_terms_are_refused_before_anything_is_stored(
    runtime: durable.Runtime, given: dict[str, object], message: str
) -> None:
    with pytest.raises(durable.ConfigurationError, match=message):
        durable.Queue("q", **given)  # type: ignore[arg-type]
    with pytest.raises(durable.ConfigurationError, match=message):
        runtime.store.set_queue("q", **given)  # type: ignore[arg-type]
    assert runtime.store.queues() == []
    assert durable.Queue.declared() == []


def test_bad_enqueue_options_are_refused(runtime: durable.Runtime) -> None:
    with pytest.raises(durable.ConfigurationError, match="partition"):
        tick.enqueue_sync(1, partition="")
    with pytest.raises(durable.ConfigurationError, match="queue_timeout"):
        tick.enqueue_sync(1, queue_timeout=0)
    with pytest.raises(durable.ConfigurationError, match="queue_timeout"):
        tick.options(queue_timeout=-5)
    assert runtime.store.list_workflows() == []


@durable.durable_workflow(name="flow.load")
def load(day: str, partition: str = "all") -> str:
    return f"{day}/{partition}"


def test_an_option_named_like_a_parameter_must_say_which_it_is(runtime: durable.Runtime) -> None:
    with pytest.raises(durable.ConfigurationError, match=r"parameter named partition"):
        load.enqueue_sync("d1", partition="eu")
    assert runtime.store.list_workflows() == []
    handle = load.options(partition="tenant-1").enqueue_sync("d1", partition="eu")
    drain = durable.Worker(runtime=runtime).run_sync(until_idle=True, handle_signals=False)
    assert drain.completed == [handle.workflow_id]
    assert handle.result_sync() == "d1/eu"  # the workflow's own argument
    info = runtime.store.get_workflow(handle.workflow_id)
    assert info is not None
    assert info.partition == "tenant-1"  # the enqueue option


@durable.durable_workflow(name="flow.napper")
async def napper() -> str:
    await durable.sleep(60, suspend=True)
    return "woke"


def test_a_paused_queue_holds_its_woken_workflows_too(
    runtime: durable.Runtime, durable_clock: VirtualClock
) -> None:
    handle = napper.enqueue_sync(queue="naps")
    worker = durable.Worker(runtime=runtime, queues=["naps"])
    assert worker.run_sync(until_idle=True, handle_signals=False).suspended == [handle.workflow_id]
    runtime.store.pause_queue("naps")
    durable_clock.advance(120)  # its timer fired
    worker = durable.Worker(runtime=runtime, queues=["naps"])
    assert worker.run_sync(until_idle=True, handle_signals=False).resumed == []
    runtime.store.resume_queue("naps")
    worker = durable.Worker(runtime=runtime, queues=["naps"])
    assert worker.run_sync(until_idle=True, handle_signals=False).resumed == [handle.workflow_id]
    assert handle.result_sync() == "woke"


def test_until_idle_waits_out_a_rate_limit_but_not_a_pause_or_a_delay(
    runtime: durable.Runtime,
) -> None:
    durable.Queue("trickle", rate_limit=(2, 0.3))
    handles = [tick.enqueue_sync(n, queue="trickle") for n in range(5)]
    later = tick.options(queue="trickle", delay=3600, queue_timeout=30).enqueue_sync(9)
    runtime.store.pause_queue("held")
    held = tick.enqueue_sync(7, queue="held")
    report = durable.Worker(runtime=runtime, queues=["trickle", "held"]).run_sync(
        until_idle=True, handle_signals=False
    )
    # Each window of the limit was waited out; the paused and the delayed were not.
    assert sorted(report.completed) == sorted(h.workflow_id for h in handles)
    trickle = runtime.store.get_queue("trickle")
    assert (trickle.enqueued, trickle.delayed) == (1, 1)
    assert runtime.store.get_queue("held").enqueued == 1
    assert held.workflow_id not in report.completed
    for handle in handles:  # the store's clock, read after the queue's lock
        info = runtime.store.get_workflow(handle.workflow_id)
        assert info is not None
        assert info.started_at is not None
        assert info.enqueued_at is not None
        assert info.started_at >= info.enqueued_at
    # A delay and a queue timeout count on the store's clock, as claims read it.
    info = runtime.store.get_workflow(later.workflow_id)
    assert info is not None
    assert info.start_by is not None
    assert info.start_by - info.created_at == pytest.approx(3630, abs=5)


def test_until_idle_on_a_virtual_clock_jumps_to_a_rate_limits_next_window(
    runtime: durable.Runtime, durable_clock: VirtualClock
) -> None:
    durable.Queue("hourly", rate_limit=(1, dt.timedelta(hours=1)))
    handles = [tick.enqueue_sync(n, queue="hourly") for n in range(3)]
    report = durable.Worker(runtime=runtime, queues=["hourly"]).run_sync(
        until_idle=True, handle_signals=False
    )
    assert sorted(report.completed) == sorted(h.workflow_id for h in handles)
    assert durable_clock.elapsed >= 2 * 3600  # three starts, an hour apart


@durable.durable_workflow(name="flow.hold")
async def hold(n: int) -> int:
    await asyncio.sleep(1.0)
    return n


def test_until_idle_waits_for_room_another_workers_workflow_takes(db_url: str) -> None:
    import threading

    durable.Queue("one", concurrency=1)
    with durable.Runtime(db_url) as first_runtime:
        handles = [hold.enqueue_sync(n, queue="one") for n in range(2)]
        first = durable.Worker(runtime=first_runtime, queues=["one"])
        other = threading.Thread(
            target=first.run_sync, kwargs={"until_idle": True, "handle_signals": False}
        )
        other.start()
        try:
            while first_runtime.store.get_queue("one").running == 0:  # the slot is taken
                threading.Event().wait(0.01)
            with durable.Runtime(db_url) as second_runtime:
                second = durable.Worker(runtime=second_runtime, queues=["one"])
                second.run_sync(until_idle=True, handle_signals=False)
                # It returned once nothing could start: not while one still waited.
                assert second_runtime.store.get_queue("one").enqueued == 0
        finally:
            other.join(timeout=60)
        assert sorted(h.result_sync(timeout=30) for h in handles) == [0, 1]
