"""Queued workflows run by 1, 4 or 8 worker processes, with and without flow control, beside DBOS.

The scenario: 1, 4 or 8 worker processes are up and waiting for work
(``durable.Worker(url, queues=[queue], concurrency=16).run_sync()``, what
``durable worker --queue ... --concurrency 16`` runs; DBOS: as many launched
DBOS processes listening to the queue) when the parent enqueues N workflows
of 5 tiny async steps each (a step returns x + 1), as a burst:
``await chain.enqueue(i, queue=...)`` with 16 calls in flight
(``--in-flight``; DBOS: ``await queue.enqueue_async(chain, i)``). Three
queues, each in runs of its own:

- ``plain``: no flow control;
- ``rate``: at most R starts per P seconds across all workers
  (``durable.Queue(name, rate_limit=(R, P))``; DBOS:
  ``limiter={"limit": R, "period": P}``), R/P below what the workers do
  without it, so that it binds;
- ``partitions``: K partition keys, ``i % K``, each with at most C running at
  once (``durable.Queue(name, partition_concurrency=C)`` and
  ``enqueue(..., partition=key)``; DBOS: ``partition_concurrency=C`` and
  ``SetEnqueueOptions(queue_partition_key=key)``).

durable's queue is declared with :class:`durable.Queue` in the code the
workers import (``_queue_app.declare_queue``), so they put its terms in the
store as they start; the parent enqueues only once the store has them. DBOS's
is registered by the parent (``DBOS.register_queue``), whose workers read it
from their database.

What is measured, per run:

- workflows/s: N divided by the time from the first enqueue call until the
  store holds N workflows with status ``success`` (the parent counts them
  every 10 ms). The enqueuing runs while the workers work and shares the
  machine with them: a producer slower than the workers bounds this (the
  enqueue rate is shown apart).
- start latency, p50 and p99 over the N workflows: from the moment the
  parent calls ``enqueue`` for a workflow (its clock, just before the call)
  to the moment that workflow's body begins in a worker (``time.time()`` as
  its first line, returned with its result). One clock (this host's), the
  same two points for both engines, whatever each records. Why not the
  stores' own times (durable's ``WorkflowInfo.enqueued_at`` and
  ``.started_at``, DBOS's ``created_at`` and ``dequeued_at``): both stamp a
  claim with the database's time read when the claiming transaction begins
  (durable: before it waits for a flow-controlled queue's lock), so under
  contention a recorded start can come before the recorded enqueue. Those
  are still read (``Store.list_workflows``, ``DBOS.list_workflows``), and
  the tables show how many workflows were recorded as starting before they
  were enqueued.
- with a rate limit: the starts per second achieved (N divided by the time
  from the first recorded start to the last plus one period, which a limiter
  that starts R at once every P seconds makes exactly R/P), and the most
  starts in any window of P seconds, both by the recorded starts (what the
  limiter counts: the limit holds if it is at most R) and by the bodies'
  first lines. With partitions: the most workflows of one partition key
  running at once, from snapshots of the store the parent takes between two
  counts (durable: status ``running``; DBOS: ``PENDING``).

Workers are started, have done their imports, are released, and have opened
their store (DBOS: launched) before the first enqueue, and the parent waits
0.5 s more before it (untimed); interpreter start-up and imports are shown
apart ("worker start-up"), as is opening. Each run uses a fresh store: a
SQLite file in a fresh temp dir, or a fresh PostgreSQL schema
(``?schema=bench_<random>``) dropped after; DBOS a fresh database of its own
(dropped after), PostgreSQL only. Every worker process runs at most 16
workflows at once (durable's ``concurrency``, DBOS's ``worker_concurrency``)
and holds at most ``--pool`` database connections (durable's ``pool_max``,
DBOS's ``sys_db_pool_size``; the parent: 16): 8 DBOS processes at DBOS's
default of 20 exhaust a default server's 100 connections.

durable's workers claim when an enqueue notifies them (PostgreSQL
LISTEN/NOTIFY), when one of their workflows ends, and otherwise every 0.5 s
(the default ``poll_interval``); DBOS polls every ``--dbos-polling`` seconds
(0.1 here; its default is 1). The workers run until the parent has seen
every workflow succeed, then stop (``Worker.stop()``, ``DBOS.destroy()``).

Run: ``python benchmarks/queues.py [--workflows N] [--runs N] [--workers 1,4,8]
[--scenarios plain,rate,partitions] [--rate-limit R/P] [--partitions K/C]
[--in-flight N] [--pool N] [--quick] [--markdown] [--backends sqlite,postgresql]
[--postgres-url URL] [--no-dbos] [--dbos-polling SECONDS]``. Nothing here
asserts on timings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any

import _queue_app as app
import sqlalchemy as sa
from bench import (
    BACKEND_TITLES,
    POSTGRES,
    SQLITE,
    PgServer,
    _num,
    add_store_args,
    choose_backends,
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
DEFAULT_POOL = 6
"""Database connections one worker process may hold (see --pool)."""
DEFAULT_LANES = 16
"""Enqueue calls the parent keeps in flight (see --in-flight)."""
DEFAULT_WORKFLOWS = 300
DEFAULT_RATE = (15, 1.0)
"""Starts per period, and the period: below DBOS's and durable's pace without a limit here."""
DEFAULT_PARTITIONS = (20, 1)
POLL = 0.01
"""How often the parent counts finished workflows, in seconds."""
SETTLE = 0.5
"""Pause between the workers being up and the first enqueue, in seconds (not timed):
for durable's workers to subscribe to the queue's notifications and put its terms,
for DBOS's to find the queue and start polling it."""
TIMEOUT = 600.0
"""Longest wait for one run to finish, in seconds."""

