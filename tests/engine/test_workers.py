"""Queues and workers: claims, priorities, limits, graceful stops, and crashed workers."""

from __future__ import annotations

import asyncio
import collections
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import durable
from tests.conftest import PROGRAMS, loop_ticks_while_locked, program_env, read_lines, wait_for

ORDER: list[str] = []
RUNNING: collections.Counter[str] = collections.Counter()
PEAK: collections.Counter[str] = collections.Counter()


@durable.step
async def tick(label: str) -> str:
    ORDER.append(label)
    return label


@durable.durable_workflow(name="workers.labelled")
async def labelled(label: str) -> str:
    return await tick(label)


@durable.step
async def hold(queue: str) -> None:
    RUNNING[queue] += 1
    PEAK[queue] = max(PEAK[queue], RUNNING[queue])
    await asyncio.sleep(0.02)
    RUNNING[queue] -= 1


@durable.durable_workflow(name="workers.limited")
async def limited(queue: str, i: int) -> int:
    await hold(queue)
    return i


@pytest.fixture(autouse=True)
def _clear() -> None:
    ORDER.clear()
    RUNNING.clear()
    PEAK.clear()


async def test_enqueue_records_without_running_and_is_idempotent_per_id(
    runtime: durable.Runtime,
) -> None:
    handle = await labelled.enqueue("a", workflow_id="job-a", queue="q", priority=3)
    again = await labelled.enqueue("a", workflow_id="job-a", queue="q", priority=3)
    assert handle.workflow_id == again.workflow_id == "job-a"
    assert handle.status() is durable.WorkflowStatus.ENQUEUED
    assert ORDER == []
    with pytest.raises(durable.WorkflowConflictError, match="job-a"):
        await labelled.enqueue("b", workflow_id="job-a")
    with pytest.raises(durable.ConfigurationError, match="queue name"):
        await labelled.enqueue("a", queue="")
    # Calling it directly runs it here, once.
    assert await labelled.run("a", workflow_id="job-a") == "a"
    assert await handle.result(timeout=5) == "a"
    assert ORDER == ["a"]


async def test_a_worker_runs_the_highest_priority_first_then_the_oldest(
    runtime: durable.Runtime,
) -> None:
    for label, priority in [("low", 0), ("high", 5), ("low2", 0), ("mid", 1)]:
        await labelled.enqueue(label, priority=priority)
    await labelled.enqueue("elsewhere", queue="other")
    worker = durable.Worker(runtime=runtime, concurrency=1)
    report = await worker.run(until_idle=True)
    assert ORDER == ["high", "mid", "low", "low2"]
    assert len(report.completed) == 4
    assert labelled.id_for("elsewhere") not in report.completed  # another queue


async def test_queue_limits_hold_across_workers(runtime: durable.Runtime) -> None:
    for i in range(12):
        await limited.enqueue("narrow", i, queue="narrow")
        await limited.enqueue("wide", i, queue="wide")
    workers = [
        durable.Worker(
            runtime=runtime, queues=["narrow", "wide"], concurrency=8, queue_limits={"narrow": 2}
        )
        for _ in range(2)
    ]
    reports = await asyncio.gather(*(w.run(until_idle=True) for w in workers))
    assert sum(len(r.completed) for r in reports) == 24
    assert PEAK["narrow"] <= 2
    assert PEAK["wide"] > 2  # the limit is per queue


async def test_a_row_claimed_here_is_not_taken_by_a_recovery_here_before_it_starts(
    runtime: durable.Runtime,
) -> None:
    """A worker claims, then its task takes the row's hold; a recovery of another worker
    in this process, in between, saw the owner (this process) holding nothing and ran the
    workflow a second time (a queue limit then let 3 run where 2 may)."""
    assert await labelled.run("owner") == "owner"
    backend, engine, parts = runtime.backend, runtime.engine, runtime.parts
    me = backend.run_sync(backend.get_workflow, labelled.id_for("owner"))
    assert me is not None
    assert me.owner is not None  # this process
    await limited.enqueue("narrow", 1, queue="narrow")
    with parts.leases.claiming():
        (row,) = backend.run_sync(backend.claim_queued, me.owner, 30.0, ["narrow"], 1, None)
        assert row.owner == me.owner
        due = await parts.recovery.due(engine.session(sync=True))
        assert row.workflow_id not in [r.workflow_id for r in due]
    # Claimed and never started (no task holds it): as after a crash here, it is due.
    due = await parts.recovery.due(engine.session(sync=True))
    assert row.workflow_id in [r.workflow_id for r in due]


