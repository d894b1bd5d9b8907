"""Durations, deadlines and timestamps: one check for every API that takes one.

A duration is finite, not negative, at most 100 years, a number (not a bool)
or a timedelta; a deadline is finite, aware, and no later than the year 9999.
A bad one is a ConfigurationError (also a ValueError) naming the parameter
and the value, raised before anything is recorded, on every backend.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import math
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import durable
from durable._durations import LATEST, MAX_SECONDS, parse_timestamp
from durable.testing import VirtualClock

NAN, INF = math.nan, math.inf


def short(value: object) -> str:
    """A test id: the value's repr, cut short (10**400 has 401 digits)."""
    return repr(value)[:24]


UTC = dt.timezone.utc

# Bad durations: each is refused by every API that takes a duration.
BAD_DURATIONS: list[object] = [
    NAN,
    INF,
    -INF,
    -1,
    -0.001,
    1e20,
    MAX_SECONDS + 1,
    10**400,
    dt.timedelta.max,
    dt.timedelta(seconds=-1),
    True,
    "5",
]


def within(seconds: float, fn: Callable[[], Any]) -> Any:
    """``fn()``, or a failed test if it has not returned within ``seconds`` (a hang)."""
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(("value", fn()))
        except BaseException as exc:  # handed to the test thread, re-raised there
            outcome.append(("error", exc))

    # The thread runs in a copy of this context: under the test's active runtime.
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(target,), daemon=True)
    thread.start()
    thread.join(seconds)
    if not outcome:
        pytest.fail(f"{fn!r} did not return within {seconds} s: it hangs")
    kind, value = outcome[0]
    if kind == "error":
        raise value
    return value


def refused(fn: Callable[[], Any], parameter: str, value: object) -> durable.ConfigurationError:
    """The ConfigurationError ``fn()`` raises, checked to name ``parameter`` and ``value``."""
    with pytest.raises(durable.ConfigurationError) as info:
        within(30, fn)
    error = info.value
    assert isinstance(error, ValueError)
    assert error.parameter == parameter  # type: ignore[attr-defined]
    assert parameter in str(error)
    shown = repr(value) if not isinstance(value, int) or abs(value) < 10**20 else "1000000"
    assert shown in str(error), str(error)
    return error


# Workflows ------------------------------------------------------------------------------


@durable.durable_workflow(name="durations.sleeper")
async def sleeper(value: Any, suspend: bool = False) -> str:
    await durable.sleep(value, suspend=suspend)
    return "woke"


@durable.durable_workflow(name="durations.sleeper_until")
async def sleeper_until(value: Any) -> str:
    await durable.sleep_until(value)
    return "woke"


@durable.durable_workflow(name="durations.waiter")
async def waiter(value: Any) -> str:
    try:
        return str(await durable.wait_for_event("go", timeout=value))
    except durable.EventTimeoutError:
        return "timed out"


@durable.durable_workflow(name="durations.sync_sleeper")
def sync_sleeper(value: Any) -> str:
    durable.sleep(value)
    return "woke"


def assert_nothing_recorded(runtime: durable.Runtime, workflow_id: str) -> None:
    info = runtime.store.get_workflow(workflow_id)
    assert info is not None
    assert info.status.value == "error", info
    assert [e for e in runtime.store.history(workflow_id) if e.kind == "sleep"] == []


@pytest.mark.parametrize("value", BAD_DURATIONS, ids=short)
def test_sleep_refuses_a_bad_duration_before_recording_it(
    runtime: durable.Runtime, value: object
) -> None:
    refused(lambda: sleeper.run_sync(value, workflow_id="s"), "duration", value)
    assert_nothing_recorded(runtime, "s")
    refused(lambda: sleeper.run_sync(value, True, workflow_id="t"), "duration", value)
    assert_nothing_recorded(runtime, "t")
    refused(lambda: sync_sleeper.run_sync(value, workflow_id="u"), "duration", value)
    assert_nothing_recorded(runtime, "u")
    # Called again: the same clear error, never a hang or a raw one.
    refused(lambda: sleeper.run_sync(value, workflow_id="s"), "duration", value)


@pytest.mark.parametrize("value", BAD_DURATIONS, ids=short)
def test_sleep_outside_a_workflow_refuses_a_bad_duration(
    runtime: durable.Runtime, value: object
) -> None:
    refused(lambda: asyncio.run(durable.sleep(value)), "duration", value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", BAD_DURATIONS, ids=short)
def test_an_event_wait_refuses_a_bad_timeout_before_recording_it(
    runtime: durable.Runtime, value: object
) -> None:
    refused(lambda: waiter.run_sync(value, workflow_id="w"), "timeout", value)
    assert_nothing_recorded(runtime, "w")


BAD_MOMENTS: list[object] = [
    NAN,
    INF,
    -INF,
    1e20,
    LATEST + 1,
    10**400,
    dt.datetime(2030, 1, 1),  # naive: which time zone?
    True,
    "soon",
]


@pytest.mark.parametrize("value", BAD_MOMENTS, ids=short)
def test_sleep_until_refuses_a_bad_moment(runtime: durable.Runtime, value: object) -> None:
    refused(lambda: sleeper_until.run_sync(value, workflow_id="m"), "moment", value)
    assert_nothing_recorded(runtime, "m")


def test_sleep_until_refuses_a_moment_more_than_100_years_ahead(runtime: durable.Runtime) -> None:
    far = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=365.25 * 101)
    refused(lambda: sleeper_until.run_sync(far, workflow_id="far"), "moment", far.timestamp())
    assert_nothing_recorded(runtime, "far")


