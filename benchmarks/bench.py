"""Measure what durability costs per step, side by side with cheaper ways to do the same work.

Scenarios (each on a fresh SQLite file in a fresh temp dir, per repeat):

1. one workflow of many tiny async steps (per-step overhead);
2. many short workflows of three steps (per-workflow overhead);
3. a few steps returning 1 MiB each (throughput, storage overhead).

Engines: durable; raw ``sqlite3`` (pickle + INSERT + COMMIT per step, WAL +
``synchronous=NORMAL`` like durable: the floor any SQLite checkpointing can
reach); plain Python (the same functions, awaited directly); and DBOS, if it
is installed, for scenarios 1 and 2.

Run: ``python benchmarks/bench.py [--repeat N] [--quick] [--markdown]``.
Nothing here asserts on timings: the figures are for reading.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib.metadata
import os
import pickle
import platform
import re
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cloudpickle

import durable

# Types -----------------------------------------------------------------------

RunWorkflow = Callable[[str, int, str], Awaitable[object]]
"""Run one workflow: (kind of step, number of steps, workflow id)."""

Session = Callable[[Path], contextlib.AbstractContextManager[RunWorkflow]]
"""Open an engine on a database file for one scenario; yields how to run a workflow."""

SEQ, MANY, BLOB = "seq", "many", "blob"
SCENARIOS = (SEQ, MANY, BLOB)

PYTHON, RAW, DURABLE = "plain Python", "raw sqlite3", "durable"
DBOS_DEFAULT, DBOS_WAL = "DBOS (default)", "DBOS (WAL+NORMAL)"
DBOS_SCENARIOS = (SEQ, MANY)


@dataclass(frozen=True)
class Sizes:
    """How much work each scenario does."""

    seq_steps: int = 2000
    workflows: int = 500
    steps_per_workflow: int = 3
    blob_steps: int = 50
    blob_bytes: int = 1 << 20

    def steps(self, scenario: str) -> int:
        """Steps run in one repeat of a scenario."""
        return {
            SEQ: self.seq_steps,
            MANY: self.workflows * self.steps_per_workflow,
            BLOB: self.blob_steps,
        }[scenario]

    def title(self, scenario: str) -> str:
        mib = self.blob_bytes / (1 << 20)
        return {
            SEQ: f"1. 1 workflow x {self.seq_steps} tiny async steps",
            MANY: f"2. {self.workflows} workflows x {self.steps_per_workflow} steps",
            BLOB: f"3. 1 workflow x {self.blob_steps} steps of {mib:g} MiB",
        }[scenario]


FULL = Sizes()
QUICK = Sizes(seq_steps=50, workflows=10, blob_steps=3)


@dataclass
class Sample:
    """One engine on one scenario, over all repeats."""

    seconds: list[float] = field(default_factory=list)
    overhead: list[float] = field(default_factory=list)
    """Bytes on disk / payload bytes (scenario 3 on a store only)."""


Results = dict[tuple[str, str], Sample]

# The work: plain functions ---------------------------------------------------

# Scenario 3's payloads, made before any timing. They cannot be workflow
# arguments: durable pickles and stores those, which would double the bytes.
_BLOBS: list[bytes] = []


async def tiny(i: int) -> int:
    return i


async def blob(i: int) -> bytes:
    return _BLOBS[i]


async def tiny_chain(n: int) -> int:
    total = 0
    for i in range(n):
        total += await tiny(i)
    return total


async def blob_chain(n: int) -> int:
    # Return a small value: a workflow's result is stored too.
    total = 0
    for i in range(n):
        total += len(await blob(i))
    return total


PLAIN_STEPS: dict[str, Callable[[int], Awaitable[object]]] = {"tiny": tiny, "blob": blob}
PLAIN_CHAINS: dict[str, Callable[[int], Awaitable[int]]] = {"tiny": tiny_chain, "blob": blob_chain}

# The same work, durable ------------------------------------------------------

durable_tiny = durable.step(name="bench.tiny")(tiny)
durable_blob = durable.step(name="bench.blob")(blob)


@durable.durable_workflow(name="bench.tiny_chain")
async def durable_tiny_chain(n: int) -> int:
    total = 0
    for i in range(n):
        total += await durable_tiny(i)
    return total


@durable.durable_workflow(name="bench.blob_chain")
async def durable_blob_chain(n: int) -> int:
    total = 0
    for i in range(n):
        total += len(await durable_blob(i))
    return total


DURABLE_CHAINS = {"tiny": durable_tiny_chain, "blob": durable_blob_chain}

# Engine sessions -------------------------------------------------------------


@contextlib.contextmanager
def python_session(_db: Path) -> Iterator[RunWorkflow]:
    async def run(kind: str, n: int, _workflow_id: str) -> object:
        return await PLAIN_CHAINS[kind](n)

    yield run


@contextlib.contextmanager
def durable_session(db: Path) -> Iterator[RunWorkflow]:
    # Runtime() is outside the timing: opening a store (schema creation) is a
    # once-per-process cost, not a per-step one.
    with durable.Runtime(f"sqlite:///{db}"):

        async def run(kind: str, n: int, workflow_id: str) -> object:
            return await DURABLE_CHAINS[kind].run(n, workflow_id=workflow_id)

        yield run


_RAW_SCHEMA = """
CREATE TABLE steps (
    workflow_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    output BLOB NOT NULL,
    PRIMARY KEY (workflow_id, position)
)
"""
_RAW_INSERT = "INSERT INTO steps (workflow_id, position, output) VALUES (?, ?, ?)"


@contextlib.contextmanager
def raw_session(db: Path) -> Iterator[RunWorkflow]:
    conn = sqlite3.connect(db)
    try:
        # The same durability as durable's store: a commit survives a crash of
        # the process, not a power loss.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(_RAW_SCHEMA)
        conn.commit()

        async def run(kind: str, n: int, workflow_id: str) -> object:
            step = PLAIN_STEPS[kind]
            for i in range(n):
                value = await step(i)
                # Pickled as durable pickles it, one transaction per step.
                payload = cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
                conn.execute(_RAW_INSERT, (workflow_id, i, payload))
                conn.commit()
            return None

        yield run
    finally:
        conn.close()


# The DBOS peer (optional) ----------------------------------------------------


def dbos_version() -> str | None:
    try:
        import dbos  # noqa: F401
    except ImportError:
        return None
    return importlib.metadata.version("dbos")


class _WalNormalConnection(sqlite3.Connection):
    """A sqlite3 connection with durable's durability settings, for DBOS.

    Passed as ``sqlite3.connect(factory=...)`` through DBOS's public
    ``db_engine_kwargs``; DBOS itself leaves SQLite at its defaults
    (rollback journal, ``synchronous=FULL``: an fsync per commit).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.execute("PRAGMA journal_mode=WAL")
        self.execute("PRAGMA synchronous=NORMAL")


