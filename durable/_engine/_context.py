"""What is running right now: the active runtime and the workflow context."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from durable._engine._core import Engine
    from durable._engine._runtime import Runtime
    from durable._records import StepRow, WorkflowRow
    from durable._session import Session
    from durable._transaction import Transaction
    from durable.backends._notify import Subscription


@dataclass(eq=False)
class WorkflowContext:
    """The state of one workflow execution, shared by every task it spawns.

    Positions are handed out when a step is *called*, so the order of
    ``asyncio.gather(step_a(), step_b())`` is the order of the calls, on the
    first run and on every replay alike.
    """

    engine: Engine
    session: Session
    workflow_id: str
    name: str
    epoch: int
    attempt: int
    recorded: dict[int, StepRow]
    next_position: int = field(default=1)
    calls: dict[str, int] = field(default_factory=dict)
    """How many times each step name was called so far (for crash targeting)."""
    nth: dict[int, int] = field(default_factory=dict)
    """For each position, which call of its step name it is (1-based)."""
    ancestors: tuple[str, ...] = ()
    on_code_change: str | None = None
    """The workflow's policy for records written by code that has changed since."""
    """Ids of the workflows this one is a child of, nearest first."""
    code_hashes: dict[int, tuple[object, str]] = field(default_factory=dict)
    """Code fingerprints of the steps called so far (a loop hashes its step once)."""
    snapshots: dict[str, int] = field(default_factory=dict)
    """Snapshot names reached in this execution, with their positions."""
    tx: Transaction | None = None
    """The innermost open transaction block, whose records are held back."""
    waits: int = 0
    """Durable waits in progress (the workflow shows as waiting while any is)."""
    stop_hint: Subscription | None = None
    """Woken by a cancel (or a lost lease, or an event) of this workflow: look
    whether it still owns itself before the next step, child or wait."""

    def allocate(self, name: str) -> int:
        position = self.next_position
        self.next_position += 1
        self.calls[name] = self.nth[position] = self.calls.get(name, 0) + 1
        return position


SiteKind = Literal["workflow_start", "before_step", "after_step", "after_commit"]


@dataclass(frozen=True)
class Site:
    """A point in a workflow's execution where a crash can be injected.

    ``workflow_start``: the workflow's row is committed (created, resumed or
    retried), its body has not started. ``before_step``: a step is about to
    run (it was not replayed). ``after_step``: its body returned or raised,
    its record is not committed. ``after_commit``: its record is committed.
    """

    kind: SiteKind
    workflow_id: str
    workflow_name: str
    position: int | None = None
    step: str | None = None
    nth: int | None = None


@dataclass(frozen=True, eq=False)
class InStep:
    """Marks code running inside a step body, where steps are plain calls."""

    workflow: WorkflowContext
    position: int


current: ContextVar[WorkflowContext | InStep | None] = ContextVar(
    "durable_current_workflow", default=None
)

active_runtime: ContextVar[Runtime | None] = ContextVar("durable_active_runtime", default=None)

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


next_call: ContextVar[CallOptions | None] = ContextVar("durable_next_call", default=None)
