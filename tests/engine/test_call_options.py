"""``wf.options(...)``: call options apart from the workflow's own arguments."""

from __future__ import annotations

import datetime as dt

import pytest

import durable
from durable.testing import VirtualClock


@durable.durable_workflow(name="options.timed")
async def timed(url: str, *, timeout: int = 3) -> str:
    """A workflow with a parameter of its own named ``timeout``."""
    await durable.sleep(dt.timedelta(days=2))
    return f"{url} {timeout}"


@durable.durable_workflow(name="options.sync")
def sync_flow(n: int, workflow_id: str = "mine") -> str:
    return f"{n} {workflow_id}"


class Service:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @durable.durable_workflow(name="options.method")
    async def greet(self, name: str) -> str:
        return f"{self.prefix} {name}"


async def test_options_go_to_durable_and_the_arguments_to_the_workflow(
    runtime: durable.Runtime,
) -> None:
    runtime.clock = VirtualClock()
    # The workflow's own `timeout` parameter is its own: durable's is in options().
    assert (
        await timed.options(workflow_id="t1", timeout=dt.timedelta(days=3)).run("u", timeout=9)
        == "u 9"
    )
    info = runtime.get_workflow("t1")
    assert info is not None
    assert info.timeout == 3 * 86400
    with pytest.raises(durable.WorkflowTimeoutError):
        await timed.options(workflow_id="t2", timeout=86400).run("u", timeout=1)
    assert sync_flow.options(workflow_id="s1").run(2, workflow_id="theirs") == "2 theirs"
    assert sync_flow.options(workflow_id="s2").run_sync(3) == "3 mine"
    assert runtime.get_workflow("s2") is not None


async def test_enqueue_with_options(runtime: durable.Runtime) -> None:
    handle = await timed.options(workflow_id="e1", queue="slow", priority=5, timeout=60).enqueue(
        "u", timeout=2
    )
    info = handle.info()
    assert (info.queue, info.priority, info.timeout) == ("slow", 5, 60)
    synced = sync_flow.options(queue="fast").enqueue(7)
    assert synced.info().queue == "fast"
    assert sync_flow.options().enqueue_sync(8).status() is durable.WorkflowStatus.ENQUEUED


async def test_bound_methods_take_options_too(runtime: durable.Runtime) -> None:
    service = Service("hello")
    assert await service.greet("ana") == "hello ana"
    assert await service.greet.options(workflow_id="g1").run("bo") == "hello bo"
    assert runtime.get_workflow("g1") is not None


def test_bad_options_are_refused_before_anything_runs(runtime: durable.Runtime) -> None:
    with pytest.raises(durable.ConfigurationError, match="timeout"):
        sync_flow.options(timeout=-1)
    with pytest.raises(durable.ConfigurationError, match="queue"):
        sync_flow.options(queue="")
    with pytest.raises(durable.InvalidWorkflowIdError):
        sync_flow.options(workflow_id="")
    assert runtime.store.list_workflows() == []
