"""Throughput of queued workflows run by worker processes, beside DBOS queues.

The scenario: N workflows of 5 tiny async steps each (a step returns x + 1)
are enqueued up front, one ``await chain.enqueue(i)`` after another, then 1 or
4 worker processes run them (``durable.Worker(url, concurrency=16)
.run_sync(until_idle=True)``, what ``durable worker --concurrency 16
--until-idle`` runs). The time is from releasing the workers until the store
holds N workflows with status ``success``: the parent polls a count.

Each worker process is started and has imported everything before it is
released, so interpreter start-up and imports are not timed (they are shown
apart); opening the store (or launching DBOS) is, as it is part of a worker
starting. Each run uses a fresh store: a SQLite file in a fresh temp dir, or a
fresh PostgreSQL schema (``?schema=bench_<random>``) that is dropped after.

DBOS (optional, if ``dbos`` can be imported; PostgreSQL only): the same
workflow as ``@DBOS.workflow`` with 5 ``@DBOS.step`` steps, enqueued with
``queue.enqueue(chain, i)`` by a process that listens to no queue, on a queue
registered with ``worker_concurrency`` = the same 16 per process, then run by
1 or 4 DBOS processes launched on the same system database, a fresh
PostgreSQL database of its own (dropped after).

Run: ``python benchmarks/queues.py [--workflows N] [--runs N] [--workers 1,4]
[--quick] [--markdown] [--backends sqlite,postgresql] [--postgres-url URL]
[--no-dbos] [--dbos-polling SECONDS]``. Nothing here asserts on timings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import _queue_app as app
import sqlalchemy as sa
from bench import (
    BACKEND_TITLES,
    BACKENDS,
    DEFAULT_POSTGRES_URL,
    POSTGRES,
    SQLITE,
    PgServer,
    _num,
    dbos_version,
    postgres_unavailable,
    render,
    versions,
)

import durable

HERE = Path(__file__).resolve().parent
"""This directory: the worker processes import ``_queue_app`` from it."""

DURABLE, DBOS = "durable", "DBOS"
CONCURRENCY = 16
"""Workflows run at once by one worker process (durable's default; DBOS's
``worker_concurrency``)."""
DEFAULT_DBOS_POLLING = 0.1
"""DBOS's queue polling interval, in seconds (its default is 1.0; see --dbos-polling)."""
POLL = 0.01
"""How often the parent counts finished workflows, in seconds."""
TIMEOUT = 600.0
"""Longest wait for one run to finish, in seconds."""

_WORKER_CODE = "import sys, _queue_app; sys.exit(_queue_app.main(sys.argv[1:]))"


@dataclass(frozen=True)
class Config:
    workflows: int
    runs: int
    workers: tuple[int, ...]
    dbos_polling: float


@dataclass
class Run:
    """One run: N workflows enqueued, then run by some worker processes."""

    seconds: float
    """From releasing the workers until every workflow has succeeded."""
    enqueue_seconds: float
    """Enqueuing the N workflows, one after another, in the parent."""
    startup_seconds: float
    """From spawning the worker processes until the last is ready (imports done)."""
    per_worker: list[int]
    """Workflows each worker ran."""
    open_seconds: float
    """The slowest worker's time to open its store (durable) or launch (DBOS), timed."""


@dataclass
class Sample:
    runs: list[Run] = field(default_factory=list)

    def median(self, pick: Callable[[Run], float]) -> float:
        return statistics.median(pick(r) for r in self.runs)


Results = dict[tuple[str, str, int], Sample]
"""Keyed by (backend, engine, workers)."""


class BenchError(RuntimeError):
    """A run did not finish as it should (a worker failed, or it timed out)."""


# Worker processes ------------------------------------------------------------


@dataclass
class Proc:
    popen: subprocess.Popen[str]
    stderr: IO[str]

    def stderr_text(self) -> str:
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read()[-4000:]


