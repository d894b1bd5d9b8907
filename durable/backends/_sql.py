"""The Backend contract over SQL, written once for every database.

Each operation is a coroutine over a ``Tx`` (something that executes a
SQLAlchemy Core statement). A backend supplies the transactions: SQLite runs
the statements through a SQLAlchemy connection, PostgreSQL through psycopg,
sync or async. On a sync transaction the coroutine never suspends, so
``run_sync`` drives it in place (``_aio.drive``); ``run_async`` awaits it.
That keeps one copy of every query and every decision.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine, Hashable, Mapping, Sequence
from typing import Any, Concatenate, NamedTuple, ParamSpec, TypeVar

import sqlalchemy as sa

from durable._aio import drive
from durable._errors import OwnershipLostError, WorkflowNotFoundError
from durable._records import (
    CheckSteps,
    Counts,
    EventGone,
    EventRow,
    NewWorkflow,
    Owner,
    StepAttemptRow,
    StepHistoryRow,
    StepRow,
    StepStatus,
    WorkflowQuery,
    WorkflowRow,
    WorkflowStatus,
)
from durable.backends import _schema as s
from durable.backends._base import Backend, Write, atomic, is_atomic, outcome
from durable.backends._fence import Fence
from durable.backends._group_commit import SHARED_RECORD_BYTES
from durable.backends._notify import QUEUE_TOPIC, event_topic
from durable.backends._statements import Statements, Tx, is_active

P = ParamSpec("P")
T = TypeVar("T")


class SqlBackend(Backend):
    """The operations of the Backend contract, once, over any ``Tx``."""

    q: Statements
    fence: Fence
    """Operations in progress, so that closing never pulls a connection from under one."""

    # Transactions, supplied by each database --------------------------------

    def _sync_tx(self, *, atomic: bool) -> contextlib.AbstractContextManager[Tx]:
        """A sync transaction; ``atomic=False`` allows autocommit per statement."""
        raise NotImplementedError

    def _async_tx(self, *, atomic: bool) -> contextlib.AbstractAsyncContextManager[Tx]:
        """An async transaction; the default runs the sync one in place."""
        return _AsyncFromSync(self._sync_tx(atomic=atomic))

    def run_sync(
        self,
        op: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        self.fence.enter()
        try:
            with self._sync_tx(atomic=is_atomic(op)) as tx:
                result = drive(op(tx, *args, **kwargs))
        finally:
            self.fence.leave()
        self._committed(tx)
        return result

    async def run_async(
        self,
        op: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        self.fence.enter()
        try:
            async with self._async_tx(atomic=is_atomic(op)) as tx:
                result = await op(tx, *args, **kwargs)
        finally:
            self.fence.leave()
        self._committed(tx)
        return result

    def _committed(self, tx: Tx) -> None:
        """Wake this process's waiters for what a committed transaction announced."""
        for topic in tx.topics:
            self.notifier.notify(topic)

    def close(self) -> None:
        """Refuse new operations; release the connections once running ones are done.

        Waits a bounded time for operations of other threads (``_fence``).
        """
        self.fence.close(self._release)

    def _release(self) -> None:
        """Close every connection: no operation is running any more."""
        raise NotImplementedError

    @atomic
    async def run_batch(self, tx: Tx, batch: Sequence[Write]) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any] | None] = [None] * len(batch)
        if self.q.rows:
            await self._write_rows(tx, batch, outcomes)
        for i, (op, args, kwargs) in enumerate(batch):
            if outcomes[i] is None:
                # A database error propagates: it may have aborted the
                # transaction (PostgreSQL then turns COMMIT into a rollback;
                # SQLite may roll back and go on in autocommit), so nothing of
                # the batch may be reported committed. The group then commits
                # each write alone.
                outcomes[i] = await outcome(op(tx, *args, **kwargs))
        return outcomes  # type: ignore[return-value]

    async def _write_rows(
        self, tx: Tx, batch: Sequence[Write], outcomes: list[tuple[bool, Any] | None]
    ) -> None:
        """A batch's writes of each kind in one statement (``Statements.rows``).

        A write that statement did not make (a record stood there already, the
        workflow existed, the fence stopped it) is left to its one-row form,
        which tells which; so is a large one, whose cost is its bytes, not its
        round trip.
        """
        # By kind, the first write of each key (a second start of one id, say,
        # takes the one-row form after it and finds the row the first wrote).
        kinds: dict[_Shape, dict[Hashable, int]] = {}
        for i, (op, args, kwargs) in enumerate(batch):
            shape = _ROWS.get(getattr(op, "__func__", None))
            if shape is not None and shape.fits(*args, **kwargs):
                kinds.setdefault(shape, {}).setdefault(shape.key(*args, **kwargs), i)
        for shape, picked in kinds.items():
            if len(picked) < 2:
                continue
            rows = [shape.params(*batch[i].args, **batch[i].kwargs) for i in picked.values()]
            written = await tx.execute(
                self.q.rows[shape.stmt], {key: [row[key] for row in rows] for key in rows[0]}
            )
            for r in written.rows:
                i = picked[shape.row_key(r)]
                outcomes[i] = (True, shape.outcome(batch[i].args, r))

    # The operations, once ---------------------------------------------------

    async def _lock_queue(self, tx: Tx, queue: str) -> None:
        """Serialise claims from one limited queue (inside the claiming transaction).

        SQLite needs nothing: its write transactions are serial already.
        """

    @atomic
    async def enqueue_workflow(
        self, tx: Tx, new: NewWorkflow, queue: str, priority: int
    ) -> tuple[WorkflowRow, bool]:
        inserted = await tx.execute(
            self.q.insert_enqueued,
            {
                **_new_params(new),
                "queue": queue,
                "priority": priority,
            },
        )
        row = await self.get_workflow(tx, new.workflow_id)
        assert row is not None
        if inserted.rowcount == 1:
            await self._notify(tx, QUEUE_TOPIC)
        return row, inserted.rowcount == 1

    @atomic
    async def claim_queued(
        self,
        tx: Tx,
        owner: Owner,
        lease_seconds: float,
        queues: Sequence[str],
        limit: int,
        queue_limit: int | None,
    ) -> list[WorkflowRow]:
        if queue_limit is not None:
            await self._lock_queue(tx, queues[0])
            running = await tx.execute(self.q.running_in_queue, {"queue": queues[0]})
            limit = min(limit, queue_limit - int(running.rows[0][0]))
        if limit <= 0:
            return []
        params = {**_owner_params(owner), "lease": lease_seconds, "limit": limit}
        found = await tx.execute(self.q.claim_queued(list(queues)), params)
        claimed = [_workflow_row(r) for r in found.rows]
        claimed.sort(key=lambda row: (-row.priority, row.created_at, row.workflow_id))
        return claimed

    async def set_waiting(
        self,
        tx: Tx,
        workflow_id: str,
        epoch: int,
        wake_at: float | None,
        waiting_for: str | None,
        suspend: bool,
    ) -> bool:
        updated = await tx.execute(
            self.q.suspend if suspend else self.q.set_waiting,
            {
                "workflow_id": workflow_id,
                "epoch": epoch,
                "wake_at": wake_at,
                "waiting_for": waiting_for,
            },
        )
        return updated.rowcount == 1

    async def set_running(self, tx: Tx, workflow_id: str, epoch: int) -> bool:
        return await self._update_fenced(tx, self.q.set_running, workflow_id, epoch)

    async def release_workflow(self, tx: Tx, workflow_id: str, epoch: int) -> bool:
        return await self._update_fenced(tx, self.q.release, workflow_id, epoch)

    async def requeue_workflow(self, tx: Tx, workflow_id: str, epoch: int) -> bool:
        return await self._update_fenced(tx, self.q.requeue, workflow_id, epoch)

    async def quarantine(self, tx: Tx, workflow_id: str, epoch: int) -> bool:
        return await self._update_fenced(tx, self.q.quarantine, workflow_id, epoch)

    async def owns(self, tx: Tx, workflow_id: str, epoch: int) -> bool:
        found = await tx.execute(self.q.fence, {"workflow_id": workflow_id, "epoch": epoch})
        return bool(found.rows)

    async def _update_fenced(
        self, tx: Tx, stmt: sa.Executable, workflow_id: str, epoch: int
    ) -> bool:
        updated = await tx.execute(stmt, {"workflow_id": workflow_id, "epoch": epoch})
        return updated.rowcount == 1

    @atomic
    async def unquarantine(self, tx: Tx, workflow_id: str) -> WorkflowRow | None:
        updated = await tx.execute(self.q.unquarantine, {"workflow_id": workflow_id})
        return await self.get_workflow(tx, workflow_id) if updated.rowcount == 1 else None

    async def resumable(self, tx: Tx) -> list[WorkflowRow]:
        return [_workflow_row(r) for r in (await tx.execute(self.q.resumable)).rows]

    @atomic
    async def send_event(
        self, tx: Tx, workflow_id: str, key: str, value: bytes, idempotency_key: str | None
    ) -> bool:
        found = await tx.execute(self.q.workflow_status, {"workflow_id": workflow_id})
        if not found.rows:
            raise WorkflowNotFoundError(
                f"cannot send event {key!r} to workflow {workflow_id!r}: the store has no "
                "such workflow. Start or enqueue it first (an event sent before the "
                "workflow waits for it is kept until it does).",
                workflow_id=workflow_id,
            )
        inserted = await tx.execute(
            self.q.insert_event,
            {
                "workflow_id": workflow_id,
                "key": key,
                "value": value,
                "idempotency_key": idempotency_key,
            },
        )
        if inserted.rowcount == 1:
            await self._notify(tx, event_topic(workflow_id))
        return inserted.rowcount == 1

    async def _notify(self, tx: Tx, topic: str) -> None:
        """Wake waiters of ``topic`` once ``tx`` commits (PostgreSQL also tells other processes)."""
        tx.topics.append(topic)

    async def next_event(self, tx: Tx, workflow_id: str, key: str) -> EventRow | None:
        found = await tx.execute(self.q.next_event, {"workflow_id": workflow_id, "key": key})
        if not found.rows:
            return None
        r = found.rows[0]
        return EventRow(
            event_id=r.id,
            workflow_id=r.workflow_id,
            key=r.key,
            value=bytes(r.value),
            sent_at=r.sent_at,
        )

    @atomic
    async def take_event(
        self, tx: Tx, workflow_id: str, epoch: int, event_id: int, step: StepRow
    ) -> StepRow:
        standing = await self.record_step(tx, workflow_id, epoch, step)
        if standing is not step:
            return standing  # another executor's record: the event stays for nobody else
        consumed = await tx.execute(self.q.consume_event, {"event_id": event_id})
        if consumed.rowcount != 1:
            # Consumed meanwhile (another wait of this workflow for the same
            # key): raising rolls back this record; the wait takes the next.
            raise EventGone(event_id)
        return step

    async def start_workflow(
        self, tx: Tx, new: NewWorkflow, owner: Owner, lease_seconds: float
    ) -> tuple[WorkflowRow, bool]:
        inserted = await tx.execute(
            self.q.insert_workflow, _start_params(new, owner, lease_seconds)
        )
        if inserted.rows:
            return _workflow_row(inserted.rows[0]), True
        row = await self.get_workflow(tx, new.workflow_id)  # it was there already
        assert row is not None
        return row, False

    @atomic
    async def claim_workflow(
        self,
        tx: Tx,
        workflow_id: str,
        expected_epoch: int,
        expected_status: WorkflowStatus,
        owner: Owner,
        lease_seconds: float,
        *,
        rerun_failed: bool,
        recovery: bool = False,
        check_superseded: CheckSteps | None = None,
    ) -> WorkflowRow | None:
        claimed = await tx.execute(
            self.q.claim,
            {
                "workflow_id": workflow_id,
                "epoch": expected_epoch,
                "status": expected_status.value,
                **_owner_params(owner),
                "lease": lease_seconds,
                "keep": int(recovery),
                "add": int(recovery),
            },
        )
        if claimed.rowcount != 1:
            return None
        if rerun_failed:
            await tx.execute(self.q.clear_outcome, {"workflow_id": workflow_id})
            superseded = await tx.execute(self.q.supersede_errors, {"workflow_id": workflow_id})
            if check_superseded is not None:
                # Inside the transaction: a record refused here is left as it was.
                check_superseded([_step_row(r) for r in superseded.rows])
        return await self.get_workflow(tx, workflow_id)

    async def load_steps(self, tx: Tx, workflow_id: str) -> dict[int, StepRow]:
        result = await tx.execute(self.q.live_steps, {"workflow_id": workflow_id})
        return {r.position: _step_row(r) for r in result.rows}

    async def record_step(self, tx: Tx, workflow_id: str, epoch: int, step: StepRow) -> StepRow:
        inserted = await tx.execute(self.q.record_step, _step_params(workflow_id, epoch, step))
        if inserted.rowcount == 1:
            return step
        # Not written: a record already stands there (adopt it: first commit
        # wins, and it may be our own whose acknowledgement was lost), or the
        # fence stopped us.
        standing = await tx.execute(
            self.q.live_step, {"workflow_id": workflow_id, "position": step.position}
        )
        if standing.rows:
            return _step_row(standing.rows[0])
        raise _lost(workflow_id, epoch)

    async def record_step_attempt(
        self, tx: Tx, workflow_id: str, epoch: int, attempt: StepAttemptRow
    ) -> None:
        await tx.execute(
            self.q.record_attempt,
            {
                "workflow_id": workflow_id,
                "epoch": epoch,
                "position": attempt.position,
                "name": attempt.name,
                "attempt": attempt.attempt,
                "started_at": attempt.started_at,
                "finished_at": attempt.finished_at,
                "error_type": attempt.error_type,
                "error_message": attempt.error_message,
            },
        )

    async def finish_workflow(
        self,
        tx: Tx,
        workflow_id: str,
        epoch: int,
        status: WorkflowStatus,
        result: bytes | None = None,
        error: bytes | None = None,
    ) -> bool:
        finished = await tx.execute(
            self.q.finish, _finish_params(workflow_id, epoch, status, result, error)
        )
        return finished.rowcount == 1

    async def get_workflow(self, tx: Tx, workflow_id: str) -> WorkflowRow | None:
        result = await tx.execute(self.q.get_workflow, {"workflow_id": workflow_id})
        return _workflow_row(result.rows[0]) if result.rows else None

    async def step_attempts(self, tx: Tx, workflow_id: str) -> list[StepAttemptRow]:
        result = await tx.execute(self.q.attempts, {"workflow_id": workflow_id})
        return [
            StepAttemptRow(
                position=r.position,
                name=r.name,
                attempt=r.attempt,
                started_at=r.started_at,
                finished_at=r.finished_at,
                error_type=r.error_type,
                error_message=r.error_message,
            )
            for r in result.rows
        ]

    @atomic
    async def renew_leases(
        self, tx: Tx, leases: Mapping[str, int], lease_seconds: float
    ) -> list[str]:
        if not leases:
            return []
        if "renew" in self.q.rows and len(leases) > 1:
            renewed = await tx.execute(
                self.q.rows["renew"],
                {
                    "workflow_id": list(leases),
                    "epoch": list(leases.values()),
                    "lease": float(lease_seconds),
                },
            )
            # One count for all: if one is missing, each owner looks (one read).
            return [] if renewed.rowcount == len(leases) else list(leases)
        missed = []
        for workflow_id, epoch in leases.items():
            renewed = await tx.execute(
                self.q.renew,
                {"workflow_id": workflow_id, "epoch": epoch, "lease": lease_seconds},
            )
            if renewed.rowcount != 1:
                missed.append(workflow_id)
        return missed

    @atomic
    async def record_steps(
        self, tx: Tx, workflow_id: str, epoch: int, steps: Sequence[StepRow]
    ) -> None:
        fenced = await tx.execute(self.q.fence, {"workflow_id": workflow_id, "epoch": epoch})
        if not fenced.rows:
            raise _lost(workflow_id, epoch)
        for step in steps:
            inserted = await tx.execute(self.q.record_step, _step_params(workflow_id, epoch, step))
            if inserted.rowcount != 1:
                # The transaction is rolled back: none of its records stand.
                raise _lost(workflow_id, epoch)

    async def query_workflows(self, tx: Tx, query: WorkflowQuery) -> list[WorkflowRow]:
        w = s.workflows
        light = [c for c in w.c if c.name not in ("args", "result", "error")]
        stmt = sa.select(
            *light,
            sa.null().label("args"),
            sa.null().label("result"),
            sa.null().label("error"),
            self.q.now.label("db_now"),
        )
        if query.statuses is not None:
            stmt = stmt.where(w.c.status.in_([st.value for st in query.statuses]))
        if query.name is not None:
            stmt = stmt.where(w.c.name == query.name)
        if query.since is not None:
            stmt = stmt.where(w.c.created_at >= query.since)
        if query.until is not None:
            stmt = stmt.where(w.c.created_at < query.until)
        stmt = stmt.order_by(w.c.created_at.desc(), w.c.workflow_id)
        if query.limit is not None:
            stmt = stmt.limit(query.limit)
        result = await tx.execute(stmt)
        return [_workflow_row(r) for r in result.rows]

    async def step_history(self, tx: Tx, workflow_id: str) -> list[StepHistoryRow]:
        result = await tx.execute(self.q.history, {"workflow_id": workflow_id})
        return [
            StepHistoryRow(
                position=r.position,
                name=r.name,
                kind=r.kind,
                status=StepStatus(r.status),
                attempt=r.attempt,
                started_at=r.started_at,
                finished_at=r.finished_at,
                payload_bytes=int(r.payload_bytes or 0),
                superseded=bool(r.superseded),
                tx_id=r.tx_id,
                error_type=r.error_type,
                error_message=r.error_message,
            )
            for r in result.rows
        ]

    async def steps_up_to(self, tx: Tx, workflow_id: str, position: int) -> list[StepRow]:
        result = await tx.execute(
            self.q.steps_up_to, {"workflow_id": workflow_id, "position": position}
        )
        return sorted((_step_row(r) for r in result.rows), key=lambda row: row.position)

    @atomic
    async def supersede_from(self, tx: Tx, workflow_id: str, epoch: int, position: int) -> None:
        fenced = await tx.execute(self.q.fence, {"workflow_id": workflow_id, "epoch": epoch})
        if not fenced.rows:
            raise _lost(workflow_id, epoch)
        await tx.execute(
            self.q.supersede_after, {"workflow_id": workflow_id, "position": position - 1}
        )

    @atomic
    async def rewind(self, tx: Tx, workflow_id: str, expected_epoch: int, position: int) -> bool:
        rewound = await tx.execute(
            self.q.rewind, {"workflow_id": workflow_id, "epoch": expected_epoch}
        )
        if rewound.rowcount != 1:
            return False
        await tx.execute(self.q.supersede_after, {"workflow_id": workflow_id, "position": position})
        return True

    @atomic
    async def create_fork(
        self, tx: Tx, new: NewWorkflow, forked_from: str, steps: Sequence[StepRow]
    ) -> bool:
        created = await tx.execute(
            self.q.insert_fork,
            {**_new_params(new), "forked_from": forked_from},
        )
        if created.rowcount != 1:
            return False
        for step in steps:
            params = _step_params(new.workflow_id, 0, step)
            del params["epoch"]
            await tx.execute(self.q.insert_step, params)
        return True

    @atomic
    async def cancel(self, tx: Tx, workflow_id: str) -> WorkflowRow | None:
        cancelled = await tx.execute(self.q.cancel, {"workflow_id": workflow_id})
        if cancelled.rowcount == 1:
            await self._notify(tx, event_topic(workflow_id))
        return await self.get_workflow(tx, workflow_id)

    @atomic
    async def cleanup(
        self, tx: Tx, cutoff: float, statuses: Sequence[WorkflowStatus], dry_run: bool
    ) -> Counts:
        w = s.workflows
        doomed = sa.select(w.c.workflow_id).where(
            w.c.status.in_([st.value for st in statuses if st.finished]),
            w.c.finished_at < cutoff,
        )
        return await self._delete(tx, doomed, None, dry_run)

    @atomic
    async def prune(self, tx: Tx, keep_snapshots: int, dry_run: bool) -> Counts:
        st, w = s.steps, s.workflows
        newer = sa.alias(st, "newer")
        # A snapshot goes when N newer snapshots of its (finished) workflow stand.
        newer_count = (
            sa.select(sa.func.count())
            .select_from(newer)
            .where(
                newer.c.workflow_id == st.c.workflow_id,
                newer.c.kind == "snapshot",
                newer.c.position > st.c.position,
                newer.c.superseded == sa.false(),
            )
            .scalar_subquery()
        )
        finished = sa.select(w.c.workflow_id).where(sa.not_(is_active(w.c.status)))
        old_snapshots = sa.and_(
            st.c.kind == "snapshot",
            st.c.workflow_id.in_(finished),
            newer_count >= keep_snapshots,
        )
        doomed_steps = sa.or_(st.c.superseded == sa.true(), old_snapshots)
        return await self._delete(tx, None, doomed_steps, dry_run)

    async def _delete(
        self,
        tx: Tx,
        workflows: sa.Select[Any] | None,
        steps: sa.ColumnElement[bool] | None,
        dry_run: bool,
    ) -> Counts:
        w, st, at = s.workflows, s.steps, s.step_attempts
        step_where = st.c.workflow_id.in_(workflows) if workflows is not None else steps
        assert step_where is not None
        count = sa.select(sa.func.count())
        counts = Counts(
            workflows=(
                (await tx.execute(count.select_from(workflows.subquery()))).rows[0][0]
                if workflows is not None
                else 0
            ),
            steps=(await tx.execute(count.select_from(st).where(step_where))).rows[0][0],
            attempts=(
                (
                    await tx.execute(count.select_from(at).where(at.c.workflow_id.in_(workflows)))
                ).rows[0][0]
                if workflows is not None
                else 0
            ),
        )
        if not dry_run:
            await tx.execute(sa.delete(st).where(step_where))
            if workflows is not None:
                await tx.execute(sa.delete(at).where(at.c.workflow_id.in_(workflows)))
                await tx.execute(sa.delete(s.events).where(s.events.c.workflow_id.in_(workflows)))
                await tx.execute(sa.delete(w).where(w.c.workflow_id.in_(workflows)))
        return counts

    async def stats(self, tx: Tx) -> dict[str, Any]:
        by_status = {r[0]: int(r[1]) for r in (await tx.execute(self.q.count_by_status)).rows}
        steps, mean, longest = (await tx.execute(self.q.count_live_steps)).rows[0]
        return {
            "by_status": by_status,
            "steps": int(steps),
            "step_seconds_mean": float(mean) if mean is not None else None,
            "step_seconds_max": float(longest) if longest is not None else None,
            "payload_bytes": int((await tx.execute(self.q.payload_bytes)).rows[0][0])
            + int((await tx.execute(self.q.workflow_bytes)).rows[0][0]),
        }

    async def now(self, tx: Tx) -> float:
        result = await tx.execute(self.q.clock)
        return float(result.rows[0].db_now)


