"""Measure what durability costs per step, side by side with cheaper ways to do the same work.

Scenarios (each repeat on a fresh store: a fresh SQLite file in a fresh temp
dir, or a fresh PostgreSQL schema that is dropped afterwards):

1. one workflow of many tiny async steps (per-step overhead);
2. many short workflows of three steps (per-workflow overhead);
3. a few steps returning 1 MiB each (throughput, storage overhead).

Engines on SQLite: durable; raw ``sqlite3`` (pickle + INSERT + COMMIT per
step, WAL + ``synchronous=NORMAL`` like durable: the floor any SQLite
checkpointing can reach); plain Python (the same functions, awaited
directly); DBOS, if it is installed, once with its defaults and once
with WAL + ``synchronous=NORMAL``; and LangGraph's functional API
(``@entrypoint`` with ``AsyncSqliteSaver``, ``@task`` steps), if it is
installed, once with its defaults (WAL, ``synchronous=FULL``) and once with
``synchronous=NORMAL``.

Engines on PostgreSQL (if the server answers): durable; raw psycopg 3, async
and sync (one autocommit connection, one single-row INSERT of the pickled
result per step, the server's default durability); DBOS, in a database of
its own; and LangGraph with ``AsyncPostgresSaver``, in a schema of its own.

Run: ``python benchmarks/bench.py [--repeat N] [--quick] [--markdown]
[--backends sqlite,postgresql] [--postgres-url URL] [--no-dbos] [--no-langgraph]``.
Nothing here asserts on timings: the figures are for reading.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib.metadata
import json
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
from typing import TYPE_CHECKING, Any

import cloudpickle
import sqlalchemy as sa

import durable

if TYPE_CHECKING:
    import psycopg

# Types -----------------------------------------------------------------------

RunWorkflow = Callable[[str, int, str], Awaitable[object]]
"""Run one workflow: (kind of step, number of steps, workflow id).

An engine whose connection belongs to an event loop (LangGraph's checkpointers)
gives its ``run`` an ``in_loop`` attribute too: a function returning an async
context manager, entered in the timed run's event loop before the clock starts
and left after it stops."""

SQLITE, POSTGRES = "sqlite", "postgresql"
BACKENDS = (SQLITE, POSTGRES)
BACKEND_TITLES = {SQLITE: "SQLite", POSTGRES: "PostgreSQL"}
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"

SEQ, MANY, BLOB = "seq", "many", "blob"
SCENARIOS = (SEQ, MANY, BLOB)
DBOS_SCENARIOS = SCENARIOS

PYTHON, DURABLE = "plain Python", "durable"
RAW = "raw sqlite3"
DBOS_DEFAULT, DBOS_WAL = "DBOS (default)", "DBOS (WAL+NORMAL)"
RAW_PG, RAW_PG_SYNC = "raw psycopg (async)", "raw psycopg (sync)"
DBOS_PG = "DBOS"
LANGGRAPH_SCENARIOS = SCENARIOS
LANGGRAPH_DEFAULT, LANGGRAPH_WAL = "LangGraph (default)", "LangGraph (WAL+NORMAL)"
LANGGRAPH_PG = "LangGraph"
DBOS_LABELS = (DBOS_DEFAULT, DBOS_WAL, DBOS_PG)
LANGGRAPH_LABELS = (LANGGRAPH_DEFAULT, LANGGRAPH_WAL, LANGGRAPH_PG)

# DBOS and LangGraph take most of the run's time: their figures are the
# median of fewer repeats (at most this many), so that the default run stays
# short.
DBOS_MAX_REPEAT = 3
LANGGRAPH_MAX_REPEAT = 3


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

    @property
    def payload_bytes(self) -> int:
        return self.blob_steps * self.blob_bytes


FULL = Sizes()
QUICK = Sizes(seq_steps=50, workflows=10, blob_steps=3)


@dataclass
class Sample:
    """One engine on one scenario, over all repeats."""

    seconds: list[float] = field(default_factory=list)
    overhead: list[float] = field(default_factory=list)
    """Bytes stored / payload bytes (scenario 3 on a store only)."""
    wal: list[float] = field(default_factory=list)
    """WAL bytes the server wrote during the run / payload bytes (scenario 3, PostgreSQL)."""


Results = dict[tuple[str, str, str], Sample]
"""Keyed by (backend, engine, scenario)."""

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


def pickled(value: object) -> bytes:
    """A step's result, pickled as durable pickles it."""
    return cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)  # type: ignore[no-any-return]


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

# Where a measurement keeps its data ------------------------------------------


