"""Published state: ``durable.publish`` in a workflow, ``durable.get_published`` from anywhere."""

from __future__ import annotations

import asyncio
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

import durable
from durable.testing import VirtualClock, crash_sweep
from tests.conftest import durable_command, read_lines, start_program, wait_for

RAN: list[str] = []


@durable.step
async def work(i: int) -> int:
    RAN.append(f"work {i}")
    return i


@durable.durable_workflow(name="published.job")
async def job(n: int) -> int:
    total = 0
    for i in range(1, n + 1):
        total += await work(i)
        await durable.publish("progress", i)
    await durable.publish("stage", "done")
    return total


@durable.durable_workflow(name="published.gated")
async def gated() -> str:
    await durable.publish("stage", "started")
    answer = await durable.wait_for_event("go")
    await durable.publish("answer", answer)
    return str(answer)


@durable.durable_workflow(name="published.sync_job")
def sync_job(n: int) -> int:
    for i in range(1, n + 1):
        durable.publish_sync("progress", i)
    return n


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


def _publish_records(runtime: durable.Runtime, workflow_id: str) -> list[tuple[int, str]]:
    return [
        (e.position, e.name)
        for e in runtime.store.history(workflow_id)
        if e.kind == "publish" and not e.superseded
    ]


async def test_readers_get_the_latest_value_of_each_key(runtime: durable.Runtime) -> None:
    assert await job.run(3, workflow_id="j") == 6
    assert await durable.get_published("j", "progress") == 3
    assert durable.get_published_sync("j", "stage") == "done"
    assert runtime.store.published("j") == {"progress": 3, "stage": "done"}
    assert await runtime.store.apublished("j") == {"progress": 3, "stage": "done"}
    info = runtime.get_workflow("j")
    assert info is not None
    assert info.published() == {"progress": 3, "stage": "done"}
    handle = durable.WorkflowHandle("j")
    assert await handle.get_published("progress") == 3
    assert handle.get_published_sync("stage") == "done"


async def test_a_replay_writes_no_publish_again(runtime: durable.Runtime) -> None:
    await job.run(2, workflow_id="j")
    before = _publish_records(runtime, "j")
    assert before == [(2, "progress"), (4, "progress"), (5, "stage")]
    assert await job.run(2, workflow_id="j") == 3
    assert _publish_records(runtime, "j") == before


def test_sync_workflows_publish_with_publish_sync(runtime: durable.Runtime) -> None:
    assert sync_job.run_sync(3, workflow_id="s") == 3
    assert durable.get_published_sync("s", "progress") == 3
    assert [p for p, _ in _publish_records(runtime, "s")] == [1, 2, 3]


async def _started(runtime: durable.Runtime, workflow_id: str) -> None:
    for _ in range(1000):
        if runtime.get_workflow(workflow_id) is not None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{workflow_id} never started")


async def test_a_reader_waits_until_the_key_is_published(runtime: durable.Runtime) -> None:
    task = asyncio.create_task(gated.run(workflow_id="g"))
    await _started(runtime, "g")
    assert await durable.get_published("g", "stage", timeout=60) == "started"
    # A reader in another thread, blocked until the workflow publishes "answer".
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.append(durable.get_published_sync("g", "answer")))
    reader.start()
    await asyncio.sleep(0.05)
    assert got == []
    await durable.send_event("g", "go", 42)
    assert await task == "42"
    await asyncio.to_thread(reader.join, 60)
    assert got == [42]


async def test_missing_keys_give_the_default_or_a_clear_error(runtime: durable.Runtime) -> None:
    await job.run(1, workflow_id="j")
    # Finished without publishing it: it never will, so no wait even without a timeout.
    assert await durable.get_published("j", "absent", default=None) is None
    with pytest.raises(durable.NotPublishedError, match=r"'absent'.*success") as caught:
        await durable.get_published("j", "absent")
    assert isinstance(caught.value, LookupError)
    assert (caught.value.workflow_id, caught.value.key) == ("j", "absent")
    with pytest.raises(durable.WorkflowNotFoundError):
        await durable.get_published("nobody", "progress")
    with pytest.raises(durable.ConfigurationError):
        await durable.get_published("j", "")
    with pytest.raises(durable.ConfigurationError):
        await durable.get_published("j", "progress", timeout=-1)


async def test_a_timeout_passes_on_the_virtual_clock_in_no_time(runtime: durable.Runtime) -> None:
    task = asyncio.create_task(gated.run(workflow_id="g"))
    await _started(runtime, "g")
    await durable.get_published("g", "stage", timeout=60)
    clock = VirtualClock(auto_advance=True)
    runtime.clock = clock
    assert await durable.get_published("g", "answer", timeout=7 * 86400, default="none") == "none"
    with pytest.raises(durable.NotPublishedError, match="still running"):
        durable.get_published_sync("g", "answer", timeout=0)
    await durable.send_event("g", "go", 1)
    assert await task == "1"