def test_good_durations_and_moments_still_work(runtime: durable.Runtime) -> None:
    runtime.clock = VirtualClock()
    assert sleeper.run_sync(0, workflow_id="zero") == "woke"
    assert sleeper.run_sync(dt.timedelta(days=365 * 99), workflow_id="long") == "woke"
    past = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    assert sleeper_until.run_sync(past, workflow_id="past") == "woke"
    assert sleeper_until.run_sync(-1e9, workflow_id="before-1970") == "woke"
    assert waiter.run_sync(dt.timedelta(seconds=5), workflow_id="wait") == "timed out"


def test_recover_does_not_hang_after_a_refused_sleep(runtime: durable.Runtime) -> None:
    refused(lambda: sleeper.run_sync(INF, workflow_id="inf"), "duration", INF)
    refused(lambda: waiter.run_sync(NAN, workflow_id="nan"), "timeout", NAN)
    report = within(30, runtime.recover_sync)
    assert report.resumed == []


@pytest.mark.parametrize("value", BAD_DURATIONS, ids=short)
def test_result_refuses_a_bad_timeout_or_poll_interval(
    runtime: durable.Runtime, value: object
) -> None:
    handle = sleeper.enqueue_sync(0, workflow_id="queued")
    refused(lambda: handle.result_sync(timeout=value), "timeout", value)
    refused(lambda: handle.result_sync(poll_interval=value), "poll_interval", value)
    refused(lambda: asyncio.run(handle.result(timeout=value)), "timeout", value)


@pytest.mark.parametrize("value", BAD_DURATIONS, ids=short)
def test_the_store_refuses_a_bad_cleanup_age(runtime: durable.Runtime, value: object) -> None:
    refused(lambda: runtime.store.cleanup(older_than=value), "older_than", value)


@pytest.mark.parametrize("value", BAD_MOMENTS, ids=short)
def test_the_store_refuses_a_bad_since_or_until(runtime: durable.Runtime, value: object) -> None:
    refused(lambda: runtime.store.list_workflows(since=value), "since", value)
    refused(lambda: runtime.store.list_workflows(until=value), "until", value)


def test_the_store_reads_iso_text_like_the_cli(runtime: durable.Runtime) -> None:
    runtime.clock = VirtualClock()
    sleeper.run_sync(0, workflow_id="listed")
    assert [w.workflow_id for w in runtime.store.list_workflows(since="2000-01-01T00:00:00Z")] == [
        "listed"
    ]
    assert runtime.store.list_workflows(until="2000-01-01") == []


# Options ---------------------------------------------------------------------------------


STEP_OPTIONS = ["backoff", "max_backoff"]


@pytest.mark.parametrize("value", BAD_DURATIONS, ids=short)
@pytest.mark.parametrize("option", STEP_OPTIONS)
def test_step_retry_waits_are_checked(option: str, value: object) -> None:
    refused(lambda: durable.step(retries=2, **{option: value}), option, value)
    refused(lambda: durable.RetryPolicy(retries=2, **{option: value}), option, value)


@pytest.mark.parametrize("value", [NAN, INF, -1, True, "2"], ids=short)
def test_the_backoff_multiplier_is_a_finite_number(value: object) -> None:
    refused(lambda: durable.step(backoff_multiplier=value), "backoff_multiplier", value)


def test_a_growing_backoff_stops_at_its_cap_instead_of_overflowing() -> None:
    policy = durable.RetryPolicy(retries=10_000, backoff=1, backoff_multiplier=1e10)
    assert policy.delay(1) == 1
    assert policy.delay(5_000) == 300
    assert durable.RetryPolicy(backoff=0, backoff_multiplier=1e300).delay(9_999) == 0
    assert durable.RetryPolicy(backoff=dt.timedelta(minutes=1)).backoff == 60.0


RUNTIME_OPTIONS = ["lease_seconds", "poll_interval", "event_poll_interval"]


@pytest.mark.parametrize("value", [*BAD_DURATIONS, 0, dt.timedelta(0)], ids=short)
@pytest.mark.parametrize("option", RUNTIME_OPTIONS)
def test_runtime_intervals_are_checked(option: str, value: object, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'never.db'}"
    refused(lambda: durable.Runtime(url, **{option: value}), option, value)
    assert not (tmp_path / "never.db").exists()  # refused before anything was opened


