"""Queues and events: enqueue and claim, send, read and take an event."""

from __future__ import annotations

from collections.abc import Sequence

from durable._errors import WorkflowNotFoundError
from durable._records import (
    EventGone,
    EventRow,
    NewWorkflow,
    Owner,
    StepRow,
    WorkflowRow,
)
from durable.backends._base import atomic
from durable.backends._notify import QUEUE_TOPIC, event_topic
from durable.backends._sql_ops import SqlOps
from durable.backends._sql_rows import (
    new_params,
    owner_params,
    workflow_row,
)
from durable.backends._statements import Tx


class QueueOps(SqlOps):
    """Queues and events."""

    @atomic
    async def enqueue_workflow(
        self,
        tx: Tx,
        new: NewWorkflow,
        queue: str,
        priority: int,
        not_before: float | None = None,
        dedup_id: str | None = None,
    ) -> tuple[WorkflowRow, bool]:
        params = {
            **new_params(new),
            "queue": queue,
            "priority": priority,
            "wake_at": not_before,
            "dedup_id": dedup_id,
        }
        for _ in range(3):
            inserted = await tx.execute(self.q.insert_enqueued, params)
            if inserted.rowcount == 1:
                await self._notify(tx, QUEUE_TOPIC)
            row = await self.get_workflow(tx, new.workflow_id)
            if row is not None:
                return row, inserted.rowcount == 1
            # Not inserted, and no row of this id: its dedup id is pending.
            pending = {"queue": queue, "dedup_id": dedup_id}
            found = await tx.execute(self.q.pending_dedup, pending)
            if found.rows:
                return workflow_row(found.rows[0]), False
            # That one finished meanwhile: the dedup id is free again.
        raise AssertionError(f"enqueue of {new.workflow_id!r}: neither inserted nor found")

    @atomic
    async def claim_queued(
        self,
        tx: Tx,
        owner: Owner,
        lease_seconds: float,
        queues: Sequence[str],
        limit: int,
        queue_limit: int | None,
        now: float | None = None,
    ) -> list[WorkflowRow]:
        if queue_limit is not None:
            await self._lock_queue(tx, queues[0])
            running = await tx.execute(self.q.running_in_queue, {"queue": queues[0]})
            limit = min(limit, queue_limit - int(running.rows[0][0]))
        if limit <= 0:
            return []
        if now is None:
            now = await self.now(tx)
        params = {**owner_params(owner), "lease": lease_seconds, "limit": limit, "ready": now}
        found = await tx.execute(self.q.claim_queued(list(queues)), params)
        claimed = [workflow_row(r) for r in found.rows]
        claimed.sort(key=lambda row: (-row.priority, row.created_at, row.workflow_id))
        return claimed

    @atomic
    async def send_event(
        self, tx: Tx, workflow_id: str, key: str, value: bytes, idempotency_key: str | None
    ) -> bool:
        found = await tx.execute(self.q.workflow_status, {"workflow_id": workflow_id})
        if not found.rows:
            raise WorkflowNotFoundError(
                f"cannot send event {key!r} to workflow {workflow_id!r}: the store has no "
                "such workflow. Start or enqueue it first (an event sent before the "
                "workflow waits for it is kept until it does).",
                workflow_id=workflow_id,
            )
        inserted = await tx.execute(
            self.q.insert_event,
            {
                "workflow_id": workflow_id,
                "key": key,
                "value": value,
                "idempotency_key": idempotency_key,
            },
        )
        if inserted.rowcount == 1:
            await self._notify(tx, event_topic(workflow_id))
        return inserted.rowcount == 1

    async def next_event(self, tx: Tx, workflow_id: str, key: str) -> EventRow | None:
        found = await tx.execute(self.q.next_event, {"workflow_id": workflow_id, "key": key})
        if not found.rows:
            return None
        r = found.rows[0]
        return EventRow(
            event_id=r.id,
            workflow_id=r.workflow_id,
            key=r.key,
            value=bytes(r.value),
            sent_at=r.sent_at,
        )

    @atomic
    async def take_event(
        self, tx: Tx, workflow_id: str, epoch: int, event_id: int, step: StepRow
    ) -> StepRow:
        standing = await self.record_step(tx, workflow_id, epoch, step)
        if standing is not step:
            return standing  # another executor's record: the event stays for nobody else
        consumed = await tx.execute(self.q.consume_event, {"event_id": event_id})
        if consumed.rowcount != 1:
            # Consumed meanwhile (another wait of this workflow for the same
            # key): raising rolls back this record; the wait takes the next.
            raise EventGone(event_id)
        return step
