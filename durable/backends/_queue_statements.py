"""The statements of queues: enqueue, claim under flow control, expire, and queues' settings.

Built once per dialect. A claim of a plain queue is one ``UPDATE`` over the
best rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL); a claim of a queue
with flow control runs under the queue's lock, after counting what runs and
what started, and a partitioned queue picks the best rows of each partition
that has room with one window query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from durable._records import WorkflowStatus
from durable.backends import _schema as s
from durable.backends._row_values import P

ACTIVE = [st.value for st in WorkflowStatus if st.active]
ENQUEUED = WorkflowStatus.ENQUEUED.value
EXPIRED_BATCH = 100
"""Enqueued workflows past their start_by that one pass cancels at most."""


def is_active(status: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    """``status`` is one of a workflow with work left (no IN list: those recompile)."""
    return sa.or_(*(status == value for value in ACTIVE))


def _occupies(w: sa.Table) -> sa.ColumnElement[bool]:
    """What takes a queue's slot: run or waited in by an owner (not suspended or released)."""
    return sa.and_(
        w.c.owner_host.is_not(None),
        sa.or_(
            w.c.status == WorkflowStatus.RUNNING.value,
            w.c.status == WorkflowStatus.WAITING.value,
        ),
    )


def _counts(w: sa.Table) -> sa.Select[Any]:
    """Per queue with work left: enqueued, ready by ``now``, and running."""
    now = P("now", type_=sa.Float)
    # What a claim at ``now`` could take: its delay over, its queue timeout not.
    due = sa.and_(
        sa.or_(w.c.wake_at.is_(None), w.c.wake_at <= now),
        sa.or_(w.c.start_by.is_(None), w.c.start_by > now),
    )
    return (
        sa.select(
            w.c.queue,
            sa.func.sum(sa.case((w.c.status == ENQUEUED, 1), else_=0)).label("enqueued"),
            sa.func.sum(sa.case((sa.and_(w.c.status == ENQUEUED, due), 1), else_=0)).label("ready"),
            sa.func.sum(sa.case((_occupies(w), 1), else_=0)).label("running"),
        )
        .where(w.c.queue.is_not(None), is_active(w.c.status))
        .group_by(w.c.queue)
    )


