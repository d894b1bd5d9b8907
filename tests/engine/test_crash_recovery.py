"""Real crashes: a subprocess is SIGKILLed mid-workflow and a fresh process resumes.

What ran is proved by the side-effect file each step appends to, not by our
own tables.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import durable
from tests.conftest import (
    PROGRAMS,
    program_env,
    race,
    read_lines,
    run_program,
    start_program,
    wait_for,
)

EXPECTED = sum(i * i for i in range(1, 7))


def crash_at(tmp_path: Path, db_url: str, **where: int) -> Path:
    """Run six_steps in a subprocess, SIGKILL it at ``where``; return the side-effect file."""
    effects, paused = tmp_path / "effects.txt", tmp_path / "paused"
    proc = start_program(
        "six_steps",
        "run",
        stderr=tmp_path / "crashed.err",
        DURABLE_URL=db_url,
        SIDE_EFFECTS=effects,
        PAUSED_FILE=paused,
        **where,
    )
    wait_for(lambda: paused.exists() or proc.poll() is not None, "the pipeline to pause")
    assert proc.poll() is None, (tmp_path / "crashed.err").read_text()
    proc.kill()
    proc.communicate()
    assert proc.returncode == -9
    return effects


def test_sigkill_after_step_3_committed_resumes_without_redoing_steps(
    tmp_path: Path, db_url: str
) -> None:
    effects = crash_at(tmp_path, db_url, PAUSE_AFTER=3)
    assert read_lines(effects) == ["start 1", "done 1", "start 2", "done 2", "start 3", "done 3"]

    resumed = run_program("six_steps", "run", DURABLE_URL=db_url, SIDE_EFFECTS=effects)

    assert json.loads(resumed.stdout) == EXPECTED
    assert "resuming after its owner died" in resumed.stderr
    counts = Counter(read_lines(effects))
    assert all(counts[f"start {i}"] == 1 and counts[f"done {i}"] == 1 for i in range(1, 7)), counts


def test_sigkill_inside_a_step_reruns_only_that_step(tmp_path: Path, db_url: str) -> None:
    effects = crash_at(tmp_path, db_url, HANG_IN=4)
    assert read_lines(effects)[-1] == "start 4"

    resumed = run_program("six_steps", "run", DURABLE_URL=db_url, SIDE_EFFECTS=effects)

    assert json.loads(resumed.stdout) == EXPECTED
    counts = Counter(read_lines(effects))
    assert counts["start 4"] == 2  # at-least-once: its record never committed
    assert counts["done 4"] == 1
    for i in (1, 2, 3, 5, 6):
        assert counts[f"start {i}"] == 1, counts


def test_completed_workflow_returns_recorded_result_in_a_new_process(
    tmp_path: Path, db_url: str
) -> None:
    effects = tmp_path / "effects.txt"
    first = run_program("six_steps", "run", DURABLE_URL=db_url, SIDE_EFFECTS=effects)
    lines = read_lines(effects)
    again = run_program("six_steps", "run", DURABLE_URL=db_url, SIDE_EFFECTS=effects)
    assert json.loads(first.stdout) == json.loads(again.stdout) == EXPECTED
    assert read_lines(effects) == lines  # nothing ran


def test_recover_resumes_crashed_workflows_in_a_fresh_process(tmp_path: Path, db_url: str) -> None:
    effects = crash_at(tmp_path, db_url, PAUSE_AFTER=2)

    recovered = run_program("six_steps", "recover", DURABLE_URL=db_url, SIDE_EFFECTS=effects)

    assert json.loads(recovered.stdout) == {"resumed": ["six"], "unknown": {}}
    counts = Counter(read_lines(effects))
    assert [counts[f"done {i}"] for i in range(1, 7)] == [1] * 6
    with durable.Runtime(db_url) as rt:
        info = rt.get_workflow("six")
        assert info is not None
        assert info.status is durable.WorkflowStatus.SUCCESS
        assert info.attempts == 2


def test_recover_reports_workflows_no_imported_code_registers(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    crash_at(tmp_path, db_url, PAUSE_AFTER=1)
    # This process never imported the program, so "six_steps" is unknown here.
    with durable.Runtime(db_url) as rt:
        report = rt.recover_sync()
        assert report.unknown == {"six": "six_steps"}
        assert report.resumed == []
        assert rt.get_workflow("six").status is durable.WorkflowStatus.RUNNING  # type: ignore[union-attr]
    assert "no imported code registers a workflow named 'six_steps'" in caplog.text


def test_a_second_process_waits_for_the_live_owner_and_gets_its_result(
    tmp_path: Path, db_url: str
) -> None:
    effects, paused, release = tmp_path / "effects.txt", tmp_path / "paused", tmp_path / "go"
    owner = start_program(
        "six_steps",
        "run",
        stderr=tmp_path / "owner.err",
        DURABLE_URL=db_url,
        SIDE_EFFECTS=effects,
        PAUSED_FILE=paused,
        RELEASE_FILE=release,
        PAUSE_AFTER=3,
    )
    wait_for(paused.exists, "the owner to pause after step 3")
    waiter_err = tmp_path / "waiter.err"
    waiter = start_program(
        "six_steps", "run", stderr=waiter_err, DURABLE_URL=db_url, SIDE_EFFECTS=effects
    )
    wait_for(lambda: "waiting for its result" in waiter_err.read_text(), "the waiter to wait")
    assert waiter.poll() is None

    release.touch()

    owner_out, _ = owner.communicate(timeout=60)
    waiter_out, _ = waiter.communicate(timeout=60)
    assert owner.returncode == waiter.returncode == 0
    assert json.loads(owner_out) == json.loads(waiter_out) == EXPECTED
    counts = Counter(read_lines(effects))
    assert [counts[f"start {i}"] for i in range(1, 7)] == [1] * 6


def test_racing_processes_on_one_new_workflow_run_each_step_once(
    tmp_path: Path, db_url: str
) -> None:
    effects = tmp_path / "effects.txt"
    outputs = race(4, tmp_path, DURABLE_URL=db_url, SIDE_EFFECTS=effects)
    assert {json.loads(out) for out in outputs} == {EXPECTED}
    counts = Counter(read_lines(effects))
    assert [counts[f"done {i}"] for i in range(1, 7)] == [1] * 6, counts


def test_a_workflow_abandoned_by_a_live_process_resumes_once_its_lease_ends(
    tmp_path: Path, db_url: str
) -> None:
    effects, paused = tmp_path / "effects.txt", tmp_path / "paused"
    abandoner = start_program(
        "six_steps",
        "abandon",
        stderr=tmp_path / "abandoner.err",
        DURABLE_URL=db_url,
        SIDE_EFFECTS=effects,
        PAUSED_FILE=paused,
        SLOW_STEPS=1,
        LEASE_SECONDS=1,
    )
    try:
        wait_for(paused.exists, "the first process to give up on the workflow")
        # The first process is alive, but no longer renews the lease.
        resumed = run_program("six_steps", "run", DURABLE_URL=db_url, SIDE_EFFECTS=effects)
        assert json.loads(resumed.stdout) == EXPECTED
        assert "resuming after its owner died" in resumed.stderr
    finally:
        abandoner.kill()
        abandoner.communicate()


def test_methods_of_classes_defined_in_main_recover_like_importable_ones(
    tmp_path: Path, db_url: str
) -> None:
    # Issue 14 item 3: a worker and recover() failed with "'function' object
    # has no attribute 'run'" (the recorded instance rebuilt a copy of the
    # class, its workflow methods stripped to plain functions), or could not
    # record the instance at all (a classmethod wrapper in the class).
    env = {"DURABLE_URL": db_url, "EFFECTS": tmp_path / "effects"}
    run_program("main_methods", "enqueue", **env)
    crashed = subprocess.run(
        [sys.executable, str(PROGRAMS / "main_methods.py"), "crash"],
        env=program_env(CRASH_IN="total Shop 2", **env),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert crashed.returncode == -signal.SIGKILL
    outcome = json.loads(run_program("main_methods", "recover", **env).stdout)
    assert outcome == {
        "worker_failed": {},
        "recover_failed": {},
        "price-1": "success",
        "tally-3": "success",
        "total-2": "success",
        "wrappers": [True, True, True],
        "results": [7, 300, 20],
    }
    effects = read_lines(tmp_path / "effects")
    assert effects[0] == "total Shop 2"  # the killed run
    assert sorted(effects[1:]) == ["price 7 1", "tally Till 3", "total Shop 2"]


def test_unpickling_a_recorded_call_leaves_the_live_class_alone(
    tmp_path: Path, db_url: str
) -> None:
    # In the process that defines the class (a notebook enqueuing and running
    # a worker), unpickling the call used to overwrite the class's methods
    # with undecorated copies: later calls ran unrecorded.
    env = {"DURABLE_URL": db_url, "EFFECTS": tmp_path / "effects"}
    outcome = json.loads(run_program("main_methods", "same", **env).stdout)
    assert outcome == {
        "worker_failed": {},
        "recover_failed": {},
        "price-same": "success",
        "wrappers": [True, True, True],
        "after": "success",  # recorded: the live method is still the workflow
    }


WRITER = """
import dataclasses, sys, durable