GATE: dict[str, asyncio.Event] = {}


@durable.step
async def gate_step() -> None:
    GATE["inside"].set()
    await GATE["open"].wait()


@durable.durable_workflow(name="workers.parks_after_a_step")
async def parks_after_a_step() -> str:
    await gate_step()
    return str(await durable.wait_for_event("go", suspend=True))


async def test_a_row_read_while_it_ran_here_is_not_due_once_it_has_suspended(
    runtime: durable.Runtime,
) -> None:
    """A look at what is due read the rows while a call here ran a workflow; the call
    then suspended it and let go before the look checked the owner. The stale row
    (running, owned by this process, held by nothing) read as an in-process crash,
    and a worker ran the workflow a second time (CI saw it reported suspended twice)."""
    GATE["inside"], GATE["open"] = asyncio.Event(), asyncio.Event()
    backend, engine, parts = runtime.backend, runtime.engine, runtime.parts
    call = asyncio.create_task(parks_after_a_step.run(workflow_id="stale"))
    await GATE["inside"].wait()
    read = backend.run_sync(backend.resumable)
    assert [r.status for r in read if r.workflow_id == "stale"] == [durable.WorkflowStatus.RUNNING]
    GATE["open"].set()
    with pytest.raises(durable.WorkflowSuspendedError):
        await call
    due = await parts.recovery.due_among(engine.session(sync=True), read)
    assert "stale" not in [r.workflow_id for r in due]
    await durable.send_event("stale", "go", 5)
    due = await parts.recovery.due(engine.session(sync=True))  # the next look
    assert [r.workflow_id for r in due] == ["stale"]


async def test_a_worker_resumes_suspended_workflows_when_they_are_due(
    runtime: durable.Runtime,
) -> None:
    @durable.durable_workflow(name="workers.parked")
    async def parked() -> str:
        return str(await durable.wait_for_event("go", suspend=True))

    handle = await parked.enqueue(workflow_id="parked")
    worker = durable.Worker(runtime=runtime, recovery_interval=0.01)
    first = await worker.run(until_idle=True)
    assert first.suspended == ["parked"]
    assert handle.status() is durable.WorkflowStatus.WAITING
    await durable.send_event("parked", "go", 7)
    second = await durable.Worker(runtime=runtime).run(until_idle=True)
    assert second.resumed == ["parked"]
    assert await handle.result(timeout=5) == "7"


@durable.durable_workflow(name="workers.gated")
async def gated(i: int) -> int:
    return int(await durable.wait_for_event("open")) + i


async def test_a_worker_fills_its_last_free_slots_while_its_other_workflows_wait(
    runtime: durable.Runtime,
) -> None:
    """Room fewer than a claim batch (concurrency // 4) is still claimed into.

    A worker of concurrency 8 claims 2 at a time. With 7 of its workflows
    waiting for an event, 1 slot is free: the workflow enqueued then must
    run, not wait until one of the 7 ends (the waits could last days).
    """
    worker = durable.Worker(runtime=runtime, queues=["room"], concurrency=8, poll_interval=0.05)
    for i in range(7):
        await gated.enqueue(i, workflow_id=f"gated-{i}", queue="room")
    running = asyncio.create_task(worker.run())
    try:
        while len(runtime.store.list_workflows(status="waiting")) < 7:
            assert not running.done()
            await asyncio.sleep(0.01)
        late = await labelled.enqueue("late", workflow_id="late", queue="room")
        assert await late.result(timeout=10) == "late"
        for i in range(7):
            await durable.send_event(f"gated-{i}", "open", 10)
        for i in range(7):
            assert await durable.WorkflowHandle(f"gated-{i}").result(timeout=30) == 10 + i
    finally:
        worker.stop()
        report = await running
    assert sorted(report.completed) == sorted(["late", *(f"gated-{i}" for i in range(7))])


@durable.durable_workflow(name="workers.parked_many")
async def parked_many(i: int) -> int:
    return int(await durable.wait_for_event("go", suspend=True)) + i


