"""Schedules (issue 16, part 1): cron and interval ticks, one workflow each, on every backend."""

from __future__ import annotations

import collections
import datetime as dt
import signal
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import durable
from durable.testing import VirtualClock
from tests.conftest import read_lines, wait_for
from tests.engine.test_workers import _queue_app, _stderr, _worker

UTC = dt.timezone.utc
START = dt.datetime(2026, 1, 1, tzinfo=UTC)  # the virtual clock's default start
RUNS: list[tuple[str, dt.datetime, tuple[object, ...]]] = []


@durable.durable_workflow(name="schedules.report")
def report(at: dt.datetime, region: str = "eu") -> str:
    RUNS.append(("report", at, (region,)))
    return f"{region}:{at:%Y-%m-%d %H:%M}"


@durable.durable_workflow(name="schedules.poll")
async def poll(at: dt.datetime) -> str:
    RUNS.append(("poll", at, ()))
    return at.isoformat()


@pytest.fixture(autouse=True)
def runs() -> Iterator[list[tuple[str, dt.datetime, tuple[object, ...]]]]:
    RUNS.clear()
    yield RUNS
    RUNS.clear()


def work(runtime: durable.Runtime, until: dt.timedelta | dt.datetime) -> durable.WorkerReport:
    return durable.Worker(runtime=runtime).run_sync(until=until, handle_signals=False)


def test_a_month_of_ticks_runs_each_tick_once_in_virtual_time(
    runtime: durable.Runtime, durable_clock: VirtualClock
) -> None:
    info = runtime.store.add_schedule(
        "reports", report, cron="0 */6 * * *", args=["us"], catch_up="all"
    )
    assert info.next_tick == START + dt.timedelta(hours=6)
    worker = work(runtime, dt.timedelta(days=30))
    assert durable_clock.elapsed == 30 * 86400
    ticks = [at for _, at, _ in RUNS]
    assert ticks == [START + dt.timedelta(hours=6 * k) for k in range(1, 4 * 30 + 1)]
    assert len(worker.completed) == 120
    first = runtime.store.get_workflow("reports@2026-01-01T06:00:00Z")
    assert first is not None
    assert runtime.store.result(first.workflow_id) == "us:2026-01-01 06:00"
    # Another worker over the same month fires nothing again.
    RUNS.clear()
    assert work(runtime, START + dt.timedelta(days=30)).completed == []
    assert RUNS == []
    assert runtime.store.get_schedule("reports").last_tick == START + dt.timedelta(days=30)  # type: ignore[union-attr]


def test_the_tick_is_passed_in_the_schedules_timezone_and_async_workflows_run_too(
    runtime: durable.Runtime, durable_clock: VirtualClock
) -> None:
    paris = ZoneInfo("Europe/Paris")
    runtime.store.add_schedule("polls", poll, cron="30 9 * * *", timezone="Europe/Paris")
    work(runtime, dt.timedelta(days=2))
    assert [at for _, at, _ in RUNS] == [
        dt.datetime(2026, 1, 1, 9, 30, tzinfo=paris),
        dt.datetime(2026, 1, 2, 9, 30, tzinfo=paris),
    ]
    assert RUNS[0][1].tzinfo == paris
    assert runtime.store.get_workflow("polls@2026-01-01T08:30:00Z") is not None  # ids in UTC


@pytest.mark.parametrize(
    ("catch_up", "expected"),
    [("all", 5), ("last", 1), ("skip", 0)],
)
def test_ticks_missed_while_no_worker_ran_follow_the_catch_up_policy(
    runtime: durable.Runtime, durable_clock: VirtualClock, catch_up: str, expected: int
) -> None:
    runtime.store.add_schedule("hourly", report, every=3600, catch_up=catch_up)  # type: ignore[arg-type]
    durable_clock.advance(5 * 3600 + 600)  # five ticks pass, the last ten minutes ago
    work(runtime, dt.timedelta(0))
    assert len(RUNS) == expected
    if expected == 1:
        assert RUNS[0][1] == START + dt.timedelta(hours=5)  # the latest one
    RUNS.clear()
    work(runtime, dt.timedelta(hours=1))  # on time from here on, whatever the policy
    assert [at for _, at, _ in RUNS] == [START + dt.timedelta(hours=6)]


