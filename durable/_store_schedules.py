"""What the store does with schedules: list, add, pause, resume, delete and backfill them.

A base of :class:`durable.Store`. Workers fire the schedules (see
:mod:`durable._engine._scheduler`); these methods change what they fire,
from any process, including one that does not import the workflow's code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from durable._errors import ConfigurationError, ScheduleNotFoundError
from durable._schedules import (
    BATCH,
    CatchUp,
    ScheduleInfo,
    between,
    check_call,
    define,
    retimed,
    seal_args,
    workflow_spec,
)
from durable._store_changes import Source
from durable.backends._limits import DEFAULT_QUEUE, NAME_COLUMN_CHARS, check_text

_MOST_BACKFILLED = 100 * BATCH

"""Ticks one backfill may ask for (a typo of a year should not enqueue a million)."""


class ScheduleControl:
    """List, add, pause, resume, delete and backfill schedules."""

    _runtime: Source

    def schedules(self) -> list[ScheduleInfo]:
        """Every schedule in the store, by name (code-declared ones once a worker started).

        Example::

            for s in store.schedules():
                print(s.name, s.cron or s.every, s.next_tick, "paused" if s.paused else "")
        """
        backend = self._runtime.backend
        return [ScheduleInfo.of(row) for row in backend.run_sync(backend.schedules)]

    def get_schedule(self, name: str) -> ScheduleInfo | None:
        """One schedule, or None."""
        backend = self._runtime.backend
        found = backend.run_sync(backend.schedules, name)
        return ScheduleInfo.of(found[0]) if found else None

    def add_schedule(
        self,
        name: str,
        workflow: Any,
        *,
        cron: str | None = None,
        every: float | dt.timedelta | None = None,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        timezone: str = "UTC",
        queue: str = DEFAULT_QUEUE,
        priority: int = 0,
        catch_up: CatchUp = "last",
        replace: bool = False,
    ) -> ScheduleInfo:
        """Add a schedule at run time; workers that import the workflow fire it.

        ``workflow`` is a decorated workflow or its registered name (so a
        process without its code can schedule it). The options are those of
        :func:`durable.schedule`. Its first tick is the first after now.
        With ``replace=True`` an existing schedule takes the new definition
        and keeps its state (paused or not, the ticks it fired).

        Example::

            store.add_schedule("digest-eu", "reports.digest", cron="0 7 * * *",
                               timezone="Europe/Paris", args=["eu"])
        """
        workflow_name = _workflow_name(workflow, name, args, kwargs)
        backend = self._runtime.backend
        existing = backend.run_sync(backend.schedules, name)
        if existing and not replace:
            raise ConfigurationError(
                f"schedule {name!r} exists already; pass replace=True (durable schedule add "
                "--replace) to change it, or delete it first"
            )
        row = define(
            name,
            workflow_name,
            cron=cron,
            every=every,
            timezone=timezone,
            queue=queue,
            priority=priority,
            catch_up=catch_up,
            args=seal_args(self._runtime.engine.codec, name, tuple(args), dict(kwargs or {})),
            now=self._runtime.engine.clock.time(),
        )
        backend.run_sync(backend.put_schedule, row, True)
        if existing and retimed(existing[0], row):
            # Ticks of the new timing before now were never due: none is missed.
            backend.run_sync(backend.advance_schedule, name, row.created_at, None)
        added = self.get_schedule(name)
        assert added is not None
        return added

    def pause_schedule(self, name: str) -> None:
        """Stop firing a schedule until :meth:`resume_schedule` (then ``catch_up`` applies)."""
        self._set_paused(name, True)

    def resume_schedule(self, name: str) -> None:
        """Fire a paused schedule again."""
        self._set_paused(name, False)

    def delete_schedule(self, name: str) -> None:
        """Delete a schedule; the workflows it started stay.

        A schedule declared in code comes back when a worker that declares
        it starts: remove it from the code too.
        """
        backend = self._runtime.backend
        if not backend.run_sync(backend.delete_schedule, name):
            raise _missing(name)

    def backfill_schedule(self, name: str, start: dt.datetime, end: dt.datetime) -> int:
        """Fire the ticks from ``start`` (included) to ``end`` (excluded); how many.

        Both are aware datetimes, ``end`` no later than now: ticks to come
        fire on their own. Workers enqueue them as they fire ticks, whatever
        the catch-up policy, paused or not; a tick that already ran is not
        run again (its workflow id names it). One backfill at a time per
        schedule, of at most 10,000 ticks.

        Example::

            store.backfill_schedule("nightly", datetime(2026, 11, 1, tzinfo=UTC),
                                    datetime(2026, 12, 1, tzinfo=UTC))   # November
        """
        for when, what in ((start, "start"), (end, "end")):
            if not isinstance(when, dt.datetime) or when.tzinfo is None:
                raise ConfigurationError(f"{what} must be an aware datetime, not {when!r}")
        if end <= start:
            raise ConfigurationError(f"end ({end}) must be after start ({start})")
        now = self._runtime.engine.clock.time()
        if end.timestamp() > now:
            raise ConfigurationError(
                f"end ({end}) is in the future: a backfill runs past ticks; the ticks to "
                "come fire on their own"
            )
        backend = self._runtime.backend
        found = backend.run_sync(backend.schedules, name)
        if not found:
            raise _missing(name)
        after, upto = start.timestamp(), end.timestamp()
        ticks = len(between(found[0], after, upto, _MOST_BACKFILLED + 1))
        if ticks > _MOST_BACKFILLED:
            raise ConfigurationError(
                f"a backfill of schedule {name!r} from {start} to {end} is more than "
                f"{_MOST_BACKFILLED} ticks; backfill a shorter range"
            )
        if not backend.run_sync(backend.backfill_schedule, name, after, upto):
            pending = backend.run_sync(backend.schedules, name)
            if not pending:
                raise _missing(name)
            info = ScheduleInfo.of(pending[0])
            raise ConfigurationError(
                f"schedule {name!r} has a backfill pending ({info.backfill}); ask for the "
                "next one once workers have run it (durable schedule list shows it)"
            )
        return ticks

    def _set_paused(self, name: str, paused: bool) -> None:
        backend = self._runtime.backend
        if not backend.run_sync(backend.set_schedule_paused, name, paused):
            raise _missing(name)


def _workflow_name(
    workflow: Any, name: str, args: Sequence[Any], kwargs: Mapping[str, Any] | None
) -> str:
    if isinstance(workflow, str):
        return check_text(workflow, "workflow name", NAME_COLUMN_CHARS, blank_ok=False)
    spec, signature = workflow_spec(workflow)
    check_call(name, signature, args, kwargs)
    return str(spec.name)


def _missing(name: str) -> ScheduleNotFoundError:
    return ScheduleNotFoundError(
        f"no schedule named {name!r} in the store; `durable schedule list` shows them"
    )