class PgServer:
    """The PostgreSQL server under test, and one admin connection to it.

    The admin connection (autocommit) creates and drops the schemas and
    databases of the runs and reads sizes; it never runs a timed statement.
    """

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        self.admin: psycopg.Connection[Any] = psycopg.connect(
            url, autocommit=True, connect_timeout=5
        )
        number = self.admin.info.server_version
        self.version = f"{number // 10000}.{number % 10000}"
        self.synchronous_commit = self.setting("synchronous_commit")

    def setting(self, name: str) -> str:
        row = self.admin.execute("SELECT current_setting(%s)", (name,)).fetchone()
        assert row is not None
        return str(row[0])

    def url_with(self, *, database: str | None = None, schema: str | None = None) -> str:
        url = sa.make_url(self.url)
        if database is not None:
            url = url.set(database=database)
        if schema is not None:
            url = url.update_query_dict({"schema": schema})
        return url.render_as_string(hide_password=False)

    def execute(self, query: str, *identifiers: str) -> None:
        """Run DDL, with ``{}`` in ``query`` filled by quoted identifiers."""
        from psycopg import sql

        self.admin.execute(sql.SQL(query).format(*(sql.Identifier(n) for n in identifiers)))

    def relation_bytes(self, schema: str, tables: tuple[str, ...]) -> int:
        """Heap + TOAST + indexes of ``tables``, as ``pg_total_relation_size`` counts them."""
        total = 0
        for table in tables:
            row = self.admin.execute(
                "SELECT pg_total_relation_size(format('%%I.%%I', %s::text, %s::text)::regclass)",
                (schema, table),
            ).fetchone()
            assert row is not None
            total += int(row[0])
        return total

    def wal_lsn(self) -> str:
        row = self.admin.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        return str(row[0])

    def wal_bytes_since(self, lsn: str) -> int:
        row = self.admin.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)", (lsn,)
        ).fetchone()
        assert row is not None
        return int(row[0])

    def close(self) -> None:
        self.admin.close()


@dataclass(frozen=True)
class Place:
    """Where one measurement keeps its data: a fresh temp dir, or a fresh schema."""

    dir: Path
    schema: str
    """A new name per measurement (PostgreSQL): the session creates it, the run drops it."""
    pg: PgServer | None

    @property
    def db(self) -> Path:
        return self.dir / "store.db"

    @property
    def server(self) -> PgServer:
        assert self.pg is not None
        return self.pg


Session = Callable[[Place], contextlib.AbstractContextManager[RunWorkflow]]
"""Open an engine on a fresh store for one scenario; yields how to run a workflow."""


# Engine sessions: SQLite -----------------------------------------------------


@contextlib.contextmanager
def python_session(_place: Place) -> Iterator[RunWorkflow]:
    async def run(kind: str, n: int, _workflow_id: str) -> object:
        return await PLAIN_CHAINS[kind](n)

    yield run


def _durable_run() -> RunWorkflow:
    async def run(kind: str, n: int, workflow_id: str) -> object:
        return await DURABLE_CHAINS[kind].run(n, workflow_id=workflow_id)

    return run


@contextlib.contextmanager
def durable_session(place: Place) -> Iterator[RunWorkflow]:
    # Runtime() is outside the timing: opening a store (schema creation) is a
    # once-per-process cost, not a per-step one.
    with durable.Runtime(f"sqlite:///{place.db}"):
        yield _durable_run()


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
def raw_session(place: Place) -> Iterator[RunWorkflow]:
    conn = sqlite3.connect(place.db)
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
                conn.execute(_RAW_INSERT, (workflow_id, i, pickled(value)))
                conn.commit()
            return None

        yield run
    finally:
        conn.close()


# Engine sessions: PostgreSQL -------------------------------------------------


@contextlib.contextmanager
def durable_pg_session(place: Place) -> Iterator[RunWorkflow]:
    # As on SQLite, opening the store (creating the schema) is not timed. The
    # async path opens its connection at the first statement, inside the
    # timing, as the raw baseline does.
    with durable.Runtime(place.server.url_with(schema=place.schema)):
        yield _durable_run()


_PG_RAW_SCHEMA = """
CREATE TABLE {}.steps (
    workflow_id text NOT NULL,
    position integer NOT NULL,
    output bytea NOT NULL,
    PRIMARY KEY (workflow_id, position)
)
"""
_PG_RAW_INSERT = "INSERT INTO steps (workflow_id, position, output) VALUES (%s, %s, %s)"


def _raw_pg_prepare(place: Place) -> dict[str, Any]:
    """Create the baseline's schema and table; the connection options to use them."""
    place.server.execute("CREATE SCHEMA {}", place.schema)
    place.server.execute(_PG_RAW_SCHEMA, place.schema)
    # Autocommit: each INSERT is its own transaction, committed (and, with
    # the server's default synchronous_commit=on, flushed to the WAL on disk)
    # before the server answers. psycopg's defaults otherwise (it prepares a
    # statement after 5 executions), as durable's connections have.
    return {"autocommit": True, "options": f"-c search_path={place.schema}"}


@contextlib.contextmanager
def raw_pg_session(place: Place) -> Iterator[RunWorkflow]:
    import psycopg

    options = _raw_pg_prepare(place)
    conns: list[psycopg.AsyncConnection[Any]] = []

    async def run(kind: str, n: int, workflow_id: str) -> object:
        if not conns:
            # Opened at the first statement, inside the timing, like durable's.
            conns.append(await psycopg.AsyncConnection.connect(place.server.url, **options))
        conn, step = conns[0], PLAIN_STEPS[kind]
        for i in range(n):
            value = await step(i)
            await conn.execute(_PG_RAW_INSERT, (workflow_id, i, pickled(value)))
        return None

    try:
        yield run
    finally:
        # The event loop it belonged to is gone: close the socket directly.
        for conn in conns:
            conn.pgconn.finish()