@dataclasses.dataclass
class Point:
    x: int
    y: int

@durable.step
def make() -> Point:
    return Point(1, 2)

@durable.durable_workflow
def job() -> Point:
    return make()

durable.configure(sys.argv[1])
print(job.run_sync(workflow_id="points"))
"""

READER = """
import dataclasses, sys, durable

@dataclasses.dataclass
class Point:  # another script's class of the same name
    label: str

@durable.durable_workflow
def unrelated() -> None:
    pass  # decorated code here too: this script's namespace is known to durable

store = durable.Store.open(sys.argv[1])
value = store.get_workflow("points").result()
print(type(value).__name__, value.x, value.y, isinstance(value, Point))
"""


def test_a_reader_with_a_class_of_the_same_name_gets_the_recorded_class(
    tmp_path: Path,
) -> None:
    # The reader's own __main__.Point used to be taken for the recorded one.
    url = f"sqlite:///{tmp_path / 'points.db'}"
    for name, text in (("writer.py", WRITER), ("reader.py", READER)):
        (tmp_path / name).write_text(text)
    wrote = subprocess.run(
        [sys.executable, str(tmp_path / "writer.py"), url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert wrote.returncode == 0, wrote.stderr
    read = subprocess.run(
        [sys.executable, str(tmp_path / "reader.py"), url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert read.returncode == 0, read.stderr
    assert read.stdout.split() == ["Point", "1", "2", "False"]