class QueueStatements:
    """Enqueueing, claiming, expiring, and the queues' own rows."""

    def __init__(
        self,
        insert: Callable[[sa.Table], Any],
        now: Any,
        new_workflow: dict[str, Any],
        claimed: dict[str, Any],
    ) -> None:
        w = s.workflows
        self._claimed = claimed
        self._plain: dict[tuple[str, ...], sa.Update] = {}
        self.now = now
        self.insert_enqueued = (
            insert(w)
            .values(
                **{**new_workflow, "status": ENQUEUED},
                attempts=0,
                parent_id=None,
                queue=P("queue"),
                priority=P("priority"),
                wake_at=P("wake_at", type_=sa.Float),  # not before (a delayed enqueue)
                dedup_id=P("dedup_id", type_=w.c.dedup_id.type),
                partition_key=P("partition_key", type_=w.c.partition_key.type),
                start_by=P("start_by", type_=sa.Float),
            )
            # Any conflict: the id recorded, or the dedup id pending in the queue.
            .on_conflict_do_nothing()
        )
        self.pending_dedup = sa.select(w, now.label("db_now")).where(
            w.c.queue == P("queue"), w.c.dedup_id == P("dedup_id"), is_active(w.c.status)
        )
        self.running = sa.select(sa.func.count()).where(w.c.queue == P("queue"), _occupies(w))
        self.started_since = sa.select(sa.func.count(), sa.func.min(w.c.started_at)).where(
            w.c.queue == P("queue"), w.c.started_at > P("since", type_=sa.Float)
        )
        self.partitioned = self._partitioned(w)
        self.counts = _counts(w)
        self.expired = (
            sa.select(w.c.workflow_id, w.c.queue, w.c.start_by, w.c.created_at)
            .where(
                w.c.start_by.is_not(None),
                w.c.start_by <= P("now", type_=sa.Float),
                w.c.status == ENQUEUED,
                w.c.queue == P("queue"),
            )
            .order_by(w.c.start_by)
            .limit(EXPIRED_BATCH)
        )
        self.expire = (
            sa.update(w)
            .where(w.c.workflow_id == P("workflow_id"), w.c.status == ENQUEUED)
            .values(
                status=WorkflowStatus.CANCELLED.value,
                error=P("error"),
                epoch=w.c.epoch + 1,
                wake_at=None,
                updated_at=now,
                finished_at=now,
            )
        )
        self._settings(insert, now)

    def _settings(self, insert: Callable[[sa.Table], Any], now: Any) -> None:
        """The queues' own rows: their terms, put, listed, paused, deleted."""
        qu = s.queues
        settings = {
            c.name: P(c.name, type_=c.type) for c in qu.columns if c.name not in ("paused",)
        }
        settings["updated_at"] = now
        self.insert_queue = (
            insert(qu).values(**settings, paused=P("paused")).on_conflict_do_nothing()
        )
        self.redefine_queue = (
            sa.update(qu)
            .where(qu.c.name == P("name"))
            .values({k: v for k, v in settings.items() if k != "name"})
        )
        self.list_queues = sa.select(qu).order_by(qu.c.name)
        self.one_queue = sa.select(qu).where(qu.c.name == P("name"))
        self.pause_queue = (
            sa.update(qu).where(qu.c.name == P("name")).values(paused=P("paused"), updated_at=now)
        )
        self.delete_queue = sa.delete(qu).where(qu.c.name == P("name"))

    def _ready(self, w: sa.Table) -> list[sa.ColumnElement[bool]]:
        """An enqueued row a claim may take now: its start due, its queue timeout not up."""
        ready = P("ready", type_=sa.Float)
        return [
            w.c.status == ENQUEUED,
            sa.or_(w.c.wake_at.is_(None), w.c.wake_at <= ready),
            sa.or_(w.c.start_by.is_(None), w.c.start_by > ready),
        ]

    def plain(self, queues: Sequence[str]) -> sa.Update:
        """Claim the best ``p_limit`` enqueued workflows of ``queues`` in one statement.

        Rows other claimers are taking are skipped, not waited for (PostgreSQL
        ``FOR UPDATE SKIP LOCKED``; SQLite serialises writers anyway). Built
        once per set of queues (no IN list: those compile on every call).
        """
        key = tuple(queues)
        found = self._plain.get(key)
        if found is not None:
            return found
        wf = s.workflows
        best = (
            sa.select(wf.c.workflow_id)
            .where(sa.or_(*(wf.c.queue == queue for queue in key)), *self._ready(wf))
            .order_by(wf.c.priority.desc(), wf.c.created_at, wf.c.workflow_id)
            .limit(P("limit", type_=sa.Integer))
            .with_for_update(skip_locked=True)
        )
        # No condition beside the IN: PostgreSQL may then rescan the locking
        # subquery per row, and take more rows than its LIMIT. The rows it
        # locked are enqueued still.
        found = self._plain[key] = self._claim(best)
        return found

    def _claim(self, picked: sa.Select[Any], *more: sa.ColumnElement[bool]) -> sa.Update:
        wf = s.workflows
        return (
            sa.update(wf)
            .where(wf.c.workflow_id.in_(picked.scalar_subquery()), *more)
            .values(self._claimed)
            .returning(*wf.c, self.now.label("db_now"))
        )

    def _partitioned(self, w: sa.Table) -> sa.Update:
        """Claim the best of one queue whose partitions each run fewer than ``p_per_partition``.

        Each partition's enqueued rows are ranked; a row is taken if its rank
        plus what its partition runs stays within the limit, so a burst of
        one partition takes its share and leaves the rest to the others.
        Runs under the queue's lock (a window query cannot skip locked rows).
        """
        key = sa.func.coalesce(w.c.partition_key, "")
        in_queue = w.c.queue == P("queue")
        ranked = (
            sa.select(
                w.c.workflow_id,
                w.c.priority,
                w.c.created_at,
                key.label("pk"),
                sa.func.row_number()
                .over(
                    partition_by=key,
                    order_by=(w.c.priority.desc(), w.c.created_at, w.c.workflow_id),
                )
                .label("rank"),
            )
            .where(in_queue, *self._ready(w))
            .subquery("ranked")
        )
        running = (
            sa.select(key.label("pk"), sa.func.count().label("n"))
            .where(in_queue, _occupies(w))
            .group_by(key)
            .subquery("running")
        )
        picked = (
            sa.select(ranked.c.workflow_id)
            .select_from(ranked.outerjoin(running, running.c.pk == ranked.c.pk))
            .where(
                ranked.c.rank + sa.func.coalesce(running.c.n, 0)
                <= P("per_partition", type_=sa.Integer)
            )
            .order_by(ranked.c.priority.desc(), ranked.c.created_at, ranked.c.workflow_id)
            .limit(P("limit", type_=sa.Integer))
        )
        # Nothing is locked while picking: a row cancelled meanwhile stays so.
        return self._claim(picked, w.c.status == ENQUEUED)