@functools.cache
def _dbos_chain() -> Callable[[int], Awaitable[int]]:
    # Decorated once per process: DBOS keeps a global registry that outlives
    # DBOS.destroy(), and launch() registers what it holds.
    from dbos import DBOS

    step = DBOS.step(name="bench.tiny")(tiny)

    @DBOS.workflow(name="bench.tiny_chain")
    async def chain(n: int) -> int:
        total = 0
        for i in range(n):
            total += await step(i)
        return total

    return chain


def _dbos_session(wal: bool) -> Session:
    @contextlib.contextmanager
    def session(db: Path) -> Iterator[RunWorkflow]:
        from dbos import DBOS, DBOSConfig, SetWorkflowID

        chain = _dbos_chain()
        config: DBOSConfig = {
            "name": "durable-bench",
            "system_database_url": f"sqlite:///{db}",
            "log_level": "WARNING",
        }
        if wal:
            config["db_engine_kwargs"] = {"connect_args": {"factory": _WalNormalConnection}}
        DBOS(config=config)
        DBOS.launch()
        try:

            async def run(kind: str, n: int, workflow_id: str) -> object:
                with SetWorkflowID(workflow_id):
                    return await chain(n)

            yield run
        finally:
            DBOS.destroy()

    return session


# Measuring -------------------------------------------------------------------


async def _time_scenario(scenario: str, sizes: Sizes, run: RunWorkflow, tag: str) -> float:
    start = time.perf_counter()
    if scenario == SEQ:
        await run("tiny", sizes.seq_steps, f"{tag}-0")
    elif scenario == MANY:
        for i in range(sizes.workflows):
            await run("tiny", sizes.steps_per_workflow, f"{tag}-{i}")
    else:
        await run("blob", sizes.blob_steps, f"{tag}-0")
    return time.perf_counter() - start


