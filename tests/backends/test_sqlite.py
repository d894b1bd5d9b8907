"""The SQLite backend (durable.backends._sqlite) as its users meet it: a locked file."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import durable


def test_a_locked_database_is_a_durable_error(durable_sqlite: str, monkeypatch: Any) -> None:
    import durable.backends._sqlite as sqlite_backend

    monkeypatch.setattr(sqlite_backend, "_BUSY_TIMEOUT_MS", 200)
    with durable.Runtime(durable_sqlite) as rt:
        path = durable_sqlite.split("sqlite:///", 1)[1]
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:

            @durable.durable_workflow(name="edge.locked")
            def wf() -> int:
                return 1

            with pytest.raises(durable.BackendUnavailableError, match="database is locked"):
                wf()
            assert rt.health_check().ok  # readers are not blocked by a writer (WAL)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()


async def test_a_locked_database_is_a_durable_error_on_the_async_path_too(
    durable_sqlite: str, monkeypatch: Any
) -> None:
    """Concurrent workflows meeting a locked file fail with BackendUnavailableError once:
    a group whose transaction found the store unavailable is not retried write by write."""
    import durable.backends._sqlite as sqlite_backend

    monkeypatch.setattr(sqlite_backend, "_BUSY_TIMEOUT_MS", 200)
    with durable.Runtime(durable_sqlite):

        @durable.step(name="edge.alocked.step")
        async def step(i: int) -> int:
            return i

        @durable.durable_workflow(name="edge.alocked")
        async def wf(i: int) -> int:
            return await step(i)

        assert await wf(-1) == -1
        path = durable_sqlite.split("sqlite:///", 1)[1]
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            outcomes = await asyncio.gather(*(wf(i) for i in range(20)), return_exceptions=True)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert {type(o) for o in outcomes} == {durable.BackendUnavailableError}
        assert all("database is locked" in str(o) for o in outcomes)
        assert await asyncio.gather(*(wf(i) for i in range(20))) == list(range(20))


def test_a_new_file_another_process_is_writing_to_opens_once_it_lets_go(
    tmp_path: Path,
) -> None:
    # Several workers opening a new file at once all switch it to WAL. SQLite
    # answers the switch "locked" at once, without its busy timeout, while another
    # process writes (waiting could deadlock): the open must wait, not fail.
    path = tmp_path / "new.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sqlite3, time
                db = sqlite3.connect({str(path)!r}, isolation_level=None)
                db.execute("BEGIN IMMEDIATE")
                print("holding", flush=True)
                time.sleep(0.5)
                db.execute("COMMIT")
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    with holder, holder.stdout:
        assert holder.stdout.readline().strip() == "holding"
        with durable.Runtime(f"sqlite:///{path}") as runtime:
            assert runtime.health_check().ok
        assert holder.wait(timeout=60) == 0
