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

The workflows were created over the twelve months before this one. With
``--monthly``, each PostgreSQL store is measured twice: as it is, and kept by
month (``Store.partition_by_month``, timed too), where the cleanup drops
eleven or twelve partitions instead of deleting their records.

    python benchmarks/store_scale.py                              # SQLite, 1,000,000 x 10
    python benchmarks/store_scale.py --backends sqlite,postgresql --markdown
    python benchmarks/store_scale.py --backends postgresql --monthly --markdown
    python benchmarks/store_scale.py --workflows 10000 --repeat 3  # a quick look

Medians (and the slowest) over ``--repeat`` reads of different workflows.
Nothing here asserts on timings: the figures are for reading.
"""

from __future__ import annotations

import argparse
import calendar
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
    "superseded, kind, workflow_created_at"
)
_DAY = 86_400.0


def _span(workflows: int) -> tuple[float, float]:
    """The first creation time and the step between two: the 360 days before this month."""
    today = time.gmtime()
    this_month = calendar.timegm((today.tm_year, today.tm_mon, 1, 0, 0, 0))
    first = this_month - _DAY - 360 * _DAY
    return first, 360 * _DAY / workflows


def _fill_sqlite(path: str, workflows: int, steps: int) -> None:
    import sqlite3

    t0, gap = _span(workflows)
    at = f"{t0!r} + i * {gap!r}"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        series = "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
        wid = "printf('wf-%08d', i)"
        conn.execute(
            f"{series} INSERT INTO durable_workflows ({_WORKFLOW_COLUMNS}) "
            f"SELECT {wid}, '{NAME}', 'success', '', 1, 1, {at}, {at}, {at}, 0, 0 FROM n",
            (workflows - 1,),
        )
        conn.execute(
            f"{series}, p(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM p WHERE j < ?) "
            f"INSERT INTO durable_steps ({_STEP_COLUMNS}) "
            f"SELECT {wid}, j, 'step', 'success', randomblob(28), 1, {at}, {at}, 0, 'step', "
            f"{at} FROM n, p",
            (workflows - 1, steps - 1),
        )
        conn.execute(
            f"{series} INSERT INTO durable_steps ({_STEP_COLUMNS}) "
            f"SELECT {wid}, 0, 'step', 'error', randomblob(28), 1, {at}, {at}, 1, 'step', {at} "
            "FROM n WHERE i % 100 = 0",
            (workflows - 1,),
        )
        conn.commit()
        conn.execute("ANALYZE")


def _fill_postgres(url: str, schema: str, workflows: int, steps: int) -> None:
    import psycopg

    t0, gap = _span(workflows)
    at = f"{t0!r} + i * {gap!r}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        wid = "'wf-' || lpad(i::text, 8, '0')"
        conn.execute(
            f"INSERT INTO durable_workflows ({_WORKFLOW_COLUMNS}) "
            f"SELECT {wid}, '{NAME}', 'success', '', 1, 1, {at}, {at}, {at}, 0, 0 "
            "FROM generate_series(0, %(last)s) AS i",
            {"last": workflows - 1},
        )
        conn.execute(
            f"INSERT INTO durable_steps ({_STEP_COLUMNS}) "
            f"SELECT {wid}, j, 'step', 'success', sha224((i * 1000 + j)::text::bytea), 1, "
            f"{at}, {at}, false, 'step', {at} "
            "FROM generate_series(0, %(last)s) AS i, generate_series(0, %(steps)s) AS j",
            {"last": workflows - 1, "steps": steps - 1},
        )
        conn.execute(
            f"INSERT INTO durable_steps ({_STEP_COLUMNS}) "
            f"SELECT {wid}, 0, 'step', 'error', sha224(i::text::bytea), 1, {at}, {at}, "
            "true, 'step', {at} FROM generate_series(0, %(last)s, 100) AS i".replace("{at}", at),
            {"last": workflows - 1},
        )
        conn.execute("ANALYZE")


@contextlib.contextmanager
def _store(
    backend: str, postgres_url: str, workflows: int, steps: int, monthly: bool = False
) -> Iterator[str]:
    """A store of ``workflows`` finished workflows, ``steps`` records each; its URL.

    ``monthly``: a PostgreSQL store, then kept by month (the conversion timed).
    """
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/scale.db"
            with durable.Runtime(url):  # durable makes the schema
                pass
            _fill_sqlite(f"{tmp}/scale.db", workflows, steps)
            yield url
        return
    import psycopg

    schema = f"scale_{uuid.uuid4().hex[:8]}"
    base = postgres_url.partition("?")[0]
    url = f"{base}?schema={schema}"
    try:
        with durable.Runtime(url):
            pass
        _fill_postgres(base, schema, workflows, steps)
        if monthly:
            started = time.perf_counter()
            with durable.Store.open(url) as store:
                moved = store.partition_by_month()
            print(
                f"kept by month: {moved:,} records moved in {time.perf_counter() - started:.1f} s",
                file=sys.stderr,
                flush=True,
            )
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
    parser.add_argument(
        "--monthly",
        action="store_true",
        help="also measure each PostgreSQL store kept by month (Store.partition_by_month)",
    )
    bench.add_store_args(parser)
    args = parser.parse_args(argv)
    bench.choose_backends(args, parser)
    why = bench.postgres_unavailable(args.postgres_url) if "postgresql" in args.backends else None
    if why is not None:
        if args.explicit_backends:
            parser.error(f"PostgreSQL: {why}")
        args.backends = tuple(b for b in args.backends if b != "postgresql")
    rows = [["store", "what", "median", "slowest"]]
    layouts = [(b, False) for b in args.backends]
    if args.monthly and "postgresql" in args.backends:
        layouts.append(("postgresql", True))
    for backend, monthly in layouts:
        shown = f"{backend}, kept by month" if monthly else backend
        started = time.perf_counter()
        with _store(backend, args.postgres_url, args.workflows, args.steps, monthly) as url:
            filled = time.perf_counter() - started
            print(f"{shown}: ready in {filled:.0f} s", file=sys.stderr, flush=True)
            for what, (median, slowest) in measure(url, args.workflows, args.repeat).items():
                rows.append([shown, what, f"{median * 1000:.1f} ms", f"{slowest * 1000:.1f} ms"])
    print(bench.render(rows, args.markdown))


if __name__ == "__main__":
    main()
