"""Opening a store changes nothing it then refuses, and a read-only store can still be read.

A database that holds an application's tables and no durable store is
refused, untouched (no WAL switch, no durable tables), on SQLite and in a
PostgreSQL schema alike, unless the URL says ``shared=true``. A store that
may not be written (``?mode=ro``, or a read-only file and folder) opens
read-only: it can be listed, shown and checked, and a write says why it
cannot be made.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import durable


@durable.step(name="opening.double")
def double(x: int) -> int:
    return 2 * x


@durable.durable_workflow(name="opening.job")
def job(x: int) -> int:
    return double(x) + 1


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# A database with other tables ---------------------------------------------------


@contextlib.contextmanager
def application_tables(url: str) -> Iterator[tuple[str, object]]:
    """An application's table ``orders`` where ``url`` points; yields what to compare."""
    if url.startswith("sqlite"):
        path = Path(url.split("sqlite:///", 1)[1])
        with contextlib.closing(sqlite3.connect(path)) as conn, conn:
            conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)")
            conn.execute("INSERT INTO orders (item) VALUES ('lamp')")

        def state() -> object:
            with contextlib.closing(sqlite3.connect(path)) as conn:
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            return digest(path), sorted(os.listdir(path.parent)), mode

        yield url, state
        return
    import psycopg
    import sqlalchemy as sa

    parsed = sa.make_url(url)
    schema = parsed.query["schema"]
    server = parsed.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'CREATE TABLE "{schema}".orders (id serial PRIMARY KEY, item text)')
        conn.execute(f"INSERT INTO \"{schema}\".orders (item) VALUES ('lamp')")

    def tables() -> object:
        with psycopg.connect(server) as conn:
            rows = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            ).fetchall()
        return sorted(r[0] for r in rows)

    yield url, tables


def test_a_database_with_other_tables_is_refused_untouched(db_url: str) -> None:
    with application_tables(db_url) as (url, state):
        before = state()  # type: ignore[operator]
        with pytest.raises(durable.ConfigurationError) as info:
            durable.Runtime(url)
        message = str(info.value)
        assert "holds other tables (orders) and no durable store; it was left untouched" in message
        assert "add shared=true to the URL's options" in message
        assert state() == before  # type: ignore[operator]
        if url.startswith("sqlite"):
            assert before[2] == "delete"  # type: ignore[index]  # not switched to WAL

        # Asked for: durable's tables join the application's, which stay as they were.
        with durable.Runtime(f"{url}{'&' if '?' in url else '?'}shared=true"):
            assert job(2) == 5
        with durable.Runtime(url):  # a durable store now: no option needed any more
            assert job(2) == 5
    if url.startswith("sqlite"):
        path = url.split("sqlite:///", 1)[1]
        with contextlib.closing(sqlite3.connect(path)) as conn:
            assert conn.execute("SELECT item FROM orders").fetchall() == [("lamp",)]


