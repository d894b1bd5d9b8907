"""The store as a whole: its clock, totals, cleanup and pruning."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from durable._records import (
    Counts,
    StepKind,
    WorkflowStatus,
)
from durable.backends import _schema as s
from durable.backends._base import atomic
from durable.backends._queue_statements import is_active
from durable.backends._sql_ops import SqlOps
from durable.backends._statements import Tx


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
        w = s.workflows
        doomed = sa.select(w.c.workflow_id).where(
            w.c.status.in_([st.value for st in statuses if st.finished]),
            w.c.finished_at < cutoff,
        )
        if name is not None:
            doomed = doomed.where(w.c.name == name)
        if queue is not None:
            doomed = doomed.where(w.c.queue == queue)
        return await self._delete(tx, doomed, None, dry_run)

    @atomic
    async def prune(self, tx: Tx, keep_snapshots: int, dry_run: bool) -> Counts:
        st, w = s.steps, s.workflows
        newer = sa.alias(st, "newer")
        # A snapshot goes when N newer snapshots of its (finished) workflow stand.
        newer_count = (
            sa.select(sa.func.count())
            .select_from(newer)
            .where(
                newer.c.workflow_id == st.c.workflow_id,
                newer.c.kind == StepKind.SNAPSHOT.value,
                newer.c.position > st.c.position,
                newer.c.superseded == sa.false(),
            )
            .scalar_subquery()
        )
        finished = sa.select(w.c.workflow_id).where(sa.not_(is_active(w.c.status)))
        old_snapshots = sa.and_(
            st.c.kind == StepKind.SNAPSHOT.value,
            st.c.workflow_id.in_(finished),
            newer_count >= keep_snapshots,
        )
        doomed_steps = sa.or_(st.c.superseded == sa.true(), old_snapshots)
        return await self._delete(tx, None, doomed_steps, dry_run)

    async def _delete(
        self,
        tx: Tx,
        workflows: sa.Select[Any] | None,
        steps: sa.ColumnElement[bool] | None,
        dry_run: bool,
    ) -> Counts:
        w, st, at = s.workflows, s.steps, s.step_attempts
        step_where = st.c.workflow_id.in_(workflows) if workflows is not None else steps
        assert step_where is not None
        count = sa.select(sa.func.count())
        counts = Counts(
            workflows=(
                (await tx.execute(count.select_from(workflows.subquery()))).rows[0][0]
                if workflows is not None
                else 0
            ),
            steps=(await tx.execute(count.select_from(st).where(step_where))).rows[0][0],
            attempts=(
                (
                    await tx.execute(count.select_from(at).where(at.c.workflow_id.in_(workflows)))
                ).rows[0][0]
                if workflows is not None
                else 0
            ),
        )
        if not dry_run:
            await tx.execute(sa.delete(st).where(step_where))
            if workflows is not None:
                await tx.execute(sa.delete(at).where(at.c.workflow_id.in_(workflows)))
                await tx.execute(sa.delete(s.events).where(s.events.c.workflow_id.in_(workflows)))
                await tx.execute(sa.delete(s.streams).where(s.streams.c.workflow_id.in_(workflows)))
                await tx.execute(sa.delete(w).where(w.c.workflow_id.in_(workflows)))
        return counts

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
            + int((await tx.execute(self.q.workflow_bytes)).rows[0][0]),
        }

    async def now(self, tx: Tx) -> float:
        result = await tx.execute(self.q.clock)
        return float(result.rows[0].db_now)