@contextlib.contextmanager
def raw_pg_sync_session(place: Place) -> Iterator[RunWorkflow]:
    import psycopg

    options = _raw_pg_prepare(place)
    conns: list[psycopg.Connection[Any]] = []

    async def run(kind: str, n: int, workflow_id: str) -> object:
        if not conns:
            conns.append(psycopg.connect(place.server.url, **options))
        conn, step = conns[0], PLAIN_STEPS[kind]
        for i in range(n):
            value = await step(i)
            # Blocking calls, as a sync program would make them.
            conn.execute(_PG_RAW_INSERT, (workflow_id, i, pickled(value)))
        return None

    try:
        yield run
    finally:
        for conn in conns:
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
def _dbos_chains() -> dict[str, Callable[[int], Awaitable[int]]]:
    # Decorated once per process: DBOS keeps a global registry that outlives
    # DBOS.destroy(), and launch() registers what it holds.
    from dbos import DBOS

    step = DBOS.step(name="bench.tiny")(tiny)
    blob_step = DBOS.step(name="bench.blob")(blob)

    @DBOS.workflow(name="bench.tiny_chain")
    async def chain(n: int) -> int:
        total = 0
        for i in range(n):
            total += await step(i)
        return total

    @DBOS.workflow(name="bench.blob_chain")
    async def blobs(n: int) -> int:
        total = 0
        for i in range(n):
            total += len(await blob_step(i))
        return total

    return {"tiny": chain, "blob": blobs}


@contextlib.contextmanager
def _dbos_launched(system_database_url: str, **extra: Any) -> Iterator[RunWorkflow]:
    from dbos import DBOS, DBOSConfig, SetWorkflowID

    chains = _dbos_chains()
    config: DBOSConfig = {
        "name": "durable-bench",
        "system_database_url": system_database_url,
        "log_level": "WARNING",
    }
    if extra:
        config["db_engine_kwargs"] = extra
    DBOS(config=config)
    DBOS.launch()
    try:

        async def run(kind: str, n: int, workflow_id: str) -> object:
            with SetWorkflowID(workflow_id):
                return await chains[kind](n)

        yield run
    finally:
        DBOS.destroy()


def _dbos_session(wal: bool) -> Session:
    @contextlib.contextmanager
    def session(place: Place) -> Iterator[RunWorkflow]:
        extra = {"connect_args": {"factory": _WalNormalConnection}} if wal else {}
        with _dbos_launched(f"sqlite:///{place.db}", **extra) as run:
            yield run

    return session


def _dbos_database(place: Place) -> str:
    return f"dbos_{place.schema}"


@contextlib.contextmanager
def dbos_pg_session(place: Place) -> Iterator[RunWorkflow]:
    # A database of its own (DBOS keeps its tables in a "dbos" schema of the
    # database it is given), fresh for each measurement like the schemas of
    # the other engines, and dropped afterwards. Otherwise DBOS's defaults:
    # only the URL is set.
    server, database = place.server, _dbos_database(place)
    server.execute("CREATE DATABASE {}", database)
    try:
        with _dbos_launched(server.url_with(database=database)) as run:
            yield run
    finally:
        server.execute("DROP DATABASE IF EXISTS {} WITH (FORCE)", database)


# The LangGraph peer (optional) -----------------------------------------------

# The checkpointer each backend needs, as (module, distribution).
_LANGGRAPH_SAVERS = {
    SQLITE: ("langgraph.checkpoint.sqlite.aio", "langgraph-checkpoint-sqlite"),
    POSTGRES: ("langgraph.checkpoint.postgres.aio", "langgraph-checkpoint-postgres"),
}
LANGGRAPH_INSTALL = (
    "pip install langgraph langgraph-checkpoint-sqlite langgraph-checkpoint-postgres"
)


def langgraph_version() -> str | None:
    try:
        import langgraph.func  # noqa: F401
    except ImportError:
        return None
    return importlib.metadata.version("langgraph")


def langgraph_missing(backend: str) -> str | None:
    """The distribution to install for LangGraph's checkpointer on ``backend``, or None."""
    module, dist = _LANGGRAPH_SAVERS[backend]
    try:
        importlib.import_module(module)
    except ImportError:
        return dist
    return None


@functools.cache
def _langgraph_tasks() -> dict[str, Any]:
    # The same plain functions as @task. Without a name: task(name=...) would
    # rename the plain function itself, which the other engines share.
    from langgraph.func import task

    return {"tiny": task(tiny), "blob": task(blob)}


def _langgraph_chains(checkpointer: Any) -> dict[str, Any]:
    """The two workflows as @entrypoint, on ``checkpointer`` (made in well under 1 ms)."""
    from langgraph.func import entrypoint

    tasks = _langgraph_tasks()
    tiny_task, blob_task = tasks["tiny"], tasks["blob"]

    @entrypoint(checkpointer=checkpointer)
    async def chain(n: int) -> int:
        total = 0
        for i in range(n):
            total += await tiny_task(i)
        return total

    @entrypoint(checkpointer=checkpointer)
    async def blobs(n: int) -> int:
        total = 0
        for i in range(n):
            total += len(await blob_task(i))
        return total

    return {"tiny": chain, "blob": blobs}