class _AsyncFromSync(contextlib.AbstractAsyncContextManager[Tx]):
    """A sync transaction used from async code, for an embedded database."""

    def __init__(self, sync: contextlib.AbstractContextManager[Tx]) -> None:
        self._sync = sync

    async def __aenter__(self) -> Tx:
        return self._sync.__enter__()

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        return self._sync.__exit__(*exc_info)


def _lost(workflow_id: str, epoch: int) -> OwnershipLostError:
    return OwnershipLostError(
        f"workflow {workflow_id!r} was taken over by another executor, or cancelled "
        f"(its fencing epoch is no longer {epoch}); this executor stops writing to it",
        workflow_id=workflow_id,
        epoch=epoch,
    )


def _step_params(workflow_id: str, epoch: int, step: StepRow) -> dict[str, Any]:
    return {
        "workflow_id": workflow_id,
        "epoch": epoch,
        "position": step.position,
        "name": step.name,
        "status": step.status.value,
        "output": step.output,
        "attempt": step.attempt,
        # Floats, also from a clock that gives whole numbers: a column's values
        # go in one array when records share a statement.
        "started_at": float(step.started_at),
        "finished_at": float(step.finished_at),
        "kind": step.kind,
        "tx_id": step.tx_id,
        "error_type": step.error_type,
        "error_message": step.error_message,
        "code_hash": step.code_hash,
    }


