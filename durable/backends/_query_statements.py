"""Statements built per call: a query's filters, a cleanup's or a prune's terms.

Every other statement is fixed, and compiled ahead for SQLite
(``_precompiled``); these need SQLAlchemy when they are called, which is
when a listing, a cleanup or a prune runs, never when a workflow runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from durable._records import StepKind, WorkflowQuery, WorkflowStatus
from durable.backends import _schema as s
from durable.backends._queue_statements import is_active
from durable.backends._row_values import refers_to_file


class QueryStatements:
    """Builds the statements whose shape depends on the caller's terms."""

    def __init__(self, now: sa.ColumnElement[float]) -> None:
        self._now = now

    def workflows(self, query: WorkflowQuery) -> sa.Select[Any]:
        """The workflows ``query`` selects, newest first, without their payloads."""
        w = s.workflows
        light = [c for c in w.c if c.name not in ("args", "result", "error")]
        stmt = sa.select(
            *light,
            sa.null().label("args"),
            sa.null().label("result"),
            sa.null().label("error"),
            self._now.label("db_now"),
        )
        if query.statuses is not None:
            stmt = stmt.where(w.c.status.in_([st.value for st in query.statuses]))
        if query.name is not None:
            stmt = stmt.where(w.c.name == query.name)
        if query.queue is not None:
            stmt = stmt.where(w.c.queue == query.queue)
        if query.parent_id is not None:
            stmt = stmt.where(w.c.parent_id == query.parent_id)
        if query.id_prefix is not None:
            # Not LIKE: SQLite's is blind to case, and ids are not.
            prefix = query.id_prefix
            stmt = stmt.where(sa.func.substr(w.c.workflow_id, 1, len(prefix)) == prefix)
        if query.since is not None:
            stmt = stmt.where(w.c.created_at >= query.since)
        if query.until is not None:
            stmt = stmt.where(w.c.created_at < query.until)
        stmt = stmt.order_by(w.c.created_at.desc(), w.c.workflow_id)
        if query.limit is not None:
            stmt = stmt.limit(query.limit)
        return stmt

    def doomed(
        self,
        cutoff: float,
        statuses: Sequence[WorkflowStatus],
        name: str | None,
        queue: str | None,
    ) -> sa.ColumnElement[bool]:
        """Whether a cleanup removes a workflow: a condition on its row."""
        w = s.workflows
        terms = [
            w.c.status.in_([st.value for st in statuses if st.finished]),
            w.c.finished_at < cutoff,
        ]
        if name is not None:
            terms.append(w.c.name == name)
        if queue is not None:
            terms.append(w.c.queue == queue)
        return sa.and_(*terms)

    def finished_before(
        self, doomed: sa.ColumnElement[bool], outside: Sequence[tuple[float, float]] = ()
    ) -> sa.Select[Any]:
        """The ids of the workflows a cleanup removes one by one.

        ``outside``: ranges of creation times whose workflows go another way
        (a month's partition dropped whole, ``_partitions``).
        """
        w = s.workflows
        return sa.select(w.c.workflow_id).where(
            doomed, *(sa.or_(w.c.created_at < lo, w.c.created_at >= hi) for lo, hi in outside)
        )

    def created_in(
        self, ranges: Sequence[tuple[float, float]], doomed: sa.ColumnElement[bool]
    ) -> tuple[list[sa.Executable], list[sa.Executable]]:
        """What removing the ``doomed`` workflows created in these ranges counts and deletes.

        All of them are doomed (a month found whole); their records go with
        their partitions (``_partitions.drop``), and are counted by month. The
        counts are of workflows, records and failed attempts.
        """
        w, st, at = s.workflows, s.steps, s.step_attempts
        made = sa.and_(
            doomed,
            sa.or_(*(sa.and_(w.c.created_at >= lo, w.c.created_at < hi) for lo, hi in ranges)),
        )
        copied = sa.or_(
            *(
                sa.and_(st.c[s.WORKFLOW_CREATED] >= lo, st.c[s.WORKFLOW_CREATED] < hi)
                for lo, hi in ranges
            )
        )
        ids = sa.select(w.c.workflow_id).where(made)
        count = sa.select(sa.func.count())
        counts: list[sa.Executable] = [
            count.select_from(w).where(made),
            count.select_from(st).where(copied),
            count.select_from(at).where(at.c.workflow_id.in_(ids)),
        ]
        deletes: list[sa.Executable] = [
            sa.delete(table).where(table.c.workflow_id.in_(ids))
            for table in (at, s.events, s.streams)
        ]
        deletes.append(sa.delete(w).where(made))
        return counts, deletes

    def prunable_steps(self, keep_snapshots: int) -> sa.ColumnElement[bool]:
        """Which step rows a prune removes: superseded ones, and snapshots past the newest N."""
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
        return sa.or_(s.SUPERSEDED_STEP_WHERE, old_snapshots)

    def removal(
        self, workflows: sa.Select[Any] | None, steps: sa.ColumnElement[bool] | None
    ) -> tuple[list[sa.Executable | None], list[sa.Executable], sa.Executable]:
        """What removing these workflows (with all they own) or these steps counts and deletes.

        The counts are of workflows, steps and failed attempts (None where
        nothing of the kind goes; each a row of numbers to add up); the
        deletes run in order, owned rows first; the last selects the
        references to payload files among the steps that go.
        """
        w, st, at = s.workflows, s.steps, s.step_attempts
        if workflows is not None:
            # Live and superseded records apart, each from its partial index:
            # a condition on the workflow alone would read every step row.
            owned = st.c.workflow_id.in_(workflows)
            step_wheres = [sa.and_(owned, kind) for kind in s.LIVE_AND_SUPERSEDED]
        else:
            assert steps is not None
            step_wheres = [steps]
        count = sa.select(sa.func.count())
        counts: list[sa.Executable | None] = [
            count.select_from(workflows.subquery()) if workflows is not None else None,
            sa.select(
                *(count.select_from(st).where(where).scalar_subquery() for where in step_wheres)
            ),
            count.select_from(at).where(at.c.workflow_id.in_(workflows))
            if workflows is not None
            else None,
        ]
        deletes: list[sa.Executable] = [sa.delete(st).where(where) for where in step_wheres]
        if workflows is not None:
            deletes += [
                sa.delete(table).where(table.c.workflow_id.in_(workflows))
                for table in (at, s.events, s.streams, w)
            ]
        filed = refers_to_file(st.c.output)
        files = sa.union_all(*(sa.select(st.c.output).where(c, filed) for c in step_wheres))
        return counts, deletes, files
