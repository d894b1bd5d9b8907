"""Many workflows waiting in one worker process, then woken by a storm of events.

Issue 21 quotes a seed system's claims: 10,000+ active workflows on
PostgreSQL and 1,000+ on SQLite, with p99 save under 50 ms / 20 ms and load
under 30 ms / 10 ms. This measures ours. Per run, on a fresh store:

1. One worker process (``durable.Worker(url, queues=[q], concurrency=C)``,
   what ``durable worker`` runs, started with ``subprocess``) is up; a few
   warm-up workflows go through it first (so that what a first workflow
   loads is not counted as the waiting workflows' memory).
2. The parent enqueues N workflows (``waiter.enqueue(i, on, suspend)``):
   each runs a step, then waits, half of them on ``durable.wait_for_event``
   and half on ``durable.sleep`` (a week). Two modes, in runs of their own:
   ``held``, the wait is awaited in the worker (the workflow keeps its task
   and one of the worker's C slots, so C >= N), and ``suspended``
   (``suspend=True``: the wait is recorded, the workflow is given up and
   unwinds; a worker resumes it once its event arrived or its timer fired).
3. Once the store shows all N waiting (status ``waiting``), and 2 s more (``--settle``),
   the worker's resident memory (RSS, psutil) is read again: (RSS with N
   waiting - RSS before) / N is the memory per waiting workflow. The
   worker's CPU time over those seconds is shown too (what N waiting workflows
   cost when nothing happens).
4. The storm: the parent sends the N/2 event waiters their event,
   ``await durable.send_event(id, "go", i)``, 64 calls in flight, noting
   ``time.time()`` just before each call. Each woken workflow's next step
   returns ``time.time()`` as its body begins: the wake-up latency is the
   difference (one host, one clock). p50/p99 over the N/2, and the time from
   the first send until the store shows all N/2 finished.
5. During the storm, step saves and loads:
   - in the worker: every step save (the time from handing a step's record
     to the store until its commit returned, as the engine times it for
     ``Store.metrics()``), split into those before the storm (the N
     workflows' first steps and waits, all starting at once) and during it;
   - in a probe process of its own (a client of the same store, another
     connection): over and over, a sync workflow of 5 tiny steps (each
     step save timed by its runtime the same way), ``Store.history(id)`` of
     a random waiting workflow (its whole history: the workflow row and
     every step record, decoded), and the backend's ``load_steps(id)``
     (the live step records, what a workflow reads when it starts or
     resumes).

Run: ``python benchmarks/waiting.py [--workflows-sqlite N] [--workflows-postgresql N]
[--modes held,suspended] [--runs N] [--sleepers FRACTION] [--settle SECONDS] [--smoke] [--markdown]
[--backends sqlite,postgresql] [--postgres-url URL]``. Nothing here asserts on timings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import _waiting_app as app
import sqlalchemy as sa
from bench import (
    BACKEND_TITLES,
    BACKENDS,
    POSTGRES,
    SQLITE,
    PgServer,
    add_store_args,
    choose_backends,
    postgres_unavailable,
    render,
    versions,
)

import durable

HERE = Path(__file__).resolve().parent
HELD, SUSPENDED = "held", "suspended"
MODES = (HELD, SUSPENDED)
DEFAULT_WORKFLOWS = {SQLITE: 1_000, POSTGRES: 10_000}
SMOKE_WORKFLOWS = 20
WARM_UP = 20
"""Workflows run through the worker before the memory baseline."""
QUEUE = "bench-waiting"
LANES = 64
"""Enqueue and send_event calls the parent keeps in flight."""
SETTLE = 2.0
"""Seconds between all N waiting and the second memory reading (``--settle``)."""
POLL = 0.05
TIMEOUT = 900.0
"""Longest wait for one phase of a run, in seconds."""
_CODE = "import sys, _waiting_app; sys.exit(_waiting_app.main(sys.argv[1:]))"


class BenchError(RuntimeError):
    """A run did not finish as it should."""


@dataclass
class Run:
    """One run: N workflows waiting in one worker, then N/2 events at once."""

    workflows: int
    events: int
    enqueue_seconds: float
    """The parent's N enqueue calls (LANES in flight)."""
    to_waiting: float
    """From the first enqueue call until the store shows N waiting."""
    rss_before: int
    rss_waiting: int
    rss_after: int
    """Once the event waiters have finished (the sleepers still wait)."""
    idle_cpu: float
    """The worker's CPU seconds per second while N wait and nothing happens."""
    send_seconds: float
    """Sending the events (the parent's send_event calls)."""
    all_woken: float
    """From the first send until the store shows every event waiter finished."""
    latencies: list[float]
    """Per event waiter: from its send_event call to its next step's body."""
    worker: dict[str, Any]
    probe: dict[str, Any]
    load: str
    """The load average as the storm began."""

    @property
    def per_workflow(self) -> float:
        return (self.rss_waiting - self.rss_before) / self.workflows

    def latency(self, q: float) -> float:
        return quantile(self.latencies, q)


