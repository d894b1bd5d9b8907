"""A runtime's life: threads, closing under running work, the default at exit.

These run in real subprocesses: what they guard against (a crash of the
interpreter, a file left behind at exit) only shows in a process of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

import durable
from tests.conftest import PROGRAMS, program_env


def _close_race(scenario: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PROGRAMS / "close_race.py"), scenario, url],
        env=program_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("run", range(10))
def test_close_while_other_threads_run_workflows_raises_runtime_closed_in_them(
    db_url: str, run: int
) -> None:
    # Before: 8 processes in 10 died of SIGSEGV (a connection closed under a call).
    result = _close_race("close", db_url)
    assert result.returncode == 0, f"exit {result.returncode}:\n{result.stdout}\n{result.stderr}"
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    assert all(line.startswith("closed: ") and "is closed" in line for line in lines), lines


@pytest.mark.parametrize("run", range(10))
def test_with_runtime_entered_in_several_threads_closes_after_the_last(
    db_url: str, run: int
) -> None:
    # Before: leaving the block raised "ValueError: <Token ...> was created in
    # a different Context", and the first thread out closed it under the others.
    result = _close_race("nested", db_url)
    assert result.returncode == 0, f"exit {result.returncode}:\n{result.stdout}\n{result.stderr}"
    assert result.stdout.splitlines() == ["left"] * 4


def test_a_thread_started_inside_with_runtime_uses_that_runtime(
    durable_runtime: durable.Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: the thread silently wrote to .durable/durable.db in the working directory.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DURABLE_URL", raising=False)
    results: list[object] = []
    thread = threading.Thread(target=lambda: results.append(threaded("a")))
    thread.start()
    thread.join(60)
    assert results == ["A"]
    info = durable_runtime.get_workflow(threaded.id_for("a"))
    assert info is not None
    assert info.status == "success"
    assert not (tmp_path / ".durable").exists()


def test_a_thread_without_runtime_refuses_to_guess_among_several_open_ones(
    durable_runtime: durable.Runtime, tmp_path: Path
) -> None:
    other = durable.Runtime(f"sqlite:///{tmp_path / 'other.db'}")
    entered, done = threading.Event(), threading.Event()

    def hold() -> None:
        with other:
            entered.set()
            done.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert entered.wait(60)
        errors: list[BaseException] = []

        def call() -> None:
            try:
                threaded("b")
            except BaseException as exc:
                errors.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        caller.join(60)
        assert len(errors) == 1
        assert isinstance(errors[0], durable.ConfigurationError)
        assert "with runtime:" in str(errors[0])
        assert durable_runtime.get_workflow(threaded.id_for("b")) is None
    finally:
        done.set()
        holder.join(60)
    with pytest.raises(durable.RuntimeClosedError):
        other.store.list_workflows()


@durable.durable_workflow
def threaded(word: str) -> str:
    return upper(word)


@durable.step
def upper(word: str) -> str:
    return word.upper()


_DEFAULT_STORE_SCRIPT = """
import durable

@durable.step
def payload(n: int) -> bytes:
    return bytes(n) * 1000

@durable.durable_workflow
def report() -> int:
    return sum(len(payload(n)) for n in range(20))

print(report.id_for())
print(report())
"""


def test_the_default_runtime_is_closed_at_exit_so_durable_db_alone_holds_the_run(
    tmp_path: Path,
) -> None:
    # Before: every commit stayed in durable.db-wal; a copy of durable.db had no run.
    script = tmp_path / "script.py"
    script.write_text(_DEFAULT_STORE_SCRIPT)
    env = program_env()
    env.pop("DURABLE_URL", None)
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    workflow_id, value = result.stdout.split()
    wal = tmp_path / ".durable" / "durable.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    copy = tmp_path / "copy.db"
    shutil.copyfile(tmp_path / ".durable" / "durable.db", copy)
    with durable.Runtime(f"sqlite:///{copy}") as rt:
        info = rt.get_workflow(workflow_id)
        assert info is not None
        assert info.status == "success"
        assert rt.store.get_workflow(workflow_id) is not None
    assert value == str(sum(n * 1000 for n in range(20)))


@durable.step
async def echo(i: int) -> int:
    return i


@durable.durable_workflow
async def one_step(i: int) -> int:
    return await echo(i)


def test_postgres_connections_stay_within_pool_max_over_many_event_loops(
    postgres_url: str,
) -> None:
    # Before: each event loop kept a server connection until close (30 loops, 30+).
    import psycopg

    app = f"durable-loops-{uuid.uuid4().hex[:12]}"
    url = f"{postgres_url}&pool_max=4&application_name={app}"
    # The test's own URL, without durable's options, reaches the same server.
    server = url.split("?", 1)[0]

    def connections() -> int:
        with psycopg.connect(server, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,)
            ).fetchone()
            assert row is not None
            return int(row[0])

    seen = []
    with durable.Runtime(url):
        for i in range(15):
            assert asyncio.run(one_step(i)) == i
            assert one_step.run_sync(100 + i) == 100 + i
            seen.append(connections())
    assert max(seen) <= 4, seen


class _Proxy:
    """A TCP proxy to the PostgreSQL server that the test can cut, as a server going away."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # cut: the listener is closed, new connections are refused
                return
            server = socket.create_connection(self._target)
            with self._lock:
                self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        # shutdown() first: a close() alone leaves the blocked accept() accepting.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


def _within(seconds: float, fn: Callable[[], object]) -> BaseException | None:
    """Run ``fn`` in a thread; its exception (None if it returned), failing past ``seconds``."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            fn()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    # In this thread's context: the runtime of the calling `with` block.
    thread = threading.Thread(target=contextvars.copy_context().run, args=(target,), daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still blocked after {seconds} s"
    return outcome[0]


@durable.step
def sync_echo(i: int) -> int:
    return i


@durable.durable_workflow
def sync_one_step(i: int) -> int:
    return sync_echo(i)


def test_postgres_going_away_fails_both_paths_and_close_does_not_block(
    postgres_url: str,
) -> None:
    # Before: the sync path never failed, the async one after ~13 s, and
    # close() blocked until the server came back.
    import sqlalchemy as sa

    parsed = sa.make_url(postgres_url)
    proxy = _Proxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    url = parsed.set(
        host="127.0.0.1", port=proxy.port, query={**parsed.query, "pool_min": "1"}
    ).render_as_string(hide_password=False)
    rt = durable.Runtime(url, lease_seconds=3)
    with rt:
        assert sync_one_step.run_sync(1) == 1
        assert asyncio.run(one_step(1)) == 1
        proxy.cut()
        sync_error = _within(60, lambda: sync_one_step.run_sync(2))
        async_error = _within(60, lambda: asyncio.run(one_step(2)))
    assert isinstance(sync_error, durable.BackendUnavailableError), sync_error
    assert isinstance(async_error, durable.BackendUnavailableError), async_error
    assert _within(30, rt.close) is None
