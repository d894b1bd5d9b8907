"""The backend as one pipeline sees it: awaited on the async path, blocking on the sync one."""

from __future__ import annotations

from durable._clock import Clock
from durable._owner import current_owner
from durable._records import (
    CheckSteps,
    EventRow,
    NewWorkflow,
    StepAttemptRow,
    StepRow,
    WorkflowRow,
    WorkflowStatus,
)
from durable.backends._base import Backend
from durable.backends._notify import Subscription


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
        recovery: bool = False,
        check_superseded: CheckSteps | None = None,
    ) -> WorkflowRow | None:
        b, owner = self._backend, current_owner()
        args = (workflow_id, epoch, status, owner, lease)
        if self.sync:
            return b.claim_workflow(
                *args,
                rerun_failed=rerun_failed,
                recovery=recovery,
                check_superseded=check_superseded,
            )
        return await b.aclaim_workflow(
            *args, rerun_failed=rerun_failed, recovery=recovery, check_superseded=check_superseded
        )

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

    async def set_waiting(
        self,
        workflow_id: str,
        epoch: int,
        wake_at: float | None,
        waiting_for: str | None,
        suspend: bool,
    ) -> bool:
        b, args = self._backend, (workflow_id, epoch, wake_at, waiting_for, suspend)
        if self.sync:
            return b.set_waiting(*args)
        return await b.aset_waiting(*args)

    async def set_running(self, workflow_id: str, epoch: int) -> bool:
        if self.sync:
            return self._backend.set_running(workflow_id, epoch)
        return await self._backend.aset_running(workflow_id, epoch)

    async def owns(self, workflow_id: str, epoch: int) -> bool:
        if self.sync:
            return self._backend.owns(workflow_id, epoch)
        return await self._backend.aowns(workflow_id, epoch)

    async def quarantine(self, workflow_id: str, epoch: int) -> bool:
        if self.sync:
            return self._backend.quarantine(workflow_id, epoch)
        return await self._backend.aquarantine(workflow_id, epoch)

    async def enqueue_workflow(
        self, new: NewWorkflow, queue: str, priority: int
    ) -> tuple[WorkflowRow, bool]:
        if self.sync:
            return self._backend.enqueue_workflow(new, queue, priority)
        return await self._backend.aenqueue_workflow(new, queue, priority)

    async def send_event(
        self, workflow_id: str, key: str, value: bytes, idempotency_key: str | None
    ) -> bool:
        b, args = self._backend, (workflow_id, key, value, idempotency_key)
        if self.sync:
            return b.send_event(*args)
        return await b.asend_event(*args)

    async def next_event(self, workflow_id: str, key: str) -> EventRow | None:
        if self.sync:
            return self._backend.next_event(workflow_id, key)
        return await self._backend.anext_event(workflow_id, key)

    async def take_event(
        self, workflow_id: str, epoch: int, event_id: int, step: StepRow
    ) -> StepRow:
        if self.sync:
            return self._backend.take_event(workflow_id, epoch, event_id, step)
        return await self._backend.atake_event(workflow_id, epoch, event_id, step)

    async def wait_for(self, subscription: Subscription, seconds: float) -> bool:
        """Wait up to ``seconds`` (real time) for a notification; True if one came."""
        if self.sync:
            return subscription.wait(seconds)
        return await subscription.await_(seconds)

    async def sleep(self, seconds: float) -> None:
        if self.sync:
            self._clock.sleep(seconds)
        else:
            await self._clock.asleep(seconds)