PLAIN, RATE, PARTITIONS = "plain", "rate", "partitions"
SCENARIOS = (PLAIN, RATE, PARTITIONS)
_WORKER_CODE = "import sys, _queue_app; sys.exit(_queue_app.main(sys.argv[1:]))"


@dataclass(frozen=True)
class Scenario:
    """A queue and its flow control."""

    key: str
    rate: tuple[int, float] | None = None
    partitions: tuple[int, int] | None = None
    """(partition keys, most running at once of one key)."""

    @property
    def queue(self) -> str:
        return f"bench-{self.key}"

    @property
    def title(self) -> str:
        if self.rate is not None:
            return f"rate limit {self.rate[0]}/{self.rate[1]:g} s"
        if self.partitions is not None:
            return f"{self.partitions[0]} partitions, {self.partitions[1]} at once each"
        return "no flow control"

    def durable_terms(self) -> dict[str, Any]:
        """The queue's terms for ``durable.Queue`` (in JSON, for the worker processes)."""
        if self.rate is not None:
            return {"rate_limit": list(self.rate)}
        if self.partitions is not None:
            return {"partition_concurrency": self.partitions[1]}
        return {}

    def dbos_terms(self) -> dict[str, Any]:
        """The queue's terms for ``DBOS.register_queue``."""
        if self.rate is not None:
            return {"limiter": {"limit": self.rate[0], "period": self.rate[1]}}
        if self.partitions is not None:
            return {"partition_concurrency": self.partitions[1]}
        return {}

    def partition_of(self, i: int) -> str | None:
        if self.partitions is None:
            return None
        return f"p{i % self.partitions[0]:02d}"


@dataclass(frozen=True)
class Config:
    workflows: int
    runs: int
    workers: tuple[int, ...]
    scenarios: tuple[Scenario, ...]
    dbos_polling: float
    pool: int
    lanes: int
    """Enqueue calls in flight in the parent."""


@dataclass
class Run:
    """One run: N workflows enqueued while some worker processes run them."""

    seconds: float
    """From the first enqueue until every workflow has succeeded."""
    enqueue_seconds: float
    """Enqueuing the N workflows in the parent (``--in-flight`` calls at a time)."""
    startup_seconds: float
    """From spawning the worker processes until the last is ready (imports done)."""
    open_seconds: float
    """The slowest worker's time to open its store (durable) or launch (DBOS)."""
    per_worker: list[int]
    """Workflows each worker ran."""
    times: list[Timed]
    """Each workflow's times."""
    most_per_partition: int | None = None
    """With partitions: the most workflows of one key running at once, in the parent's
    snapshots of the store (one between two counts, every 10 ms or so)."""

    def latency(self, q: float) -> float:
        """The start latency's q-quantile: from the enqueue call to the body's first line."""
        return quantile([t.began - t.sent for t in self.times], q)

    def claims(self) -> list[float]:
        return sorted(t.claimed for t in self.times)

    def start_rate(self, period: float) -> float:
        """Starts per second: N over (last claim - first claim + one period)."""
        claims = self.claims()
        return len(claims) / (claims[-1] - claims[0] + period)

    def most_in_window(self, period: float, body: bool = False) -> int:
        """The most starts in any window of ``period``: claims as recorded, or bodies begun."""
        return most_in_window([t.began if body else t.claimed for t in self.times], period)

    def claimed_before_enqueued(self) -> int:
        """Workflows whose recorded start is earlier than their recorded enqueue."""
        return sum(1 for t in self.times if t.claimed < t.enqueued)


