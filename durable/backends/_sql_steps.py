"""Operations on step records: record, load, history, rewind and fork."""

from __future__ import annotations

from collections.abc import Sequence

from durable._records import (
    NewWorkflow,
    StepAttemptRow,
    StepHistoryRow,
    StepRow,
    StepStatus,
)
from durable.backends._base import atomic
from durable.backends._notify import published_topic
from durable.backends._payload_files import stored_size
from durable.backends._sql_ops import SqlOps
from durable.backends._sql_rows import (
    lost,
    new_params,
    refused,
    row_of,
)
from durable.backends._tx import Tx


class StepOps(SqlOps):
    """Operations on step records."""

    async def load_steps(self, tx: Tx, workflow_id: str) -> dict[int, StepRow]:
        result = await tx.execute(self.q.live_steps, {"workflow_id": workflow_id})
        return {r.position: self._step_row(r, read_file=False) for r in result.rows}

    async def record_step(self, tx: Tx, workflow_id: str, epoch: int, step: StepRow) -> StepRow:
        params = self._step_params(workflow_id, epoch, step)
        inserted = await tx.execute(self.q.record_step, params)
        if inserted.rowcount == 1:
            return step
        self._unwritten(params)
        # Not written: a record already stands there (adopt it: first commit
        # wins, and it may be our own whose acknowledgement was lost), or the
        # fence stopped us.
        standing = await tx.execute(
            self.q.live_step, {"workflow_id": workflow_id, "position": step.position}
        )
        if standing.rows:
            return self._step_row(standing.rows[0])
        if (await tx.execute(self.q.fence, {"workflow_id": workflow_id, "epoch": epoch})).rows:
            raise refused(workflow_id, step.position)
        raise lost(workflow_id, epoch)

    @atomic
    async def record_steps(
        self, tx: Tx, workflow_id: str, epoch: int, steps: Sequence[StepRow]
    ) -> None:
        fenced = await tx.execute(self.q.fence, {"workflow_id": workflow_id, "epoch": epoch})
        if not fenced.rows:
            raise lost(workflow_id, epoch)
        for step in steps:
            params = self._step_params(workflow_id, epoch, step)
            inserted = await tx.execute(self.q.record_step, params)
            if inserted.rowcount != 1:
                self._unwritten(params)
                # The transaction is rolled back: none of its records stand.
                raise lost(workflow_id, epoch)

    @atomic
    async def publish(self, tx: Tx, workflow_id: str, epoch: int, step: StepRow) -> StepRow:
        standing = await self.record_step(tx, workflow_id, epoch, step)
        await self._notify(tx, published_topic(workflow_id))
        return standing

    async def published(self, tx: Tx, workflow_id: str, key: str | None = None) -> list[StepRow]:
        if key is None:
            result = await tx.execute(self.q.published, {"workflow_id": workflow_id})
        else:
            result = await tx.execute(
                self.q.published_key, {"workflow_id": workflow_id, "key": key}
            )
        return [self._step_row(r) for r in result.rows]

    async def record_step_attempt(
        self, tx: Tx, workflow_id: str, epoch: int, attempt: StepAttemptRow
    ) -> None:
        await tx.execute(
            self.q.record_attempt,
            {
                "workflow_id": workflow_id,
                "epoch": epoch,
                "position": attempt.position,
                "name": attempt.name,
                "attempt": attempt.attempt,
                "started_at": attempt.started_at,
                "finished_at": attempt.finished_at,
                "error_type": attempt.error_type,
                "error_message": attempt.error_message,
            },
        )

    async def step_attempts(self, tx: Tx, workflow_id: str) -> list[StepAttemptRow]:
        result = await tx.execute(self.q.attempts, {"workflow_id": workflow_id})
        return [row_of(StepAttemptRow, r) for r in result.rows]

    async def step_history(self, tx: Tx, workflow_id: str) -> list[StepHistoryRow]:
        result = await tx.execute(self.q.history, {"workflow_id": workflow_id})
        return [
            row_of(
                StepHistoryRow,
                r,
                status=StepStatus(r.status),
                payload_bytes=stored_size(r.output_head, int(r.payload_bytes or 0)),
                superseded=bool(r.superseded),
            )
            for r in result.rows
        ]

    async def steps_up_to(self, tx: Tx, workflow_id: str, position: int) -> list[StepRow]:
        result = await tx.execute(
            self.q.steps_up_to, {"workflow_id": workflow_id, "position": position}
        )
        return sorted((self._step_row(r) for r in result.rows), key=lambda row: row.position)

    @atomic
    async def supersede_from(self, tx: Tx, workflow_id: str, epoch: int, position: int) -> None:
        fenced = await tx.execute(self.q.fence, {"workflow_id": workflow_id, "epoch": epoch})
        if not fenced.rows:
            raise lost(workflow_id, epoch)
        await tx.execute(
            self.q.supersede_after, {"workflow_id": workflow_id, "position": position - 1}
        )

    @atomic
    async def rewind(self, tx: Tx, workflow_id: str, expected_epoch: int, position: int) -> bool:
        rewound = await tx.execute(
            self.q.rewind, {"workflow_id": workflow_id, "epoch": expected_epoch}
        )
        if rewound.rowcount != 1:
            return False
        await tx.execute(self.q.supersede_after, {"workflow_id": workflow_id, "position": position})
        return True

    @atomic
    async def create_fork(
        self, tx: Tx, new: NewWorkflow, forked_from: str, steps: Sequence[StepRow]
    ) -> bool:
        created = await tx.execute(
            self.q.insert_fork,
            {**new_params(new), "forked_from": forked_from},
        )
        if created.rowcount != 1:
            return False
        for step in steps:
            params = self._step_params(new.workflow_id, 0, step)
            del params["epoch"]
            await tx.execute(self.q.insert_step, params)
        return True
