"""Writers of one SQLite file take turns on its lock file (``_writelock``).

The lock only orders writers; SQLite's own locking keeps the file right. So a
writer queues behind whoever holds the lock file (another thread, another
process), and one that waited ``PATIENCE`` in vain goes on to SQLite as before.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import durable
from durable.backends import _writelock
from durable.backends._writelock import WriteLock

fcntl = pytest.importorskip("fcntl", reason="the lock file needs fcntl.flock (POSIX)")


@durable.durable_workflow(name="wl.one")
def one(n: int) -> int:
    return n


def test_a_write_waits_its_turn_behind_whoever_holds_the_lock_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_writelock, "PATIENCE", 60.0)
    path = tmp_path / "store.db"
    with durable.Runtime(f"sqlite:///{path}") as runtime:
        assert one(1) == 1
        lock_file = Path(f"{path}-lock")
        assert lock_file.exists()
        # Held the way another process's writer holds it: its own open file.
        holder = os.open(lock_file, os.O_RDWR)
        fcntl.flock(holder, fcntl.LOCK_EX)
        done = threading.Event()

        def write() -> None:
            with durable.Runtime(f"sqlite:///{path}"):  # a runtime is per thread
                assert one(2) == 2
            done.set()

        writer = threading.Thread(target=write)
        try:
            writer.start()
            assert not done.wait(0.5), "the write went ahead while the lock file was held"
        finally:
            fcntl.flock(holder, fcntl.LOCK_UN)
            os.close(holder)
        assert done.wait(60)
        writer.join()
        assert runtime.store.get_workflow(one.id_for(2)).status == "success"  # type: ignore[union-attr]


def test_a_writer_that_waited_too_long_leaves_the_waiting_to_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer stopped while holding the lock file (a debugger, Ctrl-Z) does not stop the
    others: past PATIENCE they write without it, SQLite's own lock being free."""
    monkeypatch.setattr(_writelock, "PATIENCE", 0.05)
    path = tmp_path / "store.db"
    with durable.Runtime(f"sqlite:///{path}"):
        assert one(1) == 1
        holder = os.open(f"{path}-lock", os.O_RDWR)
        fcntl.flock(holder, fcntl.LOCK_EX)
        try:
            assert one(3) == 3
            assert one.run_sync(4) == 4
        finally:
            os.close(holder)


def test_each_thread_takes_its_turn_with_a_descriptor_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``flock`` belongs to an open file description: two threads sharing one would both
    get in. The second thread waits for the first, and gives up after PATIENCE."""
    monkeypatch.setattr(_writelock, "PATIENCE", 0.05)
    lock = WriteLock(str(tmp_path / "store.db"))
    try:
        mine = lock.acquire()
        assert mine >= 0
        got: list[int] = []
        other = threading.Thread(target=lambda: got.append(lock.acquire()))
        other.start()
        other.join()
        assert got == [-1]  # it did not get in while this thread held the lock
        lock.release(mine)
        other = threading.Thread(target=lambda: got.append(lock.acquire()))
        other.start()
        other.join()
        assert got[1] >= 0
        assert got[1] != mine
    finally:
        lock.close()


def test_a_memory_store_has_no_lock_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with durable.Runtime("sqlite:///:memory:"):
        assert one(5) == 5
    assert list(tmp_path.iterdir()) == []


def test_processes_sharing_a_file_queue_on_the_lock_and_lose_nothing(tmp_path: Path) -> None:
    """Four real processes run 25 workflows of 4 steps each, concurrently, on one file."""
    path = tmp_path / "store.db"
    program = f"""
import asyncio, sys
import durable

@durable.step(name="wl.add")
async def add(w: int, i: int) -> int:
    return w * 10 + i

@durable.durable_workflow(name="wl.chain")
async def chain(w: int) -> int:
    return sum([await add(w, i) for i in range(4)])

async def main(p: int) -> None:
    ws = range(p * 25, p * 25 + 25)
    assert await asyncio.gather(*(chain(w) for w in ws)) == [w * 40 + 6 for w in ws]

with durable.Runtime({f"sqlite:///{path}"!r}):
    asyncio.run(main(int(sys.argv[1])))
"""
    with durable.Runtime(f"sqlite:///{path}"):
        pass  # the schema, before the processes race to open the store
    procs = [
        subprocess.Popen([sys.executable, "-c", program, str(p)], stderr=subprocess.PIPE)
        for p in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    with durable.Store.open(f"sqlite:///{path}") as store:
        assert store.metrics().steps == 400
        finished = store.list_workflows(status="success")
        assert len(finished) == 100


def test_a_forked_child_does_not_keep_its_dead_parents_turn(tmp_path: Path) -> None:
    """flock belongs to an open file description, which a forked child shares: a child
    living on must not keep the lock its SIGKILLed parent held."""
    program = """
import os, signal, sys
from durable.backends._writelock import WriteLock

lock = WriteLock(sys.argv[1])
assert lock.acquire() >= 0
ready_r, ready_w = os.pipe()
child = os.fork()
if child == 0:
    os.write(ready_w, b"x")  # after the fork's handlers ran
    os.read(sys.stdin.fileno(), 1)  # lives until the test is done
    os._exit(0)
os.read(ready_r, 1)
print(child, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # dies holding its turn
"""
    database = str(tmp_path / "store.db")
    parent = subprocess.Popen(
        [sys.executable, "-c", program, database],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    child = int(parent.stdout.readline())  # type: ignore[union-attr]
    try:
        assert parent.wait(timeout=60) == -9
        probe = os.open(f"{database}-lock", os.O_RDWR)
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free, with the child alive
        finally:
            os.close(probe)
        os.kill(child, 0)  # still alive
    finally:
        parent.stdin.close()  # type: ignore[union-attr]
        parent.stdout.close()  # type: ignore[union-attr]
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, 9)


def test_after_waiting_in_vain_a_process_skips_a_busy_lock_but_takes_a_free_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A holder that stays (stopped in a debugger, say) costs PATIENCE once per
    SKIP_AFTER_PATIENCE, not at every write; a lock that is free is taken as usual."""
    monkeypatch.setattr(_writelock, "PATIENCE", 0.05)
    monkeypatch.setattr(_writelock, "SKIP_AFTER_PATIENCE", 3600.0)
    lock = WriteLock(str(tmp_path / "store.db"))
    holder = os.open(lock.path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        sleeps: list[float] = []
        real_sleep = _writelock.time.sleep
        monkeypatch.setattr(_writelock.time, "sleep", lambda s: (sleeps.append(s), real_sleep(s)))
        assert lock.acquire() == -1  # waited PATIENCE, in vain
        waited = len(sleeps)
        assert waited > 0
        assert lock.acquire() == -1  # busy still: no waiting this time
        assert len(sleeps) == waited
        fcntl.flock(holder, fcntl.LOCK_UN)
        fd = lock.acquire()  # free: taken, skip window or not
        assert fd >= 0
        lock.release(fd)
    finally:
        os.close(holder)
        lock.close()
