"""Store.cancel(): a running workflow stops before its next step, child, sleep or wait.

From another thread (every backend) and from another process (SQLite file and
PostgreSQL), in sync and async workflows: the next body never starts.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import subprocess
import sys
import threading
from typing import Any

import pytest

import durable
from tests.conftest import wait_for

RAN: list[str] = []


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


# A cancel between two steps: the next step's body (or child workflow, sleep,
# wait) never starts, in sync and async workflows alike.

NEXT_ACTIONS = ["step", "child", "sleep", "event"]


@durable.step(name="store.step_one")
def step_one() -> int:
    RAN.append("step_one")
    return 1


@durable.step(name="store.step_two")
def step_two() -> int:
    RAN.append("step_two")
    return 2


@durable.step(name="store.async_step_two")
async def async_step_two() -> int:
    RAN.append("step_two")
    return 2


@durable.durable_workflow(name="store.child")
def child() -> int:
    RAN.append("child")
    return step_two()


@durable.durable_workflow(name="store.async_child")
async def async_child() -> int:
    RAN.append("child")
    return await async_step_two()


def _between_steps(is_async: bool, next_action: str, between: threading.Event) -> Any:
    """A workflow that runs step_one, waits for ``between``, then does ``next_action``."""
    if is_async:

        @durable.durable_workflow(name=f"store.cancel_between_async_{next_action}")
        async def async_wf() -> Any:
            step_one()  # a sync step is a plain call in an async workflow too
            await asyncio.to_thread(between.wait, 60)
            if next_action == "step":
                return await async_step_two()
            if next_action == "child":
                return await async_child()
            if next_action == "sleep":
                return await durable.sleep(0.01)
            return await durable.wait_for_event("go", timeout=0.01)

        return lambda wid: asyncio.run(async_wf.run(workflow_id=wid))

    @durable.durable_workflow(name=f"store.cancel_between_sync_{next_action}")
    def sync_wf() -> Any:
        step_one()
        between.wait(60)
        if next_action == "step":
            return step_two()
        if next_action == "child":
            return child()
        if next_action == "sleep":
            return durable.sleep(0.01)
        return durable.wait_for_event_sync("go", timeout=0.01)

    return lambda wid: sync_wf.run(workflow_id=wid)


def _run_in_thread(call: Any, wid: str) -> tuple[threading.Thread, list[BaseException]]:
    raised: list[BaseException] = []

    def target() -> None:
        try:
            call(wid)
        except BaseException as exc:  # handed to the test
            raised.append(exc)

    context = contextvars.copy_context()  # the test's active runtime
    thread = threading.Thread(target=context.run, args=(target,))
    thread.start()
    return thread, raised


@pytest.mark.parametrize("next_action", NEXT_ACTIONS)
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_cancel_from_another_thread_stops_before_the_next_body_starts(
    runtime: durable.Runtime, is_async: bool, next_action: str
) -> None:
    between = threading.Event()
    call = _between_steps(is_async, next_action, between)
    thread, raised = _run_in_thread(call, "between")
    wait_for(lambda: [s.name for s in runtime.list_steps("between")], "step_one's record")
    assert runtime.store.cancel("between") is True  # from another thread
    between.set()
    thread.join(60)
    assert len(raised) == 1 and isinstance(raised[0], durable.WorkflowCancelledError), raised  # noqa: PT018
    assert RAN == ["step_one"]  # neither step_two's body nor the child's ran
    assert [s.name for s in runtime.list_steps("between")] == ["store.step_one"]
    assert runtime.store.get_workflow("between/2") is None  # no child was started


def test_a_cancel_from_another_process_stops_before_the_next_step(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="durable")
    between = threading.Event()
    # The default lease: the heartbeat (every 10 s) is not what sees the
    # cancel. PostgreSQL relays its NOTIFY; on SQLite a thread watching the
    # file's data version wakes the workflow once another process committed.
    with durable.Runtime(db_url):
        call = _between_steps(False, "step", between)
        thread, raised = _run_in_thread(call, "other-process")
        store = durable.Store.open(db_url)
        wait_for(lambda: list(store.history("other-process")), "step_one's record")
        # Any wake-up from now on came after step_one's check: the workflow
        # will read its row (after the cancel committed) before step_two.
        after = len(caplog.records)
        cancelled = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys, durable; print(durable.Store.open(sys.argv[1]).cancel(sys.argv[2]))",
                db_url,
                "other-process",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert cancelled.stdout.strip() == "True", cancelled.stderr
        relayed = ("another connection wrote", "notified of 'event:other-process'")
        wait_for(
            lambda: any(
                any(text in r.getMessage() for text in relayed) for r in caplog.records[after:]
            ),
            "a wake-up from the other process's commit",
        )
        between.set()
        thread.join(60)
        store.close()
    assert len(raised) == 1 and isinstance(raised[0], durable.WorkflowCancelledError), raised  # noqa: PT018
    assert RAN == ["step_one"]
