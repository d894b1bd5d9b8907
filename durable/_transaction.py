"""``durable.transaction()``: a group of steps recorded atomically, with compensations."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType
from typing import Any

from durable._aio import drive
from durable._engine import _context
from durable._engine._core import HeldRecords
from durable._errors import ConfigurationError, NotInWorkflowError
from durable._records import StepKind, StepRow, rolled_back
from durable._retry import RetryPolicy
from durable._specs import StepSpec


class Transaction:
    """A block of a workflow whose step records commit together, or not at all.

    Use ``async with durable.transaction() as tx:`` in an async workflow and
    ``with durable.transaction() as tx:`` in a sync one. The records of the
    steps called inside are held back and committed in one database
    transaction when the block exits normally. If the block raises, none of
    them is kept and the compensations registered with :meth:`on_rollback`
    run, newest first, each recorded as a step so that a crash while
    compensating never runs a finished compensation twice; the exception then
    propagates. If the process crashes inside the block, nothing of it was
    recorded, so the resumed run executes the whole block again.

    A block that rolls back with compensations to run keeps its records first,
    marked rolled back (``transaction_id`` starting with ``rolled-back:`` in
    the history): a crash while compensating resumes with the same values, and
    runs each remaining compensation once. Calling a failed workflow again (a
    new attempt) supersedes those records and every compensation record, so
    the block and its compensations run again for the new attempt's values.

    A transaction inside another is a savepoint: if it raises, its own records
    are dropped and its compensations run; if it ends normally, its records
    and compensations join the enclosing transaction.

    Example::

        async with durable.transaction() as tx:
            booking = await reserve_seat(show)
            tx.on_rollback(release_seat, booking)
            await charge_card(order)      # raises: release_seat runs, nothing kept
    """

    def __init__(self) -> None:
        self._ctx: _context.WorkflowContext | None = None
        self._parent: HeldRecords | None = None
        self._rows: list[StepRow] = []
        self._compensations: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []
        self.tx_id = _unique()
        """Recorded with each step committed by this transaction (the outermost one's)."""

    def on_rollback(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Run ``fn(*args, **kwargs)`` (sync or async) if the block raises."""
        if not callable(fn):
            raise ConfigurationError(f"on_rollback takes a callable, not {fn!r}")
        self._compensations.append((fn, args, kwargs))

    def hold(self, row: StepRow) -> None:
        """Keep a step record back until the outermost transaction commits."""
        self._rows.append(row)

    # Entering and leaving ---------------------------------------------------

    def _enter(self) -> _context.WorkflowContext:
        ctx = _context.current.get()
        if isinstance(ctx, _context.InStep):
            raise NotInWorkflowError(
                "durable.transaction() was used inside a step; use it in the workflow's "
                "body, around the steps it should group"
            )
        if ctx is None:
            raise NotInWorkflowError(
                "durable.transaction() was used outside a workflow; it groups the step "
                "records of a workflow, so use it inside a @durable.durable_workflow function"
            )
        self._ctx, self._parent = ctx, ctx.tx
        if self._parent is not None:
            self.tx_id = self._parent.tx_id
        ctx.tx = self
        return ctx

    def __enter__(self) -> Transaction:
        self._enter()
        return self

    async def __aenter__(self) -> Transaction:
        self._enter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ctx = self._leave()
        drive(self._finish(ctx, ctx.engine.session(sync=True), exc))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ctx = self._leave()
        await self._finish(ctx, ctx.session, exc)

    def _leave(self) -> _context.WorkflowContext:
        ctx = self._ctx
        assert ctx is not None, "transaction exited without entering"
        ctx.tx = self._parent
        return ctx

    async def _finish(
        self, ctx: _context.WorkflowContext, session: Any, exc: BaseException | None
    ) -> None:
        if exc is None:
            if self._parent is not None:
                # The outer block commits (or compensates) all of it.
                for row in self._rows:
                    self._parent.hold(row)
                for fn, args, kwargs in self._compensations:
                    self._parent.on_rollback(fn, *args, **kwargs)
                return
            if self._rows:
                await session.run(
                    session.backend.record_steps, ctx.workflow_id, ctx.epoch, self._rows
                )
                for row in self._rows:
                    ctx.engine.site("after_commit", ctx, row.position, row.name)
            return
        if not isinstance(exc, Exception):
            return  # a crash: nothing was recorded, nothing else may run
        if not self._compensations:
            return
        # The block's records are kept, marked rolled back, before anything is
        # compensated: a crash while compensating resumes with the same values
        # (the block replays and raises again), so each compensation runs for
        # them, and only once. A new attempt of the workflow supersedes them.
        kept = [replace(row, tx_id=rolled_back(row.tx_id or self.tx_id)) for row in self._rows]
        if self._parent is not None:
            for row in kept:
                self._parent.hold(row)
        elif kept:
            await session.run(session.backend.record_steps, ctx.workflow_id, ctx.epoch, kept)
        for fn, args, kwargs in reversed(self._compensations):
            await self._compensate(ctx, session, fn, args, kwargs)

    async def _compensate(
        self,
        ctx: _context.WorkflowContext,
        session: Any,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        is_async = inspect.iscoroutinefunction(fn)
        if is_async and session.sync:
            raise ConfigurationError(
                f"the compensation {_name(fn)} is async but the transaction was left "
                "with a plain `with`; use `async with durable.transaction()`"
            )
        name = _name(fn)
        spec = StepSpec(
            name=name, is_async=is_async, retry=RetryPolicy(), kind=StepKind.COMPENSATION
        )
        position = ctx.allocate(name)
        await ctx.engine.run_step(ctx, session, spec, position, lambda: fn(*args, **kwargs))


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def transaction() -> Transaction:
    """Group the steps of a block so their records commit atomically.

    See :class:`Transaction`. Outside a workflow, entering it raises
    NotInWorkflowError.

    Example::

        async with durable.transaction() as tx:
            a = await debit(account, 10)
            tx.on_rollback(credit, account, 10)
            b = await credit(other, 10)
    """
    return Transaction()


def _unique() -> str:
    import uuid  # with platform: not loaded until the first one

    return uuid.uuid4().hex