@dataclass(frozen=True)
class Timed:
    """One workflow's times (Unix seconds, this host's clock or the database's, on one host)."""

    sent: float
    """The parent's clock just before its enqueue call."""
    began: float
    """The worker's clock as the workflow's body began (returned by the workflow)."""
    enqueued: float
    """When the engine recorded the enqueue."""
    claimed: float
    """When the engine recorded that a worker claimed it (what a rate limit counts)."""


@dataclass
class Sample:
    runs: list[Run] = field(default_factory=list)

    def median(self, pick: Callable[[Run], float]) -> float:
        return statistics.median(pick(r) for r in self.runs)


Results = dict[tuple[str, str, str, int], Sample]
"""Keyed by (backend, scenario, engine, workers)."""


class BenchError(RuntimeError):
    """A run did not finish as it should (a worker failed, or it timed out)."""


# Figures from recorded times -------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float:
    """The nearest-rank quantile (q=0.5: the median value, q=0.99: p99)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def most_in_window(starts: Sequence[float], period: float) -> int:
    """The most starts within any window ``(t - period, t]``, as a rate limit counts them."""
    ordered = sorted(starts)
    most, first = 0, 0
    for last, t in enumerate(ordered):
        while ordered[first] <= t - period:
            first += 1
        most = max(most, last - first + 1)
    return most


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


def _wait_line(procs: list[Proc], expected: str) -> None:
    """Wait for each worker to say ``expected`` (``ready``: imports done; ``up``: opened)."""
    for proc in procs:
        assert proc.popen.stdout is not None
        line = proc.popen.stdout.readline().strip()
        if line != expected:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=30)
            raise BenchError(
                f"a worker did not start (exit {proc.popen.returncode}, said {line!r} for "
                f"{expected!r}):\n" + proc.stderr_text()
            )


def _send(procs: list[Proc], line: str) -> None:
    for proc in procs:
        assert proc.popen.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            proc.popen.stdin.write(line + "\n")
            proc.popen.stdin.flush()


def _start_workers(procs: list[Proc]) -> tuple[float, float]:
    """Wait until every worker has imported, release them, wait until each is up.

    Returns the seconds from spawning until all were ready (imports), and the
    seconds from releasing them until all were up (store opened, DBOS launched).
    """
    spawned_at = time.perf_counter()
    _wait_line(procs, "ready")
    startup = time.perf_counter() - spawned_at
    released = time.perf_counter()
    _send(procs, "go")
    _wait_line(procs, "up")
    return startup, time.perf_counter() - released


def _wait_done(
    procs: list[Proc],
    count: Callable[[], int],
    n: int,
    started: float,
    peek: Callable[[], int] | None = None,
) -> tuple[float, int | None]:
    """Seconds from ``started`` until ``count()`` reaches ``n``, and the most ``peek()`` saw.

    ``peek`` (if given) is called between counts: the most workflows of one
    partition key running at once, in one snapshot of the store.
    """
    most: int | None = None
    while True:
        done = count()
        now = time.perf_counter()
        if done >= n:
            return now - started, most
        if peek is not None:
            most = max(most or 0, peek())
        if now - started > TIMEOUT:
            raise BenchError(f"timed out after {TIMEOUT:g} s with {done} of {n} workflows done")
        if all(p.popen.poll() is not None for p in procs):
            # One last look: the last commit may have landed after the count.
            if count() >= n:
                return time.perf_counter() - started, most
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
    busiest: Callable[[str], int]
    """The most workflows of one partition key of a queue running now."""


_COUNT = "SELECT count(*) FROM {} WHERE status = 'success'"
_BUSIEST = (
    "SELECT max(n) FROM (SELECT count(*) AS n FROM {} WHERE queue = ? AND status = 'running'"
    " GROUP BY partition_key) AS running"
)


@contextlib.contextmanager
def sqlite_store() -> Iterator[Store]:
    with tempfile.TemporaryDirectory(prefix="durable-bench-") as tmp:
        db = Path(tmp) / "store.db"
        conns: list[sqlite3.Connection] = []

        def one(query: str, *params: str) -> int:
            if not conns:
                conns.append(sqlite3.connect(db, timeout=30, isolation_level=None))
            row = conns[0].execute(query.format("durable_workflows"), params).fetchone()
            return int(row[0] or 0)

        try:
            yield Store(f"sqlite:///{db}", lambda: one(_COUNT), lambda q: one(_BUSIEST, q))
        finally:
            for conn in conns:
                conn.close()


@contextlib.contextmanager
def postgres_store(pg: PgServer, pool: int) -> Iterator[Store]:
    from psycopg import sql

    schema = f"bench_{uuid.uuid4().hex[:16]}"
    table = sql.Identifier(schema, "durable_workflows")

    def one(query: str, *params: str) -> int:
        statement = sql.SQL(query.replace("?", "%s")).format(table)
        row = pg.admin.execute(statement, params).fetchone()
        assert row is not None
        return int(row[0] or 0)

    try:
        yield Store(
            _pool_max(pg.url_with(schema=schema), pool),
            lambda: one(_COUNT),
            lambda q: one(_BUSIEST, q),
        )
    finally:
        pg.execute("DROP SCHEMA IF EXISTS {} CASCADE", schema)


def _pool_max(url: str, pool: int) -> str:
    """A PostgreSQL store's URL with at most ``pool`` pooled connections (SQLite's as it is)."""
    made = sa.make_url(url)
    if not made.drivername.startswith("postgresql"):
        return url
    return made.update_query_dict({"pool_max": str(pool)}).render_as_string(hide_password=False)


# durable ---------------------------------------------------------------------


async def _in_lanes(n: int, lanes: int, enqueue: Callable[[int], Awaitable[object]]) -> list[float]:
    """``enqueue(i)`` for i in 0..n-1, ``lanes`` calls in flight; the time just before each."""
    sent = [0.0] * n
    indexes = iter(range(n))

    async def lane() -> None:
        for i in indexes:  # shared: each lane takes the next one
            sent[i] = time.time()
            await enqueue(i)

    await asyncio.gather(*(lane() for _ in range(lanes)))
    return sent


async def _enqueue_all(n: int, scenario: Scenario, lanes: int) -> list[float]:
    async def enqueue(i: int) -> object:
        return await app.chain.enqueue(i, queue=scenario.queue, partition=scenario.partition_of(i))

    return await _in_lanes(n, lanes, enqueue)


def _timed(n: int, sent: list[float], found: list[tuple[Any, float, float]]) -> list[Timed]:
    """Each workflow's times, from (its result, recorded enqueue, recorded start)."""
    times: dict[int, Timed] = {}
    for result, enqueued, claimed in found:
        x, began = result
        i = x - app.STEPS  # its argument
        times[i] = Timed(sent[i], began, enqueued, claimed)
    if sorted(times) != list(range(n)):
        raise BenchError(f"{len(times)} of {n} workflows have a result and recorded times")
    return [times[i] for i in range(n)]