def test_an_empty_sqlite_file_becomes_a_store(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with durable.Runtime(f"sqlite:///{path}"):
        assert job(1) == 3


# A store that may not be written -------------------------------------------------


def _chattr(flag: str, *paths: Path) -> bool:
    try:
        done = subprocess.run(["chattr", flag, *map(str, paths)], capture_output=True, timeout=30)
    except FileNotFoundError:
        return False
    return done.returncode == 0


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` and its files read-only for this process, even as root.

    chmod does not stop root; the immutable attribute (``chattr +i``) does,
    where the file system has it. Skipped where neither works.
    """
    files = [p for p in folder.iterdir() if p.is_file()]
    if os.geteuid() != 0:
        for path in files:
            path.chmod(0o444)
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
            for path in files:
                path.chmod(0o644)
        return
    if not _chattr("+i", *files, folder):
        _chattr("-i", *files, folder)
        pytest.skip(
            "running as root where chattr +i is not available: cannot make a read-only folder"
        )
    try:
        yield
    finally:
        assert _chattr("-i", *files, folder)


@pytest.fixture
def finished_store(tmp_path: Path) -> Path:
    folder = tmp_path / "copy"
    folder.mkdir()
    path = folder / "store.db"
    with durable.Runtime(f"sqlite:///{path}"):
        assert job(20) == 41
    assert not Path(f"{path}-wal").exists()
    return path


def durable_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durable", "--url", url, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("how", ["mode=ro", "read-only folder"])
def test_a_read_only_store_can_be_listed_shown_and_checked(finished_store: Path, how: str) -> None:
    path = finished_store
    url = f"sqlite:///{path}" + ("?mode=ro" if how == "mode=ro" else "")
    workflow_id = job.id_for(20)
    before = digest(path)
    guard = read_only(path.parent) if how == "read-only folder" else contextlib.nullcontext()
    with guard:
        store = durable.Store.open(url)
        try:
            assert [w.workflow_id for w in store.list_workflows()] == [workflow_id]
            info = store.get_workflow(workflow_id)
            assert info is not None
            assert info.result() == 41
            assert [s.name for s in store.history(workflow_id)] == ["opening.double"]
            with durable.Runtime(url) as runtime:
                assert runtime.health_check().ok
                with pytest.raises(durable.BackendUnavailableError) as info_:
                    job(21)
            message = str(info_.value)
            assert "the store is open read-only" in message
            why = "its URL says mode=ro" if how == "mode=ro" else "may not write its file"
            assert why in message
        finally:
            store.close()

        listed = durable_cli(url, "list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [w["workflow_id"] for w in json.loads(listed.stdout)] == [workflow_id]
        for command in ("show", "history"):
            done = durable_cli(url, command, workflow_id, "--json")
            assert done.returncode == 0, done.stderr
            assert "opening.double" in done.stdout
        health = durable_cli(url, "health")
        assert health.returncode == 0, health.stdout + health.stderr
    assert digest(path) == before


def test_read_only_opens_only_an_existing_current_store(tmp_path: Path) -> None:
    with pytest.raises(durable.ConfigurationError, match="mode=ro opens an existing store only"):
        durable.Runtime(f"sqlite:///{tmp_path}/missing.db?mode=ro")
    assert os.listdir(tmp_path) == []
    app = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(app)) as conn, conn:
        conn.execute("CREATE TABLE orders (id INTEGER)")
    with pytest.raises(durable.ConfigurationError, match=r"no durable store in .*opened read-only"):
        durable.Runtime(f"sqlite:///{app}?mode=ro")


def test_read_only_refuses_a_store_that_needs_migrating(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    dump = (Path(__file__).parents[1] / "data" / "schema_v1.sql").read_text()
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.executescript(dump)
    before = digest(path)
    with pytest.raises(durable.ConfigurationError) as info:
        durable.Runtime(f"sqlite:///{path}?mode=ro")
    assert "has durable schema version 1, older than this durable-sdk's" in str(info.value)
    assert "opening it once with write access" in str(info.value)
    assert digest(path) == before


def test_a_worker_refuses_a_read_only_store_at_start(finished_store: Path) -> None:
    # It used to log "cannot reach the store (... read-only ...); retrying"
    # for ever, and until_idle=True never returned.
    with durable.Runtime(f"sqlite:///{finished_store}?mode=ro") as runtime:
        worker = durable.Worker(runtime=runtime, queues=["default"])
        with pytest.raises(durable.ConfigurationError, match="open read-only"):
            worker.run_sync(until_idle=True, handle_signals=False)


def test_processes_creating_one_new_store_at_once_all_open_it(tmp_path: Path) -> None:
    # One of them used to find durable's tables, just created by another,
    # between its version check and its look for other tables, and refuse the
    # store as "a database that holds other tables".
    opener = "import sys, durable; durable.Runtime(sys.argv[1]).close()"
    for attempt in range(4):
        url = f"sqlite:///{tmp_path / f'new-{attempt}.db'}"
        procs = [
            subprocess.Popen([sys.executable, "-c", opener, url], stderr=subprocess.PIPE, text=True)
            for _ in range(6)
        ]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 6, errors


def test_opening_a_sqlite_store_loads_nothing_of_postgresql(tmp_path: Path) -> None:
    # Partial indexes name their dialect only when a schema is made: naming both
    # in the schema module imported SQLAlchemy's PostgreSQL dialect (and its
    # drivers' modules) into every SQLite process, a third of opening's time.
    code = (
        "import sys, durable\n"
        f"durable.Runtime('sqlite:///{tmp_path / 'a.db'}').close()\n"
        f"durable.Runtime('sqlite:///{tmp_path / 'a.db'}').close()\n"
        "print([m for m in sys.modules if 'postgresql' in m or m.startswith('psycopg')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
