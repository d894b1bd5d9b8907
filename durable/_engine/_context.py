"""What is running right now: the active runtime and the workflow context."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from durable._engine._core import InStep, Site, SiteKind, WorkflowContext
from durable._errors import ConfigurationError, NotInWorkflowError

if TYPE_CHECKING:
    from durable._records import WorkflowRow

__all__ = ["InStep", "Site", "SiteKind", "WorkflowContext"]  # re-exported for their users


current: ContextVar[WorkflowContext | InStep | None] = ContextVar(
    "durable_current_workflow", default=None
)


blocking_a_loop: ContextVar[bool] = ContextVar("durable_blocking_a_loop", default=False)
"""True in the helper thread of a run_sync() that blocks a running event loop."""


@dataclass(frozen=True)
class CallOptions:
    """How the next call of a workflow runs, beyond its own arguments.

    The one channel into a workflow's call form (``wf(...)``, whose signature
    is the user's function's): ``wf.run(..., workflow_id=)`` and recovery set
    it around the call, the decorator takes it at the call's entry (so it
    never reaches the workflow's children) and hands it on in the
    :class:`~durable._specs.Invocation`.
    """

    workflow_id: str | None = None
    never_wait: bool = False
    """Resume only if nobody else runs it; never wait for another live owner
    (recovery and workers: waiting would hold a worker slot idle)."""
    preclaimed: WorkflowRow | None = None
    """The row a worker just claimed from its queue: run it as its owner at
    once, without claiming it again."""
    hold: object | None = None
    """The in-process hold the worker took on that row when it claimed it
    (``Leases.try_hold``): the call runs under it instead of taking its own."""
    timeout: float | None = None
    """``wf.run(..., timeout=)``: this call's timeout, over the decorator's."""


next_call: ContextVar[CallOptions | None] = ContextVar("durable_next_call", default=None)


def calling_workflow(call: str, sync: bool, *, other_form: str, outside: str) -> WorkflowContext:
    """The workflow whose body makes ``call``, refusing a call outside one or in the wrong form.

    ``sync``: whether ``call`` is the blocking form (``publish_sync``...),
    which only a sync workflow may make, as only an async one may await the
    other; ``other_form`` is what to call instead, ``outside`` what to do
    outside a workflow.
    """
    ctx = current.get()
    if not isinstance(ctx, WorkflowContext):
        raise NotInWorkflowError(f"{call} was called outside a workflow's body; {outside}")
    if ctx.session.sync != sync:
        kind = "sync" if ctx.session.sync else "async"
        raise ConfigurationError(
            f"{call} was called in the {kind} workflow {ctx.name!r}; use {other_form} there"
        )
    return ctx
