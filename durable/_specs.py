"""What the decorators hand to the runtime: the specs of steps and workflows, and a call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from durable._records import StepKind
from durable._retry import RetryPolicy

if TYPE_CHECKING:
    from durable._engine import _context
    from durable._records import WorkflowRow

OnRunning = Literal["wait", "raise"]
OnCodeChange = Literal["reuse", "rerun", "error"]


@dataclass(frozen=True)
class StepSpec:
    """What the step decorator knows of a step."""

    name: str
    is_async: bool
    retry: RetryPolicy
    kind: StepKind = StepKind.STEP
    function: Callable[..., Any] | None = None
    """The decorated function, whose code is fingerprinted with each record."""
    on_code_change: OnCodeChange | None = None


@dataclass(frozen=True)
class WorkflowSpec:
    """What the workflow decorator knows of a workflow."""

    name: str
    is_async: bool
    on_running: OnRunning
    on_code_change: OnCodeChange | None = None


@dataclass(frozen=True)
class Invocation:
    """One call of a workflow, as the decorator hands it to the runtime."""

    spec: WorkflowSpec
    call: Callable[[], Any]
    args_fingerprint: str
    args_body: bytes
    """The arguments, pickled (sealed once the workflow id is known)."""
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    requested_id: str | None
    parent: _context.WorkflowContext | None
    position: int | None
    never_wait: bool = False
    """Never wait for another live owner (see ``_context.CallOptions``)."""
    preclaimed: WorkflowRow | None = None
    """Claimed already by a worker (see ``_context.CallOptions``)."""
    hold: object | None = None
    """The worker's in-process hold on it (see ``_context.CallOptions``)."""


@dataclass(frozen=True)
class MissingInstance:
    """Stored in place of a method's instance that could not be pickled."""

    type_name: str
