"""Schedules: cron and interval ticks, each starting one workflow however many workers run.

A tick fires by enqueueing the workflow under an id that names the tick
(``report@2026-12-05T17:00:00Z``): every worker may compute and fire the
same tick, and the store inserts it once. The workflow receives the tick's
time (an aware datetime in the schedule's timezone) as its first argument.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, TypeVar

from durable._durations import duration
from durable._errors import ConfigurationError
from durable._records import ScheduleRow
from durable._serialization import Codec, place
from durable.backends._limits import DEFAULT_QUEUE, QUEUE_CHARS, check_int, check_text

CatchUp = Literal["skip", "last", "all"]
CATCH_UP: tuple[CatchUp, ...] = ("skip", "last", "all")
"""What a schedule does with the ticks it missed while no worker ran (see docs/schedules.md)."""

SCHEDULE_NAME_CHARS = 200
"""A tick's workflow id is the name, ``@`` and a 20-character time: within 255."""

BATCH = 100
"""Ticks of one schedule a worker enqueues per pass (catch-up and backfills go on at once)."""

CRON_CHARS = 256
"""``durable_schedules.cron``."""

HAIR = 0.001
"""Less than the gap between two ticks (at least a second): ``t - HAIR`` is just before ``t``."""

ON_TIME = 60.0
"""Seconds a tick may be late and still count as on time for ``catch_up="skip"``."""

W = TypeVar("W")


@dataclasses.dataclass(frozen=True, eq=False)
class Schedule:
    """A schedule declared in code (:func:`schedule`, :func:`scheduled`).

    A worker puts it in the store when it starts, keeping what the store
    holds of its state: paused stays paused, and ticks already fired are not
    fired again.
    """

    name: str
    workflow: Any
    """The decorated workflow each tick enqueues."""
    cron: str | None
    every: float | None
    timezone: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    queue: str
    priority: int
    catch_up: CatchUp
    _definition: ScheduleRow | None = dataclasses.field(default=None, repr=False)

    def as_row(self, args: bytes, now: float) -> ScheduleRow:
        """Its row for the store, as checked when it was declared, created at ``now``."""
        assert self._definition is not None, "made by durable.schedule()"
        return dataclasses.replace(self._definition, args=args, created_at=now, last_tick=now)

    @staticmethod
    def declared() -> list[Schedule]:
        """The schedules declared in code in this process, by name (what a worker here puts)."""
        return declared()

    def undeclare(self) -> None:
        """Declare it no more in this process (the store keeps it: ``Store.delete_schedule``)."""
        with _lock:
            if _declared.get(self.name) is self:
                del _declared[self.name]


@dataclasses.dataclass(frozen=True)
class ScheduleInfo:
    """A schedule as the store holds it (``Store.schedules()``, ``durable schedule list``)."""

    name: str
    workflow: str
    """The registered name of the workflow each tick starts."""
    cron: str | None
    every: dt.timedelta | None
    timezone: str
    queue: str
    priority: int
    catch_up: str
    paused: bool
    created_at: dt.datetime
    last_tick: dt.datetime
    """Ticks up to this time have fired (at first, the time the schedule was created)."""
    next_tick: dt.datetime | None
    """The next tick to fire, in the schedule's timezone (even while paused); None if
    this process cannot compute it (a timezone or cron it does not know)."""
    backfill: tuple[dt.datetime, dt.datetime] | None
    """A backfill still to fire: the ticks from the first time to the second (excluded)."""

    @classmethod
    def of(cls, row: ScheduleRow) -> ScheduleInfo:
        """The public view of a stored schedule."""
        try:
            zone: dt.tzinfo = _zone(row.timezone)
        except (KeyError, ValueError):
            zone = dt.timezone.utc  # listed all the same; firing it says what is wrong
        backfill = None
        if row.backfill_from is not None and row.backfill_to is not None:
            backfill = (_at(row.backfill_from, zone), _at(row.backfill_to, zone))
        return cls(
            name=row.name,
            workflow=row.workflow,
            cron=row.cron,
            every=None if row.every is None else dt.timedelta(seconds=row.every),
            timezone=row.timezone,
            queue=row.queue,
            priority=row.priority,
            catch_up=row.catch_up,
            paused=row.paused,
            created_at=_at(row.created_at, zone),
            last_tick=_at(row.last_tick, zone),
            next_tick=_next(row, zone),
            backfill=backfill,
        )


