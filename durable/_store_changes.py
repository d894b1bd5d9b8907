"""What the store changes by hand: cancel and resume (one workflow's tree, or many), clean up.

The base of :class:`durable.Store`: its methods that stop, reopen or delete
workflows, one by id or every one a filter selects (with a dry run that
only says which), and the two runners every Store method uses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import ParamSpec, Protocol, TypeVar

from durable import _infos
from durable._aio import drive, require_asyncio
from durable._durations import duration
from durable._engine._core import Engine
from durable._engine._leases import Leases
from durable._errors import ConfigurationError, WorkflowNotFoundError
from durable._identity import validate_workflow_id
from durable._records import WorkflowQuery, WorkflowRow, WorkflowStatus
from durable.backends._base import Backend, Operation
from durable.backends._limits import (
    EVENT_KEY_CHARS,
    NAME_COLUMN_CHARS,
    QUEUE_CHARS,
    check_optional_text,
)

P = ParamSpec("P")
T = TypeVar("T")

Statuses = str | WorkflowStatus | Sequence[str | WorkflowStatus] | None

FINISHED = (WorkflowStatus.SUCCESS, WorkflowStatus.ERROR, WorkflowStatus.CANCELLED)
ACTIVE = tuple(status for status in WorkflowStatus if status.active)
REOPENABLE = (WorkflowStatus.CANCELLED, WorkflowStatus.QUARANTINED)


class _Parts(Protocol):
    @property
    def leases(self) -> Leases:
        """Who holds what in this process, and whether an owner is alive."""
        ...


class Source(Protocol):
    """What a :class:`durable.Store` reads and changes through (a :class:`durable.Runtime`)."""

    @property
    def backend(self) -> Backend:
        """The storage backend."""
        ...

    @property
    def engine(self) -> Engine:
        """The engine whose codec decodes the records."""
        ...

    @property
    def parts(self) -> _Parts:
        """The engine's parts (the leases judge owners)."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...


