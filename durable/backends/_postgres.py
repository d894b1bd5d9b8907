"""PostgreSQL: the store many processes and hosts share (psycopg 3).

Statements are the same SQLAlchemy Core objects as SQLite's, compiled once
for PostgreSQL and executed by psycopg directly: measured on loopback, that
costs what a raw psycopg statement costs, where SQLAlchemy's async engine
takes 1.7x as long per statement (benchmarks/pg_driver_choice.py).
The sync path uses a ``psycopg_pool.ConnectionPool``; the async path native
``AsyncConnection``s (no thread hop), kept per event loop because an async
connection belongs to the loop that opened it.

Connections that drop (a restarted server, a ``pg_terminate_backend``) are
retried with a bounded backoff. Every operation is safe to repeat: a step
insert whose commit went unacknowledged finds its own record on the retry
and adopts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import re
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

from durable._errors import BackendUnavailableError, ConfigurationError
from durable.backends import _partitions
from durable.backends import _schema as s
from durable.backends._base import Operation, atomic
from durable.backends._compiled import Compiled
from durable.backends._fence import Fence
from durable.backends._notify import Notifier
from durable.backends._pg_rows import rows_at_once
from durable.backends._sql import SqlBackend
from durable.backends._statements import statements_for
from durable.backends._store_url import StoreUrl
from durable.backends._tx import Result, Tx
from durable.backends._url import flag, shown_url

if TYPE_CHECKING:
    import psycopg

    from durable.backends._tx import Statement

P = ParamSpec("P")
T = TypeVar("T")

_NOW = sa.literal_column("(extract(epoch from clock_timestamp())::float8)", sa.Float)
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
log = logging.getLogger("durable")

# Waits between tries after a dropped connection, until RETRY_SECONDS have
# passed since the first failed try began (waiting for a pooled connection or
# connecting is bounded too, so one try cannot outlast the budget by much).
_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
RETRY_SECONDS = 6.0
"""How long an operation retries a lost server before BackendUnavailableError."""
_CONNECT_TIMEOUT = 3
"""libpq's connect_timeout (seconds) unless the URL sets one: a try must end."""
_DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]

DEFAULT_SCHEMA = "durable"
DEFAULT_POOL_MIN = 1
DEFAULT_POOL_MAX = 10
WRITES_IN_FLIGHT = 2
"""Grouped writes of one event loop in flight at once; the others queue for the next.

Fewer in flight make bigger groups, and a group costs about what one write
does (its step records, starts and finishes each go in one statement): 200
concurrent workflows ran 7.6x the sequential rate with 2, 5.5x with 10 (one
per pooled connection). Two, not one, so that a large write does not hold up
every small one behind it (benchmarks/RESULTS.md).
"""


# Shared by every backend: the statements themselves are shared (statements_for).
_COMPILED = Compiled(lambda: _DIALECT)


class _SyncTx:
    __slots__ = ("_compiled", "_conn", "done", "topics")

    def __init__(self, conn: psycopg.Connection[Any], compiled: Compiled) -> None:
        self._conn, self._compiled = conn, compiled
        self.topics: list[str] = []
        self.done: list[Callable[[], object]] = []

    async def execute(self, stmt: Statement, params: dict[str, Any] | None = None) -> Result:
        sql, values = self._compiled(stmt, params)
        cur = self._conn.execute(sql, values)
        return Result(cur.rowcount, cur.fetchall() if cur.description else [])


class _AsyncTx:
    __slots__ = ("_compiled", "_conn", "done", "topics")

    def __init__(self, conn: psycopg.AsyncConnection[Any], compiled: Compiled) -> None:
        self._conn, self._compiled = conn, compiled
        self.topics: list[str] = []
        self.done: list[Callable[[], object]] = []

    async def execute(self, stmt: Statement, params: dict[str, Any] | None = None) -> Result:
        sql, values = self._compiled(stmt, params)
        cur = await self._conn.execute(sql, values)
        return Result(cur.rowcount, await cur.fetchall() if cur.description else [])


class _LoopConnections:
    """Idle async connections of one event loop, at most ``limit`` in use."""

    def __init__(self, limit: int) -> None:
        self.idle: list[psycopg.AsyncConnection[Any]] = []
        self.all: weakref.WeakSet[psycopg.AsyncConnection[Any]] = weakref.WeakSet()
        self.slots = asyncio.Semaphore(limit)


