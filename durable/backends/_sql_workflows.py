"""Operations on workflow rows: start, claim, finish, leases, waits, cancel, queries."""

from __future__ import annotations

from collections.abc import Mapping

from durable._records import (
    CheckSteps,
    NewWorkflow,
    Owner,
    WorkflowQuery,
    WorkflowRow,
    WorkflowStatus,
)
from durable.backends._base import atomic
from durable.backends._notify import DUE_TOPIC, event_topic
from durable.backends._sql_ops import SqlOps
from durable.backends._sql_rows import (
    finish_params,
    owner_params,
    start_params,
    started_row,
    workflow_row,
)
from durable.backends._tx import Tx


class WorkflowOps(SqlOps):
    """Operations on workflow rows."""

    async def start_workflow(
        self, tx: Tx, new: NewWorkflow, owner: Owner, lease_seconds: float
    ) -> tuple[WorkflowRow, bool]:
        inserted = await tx.execute(self.q.insert_workflow, start_params(new, owner, lease_seconds))
        if inserted.rows:
            return started_row(new, owner, inserted.rows[0]), True
        row = await self.get_workflow(tx, new.workflow_id)  # it was there already
        assert row is not None
        return row, False

    @atomic
    async def claim_workflow(
        self,
        tx: Tx,
        workflow_id: str,
        expected_epoch: int,
        expected_status: WorkflowStatus,
        owner: Owner,
        lease_seconds: float,
        *,
        rerun_failed: bool,
        recovery: bool = False,
        check_superseded: CheckSteps | None = None,
    ) -> WorkflowRow | None:
        claimed = await tx.execute(
            self.q.claim,
            {
                "workflow_id": workflow_id,
                "epoch": expected_epoch,
                "status": expected_status.value,
                **owner_params(owner),
                "lease": lease_seconds,
                "keep": int(recovery),
                "add": int(recovery),
            },
        )
        if claimed.rowcount != 1:
            return None
        if rerun_failed:
            await tx.execute(self.q.clear_outcome, {"workflow_id": workflow_id})
            superseded = await tx.execute(self.q.supersede_errors, {"workflow_id": workflow_id})
            if check_superseded is not None:
                # Inside the transaction: a record refused here is left as it was.
                check_superseded([self._step_row(r) for r in superseded.rows])
        return await self.get_workflow(tx, workflow_id)

    async def finish_workflow(
        self,
        tx: Tx,
        workflow_id: str,
        epoch: int,
        status: WorkflowStatus,
        result: bytes | None = None,
        error: bytes | None = None,
    ) -> bool:
        finished = await tx.execute(
            self.q.finish, finish_params(workflow_id, epoch, status, result, error)
        )
        return finished.rowcount == 1

    @atomic
    async def renew_leases(
        self, tx: Tx, leases: Mapping[str, int], lease_seconds: float
    ) -> list[str]:
        if not leases:
            return []
        if "renew" in self.q.rows and len(leases) > 1:
            renewed = await tx.execute(
                self.q.rows["renew"],
                {
                    "workflow_id": list(leases),
                    "epoch": list(leases.values()),
                    "lease": float(lease_seconds),
                },
            )
            # One count for all: if one is missing, each owner looks (one read).
            return [] if renewed.rowcount == len(leases) else list(leases)
        missed = []
        for workflow_id, epoch in leases.items():
            renewed = await tx.execute(
                self.q.renew,
                {"workflow_id": workflow_id, "epoch": epoch, "lease": lease_seconds},
            )
            if renewed.rowcount != 1:
                missed.append(workflow_id)
        return missed

    async def set_waiting(
        self,
        tx: Tx,
        workflow_id: str,
        epoch: int,
        wake_at: float | None,
        waiting_for: str | None,
        suspend: bool,
    ) -> bool:
        updated = await tx.execute(
            self.q.suspend if suspend else self.q.set_waiting,
            {
                "workflow_id": workflow_id,
                "epoch": epoch,
                "wake_at": wake_at,
                "waiting_for": waiting_for,
            },
        )
        if suspend and waiting_for is not None and updated.rowcount == 1:
            # Its event may have come since the workflow last looked, its
            # sender finding it not yet suspended: then nobody else wakes the workers.
            params = {"workflow_id": workflow_id, "key": waiting_for}
            if (await tx.execute(self.q.next_event, params)).rows:
                await self._notify(tx, DUE_TOPIC)
        return updated.rowcount == 1

    async def set_deadline(
        self, tx: Tx, workflow_id: str, epoch: int, deadline: float | None
    ) -> bool:
        updated = await tx.execute(
            self.q.set_deadline, {"workflow_id": workflow_id, "epoch": epoch, "deadline": deadline}
        )
        return updated.rowcount == 1

    async def set_running(self, tx: Tx, workflow_id: str, epoch: int) -> bool:
        return await self._update_fenced(tx, self.q.set_running, workflow_id, epoch)

    async def release_workflow(self, tx: Tx, workflow_id: str, epoch: int) -> bool:
        return await self._update_fenced(tx, self.q.release, workflow_id, epoch)

    async def requeue_workflow(
        self, tx: Tx, workflow_id: str, epoch: int, not_before: float | None = None
    ) -> bool:
        return await self._update_fenced(
            tx, self.q.requeue, workflow_id, epoch, not_before=not_before
        )

    async def quarantine(self, tx: Tx, workflow_id: str, epoch: int) -> bool:
        return await self._update_fenced(tx, self.q.quarantine, workflow_id, epoch)

    async def owns(self, tx: Tx, workflow_id: str, epoch: int) -> bool:
        found = await tx.execute(self.q.fence, {"workflow_id": workflow_id, "epoch": epoch})
        return bool(found.rows)

    @atomic
    @atomic
    async def reopen(self, tx: Tx, workflow_id: str) -> WorkflowRow | None:
        updated = await tx.execute(self.q.reopen, {"workflow_id": workflow_id})
        if updated.rowcount != 1:
            return None
        for child in await self._descendants(tx, workflow_id, WorkflowStatus.CANCELLED):
            await tx.execute(self.q.reopen, {"workflow_id": child})
        return await self.get_workflow(tx, workflow_id)

    async def _descendants(self, tx: Tx, workflow_id: str, *statuses: WorkflowStatus) -> list[str]:
        """The workflow's children, theirs and so on, of these statuses (breadth first)."""
        wanted = {status.value for status in statuses}
        found: list[str] = []
        frontier = [workflow_id]
        while frontier:
            rows = (await tx.execute(self.q.children(frontier))).rows
            frontier = [r.workflow_id for r in rows]
            found += [r.workflow_id for r in rows if r.status in wanted]
        return found

    async def resumable(self, tx: Tx) -> list[WorkflowRow]:
        return [workflow_row(r) for r in (await tx.execute(self.q.resumable)).rows]

    @atomic
    async def cancel(self, tx: Tx, workflow_id: str) -> WorkflowRow | None:
        cancelled = await tx.execute(self.q.cancel, {"workflow_id": workflow_id})
        if cancelled.rowcount == 1:
            await self._notify(tx, event_topic(workflow_id))
            active = [st for st in WorkflowStatus if st.active]
            for child in await self._descendants(tx, workflow_id, *active):
                await tx.execute(self.q.cancel, {"workflow_id": child})
                await self._notify(tx, event_topic(child))
        return await self.get_workflow(tx, workflow_id)

    async def query_workflows(self, tx: Tx, query: WorkflowQuery) -> list[WorkflowRow]:
        stmt = self.q.per_call.workflows(query)
        result = await tx.execute(stmt)
        return [workflow_row(r) for r in result.rows]