@contextlib.contextmanager
def spawned(role_args: list[list[str]]) -> Iterator[list[Proc]]:
    """Worker processes, one per argument list; killed if still alive at the end."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p)
    procs: list[Proc] = []
    with contextlib.ExitStack() as files:
        try:
            for args in role_args:
                stderr = files.enter_context(
                    tempfile.TemporaryFile("w+", prefix="durable-bench-worker-")
                )
                popen = subprocess.Popen(
                    [sys.executable, "-c", _WORKER_CODE, *args],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    text=True,
                    env=env,
                )
                procs.append(Proc(popen, stderr))
            yield procs
        finally:
            for proc in procs:
                if proc.popen.poll() is None:
                    proc.popen.kill()
                    proc.popen.wait()
                for pipe in (proc.popen.stdin, proc.popen.stdout):
                    if pipe is not None:
                        with contextlib.suppress(OSError):
                            pipe.close()


def _wait_ready(procs: list[Proc]) -> None:
    for proc in procs:
        assert proc.popen.stdout is not None
        line = proc.popen.stdout.readline().strip()
        if line != "ready":
            proc.popen.wait(timeout=30)
            raise BenchError(
                f"a worker did not start (exit {proc.popen.returncode}, said {line!r}):\n"
                + proc.stderr_text()
            )


def _send(procs: list[Proc], line: str) -> None:
    for proc in procs:
        assert proc.popen.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            proc.popen.stdin.write(line + "\n")
            proc.popen.stdin.flush()


def _wait_done(procs: list[Proc], count: Callable[[], int], n: int, started: float) -> float:
    """Seconds from ``started`` until ``count()`` reaches ``n``."""
    while True:
        done = count()
        now = time.perf_counter()
        if done >= n:
            return now - started
        if now - started > TIMEOUT:
            raise BenchError(f"timed out after {TIMEOUT:g} s with {done} of {n} workflows done")
        if all(p.popen.poll() is not None for p in procs):
            # One last look: the last commit may have landed after the count.
            if count() >= n:
                return time.perf_counter() - started
            errors = "\n---\n".join(p.stderr_text() for p in procs)
            raise BenchError(f"every worker exited with {count()} of {n} workflows done:\n{errors}")
        time.sleep(POLL)


def _last_line(proc: Proc, timeout: float) -> dict[str, Any]:
    """The JSON line a worker prints as it exits."""
    assert proc.popen.stdout is not None
    try:
        out, _ = proc.popen.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.popen.kill()
        proc.popen.wait()
        return {}
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


# Stores: where a run keeps its data -----------------------------------------


@dataclass(frozen=True)
class Store:
    """A fresh store for one durable run, and how to count its finished workflows."""

    url: str
    count: Callable[[], int]


@contextlib.contextmanager
def sqlite_store() -> Iterator[Store]:
    with tempfile.TemporaryDirectory(prefix="durable-bench-") as tmp:
        db = Path(tmp) / "store.db"
        conns: list[sqlite3.Connection] = []

        def count() -> int:
            if not conns:
                conns.append(sqlite3.connect(db, timeout=30))
            row = (
                conns[0]
                .execute("SELECT count(*) FROM durable_workflows WHERE status = 'success'")
                .fetchone()
            )
            return int(row[0])

        try:
            yield Store(f"sqlite:///{db}", count)
        finally:
            for conn in conns:
                conn.close()


@contextlib.contextmanager
def postgres_store(pg: PgServer) -> Iterator[Store]:
    from psycopg import sql

    schema = f"bench_{uuid.uuid4().hex[:16]}"
    query = sql.SQL("SELECT count(*) FROM {}.durable_workflows WHERE status = 'success'").format(
        sql.Identifier(schema)
    )

    def count() -> int:
        row = pg.admin.execute(query).fetchone()
        assert row is not None
        return int(row[0])

    try:
        yield Store(pg.url_with(schema=schema), count)
    finally:
        pg.execute("DROP SCHEMA IF EXISTS {} CASCADE", schema)


# durable ---------------------------------------------------------------------


async def _enqueue_all(n: int) -> None:
    for i in range(n):
        await app.chain.enqueue(i)


def run_durable(store: Store, n: int, workers: int) -> Run:
    with durable.Runtime(store.url):
        started = time.perf_counter()
        asyncio.run(_enqueue_all(n))
        enqueue_seconds = time.perf_counter() - started
    args = [["durable", store.url, str(CONCURRENCY)] for _ in range(workers)]
    with spawned(args) as procs:
        spawned_at = time.perf_counter()
        _wait_ready(procs)
        startup = time.perf_counter() - spawned_at
        released = time.perf_counter()
        _send(procs, "go")
        seconds = _wait_done(procs, store.count, n, released)
        reports = [_last_line(p, timeout=60) for p in procs]
    failed = sum(r.get("failed", 0) for r in reports)
    if failed:
        errors = sorted({e for r in reports for e in r.get("errors", [])})
        raise BenchError(f"durable workers: {failed} workflows failed: {errors}")
    per_worker = [int(r.get("completed", 0)) + int(r.get("resumed", 0)) for r in reports]
    opened = max(float(r.get("open_seconds", 0.0)) for r in reports)
    return Run(seconds, enqueue_seconds, startup, per_worker, opened)


# DBOS ------------------------------------------------------------------------


def _dbos_enqueue_all(url: str, n: int, polling: float) -> float:
    """Register the queue and enqueue N workflows from a DBOS process that dequeues nothing."""
    from dbos import DBOS

    workflow = app.dbos_chain()
    DBOS(config=app.dbos_config(url, "bench-enqueuer"))
    # This process only enqueues: it listens to none of the user's queues.
    DBOS.listen_queues([])
    DBOS.launch()
    try:
        queue = DBOS.register_queue(
            app.DBOS_QUEUE, worker_concurrency=CONCURRENCY, polling_interval_sec=polling
        )
        started = time.perf_counter()
        for i in range(n):
            queue.enqueue(workflow, i)
        return time.perf_counter() - started
    finally:
        DBOS.destroy()


def run_dbos(pg: PgServer, n: int, workers: int, polling: float) -> Run:
    import psycopg

    database = f"dbos_bench_{uuid.uuid4().hex[:16]}"
    pg.execute("CREATE DATABASE {}", database)
    try:
        url = pg.url_with(database=database)
        enqueue_seconds = _dbos_enqueue_all(url, n, polling)
        with psycopg.connect(url, autocommit=True) as conn:

            def count() -> int:
                row = conn.execute(
                    "SELECT count(*) FROM dbos.workflow_status"
                    " WHERE queue_name = %s AND status = 'SUCCESS'",
                    (app.DBOS_QUEUE,),
                ).fetchone()
                assert row is not None
                return int(row[0])

            args = [["dbos", url, f"bench-worker-{k}"] for k in range(workers)]
            with spawned(args) as procs:
                spawned_at = time.perf_counter()
                _wait_ready(procs)
                startup = time.perf_counter() - spawned_at
                released = time.perf_counter()
                _send(procs, "go")
                seconds = _wait_done(procs, count, n, released)
                _send(procs, "stop")
                reports = [_last_line(proc, timeout=30) for proc in procs]
            rows = conn.execute(
                "SELECT executor_id, count(*) FROM dbos.workflow_status"
                " WHERE queue_name = %s AND status = 'SUCCESS' GROUP BY 1 ORDER BY 1",
                (app.DBOS_QUEUE,),
            ).fetchall()
        per_worker = [int(r[1]) for r in rows]
        opened = max(float(r.get("open_seconds", 0.0)) for r in reports)
        return Run(seconds, enqueue_seconds, startup, per_worker, opened)
    finally:
        pg.execute("DROP DATABASE IF EXISTS {} WITH (FORCE)", database)


# Running everything ------------------------------------------------------------


def run_all(
    config: Config, backends: tuple[str, ...], pg: PgServer | None, with_dbos: bool
) -> Results:
    results: Results = {}
    # Runs outermost, so that a slow moment of the machine hits every setup alike.
    for attempt in range(config.runs):
        for backend in backends:
            for workers in config.workers:
                if backend == SQLITE:
                    with sqlite_store() as store:
                        run = run_durable(store, config.workflows, workers)
                else:
                    assert pg is not None
                    with postgres_store(pg) as store:
                        run = run_durable(store, config.workflows, workers)
                results.setdefault((backend, DURABLE, workers), Sample()).runs.append(run)
                _progress(attempt, backend, DURABLE, workers, run, config)
            if backend == POSTGRES and with_dbos:
                assert pg is not None
                for workers in config.workers:
                    run = run_dbos(pg, config.workflows, workers, config.dbos_polling)
                    results.setdefault((backend, DBOS, workers), Sample()).runs.append(run)
                    _progress(attempt, backend, DBOS, workers, run, config)
    return results


def _progress(
    attempt: int, backend: str, engine: str, workers: int, run: Run, config: Config
) -> None:
    print(
        f"  run {attempt + 1}/{config.runs}: {BACKEND_TITLES[backend]}, {engine}, "
        f"{workers} worker(s): {config.workflows / run.seconds:,.1f} workflows/s "
        f"({run.seconds:.2f} s; enqueue {run.enqueue_seconds:.2f} s; "
        f"start-up {run.startup_seconds:.2f} s; open {run.open_seconds:.3f} s; "
        f"per worker {run.per_worker})",
        file=sys.stderr,
        flush=True,
    )


# Reporting -------------------------------------------------------------------


def throughput_table(
    results: Results, config: Config, backends: tuple[str, ...], with_dbos: bool
) -> list[list[str]]:
    n, steps = config.workflows, app.STEPS
    header = ["Store", "Workers", "durable workflows/s", "durable steps/s"]
    if with_dbos:
        header += ["DBOS workflows/s", "DBOS steps/s", "durable / DBOS"]
    header += ["durable, vs 1 worker"]
    rows = [header]
    for backend in backends:
        one = results.get((backend, DURABLE, config.workers[0]))
        for workers in config.workers:
            ours = results.get((backend, DURABLE, workers))
            rate = n / ours.median(lambda r: r.seconds) if ours else None
            row = [BACKEND_TITLES[backend], str(workers), _num(rate), _num(rate and rate * steps)]
            if with_dbos:
                theirs = results.get((backend, DBOS, workers))
                peer = n / theirs.median(lambda r: r.seconds) if theirs else None
                ratio = rate / peer if rate and peer else None
                row += [
                    _num(peer) if backend == POSTGRES else "—",
                    _num(peer and peer * steps) if backend == POSTGRES else "—",
                    f"{_num(ratio)}x" if ratio else "—",
                ]
            base = n / one.median(lambda r: r.seconds) if one else None
            scale = rate / base if rate and base and workers != config.workers[0] else None
            row.append(f"{scale:.2f}x" if scale else "")
            rows.append(row)
    return rows


def detail_table(results: Results, config: Config) -> list[list[str]]:
    """Enqueue rate, worker start-up, and how the work was shared, per setup."""
    n = config.workflows
    rows = [
        [
            "Store",
            "Setup",
            "Workers",
            "run, s",
            "enqueues/s",
            "worker start-up, s",
            "open or launch, s",
            "workflows per worker (last run)",
        ]
    ]
    for (backend, engine, workers), sample in results.items():
        rows.append(
            [
                BACKEND_TITLES[backend],
                engine,
                str(workers),
                f"{sample.median(lambda r: r.seconds):.2f}",
                _num(n / sample.median(lambda r: r.enqueue_seconds)),
                f"{sample.median(lambda r: r.startup_seconds):.2f}",
                f"{sample.median(lambda r: r.open_seconds):.3f}",
                " / ".join(str(c) for c in sample.runs[-1].per_worker),
            ]
        )
    return rows


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}"


# Entry point -----------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--workflows", type=int, default=None, help="workflows per run (default 1000)"
    )
    parser.add_argument("--runs", type=int, default=None, help="runs; the median is shown")
    parser.add_argument(
        "--workers",
        default=None,
        help="comma-separated worker process counts (default 1,4)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 30 workflows, 1 run, 1 and 2 workers"
    )
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--no-dbos", action="store_true", help="skip DBOS even if installed")
    parser.add_argument(
        "--dbos-polling",
        type=float,
        default=DEFAULT_DBOS_POLLING,
        help=f"DBOS's queue polling interval in seconds (default {DEFAULT_DBOS_POLLING:g}; "
        "DBOS's own default is 1.0)",
    )
    parser.add_argument(
        "--backends",
        default=None,
        help="comma-separated, from: sqlite, postgresql (default: both, postgresql only "
        "if its server answers)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("DURABLE_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="the PostgreSQL server and database (default: $DURABLE_BENCH_POSTGRES_URL, "
        f"else {DEFAULT_POSTGRES_URL}); each run makes a schema of its own there and drops it, "
        "and DBOS a database of its own",
    )
    args = parser.parse_args(argv)
    if args.workflows is None:
        args.workflows = 30 if args.quick else 1000
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    if args.workers is None:
        args.workers = "1,2" if args.quick else "1,4"
    try:
        workers = tuple(int(w) for w in args.workers.split(",") if w.strip())
    except ValueError:
        workers = ()
    if not workers or min(workers) < 1:
        parser.error("--workers takes a comma-separated list of whole numbers >= 1")
    args.workers = tuple(dict.fromkeys(workers))
    if args.workflows < 1 or args.runs < 1 or args.dbos_polling <= 0:
        parser.error("--workflows and --runs must be at least 1, --dbos-polling above 0")
    if args.backends is None:
        args.explicit_backends = False
        args.backends = BACKENDS
    else:
        args.explicit_backends = True
        chosen = tuple(dict.fromkeys(b.strip() for b in args.backends.split(",") if b.strip()))
        if not chosen or any(b not in BACKENDS for b in chosen):
            parser.error(f"--backends takes a comma-separated list of {', '.join(BACKENDS)}")
        args.backends = chosen
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = Config(args.workflows, args.runs, args.workers, args.dbos_polling)
    backends: tuple[str, ...] = args.backends
    notes: list[str] = []
    if POSTGRES in backends:
        reason = postgres_unavailable(args.postgres_url)
        if reason is not None:
            shown = sa.make_url(args.postgres_url).render_as_string(hide_password=True)
            note = f"PostgreSQL: skipped, the server at {shown} cannot be used: {reason}"
            if args.explicit_backends:
                print(note, file=sys.stderr)
                return 2
            notes.append(note)
            backends = tuple(b for b in backends if b != POSTGRES)
    dbos = None if args.no_dbos else dbos_version()
    if args.no_dbos:
        notes.append("DBOS: skipped (--no-dbos)")
    elif dbos is None:
        notes.append("DBOS: not installed (pip install dbos to compare)")
    elif POSTGRES not in backends:
        notes.append("DBOS: skipped (it runs on PostgreSQL only here)")
    pg = PgServer(args.postgres_url) if POSTGRES in backends else None
    try:
        with_dbos = dbos is not None and pg is not None
        started = time.perf_counter()
        try:
            results = run_all(config, backends, pg, with_dbos)
        except BenchError as exc:
            print(f"queues benchmark failed: {exc}", file=sys.stderr)
            return 1
        took = time.perf_counter() - started
        print(
            f"durable queue benchmark: {config.workflows} workflows x {app.STEPS} tiny async "
            f"steps, enqueued up front, run by {'/'.join(map(str, config.workers))} worker "
            f"process(es) of concurrency {CONCURRENCY}; median of {config.runs} run(s); "
            f"{took:.1f} s in all"
        )
        print(", ".join(f"{k} {v}" for k, v in versions(dbos if with_dbos else None, pg).items()))
        print(machine())
        if pg is not None:
            print(
                f"PostgreSQL {pg.version} (synchronous_commit={pg.synchronous_commit}): a fresh "
                "schema per durable run"
                + (
                    f"; DBOS in a fresh database per run, queue polling every "
                    f"{config.dbos_polling:g} s"
                    if with_dbos
                    else ""
                )
            )
        print()
        print(render(throughput_table(results, config, backends, with_dbos), args.markdown))
        print()
        print(render(detail_table(results, config), args.markdown))
        for note in notes:
            print()
            print(note)
        return 0
    finally:
        if pg is not None:
            pg.close()


if __name__ == "__main__":
    sys.exit(main())