async def test_a_worker_resumes_more_due_waits_than_its_concurrency_without_a_new_look(
    runtime: durable.Runtime,
) -> None:
    """Due waits beyond the worker's room start as room frees, not one interval later.

    Before, a worker resumed at most ``concurrency`` suspended workflows per
    recovery interval (5 s by default): 5,000 events for suspended workflows
    took a worker of concurrency 16 some 26 minutes to resume.
    """
    ids = [f"parked-{i}" for i in range(6)]
    for i, workflow_id in enumerate(ids):
        await parked_many.enqueue(i, workflow_id=workflow_id)
    first = await durable.Worker(runtime=runtime).run(until_idle=True)
    assert sorted(first.suspended) == ids
    for workflow_id in ids:
        await durable.send_event(workflow_id, "go", 10)
    # Room for 2 at once, and its next look at what is due a minute away.
    worker = durable.Worker(runtime=runtime, concurrency=2, recovery_interval=60)
    second = await worker.run(until_idle=True)
    assert sorted(second.resumed) == ids
    for i, workflow_id in enumerate(ids):
        assert await durable.WorkflowHandle(workflow_id).result(timeout=5) == 10 + i


async def test_a_workers_look_for_due_work_leaves_its_event_loop_free(postgres_url: str) -> None:
    """The look for what is due (every active workflow's row) runs off the event loop.

    On the loop, it stalled every workflow the worker ran for as long as it
    took: seconds at each recovery interval with 10,000 waiting in the worker
    (benchmarks/waiting.py). Here a lock on the events table holds the look
    up for a second; the loop must tick meanwhile.
    """
    with durable.Runtime(postgres_url) as runtime:
        worker = durable.Worker(
            runtime=runtime, queues=["q"], recovery_interval=0.05, poll_interval=0.05
        )
        running = asyncio.create_task(worker.run())
        try:
            await asyncio.sleep(0.3)  # its first passes
            ticks = await loop_ticks_while_locked(postgres_url, "durable_events")
            # Ticks while the look waited for the lock (it starts within 0.05 s).
            assert [t for t in ticks if 0.3 < t < 0.9]
        finally:
            worker.stop()
            await running


async def test_a_worker_leaves_unknown_workflows_for_a_worker_that_knows_them(
    runtime: durable.Runtime,
) -> None:
    @durable.durable_workflow(name="workers.unknown")
    async def unknown() -> str:
        return "ran"

    handle = await unknown.enqueue()
    from durable.testing import unregistered

    with unregistered("workers.unknown"):  # this "process" never imported it
        worker = durable.Worker(runtime=runtime, recovery_interval=0.2)
        report = await worker.run(until_idle=True)
    assert report.unknown == {handle.workflow_id: "workers.unknown"}
    info = handle.info()
    # Back on its queue (under its flow control), its claim's attempt given back,
    # and not claimable again at once (that worker would take it straight back).
    assert (info.status, info.attempts, info.owner_host) == (
        durable.WorkflowStatus.ENQUEUED,
        0,
        None,
    )
    assert info.wake_at is not None
    assert info.wake_at > info.created_at
    await asyncio.sleep(0.3)
    assert (await durable.Worker(runtime=runtime).run(until_idle=True)).completed == [
        handle.workflow_id
    ]
    assert await handle.result() == "ran"


async def test_a_claimed_workflow_whose_arguments_cannot_be_read_is_failed_not_stuck(
    durable_sqlite: str,
) -> None:
    with durable.Runtime(durable_sqlite, secret_key="old key 0123456789"):
        handle = await labelled.enqueue("signed", workflow_id="signed", queue="q")
    with durable.Runtime(durable_sqlite, secret_key="new key 0123456789") as runtime:
        worker = durable.Worker(runtime=runtime, queues=["q"], queue_limits={"q": 1})
        report = await worker.run(until_idle=True)
        assert "PayloadIntegrityError" in report.failed["signed"]
        info = runtime.get_workflow(handle.workflow_id)
        assert info is not None
        assert info.status is durable.WorkflowStatus.ERROR  # out of the queue, its slot free
    assert ORDER == []


def test_worker_options_are_checked() -> None:
    with pytest.raises(durable.ConfigurationError, match="concurrency"):
        durable.Worker("sqlite:///:memory:", concurrency=0)
    with pytest.raises(durable.ConfigurationError, match="limit of queue 'q'"):
        durable.Worker("sqlite:///:memory:", queue_limits={"q": 0})


# Real worker processes ---------------------------------------------------------


def _worker(url: str, log: Path, err: Path, *extra: str, **env: Any) -> subprocess.Popen[str]:
    with open(err, "w") as stderr:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "durable",
                "--url",
                url,
                "worker",
                "--import",
                "queue_app",
                *extra,
            ],
            cwd=PROGRAMS,
            env=program_env(QUEUE_APP_LOG=log, **env),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )


def _queue_app() -> Any:
    """tests/programs/queue_app.py, imported here as the workers import it."""
    sys.path.insert(0, str(PROGRAMS))
    try:
        import queue_app

        return queue_app
    finally:
        sys.path.remove(str(PROGRAMS))


