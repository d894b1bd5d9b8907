"""durable.Store: queries, history, snapshots with restore and fork, cancel, clean-up."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sqlite3
from pathlib import Path

import pytest

import durable
from durable.backends import SCHEMA_VERSION
from durable.testing import CrashInjector, SimulatedCrash

pytestmark = pytest.mark.usefixtures("runtime")

RAN: list[str] = []


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


@durable.step(name="price")
async def price(item: str) -> int:
    RAN.append(f"price {item}")
    return len(item) * 10


@durable.step(name="pay", retries=2, backoff=0)
async def pay(amount: int, fail_times: int) -> str:
    RAN.append(f"pay {amount}")
    if RAN.count(f"pay {amount}") <= fail_times:
        raise ConnectionError(f"gateway down ({RAN.count(f'pay {amount}')})")
    return f"paid {amount}"


@durable.durable_workflow(name="store.order")
async def order(item: str, fail_times: int = 0) -> str:
    amount = await price(item)
    await durable.snapshot("priced")
    receipt = await pay(amount, fail_times)
    await durable.snapshot("paid")
    return receipt


async def test_snapshots_are_listed_and_replay_as_no_ops(runtime: durable.Runtime) -> None:
    assert await order.run("book", workflow_id="o1") == "paid 40"
    assert await order.run("book", workflow_id="o1") == "paid 40"
    snaps = runtime.store.snapshots("o1")
    assert [(s.name, s.position, s.steps) for s in snaps] == [
        ("priced", 2, ("price",)),
        ("paid", 4, ("price", "pay")),
    ]
    assert all(s.created_at > 0 for s in snaps)


async def test_snapshot_names_are_unique_per_workflow(runtime: durable.Runtime) -> None:
    @durable.durable_workflow(name="store.twice")
    async def twice() -> None:
        await durable.snapshot("same")
        await durable.snapshot("same")

    with pytest.raises(durable.ConfigurationError, match="'same' is already used at position 1"):
        await twice()
    with pytest.raises(durable.NotInWorkflowError, match="outside a workflow"):
        await durable.snapshot("nowhere")


async def test_restore_reruns_from_the_snapshot_and_keeps_history(
    runtime: durable.Runtime,
) -> None:
    assert await order.run("pen", workflow_id="o2") == "paid 30"
    durable.restore("o2", "priced")
    info = runtime.get_workflow("o2")
    assert info is not None
    assert info.status is durable.WorkflowStatus.RUNNING
    RAN.clear()
    assert await order.run("pen", workflow_id="o2") == "paid 30"
    assert RAN == ["pay 30"]  # price replayed, pay re-executed
    history = runtime.store.history("o2")
    assert [(e.name, e.superseded) for e in history if e.name == "pay"] == [
        ("pay", True),
        ("pay", False),
    ]


async def test_fork_runs_on_from_the_snapshot_and_leaves_the_original(
    runtime: durable.Runtime,
) -> None:
    assert await order.run("cup", workflow_id="o3") == "paid 30"
    assert durable.fork("o3", "priced", new_workflow_id="o3-fork") == "o3-fork"
    RAN.clear()
    assert await order.run("cup", workflow_id="o3-fork") == "paid 30"
    assert RAN == ["pay 30"]
    forked = runtime.get_workflow("o3-fork")
    assert forked is not None
    assert forked.forked_from == "o3@priced"
    assert forked.status is durable.WorkflowStatus.SUCCESS
    original = runtime.get_workflow("o3")
    assert original is not None
    assert original.status is durable.WorkflowStatus.SUCCESS
    assert [e.superseded for e in runtime.store.history("o3")].count(True) == 0
    with pytest.raises(durable.WorkflowConflictError, match="exists already"):
        durable.fork("o3", "priced", new_workflow_id="o3-fork")


async def test_restore_and_fork_of_failed_and_crashed_workflows(runtime: durable.Runtime) -> None:
    with pytest.raises(ConnectionError):
        await order.run("mug", 5, workflow_id="failed")
    durable.restore("failed", "priced")
    assert await order.run("mug", 5, workflow_id="failed") == "paid 30"  # 3 more tries

    CrashInjector(runtime).arm("after_commit", step="pay")
    with pytest.raises(SimulatedCrash):
        await order.run("hat", workflow_id="crashed")
    runtime.store.fork("crashed", "priced", "crashed-fork")
    assert await order.run("hat", workflow_id="crashed-fork") == "paid 30"


async def test_restore_refuses_a_live_workflow_and_unknown_names(
    runtime: durable.Runtime,
) -> None:
    gate = asyncio.Event()

    @durable.step(name="wait_gate")
    async def wait_gate() -> None:
        await gate.wait()

    @durable.durable_workflow(name="store.live")
    async def live() -> None:
        await durable.snapshot("start")
        await wait_gate()

    task = asyncio.ensure_future(live.run(workflow_id="live"))
    await asyncio.sleep(0.05)
    with pytest.raises(durable.WorkflowAlreadyRunningError, match="while a live process runs it"):
        durable.restore("live", "start")
    gate.set()
    await task
    with pytest.raises(
        durable.WorkflowNotFoundError, match="has no snapshot 'nope'; its snapshots: 'start'"
    ):
        durable.restore("live", "nope")
    with pytest.raises(durable.WorkflowNotFoundError, match="no workflow 'ghost'"):
        durable.restore("ghost", "start")


async def test_history_shows_every_attempt(runtime: durable.Runtime) -> None:
    assert await order.run("map", 2, workflow_id="h") == "paid 30"
    history = runtime.store.history("h")
    assert [(e.position, e.name, e.kind, e.status, e.attempt) for e in history] == [
        (1, "price", "step", "success", 1),
        (2, "priced", "snapshot", "snapshot", 1),
        (3, "pay", "step", "retried", 1),
        (3, "pay", "step", "retried", 2),
        (3, "pay", "step", "success", 3),
        (4, "paid", "snapshot", "snapshot", 1),
    ]
    assert history[2].error == "ConnectionError: gateway down (1)"
    assert history[4].payload_bytes > 0
    assert all(e.duration >= 0 for e in history)
    assert await runtime.store.ahistory("h") == history


async def test_list_and_get_workflows(runtime: durable.Runtime) -> None:
    start = runtime.backend.run_sync(runtime.backend.now)
    await order.run("a", workflow_id="l1")
    with pytest.raises(ConnectionError):
        await order.run("bb", 9, workflow_id="l2")
    await order.run("ccc", workflow_id="l3")
    store = runtime.store
    assert [w.workflow_id for w in store.list_workflows()] == ["l3", "l2", "l1"]
    assert [w.workflow_id for w in store.list_workflows(status="error")] == ["l2"]
    assert [w.workflow_id for w in store.list_workflows(status=["success"], limit=1)] == ["l3"]
    assert store.list_workflows(name="nope") == []
    assert len(store.list_workflows(since=start, name="store.order")) == 3
    assert store.list_workflows(until=dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)) == []
    got = store.get_workflow("l1")
    assert got is not None
    assert got.result() == "paid 10"
    failed = await store.aget_workflow("l2")
    assert failed is not None
    with pytest.raises(ConnectionError):
        failed.result()
    assert [w.workflow_id for w in await store.alist_workflows(status="success")] == ["l3", "l1"]
    with pytest.raises(durable.ConfigurationError, match="unknown workflow status"):
        store.list_workflows(status="done")
    with pytest.raises(durable.ConfigurationError, match="has no time zone"):
        store.list_workflows(since=dt.datetime(2020, 1, 1))


@durable.durable_workflow(name="store.parent")
async def parent(n: int) -> list[str]:
    return [await order("p" * (i + 1)) for i in range(n)]


async def test_list_workflows_by_queue_and_parent(runtime: durable.Runtime) -> None:
    await parent.run(2, workflow_id="tree")
    await order.run("solo", workflow_id="solo")
    store = runtime.store
    children = store.list_workflows(parent_id="tree", limit=None)
    assert sorted(c.parent_id or "" for c in children) == ["tree", "tree"]
    assert [w.workflow_id for w in await store.alist_workflows(parent_id="solo")] == []
    handle = await order.options(queue="slow").enqueue("queued")
    assert [w.workflow_id for w in store.list_workflows(queue="slow")] == [handle.workflow_id]
    assert store.list_workflows(queue="other") == []
    assert store.counts() == {"success": 4, "enqueued": 1} == await store.acounts()
    assert store.counts() == store.metrics().by_status
    assert store.get_workflow("solo").lease_expires_at is None  # type: ignore[union-attr]


async def test_step_result_of_a_live_record(runtime: durable.Runtime) -> None:
    with pytest.raises(ConnectionError):
        await order.run("ab", 9, workflow_id="steps")
    store = runtime.store
    assert store.step_result("steps", 1) == 20
    with pytest.raises(ConnectionError, match="gateway down"):
        store.step_result("steps", 3)  # the recorded error, raised
    with pytest.raises(durable.WorkflowNotFoundError, match="no live step record at position 9"):
        store.step_result("steps", 9)
    with pytest.raises(durable.WorkflowNotFoundError):
        store.step_result("nope", 1)


async def test_cancel_stops_at_the_next_step_boundary(runtime: durable.Runtime) -> None:
    gate = asyncio.Event()

    @durable.step(name="slow_part")
    async def slow_part() -> int:
        await gate.wait()
        return 1

    @durable.step(name="never")
    async def never() -> None:
        RAN.append("never")

    @durable.durable_workflow(name="store.cancel")
    async def wf() -> None:
        await slow_part()
        await never()

    task = asyncio.ensure_future(wf.run(workflow_id="cx"))
    await asyncio.sleep(0.05)
    assert runtime.store.cancel("cx") is True
    gate.set()
    with pytest.raises(durable.WorkflowCancelledError, match="was cancelled"):
        await task
    assert RAN == []
    assert runtime.list_steps("cx") == []  # the step in flight was not recorded
    with pytest.raises(durable.WorkflowCancelledError):
        await wf.run(workflow_id="cx")
    assert (await runtime.recover()).resumed == []
    assert runtime.store.cancel("cx") is False


async def test_cleanup_and_prune(runtime: durable.Runtime) -> None:
    await order.run("x", workflow_id="old")
    durable.restore("old", "priced")
    await order.run("x", workflow_id="old")  # leaves a superseded record behind
    await order.run("y", workflow_id="keep")
    store = runtime.store
    dry = store.prune(keep_snapshots=1, dry_run=True)
    # Superseded: pay and paid of "old"; snapshots beyond the newest: "priced" of each.
    assert (dry.steps, dry.dry_run) == (2 + 1 + 1, True)
    assert len(store.history("old")) == 6
    pruned = store.prune(keep_snapshots=1)
    assert pruned.steps == 4
    assert [e.name for e in store.history("old")] == ["price", "pay", "paid"]

    report = store.cleanup(older_than=dt.timedelta(hours=1), dry_run=True)
    assert report.workflows == 0
    report = store.cleanup(older_than=0, status="success", dry_run=True)
    assert (report.workflows, report.steps, report.dry_run) == (2, 6, True)
    assert store.get_workflow("old") is not None
    report = store.cleanup(older_than=0)
    assert (report.workflows, report.steps, report.attempts) == (2, 6, 0)
    assert store.get_workflow("old") is None
    assert store.list_workflows() == []


async def test_cleanup_counts_and_removes_superseded_records_too(
    runtime: durable.Runtime,
) -> None:
    """Live and superseded records are read apart (each through its own index): both go."""
    await order.run("x", workflow_id="restored")
    durable.restore("restored", "priced")
    await order.run("x", workflow_id="restored")
    history = runtime.store.history("restored")
    assert [e.position for e in history] == sorted(e.position for e in history)
    assert sum(e.superseded for e in history) == 2
    assert len(history) == 6
    dry = runtime.store.cleanup(older_than=0, dry_run=True)
    assert (dry.workflows, dry.steps) == (1, 6)
    assert runtime.store.cleanup(older_than=0).steps == 6
    assert runtime.store.history("restored") == []
    assert runtime.store.metrics().steps == 0


async def test_cleanup_never_deletes_running_workflows(runtime: durable.Runtime) -> None:
    CrashInjector(runtime).arm("after_commit", step="price")
    with pytest.raises(SimulatedCrash):
        await order.run("z", workflow_id="crashed")
    assert runtime.store.cleanup(older_than=0).workflows == 0
    assert runtime.get_workflow("crashed") is not None


async def test_metrics(runtime: durable.Runtime) -> None:
    await order.run("abc", workflow_id="m1")
    with pytest.raises(ConnectionError):
        await order.run("de", 9, workflow_id="m2")
    metrics = await runtime.store.ametrics()
    assert metrics.by_status == {"success": 1, "error": 1}
    assert metrics.workflows == 2
    assert metrics.steps == 2 + 2  # m1: price, pay; m2: price, pay (its error); no snapshots
    assert metrics.step_ms_mean is not None
    assert metrics.step_ms_max is not None
    assert metrics.step_ms_max >= metrics.step_ms_mean >= 0
    assert metrics.storage_bytes > 0
    assert metrics.checkpoints_measured >= 7
    assert metrics.checkpoint_ms_mean is not None and metrics.checkpoint_ms_p99 is not None  # noqa: PT018
    assert metrics.checkpoint_ms_p99 >= 0


def test_store_open_from_a_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    with durable.Runtime(url):
        order.run_sync("q", workflow_id="from-url")
    with durable.Store.open(url) as store:
        [info] = store.list_workflows()
        assert info.workflow_id == "from-url"
        assert info.result() == "paid 10"


def test_a_store_made_from_a_url_says_to_open_it(tmp_path: Path) -> None:
    url = "postgresql://bob:hunter2@db/app"
    with pytest.raises(durable.ConfigurationError, match=r"durable\.Store\.open\(url\)") as caught:
        durable.Store(url)  # type: ignore[arg-type]
    assert "hunter2" not in str(caught.value)
    with pytest.raises(durable.ConfigurationError, match="takes a runtime"):
        durable.Store(tmp_path / "s.db")  # type: ignore[arg-type]


def test_a_version_1_database_is_migrated_on_open(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    dump = (Path(__file__).parents[1] / "data" / "schema_v1.sql").read_text()
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.executescript(dump)
        assert conn.execute("SELECT value FROM durable_meta").fetchone() == ("1",)

    @durable.durable_workflow(name="legacy.flow")
    def flow(x: int) -> int:
        raise AssertionError("a finished workflow must not run again")

    with durable.Runtime(f"sqlite:///{path}") as runtime:
        assert flow.run(1, workflow_id="done-v1") == 4
        [entry] = runtime.store.history("done-v1")
        assert (entry.name, entry.kind, entry.transaction_id) == ("fetch", "step", None)
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        assert conn.execute("SELECT value FROM durable_meta").fetchone() == (str(SCHEMA_VERSION),)
