"""Closing a backend that other threads are using.

Releasing a connection while another thread is inside a call on it crashes
the process (sqlite3 and libpq free memory that call still reads). So every
operation passes through a :class:`Fence`: once closing, new operations are
refused with :class:`RuntimeClosedError`, and the connections are released
when the operations already running have left, which ``close`` waits for a
bounded time; if they have not left by then, the last one to leave releases
them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from durable._errors import RuntimeClosedError
from durable.backends._forks import renew_in_children

CLOSE_WAIT_SECONDS = 5.0
"""How long ``close()`` waits for operations of other threads to finish."""


class Fence:
    """Counts the operations in progress per thread; releases resources after the last."""

    def __init__(self, name: str) -> None:
        self._name = name
        self.after_fork()
        renew_in_children(self)

    def after_fork(self) -> None:
        """Start afresh: the parent's threads (and their operations) did not come along."""
        self._cond = threading.Condition(threading.Lock())
        self._active: dict[int, int] = {}
        self._closed = False
        self._release: Callable[[], None] | None = None

    @property
    def closed(self) -> bool:
        """Whether closing has begun."""
        return self._closed

    def enter(self) -> None:
        """Begin an operation, or raise RuntimeClosedError once closing began."""
        # No lock on this per-operation path: each thread writes only its own
        # key (dict updates are atomic), and the count is raised before the
        # flag is read, so close() either sees this operation or this one
        # sees the flag.
        ident = threading.get_ident()
        active = self._active
        active[ident] = active.get(ident, 0) + 1
        if self._closed:
            self.leave()
            raise RuntimeClosedError(
                f"the runtime of {self._name} is closed (another thread closed it, or "
                "left `with runtime:`); open a new Runtime to go on",
                url=self._name,
            )

    def leave(self) -> None:
        """End an operation; the last one out after a close releases the resources."""
        ident = threading.get_ident()
        active = self._active
        left = active[ident] - 1
        if left:
            active[ident] = left
        else:
            del active[ident]
        if not self._closed:
            return
        with self._cond:
            release = self._release if not self._active else None
            self._release = None if release is not None else self._release
            self._cond.notify_all()
        if release is not None:
            release()

    def close(self, release: Callable[[], None], timeout: float = CLOSE_WAIT_SECONDS) -> bool:
        """Refuse new operations, then run ``release`` once the running ones are done.

        Operations of the calling thread are not waited for: they are
        suspended coroutines, in no call on a connection while it is here.
        Returns False if others were still running after ``timeout`` seconds:
        the last of them releases.
        """
        me = threading.get_ident()
        with self._cond:
            if self._closed:
                return True
            self._closed = True
            drained = self._cond.wait_for(lambda: not (self._active.keys() - {me}), timeout=timeout)
            if not drained:
                self._release = release
                return False
        release()
        return True