def _start_params(new: NewWorkflow, owner: Owner, lease_seconds: float) -> dict[str, Any]:
    return {
        **_new_params(new),
        **_owner_params(owner),
        "lease": float(lease_seconds),
        "parent_id": new.parent_id,
    }


def _finish_params(
    workflow_id: str,
    epoch: int,
    status: WorkflowStatus,
    result: bytes | None = None,
    error: bytes | None = None,
) -> dict[str, Any]:
    return {
        "workflow_id": workflow_id,
        "epoch": epoch,
        "status": status.value,
        "result": result,
        "error": error,
    }


def _new_params(new: NewWorkflow) -> dict[str, Any]:
    return {
        "workflow_id": new.workflow_id,
        "name": new.name,
        "args_fingerprint": new.args_fingerprint,
        "args": new.args,
    }


def _owner_params(owner: Owner) -> dict[str, Any]:
    return {"owner_host": owner.host, "owner_pid": owner.pid, "owner_started": owner.started}


def _workflow_row(r: Any) -> WorkflowRow:
    owner = (
        Owner(host=r.owner_host, pid=r.owner_pid, started=r.owner_started or "")
        if r.owner_host is not None
        else None
    )
    return WorkflowRow(
        workflow_id=r.workflow_id,
        name=r.name,
        status=WorkflowStatus(r.status),
        args_fingerprint=r.args_fingerprint,
        args=_bytes(r.args),
        result=_bytes(r.result),
        error=_bytes(r.error),
        attempts=r.attempts,
        epoch=r.epoch,
        owner=owner,
        lease_expires_at=r.lease_expires_at,
        parent_id=r.parent_id,
        created_at=r.created_at,
        updated_at=r.updated_at,
        finished_at=r.finished_at,
        db_now=float(r.db_now),
        forked_from=r.forked_from,
        queue=r.queue,
        priority=r.priority,
        wake_at=r.wake_at,
        waiting_for=r.waiting_for,
        recoveries=r.recoveries,
        event_arrived=bool(getattr(r, "event_arrived", False)),
    )


