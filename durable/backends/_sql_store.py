"""The store as a whole: its clock, totals, cleanup and pruning."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from durable._records import Counts, WorkflowStatus
from durable.backends._base import atomic
from durable.backends._payload_files import PayloadFiles, file_name
from durable.backends._sql_ops import SqlOps
from durable.backends._tx import Tx

if TYPE_CHECKING:
    import sqlalchemy as sa

    from durable.backends._partitions import Month


class StoreOps(SqlOps):
    """The store as a whole."""

    @atomic
    async def cleanup(
        self,
        tx: Tx,
        cutoff: float,
        statuses: Sequence[WorkflowStatus],
        dry_run: bool,
        *,
        name: str | None = None,
        queue: str | None = None,
    ) -> Counts:
        doomed = self.q.per_call.doomed(cutoff, statuses, name, queue)
        if not dry_run:
            await self._hold(tx, self.q.per_call.finished_before(doomed))
        months = await self._whole_months(tx, doomed)
        outside = [(m.start, m.end) for m in months]
        counts = await self._delete(
            tx, self.q.per_call.finished_before(doomed, outside), None, dry_run
        )
        if not months:
            return counts
        # Past months every workflow of which goes: their rows are deleted,
        # their step records dropped with their partitions.
        tallies, deletes = self.q.per_call.created_in(outside, doomed)
        found = [int((await tx.execute(c)).rows[0][0]) for c in tallies]
        if not dry_run:
            for delete in deletes:
                await tx.execute(delete)
            await self._drop_months(tx, months)
        return Counts(
            workflows=counts.workflows + found[0],
            steps=counts.steps + found[1],
            attempts=counts.attempts + found[2],
        )

    async def _hold(self, tx: Tx, workflows: sa.Select[Any]) -> None:
        """Keep ``workflows`` as they are until ``tx`` ends: what a cleanup removes.

        SQLite needs nothing: its write transactions are serial already.
        """

    async def _whole_months(self, tx: Tx, doomed: sa.ColumnElement[bool]) -> Sequence[Month]:
        """Past months whose every workflow a cleanup removes, where records are kept by month.

        Only a PostgreSQL store partitioned by month has any (``_partitions``).
        """
        return ()

    async def _drop_months(self, tx: Tx, months: Sequence[Month]) -> None:
        """Drop the records of ``months``, whose workflows' rows are deleted."""
        raise NotImplementedError  # only a store that has whole months has any

    @atomic
    async def prune(self, tx: Tx, keep_snapshots: int, dry_run: bool) -> Counts:
        return await self._delete(tx, None, self.q.per_call.prunable_steps(keep_snapshots), dry_run)

    async def _delete(
        self,
        tx: Tx,
        workflows: sa.Select[Any] | None,
        steps: sa.ColumnElement[bool] | None,
        dry_run: bool,
    ) -> Counts:
        counts, deletes, files = self.q.per_call.removal(workflows, steps)
        found = [sum((await tx.execute(c)).rows[0]) if c is not None else 0 for c in counts]
        if not dry_run:
            doomed = (await tx.execute(files)).rows if self.payloads is not None else []
            for delete in deletes:
                await tx.execute(delete)
            if self.payloads is not None:
                await self._remove_files(tx, self.payloads, [bytes(r.output) for r in doomed])
        return Counts(workflows=found[0], steps=found[1], attempts=found[2])

    async def _remove_files(self, tx: Tx, payloads: PayloadFiles, doomed: list[bytes]) -> None:
        """Once ``tx`` commits: remove the files of deleted rows, and orphans.

        An orphan is a file no row refers to (a write that lost its race or
        was rolled back, a crash between the file and its commit).
        """
        kept: set[str] | None = None
        if payloads.has_old_files():  # else no file can be an orphan yet: no need to look
            standing = (await tx.execute(self.q.payload_files)).rows
            kept = {name for r in standing if (name := file_name(bytes(r.output))) is not None}
        tx.done.append(lambda: payloads.remove(doomed))
        tx.done.append(lambda: payloads.sweep(kept))

    async def count_by_status(self, tx: Tx) -> dict[str, int]:
        return {r[0]: int(r[1]) for r in (await tx.execute(self.q.count_by_status)).rows}

    async def stats(self, tx: Tx) -> dict[str, Any]:
        by_status = await self.count_by_status(tx)
        steps, mean, longest = (await tx.execute(self.q.count_live_steps)).rows[0]
        return {
            "by_status": by_status,
            "steps": int(steps),
            "step_seconds_mean": float(mean) if mean is not None else None,
            "step_seconds_max": float(longest) if longest is not None else None,
            "payload_bytes": int((await tx.execute(self.q.payload_bytes)).rows[0][0])
            + int((await tx.execute(self.q.workflow_bytes)).rows[0][0])
            + (self.payloads.total_bytes() if self.payloads is not None else 0),
        }

    async def now(self, tx: Tx) -> float:
        result = await tx.execute(self.q.clock)
        return float(result.rows[0].db_now)
