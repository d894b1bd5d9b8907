"""Large payloads of a SQLite store kept in files beside it (backends/_payload_files.py)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

import durable
import durable.testing
from durable.backends import Parts
from durable.backends._payload_files import (
    EXTERNAL_BYTES,
    ORPHAN_SECONDS,
    RESWEEP_SECONDS,
    PayloadFiles,
)

MIB = 1024 * 1024
runs: list[int] = []


def _value(i: int) -> bytes:
    return random.Random(i).randbytes(MIB)  # incompressible, as most large results are


def _digest(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()[:12]


@durable.step
def big(i: int) -> bytes:
    runs.append(i)
    return _value(i)


@durable.step
def small(i: int) -> int:
    return i


@durable.durable_workflow(name="payload_files.bigs")
def bigs(n: int) -> list[str]:
    small(0)
    durable.snapshot("start")
    found = [_digest(big(i)) for i in range(n)]
    durable.snapshot("done")
    return found


def _expected(n: int) -> list[str]:
    return [_digest(_value(i)) for i in range(n)]


def _files(db: Path) -> list[Path]:
    """The payload files of rows that stand (not those of deleted rows, waiting to go)."""
    folder = Path(f"{db}-payloads")
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.parent not in (folder, folder / "gone")
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    runs.clear()
    return tmp_path / "jobs.db"


def test_large_results_are_files_and_replay_from_them(db: Path) -> None:
    with durable.Runtime(f"sqlite:///{db}") as rt:
        assert bigs.run_sync(3, workflow_id="w") == _expected(3)
        assert len(_files(db)) == 3  # the small step's result stays in the database
        assert bigs.run_sync(3, workflow_id="w") == _expected(3)
        assert runs == [0, 1, 2]  # replayed from the files, not run again
        sizes = [e.payload_bytes for e in rt.store.history("w") if e.name.endswith("big")]
        assert sorted(sizes) == sorted(p.stat().st_size for p in _files(db))
        assert rt.store.metrics().storage_bytes > 3 * MIB
    payload = sum(p.stat().st_size for p in _files(db))
    disk = payload + sum(p.stat().st_size for p in db.parent.glob("jobs.db*") if p.is_file())
    assert disk / payload < 1.05  # the database holds references, not a copy


mapped: list[int] = []


def _mapped_payload_files() -> int:
    """How many payload files this process has mapped (-1 where /proc cannot tell)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return -1
    return len({line.split()[-1] for line in maps.splitlines() if "-payloads" in line})


@durable.step
def last(n: int) -> int:
    mapped.append(_mapped_payload_files())
    return n


@durable.durable_workflow(name="payload_files.discarding")
def discarding(n: int) -> int:
    for i in range(n):
        big(i)  # each result dropped at once, as a pipeline drops what it has used
    return last(n)


def test_a_resume_holds_one_large_result_at_a_time(db: Path) -> None:
    """Each replayed step reads its own file: a resume never holds them all at once."""
    with durable.Runtime(f"sqlite:///{db}") as rt:
        durable.testing.CrashInjector(rt).arm("before_step", step="last")
        with pytest.raises(durable.testing.SimulatedCrash):
            discarding.run_sync(8, workflow_id="w")
        assert len(_files(db)) == 8
        runs.clear()
        tracemalloc.start()
        try:
            assert discarding.run_sync(8, workflow_id="w") == 8
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert runs == []  # all eight replayed from their files
        # One result read and its value decoded, with room to spare: all eight
        # read up front would be 8 MiB.
        assert peak < 4 * MIB, peak
        # Each file was mapped while its step replayed, and let go after.
        assert mapped[-1] in (0, -1), mapped


