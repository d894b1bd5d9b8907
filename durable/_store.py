"""``durable.Store``: query, inspect, rewind, fork and clean up recorded workflows."""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, ParamSpec, TypeVar

from durable import _infos
from durable._aio import drive
from durable._durations import moment
from durable._engine._sessions import value_place
from durable._errors import (
    ConfigurationError,
    WorkflowAlreadyRunningError,
    WorkflowConflictError,
    WorkflowNotFoundError,
)
from durable._identity import validate_workflow_id
from durable._records import (
    NewWorkflow,
    SessionSummary,
    StepHistoryRow,
    StepKind,
    StepRow,
    StepStatus,
    StreamSummary,
    WorkflowQuery,
    WorkflowRow,
    WorkflowStatus,
)
from durable._serialization import call_columns, place, step_columns, step_slot
from durable._store_changes import Changes, Source, statuses_of
from durable._store_queues import QueueControl
from durable._store_schedules import ScheduleControl
from durable.backends._limits import (
    EVENT_KEY_CHARS,
    INT64_MAX,
    NAME_COLUMN_CHARS,
    QUEUE_CHARS,
    SNAPSHOT_CHARS,
    WORKFLOW_ID_CHARS,
    check_int,
    check_optional_text,
    check_text,
)
from durable.backends._url import mask_password

P = ParamSpec("P")
T = TypeVar("T")


_opener: Callable[..., Source] | None = None


def opens_with(opener: Callable[..., Source]) -> None:
    """Say how :meth:`Store.open` opens a runtime (``durable.Runtime``, which imports this)."""
    global _opener
    _opener = opener


