"""SQLite checkpoints on a thread of their own, so that commits don't wait for them.

In WAL mode a commit appends its pages to the ``-wal`` file, and a checkpoint
copies them back into the database file, syncing both. SQLite runs that
checkpoint inside the commit that takes the log past ``wal_autocheckpoint``
pages, so one commit in every few pays for copying all the others: for large
payloads, half of the time of a step (benchmarks/RESULTS.md). Here a thread
with a connection of its own runs a ``PASSIVE`` checkpoint, which blocks
neither readers nor writers, each time about ``TRIGGER_BYTES`` were written;
sqlite3 releases the GIL while it copies, so the copy overlaps the writers'
work on another core.

A passive checkpoint racing a writer rarely leaves the log fully copied when
the next write begins, and SQLite starts the log over only then: once it has
grown past ``RESTART_PAGES``, the thread follows its passive checkpoint with
a ``RESTART`` one, which makes the writers wait while it copies the few pages
written meanwhile and starts the log over (it waits 50 ms at most for a
reader of an old snapshot, and otherwise tries again once as much again was
written). The writers' own autocheckpoint stays on, at ``BACKSTOP_PAGES``,
for a process that forked from the one that owns the thread, and for a
thread that fell behind.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

from durable.backends._forks import quiet_before_forks, renew_in_children

log = logging.getLogger("durable.sqlite")

TRIGGER_BYTES = 4 * 1024 * 1024
"""Bytes written (payloads, plus a page per statement) between two checkpoints."""
RESTART_PAGES = 16_384
"""Log size, in pages, past which a checkpoint also starts the log over."""
BACKSTOP_PAGES = 32_768
"""The writers' ``wal_autocheckpoint``: used only when this thread cannot keep up."""
JOURNAL_SIZE_LIMIT = 16 * 1024 * 1024
"""What the ``-wal`` file is cut back to when the log starts over."""
_PAGE = 4096
_BUSY_MS = 50


class Checkpointer:
    """Checkpoints one database file's log on a background thread, on demand.

    Nothing here may fail a write: a checkpoint that cannot run, or a thread
    that cannot start, leaves the work to the writers' backstop.
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        name: str,
        before: Callable[[], object] | None = None,
    ) -> None:
        self._connect = connect
        self._name = name
        self._before = before  # what must be on disk before the commits it makes safe
        self._closed = False
        self.after_fork()
        renew_in_children(self)
        quiet_before_forks(self)

    def after_fork(self) -> None:
        """Start afresh: at first, and in a forked child.

        The parent's thread did not come along, and its lock may have been
        held at the fork.
        """
        self._lock = threading.Lock()
        self._working = threading.Lock()  # held while the thread is inside SQLite
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._restart_at = RESTART_PAGES
        self.pending = 0

    def wrote(self, values: tuple[object, ...] | object) -> None:
        """Count a write's parameters towards the next checkpoint."""
        written = _PAGE
        if isinstance(values, tuple):
            for value in values:
                if type(value) is bytes:
                    written += len(value)
        self.pending += written  # a lost update between threads only shifts a checkpoint
        if self.pending >= TRIGGER_BYTES:
            self.pending = 0
            self._request()

    def _request(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._closed:
                    thread = threading.Thread(
                        target=self._run, name=f"durable-checkpoint {self._name}", daemon=True
                    )
                    try:
                        thread.start()
                    except RuntimeError as exc:  # interpreter shutdown, thread limit
                        log.debug("no background checkpoints for %s: %s", self._name, exc)
                        return
                    self._thread = thread
        self._wake.set()

    def _run(self) -> None:
        try:
            with self._working:
                conn = self._connect()
                # A RESTART makes writers wait: never for long.
                conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
        except sqlite3.Error as exc:
            log.warning("no background checkpoints for %s: %s", self._name, exc)
            return
        try:
            while True:
                self._wake.wait()
                self._wake.clear()  # before looking at _closed: a close() now is not missed
                if self._closed:
                    return
                try:
                    with self._working:
                        self._checkpoint(conn)
                except sqlite3.Error as exc:  # the writers' backstop takes over meanwhile
                    log.debug("background checkpoint of %s failed: %s", self._name, exc)
        finally:
            with self._working:
                conn.close()

    def quiet(self, timeout: float) -> threading.Lock | None:
        """Wait until the thread is outside SQLite and keep it so; the lock to release after.

        For a fork: SQLite's own mutexes, copied into the child while this
        thread held one, would stay held there for good (its next connect
        waits forever). None if the thread did not come out in ``timeout``.
        """
        working = self._working
        return working if working.acquire(timeout=timeout) else None

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        if self._before is not None:
            try:
                self._before()
            except OSError as exc:  # left to the OS; the checkpoint still runs
                log.warning("before the checkpoint of %s: %s", self._name, exc)
        _, pages, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if pages < RESTART_PAGES:  # the log started over, by this thread or another
            self._restart_at = RESTART_PAGES
        if pages < self._restart_at:
            return
        # Copies what the passive one could not, then starts the log over. If
        # a reader of an old snapshot holds on (a backup, a long query), it
        # gives up after 50 ms, and tries again only once as much again was
        # written, not at every trigger: writers wait while it tries.
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        self._restart_at = RESTART_PAGES if not busy else pages + RESTART_PAGES

    def close(self) -> None:
        """Stop the thread, after the checkpoint it may be running."""
        with self._lock:  # so that no thread starts after this
            self._closed = True
            thread = self._thread
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()