def _store_bytes(db: Path) -> int:
    """The database's size on disk once its WAL is folded back in."""
    if not db.exists():
        return 0
    # A separate connection, after the engine is closed: what is measured is
    # the file a user would keep, not a WAL still waiting to be checkpointed.
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    wal = db.with_name(db.name + "-wal")
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def _measure(
    engine: str, session: Session, scenario: str, sizes: Sizes, tmp: Path
) -> tuple[float, float | None]:
    """Seconds taken, and (scenario 3, on a store) bytes on disk / payload bytes."""
    db = tmp / "store.db"
    # A fresh id prefix per repeat: no run can find another's records.
    tag = f"{scenario}-{uuid.uuid4().hex[:12]}"
    with session(db) as run:
        seconds = asyncio.run(_time_scenario(scenario, sizes, run, tag))
    if scenario != BLOB or engine == PYTHON:
        return seconds, None
    return seconds, _store_bytes(db) / (sizes.blob_steps * sizes.blob_bytes)


def engines(with_dbos: bool) -> dict[str, tuple[Session, tuple[str, ...]]]:
    """Each engine's session, and the scenarios it runs."""
    found: dict[str, tuple[Session, tuple[str, ...]]] = {
        DURABLE: (durable_session, SCENARIOS),
        RAW: (raw_session, SCENARIOS),
        PYTHON: (python_session, SCENARIOS),
    }
    if with_dbos:
        found[DBOS_DEFAULT] = (_dbos_session(wal=False), DBOS_SCENARIOS)
        found[DBOS_WAL] = (_dbos_session(wal=True), DBOS_SCENARIOS)
    return found


def run_all(sizes: Sizes, repeat: int, with_dbos: bool) -> Results:
    _BLOBS[:] = [os.urandom(sizes.blob_bytes) for _ in range(sizes.blob_steps)]
    results: Results = {}
    # Repeats outermost, so that a slow moment of the machine hits every
    # engine alike rather than all the repeats of one.
    for _ in range(repeat):
        for engine, (session, scenarios) in engines(with_dbos).items():
            for scenario in scenarios:
                with tempfile.TemporaryDirectory(prefix="durable-bench-") as tmp:
                    seconds, overhead = _measure(engine, session, scenario, sizes, Path(tmp))
                sample = results.setdefault((engine, scenario), Sample())
                sample.seconds.append(seconds)
                if overhead is not None:
                    sample.overhead.append(overhead)
    _BLOBS.clear()
    return results


def _median_seconds(results: Results, engine: str, scenario: str) -> float | None:
    sample = results.get((engine, scenario))
    return statistics.median(sample.seconds) if sample else None


# Process-level figures -------------------------------------------------------


def _run_python(code: str, *flags: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *flags, "-c", code], check=True, capture_output=True, text=True
    )
    return time.perf_counter() - start, done.stderr


def import_seconds(module: str, runs: int) -> float:
    """Median wall time of ``import module`` in a new interpreter, less its start-up."""
    with_import = [_run_python(f"import {module}")[0] for _ in range(runs)]
    bare = [_run_python("pass")[0] for _ in range(runs)]
    return statistics.median(with_import) - statistics.median(bare)