class _LangGraphRun:
    """Run a workflow as a LangGraph entrypoint, each on a LangGraph thread of its own.

    The workflow id is the ``thread_id``: a new one per workflow, so that every
    task runs and its result is written, none is found from an earlier run.
    LangGraph's default durability (``"async"``) is kept. Its checkpointers
    belong to the event loop they are made in, so they are made in the timed
    run's loop (``in_loop``), and closed there.
    """

    def __init__(self, place: Place, backend: str, wal_normal: bool = False) -> None:
        self.place = place
        self.backend = backend
        self.wal_normal = wal_normal
        self.conn: Any = None
        self.chains: dict[str, Any] | None = None

    @contextlib.asynccontextmanager
    async def in_loop(self) -> Any:
        try:
            if self.backend == SQLITE:
                await self._open_sqlite()
            else:
                await self._setup_postgres()
            yield
        finally:
            if self.conn is not None:
                await self.conn.close()

    async def _open_sqlite(self) -> None:
        # Before the clock, as durable's Runtime() opens its store: the
        # connection, and the saver's setup() (its tables, and
        # PRAGMA journal_mode=WAL, which it always sets).
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        self.conn = await aiosqlite.connect(self.place.db)
        if self.wal_normal:
            # Per connection: durable's durability (SQLite's default is FULL).
            await self.conn.execute("PRAGMA synchronous=NORMAL")
        saver = AsyncSqliteSaver(self.conn)
        await saver.setup()
        self.chains = _langgraph_chains(saver)

    def _pg_connect(self) -> Any:
        import psycopg
        from psycopg.rows import dict_row

        # What AsyncPostgresSaver.from_conn_string opens, in the fresh schema.
        return psycopg.AsyncConnection.connect(
            self.place.server.url,
            autocommit=True,
            prepare_threshold=0,
            row_factory=dict_row,
            options=f"-c search_path={self.place.schema}",
        )

    async def _setup_postgres(self) -> None:
        # Its tables, before the clock, on a connection of its own; the run's
        # connection opens at the first workflow, inside the clock, as
        # durable's and raw psycopg's do.
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with await self._pg_connect() as conn:
            await AsyncPostgresSaver(conn).setup()

    async def __call__(self, kind: str, n: int, workflow_id: str) -> object:
        if self.chains is None:
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

            self.conn = await self._pg_connect()
            self.chains = _langgraph_chains(AsyncPostgresSaver(self.conn))
        config = {"configurable": {"thread_id": workflow_id}}
        return await self.chains[kind].ainvoke(n, config)


def _langgraph_session(wal_normal: bool) -> Session:
    @contextlib.contextmanager
    def session(place: Place) -> Iterator[RunWorkflow]:
        yield _LangGraphRun(place, SQLITE, wal_normal)

    return session


@contextlib.contextmanager
def langgraph_pg_session(place: Place) -> Iterator[RunWorkflow]:
    # A fresh schema, as durable's; dropped after the run with the others.
    place.server.execute("CREATE SCHEMA {}", place.schema)
    yield _LangGraphRun(place, POSTGRES)


# Engines ---------------------------------------------------------------------


@dataclass(frozen=True)
class Engine:
    """One engine on one backend, and what is measured of it."""

    backend: str
    label: str
    session: Session
    scenarios: tuple[str, ...] = SCENARIOS
    stored: Callable[[Place], int] | None = None
    """Bytes the store holds after scenario 3 (read after the session on SQLite,
    before it closes on PostgreSQL)."""
    max_repeat: int | None = None


def _sqlite_bytes(place: Place) -> int:
    """The database's size on disk once its WAL is folded back in, and the files
    durable keeps its large results in beside it (``<database>-payloads``)."""
    db = place.db
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
    payloads = db.with_name(db.name + "-payloads")
    files = sum(p.stat().st_size for p in payloads.rglob("*") if p.is_file())
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0) + files


def _pg_tables_bytes(*tables: str) -> Callable[[Place], int]:
    # Right after the run, without VACUUM: the tables are insert-only, so
    # there is nothing to reclaim (a VACUUM would only add a visibility map
    # and a free space map).
    def stored(place: Place) -> int:
        return place.server.relation_bytes(place.schema, tables)

    return stored


def _dbos_pg_bytes(place: Place) -> int:
    """DBOS's step outputs and workflow rows, in the database it was given."""
    import psycopg

    url = place.server.url_with(database=_dbos_database(place))
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_total_relation_size('dbos.operation_outputs')"
            " + pg_total_relation_size('dbos.workflow_status')"
        ).fetchone()
    assert row is not None
    return int(row[0])


def engines(
    backends: tuple[str, ...], with_dbos: bool, langgraph: tuple[str, ...] = ()
) -> list[Engine]:
    """The engines to run, in the order they run within a repeat (LangGraph on the
    backends in ``langgraph``)."""
    found: list[Engine] = []
    if SQLITE in backends:
        found += [
            Engine(SQLITE, DURABLE, durable_session, stored=_sqlite_bytes),
            Engine(SQLITE, RAW, raw_session, stored=_sqlite_bytes),
        ]
    # The same functions, without a store, whichever backends run.
    found.append(Engine(SQLITE if SQLITE in backends else POSTGRES, PYTHON, python_session))
    if POSTGRES in backends:
        found += [
            Engine(
                POSTGRES,
                DURABLE,
                durable_pg_session,
                stored=_pg_tables_bytes("durable_steps", "durable_workflows"),
            ),
            Engine(POSTGRES, RAW_PG, raw_pg_session, stored=_pg_tables_bytes("steps")),
            Engine(POSTGRES, RAW_PG_SYNC, raw_pg_sync_session, stored=_pg_tables_bytes("steps")),
        ]
    if with_dbos and SQLITE in backends:
        found += [
            Engine(
                SQLITE,
                label,
                _dbos_session(wal),
                DBOS_SCENARIOS,
                stored=_sqlite_bytes,
                max_repeat=DBOS_MAX_REPEAT,
            )
            for label, wal in ((DBOS_DEFAULT, False), (DBOS_WAL, True))
        ]
    if with_dbos and POSTGRES in backends:
        found.append(
            Engine(
                POSTGRES,
                DBOS_PG,
                dbos_pg_session,
                DBOS_SCENARIOS,
                stored=_dbos_pg_bytes,
                max_repeat=DBOS_MAX_REPEAT,
            )
        )
    if SQLITE in backends and SQLITE in langgraph:
        found += [
            Engine(
                SQLITE,
                label,
                _langgraph_session(wal_normal),
                LANGGRAPH_SCENARIOS,
                stored=_sqlite_bytes,
                max_repeat=LANGGRAPH_MAX_REPEAT,
            )
            for label, wal_normal in ((LANGGRAPH_DEFAULT, False), (LANGGRAPH_WAL, True))
        ]
    if POSTGRES in backends and POSTGRES in langgraph:
        found.append(
            Engine(
                POSTGRES,
                LANGGRAPH_PG,
                langgraph_pg_session,
                LANGGRAPH_SCENARIOS,
                stored=_pg_tables_bytes("checkpoints", "checkpoint_blobs", "checkpoint_writes"),
                max_repeat=LANGGRAPH_MAX_REPEAT,
            )
        )
    return found


