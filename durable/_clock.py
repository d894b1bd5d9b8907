"""Time as the runtime sees it: one object to swap for a virtual clock in tests."""

from __future__ import annotations

import time
from typing import Protocol

from durable._aio import LONGEST_BLOCK


class Clock(Protocol):
    """Where a runtime's time comes from: the system's, or a virtual one in tests.

    Two optional attributes say how to wait on it: ``real_time`` (true: its
    time passes by itself, see :func:`real_time`) and ``auto_advance`` (true:
    it jumps to a deadline nothing else comes before, see :func:`jumps_ahead`).
    """

    def time(self) -> float:
        """Seconds since the epoch."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds``."""
        ...


def real_time(clock: Clock) -> bool:
    """Whether ``clock``'s time passes by itself, as the wall clock's does.

    A clock says so with a true ``real_time`` attribute; one that does not (a
    test's clock) is waited on by sleeping on it, where a real one is waited
    on in slices, listening for notifications meanwhile.
    """
    return bool(getattr(clock, "real_time", False))


def jumps_ahead(clock: Clock) -> bool:
    """Whether ``clock`` moves itself to a deadline nothing else will come before.

    Then a timed wait that a real poll interval did not end jumps to its
    deadline (``durable.testing.VirtualClock(auto_advance=True)``).
    """
    return bool(getattr(clock, "auto_advance", False))


class SystemClock:
    """The real clock: wall time, and sleeps that really wait."""

    real_time = True

    def time(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        # In slices: one thread wait of a very long backoff would overflow
        # the platform's timer (about 49 days on Windows).
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(left, LONGEST_BLOCK))

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds``."""
        import asyncio

        await asyncio.sleep(max(seconds, 0))
