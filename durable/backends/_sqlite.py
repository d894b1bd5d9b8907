"""SQLite: the embedded default store (a file in WAL mode, or ``:memory:``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.pool import StaticPool

from durable._errors import BackendUnavailableError
from durable.backends._sql import SqlBackend

_BUSY_TIMEOUT_MS = 30_000


class SqliteBackend(SqlBackend):
    """The store in one SQLite database file, or in memory.

    A file database runs in WAL mode with ``synchronous=NORMAL``: a committed
    step survives a crash of the process (the guarantee durable makes); only a
    power loss can take back the last commits. Write transactions start with
    ``BEGIN IMMEDIATE`` so that two processes never deadlock upgrading a read
    lock, and wait up to 30 s for each other.
    """

    def __init__(self, url: sa.URL) -> None:
        database = url.database or ""
        self.memory = database in ("", ":memory:")
        shown = url.render_as_string(hide_password=True)
        if not self.memory:
            path = Path(database)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise BackendUnavailableError(
                    f"cannot create the folder for the SQLite database {shown}: {exc}",
                    url=shown,
                ) from exc
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": _BUSY_TIMEOUT_MS / 1000},
            # One connection for :memory: (each connection would otherwise see
            # its own empty database); a pool of them for a file.
            poolclass=StaticPool if self.memory else None,
        )
        sa.event.listen(engine, "connect", _on_connect)
        sa.event.listen(engine, "begin", _on_begin)
        try:
            super().__init__(engine, shown, serialize_access=self.memory)
        except sa.exc.DatabaseError as exc:
            engine.dispose()
            raise BackendUnavailableError(
                f"cannot open the SQLite database {shown}: {exc.orig}. Is it a "
                "durable database, and is its folder writable?",
                url=shown,
            ) from exc

    def _prepare(self) -> None:
        if not self.memory:
            with self.engine.connect() as conn:
                # Outside any transaction (SQLAlchemy would begin one), and
                # persistent in the file: later connections find WAL on.
                dbapi = conn.connection.dbapi_connection
                assert dbapi is not None
                dbapi.execute("PRAGMA journal_mode = WAL")

    def _insert(self, table: sa.Table) -> Any:
        return sqlite_insert(table)


def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself: the sqlite3 module's
    # own implicit transactions would start too late and as DEFERRED.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _on_begin(conn: sa.Connection) -> None:
    if conn.get_execution_options().get("durable_write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")