# Measuring -------------------------------------------------------------------


async def _time_scenario(scenario: str, sizes: Sizes, run: RunWorkflow, tag: str) -> float:
    in_loop = getattr(run, "in_loop", None)
    async with in_loop() if in_loop is not None else contextlib.nullcontext():
        start = time.perf_counter()
        if scenario == SEQ:
            await run("tiny", sizes.seq_steps, f"{tag}-0")
        elif scenario == MANY:
            for i in range(sizes.workflows):
                await run("tiny", sizes.steps_per_workflow, f"{tag}-{i}")
        else:
            await run("blob", sizes.blob_steps, f"{tag}-0")
        return time.perf_counter() - start


@dataclass(frozen=True)
class Measured:
    seconds: float
    overhead: float | None = None
    wal: float | None = None


def _measure(engine: Engine, scenario: str, sizes: Sizes, place: Place) -> Measured:
    """Seconds taken; for scenario 3 on a store, bytes stored and WAL written per payload byte."""
    # A fresh id prefix per repeat: no run can find another's records.
    tag = f"{scenario}-{uuid.uuid4().hex[:12]}"
    measure_storage = scenario == BLOB and engine.stored is not None
    pg = place.pg if engine.backend == POSTGRES else None
    stored: int | None = None
    try:
        with engine.session(place) as run:
            lsn = pg.wal_lsn() if pg is not None and measure_storage else None
            seconds = asyncio.run(_time_scenario(scenario, sizes, run, tag))
            wal = pg.wal_bytes_since(lsn) if pg is not None and lsn is not None else None
            if pg is not None and measure_storage and engine.stored is not None:
                # Before the session ends: DBOS's database is dropped with it.
                stored = engine.stored(place)
        if not measure_storage or engine.stored is None:
            return Measured(seconds)
        if stored is None:
            stored = engine.stored(place)
        payload = sizes.payload_bytes
        return Measured(seconds, stored / payload, None if wal is None else wal / payload)
    finally:
        if pg is not None:
            pg.execute("DROP SCHEMA IF EXISTS {} CASCADE", place.schema)


def run_all(
    sizes: Sizes, repeat: int, found: list[Engine], pg: PgServer | None
) -> tuple[Results, dict[str, int]]:
    """Every engine's samples, and how many repeats each engine ran."""
    _BLOBS[:] = [os.urandom(sizes.blob_bytes) for _ in range(sizes.blob_steps)]
    results: Results = {}
    repeats: dict[str, int] = {}
    # Repeats outermost, so that a slow moment of the machine hits every
    # engine alike rather than all the repeats of one.
    for attempt in range(repeat):
        for engine in found:
            if engine.max_repeat is not None and attempt >= engine.max_repeat:
                continue
            repeats[engine.label] = attempt + 1
            for scenario in engine.scenarios:
                with tempfile.TemporaryDirectory(prefix="durable-bench-") as tmp:
                    place = Place(Path(tmp), f"bench_{uuid.uuid4().hex[:16]}", pg)
                    measured = _measure(engine, scenario, sizes, place)
                sample = results.setdefault((engine.backend, engine.label, scenario), Sample())
                sample.seconds.append(measured.seconds)
                if measured.overhead is not None:
                    sample.overhead.append(measured.overhead)
                if measured.wal is not None:
                    sample.wal.append(measured.wal)
    _BLOBS.clear()
    return results, repeats


def _sample(results: Results, backend: str, engine: str, scenario: str) -> Sample | None:
    if engine == PYTHON:
        # Plain Python runs once per repeat, filed under one backend.
        for key in BACKENDS:
            if (key, engine, scenario) in results:
                return results[key, engine, scenario]
        return None
    return results.get((backend, engine, scenario))


def _median_seconds(results: Results, backend: str, engine: str, scenario: str) -> float | None:
    sample = _sample(results, backend, engine, scenario)
    return statistics.median(sample.seconds) if sample else None


# Process-level figures -------------------------------------------------------


def _run_python(code: str, *flags: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *flags, "-c", code], check=True, capture_output=True, text=True
    )
    return time.perf_counter() - start, done.stderr


def import_seconds(module: str, runs: int, after: str | None = None) -> float:
    """Median wall time of ``import module`` in a new interpreter, less its start-up
    (and less importing ``after`` first: the pytest plugin's cost is what it adds to pytest)."""
    first = f"import {after}; " if after else ""
    with_import = [_run_python(f"{first}import {module}")[0] for _ in range(runs)]
    bare = [_run_python(f"import {after}" if after else "pass")[0] for _ in range(runs)]
    return statistics.median(with_import) - statistics.median(bare)


