"""SQLite checkpoints run on a background thread: seen from the files, and crash-safe.

The writers' own autocheckpoint is set far above what these tests write, so
a database file that grows while the store is open shows the thread at work.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from pathlib import Path

import pytest

import durable
from durable.backends import _checkpointer
from tests.conftest import read_lines, start_program, wait_for

MiB = 1024 * 1024
# Payloads that stay in the database: from 128 KiB they go to files beside it,
# not through the log.
BLOB = 96 * 1024


def _checkpoint_threads(path: Path) -> list[threading.Thread]:
    """This store's checkpoint threads (named after its file)."""
    return [
        t
        for t in threading.enumerate()
        if t.name.startswith("durable-checkpoint") and str(path) in t.name
    ]


def _writer(steps: int, size: int) -> durable.SyncWorkflow[[], int]:
    @durable.step(name="ck.blob")
    def blob(i: int) -> bytes:
        return os.urandom(size)

    @durable.durable_workflow(name="ck.writer")
    def writer() -> int:
        return sum(len(blob(i)) for i in range(steps))

    return writer


def test_pages_reach_the_database_file_while_the_store_is_open(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    writer = _writer(107, BLOB)  # 10 MiB, over twice the trigger
    with durable.Runtime(f"sqlite:///{path}"):
        assert writer.run_sync(workflow_id="w") == 107 * BLOB
        # The writers' autocheckpoint waits for far more pages than this:
        # only the background thread copies them into the file this soon.
        assert 100 * MiB < _checkpointer.BACKSTOP_PAGES * 4096
        wait_for(lambda: path.stat().st_size > 6 * MiB, "a background checkpoint")
        assert _checkpoint_threads(path)
    assert not any(t.is_alive() for t in _checkpoint_threads(path))
    with durable.Runtime(f"sqlite:///{path}") as runtime:
        assert runtime.store.metrics().steps == 107


def test_no_thread_for_a_store_that_writes_little(tmp_path: Path) -> None:
    path = tmp_path / "small.db"
    with durable.Runtime(f"sqlite:///{path}"):
        assert _writer(5, 100).run_sync(workflow_id="w") == 500
        assert not _checkpoint_threads(path)


@pytest.mark.slow
def test_the_log_starts_over_under_a_steady_stream_of_writes(tmp_path: Path) -> None:
    """Passive checkpoints racing the writer never let SQLite restart the log on its
    own: without the RESTART the -wal file would grow as large as all the writes."""
    path = tmp_path / "store.db"
    limit = _checkpointer.RESTART_PAGES * 4096
    writer = _writer(2 * limit // BLOB + 320, BLOB)
    with durable.Runtime(f"sqlite:///{path}"):
        writer.run_sync(workflow_id="w")
        wal = Path(f"{path}-wal").stat().st_size
        assert wal < limit * 1.5, f"the log grew to {wal / MiB:.0f} MiB"


def test_a_sigkill_during_background_checkpoints_loses_no_committed_step(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    effects = tmp_path / "effects"
    env = {"DURABLE_URL": url, "SIDE_EFFECTS": effects, "STEPS": 40}
    proc = start_program("big_steps", stderr=tmp_path / "first.err", **env)
    try:
        wait_for(lambda: len(read_lines(effects)) >= 16, "16 steps of 1 MiB")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.communicate(timeout=60)  # also closes its stdout pipe
    ran_before = [int(line) for line in read_lines(effects)]
    with durable.Runtime(url) as runtime:
        recorded = [s.position for s in runtime.list_steps("big")]
    assert recorded == list(range(1, len(recorded) + 1))
    assert len(recorded) >= 15

    proc = start_program("big_steps", stderr=tmp_path / "second.err", **env)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, (tmp_path / "second.err").read_text()
    expected = [
        hashlib.sha256(hashlib.sha256(str(i).encode()).digest() * 32_768).hexdigest()
        for i in range(40)
    ]
    assert out.split() == expected
    ran_after = [int(line) for line in read_lines(effects)][len(ran_before) :]
    # Every committed step was replayed from its record, byte for byte.
    assert ran_after == list(range(len(recorded), 40))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_checkpoints_on_a_thread_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    writer = _writer(54, BLOB)  # 5 MiB: over the trigger
    with durable.Runtime(f"sqlite:///{path}"):
        writer.run_sync(workflow_id="parent")
        assert _checkpoint_threads(path)
        pid = os.fork()
        if pid == 0:  # the child: the parent's thread did not come along
            code = 3
            try:
                writer.run_sync(workflow_id="child")
                code = 0 if _checkpoint_threads(path) else 2
            finally:
                os._exit(code)
        deadline = time.monotonic() + 60
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise AssertionError("the forked child hung")
            time.sleep(0.01)
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_restart_back_off_ends_once_the_log_started_over(tmp_path: Path) -> None:
    """A RESTART that a reader of an old snapshot held off is tried again only once as
    much again was written; once the log starts over by other means (the writers'
    backstop, a checkpoint of another program), the usual limit applies again."""
    import sqlite3

    path = tmp_path / "store.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (x BLOB)")
    conn.execute("INSERT INTO t VALUES (randomblob(100000))")
    checkpointer = _checkpointer.Checkpointer(lambda: sqlite3.connect(path), str(path))
    try:
        backed_off = 3 * _checkpointer.RESTART_PAGES  # as after a RESTART a reader held off
        checkpointer._restart_at = backed_off
        checkpointer._checkpoint(conn)  # a log far below the limit: it started over
        assert checkpointer._restart_at == _checkpointer.RESTART_PAGES
    finally:
        checkpointer.close()
        conn.close()