def _step_row(r: Any) -> StepRow:
    return StepRow(
        position=r.position,
        name=r.name,
        status=StepStatus(r.status),
        output=_bytes(r.output) or b"",
        attempt=r.attempt,
        started_at=r.started_at,
        finished_at=r.finished_at,
        kind=r.kind,
        tx_id=r.tx_id,
        error_type=r.error_type,
        error_message=r.error_message,
        code_hash=r.code_hash,
    )


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


class _Shape(NamedTuple):
    """How writes of one kind share a statement: see ``SqlBackend._write_rows``."""

    stmt: str
    """Its key in ``Statements.rows``."""
    params: Callable[..., dict[str, Any]]
    """A write's row, from the write's arguments."""
    fits: Callable[..., bool]
    key: Callable[..., Hashable]
    row_key: Callable[[Any], Hashable]
    """The key of a row the statement returns."""
    outcome: Callable[[tuple[Any, ...], Any], Any]
    """What the one-row form would have returned, from the write's arguments and row."""


def _small(*payloads: bytes | None) -> bool:
    return sum(len(p) for p in payloads if p is not None) <= SHARED_RECORD_BYTES


_ROWS: dict[object, _Shape] = {
    SqlBackend.start_workflow: _Shape(
        "start_workflow",
        _start_params,
        fits=lambda new, owner, lease: _small(new.args),
        key=lambda new, owner, lease: new.workflow_id,
        row_key=lambda r: r.workflow_id,
        outcome=lambda args, r: (_workflow_row(r), True),
    ),
    SqlBackend.record_step: _Shape(
        "record_step",
        _step_params,
        fits=lambda workflow_id, epoch, step: _small(step.output),
        key=lambda workflow_id, epoch, step: (workflow_id, step.position),
        row_key=lambda r: (r.workflow_id, r.position),
        outcome=lambda args, r: args[2],
    ),
    SqlBackend.finish_workflow: _Shape(
        "finish",
        _finish_params,
        fits=lambda workflow_id, epoch, status, result=None, error=None: _small(result, error),
        key=lambda workflow_id, *_, **__: workflow_id,
        row_key=lambda r: r.workflow_id,
        outcome=lambda args, r: True,
    ),
}