def importtime_seconds(module: str, after: str | None = None) -> float | None:
    """Cumulative import time of ``module`` as ``python -X importtime`` reports it."""
    first = f"import {after}; " if after else ""
    _, stderr = _run_python(f"{first}import {module}", "-X", "importtime")
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if match and match.group(2).strip() == module:
            return int(match.group(1)) / 1e6
    return None


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def versions(dbos: str | None, pg: PgServer | None, langgraph: str | None = None) -> dict[str, str]:
    """Versions of what was measured; DBOS and LangGraph only if they could be imported
    (``dbos``, ``langgraph``)."""
    found = {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    for dist in ("durable-sdk", "sqlalchemy", "cloudpickle", "wrapt", "psycopg", "psycopg-pool"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[dist] = importlib.metadata.version(dist)
    if pg is not None:
        import psycopg

        found["libpq"] = str(psycopg.pq.version())
        found["postgresql server"] = pg.version
    if dbos is not None:
        found["dbos"] = dbos
    if langgraph is not None:
        found["langgraph"] = langgraph
        for dist in (
            "langgraph-checkpoint",
            "langgraph-checkpoint-sqlite",
            "langgraph-checkpoint-postgres",
            "aiosqlite",
            "langchain-core",
        ):
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                found[dist] = importlib.metadata.version(dist)
    return found


def postgres_unavailable(url: str) -> str | None:
    """Why the PostgreSQL server cannot be used, or None if it can."""
    try:
        import psycopg
    except ImportError:
        return 'psycopg 3 is not installed (pip install "durable-sdk[postgres]")'
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


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
    mib = sizes.payload_bytes / (1 << 20)
    return [("MiB/s", lambda s: mib / s)]


def _median_of(values: list[float]) -> str:
    return f"{statistics.median(values):.3f}" if values else "—"


def main_table(results: Results, sizes: Sizes, backend: str) -> list[list[str]]:
    """Durable beside its raw baseline(s) and plain Python, on one backend."""
    raw = RAW if backend == SQLITE else RAW_PG
    order = (DURABLE, RAW, PYTHON) if backend == SQLITE else (DURABLE, RAW_PG, RAW_PG_SYNC, PYTHON)
    rows = [["Scenario", "Metric", *order, f"durable / {raw} (per step)"]]
    for scenario in SCENARIOS:
        medians = {e: _median_seconds(results, backend, e, scenario) for e in order}
        title = sizes.title(scenario)
        for label, figure in _metrics(sizes, scenario):
            cells = [_num(figure(s) if s else None) for s in medians.values()]
            rows.append([title, label, *cells, ""])
            title = ""
        steps = sizes.steps(scenario)
        per_step = {e: _per_step_us(s, steps) for e, s in medians.items()}
        ratio = _ratio(per_step[DURABLE], per_step[raw])
        rows.append(["", "µs/step", *(_num(v) for v in per_step.values()), f"{_num(ratio)}x"])
        if scenario != BLOB:
            continue
        samples = [_sample(results, backend, e, BLOB) for e in order]
        stored_label = "bytes on disk / payload" if backend == SQLITE else "bytes stored / payload"
        rows.append(["", stored_label, *(_median_of(s.overhead if s else []) for s in samples), ""])
        if backend == POSTGRES:
            walled = [_median_of(s.wal if s else []) for s in samples]
            rows.append(["", "WAL written / payload", *walled, ""])
    return rows


def dbos_table(results: Results, sizes: Sizes, backend: str) -> list[list[str]]:
    """Durable beside DBOS, on one backend."""
    peers = (DBOS_DEFAULT, DBOS_WAL) if backend == SQLITE else (DBOS_PG,)
    return peer_table(results, sizes, backend, peers, DBOS_SCENARIOS)


def langgraph_table(results: Results, sizes: Sizes, backend: str) -> list[list[str]]:
    """Durable beside LangGraph, on one backend."""
    peers = (LANGGRAPH_DEFAULT, LANGGRAPH_WAL) if backend == SQLITE else (LANGGRAPH_PG,)
    return peer_table(results, sizes, backend, peers, LANGGRAPH_SCENARIOS)


def peer_table(
    results: Results,
    sizes: Sizes,
    backend: str,
    peers: tuple[str, ...],
    scenarios: tuple[str, ...],
) -> list[list[str]]:
    """Durable beside a peer's setups and the raw baseline, on one backend."""
    order = (DURABLE, *peers, RAW if backend == SQLITE else RAW_PG)
    rows = [["Scenario", "Metric", *order]]
    for scenario in scenarios:
        medians = [_median_seconds(results, backend, e, scenario) for e in order]
        title = sizes.title(scenario)
        for label, figure in _metrics(sizes, scenario):
            rows.append([title, label, *(_num(figure(s) if s else None) for s in medians)])
            title = ""
        steps = sizes.steps(scenario)
        rows.append(["", "µs/step", *(_num(_per_step_us(s, steps)) for s in medians)])
        if scenario != BLOB:
            continue
        samples = [_sample(results, backend, e, BLOB) for e in order]
        stored_label = "bytes on disk / payload" if backend == SQLITE else "bytes stored / payload"
        rows.append(["", stored_label, *(_median_of(s.overhead if s else []) for s in samples)])
        if backend == POSTGRES:
            rows.append(
                ["", "WAL written / payload", *(_median_of(s.wal if s else []) for s in samples)]
            )
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


def add_store_args(parser: argparse.ArgumentParser, postgres_note: str = "") -> None:
    """The options every benchmark takes for its stores: --backends and --postgres-url."""
    parser.add_argument(
        "--backends",
        default=None,
        help="comma-separated, from: sqlite, postgresql (default: both, postgresql only "
        "if its server answers)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("DURABLE_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="the PostgreSQL server and database to use (default: $DURABLE_BENCH_POSTGRES_URL, "
        f"else {DEFAULT_POSTGRES_URL}); each run makes a schema of its own there and drops it"
        + postgres_note,
    )


def choose_backends(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """``args.backends`` as a tuple, and ``args.explicit_backends``: whether it was asked for."""
    if args.backends is None:
        args.explicit_backends = False
        args.backends = BACKENDS
    else:
        args.explicit_backends = True
        chosen = tuple(dict.fromkeys(b.strip() for b in args.backends.split(",") if b.strip()))
        if not chosen or any(b not in BACKENDS for b in chosen):
            parser.error(f"--backends takes a comma-separated list of {', '.join(BACKENDS)}")
        args.backends = chosen


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=None, help="repeats; the median is shown")
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run (1 repeat)")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--no-dbos", action="store_true", help="skip DBOS even if installed")
    parser.add_argument(
        "--no-langgraph", action="store_true", help="skip LangGraph even if installed"
    )
    add_store_args(parser)
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 1 if args.quick else 5
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    choose_backends(args, parser)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    backends: tuple[str, ...] = args.backends
    pg_note = None
    if POSTGRES in backends:
        reason = postgres_unavailable(args.postgres_url)
        if reason is not None:
            shown = sa.make_url(args.postgres_url).render_as_string(hide_password=True)
            pg_note = f"PostgreSQL: skipped, the server at {shown} cannot be used: {reason}"
            if args.explicit_backends:
                print(pg_note, file=sys.stderr)
                return 2
            backends = tuple(b for b in backends if b != POSTGRES)
    dbos = None if args.no_dbos else dbos_version()
    peers = Peers(dbos, None if args.no_langgraph else langgraph_version())
    if peers.langgraph is not None:
        for backend in backends:
            missing = langgraph_missing(backend)
            if missing is None:
                peers.langgraph_on += (backend,)
            else:
                peers.langgraph_notes.append(
                    f"LangGraph on {BACKEND_TITLES[backend]}: skipped, {missing} is not "
                    f"installed (pip install {missing})"
                )
    pg = PgServer(args.postgres_url) if POSTGRES in backends else None
    try:
        return _run_and_report(args, sizes, backends, peers, pg, pg_note)
    finally:
        if pg is not None:
            pg.close()


@dataclass
class Peers:
    """The optional peers this run measures."""

    dbos: str | None
    """DBOS's version, None if it is not measured."""
    langgraph: str | None
    """LangGraph's version, None if it is not measured."""
    langgraph_on: tuple[str, ...] = ()
    """The backends LangGraph runs on (those whose checkpointer is installed)."""
    langgraph_notes: list[str] = field(default_factory=list)


def _fewer_note(repeats: dict[str, int], repeat: int) -> str:
    """Which peers ran fewer repeats than asked, and how many."""
    fewer = {label: n for label, n in repeats.items() if n < repeat}
    names = [
        name
        for name, labels in (("DBOS", DBOS_LABELS), ("LangGraph", LANGGRAPH_LABELS))
        if any(label in fewer for label in labels)
    ]
    return f" ({', '.join(names)}: {min(fewer.values())})" if fewer else ""


def _run_and_report(
    args: argparse.Namespace,
    sizes: Sizes,
    backends: tuple[str, ...],
    peers: Peers,
    pg: PgServer | None,
    pg_note: str | None,
) -> int:
    dbos = peers.dbos
    rss_before = peak_rss_mib()
    started = time.perf_counter()
    found = engines(backends, with_dbos=dbos is not None, langgraph=peers.langgraph_on)
    results, repeats = run_all(sizes, args.repeat, found, pg)
    took = time.perf_counter() - started

    print(
        f"durable benchmark: {args.repeat} repeat(s), median shown"
        + _fewer_note(repeats, args.repeat)
        + f"; {took:.1f} s running the engines (opening stores included)"
    )
    langgraph = peers.langgraph if peers.langgraph_on else None
    print(", ".join(f"{k} {v}" for k, v in versions(dbos, pg, langgraph).items()))
    for backend in backends:
        print()
        if backend == SQLITE:
            print("SQLite (durable's default store: WAL + synchronous=NORMAL)")
        else:
            assert pg is not None
            print(
                f"PostgreSQL {pg.version} (synchronous_commit={pg.synchronous_commit}); "
                "a fresh schema per run"
            )
        print()
        print(render(main_table(results, sizes, backend), args.markdown))
    if pg_note is not None:
        print()
        print(pg_note)
    print()
    if dbos is not None:
        for backend in backends:
            if backend == SQLITE:
                print(f"DBOS {dbos} on SQLite: default config, and with WAL+NORMAL")
            else:
                print(f"DBOS {dbos} on PostgreSQL: a database of its own")
            print()
            print(render(dbos_table(results, sizes, backend), args.markdown))
            print()
    elif args.no_dbos:
        print("DBOS: skipped (--no-dbos)")
        print()
    else:
        print("DBOS: not installed (pip install dbos to compare)")
        print()
    _report_langgraph(args, sizes, backends, peers, results)
    blobs_mib = sizes.payload_bytes / (1 << 20)
    print(
        f"peak RSS of this process: {rss_before:.1f} MiB before the runs, "
        f"{peak_rss_mib():.1f} MiB after (all engines, {blobs_mib:g} MiB of payloads held)"
    )
    print()
    print("Peak memory in scenario 3: each engine in a process of its own, its modules imported")
    print(f"and {blobs_mib:g} MiB of payloads made before; 'added' is what opening the store and")
    print("running the scenario took on top (median of up to 3 repeats)")
    print()
    print(render(memory_table(args, sizes, found), args.markdown))
    print()
    runs = 1 if args.quick else 5
    modules = ["durable"]
    modules += ["dbos"] if dbos is not None else []
    modules += ["langgraph.func"] if langgraph is not None else []
    for module in modules:
        print(import_line(module, runs))
    print(import_line("durable.plugins.pytest", runs, after="pytest"))
    return 0


def _report_langgraph(
    args: argparse.Namespace,
    sizes: Sizes,
    backends: tuple[str, ...],
    peers: Peers,
    results: Results,
) -> None:
    if args.no_langgraph:
        print("LangGraph: skipped (--no-langgraph)")
        print()
        return
    if peers.langgraph is None:
        print(f"LangGraph: not installed ({LANGGRAPH_INSTALL} to compare)")
        print()
        return
    for backend in backends:
        if backend not in peers.langgraph_on:
            continue
        if backend == SQLITE:
            print(
                f"LangGraph {peers.langgraph} on SQLite (functional API, AsyncSqliteSaver): "
                "its default (WAL, synchronous=FULL), and with synchronous=NORMAL"
            )
        else:
            print(
                f"LangGraph {peers.langgraph} on PostgreSQL (functional API, "
                "AsyncPostgresSaver): a schema of its own"
            )
        print()
        print(render(langgraph_table(results, sizes, backend), args.markdown))
        print()
    for note in peers.langgraph_notes:
        print(note)
        print()


def memory_table(args: argparse.Namespace, sizes: Sizes, found: list[Engine]) -> list[list[str]]:
    """Peak RSS of scenario 3 per engine: each runs it once in a new interpreter."""
    rows = [["Store", "Engine", "peak RSS, MiB", "of it before the run, MiB", "added, MiB"]]
    for engine in found:
        if BLOB not in engine.scenarios or engine.label == PYTHON:
            continue
        samples = [_blob_memory_in_child(args, engine) for _ in range(min(args.repeat, 3))]
        before = statistics.median(b for b, _ in samples)
        peak = statistics.median(p for _, p in samples)
        rows.append(
            [
                BACKEND_TITLES[engine.backend],
                engine.label,
                _num(peak),
                _num(before),
                _num(peak - before),
            ]
        )
    return rows


def _blob_memory_in_child(args: argparse.Namespace, engine: Engine) -> tuple[float, float]:
    command = [sys.executable, __file__, "--postgres-url", args.postgres_url]
    command += ["--quick"] if args.quick else []
    command += [_CHILD_FLAG, engine.backend, engine.label]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"scenario 3 of {engine.label} failed:\n{done.stderr}")
    before, peak = json.loads(done.stdout.strip().splitlines()[-1])
    return float(before), float(peak)


