"""Operations on queues' flow control: their rows, their counts, and queue timeouts."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

from durable._records import QueueCounts, QueueRow
from durable.backends._base import atomic
from durable.backends._notify import event_topic
from durable.backends._sql_ops import SqlOps
from durable.backends._sql_rows import row_of
from durable.backends._tx import Tx


class QueueControlOps(SqlOps):
    """Queues' rows (put, list, pause, delete), what they hold, and expiring waits."""

    @atomic
    async def put_queue(self, tx: Tx, row: QueueRow, keep_paused: bool) -> bool:
        await self._lock_queue(tx, row.name)  # claims that count its terms see them whole
        params = dataclasses.asdict(row)
        del params["updated_at"]  # the store's clock
        q = self.q.queues
        if (await tx.execute(q.insert_queue, params)).rowcount == 1:
            return True
        await tx.execute(q.redefine_queue, params)
        if not keep_paused:
            await tx.execute(q.pause_queue, {"name": row.name, "paused": row.paused})
        return False

    async def queues(self, tx: Tx, name: str | None = None) -> list[QueueRow]:
        q = self.q.queues
        if name is None:
            found = await tx.execute(q.list_queues)
        else:
            found = await tx.execute(q.one_queue, {"name": name})
        return [row_of(QueueRow, r, paused=bool(r.paused)) for r in found.rows]

    @atomic
    async def set_queue_paused(self, tx: Tx, name: str, paused: bool) -> None:
        # Once this returns, no claim under the queue's lock takes from a paused queue.
        await self._lock_queue(tx, name)
        params = dataclasses.asdict(QueueRow(name=name, paused=paused))
        del params["updated_at"]
        # A new row with no limits, or the standing one's terms kept.
        if (await tx.execute(self.q.queues.insert_queue, params)).rowcount == 0:
            await tx.execute(self.q.queues.pause_queue, {"name": name, "paused": paused})

    @atomic
    async def delete_queue(self, tx: Tx, name: str) -> bool:
        return (await tx.execute(self.q.queues.delete_queue, {"name": name})).rowcount == 1

    async def queue_counts(
        self, tx: Tx, windows: Mapping[str, float] | None = None, now: float | None = None
    ) -> dict[str, QueueCounts]:
        q = self.q.queues
        if now is None:
            now = await self.now(tx)
        counts = {
            r.queue: QueueCounts(
                enqueued=int(r.enqueued or 0), ready=int(r.ready or 0), running=int(r.running or 0)
            )
            for r in (await tx.execute(q.counts, {"now": now})).rows
        }
        for queue, since in (windows or {}).items():
            found = await tx.execute(q.started_since, {"queue": queue, "since": since})
            started, first = found.rows[0]
            counts[queue] = dataclasses.replace(
                counts.get(queue, QueueCounts()),
                started=int(started),
                first_started=None if first is None else float(first),
            )
        return counts

    @atomic
    async def expire_queued(
        self,
        tx: Tx,
        queues: Sequence[str],
        now: float | None,
        error_for: Callable[[str, str, float], bytes],
    ) -> list[str]:
        q = self.q.queues
        if now is None:
            now = await self.now(tx)
        expired: list[str] = []
        for queue in queues:
            found = await tx.execute(q.expired, {"queue": queue, "now": now})
            for r in found.rows:
                error = error_for(r.workflow_id, queue, float(r.start_by))
                done = await tx.execute(q.expire, {"workflow_id": r.workflow_id, "error": error})
                if done.rowcount == 1:
                    await self._notify(tx, event_topic(r.workflow_id))  # its waiting callers
                    expired.append(r.workflow_id)
        return expired