def _wait_declared(store: durable.Store, scenario: Scenario) -> None:
    """Wait until a worker has put the queue's terms in the store (a queue with flow control)."""
    if not scenario.durable_terms():
        return
    deadline = time.monotonic() + 30
    while not store.get_queue(scenario.queue).declared:
        if time.monotonic() > deadline:
            raise BenchError(f"no worker put queue {scenario.queue!r} in the store within 30 s")
        time.sleep(POLL)


def run_durable(store: Store, scenario: Scenario, n: int, workers: int, lanes: int) -> Run:
    terms = json.dumps(scenario.durable_terms())
    args = [["durable", store.url, str(CONCURRENCY), scenario.queue, terms] for _ in range(workers)]
    with spawned(args) as procs:
        startup, _ = _start_workers(procs)
        reader = durable.Store.open(store.url)
        try:
            _wait_declared(reader, scenario)
            time.sleep(SETTLE)
            with durable.Runtime(_pool_max(store.url, max(CONCURRENCY, lanes))):
                started = time.perf_counter()
                sent = asyncio.run(_enqueue_all(n, scenario, lanes))
                enqueue_seconds = time.perf_counter() - started
            peek = None if scenario.partitions is None else partial(store.busiest, scenario.queue)
            seconds, busiest = _wait_done(procs, store.count, n, started, peek)
            _send(procs, "stop")
            reports = [_last_line(p, timeout=60) for p in procs]
            infos = reader.list_workflows(name=app.CHAIN, limit=None)
            found = [(i.result(), i.enqueued_at, i.started_at) for i in infos]
        finally:
            reader.close()
    failed = sum(r.get("failed", 0) for r in reports)
    if failed:
        errors = sorted({e for r in reports for e in r.get("errors", [])})
        raise BenchError(f"durable workers: {failed} workflows failed: {errors}")
    return Run(
        seconds=seconds,
        enqueue_seconds=enqueue_seconds,
        startup_seconds=startup,
        open_seconds=max(float(r.get("open_seconds", 0.0)) for r in reports),
        per_worker=[int(r.get("completed", 0)) + int(r.get("resumed", 0)) for r in reports],
        times=_timed(n, sent, found),
        most_per_partition=busiest,
    )


