"""Cancelling a tree of workflows, resuming it from its records, and both by filter."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import durable
from durable.testing import crash_sweep

RAN: list[str] = []


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


@durable.step
async def work(tag: str) -> str:
    RAN.append(tag)
    return tag


@durable.durable_workflow(name="tree.leaf")
async def leaf(tag: str) -> str:
    await work(f"{tag} before")
    approved = await durable.wait_for_event("go")
    await work(f"{tag} after {approved}")
    return tag


@durable.durable_workflow(name="tree.root")
async def root() -> list[str]:
    await work("root")
    return list(await asyncio.gather(leaf("a"), leaf("b")))


async def _until(
    runtime: durable.Runtime, workflow_id: str, status: durable.WorkflowStatus
) -> None:
    for _ in range(2000):
        info = runtime.get_workflow(workflow_id)
        if info is not None and info.status is status:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{workflow_id} never became {status.value}")


def _statuses(runtime: durable.Runtime) -> dict[str, str]:
    return {i.workflow_id: i.status.value for i in runtime.store.list_workflows()}


async def test_a_cancel_stops_the_whole_tree_and_a_resume_goes_on_from_the_records(
    runtime: durable.Runtime,
) -> None:
    task = asyncio.create_task(root.run(workflow_id="r"))
    await _until(runtime, "r/2", durable.WorkflowStatus.WAITING)
    await _until(runtime, "r/3", durable.WorkflowStatus.WAITING)
    assert runtime.store.cancel("r")
    with pytest.raises(durable.WorkflowCancelledError):
        await task
    assert _statuses(runtime) == dict.fromkeys(("r", "r/2", "r/3"), "cancelled")
    # Events sent now are kept; nothing of the tree starts a step meanwhile.
    await durable.send_event("r/2", "go", "yes")
    await durable.send_event("r/3", "go", "sure")
    await asyncio.sleep(0.1)
    assert sorted(RAN) == ["a before", "b before", "root"]

    assert runtime.store.resume("r")
    assert _statuses(runtime) == dict.fromkeys(("r", "r/2", "r/3"), "running")
    assert not runtime.store.resume("r")  # not cancelled any more: nothing to reopen
    assert await root.run(workflow_id="r") == ["a", "b"]
    # The steps recorded before the cancel were replayed, not run again.
    assert sorted(RAN) == ["a after yes", "a before", "b after sure", "b before", "root"]


def test_a_cancelled_workflow_is_resumed_and_run_by_the_runtime(runtime: durable.Runtime) -> None:
    @durable.durable_workflow(name="tree.sync")
    def sync_flow() -> str:
        RAN.append("one")
        durable.sleep(3600, suspend=True)  # type: ignore[unused-awaitable]
        return "done"

    clock = runtime.clock = durable.testing.VirtualClock(auto_advance=False)
    with pytest.raises(durable.WorkflowSuspendedError):
        sync_flow.run_sync(workflow_id="s")
    assert runtime.store.cancel("s")
    with pytest.raises(durable.WorkflowCancelledError, match=r"store\.resume"):
        sync_flow.run_sync(workflow_id="s")
    clock.advance(3600)  # the timer it recorded is due now
    assert runtime.resume_sync("s") == "done"
    assert RAN == ["one", "one"]  # the body before the sleep ran again; its timer was replayed


async def test_a_timed_out_tree_resumes_with_its_timeout_afresh(runtime: durable.Runtime) -> None:
    clock = runtime.clock = durable.testing.VirtualClock()

    @durable.durable_workflow(name="tree.timed", timeout=60)
    async def timed() -> str:
        await work("first")
        await durable.sleep(200)
        return "slept"

    with pytest.raises(durable.WorkflowTimeoutError):
        await timed.run(workflow_id="t")
    assert runtime.store.resume("t")
    info = runtime.get_workflow("t")
    assert info is not None
    assert (info.status, info.deadline, info.timeout) == (durable.WorkflowStatus.RUNNING, None, 60)
    with pytest.raises(durable.WorkflowTimeoutError):  # 60 s afresh, still short of 200
        await timed.run(workflow_id="t")
    assert clock.elapsed == 120
    assert RAN == ["first"]


async def test_cancel_and_resume_many_by_filter_with_a_dry_run(runtime: durable.Runtime) -> None:
    for n in range(3):
        await leaf.enqueue(f"q{n}", workflow_id=f"q{n}", queue="reports")
    await leaf.enqueue("other", workflow_id="other")
    store = runtime.store
    assert store.cancel_many(queue="reports", dry_run=True) == ["q0", "q1", "q2"]
    assert _statuses(runtime)["q0"] == "enqueued"
    assert store.cancel_many(queue="reports", name="tree.leaf") == ["q0", "q1", "q2"]
    assert _statuses(runtime) == {
        **dict.fromkeys(("q0", "q1", "q2"), "cancelled"),
        "other": "enqueued",
    }
    assert store.cancel_many(queue="reports") == []  # none active any more
    assert store.cancel_many(name="tree.leaf", older_than=3600) == []  # none that old
    assert store.resume_many(status="cancelled", dry_run=True) == ["q0", "q1", "q2"]
    assert await store.aresume_many(queue="reports") == ["q0", "q1", "q2"]
    assert _statuses(runtime)["q1"] == "running"  # reopened: a recovery runs it
    with pytest.raises(
        durable.ConfigurationError, match="cannot cancel workflows that are success"
    ):
        store.cancel_many(status="success")
    with pytest.raises(durable.ConfigurationError, match="cannot resume"):
        store.resume_many(status="running")


async def test_cleanup_deletes_by_name_and_queue(runtime: durable.Runtime) -> None:
    @durable.durable_workflow(name="tree.quick")
    async def quick(n: int) -> int:
        return n

    await quick.run(1, workflow_id="a")
    await quick.run(2, workflow_id="b")
    store = runtime.store
    assert store.cleanup(older_than=0, name="tree.other").workflows == 0
    assert store.cleanup(older_than=0, name="tree.quick", queue="nope").workflows == 0
    assert store.cleanup(older_than=0, name="tree.quick").workflows == 2
    assert store.list_workflows() == []


def test_crash_sweep_of_a_tree_of_workflows() -> None:
    @durable.durable_workflow(name="tree.small_child")
    async def small_child(tag: str) -> str:
        return await work(tag)

    @durable.durable_workflow(name="tree.small_root")
    async def small_root() -> list[Any]:
        return [await small_child("x"), await work("y"), await small_child("z")]

    crash_sweep(small_root, setup=RAN.clear).assert_ok()
