"""SQLite: the embedded default store (a file in WAL mode, or ``:memory:``)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar

from durable._aio import drive
from durable._errors import BackendUnavailableError, ConfigurationError
from durable.backends._base import Operation, is_atomic
from durable.backends._checkpointer import BACKSTOP_PAGES, JOURNAL_SIZE_LIMIT, Checkpointer
from durable.backends._compiled import Compiled, named_row
from durable.backends._fence import Fence
from durable.backends._filewatch import FileWatchingNotifier
from durable.backends._forks import pid
from durable.backends._limits import SCHEMA_VERSION
from durable.backends._notify import Notifier, shared_notifier
from durable.backends._payload_files import PayloadFiles
from durable.backends._precompiled import Precompiled
from durable.backends._sql import SqlBackend
from durable.backends._sqlite_errors import BUSY_TIMEOUT_MS, busy, damage, damaged, explain
from durable.backends._sqlite_sql import CREATION, TEXTS
from durable.backends._store_url import StoreUrl
from durable.backends._tx import Result, Tx
from durable.backends._url import flag, is_memory, path_hint, read_only, shown_url
from durable.backends._writelock import WriteLock, write_lock

if TYPE_CHECKING:
    import sqlalchemy as sa

    from durable.backends._statements import Statements
    from durable.backends._tx import Statement

P = ParamSpec("P")
T = TypeVar("T")

Durability = Literal["normal", "full", "batched"]

_BUSY_TIMEOUT_MS = BUSY_TIMEOUT_MS  # read here at each use (a test shortens it)


def _real_statements() -> Statements:
    from durable.backends import _sqlite_statements

    return _sqlite_statements.statements()


def _dialect() -> sa.Dialect:
    from durable.backends import _sqlite_statements

    return _sqlite_statements.dialect()


_COMPILED = Compiled(_dialect)
# Fixed statements compiled ahead; SQLAlchemy is imported for the others,
# and for making or migrating a schema, when one is first needed.
_STATEMENTS: Statements = Precompiled(TEXTS, _real_statements)  # type: ignore[assignment]
_SYNCHRONOUS = {"normal": "NORMAL", "full": "FULL", "batched": "OFF"}


class _RawTx:
    """Statements run on one sqlite3 connection (in its transaction, if one is open)."""

    __slots__ = ("_checkpointer", "_conn", "_lock", "done", "topics")

    def __init__(
        self,
        conn: sqlite3.Connection,
        checkpointer: Checkpointer | None,
        lock: WriteLock | None = None,
    ) -> None:
        self._conn = conn
        self._checkpointer = checkpointer
        self._lock = lock  # None inside a transaction, which holds it already
        self.topics: list[str] = []
        self.done: list[Callable[[], object]] = []

    async def execute(self, stmt: Statement, params: dict[str, Any] | None = None) -> Result:
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
    run on a background thread (``_checkpointer``). Payloads of 128 KiB or more
    are kept in files beside the database, in ``<file>-payloads``
    (``_payload_files``), under the same durability.

    URL options (checked by ``durable.backends._url.parse_url``): ``mode=ro`` opens
    an existing store read-only, as does a file or folder this process may
    not write (``_read_only_open``); ``shared=true`` lets durable's tables
    join a database that holds other tables, which is otherwise refused
    before anything in it changes.

    Statements run on plain sqlite3 connections (one per thread; the single
    one of ``:memory:`` behind a lock), in autocommit unless an operation
    needs several statements to be atomic. Calls take microseconds, so the
    async forms run them in place rather than hopping to a thread.
    """

    writes_suspend = False

    def __init__(self, url: StoreUrl, durability: Durability = "normal") -> None:
        database = url.database or ""
        self.memory = is_memory(url)
        self.url = shown_url(url)
        self.durability = durability
        self.shared = flag(url, "shared")
        self._path = database  # as given, for messages
        # Connections made later (a new thread's) open this file whatever the
        # working folder is by then.
        self._file = "" if self.memory else os.path.abspath(database)
        self._asked_read_only = read_only(url)
        self.read_only, self._uri = _read_only_open(url)
        self.identity = (
            f"sqlite-memory:{id(self)}" if self.memory else f"sqlite:{os.path.realpath(database)}"
        )
        self.q = _STATEMENTS
        self.notifier = (
            Notifier()
            if self.memory
            else shared_notifier(
                self.identity, lambda: FileWatchingNotifier(os.path.realpath(database))
            )
        )
        self.fence = Fence(self.url)
        if not self.memory:
            self.payloads = PayloadFiles(self._file, durability)
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
        elif not self.read_only:
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
            elif not self.read_only:  # a read-only store is never written, nor checkpointed
                self._checkpointer = Checkpointer(
                    self._checkpoint_connection, self.url, before=self._sync_payloads
                )
                self._writers = write_lock(self._file)
            self._open()
        except sqlite3.Error as exc:
            self.close()
            raise BackendUnavailableError(
                f"cannot open the SQLite database {self.url}: {explain(exc, database)}",
                url=self.url,
            ) from exc
        except BaseException:  # a newer schema, an interrupt: leave no connection open
            self.close()
            raise

    def _sync_payloads(self) -> None:
        if self.payloads is not None:
            self.payloads.sync()

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
            self._uri or self._file or ":memory:",
            timeout=_BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,  # autocommit: transactions are begun explicitly
            check_same_thread=False,
            uri=bool(self._uri),
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute(f"PRAGMA synchronous = {_SYNCHRONOUS[self.durability]}")
            if not self.memory and not self.read_only:
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
        if conn is None or local.pid != pid():
            conn = local.conn = self._connect()
            local.pid = pid()
        return conn

    def _open(self) -> None:
        """Check the version and the tables, switch to WAL, create or migrate the schema.

        A file that is refused (a newer schema, an application's tables) is
        refused before anything, even a pragma, changes it. A read-only store
        is only checked. A store at this version needs no SQLAlchemy.
        """
        if self._current_version():
            self.schema_before = SCHEMA_VERSION
            if not self.memory and not self.read_only:
                self._switch_to_wal()
            return
        if not self.read_only and self._made_new_store():
            self.schema_before = 0
            return
        try:
            self._open_with_schema()
        except Exception as exc:
            # SQLAlchemy's wrapper of a driver error: the driver's own, to explain.
            reason = getattr(exc, "orig", None)
            if isinstance(reason, sqlite3.Error):
                raise reason from exc
            raise

    def _current_version(self) -> bool:
        """Whether the store records this version's schema (read by the driver alone).

        False for anything else, even an error: the full check tells what it is.
        """
        sql, params = _COMPILED(self.q.schema_version, None)
        try:
            rows = self._connection().execute(sql, params).fetchall()
        except sqlite3.Error:
            return False
        return [tuple(row) for row in rows] == [(str(SCHEMA_VERSION),)]

    def _made_new_store(self) -> bool:
        """Make the schema in a database with no tables at all (a new file, memory).

        False, having changed nothing, if it holds any table: the full check
        (``_open_with_schema``) tells a store to migrate from an application's tables.
        """
        conn = self._connection()
        if _has_tables(conn):
            return False
        if not self.memory:
            self._switch_to_wal()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if _has_tables(conn):  # another process made the store meanwhile
                conn.execute("ROLLBACK")
                return False
            for statement in CREATION:
                conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return True

    def _open_with_schema(self) -> None:
        import sqlalchemy as sa
        from sqlalchemy.pool import StaticPool

        from durable.backends import _schema as s

        engine = sa.create_engine(
            "sqlite://", creator=self._connection, poolclass=StaticPool if self.memory else None
        )
        try:
            with engine.connect() as conn:
                found = s.check_version(conn, self.url)
                if not found and not self.read_only:
                    s.refuse_foreign_tables(conn, self.url, shared=self.shared)
                conn.rollback()
            if self.read_only:
                self._check_readable(found)
                self.schema_before = found
                return
            if not self.memory:
                self._switch_to_wal()
            with engine.connect() as conn:
                # The raw connection is in autocommit: the transaction is ours.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    self.schema_before = s.ensure_schema(conn, self.url)
                except BaseException:
                    conn.exec_driver_sql("ROLLBACK")
                    raise
                conn.exec_driver_sql("COMMIT")
        finally:
            engine.dispose(close=False)

    def _switch_to_wal(self) -> None:
        """Turn WAL on (persistent in the file: later connections find it on).

        Processes opening a new file together all switch it: SQLite answers
        the one that must wait "locked" at once, without its busy timeout
        (waiting could deadlock), so it tries again, for as long as that timeout.
        """
        deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                self._connection().execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if not busy(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    def _check_readable(self, found: int) -> None:
        """A read-only store must be a durable store this version reads as it is."""
        why = self._read_only_why()
        if not found:
            raise ConfigurationError(
                f"no durable store in {self._path}{path_hint(self._path)}; it is opened "
                f"read-only ({why}), so durable will not create one there",
                url=self.url,
            )
        if found < SCHEMA_VERSION:
            raise ConfigurationError(
                f"the store {self.url} has durable schema version {found}, older than this "
                f"durable-sdk's ({SCHEMA_VERSION}), and is opened read-only ({why}): "
                "it must be migrated first, by opening it once with write access",
                url=self.url,
            )

    @contextlib.contextmanager
    def _sync_tx(self, *, atomic: bool) -> Iterator[Tx]:
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

    async def run_async(self, op: Operation[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            if is_atomic(op):
                return await super().run_async(op, *args, **kwargs)
            # The common case (one statement, in autocommit) without a transaction's two
            # context managers (a tenth of a step); only atomic operations notify.
            self.fence.enter()
            try:
                tx = _RawTx(self._connection(), self._checkpointer, self._writers)
                if self._shared is None:  # a file: this thread's own connection
                    return await op(tx, *args, **kwargs)
                with self._lock:
                    return await op(tx, *args, **kwargs)
            finally:
                self.fence.leave()
        except sqlite3.DatabaseError as exc:
            # The store did not answer (as on PostgreSQL), or its file is
            # damaged: not a constraint of one write (IntegrityError), which a
            # group commit answers by committing each write alone.
            if isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError:
                raise self._failed(exc) from exc
            raise

    def run_sync(self, op: Operation[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return drive(self.run_in_place(op, *args, **kwargs))

    async def run_in_place(self, op: Operation[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            if is_atomic(op):
                return super().run_sync(op, *args, **kwargs)
            # run_async's common case: every start, step and finish of a sync workflow.
            self.fence.enter()
            try:
                tx = _RawTx(self._connection(), self._checkpointer, self._writers)
                if self._shared is None:  # a file: this thread's own connection
                    return await op(tx, *args, **kwargs)
                with self._lock:
                    return await op(tx, *args, **kwargs)
            finally:
                self.fence.leave()
        except sqlite3.DatabaseError as exc:
            raise self._failed(exc) from exc

    def _failed(self, exc: sqlite3.DatabaseError) -> BackendUnavailableError:
        why = self._read_only_why() if self.read_only else None
        if "immutable=1" in self._uri and damage(exc):
            # Read as immutable, the file may have been written meanwhile by
            # its owner: what looks damaged is most likely just newer.
            return BackendUnavailableError(
                f"the SQLite store {self.url} changed while this process read it as "
                f"immutable ({exc}): this process may not write its folder, so SQLite "
                "cannot coordinate with a process writing it. Open it again for a fresh "
                "look, or read a copy of the file (with its -wal); run `durable health` "
                "as the folder's owner to check the file itself",
                url=self.url,
            )
        return BackendUnavailableError(
            f"the SQLite store {self.url} failed: {explain(exc, self._path, why)}", url=self.url
        )

    def _read_only_why(self) -> str:
        if self._asked_read_only:
            return "its URL says mode=ro"
        return "this process may not write its file or folder"

    def health(self) -> dict[str, object]:
        started = time.perf_counter()
        self.run_sync(self.now)  # a locked file raises BackendUnavailableError here
        latency = time.perf_counter() - started
        # A damaged page answers nothing until something reads it: read them
        # all (every table and index; it takes as long as reading the file).
        with self._lock:
            try:
                found = [row[0] for row in self._connection().execute("PRAGMA quick_check")]
            except sqlite3.DatabaseError as exc:
                raise self._failed(exc) from exc
        if found != ["ok"]:
            shown = "; ".join(found[:3]) + ("..." if len(found) > 3 else "")
            raise BackendUnavailableError(
                f"the SQLite store {self.url} failed its integrity check ({shown}): "
                f"{damaged(self._path)}",
                url=self.url,
            )
        self._check_payload_files()
        return {
            "backend": "sqlite",
            "server_version": sqlite3.sqlite_version,
            "latency_ms": latency * 1000,
        }

    def _check_payload_files(self) -> None:
        """Every payload file a record refers to is there, at its size."""
        if self.payloads is None:
            return
        sql, params = _COMPILED(self.q.payload_files, None)
        with self._lock:
            stored = [bytes(r[0]) for r in self._connection().execute(sql, params)]
        wrong = self.payloads.check(stored)
        if wrong:
            shown = "; ".join(wrong[:3]) + (
                f"; and {len(wrong) - 3} more" if len(wrong) > 3 else ""
            )
            raise BackendUnavailableError(
                f"the SQLite store {self.url} refers to payload files that are missing or "
                f"cut short ({shown}): restore the folder {self.payloads.folder} from a copy "
                "taken with the database, or restore the workflows that hold them to an "
                "earlier snapshot",
                url=self.url,
            )

    def _release(self) -> None:
        self.notifier.quiesce()  # its connection too must be closed before the last of ours
        if self._checkpointer is not None:
            self._checkpointer.close()  # first: its connection is among those closed below
        if self._writers is not None:
            self._writers.close()
        if self.payloads is not None:
            self.payloads.close()
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with contextlib.suppress(sqlite3.Error):
                conn.close()


def _has_tables(conn: sqlite3.Connection) -> bool:
    return bool(conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])


def _read_only_open(url: StoreUrl) -> tuple[bool, str]:
    """Whether to open a SQLite file read-only, and then the URI to open it with.

    Read-only when the URL says ``mode=ro``, or when this process may not
    write the file or its folder (a read-only file system, a copy owned by
    someone else): such a store can still be listed and shown. In a folder
    where SQLite cannot create the ``-wal`` and ``-shm`` files it needs to
    read a WAL database, and where none exists, the file is opened
    ``immutable``: a snapshot of the file as it is, which is right for a
    read-only file system or a copy; if its owner writes it meanwhile, what
    is read may be stale, and an error then says so (never "damaged").
    """
    database = url.database or ""
    if is_memory(url):
        return False, ""
    folder = os.path.dirname(os.path.abspath(database))
    exists = os.path.exists(database)
    writable = not exists or os.access(database, os.W_OK)
    if os.path.isdir(folder):
        writable = writable and os.access(folder, os.W_OK)
    if not read_only(url) and (writable or not exists):
        return False, ""
    if not exists:
        raise ConfigurationError(
            f"no durable store at {database}{path_hint(database)}: mode=ro opens an "
            "existing store only",
            url=shown_url(url),
        )
    uri = f"file:{urllib.parse.quote(os.path.abspath(database))}?mode=ro"
    if not os.access(folder, os.W_OK) and not os.path.exists(f"{database}-wal"):
        uri += "&immutable=1"
    return True, uri