def _finish_all(connections: weakref.WeakSet[Any]) -> None:
    """Close connections without their (possibly closed) event loop."""
    for conn in list(connections):
        with contextlib.suppress(Exception):
            conn.pgconn.finish()


class PostgresBackend(SqlBackend):
    """The store in a PostgreSQL schema (``durable`` unless the URL says ``?schema=``).

    URL options (query parameters): ``schema``, ``pool_min`` (default 1),
    ``pool_max`` (default 10), ``shared`` (``true``: durable's tables may join
    a schema that holds other tables); libpq's own (``sslmode``,
    ``application_name``, ``connect_timeout``...) are passed to libpq, and
    any other is refused (``durable.backends._url.parse_url``).
    """

    def __init__(self, url: StoreUrl, durability: str = "normal") -> None:
        psycopg, psycopg_pool, namedtuple_row = _drivers()
        self._psycopg = psycopg
        self._pool_timeout = psycopg_pool.PoolTimeout
        self.url = shown_url(url)
        options = dict(url.query)
        self.shared = flag(url, "shared")
        options.pop("shared", None)
        self.schema = _pop_schema(options, self.url)
        pool_min = _pop_int(options, "pool_min", DEFAULT_POOL_MIN, self.url, minimum=0)
        pool_max = _pop_int(options, "pool_max", DEFAULT_POOL_MAX, self.url, minimum=1)
        if pool_max < pool_min:
            raise ConfigurationError(
                f"pool_max ({pool_max}) is below pool_min ({pool_min}) in {self.url}",
                url=self.url,
            )
        self._where = (
            f"host {url.host or 'localhost'}, port {url.port or 5432}, database "
            f"{url.database or '(default)'}, user {url.username or '(default)'}"
        )
        options.setdefault("connect_timeout", str(_CONNECT_TIMEOUT))
        self._conninfo = _conninfo(psycopg, url, options, self.url)
        self.identity = (
            f"postgresql:{url.host or 'localhost'}:{url.port or 5432}/{url.database}/{self.schema}"
        )
        self._connect_kwargs: dict[str, Any] = {
            "autocommit": True,
            "row_factory": namedtuple_row,
            "options": _session_options(options, self.schema, durability),
        }
        self.q = statements_for("postgresql", pg_insert, _NOW, rows_at_once)
        # One channel per schema, named by a digest (channel names are short).
        self._channel = "durable_" + hashlib.sha256(self.schema.encode()).hexdigest()[:20]
        self._closing = threading.Event()
        self.notifier = _ListeningNotifier(self)
        self.fence = Fence(self.url)
        self._compiled = _COMPILED
        self._pool_max = pool_max
        self.max_in_flight = min(pool_max, WRITES_IN_FLIGHT)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopConnections] = (
            weakref.WeakKeyDictionary()
        )
        self._loops_lock = threading.Lock()
        self._ensure_schema()
        self._pool = psycopg_pool.ConnectionPool(
            self._conninfo,
            min_size=pool_min,
            max_size=pool_max,
            kwargs=self._connect_kwargs,
            timeout=RETRY_SECONDS,  # waiting for a connection is a try, bounded like one
            name="durable",
            open=False,
        )
        try:
            self._pool.open(wait=pool_min > 0, timeout=30)
        except psycopg_pool.PoolTimeout as exc:
            self._pool.close()
            raise self._unavailable(exc) from exc
        self._ready_months()

    # Opening ----------------------------------------------------------------

    def _ensure_schema(self) -> None:
        """Create or migrate the schema, one process at a time."""
        psycopg = self._psycopg
        engine = sa.create_engine(
            "postgresql+psycopg://",
            creator=lambda: psycopg.connect(self._conninfo),
            poolclass=sa.pool.NullPool,
        )
        try:
            with engine.connect() as conn, conn.begin():
                # Serialise concurrent first opens of one schema.
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                    {"key": f"durable-schema:{self.schema}"},
                )
                # Created only if missing: a role that may not create schemas
                # (CREATE IF NOT EXISTS asks for the privilege all the same)
                # still opens a store that exists.
                exists = conn.execute(
                    sa.text("SELECT 1 FROM pg_namespace WHERE nspname = :schema"),
                    {"schema": self.schema},
                ).first()
                if exists is None:
                    conn.exec_driver_sql(f'CREATE SCHEMA "{self.schema}"')
                conn.exec_driver_sql(f'SET LOCAL search_path TO "{self.schema}"')
                # Before any DDL (CREATE SCHEMA IF NOT EXISTS changes no schema that exists).
                where = f"{self.url} (schema {self.schema})"
                if not s.check_version(conn, where, self.schema):
                    s.refuse_foreign_tables(conn, self.url, self.schema, self.shared)
                self.schema_before = s.ensure_schema(conn, where, schema=self.schema)
        except sa.exc.OperationalError as exc:
            raise self._unavailable(exc.orig or exc) from exc
        except sa.exc.ProgrammingError as exc:
            if not isinstance(exc.orig, psycopg.errors.InsufficientPrivilege):
                raise
            reason = " ".join(str(exc.orig).split())
            raise ConfigurationError(
                f"the PostgreSQL role of {self.url} may not set up the store in schema "
                f"{self.schema!r} ({reason}). Let a role that may create the schema and its "
                "tables open it once (or grant CREATE on the database / schema); after "
                "that, a role that may read and write the rows can use it.",
                url=self.url,
            ) from exc
        finally:
            engine.dispose()

    def _ready_months(self) -> None:
        """A store kept by month: the partitions of this month and the next ones, made now.

        Each partition that cannot be made (no privilege, the table busy) is
        left for the next open, and said so (``_partitions.prepare``); records
        of a month without one go to the default partition.
        """
        made = self.run_sync(self._prepare_months)
        if made:
            log.info("%s: made partitions %s", self.url, ", ".join(m.name for m in made))

    @atomic
    async def _prepare_months(self, tx: Tx) -> list[_partitions.Month]:
        if not await _partitions.partitioned(tx):
            return []
        return await _partitions.prepare(tx, await self.now(tx))

    @atomic
    async def partition_by_month(self, tx: Tx) -> int | None:
        try:
            return await _partitions.convert(tx, await self.now(tx))
        except self._psycopg.errors.InsufficientPrivilege as exc:
            raise ConfigurationError(
                f"the PostgreSQL role of {self.url} may not change the store's tables "
                f"({str(exc).splitlines()[0]}); nothing was changed. Run it as the role that "
                "owns them (or a superuser).",
                url=self.url,
            ) from exc

    async def _hold(self, tx: Tx, workflows: sa.Select[Any]) -> None:
        # FOR UPDATE: a workflow made active again (resume, restore) after
        # this look waits for the cleanup, and then finds itself gone; one
        # made active before it no longer matches, and stays with its records.
        held = workflows.with_for_update(of=s.workflows).subquery()
        await tx.execute(sa.select(sa.func.count()).select_from(held))

    async def _whole_months(
        self, tx: Tx, doomed: sa.ColumnElement[bool]
    ) -> Sequence[_partitions.Month]:
        # Partitions are made when the store is opened, in a transaction of
        # their own: making one here would hold the table for the whole cleanup.
        # An unpartitioned store has no months: none is whole.
        return await _partitions.whole(tx, await self.now(tx), doomed)

    async def _drop_months(self, tx: Tx, months: Sequence[_partitions.Month]) -> None:
        await _partitions.drop(tx, list(months))

    def _unavailable(self, exc: BaseException) -> BackendUnavailableError:
        reason = " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
        # libpq asks "Is the server running...?" itself when it could not connect.
        hint = (
            "Are the URL and credentials right?"
            if "server running" in reason
            else "Is the server running, and are the URL and credentials right?"
        )
        return BackendUnavailableError(
            f"cannot reach the PostgreSQL store {self.url} ({self._where}): {reason}"
            f"{'' if reason.endswith('?') else '.'} {hint}",
            url=self.url,
        )

    # Transactions -----------------------------------------------------------

    @contextlib.contextmanager
    def _sync_tx(self, *, atomic: bool) -> Iterator[Tx]:
        with self._pool.connection() as conn:
            if atomic:
                with conn.transaction():
                    yield _SyncTx(conn, self._compiled)
            else:
                yield _SyncTx(conn, self._compiled)

    @contextlib.asynccontextmanager
    async def _async_tx(self, *, atomic: bool) -> AsyncIterator[Tx]:
        loop_conns = self._loop_connections()
        async with loop_conns.slots:
            conn = loop_conns.idle.pop() if loop_conns.idle else await self._aconnect(loop_conns)
            try:
                if atomic:
                    async with conn.transaction():
                        yield _AsyncTx(conn, self._compiled)
                else:
                    yield _AsyncTx(conn, self._compiled)
            except BaseException:
                await conn.close()  # its state is unknown: never reuse it
                raise
            if conn.closed or conn.info.transaction_status != 0:  # 0: idle
                await conn.close()
            else:
                loop_conns.idle.append(conn)

    def _loop_connections(self) -> _LoopConnections:
        loop = asyncio.get_running_loop()
        with self._loops_lock:
            conns = self._loops.get(loop)
            if conns is None:
                # A closed loop's connections can serve no one: release them
                # now, as its finalizer may never run (each connection refers
                # to its loop, and the loop is the key that holds them).
                for old, old_conns in list(self._loops.items()):
                    if old.is_closed():
                        del self._loops[old]
                        _finish_all(old_conns.all)
                conns = self._loops[loop] = _LoopConnections(self._pool_max)
                # When the loop goes away, so do its connections.
                weakref.finalize(loop, _finish_all, conns.all)
            return conns

    async def _aconnect(self, loop_conns: _LoopConnections) -> psycopg.AsyncConnection[Any]:
        conn: psycopg.AsyncConnection[Any] = await self._psycopg.AsyncConnection.connect(
            self._conninfo, **self._connect_kwargs
        )
        loop_conns.all.add(conn)
        return conn

    # Retries ----------------------------------------------------------------

    def run_sync(self, op: Operation[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        failed_at = None
        for tries in range(len(_RETRY_DELAYS) + 1):
            began = time.monotonic()
            try:
                return super().run_sync(op, *args, **kwargs)
            except self._psycopg.OperationalError as exc:
                failed_at = failed_at if failed_at is not None else began
                delay = _retry_delay(tries, failed_at)
                if delay is None:
                    raise self._unavailable(exc) from exc
                time.sleep(delay)
        raise AssertionError("unreachable")

    async def run_async(self, op: Operation[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        failed_at = None
        for tries in range(len(_RETRY_DELAYS) + 1):
            began = time.monotonic()
            try:
                return await super().run_async(op, *args, **kwargs)
            except self._psycopg.OperationalError as exc:
                failed_at = failed_at if failed_at is not None else began
                delay = _retry_delay(tries, failed_at)
                if delay is None:
                    raise self._unavailable(exc) from exc
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    # Queues and events --------------------------------------------------------

    async def _lock_queue(self, tx: Tx, queue: str) -> None:
        # Claimers of one limited queue take turns (SKIP LOCKED alone would
        # let two of them each count the same free slot).
        await tx.execute(_LOCK_QUEUE, {"key": f"durable-queue:{self.schema}:{queue}"})

    async def _notify(self, tx: Tx, topic: str) -> None:
        await super()._notify(tx, topic)
        # Delivered to listeners when the transaction commits, not before.
        await tx.execute(_NOTIFY, {"channel": self._channel, "topic": topic})

    def listen(self, notifier: Notifier) -> None:
        """Relay this schema's notifications to local waiters, until closed."""
        delay = 0.1
        while not self._closing.is_set():
            try:
                with self._psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f'LISTEN "{self._channel}"')
                    delay = 0.1
                    # Whatever was sent while not listening: everyone looks again.
                    notifier.notify_all()
                    while not self._closing.is_set():
                        for note in conn.notifies(timeout=0.5):
                            log.debug("durable: notified of %r by another process", note.payload)
                            notifier.notify(note.payload)
            except Exception:  # whatever it was, waiters poll meanwhile; listen again
                log.warning("durable: the event listener failed; retrying", exc_info=True)
                self._closing.wait(delay)
                delay = min(delay * 2, 5.0)

    # The rest ---------------------------------------------------------------

    def health(self) -> dict[str, object]:
        started = time.perf_counter()
        try:
            with self._pool.connection(timeout=5) as conn:
                conn.execute("SELECT 1")
                version = conn.info.server_version
        except (self._psycopg.Error, self._pool_timeout) as exc:
            raise self._unavailable(exc) from exc
        return {
            "backend": "postgresql",
            "server_version": f"{version // 10000}.{version % 10000}",
            "latency_ms": (time.perf_counter() - started) * 1000,
            "schema": self.schema,
        }

    def _release(self) -> None:
        self._closing.set()
        # Its workers may be reconnecting to a server that is gone: don't wait them out.
        self._pool.close(timeout=1.0)
        with self._loops_lock:
            for conns in list(self._loops.values()):
                _finish_all(conns.all)
            self._loops.clear()


def _drivers() -> tuple[Any, Any, Any]:
    """psycopg, psycopg_pool and the row factory, or what to install to get them."""
    try:
        import psycopg
        import psycopg_pool
        from psycopg.rows import namedtuple_row
    except ImportError as exc:
        raise ConfigurationError(
            f"the PostgreSQL store needs psycopg 3 and psycopg-pool ({exc}); install "
            'them with: pip install "durable-sdk[postgres]"'
        ) from exc
    return psycopg, psycopg_pool, namedtuple_row


def _conninfo(psycopg: Any, url: StoreUrl, options: dict[str, Any], shown: str) -> str:
    """Libpq's connection string: the URL's parts, then its query (which wins)."""
    # libpq's own socket form puts host and user in the query
    # (postgresql:///db?host=/run/postgresql).
    parts = {
        "host": url.host,
        "port": url.port,
        "dbname": url.database,
        "user": url.username,
        "password": url.password,
    }
    given = {k: v for k, v in parts.items() if v is not None}
    given.update((k, str(v)) for k, v in options.items())
    try:
        return str(psycopg.conninfo.make_conninfo("", **given))
    except psycopg.ProgrammingError as exc:
        raise ConfigurationError(
            f"unknown option in {shown}: {exc}; durable's own options are schema, "
            "pool_min and pool_max, and libpq's are listed in its documentation",
            url=shown,
        ) from exc


def _session_options(options: dict[str, Any], schema: str, durability: str) -> str:
    """The server settings of each connection (libpq's ``options``)."""
    # The user's own ?options= first (this keyword replaces the conninfo's),
    # then durable's: a setting given twice, the last wins.
    return " ".join(
        part
        for part in (
            str(options.get("options", "")),
            f'-c search_path="{schema}"',  # quoted: a name in capitals keeps them
            # "batched": the server acknowledges a commit before flushing its
            # WAL; a server crash can lose up to about 3 x wal_writer_delay
            # (600 ms by default) of commits. A client crash loses nothing.
            "-c synchronous_commit=off" if durability == "batched" else "",
        )
        if part
    )


def _retry_delay(tries: int, failed_at: float) -> float | None:
    """The wait before the next try, or None once the retry budget is spent."""
    if tries >= len(_RETRY_DELAYS):
        return None
    left = RETRY_SECONDS - (time.monotonic() - failed_at)
    # Up to half of it less at random: the processes an outage cut off together
    # come back spread out, not all at once.
    wait = _RETRY_DELAYS[tries] * (1.0 - 0.5 * random.random())
    return min(wait, left) if left > 0 else None


_LOCK_QUEUE = sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))")
_NOTIFY = sa.text("SELECT pg_notify(:channel, :topic)")


class _ListeningNotifier(Notifier):
    """Wakes local waiters on this schema's NOTIFYs too (one listening thread)."""

    def __init__(self, backend: PostgresBackend) -> None:
        super().__init__()
        self._backend = weakref.ref(backend)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def _listening(self) -> None:
        with self._start_lock:
            backend = self._backend()
            if self._thread is not None or backend is None:
                return
            self._thread = threading.Thread(
                target=backend.listen, args=(self,), name="durable-listener", daemon=True
            )
            self._thread.start()


def _pop_schema(options: dict[str, Any], shown: str) -> str:
    schema = options.pop("schema", DEFAULT_SCHEMA)
    if not isinstance(schema, str) or not _SCHEMA_NAME.match(schema):
        raise ConfigurationError(
            f"schema={schema!r} in {shown} is not a plain PostgreSQL identifier "
            "(letters, digits and _, starting with a letter or _, at most 63)",
            url=shown,
        )
    return schema


def _pop_int(options: dict[str, Any], key: str, default: int, shown: str, minimum: int) -> int:
    raw = options.pop(key, None)
    if raw is None:
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = minimum - 1
    if value < minimum:
        raise ConfigurationError(
            f"{key}={raw!r} in {shown} must be a whole number >= {minimum}", url=shown
        )
    return value
