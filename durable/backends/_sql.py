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
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, ParamSpec, TypeVar

from durable._aio import drive
from durable.backends._base import Operation, Write, atomic, is_atomic, outcome
from durable.backends._fence import Fence
from durable.backends._group_commit import SHARED_RECORD_BYTES
from durable.backends._sql_queue_control import QueueControlOps
from durable.backends._sql_queues import QueueOps
from durable.backends._sql_rows import finish_params, start_params, step_params, workflow_row
from durable.backends._sql_schedules import ScheduleOps
from durable.backends._sql_sessions import SessionOps
from durable.backends._sql_steps import StepOps
from durable.backends._sql_store import StoreOps
from durable.backends._sql_streams import StreamOps
from durable.backends._sql_workflows import WorkflowOps
from durable.backends._tx import Tx

if TYPE_CHECKING:
    from durable.backends._statements import Statements

P = ParamSpec("P")
T = TypeVar("T")


class SqlBackend(
    WorkflowOps, StepOps, QueueOps, QueueControlOps, StreamOps, SessionOps, ScheduleOps, StoreOps
):
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

    def run_sync(self, op: Operation[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        self.fence.enter()
        try:
            with self._sync_tx(atomic=is_atomic(op)) as tx:
                result = drive(op(tx, *args, **kwargs))
        finally:
            self.fence.leave()
        self._committed(tx)
        return result

    async def run_async(self, op: Operation[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
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
        for action in tx.done:
            action()

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


class _AsyncFromSync(contextlib.AbstractAsyncContextManager[Tx]):
    """A sync transaction used from async code, for an embedded database."""

    def __init__(self, sync: contextlib.AbstractContextManager[Tx]) -> None:
        self._sync = sync

    async def __aenter__(self) -> Tx:
        return self._sync.__enter__()

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        return self._sync.__exit__(*exc_info)


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
    WorkflowOps.start_workflow: _Shape(
        "start_workflow",
        start_params,
        fits=lambda new, owner, lease: _small(new.args),
        key=lambda new, owner, lease: new.workflow_id,
        row_key=lambda r: r.workflow_id,
        outcome=lambda args, r: (workflow_row(r), True),
    ),
    StepOps.record_step: _Shape(
        "record_step",
        step_params,
        fits=lambda workflow_id, epoch, step: _small(step.output),
        key=lambda workflow_id, epoch, step: (workflow_id, step.position),
        row_key=lambda r: (r.workflow_id, r.position),
        outcome=lambda args, r: args[2],
    ),
    WorkflowOps.finish_workflow: _Shape(
        "finish",
        finish_params,
        fits=lambda workflow_id, epoch, status, result=None, error=None: _small(result, error),
        key=lambda workflow_id, *_, **__: workflow_id,
        row_key=lambda r: r.workflow_id,
        outcome=lambda args, r: True,
    ),
}
