"""Step retries: how often, on which errors, and every attempt recorded."""

from __future__ import annotations

import pytest

import durable

pytestmark = pytest.mark.usefixtures("runtime")


async def test_retried_step_records_each_failed_attempt(runtime: durable.Runtime) -> None:
    attempts: list[int] = []

    @durable.step(retries=3, backoff=0.001, retry_on=(TimeoutError,))
    async def flaky() -> str:
        attempts.append(len(attempts) + 1)
        if len(attempts) < 3:
            raise TimeoutError(f"slow server (attempt {len(attempts)})")
        return "ok"

    @durable.durable_workflow(name="retry.ok")
    async def wf() -> str:
        return await flaky()

    assert await wf() == "ok"
    assert await wf() == "ok"
    assert attempts == [1, 2, 3]
    [step] = runtime.list_steps(wf.id_for())
    assert step.tries == 3
    assert step.failed_attempts == (
        "TimeoutError: slow server (attempt 1)",
        "TimeoutError: slow server (attempt 2)",
    )


async def test_errors_not_in_retry_on_fail_at_once(runtime: durable.Runtime) -> None:
    attempts: list[str] = []

    @durable.step(retries=5, backoff=0, retry_on=TimeoutError)
    async def broken() -> None:
        attempts.append("x")
        raise ValueError("bad input")

    @durable.durable_workflow(name="retry.no")
    async def wf() -> None:
        await broken()

    with pytest.raises(ValueError, match="bad input"):
        await wf()
    assert attempts == ["x"]
    [step] = runtime.list_steps(wf.id_for())
    assert step.status is durable.StepStatus.ERROR
    assert step.tries == 1


def test_exhausted_retries_raise_the_last_error(runtime: durable.Runtime) -> None:
    attempts: list[int] = []

    @durable.step(retries=2, backoff=0)
    def always() -> None:
        attempts.append(1)
        raise ConnectionError(f"refused #{len(attempts)}")

    @durable.durable_workflow(name="retry.exhausted")
    def wf() -> None:
        always()

    with pytest.raises(ConnectionError, match="refused #3"):
        wf()
    [step] = runtime.list_steps(wf.id_for())
    assert (step.tries, len(step.failed_attempts)) == (3, 2)


async def test_base_exceptions_are_never_retried(runtime: durable.Runtime) -> None:
    attempts: list[int] = []

    @durable.step(retries=3, backoff=0)
    async def interrupted() -> None:
        attempts.append(1)
        raise KeyboardInterrupt

    @durable.durable_workflow(name="retry.interrupt")
    async def wf() -> None:
        await interrupted()

    with pytest.raises(KeyboardInterrupt):
        await wf()
    assert attempts == [1]
    assert runtime.list_steps(wf.id_for()) == []  # a crash records nothing


def test_retries_on_a_real_clock_wait_a_little_less_at_random() -> None:
    """Jitter: workers that failed together do not retry in lockstep."""
    policy = durable.RetryPolicy(retries=3, backoff=2.0)
    assert policy.jittered(2, draw=lambda: 0.0) == policy.delay(2) == 4.0
    assert policy.jittered(2, draw=lambda: 1.0) == 3.0  # a quarter less at most
    waits = {policy.jittered(1) for _ in range(50)}
    assert len(waits) > 1
    assert all(1.5 <= w <= 2.0 for w in waits)
