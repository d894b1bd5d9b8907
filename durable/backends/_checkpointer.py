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

A passive checkpoint racing a writer rarely finds the log fully copied, and
SQLite starts the log over only then: once it has grown past
``RESTART_PAGES``, the thread runs a ``RESTART`` checkpoint, which makes the
writers wait while it copies the last pages and starts the log over. The
writers' own autocheckpoint stays on, at ``BACKSTOP_PAGES``, for a process
that forked from the one that owns the thread, and for a thread that fell
behind.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable

log = logging.getLogger("durable.sqlite")

TRIGGER_BYTES = 4 * 1024 * 1024
"""Bytes written (payloads, plus a page per statement) between two checkpoints."""
RESTART_PAGES = 16_384
"""Log size, in pages, past which a checkpoint also starts the log over."""
BACKSTOP_PAGES = 32_768
"""The writers' ``wal_autocheckpoint``: used only when this thread cannot keep up."""
_PAGE = 4096
_BUSY_MS = 1000


class Checkpointer:
    """Checkpoints one database file's log on a background thread, on demand."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], name: str) -> None:
        self._connect = connect
        self._name = name
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.pending = 0

    def wrote(self, values: tuple[object, ...] | object) -> None:
        """Count a statement's parameters towards the next checkpoint."""
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
        if self._closed or os.getpid() != self._pid:  # a forked child: the backstop
            return
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._closed:
                    self._thread = threading.Thread(
                        target=self._run, name=f"durable-checkpoint {self._name}", daemon=True
                    )
                    self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        try:
            conn = self._connect()
            # A RESTART waits for writers; closing the store waits for this thread.
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
        except sqlite3.Error as exc:
            log.warning("no background checkpoints for %s: %s", self._name, exc)
            return
        try:
            while True:
                self._wake.wait()
                if self._closed:
                    return
                self._wake.clear()
                try:
                    _, pages, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if pages >= RESTART_PAGES:
                        conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
                except sqlite3.Error as exc:  # the writers' backstop takes over meanwhile
                    log.debug("background checkpoint of %s failed: %s", self._name, exc)
        finally:
            conn.close()

    def close(self) -> None:
        """Stop the thread, after the checkpoint it may be running."""
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
