"""Recovery: resume the workflows whose owner died, and the waits that are over."""

from __future__ import annotations

import inspect
from collections.abc import Collection, Coroutine, Sequence
from typing import Any, Literal

from durable import _registry
from durable._aio import require_asyncio
from durable._clock import real_time
from durable._durations import format_utc
from durable._engine import _context
from durable._engine._core import (
    CHILD,
    Engine,
    Part,
    Unknown,
    log,
    log_extra,
)
from durable._engine._leases import Leases
from durable._errors import (
    DurableError,
    QueueTimeoutError,
    WorkflowAlreadyRunningError,
    WorkflowNotFoundError,
    WorkflowSuspendedError,
)
from durable._identity import validate_workflow_id
from durable._owner import current_owner
from durable._records import (
    WorkflowQuery,
    WorkflowRow,
    WorkflowStatus,
)
from durable._reports import RecoveryReport
from durable._serialization import (
    call_columns,
    place,
)
from durable._session import Session
from durable._specs import MissingInstance

RerunOutcome = Literal["done", "suspended", "skipped", "failed", "unknown", "unrunnable"]


class Recovery(Part):
    """Finds what is due and runs it again from its stored call."""

    def __init__(self, engine: Engine, leases: Leases) -> None:
        super().__init__(engine)
        self.leases = leases

    async def recover(self) -> RecoveryReport:
        """Resume what is due (see :meth:`durable.Runtime.recover`)."""
        require_asyncio("Runtime.recover()")
        report = RecoveryReport()
        for row in await self.due(self.engine.session(True)):
            await self._resume_row(row, report)
        return report

    async def due(self, session: Session) -> list[WorkflowRow]:
        """Roots of the workflows to resume now: owner dead, or wait over."""
        return (await self.look(session))[0]

    async def look(self, session: Session) -> tuple[list[WorkflowRow], float | None]:
        """What :meth:`due` finds, and the soonest a suspended workflow's timer fires after now.

        The time is by this runtime's clock, from the same rows: a worker
        looks again then, not only at its next interval.
        """
        candidates = self.engine.backend.run_sync(self.engine.backend.resumable)
        now = self.engine.clock.time()
        wakes = [
            row.wake_at
            for row in candidates
            if row.owner is None
            and row.status is WorkflowStatus.WAITING
            and row.wake_at is not None
            and row.wake_at > now
        ]
        return await self.due_among(session, candidates), min(wakes, default=None)

    async def due_among(
        self, session: Session, candidates: Sequence[WorkflowRow]
    ) -> list[WorkflowRow]:
        """The roots to resume now among ``candidates``, rows read a moment ago."""
        by_id = {row.workflow_id: row for row in candidates}
        roots: dict[str, WorkflowRow] = {}
        for read in candidates:
            row = await self._fresh(session, read)
            if row is None or not row.status.active:
                continue
            if row.owner is not None and self.leases.owner_alive(row):
                continue
            suspended = row.owner is None and row.status is WorkflowStatus.WAITING
            if suspended and not await self._wait_over(session, row):
                continue
            # A child resumes through its parent, which replays down to it.
            root = row
            while root.parent_id is not None:
                parent = by_id.get(root.parent_id) or await session.run(
                    session.backend.get_workflow, root.parent_id
                )
                parent = parent and await self._fresh(session, parent)
                if parent is None or not parent.status.active:
                    break
                root = parent
            if root.owner is not None and self.leases.owner_alive(root):
                continue
            roots.setdefault(root.workflow_id, root)
        return list(roots.values())

    async def _fresh(self, session: Session, row: WorkflowRow) -> WorkflowRow | None:
        """``row``, read again if this process owned it when read and holds it no more.

        The call here may have let it go since (suspended, finished, failed),
        after writing so, and the read may predate that write: taken for an
        in-process crash, such a workflow ran a second time. None if it is gone.
        """
        if row.owner != current_owner() or self.leases.owner_alive(row):
            return row
        return await session.run(session.backend.get_workflow, row.workflow_id)

    def next_wake(self, queues: Sequence[str]) -> float | None:
        """The soonest a timer fires, or an enqueued workflow of ``queues`` may start or expires.

        What a virtual clock may jump to without skipping anything due: a
        delayed start, a queue timeout, a deadline, or a start that a rate
        limit's window frees.
        """
        backend, now = self.engine.backend, self.engine.clock.time()
        enqueued = WorkflowQuery(statuses=(WorkflowStatus.ENQUEUED,))
        waiting = [
            row
            for row in backend.run_sync(backend.query_workflows, enqueued)
            if row.queue in queues
        ]
        rows = backend.run_sync(backend.resumable) + waiting
        wakes = [
            at
            for row in rows
            for at in (row.wake_at, row.deadline, row.start_by)
            if at is not None and at > now
        ]
        wakes += self._rate_windows({row.queue for row in waiting if row.queue}, now)
        return min(wakes, default=None)

    def next_room(self, queues: Sequence[str]) -> float | None:
        """The soonest a rate limit's window frees a start for ready work of ``queues``."""
        backend, now = self.engine.backend, self.engine.clock.time()
        counts = backend.run_sync(backend.queue_counts, None, now)
        ready = {q for q in queues if q in counts and counts[q].ready}
        return min(self._rate_windows(ready, now), default=None)

    def _rate_windows(self, queues: Collection[str], now: float) -> list[float]:
        """When the rate limits of ``queues`` (those that have one) free a start."""
        backend = self.engine.backend
        limited = {
            row.name: row.rate_period
            for row in backend.run_sync(backend.queues)
            if row.rate_period is not None and row.name in queues
        }
        if not limited:
            return []
        windows = {name: now - period for name, period in limited.items()}
        return [
            max(counts.first_started + limited[name], now)
            for name, counts in backend.run_sync(backend.queue_counts, windows, now).items()
            if name in limited and counts.first_started is not None
        ]

    def held_back(self, queues: Sequence[str], besides: Collection[str] = ()) -> bool:
        """Whether a workflow of ``queues`` may start now but waits for room.

        Enqueued, its delay over, in a queue that is not paused: what a rate
        limit's window, or a concurrency used by other workers, holds back.
        The workflows ``besides`` (ids) do not count.
        """
        backend, clock = self.engine.backend, self.engine.clock
        paused = {row.name for row in backend.run_sync(backend.queues) if row.paused}
        now = None if real_time(clock) else clock.time()
        counts = backend.run_sync(backend.queue_counts, None, now)
        ready = sum(counts[q].ready for q in queues if q in counts and q not in paused)
        if ready and besides:
            at = backend.run_sync(backend.now) if now is None else now
            for workflow_id in besides:
                row = backend.run_sync(backend.get_workflow, workflow_id)
                if (
                    row is not None
                    and row.status is WorkflowStatus.ENQUEUED
                    and row.queue in queues
                    and row.queue not in paused
                    and (row.wake_at is None or row.wake_at <= at)
                ):
                    ready -= 1
        return ready > 0

    def expire(self, queues: Sequence[str]) -> list[str]:
        """Cancel the enqueued workflows of ``queues`` past their queue timeout; their ids.

        Each gets a :class:`durable.QueueTimeoutError` as its recorded
        outcome, in the transaction that cancels it.
        """
        engine = self.engine

        def error_for(workflow_id: str, queue: str, start_by: float) -> bytes:
            error = QueueTimeoutError(
                f"workflow {workflow_id!r} waited in queue {queue!r} past its queue_timeout: "
                f"no worker started it by {format_utc(start_by)}, so it was cancelled without "
                "running. Enqueue it again under a new workflow_id, and give the queue room: "
                "more workers, a higher limit, or resume it if it is paused.",
                workflow_id=workflow_id,
                queue=queue,
                start_by=start_by,
            )
            return engine.codec.dumps_error(
                error, place(workflow_id, "error"), what=f"error of workflow {workflow_id!r}"
            )

        backend = engine.backend
        # The store's clock, which enqueues count a queue timeout from (a
        # virtual clock's own time in tests): hosts' clocks may disagree.
        now = None if real_time(engine.clock) else engine.clock.time()
        return backend.run_sync(backend.expire_queued, queues, now, error_for)

    async def _wait_over(self, session: Session, row: WorkflowRow) -> bool:
        """Whether a suspended workflow's wait is over (its timer, by this runtime's clock)."""
        if row.event_arrived or (
            row.wake_at is not None and row.wake_at <= self.engine.clock.time()
        ):
            return True
        if row.waiting_for is not None and row.waiting_for.startswith(CHILD):
            # Suspended because a child did: over once that child is no longer
            # active (cancelled, or finished by a direct call).
            child = await session.run(session.backend.get_workflow, row.waiting_for[len(CHILD) :])
            return child is None or not child.status.active
        return False

    async def _resume_row(self, row: WorkflowRow, report: RecoveryReport) -> None:
        """Resume one workflow for :meth:`recover`, and say what came of it in ``report``."""
        outcome, error = await self.rerun(row)
        if outcome == "done":
            report.resumed.append(row.workflow_id)
        elif outcome == "suspended":
            report.suspended.append(row.workflow_id)
        elif outcome == "unknown":
            report.unknown[row.workflow_id] = row.name
            log.warning(
                "cannot resume workflow %r: no imported code registers a workflow named %r",
                row.workflow_id,
                row.name,
                extra=log_extra(row.workflow_id),
            )
        elif error is not None:  # failed, or its call could not be rebuilt
            report.failed[row.workflow_id] = error

    async def rerun(
        self, row: WorkflowRow, claimed: bool = False, hold: object | None = None
    ) -> tuple[RerunOutcome, Exception | None]:
        """Call a stored workflow again, by its registered name and stored arguments.

        Never waits for another live owner (``skipped``: someone else runs it).
        A workflow the caller ``claimed`` from its queue is run as claimed,
        without claiming it again. A sync workflow runs in a thread, so that
        the event loop (a worker's other workflows) goes on meanwhile.
        """
        import asyncio

        try:
            if row.args is None:  # a light row: its arguments are read off the event loop
                workflow, row = await asyncio.to_thread(self._stored_call, row)
            else:
                workflow, row = self._stored_call(row)
        except Unknown:
            return "unknown", None
        except Exception as exc:  # the store: the next recovery tries again
            return "failed", exc
        try:
            target, args, kwargs = self._bind_call(workflow, row)
        except Exception as exc:
            error = self._unrunnable(row, exc)
            await self._fail_unrunnable(row, error, claimed)
            return "unrunnable", error
        options = _context.CallOptions(
            never_wait=True, preclaimed=row if claimed else None, hold=hold
        )
        with self.engine.activate():
            return await self._call(target, args, kwargs, row, claimed, options)

    async def _call(
        self,
        target: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        row: WorkflowRow,
        claimed: bool,
        options: _context.CallOptions,
    ) -> tuple[RerunOutcome, Exception | None]:
        """Call a stored workflow with ``options``; what came of it."""
        import asyncio

        token = _context.next_call.set(options)
        try:
            if inspect.iscoroutinefunction(target):
                await target.run(*args, workflow_id=row.workflow_id, **kwargs)
            else:  # the context goes along into the thread
                await asyncio.to_thread(target.run, *args, workflow_id=row.workflow_id, **kwargs)
        except WorkflowSuspendedError as exc:  # its details say until when
            return "suspended", exc
        except WorkflowAlreadyRunningError:
            return "skipped", None
        except Exception as exc:
            if self._never_started(row):
                # The call was refused before the workflow ran (its recorded
                # arguments no longer fit the code): unrunnable, not failed.
                error = self._unrunnable(row, exc)
                await self._fail_unrunnable(row, error, claimed)
                return "unrunnable", error
            return "failed", exc
        finally:
            _context.next_call.reset(token)
        return "done", None

    def _stored_call(self, row: WorkflowRow) -> tuple[Any, WorkflowRow]:
        """The registered workflow of a stored row, and the row with its arguments."""
        workflow = _registry.lookup(row.name)
        if workflow is None:
            raise Unknown(row.name)
        if row.args is None:  # a light row: fetch the arguments
            full = self.engine.backend.run_sync(self.engine.backend.get_workflow, row.workflow_id)
            row = full if full is not None else row
        return workflow, row

    def _bind_call(
        self, workflow: Any, row: WorkflowRow
    ) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
        """The call a stored row records: the workflow (bound to its instance) and arguments.

        A method is bound from the registered workflow itself, not looked up
        on the instance by name: what stands at that name may be something
        else by now, and the registered workflow is the one the row names.
        """
        instance, args, kwargs = self.engine.codec.loads(
            row.args or b"",
            place(row.workflow_id, "args"),
            what=f"arguments of workflow {row.workflow_id!r}",
            bound=call_columns(row.name, row.args_fingerprint),
        )
        if isinstance(instance, MissingInstance):
            raise DurableError(
                f"cannot resume workflow {row.workflow_id!r}: it is a method, and "
                f"its instance (a {instance.type_name}) could not be pickled; call "
                "it again on a live instance with the same workflow_id",
                workflow_id=row.workflow_id,
            )
        if instance is None:
            return workflow, args, kwargs
        if isinstance(workflow.__wrapped__, classmethod):
            return workflow.__get__(None, instance), args, kwargs
        return workflow.__get__(instance, type(instance)), args, kwargs

    def _never_started(self, row: WorkflowRow) -> bool:
        """Whether a stored workflow whose call raised is still as it was before the call.

        Then the workflow never ran (it would have recorded its error, or been
        claimed under a new epoch), and nothing else will record its end.
        """
        try:
            now = self.engine.backend.run_sync(self.engine.backend.get_workflow, row.workflow_id)
        except DurableError:
            return False  # the store is down: the next recovery looks again
        return now is not None and now.epoch == row.epoch and now.status is row.status

    def _unrunnable(self, row: WorkflowRow, exc: Exception) -> DurableError:
        """The error recorded for a stored call that cannot be rebuilt."""
        if isinstance(exc, DurableError) and exc.details.get("workflow_id") == row.workflow_id:
            return exc  # says it all already
        error = DurableError(
            f"cannot resume workflow {row.workflow_id!r} ({row.name}): its recorded call "
            f"could not be rebuilt ({type(exc).__name__}: {exc}). Recorded as failed; "
            "call it again with the same workflow_id once the cause is fixed (its "
            "recorded steps are reused).",
            workflow_id=row.workflow_id,
        )
        error.__cause__ = exc
        return error

    async def _fail_unrunnable(self, row: WorkflowRow, exc: Exception, claimed: bool) -> None:
        """Record as failed a workflow whose call cannot be rebuilt.

        Left as it is, it would stay running (or enqueued) for ever, every
        recovery failing on it again and its handle waiting to its timeout.
        A row this runtime did not claim is claimed first (fenced), so that a
        live owner elsewhere is never overruled.
        """
        if not claimed:
            if row.status not in (WorkflowStatus.RUNNING, WorkflowStatus.WAITING):
                return
            taken = self.engine.backend.run_sync(
                self.engine.backend.claim_workflow,
                row.workflow_id,
                row.epoch,
                row.status,
                current_owner(),
                self.engine.options.lease_seconds,
                rerun_failed=False,
                recovery=row.owner is not None,
            )
            if taken is None:
                return  # someone else took it meanwhile
            row = taken
        error = self.engine.codec.dumps_error(
            exc, place(row.workflow_id, "error"), what=f"error of workflow {row.workflow_id!r}"
        )
        self.engine.backend.run_sync(
            self.engine.backend.finish_workflow,
            row.workflow_id,
            row.epoch,
            WorkflowStatus.ERROR,
            error=error,
        )
        log.error(
            "workflow %r recorded as failed: %s",
            row.workflow_id,
            exc,
            extra=log_extra(row.workflow_id),
        )

    async def resume(self, workflow_id: str) -> Any:
        """Run a stored workflow again by its id (see :meth:`durable.Runtime.resume`)."""
        workflow_id = validate_workflow_id(workflow_id)
        row = self.engine.backend.run_sync(self.engine.backend.get_workflow, workflow_id)
        if row is None:
            raise WorkflowNotFoundError(
                f"no workflow {workflow_id!r} in {self.engine.backend.url}", workflow_id=workflow_id
            )
        try:
            workflow, row = self._stored_call(row)
        except Unknown:
            raise WorkflowNotFoundError(
                f"workflow {workflow_id!r} is a {row.name!r}, and no imported code registers "
                "a workflow of that name; import the module that defines it first",
                workflow_id=workflow_id,
            ) from None
        target, args, kwargs = self._bind_call(workflow, row)
        if row.status in (WorkflowStatus.QUARANTINED, WorkflowStatus.CANCELLED):
            # Only now that it can run: a failed resume leaves it as it was.
            self.engine.backend.run_sync(self.engine.backend.reopen, workflow_id)
        with self.engine.activate():
            outcome = target.run(*args, workflow_id=workflow_id, **kwargs)
            return await outcome if isinstance(outcome, Coroutine) else outcome