# DBOS ------------------------------------------------------------------------


def run_dbos(pg: PgServer, scenario: Scenario, n: int, workers: int, config: Config) -> Run:
    """The same with DBOS: the parent, launched on a fresh database, registers the queue
    and enqueues; ``workers`` DBOS processes dequeue."""
    import psycopg
    from dbos import DBOS, SetEnqueueOptions

    database = f"dbos_bench_{uuid.uuid4().hex[:16]}"
    pg.execute("CREATE DATABASE {}", database)
    try:
        url = pg.url_with(database=database)
        workflow = app.dbos_chain()
        DBOS(config=app.dbos_config(url, "bench-enqueuer", max(CONCURRENCY, config.lanes)))
        DBOS.listen_queues([])  # this process only enqueues
        DBOS.launch()
        try:
            queue = DBOS.register_queue(
                scenario.queue,
                worker_concurrency=CONCURRENCY,
                polling_interval_sec=config.dbos_polling,
                **scenario.dbos_terms(),
            )
            with psycopg.connect(url, autocommit=True) as conn:

                def count() -> int:
                    row = conn.execute(
                        "SELECT count(*) FROM dbos.workflow_status"
                        " WHERE queue_name = %s AND status = 'SUCCESS'",
                        (scenario.queue,),
                    ).fetchone()
                    assert row is not None
                    return int(row[0])

                def busiest() -> int:
                    row = conn.execute(
                        "SELECT max(n) FROM (SELECT count(*) AS n FROM dbos.workflow_status"
                        " WHERE queue_name = %s AND status = 'PENDING'"
                        " GROUP BY queue_partition_key) AS running",
                        (scenario.queue,),
                    ).fetchone()
                    assert row is not None
                    return int(row[0] or 0)

                peek = None if scenario.partitions is None else busiest
                args = [
                    ["dbos", url, f"bench-worker-{k}", scenario.queue, str(config.pool)]
                    for k in range(workers)
                ]
                with spawned(args) as procs:
                    startup, _ = _start_workers(procs)
                    time.sleep(SETTLE)

                    async def enqueue(i: int) -> object:
                        key = scenario.partition_of(i)
                        if key is None:
                            return await queue.enqueue_async(workflow, i)
                        with SetEnqueueOptions(queue_partition_key=key):
                            return await queue.enqueue_async(workflow, i)

                    started = time.perf_counter()
                    sent = asyncio.run(_in_lanes(n, config.lanes, enqueue))
                    enqueue_seconds = time.perf_counter() - started
                    seconds, busiest = _wait_done(procs, count, n, started, peek)
                    _send(procs, "stop")
                    reports = [_last_line(proc, timeout=30) for proc in procs]
            statuses = DBOS.list_workflows(queue_name=scenario.queue, load_input=False)
        finally:
            DBOS.destroy()
    finally:
        pg.execute("DROP DATABASE IF EXISTS {} WITH (FORCE)", database)
    done = [s for s in statuses if s.status == "SUCCESS"]
    found = [(s.output, s.created_at / 1000, s.dequeued_at / 1000) for s in done]  # type: ignore[operator]
    per_executor = Counter(s.executor_id for s in done)
    return Run(
        seconds=seconds,
        enqueue_seconds=enqueue_seconds,
        startup_seconds=startup,
        open_seconds=max(float(r.get("open_seconds", 0.0)) for r in reports),
        per_worker=[per_executor[k] for k in sorted(per_executor)],
        times=_timed(n, sent, found),
        most_per_partition=busiest,
    )