@pytest.mark.parametrize("damage", ["missing", "cut", "emptied", "edited"])
def test_a_replay_from_a_damaged_file_is_refused_by_name(db: Path, damage: str) -> None:
    """A resume reads each file as its step replays: damage is named there, not unpickled."""
    key = "k" * 32
    with durable.Runtime(f"sqlite:///{db}", secret_key=key) as rt:
        durable.testing.CrashInjector(rt).arm("before_step", step="last")
        with pytest.raises(durable.testing.SimulatedCrash):
            discarding.run_sync(2, workflow_id="w")
    first = min(_files(db), key=lambda p: p.stat().st_mtime_ns)
    data = first.read_bytes()
    if damage == "missing":
        first.unlink()
    else:
        edited = data[:-1] + bytes([data[-1] ^ 1])
        first.write_bytes({"cut": data[:1000], "emptied": b"", "edited": edited}[damage])
    expected = {
        "missing": "is missing",
        "cut": "holds 1000 bytes",
        "emptied": "holds 0 bytes",
        "edited": "does not match",
    }[damage]
    with durable.Runtime(f"sqlite:///{db}", secret_key=key) as rt:
        with pytest.raises(durable.PayloadIntegrityError, match=expected):
            discarding.run_sync(2, workflow_id="w")
        info = rt.get_workflow("w")
    assert runs == [0, 1]  # refused, never run again in its place
    if damage != "edited":  # an edit shows only to the signature, as its step replays
        # Missing or cut, the file stops the resume before the body runs (no step
        # call for it to catch), and the workflow stays to resume once restored.
        assert info is not None
        assert info.status is durable.WorkflowStatus.RUNNING
        first.write_bytes(data)  # the folder restored
        with durable.Runtime(f"sqlite:///{db}", secret_key=key):
            assert discarding.run_sync(2, workflow_id="w") == 2
        assert runs == [0, 1]


def test_a_step_result_and_the_step_list_read_no_other_file(db: Path) -> None:
    with durable.Runtime(f"sqlite:///{db}") as rt:
        bigs.run_sync(3, workflow_id="w")
        first, second, third = sorted(_files(db), key=lambda p: p.stat().st_mtime_ns)
        first.unlink()
        third.unlink()
        big_steps = [s for s in rt.list_steps("w") if s.name.endswith("big")]
        assert [s.payload_bytes for s in big_steps] == [second.stat().st_size] * 3
        assert _digest(rt.store.step_result("w", big_steps[1].position)) == _expected(2)[1]
        with pytest.raises(durable.PayloadIntegrityError, match="is missing"):
            rt.store.step_result("w", big_steps[0].position)


