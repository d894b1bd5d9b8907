"""Retry policy of a step: how often, how long to wait, on which errors."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from durable._durations import duration
from durable._errors import ConfigurationError

JITTER = 0.25
"""The most a retry's wait is shortened at random (a quarter of it), on a real clock."""


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """When and how a failing step is tried again.

    The wait before retry ``n`` (1-based) is
    ``min(backoff * backoff_multiplier ** (n - 1), max_backoff)`` seconds,
    less up to a quarter of it at random on a real clock (jitter: workers
    that failed together retry spread out); a virtual clock waits it exactly.
    Every failed attempt is recorded before the wait, so the history shows it.

    Example::

        @durable.step(retries=3, backoff=2.0, retry_on=(TimeoutError,))
        async def fetch(url: str) -> bytes: ...   # waits 2 s, 4 s, 8 s
    """

    retries: int = 0
    """How many times to try again after the first failure."""
    backoff: float | dt.timedelta = 1.0
    """Seconds (or a timedelta) to wait before the first retry; stored as seconds."""
    backoff_multiplier: float = 2.0
    """Factor by which the wait grows with each retry."""
    max_backoff: float | dt.timedelta = 300.0
    """Upper bound of a single wait, in seconds (or a timedelta); stored as seconds."""
    retry_on: tuple[type[Exception], ...] = (Exception,)
    """Exception types that are retried; any other error fails the step at once."""

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ConfigurationError(
                f"retries must be a whole number >= 0, not {self.retries!r}", field="retries"
            )
        for field in ("backoff", "max_backoff"):
            object.__setattr__(self, field, duration(getattr(self, field), field))
        factor = self.backoff_multiplier
        if (
            isinstance(factor, bool)
            or not isinstance(factor, (int, float))
            or not 0 <= factor < math.inf
        ):
            raise ConfigurationError(
                f"backoff_multiplier must be a finite number >= 0, not {factor!r}",
                field="backoff_multiplier",
                parameter="backoff_multiplier",
                value=factor if isinstance(factor, (int, float)) else repr(factor),
            )
        retry_on = self.retry_on
        if isinstance(retry_on, type):
            retry_on = (retry_on,)
            object.__setattr__(self, "retry_on", retry_on)
        if not isinstance(retry_on, tuple) or not all(
            isinstance(t, type) and issubclass(t, Exception) for t in retry_on
        ):
            raise ConfigurationError(
                f"retry_on must be an Exception subclass or a tuple of them, not {retry_on!r} "
                "(BaseExceptions such as KeyboardInterrupt are never retried)",
                field="retry_on",
            )

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        # Both are seconds (floats) once __post_init__ ran.
        backoff, cap = cast(float, self.backoff), cast(float, self.max_backoff)
        if backoff == 0:
            return 0.0
        try:
            wait = backoff * float(self.backoff_multiplier) ** (retry - 1)
        except OverflowError:  # grown past any float: the cap applies
            return cap
        return min(wait, cap)

    def jittered(self, retry: int, draw: Callable[[], float] = random.random) -> float:
        """:meth:`delay`, less up to :data:`JITTER` of it at random.

        Workers that failed together (a database outage) then retry spread
        out rather than in lockstep. The engine uses it on a real clock; a
        test's virtual clock waits :meth:`delay` exactly.
        """
        return self.delay(retry) * (1.0 - JITTER * draw())

    def should_retry(self, error: Exception, retries_done: int) -> bool:
        """Whether to try again after ``error`` when ``retries_done`` retries ran."""
        return retries_done < self.retries and isinstance(error, self.retry_on)
