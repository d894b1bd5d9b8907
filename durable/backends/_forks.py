"""What must start afresh in a forked child.

A child gets none of its parent's threads, and shares its parent's open file
descriptions (and so their ``flock`` locks).
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol


class Forkable(Protocol):
    def after_fork(self) -> None:
        """Called in a child forked from this process, before anything else runs there."""


_LIVE: weakref.WeakSet[Forkable] = weakref.WeakSet()


def renew_in_children(obj: Forkable) -> None:
    """Call ``obj.after_fork()`` in every child forked while ``obj`` lives."""
    _LIVE.add(obj)


_pid = os.getpid()


def pid() -> int:
    """This process's id, as ``os.getpid()``, without a system call on each write."""
    return _pid


def _in_child() -> None:
    global _pid
    _pid = os.getpid()
    for obj in list(_LIVE):
        obj.after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_in_child)
