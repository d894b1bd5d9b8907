"""Wake-ups between processes sharing one SQLite file.

SQLite has no LISTEN/NOTIFY. While anything in this process waits for a
notification (a running workflow for its cancel, a waiter for an event, a
worker for its queue), one thread per file reads ``PRAGMA data_version``
every :data:`WATCH_INTERVAL` seconds on a read-only connection of its own.
The value changes whenever any other connection committed, so when it moves
every local subscriber is woken and looks at the store once. That costs a
read of a shared-memory counter per interval, nothing per step, and bounds
how late a cancel from another process is seen.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import urllib.parse

from durable.backends._notify import Notifier

log = logging.getLogger("durable")

WATCH_INTERVAL = 0.05
"""Seconds between two looks at the file's data version."""

IDLE_LOOKS = 10
"""Looks in a row with nothing waiting after which the thread ends (0.5 s)."""


class FileWatchingNotifier(Notifier):
    """A notifier that also wakes its subscribers when another connection commits."""

    def __init__(self, path: str, interval: float = WATCH_INTERVAL) -> None:
        super().__init__()
        self._uri = f"file:{urllib.parse.quote(path)}?mode=ro"
        self._interval = interval
        self._fresh_thread()

    def after_fork(self) -> None:
        """In a forked child: no thread came along, and a lock may have been held."""
        super().after_fork()
        self._fresh_thread()

    def _fresh_thread(self) -> None:
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._thread_lock = threading.Lock()

    def _listening(self) -> None:
        with self._thread_lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop = threading.Event()  # each thread its own: quiesce stops only it
                self._thread = threading.Thread(
                    target=self._watch, args=(self._stop,), name="durable-sqlite-watch", daemon=True
                )
                self._thread.start()

    def quiesce(self) -> None:
        """Stop watching now if nothing waits (a store of this file is closing).

        The watcher's connection must be gone before the last connection of
        the store closes: only the last one checkpoints the log into the file
        and removes the ``-wal``.
        """
        with self._thread_lock:
            if self.has_subscribers() or self._thread is None:
                return
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not threading.current_thread():
            thread.join(1.0)

    def _still_needed(self, idle: list[int]) -> bool:
        # Decided under the lock _listening takes, so a subscriber that
        # arrives as the thread leaves always finds a thread to wake it. It
        # leaves after IDLE_LOOKS looks in a row with nothing waiting, not at
        # the first: workflows called one after another keep one thread.
        with self._thread_lock:
            if self.has_subscribers():
                idle[0] = 0
                return True
            idle[0] += 1
            if idle[0] < IDLE_LOOKS:
                return True
            if self._thread is threading.current_thread():
                self._thread = None
            return False

    def _watch(self, stop: threading.Event) -> None:
        conn: sqlite3.Connection | None = None
        seen: int | None = None
        idle = [0]
        try:
            while not stop.is_set() and self._still_needed(idle):
                try:
                    if conn is None:
                        conn = sqlite3.connect(self._uri, uri=True, check_same_thread=False)
                    version = int(conn.execute("PRAGMA data_version").fetchone()[0])
                except sqlite3.Error:
                    # The file is being created, moved or is locked: waiters poll meanwhile.
                    if conn is not None:
                        conn.close()
                    conn, version = None, None
                if version is not None and seen is not None and version != seen:
                    log.debug("durable: another connection wrote %s; waking its waiters", self._uri)
                    self.notify_all()
                seen = version if version is not None else seen
                stop.wait(self._interval)
        finally:
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
