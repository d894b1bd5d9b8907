"""The backend as one pipeline sees it: awaited on the async path, blocking on the sync one."""

from __future__ import annotations

from durable._clock import Clock
from durable._owner import current_owner
from durable.backends._base import (
    Backend,
    NewWorkflow,
    StepAttemptRow,
    StepRow,
    WorkflowRow,
    WorkflowStatus,
)


class Port:
    """The backend as one pipeline sees it.

    Awaited on the async path, called directly (blocking) on the sync one.
    """

    __slots__ = ("_backend", "_clock", "sync")

    def __init__(self, backend: Backend, clock: Clock, sync: bool) -> None:
        self._backend = backend
        self._clock = clock
        self.sync = sync

    async def start_workflow(self, new: NewWorkflow, lease: float) -> tuple[WorkflowRow, bool]:
        b = self._backend
        owner = current_owner()
        if self.sync:
            return b.start_workflow(new, owner, lease)
        return await b.astart_workflow(new, owner, lease)

    async def claim_workflow(
        self,
        workflow_id: str,
        epoch: int,
        status: WorkflowStatus,
        lease: float,
        rerun_failed: bool,
    ) -> WorkflowRow | None:
        b, owner = self._backend, current_owner()
        args = (workflow_id, epoch, status, owner, lease)
        if self.sync:
            return b.claim_workflow(*args, rerun_failed=rerun_failed)
        return await b.aclaim_workflow(*args, rerun_failed=rerun_failed)

    async def get_workflow(self, workflow_id: str) -> WorkflowRow | None:
        if self.sync:
            return self._backend.get_workflow(workflow_id)
        return await self._backend.aget_workflow(workflow_id)

    async def load_steps(self, workflow_id: str) -> dict[int, StepRow]:
        if self.sync:
            return self._backend.load_steps(workflow_id)
        return await self._backend.aload_steps(workflow_id)

    async def record_step(self, workflow_id: str, epoch: int, step: StepRow) -> StepRow:
        if self.sync:
            return self._backend.record_step(workflow_id, epoch, step)
        return await self._backend.arecord_step(workflow_id, epoch, step)

    async def record_steps(self, workflow_id: str, epoch: int, steps: list[StepRow]) -> None:
        if self.sync:
            self._backend.record_steps(workflow_id, epoch, steps)
        else:
            await self._backend.arecord_steps(workflow_id, epoch, steps)

    async def supersede_from(self, workflow_id: str, epoch: int, position: int) -> None:
        if self.sync:
            self._backend.supersede_from(workflow_id, epoch, position)
        else:
            await self._backend.asupersede_from(workflow_id, epoch, position)

    async def record_step_attempt(
        self, workflow_id: str, epoch: int, attempt: StepAttemptRow
    ) -> None:
        if self.sync:
            self._backend.record_step_attempt(workflow_id, epoch, attempt)
        else:
            await self._backend.arecord_step_attempt(workflow_id, epoch, attempt)

    async def finish_workflow(
        self,
        workflow_id: str,
        epoch: int,
        status: WorkflowStatus,
        result: bytes | None = None,
        error: bytes | None = None,
    ) -> bool:
        b = self._backend
        if self.sync:
            return b.finish_workflow(workflow_id, epoch, status, result=result, error=error)
        return await b.afinish_workflow(workflow_id, epoch, status, result=result, error=error)

    async def sleep(self, seconds: float) -> None:
        if self.sync:
            self._clock.sleep(seconds)
        else:
            await self._clock.asleep(seconds)
