"""Firing schedules: what a worker does for the schedules in its store.

At start a worker puts the schedules declared in code in the store. Then,
now and then, it reads every schedule and enqueues the ticks that are due
(and those a backfill asks for) under ids that name them: several workers
firing one tick insert one workflow. ``last_tick`` only moves forward, once
the ticks before it are enqueued, so a worker killed between the two fires
them again, to no effect.
"""

from __future__ import annotations

import logging
from typing import Any

from durable import _registry
from durable._aio import drive
from durable._engine._core import Invocation
from durable._engine._runtime import Runtime
from durable._errors import BackendUnavailableError, WorkflowConflictError
from durable._records import Placement, ScheduleRow
from durable._schedules import (
    BATCH,
    HAIR,
    args_place,
    between,
    declared,
    due,
    retimed,
    seal_args,
    tick_id,
    tick_time,
    ticks_after,
)

log = logging.getLogger("durable")


BACKSTOP = 3600.0
"""When to look again at a schedule with nothing coming (paused): a recovery pass looks sooner."""


class Scheduler:
    """Puts code-declared schedules in the store and fires the due ticks, for one worker."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._unknown: set[str] = set()
        self._broken: dict[str, str] = {}
        self._declared_put = False

    def put_declared(self) -> None:
        """Put this process's code-declared schedules in the store, keeping their state."""
        backend, now = self._runtime.backend, self._runtime.clock.time()
        stored = {row.name: row for row in backend.run_sync(backend.schedules)}
        codec = self._runtime.engine.codec
        for entry in declared():
            args = seal_args(codec, entry.name, entry.args, dict(entry.kwargs))
            row = entry.as_row(args, now)
            backend.run_sync(backend.put_schedule, row, True)
            old = stored.get(row.name)
            if old is not None and retimed(old, row):
                # Ticks of the new timing before now were never due: none is missed.
                backend.run_sync(backend.advance_schedule, row.name, now, None)

    def fire(self) -> float | None:
        """Enqueue what is due; when to look again (None: there is no schedule to fire)."""
        backend, now = self._runtime.backend, self._runtime.clock.time()
        soonest: float | None = None
        if not self._declared_put:
            self.put_declared()
            self._declared_put = True
        for row in backend.run_sync(backend.schedules):
            if row.paused and row.backfill_from is None:
                continue
            workflow = self._workflow(row)
            if workflow is None:
                continue  # for a worker that has its code
            try:
                again = self._fire_one(row, workflow, now)
            except BackendUnavailableError:
                raise  # the store is away: the worker retries the whole pass
            except Exception as exc:  # one broken schedule must not stop the others
                self._failed(row, exc)
                continue
            self._broken.pop(row.name, None)
            soonest = again if soonest is None else min(soonest, again)
        return soonest

    def _failed(self, row: ScheduleRow, exc: Exception) -> None:
        """Log a schedule that cannot fire (once per error), and leave it where it was."""
        text = f"{type(exc).__name__}: {exc}"
        if self._broken.get(row.name) != text:
            self._broken[row.name] = text
            log.error(
                "schedule %r cannot fire, and is left as it is until it can: %s", row.name, text
            )

    def _fire_one(self, row: ScheduleRow, workflow: Any, now: float) -> float:
        backend = self._runtime.backend
        # Paused, only a backfill fires: the ticks it misses wait for its catch-up policy.
        ticks, upto = ([], row.last_tick) if row.paused else due(row, now, BATCH)
        backfill: list[float] = []
        backfilled = None
        if row.backfill_from is not None and row.backfill_to is not None:
            backfill = between(row, row.backfill_from, row.backfill_to, BATCH)
            done = backfill[-1] + HAIR if len(backfill) == BATCH else row.backfill_to
            backfilled = (row.backfill_from, row.backfill_to, done)
        if ticks or backfill:
            args, kwargs = self._args(row)  # decoded only when there is a tick to enqueue
            for tick in ticks + backfill:
                self._enqueue(row, workflow, tick, args, kwargs)
        if upto > row.last_tick or backfilled is not None:
            moved = upto if upto > row.last_tick else None
            backend.run_sync(backend.advance_schedule, row.name, moved, backfilled)
        if len(ticks) == BATCH or len(backfill) == BATCH:
            return now  # more to catch up on: at once
        if row.paused:
            return now + BACKSTOP
        return max(next(ticks_after(row, max(upto, now))), now)

    def _enqueue(
        self,
        row: ScheduleRow,
        workflow: Any,
        tick: float,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        call = (tick_time(row, tick), *args)
        inv = Invocation.queued(workflow, None, call, kwargs, tick_id(row.name, tick), None)
        engine = self._runtime.engine
        try:
            session = engine.session(sync=True)
            drive(engine.enqueue(inv, session, Placement(row.queue, row.priority)))
        except WorkflowConflictError as exc:
            # Enqueued before with other arguments (the schedule was changed):
            # that tick has fired; the next ones take the new arguments. Any
            # other error stops the pass before last_tick moves past the tick.
            log.warning("schedule %r: tick %s not enqueued: %s", row.name, inv.requested_id, exc)

    def _args(self, row: ScheduleRow) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if row.args is None:
            return (), {}
        codec = self._runtime.engine.codec
        what = f"arguments of schedule {row.name!r}"
        args, kwargs = codec.loads(row.args, args_place(row.name), what=what)
        return tuple(args), dict(kwargs)

    def _workflow(self, row: ScheduleRow) -> Any | None:
        workflow = _registry.lookup(row.workflow)
        if workflow is None and row.name not in self._unknown:
            self._unknown.add(row.name)
            log.warning(
                "schedule %r: no imported module registers workflow %r; its ticks are left "
                "for a worker that imports it (--import)",
                row.name,
                row.workflow,
            )
        return workflow
