"""Writers of one SQLite file take turns on a lock file, not on SQLite's busy handler.

SQLite lets one writer at a time into a database file. A writer that finds
the write lock taken calls its busy handler, which sleeps 1, 2, 5, 10... ms
between tries: an age next to a commit of a few microseconds, so processes
sharing a file spend most of their time asleep (4 processes under
``asyncio.gather`` ran at 1.1x one process). Here each write first takes an
OS lock (``flock``) on a file beside the database (``<database>-lock``),
trying again after 20 µs, then twice as long each time up to 0.5 ms; SQLite's
own lock then is free when a writer gets there (1.8x, benchmarks/RESULTS.md).

It only orders writers; SQLite's locking still keeps the file consistent, so
a writer that waited ``PATIENCE`` seconds in vain (a writer stopped while
holding it, a long cleanup) goes on to SQLite's busy handler as before, and
so do the process's writes for the next ``SKIP_AFTER_PATIENCE`` seconds, and
programs that do not know the lock file. Not on ``:memory:``, and not where
``fcntl`` is missing (Windows).

A ``flock`` lock belongs to an open file description, which a forked child
shares: a child that lived on would keep its parent's lock held after the
parent died. So a child closes the descriptors it inherited, at once.

The lock file is never deleted: a process holding it open would then lock a
file nobody else can find.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

from durable.backends._forks import pid, renew_in_children

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

PATIENCE = 1.0
"""Seconds a writer waits for its turn before it leaves the waiting to SQLite."""
SKIP_AFTER_PATIENCE = 5.0
"""Seconds the writers of a process then leave the waiting to SQLite, without trying."""
_FIRST_WAIT = 2e-5
_LONGEST_WAIT = 5e-4


class WriteLock:
    """The lock file of one database, with a descriptor per thread and process.

    ``flock`` locks belong to an open file description: one descriptor shared
    by two threads, or by a process and its forked child, would let both in
    at once, so each thread of each process opens its own.
    """

    def __init__(self, database: str) -> None:
        self.path = f"{database}-lock"
        self._local = threading.local()
        self._fds: list[int] = []
        self._fds_lock = threading.Lock()
        self._closed = False
        self._skip_until = 0.0
        renew_in_children(self)

    def acquire(self) -> int:
        """Wait for this writer's turn; the descriptor to :meth:`release`.

        -1 when it goes on without the lock: ``PATIENCE`` ran out, or there
        is no lock file to be had here.
        """
        local = self._local
        fd: int = getattr(local, "fd", -1)
        if self._closed:
            return -1
        if fd < 0 or local.pid != pid():
            fd = self._open()
            if fd < 0:
                return -1
        wait = _FIRST_WAIT
        deadline = 0.0
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                now = time.monotonic()
                if not deadline:
                    if now < self._skip_until:
                        return -1
                    deadline = now + PATIENCE
                elif now >= deadline:
                    self._skip_until = now + SKIP_AFTER_PATIENCE
                    return -1
                time.sleep(wait)
                wait = min(wait * 2, _LONGEST_WAIT)
            except OSError:  # no locks on this file system: SQLite alone decides
                return -1

    @staticmethod
    def release(fd: int) -> None:
        if fd >= 0:
            # Not contextlib.suppress: every write comes here, twice a step.
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            except OSError:  # closed meanwhile by close(): the lock went with it
                return

    def _open(self) -> int:
        with self._fds_lock:
            if self._closed:
                return -1
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError:  # a read-only folder: SQLite alone decides, from now on
                self._closed = True
                return -1
            self._fds.append(fd)
        self._local.fd, self._local.pid = fd, pid()
        return fd

    def close(self) -> None:
        """Close the descriptors this process opened; the file stays (see above)."""
        with self._fds_lock:
            self._closed = True
            fds, self._fds = self._fds, []
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    def after_fork(self) -> None:
        """In a forked child: leave the parent's descriptors to the parent.

        One of them may hold the lock, and ``_fds_lock`` may have been held
        at the fork.
        """
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds, self._fds_lock = [], threading.Lock()
        self._local = threading.local()
        self._skip_until = 0.0


def write_lock(database: str) -> WriteLock | None:
    """The lock file of a database file, where this platform has ``flock``."""
    return WriteLock(database) if fcntl is not None else None