def test_a_result_below_the_threshold_stays_in_the_database(db: Path) -> None:
    @durable.step
    def medium() -> bytes:
        return b"x" * (EXTERNAL_BYTES // 2)

    @durable.durable_workflow(name="payload_files.medium")
    def one() -> int:
        return len(medium())

    with durable.Runtime(f"sqlite:///{db}"):
        assert one.run_sync() == EXTERNAL_BYTES // 2
    assert _files(db) == []


def test_a_store_in_memory_keeps_everything_inline(tmp_path: Path) -> None:
    runs.clear()
    os.chdir(tmp_path)
    with durable.Runtime("sqlite:///:memory:"):
        assert bigs.run_sync(1) == _expected(1)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("durability", ["full", "batched"])
def test_every_durability_mode_keeps_them(db: Path, durability: str) -> None:
    with durable.Runtime(f"sqlite:///{db}", durability=durability):
        assert bigs.run_sync(2) == _expected(2)
    with durable.Runtime(f"sqlite:///{db}?mode=ro") as rt:
        [info] = rt.store.list_workflows()
        assert info.result() == _expected(2)
        assert len(_files(db)) == 2


def test_cleanup_removes_the_files_of_the_workflows_it_deletes(db: Path) -> None:
    with durable.Runtime(f"sqlite:///{db}") as rt:
        bigs.run_sync(2, workflow_id="old")
        bigs.run_sync(1, workflow_id="new")
        assert rt.store.cleanup(older_than=0, dry_run=True).workflows == 2
        assert len(_files(db)) == 3
        assert rt.store.cleanup(older_than=0, name="no such workflow").workflows == 0
        assert len(_files(db)) == 3
        rt.store.cleanup(older_than=0)
    assert _files(db) == []


def test_restore_keeps_files_until_a_prune_and_a_fork_has_its_own(db: Path) -> None:
    with durable.Runtime(f"sqlite:///{db}") as rt:
        bigs.run_sync(2, workflow_id="origin")
        rt.store.fork("origin", "done", "copy")
        assert len(_files(db)) == 4  # the fork's records have files of their own
        rt.store.cleanup(older_than=0, name="payload_files.bigs", status="success")
        assert rt.store.get_workflow("copy") is not None  # not finished: kept
        assert len(_files(db)) == 2
        assert bigs.run_sync(2, workflow_id="copy") == _expected(2)
        assert runs == [0, 1]  # the fork replayed its copies

        bigs.run_sync(2, workflow_id="again")
        rt.store.restore("again", "start")
        assert len(_files(db)) == 4  # superseded records keep their files, until a prune
        rt.store.prune()
        assert len(_files(db)) == 2
        assert bigs.run_sync(2, workflow_id="again") == _expected(2)
        assert len(_files(db)) == 4


def test_a_missing_or_cut_file_is_named(db: Path) -> None:
    with durable.Runtime(f"sqlite:///{db}"):
        bigs.run_sync(2, workflow_id="w")
    first, second = _files(db)
    kept = first.read_bytes()
    first.unlink()
    with durable.Runtime(f"sqlite:///{db}") as rt:
        # A fork reads the records it copies.
        with pytest.raises(durable.PayloadIntegrityError, match="is missing") as missing:
            rt.store.fork("w", "done", "copy")
        first.write_bytes(kept)
        second.write_bytes(second.read_bytes()[:1000])
        with pytest.raises(durable.PayloadIntegrityError, match="holds 1000 bytes") as cut:
            rt.store.fork("w", "done", "copy")
    for caught in (missing, cut):
        assert "jobs.db-payloads" in str(caught.value)
        assert "Restore the folder" in str(caught.value)


@pytest.mark.parametrize("durability", ["full", "normal", "batched"])
def test_a_payload_in_parts_is_written_as_its_bytes(db: Path, durability: str) -> None:
    """Parts are written one after the other, never joined: more than one writev takes."""
    pieces = [random.Random(i).randbytes(i % 7 * 100) for i in range(3000)]  # empty ones too
    whole = b"".join(pieces)
    files = PayloadFiles(str(db), durability)
    try:
        stored = files.store(Parts(pieces))
        [path] = _files(db)
        assert path.read_bytes() == whole
        assert files.load(stored) == whole
        assert files.check([stored]) == []
        assert files.load(files.store(whole)) == whole  # one buffer, as before
    finally:
        files.close()


def test_a_signed_large_result_is_verified_from_its_file_and_refused_once_altered(
    db: Path,
) -> None:
    """A result sealed and written in parts reads back verified; an edited byte is caught."""
    key = "k" * 32
    with durable.Runtime(f"sqlite:///{db}", secret_key=key) as rt:
        assert bigs.run_sync(2, workflow_id="w") == _expected(2)
        rt.store.fork("w", "done", "copy")  # opens, verifies and re-signs every record
        assert bigs.run_sync(2, workflow_id="copy") == _expected(2)
        assert runs == [0, 1]
    first = min(_files(db), key=lambda p: p.stat().st_mtime_ns)
    data = bytearray(first.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size: only the signature can tell
    first.write_bytes(bytes(data))
    with (
        durable.Runtime(f"sqlite:///{db}", secret_key=key) as rt,
        pytest.raises(durable.PayloadIntegrityError, match="does not match"),
    ):
        rt.store.fork("w", "done", "again")


def test_orphan_files_are_swept_by_cleanup_once_an_hour_old(db: Path) -> None:
    with durable.Runtime(f"sqlite:///{db}") as rt:
        bigs.run_sync(1, workflow_id="w")
        [standing] = _files(db)
        folder = standing.parent
        young, old = folder / ("a" * 32), folder / ("b" * 32)
        young.write_bytes(b"left by a write that lost its race")
        old.write_bytes(b"left by a crash before the commit")
        stale = time.time() - ORPHAN_SECONDS - 60
        os.utime(old, (stale, stale))
        rt.store.cleanup(older_than=3600)  # deletes no workflow
        assert set(_files(db)) == {standing, young}


def test_cleanup_reads_the_references_only_when_a_file_is_old_enough_to_be_an_orphan(
    db: Path,
) -> None:
    """Reading every row's reference scans the steps table: done only when it may find one."""
    with durable.Runtime(f"sqlite:///{db}") as rt:
        bigs.run_sync(1, workflow_id="w")
        [standing] = _files(db)
        files = PayloadFiles(str(db), "normal")
        assert not files.has_old_files()
        gone = Path(f"{db}-payloads") / "gone"
        gone.mkdir()
        waiting = gone / ("c" * 32)  # left by a process that exited within the wait
        waiting.write_bytes(b"a deleted row's file")
        stale = time.time() - 3600
        os.utime(waiting, (stale, stale))
        rt.store.cleanup(older_than=3600)
        assert not waiting.exists()  # swept without reading a reference
        assert _files(db) == [standing]
        # Old, and referenced by its row: stays; old and referenced by none: goes.
        very_old = time.time() - ORPHAN_SECONDS - 60
        os.utime(standing, (very_old, very_old))
        orphan = standing.parent / ("d" * 32)
        orphan.write_bytes(b"left by a crash before the commit")
        os.utime(orphan, (very_old, very_old))
        assert files.has_old_files()
        rt.store.cleanup(older_than=3600)
        assert _files(db) == [standing]
        assert bigs.run_sync(1, workflow_id="w") == _expected(1)
        # Judged at that look: not again until a day has passed, or a file comes of age.
        assert not files.has_old_files()
        assert files.has_old_files(now=time.time() + RESWEEP_SECONDS)
        young = standing.parent / ("e" * 32)
        young.write_bytes(b"a write whose commit may be on its way")
        assert not files.has_old_files()
        assert files.has_old_files(now=time.time() + ORPHAN_SECONDS + 1)


KILLED = """
import os, signal, sys, durable
sys.path.insert(0, {tests!r})
from backends.test_payload_files import bigs, runs

@durable.step
def after(n: int) -> int:
    if os.environ.get("KILL") == "1":
        os.kill(os.getpid(), signal.SIGKILL)
    return n

@durable.durable_workflow(name="payload_files.killed")
def killed() -> list[str]:
    found = bigs(2)
    after(1)
    return found

with durable.Runtime({url!r}):
    print(killed.run_sync(workflow_id="k"), runs)
"""


def test_a_result_acknowledged_before_a_kill_is_read_back(db: Path) -> None:
    code = KILLED.format(tests=str(Path(__file__).parents[1]), url=f"sqlite:///{db}")
    env = {**os.environ, "KILL": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    killed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    env["KILL"] = "0"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{_expected(2)} []"  # nothing ran again


def test_a_crash_at_any_point_resumes_with_the_same_results() -> None:
    # Crash points include after a large result's file is written and before
    # its record commits: the step runs again, into a new file.
    report = durable.testing.crash_sweep(bigs, 2, setup=runs.clear)
    report.assert_ok()
    assert len(report.outcomes) >= 8


def test_a_relative_store_stays_put_when_the_working_folder_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs.clear()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    with durable.Runtime("sqlite:///jobs.db") as rt:
        monkeypatch.chdir(tmp_path / "elsewhere")
        # A new thread opens a connection of its own, after the chdir.
        found: list[list[str]] = []

        def run() -> None:
            with rt.activated():
                found.append(bigs.run_sync(1, workflow_id="t"))

        worker = threading.Thread(target=run)
        worker.start()
        worker.join()
        assert found == [_expected(1)]
    assert len(_files(tmp_path / "jobs.db")) == 1
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_reference_that_durable_never_writes_is_refused(db: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("not durable's")
    with durable.Runtime(f"sqlite:///{db}"):
        bigs.run_sync(1, workflow_id="w")
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(
            "UPDATE durable_steps SET output = ? WHERE length(output) < 128 AND name LIKE '%big'",
            (b"\x00durable-file:13:" + str(victim).encode(),),
        )
    with durable.Runtime(f"sqlite:///{db}") as rt:
        with pytest.raises(durable.PayloadIntegrityError, match="in a form durable never writes"):
            rt.store.fork("w", "done", "copy")
        rt.store.cleanup(older_than=0)
    assert victim.read_text() == "not durable's"


def test_a_reader_that_found_a_reference_still_reads_it_just_after_its_row_went(
    tmp_path: Path,
) -> None:
    files = PayloadFiles(str(tmp_path / "jobs.db"), "normal")
    stored = files.store(b"a result" * 20_000)
    files.remove([stored])  # its row was deleted by a cleanup that just committed
    assert files.load(stored) == b"a result" * 20_000
    assert files.total_bytes() == 0
    files.close()  # what waited is deleted now
    with pytest.raises(durable.PayloadIntegrityError, match="is missing"):
        files.load(stored)


def test_a_view_of_a_file_stays_whole_after_its_row_and_file_went(tmp_path: Path) -> None:
    files = PayloadFiles(str(tmp_path / "jobs.db"), "normal")
    payload = random.Random(7).randbytes(EXTERNAL_BYTES + 5)
    stored = files.store(payload)
    view = files.view(stored)
    assert bytes(view) == files.load(stored) == payload
    files.remove([stored])
    files.close()  # deleted now
    with pytest.raises(durable.PayloadIntegrityError, match="is missing"):
        files.view(stored)
    assert bytes(view) == payload  # read before it went: still whole
    assert files.view(b"inline bytes") == b"inline bytes"


def test_a_file_that_cannot_be_written_leaves_the_workflow_to_resume(db: Path) -> None:
    # Python ignores SIGXFSZ: past the limit, a write fails with EFBIG.
    code = textwrap.dedent(
        f"""
        import resource, sys
        sys.path.insert(0, {str(Path(__file__).parents[1])!r})
        import durable
        from backends.test_payload_files import bigs
        with durable.Runtime({f"sqlite:///{db}"!r}) as rt:
            rt.store.list_workflows()
            resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, resource.RLIM_INFINITY))
            try:
                bigs.run_sync(1, workflow_id="w")
            except durable.BackendUnavailableError as exc:
                print("refused:", exc)
            print(rt.store.get_workflow("w").status.value)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    refused, status = done.stdout.strip().splitlines()
    assert "cannot write the payload file" in refused
    assert "free disk space" in refused
    assert status == "running"  # resumable: the step runs again
    assert _files(db) == []  # no part of the file is left
    with durable.Runtime(f"sqlite:///{db}"):
        assert bigs.run_sync(1, workflow_id="w") == _expected(1)


def test_the_health_check_finds_a_missing_or_cut_file(db: Path) -> None:
    with durable.Runtime(f"sqlite:///{db}") as rt:
        bigs.run_sync(2, workflow_id="w")
        assert rt.health_check().ok
        first, second = _files(db)
        first.unlink()
        second.write_bytes(b"cut")
        report = rt.health_check()
    assert not report.ok
    assert report.error is not None
    assert f"{first} is missing" in report.error
    assert f"{second} holds 3 bytes" in report.error
    assert "restore the folder" in report.error