# Running everything ------------------------------------------------------------


def run_all(
    config: Config, backends: tuple[str, ...], pg: PgServer | None, with_dbos: bool
) -> Results:
    results: Results = {}
    n = config.workflows
    # Runs outermost, and DBOS right after durable for each setup, so that a slow
    # moment of the machine hits every setup alike.
    for attempt in range(config.runs):
        for backend in backends:
            for scenario in config.scenarios:
                for workers in config.workers:
                    if backend == SQLITE:
                        with sqlite_store() as store:
                            run = run_durable(store, scenario, n, workers, config.lanes)
                    else:
                        assert pg is not None
                        with postgres_store(pg, config.pool) as store:
                            run = run_durable(store, scenario, n, workers, config.lanes)
                    key = (backend, scenario.key, DURABLE, workers)
                    results.setdefault(key, Sample()).runs.append(run)
                    _progress(attempt, key, scenario, run, config)
                    if backend == POSTGRES and with_dbos:
                        assert pg is not None
                        run = run_dbos(pg, scenario, n, workers, config)
                        key = (backend, scenario.key, DBOS, workers)
                        results.setdefault(key, Sample()).runs.append(run)
                        _progress(attempt, key, scenario, run, config)
    return results


def _progress(
    attempt: int, key: tuple[str, str, str, int], scenario: Scenario, run: Run, config: Config
) -> None:
    backend, _, engine, workers = key
    extra = ""
    if scenario.rate is not None:
        period = scenario.rate[1]
        extra = (
            f"; {run.start_rate(period):.1f} starts/s; most in a window "
            f"{run.most_in_window(period)} as recorded, {run.most_in_window(period, body=True)} "
            "by bodies begun"
        )
    if run.most_per_partition is not None:
        extra = f"; most of one partition at once {run.most_per_partition}"
    print(
        f"  run {attempt + 1}/{config.runs}: {BACKEND_TITLES[backend]}, {scenario.key}, "
        f"{engine}, {workers} worker(s): {config.workflows / run.seconds:,.1f} workflows/s "
        f"({run.seconds:.2f} s; enqueue {run.enqueue_seconds:.2f} s; start latency p50 "
        f"{run.latency(0.5):.3f} s, p99 {run.latency(0.99):.3f} s; recorded start before "
        f"enqueue {run.claimed_before_enqueued()}; start-up {run.startup_seconds:.2f} s; "
        f"open {run.open_seconds:.3f} s; per worker {run.per_worker}{extra})",
        file=sys.stderr,
        flush=True,
    )


# Reporting -------------------------------------------------------------------


