"""What must start afresh in a forked child.

A child gets none of its parent's threads, and shares its parent's open file
descriptions (and so their ``flock`` locks).
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Protocol


class Forkable(Protocol):
    def after_fork(self) -> None:
        """Called in a child forked from this process, before anything else runs there."""


class Quietable(Protocol):
    def quiet(self, timeout: float) -> threading.Lock | None:
        """Hold its thread out of what a fork must not copy half-done; the lock to release."""


_LIVE: weakref.WeakSet[Forkable] = weakref.WeakSet()
_QUIET: weakref.WeakSet[Quietable] = weakref.WeakSet()
_QUIETED: list[threading.Lock] = []


def renew_in_children(obj: Forkable) -> None:
    """Call ``obj.after_fork()`` in every child forked while ``obj`` lives."""
    _LIVE.add(obj)


_pid = os.getpid()


def pid() -> int:
    """This process's id, as ``os.getpid()``, without a system call on each write."""
    return _pid


def quiet_before_forks(obj: Quietable) -> None:
    """Call ``obj.quiet()`` before every fork while ``obj`` lives, and release after.

    For a thread inside SQLite: its own mutexes, copied into the child while
    held, would stay held there for good (the child's next connect waits).
    """
    _QUIET.add(obj)


def _before() -> None:
    for obj in list(_QUIET):
        lock = obj.quiet(timeout=5.0)  # a stuck thread delays a fork, no more
        if lock is not None:
            _QUIETED.append(lock)


def _in_parent() -> None:
    while _QUIETED:
        _QUIETED.pop().release()


def _in_child() -> None:
    global _pid
    _pid = os.getpid()
    _QUIETED.clear()  # the objects start afresh below, their locks too
    for obj in list(_LIVE):
        obj.after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(before=_before, after_in_parent=_in_parent, after_in_child=_in_child)
