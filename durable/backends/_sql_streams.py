"""Operations on streams: append an entry (fenced, with a step record or not), read in order."""

from __future__ import annotations

from durable._records import StepRow, StreamRow, StreamSummary
from durable.backends._base import atomic
from durable.backends._notify import stream_topic
from durable.backends._sql_ops import SqlOps
from durable.backends._sql_rows import lost, row_of
from durable.backends._tx import Tx


class StreamOps(SqlOps):
    """Operations on streams."""

    @atomic
    async def append_stream(
        self,
        tx: Tx,
        workflow_id: str,
        epoch: int,
        key: str,
        kind: str,
        value: bytes | None,
        step: StepRow | None = None,
    ) -> StepRow | None:
        if step is not None:
            params = self._step_params(workflow_id, epoch, step)
            inserted = await tx.execute(self.q.record_step, params)
            if inserted.rowcount != 1:
                self._unwritten(params)
                standing = await tx.execute(
                    self.q.live_step, {"workflow_id": workflow_id, "position": step.position}
                )
                if standing.rows:
                    return self._step_row(standing.rows[0])  # written already: append nothing again
                raise lost(workflow_id, epoch)
        appended = await tx.execute(
            self.q.streams.append,
            {"workflow_id": workflow_id, "epoch": epoch, "key": key, "kind": kind, "value": value},
        )
        if appended.rowcount != 1:
            raise lost(workflow_id, epoch)
        await self._notify(tx, stream_topic(workflow_id))
        return step

    async def streams_of(self, tx: Tx, workflow_id: str) -> list[StreamSummary]:
        result = await tx.execute(self.q.streams.summary, {"workflow_id": workflow_id})
        return [
            StreamSummary(
                key=r.key,
                chunks=int(r.chunks or 0),
                restarts=max(int(r.starts or 0) - 1, 0),
                ended=bool(r.ends),
                updated_at=float(r.updated_at),
            )
            for r in result.rows
        ]

    async def read_stream(
        self, tx: Tx, workflow_id: str, key: str, after: int = 0
    ) -> list[StreamRow]:
        result = await tx.execute(
            self.q.streams.read, {"workflow_id": workflow_id, "key": key, "after": after}
        )
        return [
            row_of(StreamRow, r, value=None if r.value is None else bytes(r.value))
            for r in result.rows
        ]