def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def main_table(
    results: Results, config: Config, backends: tuple[str, ...], with_dbos: bool
) -> list[list[str]]:
    """Workflows/s and start latency, per store, queue and worker count (medians of the runs)."""
    n = config.workflows
    header = ["Store", "Queue", "Workers", "durable workflows/s", "durable start p50 / p99, s"]
    if with_dbos:
        header += ["DBOS workflows/s", "DBOS start p50 / p99, s", "durable / DBOS"]
    header += ["durable, vs 1 worker"]
    rows = [header]
    for backend in backends:
        for scenario in config.scenarios:
            first = results.get((backend, scenario.key, DURABLE, config.workers[0]))
            base = n / first.median(lambda r: r.seconds) if first else None
            for workers in config.workers:
                ours = results.get((backend, scenario.key, DURABLE, workers))
                rate = n / ours.median(lambda r: r.seconds) if ours else None
                row = [BACKEND_TITLES[backend], scenario.title, str(workers), _num(rate)]
                row.append(_latencies(ours))
                if with_dbos:
                    theirs = results.get((backend, scenario.key, DBOS, workers))
                    peer = n / theirs.median(lambda r: r.seconds) if theirs else None
                    ratio = rate / peer if rate and peer else None
                    row += [
                        _num(peer) if theirs else "—",
                        _latencies(theirs),
                        f"{_num(ratio)}x" if ratio else "—",
                    ]
                scale = rate / base if rate and base and workers != config.workers[0] else None
                row.append(f"{scale:.2f}x" if scale else "")
                rows.append(row)
    return rows


def _latencies(sample: Sample | None) -> str:
    if sample is None:
        return "—"
    return f"{_secs(sample.median(lambda r: r.latency(0.5)))} / " + _secs(
        sample.median(lambda r: r.latency(0.99))
    )


def flow_table(results: Results, config: Config) -> list[list[str]] | None:
    """Whether the flow control held: starts per window, and per partition at once."""
    rows = [
        [
            "Store",
            "Queue",
            "Setup",
            "Workers",
            "starts/s achieved",
            "of the limit",
            "most starts in a window, as recorded",
            "the same, by bodies begun",
            "most of one key at once",
        ]
    ]
    by_key = {s.key: s for s in config.scenarios}
    for (backend, key, engine, workers), sample in results.items():
        scenario = by_key[key]
        if scenario.rate is not None:
            most, period = scenario.rate
            achieved = statistics.median(r.start_rate(period) for r in sample.runs)
            recorded = max(r.most_in_window(period) for r in sample.runs)
            began = max(r.most_in_window(period, body=True) for r in sample.runs)
            row = [
                _num(achieved),
                f"{achieved / (most / period):.0%}",
                f"{recorded} (limit {most})",
                str(began),
                "—",
            ]
        elif scenario.partitions is not None:
            worst = max(r.most_per_partition or 0 for r in sample.runs)
            row = ["—", "—", "—", "—", f"{worst} (limit {scenario.partitions[1]})"]
        else:
            continue
        rows.append([BACKEND_TITLES[backend], scenario.title, engine, str(workers), *row])
    return rows if len(rows) > 1 else None


