"""Shared fixtures: isolated runtimes on real SQLite stores, and subprocess helpers."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import durable

pytest_plugins = ["pytester"]

PROGRAMS = Path(__file__).parent / "programs"


@pytest.fixture
def runtime(durable_runtime: durable.Runtime) -> durable.Runtime:
    """The plugin's isolated runtime, on each backend in turn."""
    return durable_runtime


@pytest.fixture(params=["sqlite-file", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A store shared by this test and the subprocesses it starts."""
    fixture = "durable_sqlite" if request.param == "sqlite-file" else "durable_postgres"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def postgres_url(durable_postgres: str) -> str:
    """An isolated PostgreSQL store, for what is specific to PostgreSQL."""
    return durable_postgres


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


def race(n: int, tmp_path: Path, **env: str | int | Path) -> list[str]:
    """Start ``n`` six_steps processes at once; their outputs once all have finished."""
    procs = [
        start_program("six_steps", "run", stderr=tmp_path / f"racer-{i}.err", **env)
        for i in range(n)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * n
    return outputs


def wait_for(predicate: object, what: str, timeout: float = 60.0) -> None:
    """Poll until ``predicate()`` is true (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


async def loop_ticks_while_locked(
    postgres_url: str, table: str, then: Callable[[], object] = lambda: None
) -> list[float]:
    """The event loop's ticks while another connection holds ``table`` locked for a second.

    Each tick is in seconds since the lock was taken; ``then`` runs once it
    is. For tests that a blocking read runs off the loop: it waits for the
    lock, and the loop must tick meanwhile.
    """
    import psycopg
    import sqlalchemy as sa

    url = sa.make_url(postgres_url)
    schema = url.query["schema"]
    server = url.set(query={}).render_as_string(hide_password=False)
    ticks = []
    with psycopg.connect(server) as conn:
        conn.execute(f'LOCK TABLE "{schema}".{table} IN ACCESS EXCLUSIVE MODE')
        locked = time.monotonic()
        release = threading.Timer(1.0, conn.rollback)
        release.start()
        then()
        while release.is_alive():
            await asyncio.sleep(0.01)
            ticks.append(time.monotonic() - locked)
        release.join()
    return ticks


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def durable_command() -> Callable[[list[str]], int]:
    """The ``durable`` command as installed (its console-script entry point), called in process."""
    (entry,) = importlib.metadata.entry_points(group="console_scripts", name="durable")
    command: Callable[[list[str]], int] = entry.load()
    return command
