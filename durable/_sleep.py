"""``durable.sleep`` and ``durable.sleep_until``: timers that survive a restart."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from durable._aio import here
from durable._caller import called
from durable._durations import as_seconds, deadline_after, timer_deadline
from durable._durations import duration as checked_duration
from durable._durations import moment as to_unix
from durable._engine import _context
from durable._errors import NotInWorkflowError


def sleep(duration: float | dt.timedelta, *, suspend: bool = False) -> Awaitable[None]:
    """Wait durably: a resumed workflow sleeps only what is left of the wait.

    The wake-up time is recorded as a step when the sleep starts; after a
    crash or a restart, the resumed run waits until that time and no longer
    (not at all if it has passed). In an async workflow ``await`` it; in a
    sync one just call it. Outside a workflow it is an ordinary sleep. A
    :class:`durable.testing.VirtualClock` makes it instant in tests.

    A sleep of a second or more shows the workflow as ``waiting`` (with its
    wake-up time) while it lasts. With ``suspend=True`` the workflow does not
    wait in this process: the call that ran it raises
    :class:`durable.WorkflowSuspendedError`, the process may exit, and
    :func:`durable.recover` or a worker resumes it once the time has come.

    Raises:
        ConfigurationError: ``duration`` is not seconds or a timedelta from 0
            to 100 years (nan, inf, negative, ``bool``), raised before the
            timer is recorded.

    Example::

        await charge(order)
        await durable.sleep(dt.timedelta(days=3))   # survives restarts
        await send_reminder(order)
    """
    given = duration
    seconds = as_seconds(given, "duration")
    # Checked when the deadline is computed, that is before it is recorded:
    # a replay goes by the recorded deadline, even one an older version took.
    return _sleep(
        lambda now: deadline_after(
            now, checked_duration(given, "duration"), "duration", given=given
        ),
        f"sleep({seconds:g} s)",
        suspend,
    )


def sleep_until(moment: dt.datetime | float, *, suspend: bool = False) -> Awaitable[None]:
    """Wait durably until a moment (an aware datetime, or a Unix timestamp).

    ``suspend`` as for :func:`sleep`. A moment in the past returns at once.

    Raises:
        ConfigurationError: ``moment`` is a naive datetime, not finite, or
            more than 100 years ahead (before the timer is recorded).

    Example::

        await durable.sleep_until(dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc))
    """
    deadline = to_unix(moment, "moment")
    return _sleep(lambda now: timer_deadline(deadline, now, "moment"), "sleep_until", suspend)


def _sleep(deadline_from: Callable[[float], float], name: str, suspend: bool) -> Awaitable[None]:
    ctx = _context.current.get()
    if isinstance(ctx, _context.InStep):
        raise NotInWorkflowError(
            "durable.sleep() was called inside a step; a durable timer belongs in the "
            "workflow's body (inside a step, use time.sleep or asyncio.sleep)"
        )
    api = f"durable.{name.partition('(')[0]}"  # what a forgotten await names
    if ctx is None:
        return _plain_sleep(deadline_from, api)
    position = ctx.allocate(name)
    coro = ctx.engine.sleep(ctx, ctx.session, position, name, deadline_from, suspend)
    return here(called(coro, api), ctx.session.sync)


def _plain_sleep(deadline_from: Callable[[float], float], api: str) -> Awaitable[None]:
    from durable._engine._runtime import current_runtime

    clock = current_runtime().clock
    wait = deadline_from(clock.time()) - clock.time()

    async def pause() -> None:
        await clock.asleep(wait)

    return called(pause(), api)