def importtime_seconds(module: str) -> float | None:
    """Cumulative import time of ``module`` as ``python -X importtime`` reports it."""
    _, stderr = _run_python(f"import {module}", "-X", "importtime")
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if match and match.group(2).strip() == module:
            return int(match.group(1)) / 1e6
    return None


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def versions() -> dict[str, str]:
    found = {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    for dist in ("durable-sdk", "sqlalchemy", "cloudpickle", "wrapt", "dbos"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[dist] = importlib.metadata.version(dist)
    return found


# Reporting -------------------------------------------------------------------


def _num(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _per_step_us(seconds: float | None, steps: int) -> float | None:
    return None if seconds is None else seconds / steps * 1e6


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _metrics(sizes: Sizes, scenario: str) -> list[tuple[str, Callable[[float], float]]]:
    """The throughput figures of a scenario, as (label, figure from median seconds)."""
    steps = sizes.steps(scenario)
    if scenario == SEQ:
        return [("steps/s", lambda s: steps / s)]
    if scenario == MANY:
        return [("workflows/s", lambda s: sizes.workflows / s), ("steps/s", lambda s: steps / s)]
    mib = sizes.blob_steps * sizes.blob_bytes / (1 << 20)
    return [("MiB/s", lambda s: mib / s)]


def main_table(results: Results, sizes: Sizes) -> list[list[str]]:
    rows = [["Scenario", "Metric", DURABLE, RAW, PYTHON, "durable / raw sqlite3 (per step)"]]
    for scenario in SCENARIOS:
        medians = {e: _median_seconds(results, e, scenario) for e in (DURABLE, RAW, PYTHON)}
        title = sizes.title(scenario)
        for label, figure in _metrics(sizes, scenario):
            cells = [_num(figure(s) if s else None) for s in medians.values()]
            rows.append([title, label, *cells, ""])
            title = ""
        steps = sizes.steps(scenario)
        per_step = {e: _per_step_us(s, steps) for e, s in medians.items()}
        ratio = _ratio(per_step[DURABLE], per_step[RAW])
        rows.append(["", "µs/step", *(_num(v) for v in per_step.values()), f"{_num(ratio)}x"])
        if scenario == BLOB:
            rows.append(["", "bytes on disk / payload", *_overheads(results), "—", ""])
    return rows


def _overheads(results: Results) -> list[str]:
    cells = []
    for engine in (DURABLE, RAW):
        sample = results.get((engine, BLOB))
        cells.append(f"{statistics.median(sample.overhead):.3f}" if sample else "n/a")
    return cells


def dbos_table(results: Results, sizes: Sizes) -> list[list[str]]:
    rows = [["Scenario", "Metric", DURABLE, DBOS_DEFAULT, DBOS_WAL, RAW]]
    for scenario in DBOS_SCENARIOS:
        order = (DURABLE, DBOS_DEFAULT, DBOS_WAL, RAW)
        medians = [_median_seconds(results, e, scenario) for e in order]
        title = sizes.title(scenario)
        for label, figure in _metrics(sizes, scenario):
            rows.append([title, label, *(_num(figure(s) if s else None) for s in medians)])
            title = ""
        steps = sizes.steps(scenario)
        rows.append(["", "µs/step", *(_num(_per_step_us(s, steps)) for s in medians)])
    return rows


def render(rows: list[list[str]], markdown: bool) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(row: list[str]) -> str:
        # Labels left-aligned, figures right-aligned.
        cells = [
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return f"| {' | '.join(cells)} |" if markdown else "  ".join(cells)

    if markdown:
        marks = ["-" * (w + 1) + (":" if i >= 2 else "-") for i, w in enumerate(widths)]
        rule = f"|{'|'.join(marks)}|"
    else:
        rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(rows[0]), rule, *(line(r) for r in rows[1:])])


# Entry point -----------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=None, help="repeats; the median is shown")
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run (1 repeat)")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--no-dbos", action="store_true", help="skip DBOS even if installed")
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 1 if args.quick else 5
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    dbos = None if args.no_dbos else dbos_version()
    rss_before = peak_rss_mib()
    started = time.perf_counter()
    results = run_all(sizes, args.repeat, with_dbos=dbos is not None)
    took = time.perf_counter() - started

    print(f"durable benchmark: {args.repeat} repeat(s), median shown; {took:.1f} s of runs")
    print(", ".join(f"{k} {v}" for k, v in versions().items()))
    print()
    print(render(main_table(results, sizes), args.markdown))
    print()
    if dbos is not None:
        print(f"DBOS {dbos} on SQLite (scenarios 1-2): default config, and with WAL+NORMAL")
        print()
        print(render(dbos_table(results, sizes), args.markdown))
    elif args.no_dbos:
        print("DBOS: skipped (--no-dbos)")
    else:
        print("DBOS: not installed (pip install dbos to compare)")
    print()
    blobs_mib = sizes.blob_steps * sizes.blob_bytes / (1 << 20)
    print(
        f"peak RSS of this process: {rss_before:.1f} MiB before the runs, "
        f"{peak_rss_mib():.1f} MiB after (all engines, {blobs_mib:g} MiB of payloads held)"
    )
    runs = 1 if args.quick else 5
    for module in ("durable", "dbos") if dbos is not None else ("durable",):
        print(import_line(module, runs))
    return 0


def import_line(module: str, runs: int) -> str:
    cumulative = importtime_seconds(module)
    return (
        f"import {module}: {import_seconds(module, runs) * 1e3:.0f} ms "
        f"(new interpreter, median of {runs}, less `python -c pass`); "
        f"-X importtime cumulative: {_num(None if cumulative is None else cumulative * 1e3)} ms"
    )


if __name__ == "__main__":
    sys.exit(main())
