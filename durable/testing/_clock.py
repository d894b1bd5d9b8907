"""A virtual clock: durable time that tests move by hand, or that jumps ahead."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

from durable._durations import duration, moment


class VirtualClock:
    """Time for a :class:`durable.Runtime` that only moves when told, or when slept on.

    With ``auto_advance=True`` (the default) a sleep returns at once and moves
    the clock forward by its length: retry backoffs and waits cost nothing,
    and :meth:`time` shows how long they would have taken. With
    ``auto_advance=False`` a sleep waits until :meth:`advance` moves the clock
    past its end, so a test decides exactly when each timer fires.

    Example::

        clock = durable.testing.VirtualClock()
        with durable.Runtime("sqlite:///:memory:", clock=clock):
            flaky_pipeline.run_sync()       # 3 retries with 10 s backoffs...
        assert clock.elapsed == 30.0        # ...took no real time
    """

    def __init__(self, start: float = 1_767_225_600.0, *, auto_advance: bool = True) -> None:
        self._start = self._now = moment(start, "start")
        self.auto_advance = auto_advance
        self.real_time = False  # waited on by sleeping on it, not in real slices
        self._changed = threading.Condition()
        self._waiters: list[tuple[float, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @property
    def elapsed(self) -> float:
        """Virtual seconds since the clock was created."""
        return self._now - self._start

    def time(self) -> float:
        """The virtual time, in seconds since the epoch."""
        return self._now

    def advance(self, seconds: float | dt.timedelta) -> None:
        """Move the clock forward, waking every sleeper whose time has come.

        Raises:
            ConfigurationError: ``seconds`` is not a duration from 0 to 100
                years (a clock only moves forward).
        """
        seconds = duration(seconds, "seconds")
        with self._changed:
            self._now += seconds
            self._changed.notify_all()
            due = [w for w in self._waiters if w[0] <= self._now]
            self._waiters = [w for w in self._waiters if w[0] > self._now]
        for _, loop, future in due:
            loop.call_soon_threadsafe(_resolve, future)

    def sleep(self, seconds: float) -> None:
        """Sleep in virtual time (blocking the thread in manual mode)."""
        if seconds <= 0:
            return
        if self.auto_advance:
            self.advance(seconds)
            return
        with self._changed:
            deadline = self._now + seconds
            self._changed.wait_for(lambda: self._now >= deadline)

    async def asleep(self, seconds: float) -> None:
        """Sleep in virtual time (suspending the task in manual mode)."""
        if seconds <= 0 or self.auto_advance:
            if seconds > 0:
                self.advance(seconds)
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._changed:
            self._waiters.append((self._now + seconds, loop, future))
        await future

    def __repr__(self) -> str:
        mode = "auto" if self.auto_advance else "manual"
        return f"<VirtualClock +{self.elapsed:g}s {mode}>"


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