def _stderr(tmp_path: Path) -> str:
    return "\n".join(f"{p.name}:\n{p.read_text()[-3000:]}" for p in tmp_path.glob("*.err"))


def test_sigterm_lets_running_workflows_finish(db_url: str, tmp_path: Path) -> None:
    log = tmp_path / "effects.log"
    with durable.Runtime(db_url):
        queue_app = _queue_app()
        queue_app.slow.enqueue_sync(1.0, workflow_id="slow")
    worker = _worker(db_url, log, tmp_path / "w.err", "--grace", "30")
    wait_for(lambda: len(read_lines(log)) >= 1, "the first step")
    worker.send_signal(signal.SIGTERM)
    out, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, (tmp_path / "w.err").read_text()
    with durable.Runtime(db_url):
        assert durable.WorkflowHandle("slow").result_sync(timeout=5) == "slept"
    assert "1 completed" in out


def test_a_worker_out_of_grace_releases_its_work_for_another(db_url: str, tmp_path: Path) -> None:
    log = tmp_path / "effects.log"
    with durable.Runtime(db_url):
        queue_app = _queue_app()
        queue_app.slow.enqueue_sync(2.0, workflow_id="slow")
    first = _worker(db_url, log, tmp_path / "first.err", "--grace", "0")
    wait_for(lambda: _committed(db_url, "slow") >= 1, "the first step's record")
    first.send_signal(signal.SIGTERM)
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 0, (tmp_path / "first.err").read_text()
    with durable.Store.open(db_url) as store:
        info = store.get_workflow("slow")
        assert info is not None
        assert info.status is durable.WorkflowStatus.RUNNING
        assert info.owner_host is None  # released, not left to a lease
    assert "1 released" in out
    second = _worker(db_url, log, tmp_path / "second.err", "--until-idle")
    second.communicate(timeout=120)
    assert second.returncode == 0, (tmp_path / "second.err").read_text()
    with durable.Runtime(db_url):
        assert durable.WorkflowHandle("slow").result_sync(timeout=5) == "slept"
    # The first step committed before the stop: it never ran again.
    assert [line.split()[1] for line in read_lines(log)] == ["0", "1"]


def test_a_poison_workflow_is_quarantined_instead_of_killing_workers_for_ever(
    durable_sqlite: str, tmp_path: Path
) -> None:
    log = tmp_path / "effects.log"
    with durable.Runtime(durable_sqlite):
        queue_app = _queue_app()
        queue_app.poison.enqueue_sync(workflow_id="poison")
    options = ("--until-idle", "--max-recoveries", "2")
    for run in range(3):  # its first run, then two recoveries: each kills its worker
        worker = _worker(durable_sqlite, log, tmp_path / f"{run}.err", *options)
        worker.communicate(timeout=60)
        assert worker.returncode == -signal.SIGKILL, (tmp_path / f"{run}.err").read_text()
    last = _worker(durable_sqlite, log, tmp_path / "last.err", *options)
    last.communicate(timeout=60)
    assert last.returncode == 0, (tmp_path / "last.err").read_text()
    assert "quarantined after 2 recoveries" in (tmp_path / "last.err").read_text()
    with durable.Store.open(durable_sqlite) as store:
        info = store.get_workflow("poison")
        assert info is not None
        assert info.status is durable.WorkflowStatus.QUARANTINED
    assert len(read_lines(log)) == 1  # its first step committed once, never re-run


def _committed(url: str, workflow_id: str) -> int:
    with durable.Store.open(url) as store:
        return len(store.history(workflow_id))


def test_a_second_sigterm_releases_at_once(db_url: str, tmp_path: Path) -> None:
    log = tmp_path / "effects.log"
    with durable.Runtime(db_url):
        queue_app = _queue_app()
        queue_app.slow.enqueue_sync(600.0, workflow_id="slow")
    worker = _worker(db_url, log, tmp_path / "w.err", "--grace", "600")
    wait_for(lambda: _committed(db_url, "slow") >= 1, "the first step's record")
    worker.send_signal(signal.SIGTERM)
    wait_for(lambda: "stopping" in (tmp_path / "w.err").read_text(), "the first signal")
    worker.send_signal(signal.SIGTERM)
    out, _ = worker.communicate(timeout=60)  # not 600 s
    assert worker.returncode == 0, (tmp_path / "w.err").read_text()
    assert "1 released" in out
    with durable.Store.open(db_url) as store:
        info = store.get_workflow("slow")
        assert info is not None
        assert info.owner_host is None