def test_paused_schedules_fire_nothing_until_resumed_and_deleted_ones_never(
    runtime: durable.Runtime, durable_clock: VirtualClock
) -> None:
    store = runtime.store
    store.add_schedule("every-minute", report, every=60, catch_up="all")
    store.pause_schedule("every-minute")
    assert store.get_schedule("every-minute").paused  # type: ignore[union-attr]
    work(runtime, dt.timedelta(minutes=10))
    assert RUNS == []
    store.resume_schedule("every-minute")
    work(runtime, dt.timedelta(minutes=1))
    assert len(RUNS) == 11  # the ten it missed (catch_up="all") and this one
    store.delete_schedule("every-minute")
    assert store.schedules() == []
    work(runtime, dt.timedelta(minutes=5))
    assert len(RUNS) == 11
    for change in (store.pause_schedule, store.resume_schedule, store.delete_schedule):
        with pytest.raises(durable.ScheduleNotFoundError, match="no schedule named 'every-minute'"):
            change("every-minute")


def test_a_backfill_runs_the_ticks_of_a_past_range_once(
    runtime: durable.Runtime, durable_clock: VirtualClock
) -> None:
    store = runtime.store
    store.add_schedule("daily", report, cron="0 0 * * *", args=["ap"], catch_up="skip")
    durable_clock.advance(dt.timedelta(days=1, hours=1))
    work(runtime, dt.timedelta(0))
    assert RUNS == []  # an hour late: skipped
    before = START - dt.timedelta(days=3)
    assert store.backfill_schedule("daily", before, START + dt.timedelta(days=1)) == 4
    assert store.get_schedule("daily").backfill is not None  # type: ignore[union-attr]
    with pytest.raises(durable.ConfigurationError, match="has a backfill pending"):
        store.backfill_schedule("daily", before, START)
    work(runtime, dt.timedelta(0))
    days = [START + dt.timedelta(days=d) for d in (-3, -2, -1, 0)]  # [start, end)
    assert sorted(at for _, at, _ in RUNS) == days
    assert {args for _, _, args in RUNS} == {("ap",)}
    assert store.get_schedule("daily").backfill is None  # type: ignore[union-attr]
    RUNS.clear()
    store.backfill_schedule("daily", before, START)  # ran already: not again
    work(runtime, dt.timedelta(0))
    assert RUNS == []


def test_a_schedule_declared_in_code_keeps_its_state_across_worker_starts(
    runtime: durable.Runtime, durable_clock: VirtualClock
) -> None:
    declared = durable.schedule(report, every=dt.timedelta(hours=1), name="code", args=["x"])
    try:
        work(runtime, dt.timedelta(hours=2))
        assert [at for _, at, _ in RUNS] == [START + dt.timedelta(hours=h) for h in (1, 2)]
        runtime.store.pause_schedule("code")
        work(runtime, dt.timedelta(hours=2))  # a new worker puts it again: still paused
        assert len(RUNS) == 2
        assert runtime.store.get_schedule("code").paused  # type: ignore[union-attr]
    finally:
        declared.undeclare()


def test_the_decorator_declares_a_schedule(runtime: durable.Runtime) -> None:
    @durable.scheduled("*/5 * * * *", name="decorated")
    @durable.durable_workflow(name="schedules.decorated")
    def decorated(at: dt.datetime) -> None:
        pass

    entries = [s for s in durable.Schedule.declared() if s.name == "decorated"]
    for entry in entries:
        entry.undeclare()
    assert [(e.cron, e.catch_up, e.workflow) for e in entries] == [
        ("*/5 * * * *", "last", decorated)
    ]
    assert decorated(START) is None  # still the workflow