def tick_id(name: str, tick: float) -> str:
    """The workflow id of a schedule's tick: the same in every worker."""
    return f"{name}@{dt.datetime.fromtimestamp(tick, dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}"


def tick_time(row: ScheduleRow, tick: float) -> dt.datetime:
    """What the workflow receives: the tick as an aware datetime in the schedule's zone."""
    return _at(tick, _zone(row.timezone))


def ticks_after(row: ScheduleRow, after: float) -> Iterator[float]:
    """The schedule's ticks strictly after ``after`` (seconds since the epoch), in order."""
    if row.every is not None:
        # Anchored at the epoch, so every worker computes the same ticks.
        k = int(after // row.every) + 1
        while True:
            yield k * row.every
            k += 1
    from cronsim import CronSim  # imported only where a cron schedule is fired

    assert row.cron is not None
    for when in CronSim(row.cron, _at(after, _zone(row.timezone))):
        # In the hour a DST change repeats, cronsim (on local wall time) can
        # give the first of the two 01:30s after the second: not after ``after``.
        if when.timestamp() > after:
            yield when.timestamp()


def due(row: ScheduleRow, now: float, limit: int) -> tuple[list[float], float]:
    """The ticks to fire now, and how far ``last_tick`` may advance.

    ``all`` fires every missed tick (``limit`` at a time), ``last`` the
    latest only, ``skip`` the latest only if it is on time (:data:`ON_TIME`).
    """
    if row.catch_up == "all":
        ticks = between(row, row.last_tick + HAIR, now + HAIR, limit)
        return ticks, ticks[-1] if ticks else row.last_tick
    latest = latest_tick(row, now)
    if latest is None or latest <= row.last_tick:
        return [], row.last_tick
    if row.catch_up == "skip" and now - latest > ON_TIME:
        return [], latest
    return [latest], latest


def latest_tick(row: ScheduleRow, now: float) -> float | None:
    """The schedule's last tick at or before ``now``."""
    if row.every is not None:
        return math.floor(now / row.every) * row.every
    from cronsim import CronSim

    assert row.cron is not None
    # A candidate from a reverse walk (a day back, for the hour a DST change
    # repeats), then forward over the exact ticks to the last one not after now.
    latest = None
    for when in CronSim(row.cron, _at(now - 86400, _zone(row.timezone)), reverse=True):
        latest = when.timestamp()
        break
    if latest is None:
        return None
    for tick in ticks_after(row, latest - 1):
        if tick > now:
            break
        latest = tick
    return latest


def retimed(old: ScheduleRow, new: ScheduleRow) -> bool:
    """Whether a redefinition changes when the ticks fall (the old ones then do not count)."""
    return (old.cron, old.every, old.timezone) != (new.cron, new.every, new.timezone)


def between(row: ScheduleRow, start: float, end: float, limit: int) -> list[float]:
    """Up to ``limit`` ticks from ``start`` (included) to ``end`` (excluded)."""
    found: list[float] = []
    for tick in ticks_after(row, start - HAIR):
        if tick >= end or len(found) == limit:
            break
        found.append(tick)
    return found


def args_place(name: str) -> bytes:
    """Where a schedule's sealed arguments live (part of what their signature covers)."""
    return place(f"schedule:{name}", "args")


def seal_args(codec: Codec, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    """A schedule's ``(args, kwargs)``, pickled and sealed like any payload."""
    what = f"arguments of schedule {name!r}"
    return codec.dumps((args, kwargs), args_place(name), what=what)


# Declared in code ------------------------------------------------------------

_lock = threading.Lock()
_declared: dict[str, Schedule] = {}


def declared() -> list[Schedule]:
    """The schedules declared in code in this process, by name."""
    with _lock:
        return [_declared[name] for name in sorted(_declared)]


def schedule(
    workflow: W,
    *,
    cron: str | None = None,
    every: float | dt.timedelta | None = None,
    name: str | None = None,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    timezone: str = "UTC",
    queue: str = DEFAULT_QUEUE,
    priority: int = 0,
    catch_up: CatchUp = "last",
) -> Schedule:
    """Run ``workflow`` on a schedule, wherever a :class:`durable.Worker` runs.

    Each tick enqueues one workflow, whose first argument is the tick's time
    (an aware datetime in ``timezone``), then ``args`` and ``kwargs``. Many
    workers fire the same tick once: its workflow id names the tick.

    Args:
        workflow: A ``@durable.durable_workflow`` function.
        cron: A cron expression (5 fields, e.g. ``"*/5 * * * *"``), in ``timezone``.
        every: Or a period (seconds or a timedelta, at least 1 s); ticks are
            whole multiples of it since the epoch (``every=3600``: on the hour).
        name: The schedule's name (default: the workflow's name). Give each
            schedule of one workflow its own.
        timezone: An IANA zone (``"Europe/Paris"``) for the cron expression
            and the time passed to the workflow.
        args: Positional arguments after the tick's time.
        kwargs: Keyword arguments.
        queue: The queue the ticks' workflows are enqueued in.
        priority: Their priority in it.
        catch_up: After downtime, run every missed tick (``"all"``), only the
            latest (``"last"``), or none (``"skip"``: a tick more than a minute
            late is dropped).

    Example::

        @durable.durable_workflow
        async def nightly_report(at: datetime) -> None: ...

        durable.schedule(nightly_report, cron="0 3 * * *", timezone="Europe/Paris")
    """
    spec = workflow_spec(workflow)
    declared_name = name if name is not None else spec[0].name
    check_call(declared_name, spec[1], args, kwargs)
    row = define(
        declared_name,
        spec[0].name,
        cron=cron,
        every=every,
        timezone=timezone,
        queue=queue,
        priority=priority,
        catch_up=catch_up,
    )
    entry = Schedule(
        name=row.name,
        workflow=workflow,
        cron=row.cron,
        every=row.every,
        timezone=row.timezone,
        args=tuple(args),
        kwargs=dict(kwargs or {}),
        queue=row.queue,
        priority=row.priority,
        catch_up=catch_up,
        _definition=row,
    )
    with _lock:
        _declared[entry.name] = entry  # a re-run notebook cell replaces it
    return entry


def scheduled(
    cron: str | None = None,
    *,
    every: float | dt.timedelta | None = None,
    name: str | None = None,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    timezone: str = "UTC",
    queue: str = DEFAULT_QUEUE,
    priority: int = 0,
    catch_up: CatchUp = "last",
) -> Any:
    """Decorator form of :func:`schedule`, above ``@durable.durable_workflow``.

    Example::

        @durable.scheduled("*/5 * * * *")
        @durable.durable_workflow
        async def poll_feeds(at: datetime) -> int: ...
    """

    def decorate(workflow: W) -> W:
        schedule(
            workflow,
            cron=cron,
            every=every,
            name=name,
            args=args,
            kwargs=kwargs,
            timezone=timezone,
            queue=queue,
            priority=priority,
            catch_up=catch_up,
        )
        return workflow

    return decorate


def define(
    name: str,
    workflow: str,
    *,
    cron: str | None,
    every: float | dt.timedelta | None,
    timezone: str,
    queue: str,
    priority: int,
    catch_up: str,
    args: bytes | None = None,
    now: float = 0.0,
) -> ScheduleRow:
    """A schedule's row, its definition checked (``now``: when it is created)."""
    check_text(name, "schedule name", SCHEDULE_NAME_CHARS, blank_ok=False)
    check_text(queue, "queue name", QUEUE_CHARS)
    check_int(priority, "priority")
    if (cron is None) == (every is None):
        raise ConfigurationError(
            f"schedule {name!r}: give either cron= (e.g. '*/5 * * * *') or every= (a period), "
            "exactly one of them"
        )
    if catch_up not in CATCH_UP:
        raise ConfigurationError(
            f"schedule {name!r}: catch_up must be one of {', '.join(CATCH_UP)}, not {catch_up!r}"
        )
    try:
        zone = _zone(timezone)
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"schedule {name!r}: unknown timezone {timezone!r}; give an IANA name such as "
            "'UTC' or 'Europe/Paris'"
        ) from exc
    seconds = None
    if every is not None:
        seconds = duration(every, "every", positive=True)
        if seconds < 1:
            raise ConfigurationError(f"schedule {name!r}: every= must be at least 1 second")
    if cron is not None:
        _check_cron(name, cron, zone)
    return ScheduleRow(
        name=name,
        workflow=workflow,
        cron=cron,
        every=seconds,
        timezone=timezone,
        args=args,
        queue=queue,
        priority=priority,
        catch_up=catch_up,
        paused=False,
        created_at=now,
        last_tick=now,
    )


def workflow_spec(workflow: object) -> tuple[Any, inspect.Signature]:
    """The spec and signature of a decorated workflow; else ConfigurationError."""
    spec = getattr(getattr(workflow, "_self_parent", None) or workflow, "_self_durable", None)
    if spec is None:
        raise ConfigurationError(
            f"a schedule starts a @durable.durable_workflow function (or, added to the store, "
            f"its registered name), not {workflow!r}"
        )
    return spec[0], spec[1]


def check_call(
    name: str, signature: inspect.Signature, args: Sequence[Any], kwargs: Mapping[str, Any] | None
) -> None:
    """The workflow takes the tick's time, ``args`` and ``kwargs``; else ConfigurationError now."""
    try:
        signature.bind(dt.datetime.now(dt.timezone.utc), *args, **(kwargs or {}))
    except TypeError as exc:
        raise ConfigurationError(
            f"schedule {name!r}: its workflow{signature} cannot take the tick's time followed "
            f"by args={list(args)!r}, kwargs={dict(kwargs or {})!r} ({exc}); each tick passes "
            "the tick's datetime first"
        ) from exc


def _check_cron(name: str, cron: object, zone: dt.tzinfo) -> None:
    from cronsim import CronSim, CronSimError

    if not isinstance(cron, str):
        raise ConfigurationError(f"schedule {name!r}: cron must be a str, not {cron!r}")
    if len(cron) > CRON_CHARS or len(cron.split()) != 5:
        raise ConfigurationError(
            f"schedule {name!r}: cron expression {cron!r} is not valid (5 fields of at most "
            f"{CRON_CHARS} characters in all); it takes: minute hour day-of-month month "
            "day-of-week, e.g. '*/5 * * * *'"
        )
    try:
        next(CronSim(cron, dt.datetime.now(zone)))
    except (CronSimError, StopIteration) as exc:
        raise ConfigurationError(
            f"schedule {name!r}: cron expression {cron!r} is not valid ({exc}); it takes 5 "
            "fields: minute hour day-of-month month day-of-week, e.g. '*/5 * * * *'"
        ) from exc


def _next(row: ScheduleRow, zone: dt.tzinfo) -> dt.datetime | None:
    try:
        return _at(next(ticks_after(row, row.last_tick)), zone)
    except Exception:  # a row this process cannot read: listed, not fatal
        return None


def _zone(name: str) -> dt.tzinfo:
    """The time zone ``name``; raises ZoneInfoNotFoundError (a KeyError) or ValueError.

    zoneinfo is imported when a schedule first needs a zone, not with durable.
    """
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _at(when: float, zone: dt.tzinfo) -> dt.datetime:
    return dt.datetime.fromtimestamp(when, zone)
