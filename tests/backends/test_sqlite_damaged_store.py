"""A damaged SQLite file, and other stores that cannot answer: one clear error everywhere.

The files are damaged for real: a valid store is written, closed, and pages
in the middle of its file are overwritten with garbage; or the file is not a
database at all. Every path (sync and async workflows, the Store API, the
command line, the health check) then says the same thing: the file is
damaged, which file, and what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import durable
from durable.backends._sqlite import explain

PAGE = 4096


@durable.step(name="damaged.make")
def make(i: int) -> bytes:
    return os.urandom(600)  # incompressible: the rows fill many pages


@durable.durable_workflow(name="damaged.job")
def job(i: int) -> int:
    make(i)
    return i


@durable.durable_workflow(name="damaged.ajob")
async def ajob(i: int) -> int:
    await asyncio.sleep(0)
    return i


def damaged_store(tmp_path: Path) -> Path:
    """A store of 300 workflows whose middle third of pages is garbage."""
    path = tmp_path / "damaged.db"
    with durable.Runtime(f"sqlite:///{path}"):
        for i in range(300):
            job(i)
    assert not Path(f"{path}-wal").exists()  # closed: everything is in the file
    pages = path.stat().st_size // PAGE
    assert pages > 30
    with path.open("r+b") as f:
        for page in range(pages // 3, 2 * pages // 3):
            f.seek(page * PAGE)
            f.write(b"\xde\xad\xbe\xef" * (PAGE // 4))
    return path


def assert_says_damaged(message: str, path: Path) -> None:
    assert "database disk image is malformed" in message
    assert f"the file {path} is damaged" in message
    assert "restore it from a copy" in message
    assert f"sqlite3 {path} .recover" in message


def test_every_path_says_a_damaged_file_is_damaged(tmp_path: Path) -> None:
    path = damaged_store(tmp_path)
    with durable.Runtime(f"sqlite:///{path}") as runtime:
        report = runtime.health_check()
        assert report.ok is False
        assert report.error is not None
        assert_says_damaged(report.error, path)

        calls = {
            "sync workflow": lambda: job(150),
            "async workflow": lambda: asyncio.run(ajob(1)),
            "async workflow, run_sync": lambda: ajob.run_sync(2),
            # Every row: the newest hundred may lie in pages that are intact.
            "Store.list_workflows": lambda: runtime.store.list_workflows(limit=None),
            "Store.history": lambda: runtime.store.history(job.id_for(150)),
        }
        for call in calls.values():
            with pytest.raises(durable.BackendUnavailableError) as info:
                call()
            assert_says_damaged(str(info.value), path)


def test_the_command_line_says_a_damaged_file_is_damaged(tmp_path: Path) -> None:
    path = damaged_store(tmp_path)
    url = f"sqlite:///{path}"

    def durable_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "durable", "--url", url, *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    health = durable_cli("health", "--json")
    assert health.returncode == 1, health.stdout
    report = json.loads(health.stdout)
    assert report["ok"] is False
    assert_says_damaged(report["error"], path)

    # Every row: the newest 50 may lie in pages that are intact.
    for args in (["list", "--limit", "1000"], ["history", job.id_for(150)]):
        done = durable_cli(*args)
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        assert done.stderr.startswith("error: ")
        assert_says_damaged(done.stderr, path)


@pytest.mark.parametrize("damage", ["text", "header"])
def test_a_file_that_is_not_a_database_says_so(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "store.db"
    if damage == "text":
        path.write_text("my precious notes\n" * 1000)
    else:  # a store whose first page (SQLite's header) was overwritten
        with durable.Runtime(f"sqlite:///{path}"):
            job(1)
        with path.open("r+b") as f:
            f.write(os.urandom(100))
    before = path.read_bytes()
    with pytest.raises(durable.BackendUnavailableError) as info:
        durable.Runtime(f"sqlite:///{path}")
    message = str(info.value)
    assert f"{path} is not a SQLite database (file is not a database)" in message
    assert "point the URL at a durable store; if this was one, the file" in message
    assert f"sqlite3 {path} .recover" in message
    assert "Is it a durable database" not in message
    assert path.read_bytes() == before


def test_a_lock_is_called_a_lock(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    with durable.Runtime(f"sqlite:///{path}"):
        job(1)
    with (
        contextlib.closing(sqlite3.connect(path, isolation_level=None)) as holder,
        contextlib.closing(sqlite3.connect(path, timeout=0, isolation_level=None)) as other,
    ):
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(sqlite3.OperationalError) as info:
            other.execute("BEGIN IMMEDIATE")
        holder.execute("ROLLBACK")
    message = explain(info.value, str(path))
    assert message.startswith("database is locked: another process (or connection) held")
    assert "durable database" not in message


def test_postgres_unreachable_says_is_the_server_running_once() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(durable.BackendUnavailableError) as info:
        durable.Runtime("postgresql://u:secret@127.0.0.1:1/db?connect_timeout=5")
    message = str(info.value)
    assert message.count("Is the server running") == 1, message
    assert message.endswith("Are the URL and credentials right?")
    assert "\n" not in message
    assert "secret" not in message