_CHILD_FLAG = "--blob-memory-of"


def _status_mib(field: str) -> float:
    """This process's resident memory now (VmRSS) or at its peak (VmHWM), from Linux's
    /proc: ``ru_maxrss`` would also count the parent's, which a child keeps across exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mib()


def _blob_memory_child(argv: list[str]) -> int:
    """In the child: run scenario 3 of one engine once; print peak RSS before and after."""
    i = argv.index(_CHILD_FLAG)
    backend, label = argv[i + 1], argv[i + 2]
    args = parse_args(argv[:i] + argv[i + 3 :])
    sizes = QUICK if args.quick else FULL
    pg = PgServer(args.postgres_url) if backend == POSTGRES else None
    try:
        found = engines((backend,), with_dbos=True, langgraph=(backend,))
        (engine,) = [e for e in found if e.label == label]
        if label in DBOS_LABELS:
            import dbos  # noqa: F401  (its import is not the scenario's memory)
        if label in LANGGRAPH_LABELS:
            # Its imports are not the scenario's memory either.
            import langgraph.func  # noqa: F401

            importlib.import_module(_LANGGRAPH_SAVERS[backend][0])
        _BLOBS[:] = [os.urandom(sizes.blob_bytes) for _ in range(sizes.blob_steps)]
        with tempfile.TemporaryDirectory(prefix="durable-bench-") as tmp:
            place = Place(Path(tmp), f"bench_{uuid.uuid4().hex[:16]}", pg)
            before = _status_mib("VmRSS")
            _measure(engine, BLOB, sizes, place)
            print(json.dumps([before, _status_mib("VmHWM")]))
    finally:
        if pg is not None:
            pg.close()
    return 0


def import_line(module: str, runs: int, after: str | None = None) -> str:
    """Import time of ``module`` in new interpreters; with ``after``, what it adds to it."""
    cumulative = importtime_seconds(module, after)
    base = f"`python -c 'import {after}'`" if after else "`python -c pass`"
    return (
        f"import {module}: {import_seconds(module, runs, after) * 1e3:.0f} ms "
        f"(new interpreter, median of {runs}, less {base}); "
        f"-X importtime cumulative: {_num(None if cumulative is None else cumulative * 1e3)} ms"
    )


if __name__ == "__main__":
    sys.exit(_blob_memory_child(sys.argv[1:]) if _CHILD_FLAG in sys.argv else main())