def test_a_worker_without_the_code_leaves_a_schedule_alone(
    runtime: durable.Runtime, durable_clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    runtime.store.add_schedule("elsewhere", "schedules.not_imported_here", every=60)
    work(runtime, dt.timedelta(minutes=3))
    assert runtime.store.list_workflows() == []
    assert "no imported module registers workflow 'schedules.not_imported_here'" in caplog.text
    assert runtime.store.get_schedule("elsewhere").last_tick == START  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "give either cron= .* or every="),
        ({"cron": "* * *"}, "cron expression '\\* \\* \\*' is not valid"),
        ({"cron": "*/5 * * * *", "every": 60}, "exactly one of them"),
        ({"every": 0.5}, "every= must be at least 1 second"),
        ({"every": 60, "timezone": "Mars/Olympus"}, "unknown timezone 'Mars/Olympus'"),
        ({"every": 60, "catch_up": "some"}, "catch_up must be one of skip, last, all"),
        ({"every": 60, "queue": ""}, "queue name"),
    ],
)
def test_a_bad_schedule_is_refused_with_what_to_do(
    runtime: durable.Runtime, options: dict[str, object], message: str
) -> None:
    with pytest.raises(durable.ConfigurationError, match=message):
        runtime.store.add_schedule("bad", report, **options)  # type: ignore[arg-type]
    with pytest.raises(durable.ConfigurationError, match=message):
        durable.schedule(report, name="bad", **options)  # type: ignore[arg-type]
    assert runtime.store.schedules() == []


def test_adding_twice_needs_replace_which_keeps_the_state(runtime: durable.Runtime) -> None:
    store = runtime.store
    store.add_schedule("twice", report, every=60)
    store.pause_schedule("twice")
    with pytest.raises(durable.ConfigurationError, match="exists already; pass replace=True"):
        store.add_schedule("twice", report, every=120)
    replaced = store.add_schedule("twice", "schedules.poll", cron="0 0 * * *", replace=True)
    assert (replaced.workflow, replaced.cron, replaced.every, replaced.paused) == (
        "schedules.poll",
        "0 0 * * *",
        None,
        True,
    )
    with pytest.raises(durable.ConfigurationError, match="aware datetime"):
        store.backfill_schedule("twice", dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2))
    with pytest.raises(durable.ConfigurationError, match="more than 10000 ticks"):
        store.backfill_schedule("twice", START - dt.timedelta(days=100 * 365), START)
    tomorrow = dt.datetime.now(UTC) + dt.timedelta(days=1)
    with pytest.raises(durable.ConfigurationError, match="is in the future"):
        store.backfill_schedule("twice", START, tomorrow)


def test_worker_processes_fire_each_tick_once_when_one_is_killed(
    db_url: str, tmp_path: Path
) -> None:
    """Three workers declare one schedule (a tick a second); one is SIGKILLed midway."""
    log = tmp_path / "effects.log"
    env = {"QUEUE_APP_SCHEDULE": "1"}
    procs = [_worker(db_url, log, tmp_path / f"w{i}.err", **env) for i in range(3)]
    try:
        wait_for(lambda: len(read_lines(log)) >= 2, "two ticks run", timeout=60)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].communicate(timeout=30)
        started = len(read_lines(log))
        wait_for(lambda: len(read_lines(log)) >= started + 3, "three more ticks", timeout=60)
        for proc in procs[1:]:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)
            assert proc.returncode == 0, _stderr(tmp_path)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=30)
    with durable.Runtime(db_url) as runtime:
        runtime.store.pause_schedule("ticker")
        _queue_app()  # the code, to finish what the killed worker held
        durable.Worker(runtime=runtime).run_sync(until_idle=True, handle_signals=False)
        ticks = runtime.store.list_workflows(name="queue_app.ticker", limit=None)
    assert {w.status.value for w in ticks} == {"success"}
    times = sorted(dt.datetime.strptime(w.workflow_id, "ticker@%Y-%m-%dT%H:%M:%SZ") for w in ticks)
    # One workflow per second from the first tick to the last: none missing, none twice.
    assert times == [times[0] + dt.timedelta(seconds=s) for s in range(len(times))]
    ran = collections.Counter(line.split()[0] for line in read_lines(log))
    killed = procs[0].pid
    twice = {w for w, n in ran.items() if n > 1}
    # A step runs twice only if the killed worker ran it and died before recording it.
    assert all(
        {int(line.split()[2]) for line in read_lines(log) if line.split()[0] == w} & {killed}
        for w in twice
    ), ran


