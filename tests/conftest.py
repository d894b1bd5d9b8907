"""Shared fixtures: isolated runtimes on real SQLite stores, and subprocess helpers."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import durable

PROGRAMS = Path(__file__).parent / "programs"

POSTGRES_ENV = "DURABLE_TEST_POSTGRES_URL"
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@functools.cache
def postgres_server() -> tuple[str | None, str]:
    """The PostgreSQL server for tests, or None with the reason it is not usable."""
    import psycopg

    url = os.environ.get(POSTGRES_ENV, LOCAL_POSTGRES)
    try:
        conninfo = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(conninfo, connect_timeout=3):
            return url, ""
    except psycopg.Error as exc:
        return None, f"PostgreSQL at {url} is not reachable ({str(exc).strip()})"


def isolated_postgres_url() -> Iterator[str]:
    """A URL with a fresh schema of its own, dropped afterwards."""
    import psycopg

    url, reason = postgres_server()
    if url is None:
        message = (
            f"{reason}. Set {POSTGRES_ENV}=postgresql://user@host:5432/db to run the "
            "PostgreSQL tests."
        )
        if os.environ.get("CI") or os.environ.get("DURABLE_REQUIRE_POSTGRES"):
            pytest.fail(message)
        pytest.skip(message)
    schema = f"durable_test_{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in url else "?"
    yield f"{url}{sep}schema={schema}&pool_min=0"
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def store_url(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "postgresql":
        yield from isolated_postgres_url()
    elif kind == "sqlite-file":
        yield f"sqlite:///{tmp_path / 'durable.db'}"
    else:
        yield "sqlite:///:memory:"


@pytest.fixture(params=["sqlite-file", "sqlite-memory", "postgresql"])
def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[durable.Runtime]:
    """An isolated runtime, active for the test, on each kind of store."""
    for url in store_url(request.param, tmp_path):
        with durable.Runtime(url, poll_interval=0.05) as rt:
            yield rt


@pytest.fixture(params=["sqlite-file", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store shared by this test and the subprocesses it starts."""
    yield from store_url(request.param, tmp_path)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An isolated PostgreSQL store, for what is specific to PostgreSQL."""
    yield from isolated_postgres_url()


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
