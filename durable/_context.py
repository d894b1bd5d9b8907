"""What is running right now: the active runtime and the workflow context."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from durable._runtime import Runtime, _Port
    from durable.backends._base import StepRow


@dataclass(eq=False)
class WorkflowContext:
    """The state of one workflow execution, shared by every task it spawns.

    Positions are handed out when a step is *called*, so the order of
    ``asyncio.gather(step_a(), step_b())`` is the order of the calls, on the
    first run and on every replay alike.
    """

    runtime: Runtime
    port: _Port
    workflow_id: str
    name: str
    epoch: int
    attempt: int
    recorded: dict[int, StepRow]
    next_position: int = field(default=1)

    def allocate(self) -> int:
        position = self.next_position
        self.next_position += 1
        return position


@dataclass(frozen=True, eq=False)
class InStep:
    """Marks code running inside a step body, where steps are plain calls."""

    workflow: WorkflowContext
    position: int


current: ContextVar[WorkflowContext | InStep | None] = ContextVar(
    "durable_current_workflow", default=None
)

active_runtime: ContextVar[Runtime | None] = ContextVar("durable_active_runtime", default=None)

requested_workflow_id: ContextVar[str | None] = ContextVar(
    "durable_requested_workflow_id", default=None
)