def test_a_daily_tick_in_the_hour_daylight_saving_repeats_fires_once_a_day(
    runtime: durable.Runtime, durable_clock: VirtualClock
) -> None:
    """New York repeats 01:00-02:00 on 2026-11-01: 01:30 comes twice that night."""
    durable_clock.advance(dt.datetime(2026, 10, 30, tzinfo=UTC).timestamp() - durable_clock.time())
    runtime.store.add_schedule("ny", poll, cron="30 1 * * *", timezone="America/New_York")
    work(runtime, dt.timedelta(days=4))  # returns: the clock never stalls on a past tick
    ticks = [at for _, at, _ in RUNS]
    assert [t.date().isoformat() for t in ticks] == [
        "2026-10-30",
        "2026-10-31",
        "2026-11-01",
        "2026-11-02",
    ]  # once a day
    assert ticks == sorted(ticks)
    assert all((t.hour, t.minute) == (1, 30) for t in ticks)


def test_a_broken_schedule_is_logged_and_the_rest_of_the_work_goes_on(
    durable_sqlite: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = VirtualClock()
    with durable.Runtime(durable_sqlite, clock=clock) as plain:
        plain.store.add_schedule("unsigned", report, every=60, args=["x"])
    # Reopened with a signing key: the schedule's arguments, unsigned, are refused.
    with durable.Runtime(durable_sqlite, clock=clock, secret_key=b"k" * 32) as runtime:
        runtime.store.add_schedule("signed", report, every=60, args=["y"])
        handle = job_of(runtime)
        report_ = durable.Worker(runtime=runtime).run_sync(
            until=dt.timedelta(minutes=2), handle_signals=False
        )
        assert handle.workflow_id in report_.completed
        assert {args for _, _, args in RUNS} == {("y",), ("z",)}  # the signed one, the job
        assert "schedule 'unsigned' cannot fire" in caplog.text
        assert caplog.text.count("schedule 'unsigned' cannot fire") == 1  # once per error


def job_of(runtime: durable.Runtime) -> durable.WorkflowHandle[str]:
    return report.options(workflow_id="plain-job").enqueue_sync(START, "z")


def test_a_redefined_timing_fires_no_past_ticks_of_the_new_one(
    runtime: durable.Runtime, durable_clock: VirtualClock
) -> None:
    runtime.store.add_schedule("redo", report, cron="0 0 * * *", catch_up="all")
    durable_clock.advance(dt.timedelta(hours=10, minutes=30))
    runtime.store.add_schedule("redo", report, every=3600, catch_up="all", replace=True)
    work(runtime, dt.timedelta(0))
    assert RUNS == []  # not 01:00 to 10:00, which were never due
    work(runtime, dt.timedelta(hours=1))
    assert [at for _, at, _ in RUNS] == [START + dt.timedelta(hours=11)]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"every": 60, "args": [1, 2, 3]}, "cannot take the tick's time followed by"),
        ({"cron": "0 */5 * * * *"}, "5 fields"),
        ({"cron": "*/5 " + " " * 300 + "* * * *"}, "at most 256 characters"),
    ],
)
def test_a_schedule_the_workflow_cannot_take_is_refused_when_declared(
    runtime: durable.Runtime, options: dict[str, object], message: str
) -> None:
    with pytest.raises(durable.ConfigurationError, match=message):
        durable.schedule(report, name="mismatch", **options)  # type: ignore[arg-type]
    with pytest.raises(durable.ConfigurationError, match=message):
        runtime.store.add_schedule("mismatch", report, **options)  # type: ignore[arg-type]
