"""Shared fixtures: isolated runtimes on real SQLite stores, and subprocess helpers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import durable

PROGRAMS = Path(__file__).parent / "programs"


@pytest.fixture(params=["sqlite-file", "sqlite-memory"])
def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[durable.Runtime]:
    """An isolated runtime, active for the test, on each kind of store."""
    if request.param == "sqlite-file":
        url = f"sqlite:///{tmp_path / 'durable.db'}"
    else:
        url = "sqlite:///:memory:"
    with durable.Runtime(url, poll_interval=0.05) as rt:
        yield rt


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A store file shared by this test and the subprocesses it starts."""
    return f"sqlite:///{tmp_path / 'shared.db'}"


@pytest.fixture
def file_runtime(db_url: str) -> Iterator[durable.Runtime]:
    with durable.Runtime(db_url, poll_interval=0.05) as rt:
        yield rt


def program_env(**extra: str | int | Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PROGRAMS), env.get("PYTHONPATH", "")])
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_program(name: str, *args: str, **env: str | int | Path) -> subprocess.CompletedProcess[str]:
    """Run tests/programs/<name>.py to completion in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, str(PROGRAMS / f"{name}.py"), *args],
        env=program_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{name} {args} failed:\n{result.stdout}\n{result.stderr}"
    return result


def start_program(
    name: str, *args: str, stderr: Path, **env: str | int | Path
) -> subprocess.Popen[str]:
    """Start tests/programs/<name>.py in the background; its stderr goes to a file."""
    with open(stderr, "w") as err:
        return subprocess.Popen(
            [sys.executable, str(PROGRAMS / f"{name}.py"), *args],
            env=program_env(**env),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )


def wait_for(predicate: object, what: str, timeout: float = 60.0) -> None:
    """Poll until ``predicate()`` is true (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []
