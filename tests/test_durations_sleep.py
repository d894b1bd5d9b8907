"""Sleeps recorded by older versions of durable._sleep (no duration check): they replay."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import durable
import durable._sleep
from durable._durations import LATEST
from tests.test_durations import INF, NAN, sleeper, within


def test_an_impossible_deadline_recorded_before_this_check_suspends_instead_of_raising(
    runtime: durable.Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Older versions recorded sleep(1e20, suspend=True), then raised OverflowError for ever."""
    # What an older version did: no check, the deadline recorded as computed.
    monkeypatch.setattr(durable._sleep, "checked_duration", lambda value, name: value)
    monkeypatch.setattr(
        durable._sleep, "deadline_after", lambda now, seconds, *_, **__: now + seconds
    )
    with pytest.raises(durable.WorkflowSuspendedError, match=r"e\+20 \(Unix time\)"):
        within(30, lambda: sleeper.run_sync(1e20, True, workflow_id="old"))
    with pytest.raises(durable.WorkflowSuspendedError, match="inf"):
        within(30, lambda: sleeper.run_sync(INF, True, workflow_id="older"))
    monkeypatch.undo()
    if "memory" not in runtime.url:  # the command line shows such a row too
        for args in (["show", "old", "--json"], ["show", "older"], ["list", "--json"]):
            done = subprocess.run(
                [sys.executable, "-m", "durable", "--url", runtime.url, *args],
                capture_output=True,
                text=True,
                timeout=60,
                env={**os.environ, "COLUMNS": "200"},
            )
            assert done.returncode == 0, done
            assert "Traceback" not in done.stderr
    for workflow_id, value in (("old", 1e20), ("older", INF)):
        info = runtime.store.get_workflow(workflow_id)
        assert info is not None
        assert info.status.value == "waiting"
        # Every later call: a clear suspension until the latest time durable
        # shows, not an OverflowError; recover() passes it by; cancel ends it.
        for _ in range(2):
            with pytest.raises(durable.WorkflowSuspendedError, match="9999-12-31") as info_:
                within(30, lambda: sleeper.run_sync(value, True, workflow_id=workflow_id))  # noqa: B023
            assert info_.value.wake_at == LATEST  # type: ignore[attr-defined]
    report = within(30, runtime.recover_sync)
    assert report.resumed == []
    assert not report.failed
    assert runtime.store.cancel("old")
    info = runtime.store.get_workflow("old")
    assert info is not None
    assert info.status.value == "cancelled"


def test_a_nan_deadline_recorded_before_this_check_replays_as_passed(
    runtime: durable.Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older version ended sleep(nan) at once; the replay does the same, deterministically."""
    monkeypatch.setattr(durable._sleep, "checked_duration", lambda value, name: value)
    monkeypatch.setattr(
        durable._sleep, "deadline_after", lambda now, seconds, *_, **__: now + seconds
    )
    assert within(30, lambda: sleeper.run_sync(NAN, workflow_id="nan")) == "woke"
    monkeypatch.undo()
    assert within(30, lambda: sleeper.run_sync(NAN, workflow_id="nan")) == "woke"