def _enqueue_jobs(url: str, count: int) -> None:
    subprocess.run(
        [sys.executable, str(PROGRAMS / "queue_app.py"), "enqueue", str(count)],
        env=program_env(DURABLE_URL=url),
        check=True,
        capture_output=True,
        timeout=300,
    )


def _check_soak(url: str, log: Path, count: int, killed: set[int]) -> None:
    """Every job done, one record per step, no step re-run after its commit, no overlap."""
    with durable.Store.open(url) as store:
        workflows = store.list_workflows(limit=None)
        assert len(workflows) == count
        assert {w.status for w in workflows} == {durable.WorkflowStatus.SUCCESS}
        committed: dict[tuple[str, int], float] = {}
        for info in workflows:
            history = store.history(info.workflow_id)
            live = [e for e in history if not e.superseded]
            assert [e.position for e in live] == [1, 2, 3, 4, 5], info.workflow_id
            assert not [e for e in history if e.superseded]
            for entry in live:
                committed[(info.workflow_id, entry.position - 1)] = entry.finished_at
            assert info.result() == int(info.workflow_id.split("-")[1]) + 10
    runs: dict[tuple[str, int], list[tuple[float, int]]] = collections.defaultdict(list)
    by_workflow: dict[str, list[tuple[float, int]]] = collections.defaultdict(list)
    for line in read_lines(log):
        workflow_id, n, pid, started, _ = line.split()
        runs[(workflow_id, int(n))].append((float(started), int(pid)))
        by_workflow[workflow_id].append((float(started), int(pid)))
    assert set(runs) == set(committed)
    for key, executions in runs.items():
        survivors = [pid for _, pid in executions if pid not in killed]
        assert len(survivors) <= 1, f"{key} ran {executions}"
        # No execution started after the step's record was written.
        assert all(started <= committed[key] for started, _ in executions), (key, executions)
    for workflow_id, executions in by_workflow.items():
        pids = [pid for _, pid in sorted(executions)]
        owners = [pid for i, pid in enumerate(pids) if i == 0 or pids[i - 1] != pid]
        # Owners follow one another (a dead one replaced); never back and forth.
        assert len(owners) == len(set(owners)), (workflow_id, pids)
        assert all(pid in killed for pid in owners[:-1]), (workflow_id, pids)


def _soak(url: str, tmp_path: Path, count: int, workers: int, kill: int) -> None:
    log = tmp_path / "effects.log"
    _enqueue_jobs(url, count)
    # Steps long enough (20 ms) that every worker has workflows in flight when killed.
    slow_steps = {"QUEUE_APP_STEP_SECONDS": "0.02"}
    procs = [
        _worker(url, log, tmp_path / f"w{i}.err", "--concurrency", "16", **slow_steps)
        for i in range(workers)
    ]
    killed: set[int] = set()
    try:
        with durable.Store.open(url) as store:

            def done() -> int:
                for proc in procs:
                    # A worker that died by itself fails the test at once.
                    assert proc.poll() is None or proc.pid in killed, _stderr(tmp_path)
                return len(store.list_workflows(status="success", limit=None))

            wait_for(lambda: done() >= count // 4, "a quarter done", timeout=120)
            for proc in procs[:kill]:
                proc.send_signal(signal.SIGKILL)
                proc.communicate(timeout=30)
                killed.add(proc.pid)
            orphaned = [
                w.workflow_id
                for w in store.list_workflows(status="running", limit=None)
                if w.owner_pid in killed
            ]
            # The killed workers held workflows mid-run (which others must finish).
            assert orphaned, "the killed workers held nothing"
            late = _worker(url, log, tmp_path / "late.err", "--concurrency", "16", **slow_steps)
            procs.append(late)
            wait_for(lambda: done() == count, "every job done", timeout=300)
        for proc in procs[kill:]:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)
            assert proc.returncode == 0, _stderr(tmp_path)
    finally:
        for proc in procs:  # never leave a worker behind, whatever failed
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=30)
    _check_soak(url, log, count, killed)


@pytest.mark.slow
def test_soak_postgres_four_workers_two_killed(postgres_url: str, tmp_path: Path) -> None:
    # Four workers and this test share the server's connections (100 by default).
    _soak(f"{postgres_url}&pool_max=4", tmp_path, count=1000, workers=4, kill=2)


@pytest.mark.slow
def test_soak_sqlite_two_workers_one_killed(durable_sqlite: str, tmp_path: Path) -> None:
    _soak(durable_sqlite, tmp_path, count=1000, workers=2, kill=1)
