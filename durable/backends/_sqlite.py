"""SQLite: the embedded default store (a file in WAL mode, or ``:memory:``)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.pool import StaticPool

from durable._errors import BackendUnavailableError
from durable.backends import _schema as s
from durable.backends._checkpointer import BACKSTOP_PAGES, JOURNAL_SIZE_LIMIT, Checkpointer
from durable.backends._compiled import Compiled, named_row
from durable.backends._fence import Fence
from durable.backends._notify import Notifier
from durable.backends._sql import SqlBackend
from durable.backends._statements import Result, Tx, statements_for
from durable.backends._writelock import WriteLock, write_lock

T = TypeVar("T")

Durability = Literal["normal", "full", "batched"]

_BUSY_TIMEOUT_MS = 30_000
# The host's clock (SQLite's own, julianday('now'), has only milliseconds;
# the database and this process share the host anyway).
_NOW = sa.literal_column("durable_now()", sa.Float)
_COMPILED = Compiled(SQLiteDialect_pysqlite())
_SYNCHRONOUS = {"normal": "NORMAL", "full": "FULL", "batched": "OFF"}


class _RawTx:
    """Statements run on one sqlite3 connection (in its transaction, if one is open)."""

    __slots__ = ("_checkpointer", "_conn", "_lock")

    def __init__(
        self,
        conn: sqlite3.Connection,
        checkpointer: Checkpointer | None,
        lock: WriteLock | None = None,
    ) -> None:
        self._conn = conn
        self._checkpointer = checkpointer
        self._lock = lock  # None inside a transaction, which holds it already

    async def execute(self, stmt: sa.Executable, params: dict[str, Any] | None = None) -> Result:
        sql, values = _COMPILED(stmt, params)
        if sql[0] == "S":  # a read
            cursor = self._conn.execute(sql, values)
            return Result(cursor.rowcount, cursor.fetchall() if cursor.description else [])
        if self._checkpointer is not None:
            self._checkpointer.wrote(values)
        fd = self._lock.acquire() if self._lock is not None else -1
        try:
            cursor = self._conn.execute(sql, values)
            rows = cursor.fetchall() if cursor.description else []
        finally:
            WriteLock.release(fd)
        return Result(cursor.rowcount, rows)


class SqliteBackend(SqlBackend):
    """The store in one SQLite database file, or in memory.

    A file database runs in WAL mode. With ``durability="normal"`` (the
    default, ``synchronous=NORMAL``) a committed step survives a crash of the
    process, the guarantee durable makes; only a power loss can take back the
    last commits. ``durability="full"`` (``synchronous=FULL``) syncs every
    commit to disk, surviving a power loss too. ``durability="batched"``
    (``synchronous=OFF``) leaves flushing to the operating system: a process
    crash still loses nothing, an OS crash or power loss may lose the commits
    not yet written out. Writers wait up to 30 s for each other. Checkpoints
    run on a background thread (``_checkpointer``).

    Statements run on plain sqlite3 connections (one per thread; the single
    one of ``:memory:`` behind a lock), in autocommit unless an operation
    needs several statements to be atomic. Calls take microseconds, so the
    async forms run them in place rather than hopping to a thread.
    """

    writes_suspend = False

    def __init__(self, url: sa.URL, durability: Durability = "normal") -> None:
        database = url.database or ""
        self.memory = database in ("", ":memory:")
        self.url = url.render_as_string(hide_password=True)
        self.durability = durability
        self._path = database
        self.identity = (
            f"sqlite-memory:{id(self)}" if self.memory else f"sqlite:{os.path.realpath(database)}"
        )
        self.q = statements_for("sqlite", sqlite_insert, _NOW)
        self.notifier = Notifier()
        self.fence = Fence(self.url)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        # The single connection of :memory: must not serve two threads at once.
        self._lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        self._shared: sqlite3.Connection | None = None
        self._checkpointer: Checkpointer | None = None
        self._writers: WriteLock | None = None
        if self.memory:
            self._lock = threading.RLock()
        else:
            try:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise BackendUnavailableError(
                    f"cannot create the folder for the SQLite database {self.url}: {exc}",
                    url=self.url,
                ) from exc
        try:
            if self.memory:
                self._shared = self._connect()
            else:
                self._checkpointer = Checkpointer(self._checkpoint_connection, self.url)
                self._writers = write_lock(database)
            self._open()
        except (sqlite3.Error, sa.exc.DatabaseError) as exc:
            self.close()
            reason = getattr(exc, "orig", None) or exc
            raise BackendUnavailableError(
                f"cannot open the SQLite database {self.url}: {reason}. Is it a "
                "durable database, and is its folder writable?",
                url=self.url,
            ) from exc
        except BaseException:  # a newer schema, an interrupt: leave no connection open
            self.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        conn = self._checkpoint_connection()
        with self._connections_lock:
            self._connections.append(conn)  # closed by close(), whatever happens next
        conn.row_factory = named_row
        conn.create_function("durable_now", 0, time.time)
        return conn

    def _checkpoint_connection(self) -> sqlite3.Connection:
        """A connection with the store's settings (its checkpoint thread closes its own)."""
        conn = sqlite3.connect(
            self._path or ":memory:",
            timeout=_BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,  # autocommit: transactions are begun explicitly
            check_same_thread=False,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute(f"PRAGMA synchronous = {_SYNCHRONOUS[self.durability]}")
            if not self.memory:
                conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
                # Once the log starts over, its file shrinks back to this.
                conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _connection(self) -> sqlite3.Connection:
        if self._shared is not None:
            return self._shared
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is None or local.pid != os.getpid():
            conn = local.conn = self._connect()
            local.pid = os.getpid()
        return conn

    def _open(self) -> None:
        """Check the version, switch to WAL, create or migrate the schema."""
        engine = sa.create_engine(
            "sqlite://", creator=self._connection, poolclass=StaticPool if self.memory else None
        )
        try:
            # Refuse a newer database before anything, even a pragma, touches it.
            with engine.connect() as conn:
                s.check_version(conn, self.url)
                conn.rollback()
            if not self.memory:
                # Persistent in the file: later connections find WAL on.
                self._connection().execute("PRAGMA journal_mode = WAL")
            with engine.connect() as conn:
                # The raw connection is in autocommit: the transaction is ours.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    s.ensure_schema(conn, self.url)
                except BaseException:
                    conn.exec_driver_sql("ROLLBACK")
                    raise
                conn.exec_driver_sql("COMMIT")
        finally:
            engine.dispose(close=False)

    @contextlib.contextmanager
    def _sync_tx(self, atomic: bool) -> Iterator[Tx]:
        with self._lock:
            conn = self._connection()
            if not atomic:
                yield _RawTx(conn, self._checkpointer, self._writers)
                return
            fd = self._writers.acquire() if self._writers is not None else -1
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield _RawTx(conn, self._checkpointer)
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                WriteLock.release(fd)

    async def _arun(self, atomic: bool, op: Callable[..., Awaitable[T]], *args: Any) -> T:
        try:
            if atomic:
                return await super()._arun(atomic, op, *args)
            # The common case (one statement, in autocommit) without the two
            # context managers of a transaction: they cost a tenth of a step.
            self.fence.enter()
            try:
                with self._lock:
                    return await op(
                        _RawTx(self._connection(), self._checkpointer, self._writers), *args
                    )
            finally:
                self.fence.leave()
        except sqlite3.OperationalError as exc:  # the store did not answer, as on PostgreSQL
            raise self._failed(exc) from exc

    def _run(self, atomic: bool, op: Callable[..., Awaitable[T]], *args: Any) -> T:
        try:
            return super()._run(atomic, op, *args)
        except sqlite3.DatabaseError as exc:
            raise self._failed(exc) from exc

    def _failed(self, exc: sqlite3.DatabaseError) -> BackendUnavailableError:
        if isinstance(exc, sqlite3.OperationalError):
            locked = "locked" in str(exc)
            return BackendUnavailableError(
                f"the SQLite store {self.url} did not answer: {exc}"
                + (
                    f" (another connection held its write lock for over "
                    f"{_BUSY_TIMEOUT_MS // 1000} s)"
                    if locked
                    else ""
                ),
                url=self.url,
            )
        return BackendUnavailableError(
            f"the SQLite store {self.url} failed: {exc}. Is the file damaged?",
            url=self.url,
        )

    def health(self) -> dict[str, object]:
        started = time.perf_counter()
        self.now()  # a damaged or locked file raises BackendUnavailableError here
        return {
            "backend": "sqlite",
            "server_version": sqlite3.sqlite_version,
            "latency_ms": (time.perf_counter() - started) * 1000,
        }

    def _release(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()  # first: its connection is among those closed below
        if self._writers is not None:
            self._writers.close()
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
