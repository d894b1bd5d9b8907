"""Time as the runtime sees it: one object to swap for a virtual clock in tests."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from durable._aio import LONGEST_BLOCK


class Clock(Protocol):
    """Where a runtime's time comes from: the system's, or a virtual one in tests."""

    def time(self) -> float:
        """Seconds since the epoch."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds``."""
        ...


class SystemClock:
    """The real clock: wall time, and sleeps that really wait."""

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
        await asyncio.sleep(max(seconds, 0))