class Store(Changes, ScheduleControl, QueueControl):
    """The records of a store: query them, inspect them, rewind and fork, clean up.

    Get the current runtime's with ``durable.current_runtime().store``, or
    open one from a URL with :meth:`Store.open`. Every method has an async
    form with an ``a`` prefix (``await store.alist_workflows()``).

    Example::

        store = durable.current_runtime().store
        for wf in store.list_workflows(status="error", limit=20):
            print(wf.workflow_id, wf.name, wf.attempts)
        store.cleanup(older_than=dt.timedelta(days=30))
    """

    def __init__(self, runtime: Source, *, close_runtime: bool = False) -> None:
        """A store over ``runtime``'s; ``close_runtime`` closes the runtime with the store."""
        if isinstance(runtime, (str, os.PathLike)):
            raise ConfigurationError(
                f"Store() takes a runtime, not the URL {mask_password(str(runtime))!r}: open "
                "the store at a URL with durable.Store.open(url)"
            )
        self._runtime = runtime
        self._owned = close_runtime

    @classmethod
    def open(cls, url: str | None = None, **options: Any) -> Store:
        """Open the store at ``url`` (see :class:`durable.Runtime` for options)."""
        if _opener is None:  # durable.Runtime registers it when it is imported
            raise ConfigurationError("import durable before opening a store")
        return cls(_opener(url, **options), close_runtime=True)

    @property
    def url(self) -> str:
        """The store's URL, with any password masked."""
        return self._runtime.backend.url

    def owner_alive(self, workflow_id: str) -> bool | None:
        """Whether the process that owns a workflow is alive; None if nobody owns it.

        A running or waiting workflow whose owner died waits for a resume
        (``durable recover`` or a worker). Finished, enqueued and suspended
        workflows have no owner.
        """
        row = self._backend.run_sync(self._backend.get_workflow, validate_workflow_id(workflow_id))
        if row is None:
            raise WorkflowNotFoundError(
                f"no workflow {workflow_id!r} in the store {self.url}", workflow_id=workflow_id
            )
        if row.owner is None:
            return None
        return self._runtime.parts.leases.owner_alive(row)

    def close(self) -> None:
        """Close the store if :meth:`open` opened it."""
        if self._owned:
            self._runtime.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Queries ----------------------------------------------------------------

    def list_workflows(
        self,
        *,
        status: str | WorkflowStatus | Sequence[str | WorkflowStatus] | None = None,
        name: str | None = None,
        since: dt.datetime | float | str | None = None,
        until: dt.datetime | float | str | None = None,
        limit: int | None = 100,
        id_prefix: str | None = None,
        queue: str | None = None,
        parent_id: str | None = None,
    ) -> list[_infos.WorkflowInfo]:
        """Workflows, newest first, filtered by status, registered name and creation time.

        ``since`` and ``until`` are aware datetimes, Unix timestamps or ISO
        8601 text (``2025-06-01``, ``2025-06-01T09:30:00Z``; local time
        without an offset), read like the CLI's ``--since``. ``id_prefix``
        keeps those whose id starts with it, ``queue`` those enqueued on that
        queue, and ``parent_id`` the child workflows of that workflow.

        Example::

            store.list_workflows(status="running", queue="reports", limit=20)
            children = store.list_workflows(parent_id="order-7", limit=None)
        """
        query = _query(status, name, since, until, limit, id_prefix, queue, parent_id)
        return drive(self._list(True, query))

    async def alist_workflows(
        self,
        *,
        status: str | WorkflowStatus | Sequence[str | WorkflowStatus] | None = None,
        name: str | None = None,
        since: dt.datetime | float | str | None = None,
        until: dt.datetime | float | str | None = None,
        limit: int | None = 100,
        id_prefix: str | None = None,
        queue: str | None = None,
        parent_id: str | None = None,
    ) -> list[_infos.WorkflowInfo]:
        """Async form of :meth:`list_workflows`."""
        query = _query(status, name, since, until, limit, id_prefix, queue, parent_id)
        return await self._list(False, query)

    def get_workflow(self, workflow_id: str) -> _infos.WorkflowInfo | None:
        """A workflow's record, or None."""
        return drive(self._get(True, workflow_id))

    async def aget_workflow(self, workflow_id: str) -> _infos.WorkflowInfo | None:
        """Async form of :meth:`get_workflow`."""
        return await self._get(False, workflow_id)

    def result(self, workflow_id: str) -> Any:
        """The recorded result of a finished workflow (raises its recorded error if it failed).

        Example::

            total = store.result("report-2026-11")
        """
        row = self._backend.run_sync(self._backend.get_workflow, validate_workflow_id(workflow_id))
        if row is not None and row.status is WorkflowStatus.CANCELLED:
            raise self._runtime.engine.cancelled(row)
        if row is None or row.status not in (WorkflowStatus.SUCCESS, WorkflowStatus.ERROR):
            raise ConfigurationError(
                f"workflow {workflow_id!r} has no recorded outcome "
                f"(status {row.status.value if row else 'deleted'})"
            )
        return self._runtime.engine.outcome(row)

    def published(self, workflow_id: str) -> dict[str, Any]:
        """The latest value of each key a workflow published (``durable.publish``), in order.

        Example::

            store.published("import-7")   # {'progress': 40.0, 'stage': 'loading'}
        """
        return drive(self._published(True, workflow_id))

    async def apublished(self, workflow_id: str) -> dict[str, Any]:
        """Async form of :meth:`published`."""
        return await self._published(False, workflow_id)

    def streams(self, workflow_id: str) -> list[StreamSummary]:
        """A workflow's streams (generator steps, ``write_stream``): chunks, restarts, ended.

        Read one with :func:`durable.read_stream`.
        """
        row = drive(self._row(True, workflow_id))
        return self._backend.run_sync(self._backend.streams_of, row.workflow_id)

    def step_result(self, workflow_id: str, position: int) -> Any:
        """The recorded value of the live step record at ``position`` (raises its recorded error).

        The record is unpickled, so it is verified first when the store has a
        secret key (:class:`durable.PayloadIntegrityError` for an unsigned or
        tampered one). Positions are those of :meth:`history`; a position with
        no live record raises :class:`durable.WorkflowNotFoundError`.

        Example::

            store.step_result("order-7", 1)   # 'reserved book'
        """
        check_int(position, "position", minimum=0, maximum=INT64_MAX)
        row = drive(self._row(True, workflow_id))
        step = self._backend.run_sync(self._backend.load_steps, row.workflow_id).get(position)
        if step is None:
            raise WorkflowNotFoundError(
                f"workflow {row.workflow_id!r} has no live step record at position {position}",
                workflow_id=row.workflow_id,
            )
        return self._runtime.engine.decode_step(step, row.workflow_id)

    def sessions(self) -> list[SessionSummary]:
        """Every session with state (``durable.session``): its keys and last write, newest first."""
        return self._backend.run_sync(self._backend.sessions)

    def session_values(self, session_id: str) -> dict[str, Any]:
        """The state of one session: each key's value, by key.

        Example::

            store.session_values("user:7")   # {'history': [...], 'plan': 'pro'}
        """
        session_id = check_text(session_id, "session_id", EVENT_KEY_CHARS)
        entries = self._backend.run_sync(self._backend.session_read, session_id)
        codec = self._runtime.engine.codec
        return {
            e.key: codec.loads(
                e.value,
                value_place(session_id, e.key),
                what=f"key {e.key!r} of session {session_id!r}",
            )
            for e in entries
        }

    def history(self, workflow_id: str) -> _infos.History:
        """Every step attempt of a workflow, in order, superseded and retried ones too.

        In a notebook it renders as a table with a timeline; ``print()`` it in
        a terminal.
        """
        return drive(self._history(True, workflow_id))

    async def ahistory(self, workflow_id: str) -> _infos.History:
        """Async form of :meth:`history`."""
        return await self._history(False, workflow_id)

    def snapshots(self, workflow_id: str) -> list[_infos.SnapshotInfo]:
        """The live snapshots of a workflow, in order."""
        return drive(self._snapshots(True, workflow_id))

    async def asnapshots(self, workflow_id: str) -> list[_infos.SnapshotInfo]:
        """Async form of :meth:`snapshots`."""
        return await self._snapshots(False, workflow_id)

    def metrics(self) -> _infos.Metrics:
        """Workflows by status, steps, bytes stored, and checkpoint times."""
        return drive(self._metrics(True))

    async def ametrics(self) -> _infos.Metrics:
        """Async form of :meth:`metrics`."""
        return await self._metrics(False)

    def counts(self) -> dict[str, int]:
        """How many workflows the store holds in each status (only those with any).

        The part of :meth:`metrics` that a listing refreshes often, without
        reading every step record.

        Example::

            store.counts()   # {'error': 1, 'running': 2, 'success': 40}
        """
        return drive(self._run(True, self._backend.count_by_status))

    async def acounts(self) -> dict[str, int]:
        """Async form of :meth:`counts`."""
        return await self._run(False, self._backend.count_by_status)

    # Changes ----------------------------------------------------------------

    def restore(self, workflow_id: str, snapshot: str) -> None:
        """Rewind a workflow to a snapshot: the next run re-executes from there.

        Records after the snapshot are superseded (kept for audit, never
        replayed). Works on finished, failed and crashed workflows; refuses
        one that a live process is running. Child workflows that already
        finished keep their recorded results.
        """
        drive(self._restore(True, workflow_id, snapshot))

    async def arestore(self, workflow_id: str, snapshot: str) -> None:
        """Async form of :meth:`restore`."""
        await self._restore(False, workflow_id, snapshot)

    def fork(self, workflow_id: str, snapshot: str, new_workflow_id: str) -> str:
        """Create ``new_workflow_id`` sharing the records up to a snapshot; run it to go on.

        The original is untouched. Call the workflow with the same arguments
        and ``workflow_id=new_workflow_id`` to run the fork from the snapshot.
        """
        return drive(self._fork(True, workflow_id, snapshot, new_workflow_id))

    async def afork(self, workflow_id: str, snapshot: str, new_workflow_id: str) -> str:
        """Async form of :meth:`fork`."""
        return await self._fork(False, workflow_id, snapshot, new_workflow_id)

    def prune(self, *, keep_snapshots: int = 3, dry_run: bool = False) -> _infos.CleanupReport:
        """Drop superseded records, and all but the newest snapshots of finished workflows.

        Live records are never touched, nor the snapshots of running
        workflows; forks hold their own copies, so pruning never breaks one.
        """
        return drive(self._prune(True, keep_snapshots, dry_run))

    async def aprune(
        self, *, keep_snapshots: int = 3, dry_run: bool = False
    ) -> _infos.CleanupReport:
        """Async form of :meth:`prune`."""
        return await self._prune(False, keep_snapshots, dry_run)

    # Implementation (once, for both forms) ----------------------------------

    async def _list(self, sync: bool, query: WorkflowQuery) -> list[_infos.WorkflowInfo]:
        rows = await self._run(sync, self._backend.query_workflows, query)
        return [self._info(row) for row in rows]

    async def _get(self, sync: bool, workflow_id: str) -> _infos.WorkflowInfo | None:
        row = await self._run(sync, self._backend.get_workflow, validate_workflow_id(workflow_id))
        return self._info(row) if row is not None else None

    async def _published(self, sync: bool, workflow_id: str) -> dict[str, Any]:
        row = await self._row(sync, workflow_id)
        records = await self._run(sync, self._backend.published, row.workflow_id)
        decode = self._runtime.engine.decode_step
        return {step.name: decode(step, row.workflow_id) for step in records}

    async def _history(self, sync: bool, workflow_id: str) -> _infos.History:
        workflow_id = validate_workflow_id(workflow_id)
        steps: list[StepHistoryRow] = await self._run(sync, self._backend.step_history, workflow_id)
        attempts = await self._run(sync, self._backend.step_attempts, workflow_id)
        entries = [
            _infos.HistoryEntry(
                position=a.position,
                name=a.name,
                kind="step",
                status="retried",
                started_at=a.started_at,
                finished_at=a.finished_at,
                payload_bytes=0,
                error=f"{a.error_type}: {a.error_message}",
                superseded=False,
                transaction_id=None,
                attempt=a.attempt,
            )
            for a in attempts
        ]
        entries += [
            _infos.HistoryEntry(
                position=s.position,
                name=s.name,
                kind=s.kind,
                status="snapshot" if s.kind == StepKind.SNAPSHOT else s.status.value,
                started_at=s.started_at,
                finished_at=s.finished_at,
                payload_bytes=s.payload_bytes,
                error=(
                    f"{s.error_type}: {s.error_message}" if s.status is StepStatus.ERROR else None
                ),
                superseded=s.superseded,
                transaction_id=s.tx_id,
                attempt=s.attempt,
            )
            for s in steps
        ]
        return _infos.History(
            sorted(entries, key=lambda e: (e.position, e.started_at, e.status != "retried"))
        )

    async def _snapshots(self, sync: bool, workflow_id: str) -> list[_infos.SnapshotInfo]:
        steps: list[StepHistoryRow] = await self._run(
            sync, self._backend.step_history, validate_workflow_id(workflow_id)
        )
        live = [s for s in steps if not s.superseded]
        return [
            _infos.SnapshotInfo(
                name=s.name,
                position=s.position,
                created_at=s.finished_at,
                steps=tuple(
                    p.name for p in live if p.position < s.position and p.kind != StepKind.SNAPSHOT
                ),
            )
            for s in live
            if s.kind == StepKind.SNAPSHOT
        ]

    async def _metrics(self, sync: bool) -> _infos.Metrics:
        stats = await self._run(sync, self._backend.stats)
        times = sorted(self._runtime.engine.checkpoint_seconds)
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))] * 1000 if times else None
        return _infos.Metrics(
            by_status=stats["by_status"],
            workflows=sum(stats["by_status"].values()),
            steps=stats["steps"],
            step_ms_mean=_ms(stats["step_seconds_mean"]),
            step_ms_max=_ms(stats["step_seconds_max"]),
            storage_bytes=stats["payload_bytes"],
            checkpoint_ms_mean=math.fsum(times) / len(times) * 1000 if times else None,
            checkpoint_ms_p99=p99,
            checkpoints_measured=len(times),
        )

    async def _snapshot_position(self, sync: bool, row: WorkflowRow, snapshot: str) -> int:
        for info in await self._snapshots(sync, row.workflow_id):
            if info.name == snapshot:
                return info.position
        raise WorkflowNotFoundError(
            f"workflow {row.workflow_id!r} has no snapshot {snapshot!r}; its snapshots: "
            + (
                ", ".join(repr(s.name) for s in await self._snapshots(sync, row.workflow_id))
                or "none"
            ),
            workflow_id=row.workflow_id,
        )

    def _refuse_live(self, row: WorkflowRow, action: str) -> None:
        live = row.status in (WorkflowStatus.RUNNING, WorkflowStatus.WAITING)
        if live and self._runtime.parts.leases.owner_alive(row):
            raise WorkflowAlreadyRunningError(
                f"cannot {action} workflow {row.workflow_id!r} while a live process runs it "
                f"(pid {row.owner.pid if row.owner else '?'}); wait for it to finish or cancel it",
                workflow_id=row.workflow_id,
            )

    async def _restore(self, sync: bool, workflow_id: str, snapshot: str) -> None:
        validate_workflow_id(workflow_id)
        check_text(snapshot, "snapshot name", SNAPSHOT_CHARS)
        row = await self._row(sync, workflow_id)
        self._refuse_live(row, "restore")
        position = await self._snapshot_position(sync, row, snapshot)
        if not await self._run(sync, self._backend.rewind, row.workflow_id, row.epoch, position):
            raise WorkflowAlreadyRunningError(
                f"workflow {workflow_id!r} changed while it was being restored (another "
                "process took it over); try again once it has finished",
                workflow_id=workflow_id,
            )

    async def _fork(self, sync: bool, workflow_id: str, snapshot: str, new_workflow_id: str) -> str:
        validate_workflow_id(workflow_id)
        check_text(snapshot, "snapshot name", SNAPSHOT_CHARS)
        new_workflow_id = validate_workflow_id(new_workflow_id)
        row = await self._row(sync, workflow_id)
        self._refuse_live(row, "fork")
        position = await self._snapshot_position(sync, row, snapshot)
        codec = self._runtime.engine.codec
        steps = []
        for s in await self._run(sync, self._backend.steps_up_to, row.workflow_id, position):
            bound = step_columns(s.kind, s.name, s.status.value, s.attempt, s.code_hash)
            body = codec.open(
                s.output, place(workflow_id, step_slot(s.position)), what="record", bound=bound
            )
            sealed = codec.seal(
                body, place(new_workflow_id, step_slot(s.position)), what="record", bound=bound
            )
            steps.append(_replace_output(s, sealed))
        call = call_columns(row.name, row.args_fingerprint)
        args = codec.seal(
            codec.open(row.args or b"", place(workflow_id, "args"), what="arguments", bound=call),
            place(new_workflow_id, "args"),
            what="arguments",
            bound=call,
        )
        new = NewWorkflow(new_workflow_id, row.name, row.args_fingerprint, args, None)
        if not await self._run(
            sync, self._backend.create_fork, new, f"{workflow_id}@{snapshot}", steps
        ):
            raise WorkflowConflictError(
                f"cannot fork into {new_workflow_id!r}: a workflow of that id exists already",
                workflow_id=new_workflow_id,
            )
        return new_workflow_id

    async def _prune(self, sync: bool, keep_snapshots: int, dry_run: bool) -> _infos.CleanupReport:
        check_int(keep_snapshots, "keep_snapshots", minimum=0, maximum=INT64_MAX)
        counts = await self._run(sync, self._backend.prune, keep_snapshots, dry_run)
        return _infos.CleanupReport(counts.workflows, counts.steps, counts.attempts, dry_run)

    def _info(self, row: WorkflowRow) -> _infos.WorkflowInfo:
        return _infos.WorkflowInfo(
            workflow_id=row.workflow_id,
            name=row.name,
            status=row.status,
            attempts=row.attempts,
            parent_id=row.parent_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
            finished_at=row.finished_at,
            owner_host=row.owner.host if row.owner else None,
            owner_pid=row.owner.pid if row.owner else None,
            forked_from=row.forked_from,
            queue=row.queue,
            priority=row.priority,
            wake_at=row.wake_at,
            waiting_for=row.waiting_for,
            recoveries=row.recoveries,
            timeout=row.timeout,
            deadline=row.deadline,
            started_at=row.started_at,
            partition=row.partition_key,
            start_by=row.start_by,
            lease_expires_at=row.lease_expires_at if row.owner is not None else None,
            _store=self,
        )


