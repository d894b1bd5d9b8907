"""Copy me: pytest tests that prove a pipeline survives crashes.

Run with ``pytest examples/test_pipeline.py``. The fixtures come from
durable's pytest plugin, loaded automatically once durable-sdk is installed.
"""

from __future__ import annotations

import pytest

import durable
from durable.testing import SimulatedCrash

EMAILS: list[str] = []  # stands for an outside system the pipeline talks to


@durable.step
async def extract(day: str) -> list[float]:
    return [12.5, 14.0, 9.5, 11.0]


@durable.step(retries=3, backoff=5)
async def transform(readings: list[float]) -> float:
    return sum(r for r in readings if r > 10) / 3


@durable.step
async def notify(mean: float) -> str:
    EMAILS.append(f"mean {mean:.1f}")
    return f"notified: {mean:.1f}"


@durable.durable_workflow
async def daily_report(day: str) -> str:
    readings = await extract(day)
    mean = await transform(readings)
    return await notify(mean)


def reset() -> None:
    EMAILS.clear()


def test_report_survives_a_crash_at_every_point(durable_sweep) -> None:
    durable_sweep(daily_report, "2026-11-22", setup=reset)


@pytest.mark.asyncio
async def test_email_is_not_sent_twice_once_recorded(durable_runtime, durable_crash) -> None:
    reset()
    durable_crash.arm("after_commit", step="notify")
    with pytest.raises(SimulatedCrash):
        await daily_report("2026-11-22")
    assert await daily_report("2026-11-22") == "notified: 12.5"
    assert EMAILS == ["mean 12.5"]


@pytest.mark.asyncio
async def test_a_crash_before_the_record_sends_again(durable_runtime, durable_crash) -> None:
    # The honest edge of at-least-once: crash after the email went out but
    # before its record committed, and the resumed run sends it again. Make
    # such steps idempotent (an idempotency key: durable.current_workflow_id()).
    reset()
    durable_crash.arm("after_step", step="notify")
    with pytest.raises(SimulatedCrash):
        await daily_report("2026-11-22")
    await daily_report("2026-11-22")
    assert EMAILS == ["mean 12.5", "mean 12.5"]
