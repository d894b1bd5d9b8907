"""Edge cases found by review: each test reproduces a defect that was fixed."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

import durable
from durable.testing import CrashInjector, SimulatedCrash

RAN: list[str] = []


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


@durable.step(name="slow_step")
async def slow_step(x: int) -> int:
    RAN.append(f"slow {x}")
    await asyncio.sleep(0.1)
    return x


@durable.durable_workflow(name="edge.slow")
async def slow(x: int) -> int:
    return await slow_step(x)


async def test_two_runtimes_on_one_store_share_one_execution(durable_sqlite: str) -> None:
    a, b = durable.Runtime(durable_sqlite), durable.Runtime(durable_sqlite)

    async def via(rt: durable.Runtime) -> int:
        with rt.activated():
            return await slow.run(1, workflow_id="job")

    try:
        assert await asyncio.wait_for(asyncio.gather(via(a), via(b)), 10) == [1, 1]
    finally:
        a.close()
        b.close()
    assert RAN == ["slow 1"]


async def test_recover_resumes_on_its_own_store_not_the_default(
    durable_sqlite: str, tmp_path: Path
) -> None:
    mine = durable.Runtime(durable_sqlite)
    try:
        CrashInjector(mine).arm("before_step", step="slow_step")
        with mine.activated(), pytest.raises(SimulatedCrash):
            await slow.run(2, workflow_id="crashed")
        report = await mine.recover()  # called outside `with`: the default is elsewhere
        assert report.resumed == ["crashed"]
        info = mine.get_workflow("crashed")
        assert info is not None
        assert info.status is durable.WorkflowStatus.SUCCESS
    finally:
        mine.close()


async def test_concurrent_calls_do_not_rerun_a_failure(durable_runtime: durable.Runtime) -> None:
    @durable.step(name="boom")
    async def boom() -> None:
        RAN.append("boom")
        await asyncio.sleep(0.05)
        raise ValueError("once")

    @durable.durable_workflow(name="edge.fail")
    async def wf() -> None:
        await boom()

    results = await asyncio.gather(wf(), wf(), return_exceptions=True)
    assert [type(r) for r in results] == [ValueError, ValueError]
    assert RAN == ["boom"]


def test_a_write_waits_for_another_connection_to_release_the_lock(durable_sqlite: str) -> None:
    """A busy database is waited out, not an error."""
    path = durable_sqlite.split("sqlite:///", 1)[1]
    with durable.Runtime(durable_sqlite) as rt:
        blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        blocker.execute("BEGIN IMMEDIATE")
        timer = threading.Timer(0.3, blocker.execute, ("COMMIT",))
        timer.start()
        try:

            @durable.durable_workflow(name="edge.waits")
            def wf() -> int:
                return 1

            assert wf() == 1
            assert not blocker.in_transaction  # it did have to wait for the commit
            assert rt.store.get_workflow(wf.id_for()).status == "success"  # type: ignore[union-attr]
        finally:
            timer.join()
            blocker.close()


def test_an_unknown_postgres_option_is_a_configuration_error() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(durable.ConfigurationError, match="unknown option"):
        durable.Runtime("postgresql://u@127.0.0.1:1/db?bogus=1")


async def test_an_error_type_with_a_very_long_name_is_recorded(
    durable_runtime: durable.Runtime,
) -> None:
    """PostgreSQL refuses a value longer than its column: the type name is cut to fit."""
    long_error = type("E" * 600, (ValueError,), {})

    @durable.step(name="edge.long_error")
    async def fails() -> None:
        raise long_error("with a long name")

    @durable.durable_workflow(name="edge.long_error_wf")
    async def wf() -> None:
        await fails()

    with pytest.raises(ValueError, match="with a long name"):
        await wf()
    (entry,) = durable_runtime.store.history(wf.id_for())
    assert entry.error is not None
    assert entry.error.startswith(f"{__name__}.EEEE")
    assert "...: with a long name" in entry.error


async def test_error_messages_with_nul_and_long_names_are_stored(
    durable_runtime: durable.Runtime,
) -> None:
    @durable.step(name="n" * 400, retries=1, backoff=0)
    async def nul() -> None:
        raise ValueError("bad\x00byte")

    @durable.durable_workflow(name="edge.nul")
    async def wf() -> None:
        await nul()

    with pytest.raises(ValueError, match="bad"):
        await wf.run(workflow_id="nul")
    [retried, failed] = durable_runtime.store.history("nul")
    assert retried.error == "ValueError: bad\\x00byte"
    assert failed.name == "n" * 400
    with pytest.raises(durable.ConfigurationError, match="at most 500 characters"):
        durable.step(name="x" * 501)(lambda: None)


def test_unpicklable_defaults_do_not_count_in_the_call(durable_runtime: durable.Runtime) -> None:
    lock = threading.Lock()

    @durable.durable_workflow(name="edge.default")
    def wf(x: int, guard: Any = lock, scale: int = 2) -> int:
        with guard:
            return x * scale

    assert wf(3) == 6
    assert wf.id_for(3) == wf.id_for(3, scale=2) == wf.id_for(x=3, guard=lock)
    assert wf.id_for(3) != wf.id_for(3, scale=3)


async def test_run_sync_refuses_to_deadlock_its_own_event_loop(
    durable_runtime: durable.Runtime,
) -> None:
    task = asyncio.ensure_future(slow.run(5, workflow_id="notebook"))
    await asyncio.sleep(0.01)
    with pytest.raises(durable.WorkflowAlreadyRunningError, match="await it instead"):
        slow.run_sync(5, workflow_id="notebook")
    assert await task == 5


class Service:
    def __init__(self) -> None:
        self.lock = threading.Lock()  # not picklable

    @durable.durable_workflow(name="edge.Service.process")
    async def process(self, x: int) -> int:
        return await self.double(x)

    @durable.step(name="edge.double")
    async def double(self, x: int) -> int:
        if RAN.count("crash") == 0:
            RAN.append("crash")
            raise SimulatedCrash.__new__(SimulatedCrash)
        return 2 * x


async def test_recover_explains_a_method_whose_instance_did_not_pickle(
    durable_runtime: durable.Runtime,
) -> None:
    with pytest.raises(SimulatedCrash):
        await Service().process.run(4, workflow_id="svc")
    report = await durable_runtime.recover()
    assert "its instance (a tests.engine.test_edge_cases.Service) could not be pickled" in str(
        report.failed["svc"]
    )
    assert await Service().process.run(4, workflow_id="svc") == 8


class Mailer:
    def __init__(self) -> None:
        self.lock = threading.Lock()  # not picklable

    @durable.durable_workflow(name="edge.Mailer.send")
    async def send(self, to: str) -> str:
        return await self.deliver(to)

    @durable.step(name="edge.deliver")
    async def deliver(self, to: str) -> str:
        if "crash" in RAN:
            raise SimulatedCrash.__new__(SimulatedCrash)
        return f"sent to {to}"


async def test_a_workflow_that_cannot_be_rebuilt_is_recorded_as_failed(
    durable_runtime: durable.Runtime,
) -> None:
    # Issue 14 item 3: recover() reported it but left it running for ever, so
    # each recovery failed on it again and its handle waited to its timeout.
    RAN.append("crash")
    try:
        with pytest.raises(SimulatedCrash):
            await Mailer().send.run("ada", workflow_id="mail-1")
    finally:
        RAN.remove("crash")
    report = await durable_runtime.recover()
    assert "could not be pickled" in str(report.failed["mail-1"])
    assert durable_runtime.get_workflow("mail-1").status is durable.WorkflowStatus.ERROR  # type: ignore[union-attr]
    with pytest.raises(durable.DurableError, match="could not be pickled"):
        await durable.WorkflowHandle("mail-1", durable_runtime).result(timeout=30)
    assert (await durable_runtime.recover()).failed == {}  # not tried again
    # Called again on a live instance: a new attempt, which finishes.
    assert await Mailer().send.run("ada", workflow_id="mail-1") == "sent to ada"


async def test_an_enqueued_workflow_that_cannot_be_rebuilt_is_recorded_as_failed(
    durable_runtime: durable.Runtime,
) -> None:
    handle = await Mailer().send.enqueue("bob", workflow_id="mail-2")
    worker = durable.Worker(runtime=durable_runtime)
    await worker.run(until_idle=True, handle_signals=False)
    assert "could not be pickled" in worker.report.failed["mail-2"]
    with pytest.raises(durable.DurableError, match="could not be pickled"):
        await handle.result(timeout=30)


def test_stop_iteration_from_a_sync_step_stays_stop_iteration(
    durable_runtime: durable.Runtime,
) -> None:
    @durable.step(name="first_of")
    def first_of(items: list[int]) -> int:
        return next(iter(items))

    @durable.durable_workflow(name="edge.stop")
    def wf() -> int:
        return first_of([])

    with pytest.raises(StopIteration):
        wf()


async def test_child_ids_of_long_parents_and_cycles(durable_runtime: durable.Runtime) -> None:
    @durable.durable_workflow(name="edge.kid")
    async def kid() -> str:
        return durable.current_workflow_id()

    @durable.durable_workflow(name="edge.parent")
    async def parent() -> str:
        return await kid()

    child_id = await parent.run(workflow_id="p" * 254)
    assert len(child_id) <= durable.MAX_WORKFLOW_ID_LENGTH
    assert child_id.endswith("/1")

    @durable.durable_workflow(name="edge.ping")
    async def ping() -> None:
        await pong.run(workflow_id="pong")

    @durable.durable_workflow(name="edge.pong")
    async def pong() -> None:
        await ping.run(workflow_id="ping")

    with pytest.raises(durable.ConfigurationError, match="calls itself as its own descendant"):
        await asyncio.wait_for(ping.run(workflow_id="ping"), 10)


def test_a_closed_runtime_says_so(durable_sqlite: str) -> None:
    runtime = durable.Runtime(durable_sqlite)
    runtime.close()

    @durable.durable_workflow(name="edge.closed")
    def wf() -> int:
        return 1

    with runtime.activated(), pytest.raises(durable.DurableError, match="is closed"):
        wf()


def test_step_takes_a_shared_retry_policy(durable_runtime: durable.Runtime) -> None:
    policy = durable.RetryPolicy(retries=2, backoff=0)
    tries: list[int] = []

    @durable.step(retry=policy)
    def flaky() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise OSError("flaky")
        return "ok"

    @durable.durable_workflow(name="edge.policy")
    def wf() -> str:
        return flaky()

    assert wf() == "ok"
    with pytest.raises(durable.ConfigurationError, match="not both"):
        durable.step(retry=policy, retries=3)


async def test_an_orphaned_child_is_recovered_by_itself(durable_runtime: durable.Runtime) -> None:
    @durable.step(name="child_work")
    async def child_work() -> str:
        RAN.append("child")
        await asyncio.sleep(0.2 if RAN.count("child") == 1 else 0)
        return "child done"

    @durable.durable_workflow(name="edge.orphan_child")
    async def orphan_child() -> str:
        return await child_work()

    @durable.durable_workflow(name="edge.impatient_parent")
    async def parent() -> str:
        try:
            return await asyncio.wait_for(orphan_child(), 0.05)
        except asyncio.TimeoutError:
            return "gave up"

    assert await parent.run(workflow_id="impatient") == "gave up"
    child = durable_runtime.get_workflow("impatient/1")
    assert child is not None
    assert child.status is durable.WorkflowStatus.RUNNING
    report = await durable_runtime.recover()
    assert report.resumed == ["impatient/1"]
    assert durable_runtime.get_workflow("impatient/1").status is durable.WorkflowStatus.SUCCESS  # type: ignore[union-attr]


async def test_error_messages_with_an_unpaired_surrogate_are_stored(
    durable_runtime: durable.Runtime,
) -> None:
    # A message built from bytes decoded with errors="surrogateescape" (a
    # file name, a subprocess's output): no UTF-8 form, so no column holds it.
    @durable.step(name="edge.surrogate_step", retries=1, backoff=0)
    async def undecodable() -> None:
        raise ValueError("no such file: caf\udce9.txt")

    @durable.durable_workflow(name="edge.surrogate")
    async def wf() -> None:
        await undecodable()

    with pytest.raises(ValueError, match="no such file") as info:
        await wf.run(workflow_id="surrogate")
    assert str(info.value) == "no such file: caf\udce9.txt"  # the exception itself, intact
    [retried, failed] = durable_runtime.store.history("surrogate")
    assert retried.error == failed.error == "ValueError: no such file: caf\\udce9.txt"