def _query(
    status: Any,
    name: str | None,
    since: dt.datetime | float | str | None,
    until: dt.datetime | float | str | None,
    limit: int | None,
    id_prefix: str | None,
    queue: str | None,
    parent_id: str | None,
) -> WorkflowQuery:
    """The checked filters of :meth:`Store.list_workflows`."""
    if limit is not None:
        check_int(limit, "limit", minimum=1, maximum=INT64_MAX)
    return WorkflowQuery(
        statuses=statuses_of(status),
        name=check_optional_text(name, "name", NAME_COLUMN_CHARS),
        since=_timestamp(since, "since"),
        until=_timestamp(until, "until"),
        limit=limit,
        id_prefix=check_optional_text(id_prefix, "id_prefix", WORKFLOW_ID_CHARS),
        queue=check_optional_text(queue, "queue", QUEUE_CHARS),
        parent_id=None if parent_id is None else validate_workflow_id(parent_id),
    )


def _ms(seconds: float | None) -> float | None:
    return seconds * 1000 if seconds is not None else None


def _replace_output(step: StepRow, output: bytes) -> StepRow:
    return replace(step, output=output, tx_id=None)


def _timestamp(value: dt.datetime | float | str | None, name: str) -> float | None:
    return None if value is None else moment(value, name)