async def test_read_in_a_workflow_it_is_recorded(runtime: durable.Runtime) -> None:
    @durable.durable_workflow(name="published.reader")
    async def reader(source: str) -> Any:
        seen = await durable.get_published(source, "progress")
        RAN.append(f"saw {seen}")
        return seen

    await job.run(2, workflow_id="source")
    assert await reader.run("source", workflow_id="r") == 2
    await job.run(5, workflow_id="source2")
    kinds = [(e.kind, e.name) for e in runtime.store.history("r")]
    assert kinds == [("step", "get_published('progress')")]


async def test_restore_rolls_published_values_back_and_fork_copies_them(
    runtime: durable.Runtime,
) -> None:
    @durable.durable_workflow(name="published.snapshots")
    async def snapshots() -> None:
        await durable.publish("stage", "one")
        await durable.snapshot("after-one")
        await durable.publish("stage", "two")

    await snapshots.run(workflow_id="w")
    assert await durable.get_published("w", "stage") == "two"
    runtime.store.fork("w", "after-one", "w2")
    assert await durable.get_published("w2", "stage", timeout=0) == "one"
    runtime.store.restore("w", "after-one")
    assert await durable.get_published("w", "stage", timeout=0) == "one"


def test_publish_belongs_in_a_workflow_body(runtime: durable.Runtime) -> None:
    with pytest.raises(durable.NotInWorkflowError, match="outside a workflow"):
        durable.publish_sync("k", 1)

    @durable.step
    def inside() -> None:
        durable.publish_sync("k", 1)

    @durable.durable_workflow(name="published.in_step")
    def in_step() -> None:
        inside()

    with pytest.raises(durable.NotInWorkflowError):
        in_step.run_sync()

    @durable.durable_workflow(name="published.wrong_form")
    def wrong_form() -> None:
        durable.publish("k", 1)  # type: ignore[unused-coroutine]

    with pytest.raises(durable.ConfigurationError, match="publish_sync"):
        wrong_form.run_sync()


def test_the_display_and_durable_show_list_published_keys(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with durable.Runtime(db_url) as runtime, runtime.activated():
        sync_job.run_sync(2, workflow_id="s")
        info = runtime.get_workflow("s")
        assert info is not None
        html = info._repr_html_()
    assert "durable-published" in html
    assert "progress" in html
    command = durable_command()
    assert command(["--url", db_url, "show", "s"]) == 0
    out = capsys.readouterr().out
    assert "published" in out
    assert "progress" in out
    assert command(["--url", db_url, "show", "s", "--json"]) == 0
    assert '"progress": "2"' in capsys.readouterr().out


def test_crash_sweep_of_a_publishing_workflow() -> None:
    crash_sweep(job, 3, setup=RAN.clear).assert_ok()


def test_another_process_reads_progress_and_survives_a_sigkill(tmp_path: Path, db_url: str) -> None:
    """A workflow in a subprocess publishes; this process reads it; a kill loses nothing."""
    effects = tmp_path / "effects"
    env = {"DURABLE_URL": db_url, "SIDE_EFFECTS": effects}
    proc = start_program("publisher", "run", "3", stderr=tmp_path / "run.err", **env)
    with durable.Runtime(db_url) as rt, rt.activated():
        assert durable.get_published_sync("job-3", "ready", timeout=120) is True
        assert durable.get_published_sync("job-3", "progress") == 100.0
        before = rt.get_workflow("job-3")
        assert before is not None
        assert before.deadline is not None  # publisher.job has timeout=3600
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        # Recorded before the kill: still there, and the resumed run adds none again.
        assert rt.store.published("job-3") == {"progress": 100.0, "ready": True}
        resumed = start_program("publisher", "run", "3", stderr=tmp_path / "again.err", **env)
        wait_for(
            lambda: (
                (i := rt.get_workflow("job-3")) is not None
                and i.status is durable.WorkflowStatus.WAITING
                and i.owner_pid == resumed.pid
            ),
            "the resumed run to wait for its event",
        )
        durable.send_event_sync("job-3", "go", "go")
        assert resumed.communicate(timeout=120)[0].strip() == "done"
        after = rt.get_workflow("job-3")
        assert after is not None
        assert after.deadline == before.deadline  # a resume keeps the deadline
        assert durable.get_published_sync("job-3", "stage") == "finished after go"
        publishes = [e.name for e in rt.store.history("job-3") if e.kind == "publish"]
        assert publishes == ["progress"] * 3 + ["ready", "stage"]
    assert read_lines(effects) == ["step 1", "step 2", "step 3"]