def detail_table(results: Results, config: Config) -> list[list[str]]:
    """Enqueue rate, worker start-up, and how the work was shared, per setup."""
    n = config.workflows
    by_key = {s.key: s for s in config.scenarios}
    rows = [
        [
            "Store",
            "Queue",
            "Setup",
            "Workers",
            "run, s",
            "enqueues/s",
            "worker start-up, s",
            "open or launch, s",
            "recorded start before enqueue",
            "workflows per worker (last run)",
        ]
    ]
    for (backend, key, engine, workers), sample in results.items():
        rows.append(
            [
                BACKEND_TITLES[backend],
                by_key[key].title,
                engine,
                str(workers),
                f"{sample.median(lambda r: r.seconds):.2f}",
                _num(n / sample.median(lambda r: r.enqueue_seconds)),
                f"{sample.median(lambda r: r.startup_seconds):.2f}",
                f"{sample.median(lambda r: r.open_seconds):.3f}",
                str(max(r.claimed_before_enqueued() for r in sample.runs)),
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
    load = ""
    with contextlib.suppress(OSError):
        load = ", load average at start " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return (
        f"machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}" + load
    )


# Entry point -----------------------------------------------------------------


def _pair(text: str, what: str, parser: argparse.ArgumentParser) -> tuple[int, float]:
    try:
        first, second = text.split("/")
        pair = int(first), float(second)
    except ValueError:
        parser.error(f"{what} takes N/M, e.g. 200/1, not {text!r}")
    if pair[0] < 1 or pair[1] <= 0:
        parser.error(f"{what} takes N/M with N >= 1 and M > 0, not {text!r}")
    return pair


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--workflows",
        type=int,
        default=None,
        help=f"workflows per run (default {DEFAULT_WORKFLOWS})",
    )
    parser.add_argument("--runs", type=int, default=None, help="runs; the median is shown")
    parser.add_argument(
        "--workers",
        default=None,
        help="comma-separated worker process counts (default 1,4,8)",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated queues to run, from: {', '.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--rate-limit",
        default=f"{DEFAULT_RATE[0]}/{DEFAULT_RATE[1]:g}",
        help="the rate queue's limit, STARTS/SECONDS (default "
        f"{DEFAULT_RATE[0]}/{DEFAULT_RATE[1]:g})",
    )
    parser.add_argument(
        "--partitions",
        default=f"{DEFAULT_PARTITIONS[0]}/{DEFAULT_PARTITIONS[1]}",
        help="the partitioned queue's KEYS/AT-ONCE-PER-KEY (default "
        f"{DEFAULT_PARTITIONS[0]}/{DEFAULT_PARTITIONS[1]})",
    )
    parser.add_argument(
        "--in-flight",
        type=int,
        default=DEFAULT_LANES,
        help=f"enqueue calls the parent keeps in flight (default {DEFAULT_LANES}; 1: one after "
        "another)",
    )
    parser.add_argument(
        "--pool",
        type=int,
        default=DEFAULT_POOL,
        help=f"database connections per worker process, both engines (default {DEFAULT_POOL})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 30 workflows, 1 run, 1 and 2 workers",
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
    add_store_args(parser, ", and DBOS a database of its own")
    args = parser.parse_args(argv)
    if args.workflows is None:
        args.workflows = 30 if args.quick else DEFAULT_WORKFLOWS
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    if args.workers is None:
        args.workers = "1,2" if args.quick else "1,4,8"
    try:
        workers = tuple(int(w) for w in args.workers.split(",") if w.strip())
    except ValueError:
        workers = ()
    if not workers or min(workers) < 1:
        parser.error("--workers takes a comma-separated list of whole numbers >= 1")
    args.workers = tuple(dict.fromkeys(workers))
    if min(args.workflows, args.runs, args.pool, args.in_flight) < 1 or args.dbos_polling <= 0:
        parser.error(
            "--workflows, --runs, --pool and --in-flight must be at least 1, --dbos-polling above 0"
        )
    chosen = tuple(dict.fromkeys(s.strip() for s in args.scenarios.split(",") if s.strip()))
    if not chosen or any(s not in SCENARIOS for s in chosen):
        parser.error(f"--scenarios takes a comma-separated list of {', '.join(SCENARIOS)}")
    rate = _pair(args.rate_limit, "--rate-limit", parser)
    keys, per_key = _pair(args.partitions, "--partitions", parser)
    if per_key != int(per_key):
        parser.error("--partitions takes KEYS/AT-ONCE, both whole numbers")
    made = {
        PLAIN: Scenario(PLAIN),
        RATE: Scenario(RATE, rate=rate),
        PARTITIONS: Scenario(PARTITIONS, partitions=(keys, int(per_key))),
    }
    args.scenarios = tuple(made[s] for s in chosen)
    choose_backends(args, parser)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = Config(
        args.workflows,
        args.runs,
        args.workers,
        args.scenarios,
        args.dbos_polling,
        args.pool,
        args.in_flight,
    )
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
    at_start = machine()
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
            f"steps, enqueued by the parent ({config.lanes} call(s) in flight) while "
            f"{'/'.join(map(str, config.workers))} worker process(es) of concurrency "
            f"{CONCURRENCY} run them; "
            f"{', '.join(s.title for s in config.scenarios)}; median of {config.runs} run(s); "
            f"{took:.1f} s in all"
        )
        print(", ".join(f"{k} {v}" for k, v in versions(dbos if with_dbos else None, pg).items()))
        print(at_start)
        if pg is not None:
            print(
                f"PostgreSQL {pg.version} (synchronous_commit={pg.synchronous_commit}): a fresh "
                f"schema per durable run, at most {config.pool} connections per worker process"
                + (
                    f"; DBOS in a fresh database per run, queue polling every "
                    f"{config.dbos_polling:g} s"
                    if with_dbos
                    else ""
                )
            )
        print()
        print(render(main_table(results, config, backends, with_dbos), args.markdown))
        flow = flow_table(results, config)
        if flow is not None:
            print()
            print(render(flow, args.markdown))
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
