"""Queues and events: enqueue and claim, send, read and take an event."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from durable._errors import WorkflowNotFoundError
from durable._records import (
    EventGone,
    EventRow,
    NewWorkflow,
    Owner,
    Placement,
    QueueRow,
    StepRow,
    WorkflowRow,
    WorkflowStatus,
)
from durable.backends._base import atomic
from durable.backends._notify import DUE_TOPIC, QUEUE_TOPIC, event_topic
from durable.backends._sql_ops import SqlOps
from durable.backends._sql_rows import (
    new_params,
    owner_params,
    workflow_row,
)
from durable.backends._tx import Tx


@dataclass(frozen=True)
class Terms:
    """What one claim may take from one queue: its stored flow control and the claimer's."""

    queue: str
    paused: bool = False
    concurrency: int | None = None
    """Most running across all claimers (the stored limit or the claimer's, the lower)."""
    here: int | None = None
    """Most this claimer may start now (its worker_concurrency less what it runs)."""
    rate: tuple[int, float] | None = None
    per_partition: int | None = None

    @classmethod
    def of(
        cls,
        queue: str,
        row: QueueRow | None,
        queue_limits: Mapping[str, int] | None,
        running_here: Mapping[str, int] | None,
    ) -> Terms:
        limits = [n for n in (row and row.concurrency, (queue_limits or {}).get(queue)) if n]
        here = None
        if row is not None and row.worker_concurrency is not None:
            here = row.worker_concurrency - (running_here or {}).get(queue, 0)
        rate = None
        if row is not None and row.rate_limit is not None and row.rate_period is not None:
            rate = (row.rate_limit, row.rate_period)
        return cls(
            queue=queue,
            paused=row is not None and row.paused,
            concurrency=min(limits) if limits else None,
            here=here,
            rate=rate,
            per_partition=row.partition_concurrency if row is not None else None,
        )

    @property
    def locks(self) -> bool:
        """Whether claimers must take turns: they count what runs or started."""
        return (
            self.concurrency is not None
            or self.rate is not None
            or (self.per_partition is not None)
        )

    @property
    def plain(self) -> bool:
        """Whether the queue can share one claim statement with others."""
        return not self.locks and self.here is None


class QueueOps(SqlOps):
    """Queues and events."""

    @atomic
    async def enqueue_workflow(
        self, tx: Tx, new: NewWorkflow, placement: Placement
    ) -> tuple[WorkflowRow, bool]:
        params = {
            **new_params(new),
            "queue": placement.queue,
            "priority": placement.priority,
            "wake_at": placement.not_before,
            "dedup_id": placement.dedup_id,
            "partition_key": placement.partition,
            "start_by": placement.start_by,
        }
        for _ in range(3):
            inserted = await tx.execute(self.q.queues.insert_enqueued, params)
            if inserted.rowcount == 1:
                await self._notify(tx, QUEUE_TOPIC)
            row = await self.get_workflow(tx, new.workflow_id)
            if row is not None:
                return row, inserted.rowcount == 1
            # Not inserted, and no row of this id: its dedup id is pending.
            pending = {"queue": placement.queue, "dedup_id": placement.dedup_id}
            found = await tx.execute(self.q.queues.pending_dedup, pending)
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
        queue_limits: Mapping[str, int] | None = None,
        now: float | None = None,
        running_here: Mapping[str, int] | None = None,
    ) -> list[WorkflowRow]:
        if limit <= 0:
            return []

        async def read_terms() -> list[Terms]:
            stored = {row.name: row for row in await self.queues(tx)}  # a small table
            return [Terms.of(q, stored.get(q), queue_limits, running_here) for q in queues]

        every = await read_terms()
        # Locks in one order for every claimer (by name), whatever order its
        # queues come in: two claimers never wait for each other's lock.
        locked = sorted(t.queue for t in every if t.locks and not t.paused)
        for queue in locked:
            await self._lock_queue(tx, queue)
        if locked:
            # Read again under the locks: a change of terms or a pause committed
            # while this claim waited for them counts. A queue limited only since
            # the first read (so not locked) waits for the next claim.
            every = [t for t in await read_terms() if t.queue in locked or not t.locks]
        every = [t for t in every if not t.paused]
        started = now  # None: the store's clock, as each claimed row is updated
        if now is None:
            # After the locks: a rate limit's window counts back from a time no
            # earlier than the starts the claimers before this one recorded.
            now = await self.now(tx)
        params = {
            **owner_params(owner),
            "lease": lease_seconds,
            "ready": now,
            "started": started,
        }
        claimed: list[WorkflowRow] = []
        plain = [terms.queue for terms in every if terms.plain]
        for terms in every:
            if not terms.plain and len(claimed) < limit:
                claimed += await self._claim_one(tx, terms, limit - len(claimed), params)
        if plain and len(claimed) < limit:
            found = await tx.execute(
                self.q.queues.plain(plain), {**params, "limit": limit - len(claimed)}
            )
            claimed += [workflow_row(r) for r in found.rows]
        claimed.sort(key=lambda row: (-row.priority, row.created_at, row.workflow_id))
        return claimed

    async def _claim_one(
        self, tx: Tx, terms: Terms, limit: int, params: dict[str, Any]
    ) -> list[WorkflowRow]:
        """Claim from one queue with flow control (its lock held), within its room."""
        q, queue = self.q.queues, terms.queue
        room = limit if terms.here is None else min(limit, terms.here)
        if terms.concurrency is not None:
            running = await tx.execute(q.running, {"queue": queue})
            room = min(room, terms.concurrency - int(running.rows[0][0]))
        if terms.rate is not None:
            most, period = terms.rate
            since = {"queue": queue, "since": float(params["ready"]) - period}
            started = await tx.execute(q.started_since, since)
            room = min(room, most - int(started.rows[0][0]))
        if room <= 0:
            return []
        if terms.per_partition is not None:
            more = {"queue": queue, "per_partition": terms.per_partition}
            found = await tx.execute(q.partitioned, {**params, **more, "limit": room})
        else:
            found = await tx.execute(q.plain([queue]), {**params, "limit": room})
        return [workflow_row(r) for r in found.rows]

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
            wf = found.rows[0]
            suspended = wf.status == WorkflowStatus.WAITING.value and wf.owner_host is None
            if suspended and wf.waiting_for == key:  # this ends its wait: workers look now
                await self._notify(tx, DUE_TOPIC)
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
