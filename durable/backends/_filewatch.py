"""Wake-ups between processes sharing one SQLite file.

SQLite has no LISTEN/NOTIFY. While anything in this process waits for a
notification (a running workflow for its cancel, a waiter for an event, a
worker for its queue), one thread per file reads ``PRAGMA data_version``
every :data:`WATCH_INTERVAL` seconds on a read-only connection of its own.
The value changes whenever any other connection committed, so when it moves
every local subscriber is hinted (woken to look at the store once: the
commit may concern it). That costs a read of a shared-memory counter per
interval, nothing per step, and bounds how late a cancel from another
process is seen.

A hint says nothing of what was committed, and a store busy with steps
commits all the time: a worker's look for due work reads every active
workflow, too much to make per commit. So while a worker here subscribes to
:data:`~durable.backends._notify.DUE_TOPIC`, the watcher also reads, after
each commit, the events sent since its last read (by id, the table's key:
SQLite commits one writer at a time, so ids never commit out of order) and
notifies the topic when one is for a suspended workflow that waits for it.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import urllib.parse

from durable.backends._notify import DUE_TOPIC, Notifier

log = logging.getLogger("durable")

WATCH_INTERVAL = 0.05
"""Seconds between two looks at the file's data version."""

IDLE_LOOKS = 10
"""Looks in a row with nothing waiting after which the thread ends (0.5 s)."""

# One statement, so one snapshot: the newest event id read, and whether any
# event after ``?`` is still pending for a suspended workflow waiting for it.
_SUSPENDED_EVENTS = """
SELECT max(e.id), max(e.consumed_at IS NULL AND w.workflow_id IS NOT NULL)
FROM durable_events AS e
LEFT JOIN durable_workflows AS w ON w.workflow_id = e.workflow_id
    AND w.status = 'waiting' AND w.owner_host IS NULL AND w.waiting_for = e."key"
WHERE e.id > ?
"""


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
        events = _EventsSeen()
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
                    self.notify_all(hint=True)
                if not self.has_subscribers(DUE_TOPIC):
                    events.forget()  # from where they end when the next worker subscribes
                elif (
                    conn is not None
                    and (version != seen or not events.started)
                    and events.woke_suspended(conn)
                ):
                    self.notify(DUE_TOPIC)
                seen = version if version is not None else seen
                stop.wait(self._interval)
        finally:
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()


class _EventsSeen:
    """The newest event the watcher has read, to read only those sent since."""

    def __init__(self) -> None:
        self._last: int | None = None

    @property
    def started(self) -> bool:
        return self._last is not None

    def forget(self) -> None:
        self._last = None

    def woke_suspended(self, conn: sqlite3.Connection) -> bool:
        """Whether an event sent since the last call is for a suspended workflow waiting for it.

        The first call only learns where the events end: what was sent before
        a worker subscribed is what its first look, made after, finds.
        """
        first = self._last is None
        try:
            newest, woke = conn.execute(_SUSPENDED_EVENTS, (self._last or 0,)).fetchone()
        except sqlite3.Error:  # no such table yet, or locked: the worker's own looks find it
            return False
        if newest is not None:
            self._last = int(newest)
        elif first:
            self._last = 0
        return bool(woke) and not first