WORKER_OPTIONS = {"poll_interval": True, "recovery_interval": True, "shutdown_grace": False}


@pytest.mark.parametrize("value", [*BAD_DURATIONS, 0], ids=short)
@pytest.mark.parametrize("option", WORKER_OPTIONS)
def test_worker_options_are_checked(option: str, value: object, runtime: durable.Runtime) -> None:
    if value == 0 and not WORKER_OPTIONS[option]:
        assert durable.Worker(runtime=runtime, shutdown_grace=0).shutdown_grace == 0
        return
    refused(lambda: durable.Worker(runtime=runtime, **{option: value}), option, value)


@pytest.mark.parametrize("value", BAD_DURATIONS, ids=short)
def test_a_virtual_clock_moves_by_a_duration(value: object) -> None:
    refused(lambda: VirtualClock().advance(value), "seconds", value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["worker", "--until-idle", "--grace", "nan"], "--grace"),
        (["worker", "--until-idle", "--grace", "inf"], "--grace"),
        (["cleanup", "--older-than", "99999999999999999999d"], "--older-than"),
        (["list", "--since", "99999999999999999999d"], "--since"),
        (["list", "--since", "2025-13-01"], "--since"),
    ],
)
def test_cli_flags_that_take_time_are_checked(args: list[str], option: str, tmp_path: Path) -> None:
    env = {**os.environ, "DURABLE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    done = subprocess.run(
        [sys.executable, "-m", "durable", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    assert f"Invalid value for '{option}'" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


# A deadline recorded by an older version ---------------------------------------------------


# Timestamps (item 19: every supported Python reads the same texts) ------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-06-01T09:30:00Z", dt.datetime(2025, 6, 1, 9, 30, tzinfo=dt.timezone.utc)),
        ("2025-06-01t09:30:00z", dt.datetime(2025, 6, 1, 9, 30, tzinfo=dt.timezone.utc)),
        ("2025-06-01T09:30Z", dt.datetime(2025, 6, 1, 9, 30, tzinfo=dt.timezone.utc)),
        ("2025-06-01 09:30:00.5Z", dt.datetime(2025, 6, 1, 9, 30, 0, 500000, dt.timezone.utc)),
        (
            "2025-06-01T09:30:00.123456789Z",
            dt.datetime(2025, 6, 1, 9, 30, 0, 123456, dt.timezone.utc),
        ),
        ("2025-06-01T11:30+02:00", dt.datetime(2025, 6, 1, 9, 30, tzinfo=dt.timezone.utc)),
        ("2025-06-01T11:30+0200", dt.datetime(2025, 6, 1, 9, 30, tzinfo=dt.timezone.utc)),
        ("2025-06-01T11:30+02", dt.datetime(2025, 6, 1, 9, 30, tzinfo=dt.timezone.utc)),
        ("2025-06-01T05:00-04:30", dt.datetime(2025, 6, 1, 9, 30, tzinfo=dt.timezone.utc)),
        ("  2025-06-01T09:30:00Z  ", dt.datetime(2025, 6, 1, 9, 30, tzinfo=dt.timezone.utc)),
    ],
)
def test_timestamps_with_an_offset(text: str, expected: dt.datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.utcoffset() is not None


@pytest.mark.parametrize(
    ("text", "naive"),
    [
        ("2025-06-01", dt.datetime(2025, 6, 1)),
        ("2025-06-01T09:30", dt.datetime(2025, 6, 1, 9, 30)),
        ("2025-06-01 09:30:15", dt.datetime(2025, 6, 1, 9, 30, 15)),
    ],
)
def test_timestamps_without_an_offset_are_local_time(text: str, naive: dt.datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed.tzinfo is not None
    assert parsed == naive.astimezone()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "is not a timestamp"),
        ("yesterday", "is not a timestamp"),
        ("2025-06-01T", "is not a timestamp"),
        ("2025-06-01Z", "is not a timestamp"),
        ("2025-06-01T09:30:00ZZ", "is not a timestamp"),
        ("20250601", "is not a timestamp"),
        ("2025-13-01", "does not exist"),
        ("2025-02-30T10:00Z", "does not exist"),
        ("2025-06-01T24:00Z", "does not exist"),
        ("2025-06-01T10:00+24:00", "offset that does not exist"),
        ("2025-06-01T10:00+02:60", "offset that does not exist"),
    ],
)
def test_a_bad_timestamp_says_what_to_write(text: str, says: str) -> None:
    with pytest.raises(durable.ConfigurationError, match=says) as info:
        parse_timestamp(text, "--since")
    assert isinstance(info.value, ValueError)
    assert f"--since={text!r}" in str(info.value)