@dataclass
class Sample:
    runs: list[Run] = field(default_factory=list)

    def median(self, pick: Callable[[Run], float | None]) -> float | None:
        values = [v for v in (pick(r) for r in self.runs) if v is not None]
        return statistics.median(values) if values else None


Results = dict[tuple[str, str], Sample]
"""Keyed by (backend, mode)."""


def quantile(values: Sequence[float], q: float) -> float:
    """The nearest-rank quantile (q=0.5: the median value, q=0.99: p99)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


# Processes -------------------------------------------------------------------


@dataclass
class Proc:
    popen: subprocess.Popen[str]
    stderr: IO[str]

    def say(self, line: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(line + "\n")
        self.popen.stdin.flush()

    def expect(self, expected: str, timeout: float = 120.0) -> str:
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline().strip()
        if expected and line != expected and not line.startswith(expected):
            raise BenchError(
                f"a process said {line!r} for {expected!r} (exit {self.popen.poll()}):\n"
                + self.stderr_text()
            )
        return line

    def stderr_text(self) -> str:
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read()[-4000:]


@contextlib.contextmanager
def spawned(args: list[str]) -> Iterator[Proc]:
    """A process of ``_waiting_app``; killed if still alive at the end."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p)
    with tempfile.TemporaryFile("w+", prefix="durable-bench-waiting-") as stderr:
        popen = subprocess.Popen(
            [sys.executable, "-c", _CODE, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )
        try:
            yield Proc(popen, stderr)
        finally:
            if popen.poll() is None:
                popen.kill()
                popen.wait()
            for pipe in (popen.stdin, popen.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()


def rss(pid: int) -> int:
    """Resident set size of a process, in bytes (psutil, else /proc)."""
    try:
        import psutil  # type: ignore[import-untyped,unused-ignore]

        return int(psutil.Process(pid).memory_info().rss)
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise BenchError("cannot read the worker's RSS (install psutil)") from None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    try:
        import psutil  # type: ignore[import-untyped,unused-ignore]

        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    except ImportError:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


# Stores ----------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    url: str
    count: Callable[[str], int]
    """Workflows of the benchmark with a status."""


_COUNT = f"SELECT count(*) FROM {{}} WHERE status = ? AND name = '{app.WAITER}'"


@contextlib.contextmanager
def sqlite_store() -> Iterator[Store]:
    with tempfile.TemporaryDirectory(prefix="durable-bench-") as tmp:
        db = Path(tmp) / "store.db"
        conns: list[sqlite3.Connection] = []

        def count(status: str) -> int:
            if not conns:
                conns.append(sqlite3.connect(db, timeout=30, isolation_level=None))
            row = conns[0].execute(_COUNT.format("durable_workflows"), (status,)).fetchone()
            return int(row[0] or 0)

        try:
            yield Store(f"sqlite:///{db}", count)
        finally:
            for conn in conns:
                conn.close()


@contextlib.contextmanager
def postgres_store(pg: PgServer) -> Iterator[Store]:
    from psycopg import sql

    schema = f"bench_{uuid.uuid4().hex[:16]}"
    table = sql.Identifier(schema, "durable_workflows")

    def count(status: str) -> int:
        statement = sql.SQL(_COUNT.replace("?", "%s")).format(table)
        row = pg.admin.execute(statement, (status,)).fetchone()
        assert row is not None
        return int(row[0] or 0)

    try:
        yield Store(pg.url_with(schema=schema), count)
    finally:
        pg.execute("DROP SCHEMA IF EXISTS {} CASCADE", schema)


def _pool(url: str, size: int) -> str:
    made = sa.make_url(url)
    if not made.drivername.startswith("postgresql"):
        return url
    return made.update_query_dict({"pool_max": str(size)}).render_as_string(hide_password=False)


# One run ---------------------------------------------------------------------


def _wait_for(
    what: str, count: Callable[[], int], n: int, worker: Proc, started: float | None = None
) -> float:
    """Seconds from ``started`` (now if None) until ``count()`` reaches ``n``."""
    started = time.perf_counter() if started is None else started
    while True:
        done = count()
        if done >= n:
            return time.perf_counter() - started
        if worker.popen.poll() is not None:
            raise BenchError(
                f"the worker exited with {done} of {n} {what}:\n{worker.stderr_text()}"
            )
        if time.perf_counter() - started > TIMEOUT:
            raise BenchError(f"timed out after {TIMEOUT:g} s with {done} of {n} {what}")
        time.sleep(POLL)


async def _in_lanes(items: Sequence[int], call: Callable[[int], Any]) -> dict[int, float]:
    """``await call(i)`` for each item, LANES in flight; the time just before each call."""
    sent: dict[int, float] = {}
    pending = iter(items)

    async def lane() -> None:
        for i in pending:
            sent[i] = time.time()
            await call(i)

    await asyncio.gather(*(lane() for _ in range(LANES)))
    return sent


def _enqueue(ids: Sequence[int], on: Callable[[int], str], suspend: bool) -> None:
    async def one(i: int) -> None:
        await app.waiter.enqueue(i, on(i), suspend, queue=QUEUE, workflow_id=app.waiter_id(i))

    asyncio.run(_in_lanes(ids, one))


def _send(ids: Sequence[int]) -> dict[int, float]:
    async def one(i: int) -> None:
        await durable.send_event(app.waiter_id(i), app.KEY, i)

    return asyncio.run(_in_lanes(ids, one))


def run_once(store: Store, mode: str, n: int, sleepers: float, settle: float = SETTLE) -> Run:
    suspend = mode == SUSPENDED
    n_sleep = round(n * sleepers)
    event_ids = list(range(n_sleep, n))

    def on(i: int) -> str:
        return app.SLEEP if i < n_sleep else app.EVENT

    warm = list(range(n, n + WARM_UP))
    concurrency = n + WARM_UP + 16
    with spawned(["worker", store.url, str(concurrency), QUEUE]) as worker:
        worker.expect("ready")
        worker.say("go")
        worker.expect("up")
        pid = worker.popen.pid
        with durable.Runtime(_pool(store.url, LANES)):
            # Warm-up: workflows through every path the measured ones take.
            _enqueue(warm, lambda i: app.EVENT, suspend)
            _wait_for("warm-up workflows waiting", lambda: store.count("waiting"), WARM_UP, worker)
            _send(warm)
            _wait_for("warm-up workflows done", lambda: store.count("success"), WARM_UP, worker)
            worker.say("gc")
            worker.expect("collected")
            time.sleep(0.5)
            rss_before = rss(pid)

            started = time.perf_counter()
            _enqueue(range(n), on, suspend)
            enqueue_seconds = time.perf_counter() - started
            to_waiting = _wait_for(
                "workflows waiting", lambda: store.count("waiting"), n, worker, started
            )
            worker.say("gc")
            worker.expect("collected")
            cpu = cpu_seconds(pid)
            time.sleep(settle)
            idle_cpu = (cpu_seconds(pid) - cpu) / settle
            rss_waiting = rss(pid)
            worker.say("mark")
            worker.expect("marked")

            with spawned(["probe", store.url, str(n)]) as probe:
                probe.expect("up")
                load = load_average()
                started = time.perf_counter()
                sent = _send(event_ids)
                send_seconds = time.perf_counter() - started
                goal = WARM_UP + len(event_ids)
                all_woken = _wait_for(
                    "event waiters done", lambda: store.count("success"), goal, worker, started
                )
                probe.say("stop")
                probe_report = json.loads(probe.expect("{", timeout=60))
            rss_after = rss(pid)
            worker.say("report")
            worker_report = json.loads(worker.expect("{", timeout=60))
            reader = durable.current_runtime().store
            latencies = []
            for info in reader.list_workflows(name=app.WAITER, status="success", limit=None):
                i, began = info.result()
                if i < n:
                    latencies.append(began - sent[i])
    if len(latencies) != len(event_ids):
        raise BenchError(f"{len(latencies)} of {len(event_ids)} event waiters have a result")
    if worker_report.get("failed"):
        raise BenchError(f"the worker: workflows failed: {worker_report.get('errors')}")
    return Run(
        workflows=n,
        events=len(event_ids),
        enqueue_seconds=enqueue_seconds,
        to_waiting=to_waiting,
        rss_before=rss_before,
        rss_waiting=rss_waiting,
        rss_after=rss_after,
        idle_cpu=idle_cpu,
        send_seconds=send_seconds,
        all_woken=all_woken,
        latencies=latencies,
        worker=worker_report,
        probe=probe_report,
        load=load,
    )


def run_all(
    backends: tuple[str, ...],
    modes: tuple[str, ...],
    sizes: dict[str, int],
    runs: int,
    sleepers: float,
    pg: PgServer | None,
    settle: float = SETTLE,
) -> Results:
    results: Results = {}
    for attempt in range(runs):
        for backend in backends:
            for mode in modes:
                n = sizes[backend]
                if backend == SQLITE:
                    with sqlite_store() as store:
                        run = run_once(store, mode, n, sleepers, settle)
                else:
                    assert pg is not None
                    with postgres_store(pg) as store:
                        run = run_once(store, mode, n, sleepers, settle)
                results.setdefault((backend, mode), Sample()).runs.append(run)
                _progress(attempt, runs, backend, mode, run)
    return results


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:.1f}"


def _progress(attempt: int, runs: int, backend: str, mode: str, run: Run) -> None:
    w, p = run.worker, run.probe
    print(
        f"  run {attempt + 1}/{runs}: {BACKEND_TITLES[backend]}, {mode}, {run.workflows} waiting: "
        f"enqueued in {run.enqueue_seconds:.2f} s, {run.to_waiting:.2f} s to all waiting; "
        f"{run.per_workflow / 1024:.1f} KiB each "
        f"(RSS {run.rss_before / 2**20:.0f} -> {run.rss_waiting / 2**20:.0f} -> "
        f"{run.rss_after / 2**20:.0f} MiB); idle CPU {run.idle_cpu:.0%}; {run.events} events "
        f"sent in {run.send_seconds:.2f} s, all woken {run.all_woken:.2f} s, wake-up p50 "
        f"{run.latency(0.5):.3f} s p99 {run.latency(0.99):.3f} s; worker saves p99 "
        f"{_ms(w['setup_saves'].get('p99'))} ms before, {_ms(w['load_saves'].get('p99'))} ms "
        f"during (n={w['load_saves']['n']}); probe ({p['rounds']} rounds) saves p99 "
        f"{_ms(p['saves'].get('p99'))} ms, history p99 {_ms(p['history'].get('p99'))} ms, "
        f"load_steps p99 {_ms(p['load_steps'].get('p99'))} ms; load average {run.load}",
        file=sys.stderr,
        flush=True,
    )


# Reporting -------------------------------------------------------------------

SEED = {
    SQLITE: ("1,000+", 20.0, 10.0),
    POSTGRES: ("10,000+", 50.0, 30.0),
}
"""The seed's claims: active workflows, p99 save and p99 load (ms)."""


def _med_ms(sample: Sample, pick: Callable[[Run], float | None]) -> str:
    return _ms(sample.median(pick))


def main_table(results: Results) -> list[list[str]]:
    rows = [
        [
            "Store",
            "Mode",
            "Waiting (events sent)",
            "enqueued / all waiting, s",
            "worker RSS before / waiting / after, MiB",
            "memory per waiting workflow, KiB",
            "worker CPU while they wait",
            "wake-up p50 / p99, ms",
            "all woken, s",
            "step save p99, ms: worker, before / during",
            "step save p99, ms: probe, during",
            "load p99, ms: history / load_steps, during",
        ]
    ]
    for (backend, mode), s in results.items():
        first = s.runs[0]
        rows.append(
            [
                BACKEND_TITLES[backend],
                mode,
                f"{first.workflows:,} ({first.events:,})",
                f"{s.median(lambda r: r.enqueue_seconds):.2f} / "
                f"{s.median(lambda r: r.to_waiting):.2f}",
                " / ".join(
                    f"{s.median(pick):.0f}"
                    for pick in (
                        lambda r: r.rss_before / 2**20,
                        lambda r: r.rss_waiting / 2**20,
                        lambda r: r.rss_after / 2**20,
                    )
                ),
                f"{s.median(lambda r: r.per_workflow / 1024):.1f}",
                f"{s.median(lambda r: r.idle_cpu):.0%}",
                f"{_med_ms(s, lambda r: r.latency(0.5))} / {_med_ms(s, lambda r: r.latency(0.99))}",
                f"{s.median(lambda r: r.all_woken):.2f}",
                f"{_med_ms(s, lambda r: r.worker['setup_saves'].get('p99'))} / "
                f"{_med_ms(s, lambda r: r.worker['load_saves'].get('p99'))}",
                _med_ms(s, lambda r: r.probe["saves"].get("p99")),
                f"{_med_ms(s, lambda r: r.probe['history'].get('p99'))} / "
                f"{_med_ms(s, lambda r: r.probe['load_steps'].get('p99'))}",
            ]
        )
    return rows


def seed_table(results: Results) -> list[list[str]]:
    """Ours beside the seed's claims (the worst mode of each store)."""
    rows = [["Store", "Claim", "Seed", "durable (median of runs, worst mode)"]]
    for backend in BACKENDS:
        samples = {m: s for (b, m), s in results.items() if b == backend}
        if not samples:
            continue
        active, save, load = SEED[backend]
        held = max(s.runs[0].workflows for s in samples.values())

        def worst(pick: Callable[[Run], float | None], samples: dict[str, Sample] = samples) -> str:
            values = [v for v in (s.median(pick) for s in samples.values()) if v is not None]
            return _ms(max(values)) if values else "—"

        title = BACKEND_TITLES[backend]
        rows += [
            [title, "active (waiting) workflows", active, f"{held:,} in one worker process"],
            [
                title,
                "p99 save, ms",
                f"< {save:g}",
                f"{worst(lambda r: r.worker['load_saves'].get('p99'))} in the worker, "
                f"{worst(lambda r: r.probe['saves'].get('p99'))} in the probe",
            ],
            [
                title,
                "p99 load, ms",
                f"< {load:g}",
                f"{worst(lambda r: r.probe['load_steps'].get('p99'))} (load_steps), "
                f"{worst(lambda r: r.probe['history'].get('p99'))} (history)",
            ],
        ]
    return rows


# Entry point -----------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--workflows-sqlite",
        type=int,
        default=None,
        help=f"waiting workflows on SQLite (default {DEFAULT_WORKFLOWS[SQLITE]:,})",
    )
    parser.add_argument(
        "--workflows-postgresql",
        type=int,
        default=None,
        help=f"waiting workflows on PostgreSQL (default {DEFAULT_WORKFLOWS[POSTGRES]:,})",
    )
    parser.add_argument("--runs", type=int, default=None, help="runs; medians are shown")
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated, from: held, suspended"
    )
    parser.add_argument(
        "--sleepers",
        type=float,
        default=0.5,
        help="the share of the workflows that sleep (the rest wait for an event; default 0.5)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=SETTLE,
        help=f"seconds with all N waiting over which the worker's idle CPU is read "
        f"(default {SETTLE:g})",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"a smoke run: {SMOKE_WORKFLOWS} workflows, 1 run",
    )
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    add_store_args(parser)
    args = parser.parse_args(argv)
    small = SMOKE_WORKFLOWS if args.smoke else None
    args.sizes = {
        SQLITE: args.workflows_sqlite or small or DEFAULT_WORKFLOWS[SQLITE],
        POSTGRES: args.workflows_postgresql or small or DEFAULT_WORKFLOWS[POSTGRES],
    }
    if args.runs is None:
        args.runs = 1 if args.smoke else 3
    if min(args.runs, *args.sizes.values()) < 1:
        parser.error("--runs and the workflow counts must be at least 1")
    if args.settle <= 0:
        parser.error("--settle takes a number of seconds above 0")
    if not 0 <= args.sleepers < 1:
        parser.error("--sleepers takes a share from 0 (none sleep) up to, not including, 1")
    modes = tuple(dict.fromkeys(m.strip() for m in args.modes.split(",") if m.strip()))
    if not modes or any(m not in MODES for m in modes):
        parser.error(f"--modes takes a comma-separated list of {', '.join(MODES)}")
    args.modes = modes
    choose_backends(args, parser)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
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
    pg = PgServer(args.postgres_url) if POSTGRES in backends else None
    at_start = load_average()
    try:
        started = time.perf_counter()
        try:
            results = run_all(
                backends, args.modes, args.sizes, args.runs, args.sleepers, pg, args.settle
            )
        except BenchError as exc:
            print(f"waiting benchmark failed: {exc}", file=sys.stderr)
            return 1
        took = time.perf_counter() - started
        print(
            "durable waiting benchmark: one worker process holds N workflows waiting "
            f"({args.sleepers:.0%} on a week's durable.sleep, the rest on wait_for_event), "
            f"then their events are sent at once ({LANES} send_event calls in flight); "
            f"idle CPU over {args.settle:g} s; median of {args.runs} run(s); {took:.1f} s in all"
        )
        print(", ".join(f"{k} {v}" for k, v in versions(None, pg).items()))
        print(
            f"machine: {os.cpu_count()} CPUs; load average at start {at_start}, at the end "
            f"{load_average()}; at each storm: "
            + "; ".join(
                f"{BACKEND_TITLES[b]} {m}: " + ", ".join(r.load for r in s.runs)
                for (b, m), s in results.items()
            )
        )
        print()
        print(render(main_table(results), args.markdown))
        print()
        print(render(seed_table(results), args.markdown))
        for note in notes:
            print()
            print(note)
        return 0
    finally:
        if pg is not None:
            pg.close()


if __name__ == "__main__":
    sys.exit(main())
