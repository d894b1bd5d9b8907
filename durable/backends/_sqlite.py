"""SQLite: the embedded default store (a file in WAL mode, or ``:memory:``)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.pool import StaticPool

from durable._errors import BackendUnavailableError
from durable.backends import _schema as s
from durable.backends._sql import Result, SqlBackend, Tx, statements_for

T = TypeVar("T")

_BUSY_TIMEOUT_MS = 30_000
# SQLite's clock, in Unix seconds with sub-millisecond precision.
_NOW = sa.literal_column("((julianday('now') - 2440587.5) * 86400.0)", sa.Float)


class _ConnectionTx:
    """Statements run through one SQLAlchemy connection, inside its transaction."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    async def execute(self, stmt: sa.Executable, params: dict[str, Any] | None = None) -> Result:
        result = self._conn.execute(stmt, params or {})
        rows = result.all() if result.returns_rows else []
        return Result(result.rowcount, rows)


class SqliteBackend(SqlBackend):
    """The store in one SQLite database file, or in memory.

    A file database runs in WAL mode with ``synchronous=NORMAL``: a committed
    step survives a crash of the process (the guarantee durable makes); only a
    power loss can take back the last commits. Writers wait up to 30 s for
    each other. Its calls take microseconds, so the async forms run them in
    place rather than hopping to a thread.
    """

    def __init__(self, url: sa.URL) -> None:
        database = url.database or ""
        self.memory = database in ("", ":memory:")
        self.url = url.render_as_string(hide_password=True)
        self.identity = (
            f"sqlite-memory:{id(self)}" if self.memory else f"sqlite:{os.path.realpath(database)}"
        )
        self.q = statements_for("sqlite", sqlite_insert, _NOW)
        if not self.memory:
            try:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise BackendUnavailableError(
                    f"cannot create the folder for the SQLite database {self.url}: {exc}",
                    url=self.url,
                ) from exc
        self.engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": _BUSY_TIMEOUT_MS / 1000},
            # One connection for :memory: (each connection would otherwise see
            # its own empty database); a pool of them for a file.
            poolclass=StaticPool if self.memory else None,
        )
        sa.event.listen(self.engine, "connect", _on_connect)
        sa.event.listen(self.engine, "begin", _on_begin)
        # The single connection of :memory: must not serve two threads at once.
        self._lock: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if self.memory else contextlib.nullcontext()
        )
        try:
            self._open()
        except sa.exc.DatabaseError as exc:
            self.engine.dispose()
            raise BackendUnavailableError(
                f"cannot open the SQLite database {self.url}: {exc.orig}. Is it a "
                "durable database, and is its folder writable?",
                url=self.url,
            ) from exc

    def _open(self) -> None:
        # Refuse a newer database before anything, even a pragma, touches it.
        with self.engine.connect() as conn, conn.begin():
            s.check_version(conn, self.url)
        if not self.memory:
            with self.engine.connect() as conn:
                # Outside any transaction (SQLAlchemy would begin one), and
                # persistent in the file: later connections find WAL on.
                dbapi = conn.connection.dbapi_connection
                assert dbapi is not None
                dbapi.execute("PRAGMA journal_mode = WAL")
        with self._sync_tx(atomic=True) as tx:
            assert isinstance(tx, _ConnectionTx)
            s.ensure_schema(tx._conn, self.url)

    def _run(self, atomic: bool, op: Callable[..., Awaitable[T]], *args: Any) -> T:
        try:
            return super()._run(atomic, op, *args)
        except sa.exc.OperationalError as exc:
            raise BackendUnavailableError(
                f"the SQLite store {self.url} did not answer: {exc.orig}"
                + (
                    f" (another connection held its write lock for over "
                    f"{_BUSY_TIMEOUT_MS // 1000} s)"
                    if "locked" in str(exc.orig)
                    else ""
                ),
                url=self.url,
            ) from exc
        except sa.exc.DatabaseError as exc:
            raise BackendUnavailableError(
                f"the SQLite store {self.url} failed: {exc.orig}. Is the file damaged?",
                url=self.url,
            ) from exc

    @contextlib.contextmanager
    def _sync_tx(self, atomic: bool) -> Iterator[Tx]:
        with self._lock, self.engine.connect() as conn:
            if atomic:
                conn = conn.execution_options(durable_immediate=True)
            with conn.begin():
                yield _ConnectionTx(conn)

    def health(self) -> dict[str, object]:
        started = time.perf_counter()
        self.now()  # a damaged or locked file raises BackendUnavailableError here
        return {
            "backend": "sqlite",
            "server_version": sqlite3.sqlite_version,
            "latency_ms": (time.perf_counter() - started) * 1000,
        }

    def close(self) -> None:
        self.engine.dispose()


def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself: the sqlite3 module's
    # own implicit transactions start late and cannot be made IMMEDIATE.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _on_begin(conn: sa.Connection) -> None:
    # Every operation's first statement is a write or it only reads, so a
    # deferred BEGIN never has to upgrade a stale read snapshot. Operations of
    # several statements take the write lock up front all the same.
    if conn.get_execution_options().get("durable_immediate"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")
