"""Reads and cleanup on a large store: 1,000,000 finished workflows of 10 steps each.

The store is filled with plain SQL (``INSERT ... SELECT`` over a generated
series: a million workflows through the engine would take most of an hour),
in the tables and columns durable itself writes; one workflow in a hundred
also holds a superseded record (a step retried after a restore, say). Then,
through the public :class:`durable.Store`, it times:

- ``history(id)`` of workflows spread over the store (what ``durable
  inspect`` and the dashboard's workflow page read);
- ``list_workflows(limit=50)``: the newest, by name, and by status;
- ``get_workflow(id)``;
- ``cleanup(older_than=0)`` of every workflow: the DELETE of all their
  rows, in one transaction, last.

    python benchmarks/store_scale.py                              # SQLite, 1,000,000 x 10
    python benchmarks/store_scale.py --backends sqlite,postgresql --markdown
    python benchmarks/store_scale.py --workflows 10000 --repeat 3  # a quick look

Medians (and the slowest) over ``--repeat`` reads of different workflows.
Nothing here asserts on timings: the figures are for reading.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator

import bench

import durable

NAME = "bench.scale"
# Columns every workflow row needs (the others default to NULL or 0).
_WORKFLOW_COLUMNS = (
    "workflow_id, name, status, args_fingerprint, attempts, epoch, "
    "created_at, updated_at, finished_at, priority, recoveries"
)
_STEP_COLUMNS = (
    "workflow_id, position, name, status, output, attempt, started_at, finished_at, "
    "superseded, kind"
)


def _fill_sqlite(path: str, workflows: int, steps: int, t0: float) -> None:
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as conn:
        series = "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
        wid = "printf('wf-%08d', i)"
        conn.execute(
            f"{series} INSERT INTO durable_workflows ({_WORKFLOW_COLUMNS}) "
            f"SELECT {wid}, '{NAME}', 'success', '', 1, 1, ? + i * 0.001, ? + i * 0.001, "
            "? + i * 0.001, 0, 0 FROM n",
            (workflows - 1, t0, t0, t0),
        )
        conn.execute(
            f"{series}, p(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM p WHERE j < ?) "
            f"INSERT INTO durable_steps ({_STEP_COLUMNS}) "
            f"SELECT {wid}, j, 'step', 'success', randomblob(28), 1, ? + i * 0.001, "
            "? + i * 0.001, 0, 'step' FROM n, p",
            (workflows - 1, steps - 1, t0, t0),
        )
        conn.execute(
            f"{series} INSERT INTO durable_steps ({_STEP_COLUMNS}) "
            f"SELECT {wid}, 0, 'step', 'error', randomblob(28), 1, ?, ?, 1, 'step' "
            "FROM n WHERE i % 100 = 0",
            (workflows - 1, t0, t0),
        )
        conn.commit()


def _fill_postgres(url: str, schema: str, workflows: int, steps: int, t0: float) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        wid = "'wf-' || lpad(i::text, 8, '0')"
        conn.execute(
            f"INSERT INTO durable_workflows ({_WORKFLOW_COLUMNS}) "
            f"SELECT {wid}, '{NAME}', 'success', '', 1, 1, %(t0)s + i * 0.001, "
            "%(t0)s + i * 0.001, %(t0)s + i * 0.001, 0, 0 "
            "FROM generate_series(0, %(last)s) AS i",
            {"t0": t0, "last": workflows - 1},
        )
        conn.execute(
            f"INSERT INTO durable_steps ({_STEP_COLUMNS}) "
            f"SELECT {wid}, j, 'step', 'success', sha224((i * 1000 + j)::text::bytea), 1, "
            "%(t0)s + i * 0.001, %(t0)s + i * 0.001, false, 'step' "
            "FROM generate_series(0, %(last)s) AS i, generate_series(0, %(steps)s) AS j",
            {"t0": t0, "last": workflows - 1, "steps": steps - 1},
        )
        conn.execute(
            f"INSERT INTO durable_steps ({_STEP_COLUMNS}) "
            f"SELECT {wid}, 0, 'step', 'error', sha224(i::text::bytea), 1, %(t0)s, %(t0)s, "
            "true, 'step' FROM generate_series(0, %(last)s, 100) AS i",
            {"t0": t0, "last": workflows - 1},
        )
        conn.execute("ANALYZE")


@contextlib.contextmanager
def _store(backend: str, postgres_url: str, workflows: int, steps: int) -> Iterator[str]:
    """A store of ``workflows`` finished workflows, ``steps`` records each; its URL."""
    t0 = time.time() - 86_400
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/scale.db"
            with durable.Runtime(url):  # durable makes the schema
                pass
            _fill_sqlite(f"{tmp}/scale.db", workflows, steps, t0)
            yield url
        return
    import psycopg

    schema = f"scale_{uuid.uuid4().hex[:8]}"
    base = postgres_url.partition("?")[0]
    url = f"{base}?schema={schema}"
    try:
        with durable.Runtime(url):
            pass
        _fill_postgres(base, schema, workflows, steps, t0)
        yield url
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _timed(call: Callable[[int], object], picks: list[int]) -> tuple[float, float]:
    """Median and slowest seconds of ``call`` over ``picks``."""
    seconds = []
    for pick in picks:
        started = time.perf_counter()
        call(pick)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), max(seconds)


def measure(url: str, workflows: int, repeat: int) -> dict[str, tuple[float, float]]:
    """Each read's (median, slowest) seconds, then the cleanup's (seconds, seconds)."""
    picks = [workflows * k // (repeat + 1) for k in range(1, repeat + 1)]
    found: dict[str, tuple[float, float]] = {}
    with durable.Store.open(url) as store:
        store.get_workflow("wf-00000000")  # connected, statements ready
        found["history(id)"] = _timed(lambda i: store.history(f"wf-{i:08d}"), picks)
        found["get_workflow(id)"] = _timed(lambda i: store.get_workflow(f"wf-{i:08d}"), picks)
        found["list_workflows(limit=50)"] = _timed(lambda _: store.list_workflows(limit=50), picks)
        found["list_workflows(name=, limit=50)"] = _timed(
            lambda _: store.list_workflows(name=NAME, limit=50), picks
        )
        found["list_workflows(status=error, limit=50)"] = _timed(
            lambda _: store.list_workflows(status="error", limit=50), picks
        )
        started = time.perf_counter()
        report = store.cleanup(older_than=0)
        seconds = time.perf_counter() - started
        assert report.workflows == workflows, report
        found[f"cleanup(older_than=0): {report.workflows:,} workflows, {report.steps:,} steps"] = (
            seconds,
            seconds,
        )
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=10, help="records per workflow")
    parser.add_argument("--repeat", type=int, default=15, help="reads of each kind")
    parser.add_argument("--markdown", action="store_true")
    bench.add_store_args(parser)
    args = parser.parse_args(argv)
    bench.choose_backends(args, parser)
    why = bench.postgres_unavailable(args.postgres_url) if "postgresql" in args.backends else None
    if why is not None:
        if args.explicit_backends:
            parser.error(f"PostgreSQL: {why}")
        args.backends = tuple(b for b in args.backends if b != "postgresql")
    rows = [["store", "what", "median", "slowest"]]
    for backend in args.backends:
        started = time.perf_counter()
        with _store(backend, args.postgres_url, args.workflows, args.steps) as url:
            filled = time.perf_counter() - started
            print(f"{backend}: filled in {filled:.0f} s", file=sys.stderr, flush=True)
            for what, (median, slowest) in measure(url, args.workflows, args.repeat).items():
                rows.append([backend, what, f"{median * 1000:.1f} ms", f"{slowest * 1000:.1f} ms"])
    print(bench.render(rows, args.markdown))


if __name__ == "__main__":
    main()
