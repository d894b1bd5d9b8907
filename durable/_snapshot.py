"""``durable.snapshot(name)``: a named point in a workflow's step log."""

from __future__ import annotations

from collections.abc import Awaitable

from durable._aio import here
from durable._caller import called
from durable._engine import _context
from durable._errors import ConfigurationError, NotInWorkflowError
from durable._records import StepKind
from durable.backends._limits import SNAPSHOT_CHARS, check_text


def snapshot(name: str) -> Awaitable[None]:
    """Record a named point in the running workflow, to restore or fork from later.

    In an async workflow ``await`` it; in a sync one just call it. Names are
    unique within a workflow; on replay, reaching a recorded snapshot again
    does nothing. See :meth:`durable.Store.restore` and :meth:`durable.Store.fork`.

    Example::

        await durable.snapshot("before_charge")
        await charge(order)
    """
    check_text(name, "snapshot name", SNAPSHOT_CHARS)
    ctx = _context.current.get()
    if not isinstance(ctx, _context.WorkflowContext):
        raise NotInWorkflowError(
            f"durable.snapshot({name!r}) was called outside a workflow's body; call it in a "
            "function decorated with @durable.durable_workflow (not inside a step)"
        )
    position = ctx.allocate(name)
    recorded = ctx.recorded.get(position)
    if recorded is None:
        clash = next(
            (
                r.position
                for r in ctx.recorded.values()
                if r.kind == StepKind.SNAPSHOT and r.name == name
            ),
            None,
        )
        if clash is None:
            clash = ctx.snapshots.get(name)
        if clash is not None:
            raise ConfigurationError(
                f"snapshot name {name!r} is already used at position {clash} of workflow "
                f"{ctx.workflow_id!r}; snapshot names are unique within a workflow"
            )
    ctx.snapshots[name] = position
    coro = ctx.engine.snapshot(ctx, ctx.session, position, name)
    return here(called(coro, "durable.snapshot"), ctx.session.sync)
