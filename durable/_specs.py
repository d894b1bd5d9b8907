"""What the decorators hand to the runtime: the specs of steps and workflows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from durable._records import StepKind
from durable._retry import RetryPolicy

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
    timeout: float | None = None
    """Seconds an attempt may take (an async body is cancelled then)."""
    stream: str | None = None
    """For a generator step: the key of the stream its chunks go to (None: not one)."""


@dataclass(frozen=True)
class WorkflowSpec:
    """What the workflow decorator knows of a workflow."""

    name: str
    is_async: bool
    on_running: OnRunning
    on_code_change: OnCodeChange | None = None
    timeout: float | None = None
    """Seconds a run may take from its first start (``timeout=``), unless the call says."""


@dataclass(frozen=True)
class MissingInstance:
    """Stored in place of a method's instance that could not be pickled."""

    type_name: str