class Changes:
    """Cancel and resume trees of workflows, one or many, and clean up finished ones."""

    _runtime: Source

    def cancel(self, workflow_id: str) -> bool:
        """Cancel a workflow and every active workflow below it (its children, theirs...).

        Each stops at its next step boundary (a sleep or an event wait at
        once) and starts nothing new; :meth:`resume` undoes it. Returns False
        when the workflow had already finished.

        Example::

            store.cancel("report-2026-11")
        """
        return drive(self._cancel(True, workflow_id))

    async def acancel(self, workflow_id: str) -> bool:
        """Async form of :meth:`cancel`."""
        return await self._cancel(False, workflow_id)

    def resume(self, workflow_id: str) -> bool:
        """Make a cancelled, timed-out or quarantined workflow resumable again, with its tree.

        It goes on from its records, as a crashed workflow does: every step
        it recorded is replayed, the step it was cancelled in runs again.
        Its timeout, if it has one, counts afresh from when it resumes. This
        only reopens it: calling it again, :func:`durable.recover`, a worker's
        recovery or :meth:`durable.Runtime.resume` (which also runs it) go
        on with it. Returns False if it was none of those.

        Safe when what it was cancelled for is over: a step interrupted by
        the cancel runs again (steps are at least once), and a workflow that
        was waiting for an event waits again.

        Example::

            store.resume("report-2026-11")
            await durable.recover()   # or: durable recover / a worker
        """
        return drive(self._resume(True, workflow_id))

    async def aresume(self, workflow_id: str) -> bool:
        """Async form of :meth:`resume`."""
        return await self._resume(False, workflow_id)

    def cancel_many(
        self,
        *,
        status: Statuses = None,
        name: str | None = None,
        queue: str | None = None,
        older_than: dt.timedelta | float | None = None,
        dry_run: bool = False,
    ) -> list[str]:
        """Cancel every active workflow the filters select (with its tree); their ids.

        ``status``: some of enqueued, running, waiting (default: all three);
        ``name``, ``queue``: exact; ``older_than``: created at least this long
        ago. ``dry_run`` only lists what would be cancelled.

        Example::

            store.cancel_many(name="reports.build", queue="reports", dry_run=True)
        """
        return drive(self._many(True, "cancel", status, name, queue, older_than, dry_run))

    async def acancel_many(
        self,
        *,
        status: Statuses = None,
        name: str | None = None,
        queue: str | None = None,
        older_than: dt.timedelta | float | None = None,
        dry_run: bool = False,
    ) -> list[str]:
        """Async form of :meth:`cancel_many`."""
        return await self._many(False, "cancel", status, name, queue, older_than, dry_run)

    def resume_many(
        self,
        *,
        status: Statuses = None,
        name: str | None = None,
        queue: str | None = None,
        older_than: dt.timedelta | float | None = None,
        dry_run: bool = False,
    ) -> list[str]:
        """:meth:`resume` every workflow the filters select; their ids.

        ``status``: cancelled and/or quarantined (default: both). Other
        filters as for :meth:`cancel_many`.

        Example::

            store.resume_many(status="cancelled", name="reports.build")
        """
        return drive(self._many(True, "resume", status, name, queue, older_than, dry_run))

    async def aresume_many(
        self,
        *,
        status: Statuses = None,
        name: str | None = None,
        queue: str | None = None,
        older_than: dt.timedelta | float | None = None,
        dry_run: bool = False,
    ) -> list[str]:
        """Async form of :meth:`resume_many`."""
        return await self._many(False, "resume", status, name, queue, older_than, dry_run)

    def cleanup(
        self,
        *,
        older_than: dt.timedelta | float,
        status: Statuses = None,
        name: str | None = None,
        queue: str | None = None,
        dry_run: bool = False,
    ) -> _infos.CleanupReport:
        """Delete finished workflows (with all their records) finished over ``older_than`` ago.

        ``status`` narrows which finished states go (default: all of them),
        ``name`` and ``queue`` which workflows; active workflows are never
        deleted (cancel them first). ``dry_run`` counts only.

        Example::

            store.cleanup(older_than=dt.timedelta(days=30), name="reports.build")
        """
        return drive(self._cleanup(True, older_than, status, name, queue, dry_run))

    async def acleanup(
        self,
        *,
        older_than: dt.timedelta | float,
        status: Statuses = None,
        name: str | None = None,
        queue: str | None = None,
        dry_run: bool = False,
    ) -> _infos.CleanupReport:
        """Async form of :meth:`cleanup`."""
        return await self._cleanup(False, older_than, status, name, queue, dry_run)

    def partition_by_month(self) -> int | None:
        """Keep this PostgreSQL store's step records in one partition per month.

        Each month's partition holds the records of the workflows created in
        it (UTC), so a :meth:`cleanup` that removes every workflow of a past
        month drops its partition whole instead of deleting its records row by
        row: a retention job's cost no longer grows with the records it
        removes. The workflows' own rows stay in one table (a workflow id is
        unique across the store) and are deleted as before.

        A one-off change of the store's layout: it copies every record into
        the partitioned table in one transaction, during which the store's
        other callers wait, so run it while workers are stopped. Returns how
        many records it moved, or None if the store was partitioned already.
        Opening the store and each cleanup make the partitions of the coming
        months. A SQLite store refuses (``ConfigurationError``), changing
        nothing.

        Example::

            with durable.Store.open("postgresql://db/app") as store:
                store.partition_by_month()
                store.cleanup(older_than=dt.timedelta(days=90))  # drops whole months
        """
        return drive(self._run(True, self._backend.partition_by_month))

    async def apartition_by_month(self) -> int | None:
        """Async form of :meth:`partition_by_month`."""
        return await self._run(False, self._backend.partition_by_month)

    def cleanup_sessions(
        self,
        *,
        older_than: dt.timedelta | float,
        session_id: str | None = None,
        dry_run: bool = False,
    ) -> int:
        """Delete sessions last written over ``older_than`` ago (or only ``session_id``).

        Returns how many keys went (or would go, with ``dry_run``).

        Example::

            store.cleanup_sessions(older_than=dt.timedelta(days=90))
            store.cleanup_sessions(older_than=0, session_id="user:7")   # that one, now
        """
        return drive(self._cleanup_sessions(True, older_than, session_id, dry_run))

    async def acleanup_sessions(
        self,
        *,
        older_than: dt.timedelta | float,
        session_id: str | None = None,
        dry_run: bool = False,
    ) -> int:
        """Async form of :meth:`cleanup_sessions`."""
        return await self._cleanup_sessions(False, older_than, session_id, dry_run)

    # Implementation (once, for both forms) ----------------------------------

    @property
    def _backend(self) -> Backend:
        return self._runtime.backend

    async def _run(
        self, sync: bool, op: Operation[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run a storage operation for the sync form (in place) or the async one."""
        backend = self._backend
        if sync:
            return backend.run_sync(op, *args, **kwargs)
        require_asyncio("an async method of durable.Store")
        return await backend.run_async(op, *args, **kwargs)

    async def _row(self, sync: bool, workflow_id: str) -> WorkflowRow:
        row = await self._run(sync, self._backend.get_workflow, validate_workflow_id(workflow_id))
        if row is None:
            raise WorkflowNotFoundError(
                f"no workflow {workflow_id!r} in the store {self._runtime.backend.url}",
                workflow_id=workflow_id,
            )
        return row

    async def _cancel(self, sync: bool, workflow_id: str) -> bool:
        before = await self._row(sync, workflow_id)
        after = await self._run(sync, self._backend.cancel, before.workflow_id)
        return bool(
            before.status.active and after is not None and after.status is WorkflowStatus.CANCELLED
        )

    async def _resume(self, sync: bool, workflow_id: str) -> bool:
        before = await self._row(sync, workflow_id)
        return await self._run(sync, self._backend.reopen, before.workflow_id) is not None

    async def _many(
        self,
        sync: bool,
        action: str,
        status: Statuses,
        name: str | None,
        queue: str | None,
        older_than: dt.timedelta | float | None,
        dry_run: bool,
    ) -> list[str]:
        allowed = ACTIVE if action == "cancel" else REOPENABLE
        statuses = statuses_of(status) or allowed
        wrong = [s.value for s in statuses if s not in allowed]
        if wrong:
            raise ConfigurationError(
                f"cannot {action} workflows that are {', '.join(wrong)}; {action} takes "
                + ", ".join(s.value for s in allowed)
            )
        until = None
        if older_than is not None:
            until = await self._run(sync, self._backend.now) - duration(older_than, "older_than")
        query = WorkflowQuery(
            statuses=statuses,
            name=check_optional_text(name, "name", NAME_COLUMN_CHARS),
            queue=check_optional_text(queue, "queue", QUEUE_CHARS),
            until=until,
        )
        rows = await self._run(sync, self._backend.query_workflows, query)
        # Roots first: cancelling (or reopening) one takes its tree along.
        ids = [row.workflow_id for row in sorted(rows, key=lambda r: r.created_at)]
        if dry_run:
            return ids
        op = self._backend.cancel if action == "cancel" else self._backend.reopen
        done = []
        for workflow_id in ids:
            row = await self._run(sync, op, workflow_id)
            if row is not None and (action == "resume" or row.status is WorkflowStatus.CANCELLED):
                done.append(workflow_id)
        return done

    async def _cleanup(
        self,
        sync: bool,
        older_than: dt.timedelta | float,
        status: Statuses,
        name: str | None,
        queue: str | None,
        dry_run: bool,
    ) -> _infos.CleanupReport:
        seconds = duration(older_than, "older_than")
        statuses = statuses_of(status) or FINISHED
        name = check_optional_text(name, "name", NAME_COLUMN_CHARS)
        queue = check_optional_text(queue, "queue", QUEUE_CHARS)
        cutoff = await self._run(sync, self._backend.now) - seconds
        counts = await self._run(
            sync, self._backend.cleanup, cutoff, statuses, dry_run, name=name, queue=queue
        )
        return _infos.CleanupReport(counts.workflows, counts.steps, counts.attempts, dry_run)

    async def _cleanup_sessions(
        self, sync: bool, older_than: dt.timedelta | float, session_id: str | None, dry_run: bool
    ) -> int:
        seconds = duration(older_than, "older_than")
        session_id = _session_id(session_id)
        # A moment later than now, so that older_than=0 takes what was written just now.
        cutoff = await self._run(sync, self._backend.now) - seconds + 1e-3
        return await self._run(sync, self._backend.cleanup_sessions, cutoff, session_id, dry_run)


def _session_id(session_id: object) -> str | None:
    return check_optional_text(session_id, "session_id", EVENT_KEY_CHARS)


def statuses_of(status: Statuses) -> tuple[WorkflowStatus, ...] | None:
    """The statuses a ``status=`` filter names (None: no filter)."""
    if status is None:
        return None
    items = [status] if isinstance(status, (str, WorkflowStatus)) else list(status)
    try:
        return tuple(WorkflowStatus(s) for s in items)
    except ValueError:
        raise ConfigurationError(
            f"unknown workflow status in {status!r}; the statuses are "
            + ", ".join(s.value for s in WorkflowStatus)
        ) from None
