"""What the contract's checks share: the owners they claim as, a driven store, a step record."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from durable.backends import Backend, NewWorkflow, Owner, Parts, StepRow, StepStatus, WorkflowRow

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

OWNER = Owner(host="contract-host", pid=4242, started="1")
"""The process every check claims as (another host: no liveness check applies)."""
OTHER = Owner(host="other-host", pid=7, started="2")
LEASE = 60.0


def checks(*operations: str) -> Callable[[F], F]:
    """Name the operations a check exercises (``test_every_operation_is_checked`` sums them)."""

    def mark(test: F) -> F:
        test.operations = operations  # type: ignore[attr-defined]
        return test

    return mark


class Store:
    """A backend as one check drives it: each operation through one path, sync or async."""

    def __init__(self, backend: Backend, mode: str, loop: asyncio.AbstractEventLoop) -> None:
        self.backend, self.mode, self._loop = backend, mode, loop

    def __call__(
        self, op: Callable[..., Coroutine[Any, Any, T]], /, *args: Any, **kwargs: Any
    ) -> T:
        """Run ``op`` as the engine would, on this check's path."""
        if self.mode == "sync":
            return self.backend.run_sync(op, *args, **kwargs)
        return self._loop.run_until_complete(self.backend.run_async(op, *args, **kwargs))

    def start(self, workflow_id: str, name: str = "contract.wf") -> WorkflowRow:
        """A running workflow owned by :data:`OWNER` (epoch 1)."""
        new = NewWorkflow(workflow_id, name, f"fp-{workflow_id}", b"args", None)
        row, created = self(self.backend.start_workflow, new, OWNER, LEASE)
        assert created, f"{workflow_id} existed already"
        return row

    def row(self, workflow_id: str) -> WorkflowRow:
        """The stored row of a workflow that must exist."""
        found = self(self.backend.get_workflow, workflow_id)
        assert found is not None, f"no workflow {workflow_id!r}"
        return found


def step(position: int, output: bytes | Parts = b"out", *, status: StepStatus = StepStatus.SUCCESS,
         kind: str = "step") -> StepRow:  # fmt: skip
    """A step record as the engine writes one."""
    return StepRow(position, f"step{position}", status, output, 1, 1.0, 2.0, kind=kind)
