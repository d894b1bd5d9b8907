"""Every statement the SQL backends run, defined once in SQLAlchemy Core."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa

from durable._records import ROLLED_BACK, StepKind, StepStatus, WorkflowStatus
from durable.backends import _schema as s
from durable.backends._query_statements import QueryStatements
from durable.backends._queue_statements import QueueStatements, is_active
from durable.backends._row_values import (
    P,
    finished_values,
    from_workflow,
    new_values,
    refers_to_file,
    started_values,
    step_values,
)
from durable.backends._state_statements import (
    ScheduleStatements,
    SessionStatements,
    StreamStatements,
)


class _Parts(NamedTuple):
    """Pieces several statements share."""

    insert: Callable[[sa.Table], Any]
    now: sa.ColumnElement[float]
    owner: dict[str, Any]
    lease: sa.ColumnElement[float]
    same_epoch: sa.ColumnElement[bool]
    new_workflow: dict[str, Any]
    step_row: dict[str, Any]
    fence: sa.Exists
    ownerless: dict[str, Any]


class Statements:
    """Every statement the backends run, built once per backend.

    Timestamps that order or expire things (created, updated, leases) come
    from the database's own clock, so that processes on hosts whose clocks
    disagree still agree on who holds a lease.
    """

    def __init__(self, insert: Callable[[sa.Table], Any], now: sa.ColumnElement[float]) -> None:
        w, st = s.workflows, s.steps
        self.now = now
        self.rows: dict[str, sa.Executable] = {}
        """Statements that write many rows at once, by the write they stand for
        (``record_step``, ``start_workflow``, ``finish``, ``renew``), where a database
        has them."""
        same_epoch = sa.and_(w.c.workflow_id == P("workflow_id"), w.c.epoch == P("epoch"))
        p = _Parts(
            insert=insert,
            now=now,
            owner={
                "owner_host": P("owner_host"),
                "owner_pid": P("owner_pid"),
                "owner_started": P("owner_started"),
            },
            lease=now + P("lease", type_=sa.Float),
            same_epoch=same_epoch,
            new_workflow=new_values(P, now),
            # INSERT ... SELECT binds its values in a SELECT list, where the
            # database needs their types: each takes its column's.
            step_row=step_values(lambda name: P(name, type_=st.c[name].type)),
            fence=sa.exists().where(
                w.c.workflow_id == P("workflow_id"), w.c.epoch == P("epoch", type_=sa.Integer)
            ),
            ownerless={
                "owner_host": None,
                "owner_pid": None,
                "owner_started": None,
                "lease_expires_at": None,
                "epoch": w.c.epoch + 1,
            },
        )
        self._workflows(p)
        self._rewrites(p)
        self._steps(p)
        self._published(p)
        self.streams = StreamStatements(insert, now, p.fence)
        self.sessions = SessionStatements(insert, now)
        self.schedules = ScheduleStatements(insert)
        self._totals(p)
        self._queues(p)
        self._waits(p)
        self._recovery(p)
        self._events(p)
        self.per_call = QueryStatements(now)

    def _workflows(self, p: _Parts) -> None:
        """The rows of workflows: start, claim, finish, leases, fencing."""
        w = s.workflows
        self.get_workflow = sa.select(w, p.now.label("db_now")).where(
            w.c.workflow_id == P("workflow_id")
        )
        self.insert_workflow = (
            p.insert(w)
            .values(started_values(P, p.now))
            .on_conflict_do_nothing(index_elements=[w.c.workflow_id])
            # What the store filled in; the caller has the rest of the new row
            # (``_sql_rows.started_row``), so no second round trip, and no
            # thirty columns to read back.
            .returning(
                w.c.created_at,
                w.c.updated_at,
                w.c.lease_expires_at,
                w.c.started_at,
                p.now.label("db_now"),
            )
        )
        self.claim = (
            sa.update(w)
            .where(p.same_epoch, w.c.status == P("status"))
            .values(
                status=WorkflowStatus.RUNNING.value,
                epoch=w.c.epoch + 1,
                attempts=w.c.attempts + 1,
                **p.owner,
                lease_expires_at=p.lease,
                updated_at=p.now,
                finished_at=None,
                wake_at=None,
                waiting_for=None,
                # One more recovery in a row (keep 1, add 1), or a fresh count.
                recoveries=w.c.recoveries * P("keep", type_=sa.Integer)
                + P("add", type_=sa.Integer),
            )
        )
        self.clear_outcome = (
            sa.update(w)
            .where(w.c.workflow_id == P("workflow_id"))
            # A new attempt gets a new deadline, counted from its own start.
            .values(result=None, error=None, deadline=None)
        )
        # A new attempt runs again what failed, and what belongs to one
        # attempt: the records kept from rolled-back blocks and every
        # compensation (each attempt compensates its own values).
        self.finish = sa.update(w).where(p.same_epoch).values(finished_values(P, p.now))
        # A renewal never waits for a row another transaction holds (a group
        # commit finishing that workflow, a takeover): waiting in the middle of
        # renewing many leases could deadlock with it, and the lease has slack
        # for the next beat. SQLite has one writer and no row locks.
        unlocked = sa.select(w.c.workflow_id).where(p.same_epoch).with_for_update(skip_locked=True)
        self.renew = (
            sa.update(w)
            .where(w.c.workflow_id.in_(unlocked.scalar_subquery()))
            .values(lease_expires_at=p.lease)
        )
        self.clock = sa.select(p.now.label("db_now"))
        meta = s.meta
        self.schema_version = sa.select(meta.c.value).where(meta.c.key == "schema_version")
        self.fence = sa.select(w.c.epoch).where(p.same_epoch)
        self.set_deadline = (
            sa.update(w).where(p.same_epoch).values(deadline=P("deadline"), updated_at=p.now)
        )
        # An event's sender wakes the workers if the workflow is suspended waiting for it.
        self.workflow_status = sa.select(w.c.status, w.c.owner_host, w.c.waiting_for).where(
            w.c.workflow_id == P("workflow_id")
        )

    def _rewrites(self, p: _Parts) -> None:
        """Rewinding, forking and cancelling a workflow."""
        w, st = s.workflows, s.steps
        self.rewind = (
            sa.update(w)
            .where(p.same_epoch)
            .values(
                status=WorkflowStatus.RUNNING.value,
                epoch=w.c.epoch + 1,
                owner_host=None,
                owner_pid=None,
                owner_started=None,
                lease_expires_at=None,
                result=None,
                error=None,
                updated_at=p.now,
                finished_at=None,
            )
        )
        # A fork: owned by nobody (the next call claims it), not yet started.
        self.insert_fork = (
            p.insert(w)
            .values(**p.new_workflow, attempts=0, parent_id=None, forked_from=P("forked_from"))
            .on_conflict_do_nothing(index_elements=[w.c.workflow_id])
        )
        # A fork's copy of a record: the new workflow's row is written first.
        copied = from_workflow(p.step_row)
        self.insert_step = p.insert(st).from_select(
            list(copied), sa.select(*copied.values()).where(w.c.workflow_id == P("workflow_id"))
        )
        self.cancel = (
            sa.update(w)
            .where(
                w.c.workflow_id == P("workflow_id"),
                sa.or_(is_active(w.c.status), w.c.status == WorkflowStatus.QUARANTINED.value),
            )
            .values(
                status=WorkflowStatus.CANCELLED.value,
                epoch=w.c.epoch + 1,
                lease_expires_at=None,
                updated_at=p.now,
                finished_at=p.now,
            )
        )

    def _steps(self, p: _Parts) -> None:
        """Step records and failed attempts."""
        st, at = s.steps, s.step_attempts
        self.supersede_errors = (
            sa.update(st)
            .where(
                st.c.workflow_id == P("workflow_id"),
                sa.or_(
                    st.c.status == StepStatus.ERROR.value,
                    st.c.kind == StepKind.COMPENSATION.value,
                    st.c.tx_id.startswith(ROLLED_BACK, autoescape=True),
                ),
                s.LIVE_STEP_WHERE,
            )
            .values(superseded=True)
            # The records it supersedes, to be verified before the claim commits.
            .returning(*st.c)
        )
        self.live_steps = sa.select(st).where(
            st.c.workflow_id == P("workflow_id"), s.LIVE_STEP_WHERE
        )
        self.live_step = sa.select(st).where(
            st.c.workflow_id == P("workflow_id"),
            st.c.position == P("position"),
            s.LIVE_STEP_WHERE,
        )
        # Fenced and first-commit-wins in one statement: nothing is written
        # unless the epoch still matches, and never over a standing record.
        # INSERT ... SELECT binds its values in a SELECT list, where the
        # database needs their types: each takes its column's.
        # The conflict is named by no index: a store partitioned by month has
        # its live-record index on (workflow_id, position, workflow_created_at),
        # which a partitioned table's unique index must include; the only
        # other unique index of the table is its generated id's.
        recorded = from_workflow(p.step_row)
        self.record_step = (
            p.insert(st)
            .from_select(list(recorded), sa.select(*recorded.values()).where(p.same_epoch))
            .on_conflict_do_nothing()
        )
        attempt_values = {c.name: P(c.name, type_=c.type) for c in at.c if c.name != "id"}
        self.record_attempt = sa.insert(at).from_select(
            list(attempt_values), sa.select(*attempt_values.values()).where(p.fence)
        )
        self.attempts = sa.select(at).where(at.c.workflow_id == P("workflow_id")).order_by(at.c.id)
        history = sa.select(
            *(c for c in st.c if c.name != "output"),
            sa.func.length(st.c.output).label("payload_bytes"),
            # A payload kept in a file: its reference, which holds its size.
            sa.func.substr(st.c.output, 1, 64).label("output_head"),
        )
        # Live and superseded records apart, each from its own partial index.
        of_workflow = st.c.workflow_id == P("workflow_id")
        self.history = sa.union_all(
            *(history.where(of_workflow, kind) for kind in s.LIVE_AND_SUPERSEDED)
        ).order_by(sa.literal_column("position"), sa.literal_column("id"))
        self.steps_up_to = sa.select(st).where(
            st.c.workflow_id == P("workflow_id"),
            st.c.position <= P("position"),
            s.LIVE_STEP_WHERE,
        )
        self.supersede_after = (
            sa.update(st)
            .where(
                st.c.workflow_id == P("workflow_id"),
                st.c.position > P("position"),
                s.LIVE_STEP_WHERE,
            )
            .values(superseded=True)
        )

        # Every payload kept in a file, by its reference (what a cleanup keeps).
        self.payload_files = sa.select(st.c.output).where(refers_to_file(st.c.output))

    def _published(self, p: _Parts) -> None:
        """The latest published value of a key, or of each key, of a workflow."""
        st = s.steps
        published = sa.and_(
            st.c.workflow_id == P("workflow_id"),
            st.c.kind == StepKind.PUBLISH.value,
            s.LIVE_STEP_WHERE,
        )
        self.published_key = (
            sa.select(st)
            .where(published, st.c.name == P("key"))
            .order_by(st.c.position.desc())
            .limit(1)
        )
        self.published = (
            sa.select(st)
            .where(
                st.c.workflow_id == P("workflow_id"),
                s.LIVE_STEP_WHERE,
                st.c.position.in_(
                    sa.select(sa.func.max(st.c.position)).where(published).group_by(st.c.name)
                ),
            )
            .order_by(st.c.position)
        )

    def _totals(self, p: _Parts) -> None:
        """Counts and sizes for ``Store.metrics``."""
        w, st = s.workflows, s.steps
        self.count_by_status = sa.select(w.c.status, sa.func.count()).group_by(w.c.status)
        self.count_live_steps = sa.select(
            sa.func.count(),
            sa.func.avg(st.c.finished_at - st.c.started_at),
            sa.func.max(st.c.finished_at - st.c.started_at),
        ).where(s.LIVE_STEP_WHERE, st.c.kind != StepKind.SNAPSHOT.value)
        self.payload_bytes = sa.select(
            sa.func.coalesce(sa.func.sum(sa.func.length(st.c.output)), 0)
        ).select_from(st)
        self.workflow_bytes = sa.select(
            sa.func.coalesce(
                sa.func.sum(
                    sa.func.coalesce(sa.func.length(w.c.args), 0)
                    + sa.func.coalesce(sa.func.length(w.c.result), 0)
                    + sa.func.coalesce(sa.func.length(w.c.error), 0)
                ),
                0,
            )
        ).select_from(w)

    def _queues(self, p: _Parts) -> None:
        """Enqueueing and claiming (``self.queues``)."""
        w = s.workflows
        claimed = {
            "status": WorkflowStatus.RUNNING.value,
            "epoch": w.c.epoch + 1,
            "attempts": w.c.attempts + 1,
            **p.owner,
            "lease_expires_at": p.lease,
            "updated_at": p.now,
            "wake_at": None,
            # The claimer's clock if virtual (tests), else the store's, read by the
            # statement itself: never before the enqueue of a row it can see.
            "started_at": sa.func.coalesce(w.c.started_at, P("started", type_=sa.Float), p.now),
        }
        self.queues = QueueStatements(p.insert, p.now, p.new_workflow, claimed)

    def _waits(self, p: _Parts) -> None:
        """Waiting, suspending, releasing and quarantining a workflow."""
        w = s.workflows
        active_epoch = sa.and_(
            p.same_epoch,
            sa.or_(
                w.c.status == WorkflowStatus.RUNNING.value,
                w.c.status == WorkflowStatus.WAITING.value,
            ),
        )
        waiting = {
            "status": WorkflowStatus.WAITING.value,
            "wake_at": P("wake_at", type_=sa.Float),
            "waiting_for": P("waiting_for"),
            "updated_at": p.now,
        }
        self.set_waiting = sa.update(w).where(active_epoch).values(waiting)
        self.suspend = sa.update(w).where(active_epoch).values(**waiting, **p.ownerless)
        self.set_running = (
            sa.update(w)
            .where(p.same_epoch, w.c.status == WorkflowStatus.WAITING.value)
            .values(
                status=WorkflowStatus.RUNNING.value,
                wake_at=None,
                waiting_for=None,
                updated_at=p.now,
            )
        )
        self.release = sa.update(w).where(active_epoch).values(**p.ownerless, updated_at=p.now)
        # Back to its queue, as if never claimed (a worker that lacks its code).
        self.requeue = (
            sa.update(w)
            .where(p.same_epoch, w.c.status == WorkflowStatus.RUNNING.value, w.c.queue.is_not(None))
            .values(
                status=WorkflowStatus.ENQUEUED.value,
                **p.ownerless,
                attempts=w.c.attempts - 1,
                updated_at=p.now,
                wake_at=P("not_before", type_=sa.Float),
                started_at=None,  # not started: its next claim is its start
            )
        )
        self.quarantine = (
            sa.update(w)
            .where(active_epoch)
            .values(
                status=WorkflowStatus.QUARANTINED.value,
                **p.ownerless,
                updated_at=p.now,
                finished_at=p.now,
            )
        )

    def _recovery(self, p: _Parts) -> None:
        """What a recovery resumes, and a quarantined or cancelled workflow reopened by hand."""
        w, ev = s.workflows, s.events
        self.reopen = (
            sa.update(w)
            .where(
                w.c.workflow_id == P("workflow_id"),
                sa.or_(
                    w.c.status == WorkflowStatus.QUARANTINED.value,
                    w.c.status == WorkflowStatus.CANCELLED.value,
                ),
            )
            .values(
                status=WorkflowStatus.RUNNING.value,
                **p.ownerless,
                recoveries=0,
                updated_at=p.now,
                finished_at=None,
                error=None,
                # Its timeout counts afresh from the resume.
                deadline=None,
                wake_at=None,
                waiting_for=None,
            )
        )

        pending = ev.c.consumed_at.is_(None)
        event_arrived = (
            sa.exists()
            .where(ev.c.workflow_id == w.c.workflow_id, ev.c.key == w.c.waiting_for, pending)
            .correlate(w)
        )
        # Timers are judged by the caller, on the clock that set them (the
        # runtime's: virtual in tests), so every timed or keyed wait comes back.
        self.resumable = (
            sa.select(
                *(c for c in w.c if c.name not in ("args", "result", "error")),
                sa.null().label("args"),
                sa.null().label("result"),
                sa.null().label("error"),
                p.now.label("db_now"),
                event_arrived.label("event_arrived"),
            )
            .where(
                sa.or_(
                    w.c.status == WorkflowStatus.RUNNING.value,
                    sa.and_(
                        w.c.status == WorkflowStatus.WAITING.value,
                        sa.or_(
                            w.c.owner_host.is_not(None),
                            w.c.wake_at.is_not(None),
                            w.c.waiting_for.is_not(None),
                        ),
                    ),
                )
            )
            .order_by(w.c.created_at, w.c.workflow_id)
        )

    def _events(self, p: _Parts) -> None:
        """Events sent to a workflow, and consuming them."""
        ev = s.events
        pending = ev.c.consumed_at.is_(None)
        self.insert_event = (
            p.insert(ev)
            .values(
                workflow_id=P("workflow_id"),
                key=P("key"),
                value=P("value"),
                sent_at=p.now,
                idempotency_key=P("idempotency_key"),
            )
            .on_conflict_do_nothing(index_elements=[ev.c.workflow_id, ev.c.idempotency_key])
        )
        self.next_event = (
            sa.select(ev)
            .where(ev.c.workflow_id == P("workflow_id"), ev.c.key == P("key"), pending)
            .order_by(ev.c.id)
            .limit(1)
        )
        self.consume_event = (
            sa.update(ev).where(ev.c.id == P("event_id"), pending).values(consumed_at=p.now)
        )

    def children(self, parent_ids: Sequence[str]) -> sa.Select[Any]:
        """The ids and statuses of these workflows' children (built per call: an IN list)."""
        w = s.workflows
        return sa.select(w.c.workflow_id, w.c.status).where(w.c.parent_id.in_(list(parent_ids)))


_STATEMENTS: dict[str, Statements] = {}


RowsAtOnce = Callable[[Callable[[sa.Table], Any], Any], dict[str, sa.Executable]]
"""Builds a database's many-row forms of writes (see ``Statements.rows``)."""


def statements_for(
    dialect: str,
    insert: Callable[[sa.Table], Any],
    now: Any,
    rows_at_once: RowsAtOnce | None = None,
) -> Statements:
    """The statements of a dialect, built once per process (they are immutable)."""
    found = _STATEMENTS.get(dialect)
    if found is None:
        found = _STATEMENTS[dialect] = Statements(insert, now)
        if rows_at_once is not None:
            found.rows.update(rows_at_once(insert, now))
    return found
