"""Every statement the SQL backends run, defined once in SQLAlchemy Core."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa

from durable._records import ROLLED_BACK, StepStatus, WorkflowStatus
from durable.backends import _schema as s

ACTIVE = [st.value for st in WorkflowStatus if st.active]


def is_active(status: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    """``status`` is one of a workflow with work left (no IN list: those recompile)."""
    return sa.or_(*(status == value for value in ACTIVE))


def _P(name: str, **kwargs: Any) -> sa.BindParameter[Any]:
    # Prefixed: SQLAlchemy reserves column names as bind names in INSERT/UPDATE.
    return sa.bindparam(f"p_{name}", **kwargs)


@dataclass(frozen=True)
class Result:
    """What an executed statement gives back."""

    rowcount: int
    rows: Sequence[Any]


class Tx(Protocol):
    """Executes statements inside one transaction (or in autocommit)."""

    topics: list[str]
    """Topics to notify in this process once the transaction commits."""

    async def execute(self, stmt: sa.Executable, params: dict[str, Any] | None = None) -> Result:
        """Execute ``stmt`` with ``params`` bound by name (without the ``p_`` prefix)."""
        ...


class Statements:
    """Every statement the backends run, built once per backend.

    Timestamps that order or expire things (created, updated, leases) come
    from the database's own clock, so that processes on hosts whose clocks
    disagree still agree on who holds a lease.
    """

    def __init__(self, insert: Callable[[sa.Table], Any], now: sa.ColumnElement[float]) -> None:
        w, st, at, ev = s.workflows, s.steps, s.step_attempts, s.events
        self.now = now
        owner = {
            "owner_host": _P("owner_host"),
            "owner_pid": _P("owner_pid"),
            "owner_started": _P("owner_started"),
        }
        lease = now + _P("lease", type_=sa.Float)
        same_epoch = sa.and_(w.c.workflow_id == _P("workflow_id"), w.c.epoch == _P("epoch"))

        self.get_workflow = sa.select(w, now.label("db_now")).where(
            w.c.workflow_id == _P("workflow_id")
        )
        new_workflow = _new_values(_P, now)
        self.insert_workflow = (
            insert(w)
            .values(_started_values(_P, now))
            .on_conflict_do_nothing(index_elements=[w.c.workflow_id])
            # The new row as get_workflow reads it: no second round trip.
            .returning(*w.c, now.label("db_now"))
        )
        self.claim = (
            sa.update(w)
            .where(same_epoch, w.c.status == _P("status"))
            .values(
                status=WorkflowStatus.RUNNING.value,
                epoch=w.c.epoch + 1,
                attempts=w.c.attempts + 1,
                **owner,
                lease_expires_at=lease,
                updated_at=now,
                finished_at=None,
                wake_at=None,
                waiting_for=None,
                # One more recovery in a row (keep 1, add 1), or a fresh count.
                recoveries=w.c.recoveries * _P("keep", type_=sa.Integer)
                + _P("add", type_=sa.Integer),
            )
        )
        self.clear_outcome = (
            sa.update(w).where(w.c.workflow_id == _P("workflow_id")).values(result=None, error=None)
        )
        # A new attempt runs again what failed, and what belongs to one
        # attempt: the records kept from rolled-back blocks and every
        # compensation (each attempt compensates its own values).
        self.supersede_errors = (
            sa.update(st)
            .where(
                st.c.workflow_id == _P("workflow_id"),
                sa.or_(
                    st.c.status == StepStatus.ERROR.value,
                    st.c.kind == "compensation",
                    st.c.tx_id.startswith(ROLLED_BACK, autoescape=True),
                ),
                s.LIVE_STEP_WHERE,
            )
            .values(superseded=True)
            # The records it supersedes, to be verified before the claim commits.
            .returning(*st.c)
        )
        self.finish = sa.update(w).where(same_epoch).values(_finished_values(_P, now))
        # A renewal never waits for a row another transaction holds (a group
        # commit finishing that workflow, a takeover): waiting in the middle of
        # renewing many leases could deadlock with it, and the lease has slack
        # for the next beat. SQLite has one writer and no row locks.
        unlocked = sa.select(w.c.workflow_id).where(same_epoch).with_for_update(skip_locked=True)
        self.renew = (
            sa.update(w)
            .where(w.c.workflow_id.in_(unlocked.scalar_subquery()))
            .values(lease_expires_at=lease)
        )
        self.live_steps = sa.select(st).where(
            st.c.workflow_id == _P("workflow_id"), s.LIVE_STEP_WHERE
        )
        self.live_step = sa.select(st).where(
            st.c.workflow_id == _P("workflow_id"),
            st.c.position == _P("position"),
            s.LIVE_STEP_WHERE,
        )
        # Fenced and first-commit-wins in one statement: nothing is written
        # unless the epoch still matches, and never over a standing record.
        # INSERT ... SELECT binds its values in a SELECT list, where the
        # database needs their types: each takes its column's.
        step_values = _step_values(lambda name: _P(name, type_=st.c[name].type))
        fence = sa.exists().where(
            w.c.workflow_id == _P("workflow_id"), w.c.epoch == _P("epoch", type_=sa.Integer)
        )
        self.record_step = (
            insert(st)
            .from_select(list(step_values), sa.select(*step_values.values()).where(fence))
            .on_conflict_do_nothing(
                index_elements=[st.c.workflow_id, st.c.position], index_where=s.LIVE_STEP_WHERE
            )
        )
        attempt_values = {c.name: _P(c.name, type_=c.type) for c in at.c if c.name != "id"}
        self.rows: dict[str, sa.Executable] = {}
        """Statements that write many rows at once, by the write they stand for
        (``record_step``, ``start_workflow``, ``finish``, ``renew``), where a database
        has them."""
        self.record_attempt = sa.insert(at).from_select(
            list(attempt_values), sa.select(*attempt_values.values()).where(fence)
        )
        self.attempts = sa.select(at).where(at.c.workflow_id == _P("workflow_id")).order_by(at.c.id)
        self.clock = sa.select(now.label("db_now"))
        self.fence = sa.select(w.c.epoch).where(same_epoch)
        self.workflow_status = sa.select(w.c.status).where(w.c.workflow_id == _P("workflow_id"))
        self.history = (
            sa.select(
                *(c for c in st.c if c.name != "output"),
                sa.func.length(st.c.output).label("payload_bytes"),
            )
            .where(st.c.workflow_id == _P("workflow_id"))
            .order_by(st.c.position, st.c.id)
        )
        self.steps_up_to = sa.select(st).where(
            st.c.workflow_id == _P("workflow_id"),
            st.c.position <= _P("position"),
            s.LIVE_STEP_WHERE,
        )
        self.supersede_after = (
            sa.update(st)
            .where(
                st.c.workflow_id == _P("workflow_id"),
                st.c.position > _P("position"),
                s.LIVE_STEP_WHERE,
            )
            .values(superseded=True)
        )
        self.rewind = (
            sa.update(w)
            .where(same_epoch)
            .values(
                status=WorkflowStatus.RUNNING.value,
                epoch=w.c.epoch + 1,
                owner_host=None,
                owner_pid=None,
                owner_started=None,
                lease_expires_at=None,
                result=None,
                error=None,
                updated_at=now,
                finished_at=None,
            )
        )
        # A fork: owned by nobody (the next call claims it), not yet started.
        self.insert_fork = (
            insert(w)
            .values(**new_workflow, attempts=0, parent_id=None, forked_from=_P("forked_from"))
            .on_conflict_do_nothing(index_elements=[w.c.workflow_id])
        )
        self.insert_step = insert(st).values(step_values)
        self.cancel = (
            sa.update(w)
            .where(
                w.c.workflow_id == _P("workflow_id"),
                sa.or_(is_active(w.c.status), w.c.status == WorkflowStatus.QUARANTINED.value),
            )
            .values(
                status=WorkflowStatus.CANCELLED.value,
                epoch=w.c.epoch + 1,
                lease_expires_at=None,
                updated_at=now,
                finished_at=now,
            )
        )
        self.count_by_status = sa.select(w.c.status, sa.func.count()).group_by(w.c.status)
        self.count_live_steps = sa.select(
            sa.func.count(),
            sa.func.avg(st.c.finished_at - st.c.started_at),
            sa.func.max(st.c.finished_at - st.c.started_at),
        ).where(s.LIVE_STEP_WHERE, st.c.kind != "snapshot")
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

        # Queues ------------------------------------------------------------
        self.insert_enqueued = (
            insert(w)
            .values(
                **{**new_workflow, "status": WorkflowStatus.ENQUEUED.value},
                attempts=0,
                parent_id=None,
                queue=_P("queue"),
                priority=_P("priority"),
            )
            .on_conflict_do_nothing(index_elements=[w.c.workflow_id])
        )
        # What occupies a queue's slots: workflows an owner runs or waits in
        # (not suspended, released or crashed ones, which hold no process).
        self.running_in_queue = sa.select(sa.func.count()).where(
            w.c.queue == _P("queue"),
            w.c.owner_host.is_not(None),
            sa.or_(
                w.c.status == WorkflowStatus.RUNNING.value,
                w.c.status == WorkflowStatus.WAITING.value,
            ),
        )
        self._claims: dict[tuple[str, ...], sa.Update] = {}
        self._claim_enqueued_values = {
            "status": WorkflowStatus.RUNNING.value,
            "epoch": w.c.epoch + 1,
            "attempts": w.c.attempts + 1,
            **owner,
            "lease_expires_at": lease,
            "updated_at": now,
        }
        # Waits ---------------------------------------------------------------
        active_epoch = sa.and_(
            same_epoch,
            sa.or_(
                w.c.status == WorkflowStatus.RUNNING.value,
                w.c.status == WorkflowStatus.WAITING.value,
            ),
        )
        waiting = {
            "status": WorkflowStatus.WAITING.value,
            "wake_at": _P("wake_at", type_=sa.Float),
            "waiting_for": _P("waiting_for"),
            "updated_at": now,
        }
        ownerless = {
            "owner_host": None,
            "owner_pid": None,
            "owner_started": None,
            "lease_expires_at": None,
            "epoch": w.c.epoch + 1,
        }
        self.set_waiting = sa.update(w).where(active_epoch).values(waiting)
        self.suspend = sa.update(w).where(active_epoch).values(**waiting, **ownerless)
        self.set_running = (
            sa.update(w)
            .where(same_epoch, w.c.status == WorkflowStatus.WAITING.value)
            .values(
                status=WorkflowStatus.RUNNING.value, wake_at=None, waiting_for=None, updated_at=now
            )
        )
        self.release = sa.update(w).where(active_epoch).values(**ownerless, updated_at=now)
        # Back to its queue, as if never claimed (a worker that lacks its code).
        self.requeue = (
            sa.update(w)
            .where(same_epoch, w.c.status == WorkflowStatus.RUNNING.value, w.c.queue.is_not(None))
            .values(
                status=WorkflowStatus.ENQUEUED.value,
                **ownerless,
                attempts=w.c.attempts - 1,
                updated_at=now,
            )
        )
        self.quarantine = (
            sa.update(w)
            .where(active_epoch)
            .values(
                status=WorkflowStatus.QUARANTINED.value,
                **ownerless,
                updated_at=now,
                finished_at=now,
            )
        )
        self.unquarantine = (
            sa.update(w)
            .where(
                w.c.workflow_id == _P("workflow_id"),
                w.c.status == WorkflowStatus.QUARANTINED.value,
            )
            .values(
                status=WorkflowStatus.RUNNING.value,
                **ownerless,
                recoveries=0,
                updated_at=now,
                finished_at=None,
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
                now.label("db_now"),
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
        # Events --------------------------------------------------------------
        self.insert_event = (
            insert(ev)
            .values(
                workflow_id=_P("workflow_id"),
                key=_P("key"),
                value=_P("value"),
                sent_at=now,
                idempotency_key=_P("idempotency_key"),
            )
            .on_conflict_do_nothing(index_elements=[ev.c.workflow_id, ev.c.idempotency_key])
        )
        self.next_event = (
            sa.select(ev)
            .where(ev.c.workflow_id == _P("workflow_id"), ev.c.key == _P("key"), pending)
            .order_by(ev.c.id)
            .limit(1)
        )
        self.consume_event = (
            sa.update(ev).where(ev.c.id == _P("event_id"), pending).values(consumed_at=now)
        )

    def claim_queued(self, queues: Sequence[str]) -> sa.Update:
        """Claim the best ``p_limit`` enqueued workflows of ``queues`` in one statement.

        Rows other claimers are taking are skipped, not waited for (PostgreSQL
        ``FOR UPDATE SKIP LOCKED``; SQLite serialises writers anyway). Built
        once per set of queues (no IN list: those compile on every call).
        """
        key = tuple(queues)
        found = self._claims.get(key)
        if found is not None:
            return found
        wf = s.workflows
        best = (
            sa.select(wf.c.workflow_id)
            .where(
                wf.c.status == WorkflowStatus.ENQUEUED.value,
                sa.or_(*(wf.c.queue == queue for queue in key)),
            )
            .order_by(wf.c.priority.desc(), wf.c.created_at, wf.c.workflow_id)
            .limit(_P("limit", type_=sa.Integer))
            .with_for_update(skip_locked=True)
        )
        found = self._claims[key] = (
            sa.update(wf)
            .where(wf.c.workflow_id.in_(best.scalar_subquery()))
            .values(self._claim_enqueued_values)
            .returning(*wf.c, self.now.label("db_now"))
        )
        return found


_STATEMENTS: dict[str, Statements] = {}


def statements_for(dialect: str, insert: Callable[[sa.Table], Any], now: Any) -> Statements:
    """The statements of a dialect, built once per process (they are immutable)."""
    found = _STATEMENTS.get(dialect)
    if found is None:
        found = _STATEMENTS[dialect] = Statements(insert, now)
        if dialect == "postgresql":
            found.rows.update(_rows_at_once(insert, now))
    return found


def _new_values(bind: Callable[[str], Any], now: Any) -> dict[str, Any]:
    """A new workflow's row (started, forked or enqueued), its values from ``bind``."""
    return {
        "workflow_id": bind("workflow_id"),
        "name": bind("name"),
        "status": WorkflowStatus.RUNNING.value,
        "args_fingerprint": bind("args_fingerprint"),
        "args": bind("args"),
        "epoch": 1,
        "created_at": now,
        "updated_at": now,
    }


def _started_values(bind: Callable[[str], Any], now: Any) -> dict[str, Any]:
    """A workflow started by the process that runs it."""
    return {
        **_new_values(bind, now),
        "attempts": 1,
        "owner_host": bind("owner_host"),
        "owner_pid": bind("owner_pid"),
        "owner_started": bind("owner_started"),
        "lease_expires_at": now + bind("lease"),
        "parent_id": bind("parent_id"),
    }


def _finished_values(bind: Callable[[str], Any], now: Any) -> dict[str, Any]:
    return {
        "status": bind("status"),
        "result": bind("result"),
        "error": bind("error"),
        "lease_expires_at": None,
        "updated_at": now,
        "finished_at": now,
    }


def _step_values(bind: Callable[[str], Any]) -> dict[str, Any]:
    """A step record, live."""
    values = {c.name: bind(c.name) for c in s.steps.c if c.name not in ("id", "superseded")}
    values["superseded"] = sa.false()
    return values


def _rows_at_once(insert: Callable[[sa.Table], Any], now: Any) -> dict[str, sa.Executable]:
    """Many-row forms of four writes, for PostgreSQL: one statement and one round trip.

    Each parameter is an array with one element per row, sent in binary and
    unnested into rows that the statement reads where the one-row form binds
    a value; each returns the rows it wrote, and writes only what the
    one-row form would (the same fence, the same conflict rule).
    """
    from sqlalchemy.dialects.postgresql import ARRAY

    w, st = s.workflows, s.steps

    def unnest(types: dict[str, Any]) -> Any:
        # VARCHAR without its length, as the one-row forms bind it: a cast to
        # VARCHAR(n) would cut a longer value short, where the column refuses it.
        types = {n: sa.String() if isinstance(t, sa.String) else t for n, t in types.items()}
        return (
            sa.func.unnest(*(sa.cast(_P(n), ARRAY(t)) for n, t in types.items()))
            .table_valued(*(sa.column(n, t) for n, t in types.items()))
            .render_derived(name="v")
        )

    def select(values: dict[str, Any], table: sa.Table) -> sa.Select[Any]:
        # Constants of the one-row form, as typed columns of a SELECT list.
        return sa.select(
            *(
                v if isinstance(v, sa.ColumnElement) else sa.literal(v, table.c[k].type)
                for k, v in values.items()
            )
        )

    new = unnest(
        {
            **{c: w.c[c].type for c in ("workflow_id", "name", "args_fingerprint", "args")},
            **{c: w.c[c].type for c in ("owner_host", "owner_pid", "owner_started")},
            "lease": sa.Float(),
            "parent_id": w.c.parent_id.type,
        }
    )
    started = _started_values(lambda name: new.c[name], now)
    step = unnest(
        {
            **{c.name: c.type for c in st.c if c.name not in ("id", "superseded")},
            "epoch": sa.Integer(),
        }
    )
    finished = unnest(
        {c: w.c[c].type for c in ("workflow_id", "epoch", "status", "result", "error")}
    )
    leases = unnest({c: w.c[c].type for c in ("workflow_id", "epoch")})
    stmts: dict[str, Any] = {
        "start_workflow": insert(w)
        .from_select(list(started), select(started, w))
        .on_conflict_do_nothing(index_elements=[w.c.workflow_id])
        .returning(*w.c, now.label("db_now")),
        "record_step": insert(st)
        .from_select(
            list(_step_values(lambda name: step.c[name])),
            select(_step_values(lambda name: step.c[name]), st).where(
                sa.exists().where(w.c.workflow_id == step.c.workflow_id, w.c.epoch == step.c.epoch)
            ),
        )
        .on_conflict_do_nothing(
            index_elements=[st.c.workflow_id, st.c.position], index_where=s.LIVE_STEP_WHERE
        )
        .returning(st.c.workflow_id, st.c.position),
        "finish": sa.update(w)
        .where(w.c.workflow_id == finished.c.workflow_id, w.c.epoch == finished.c.epoch)
        .values(_finished_values(lambda name: finished.c[name], now))
        .returning(w.c.workflow_id),
        # Every lease a heartbeat renews, in one round trip, skipping rows
        # another transaction holds (as ``renew`` does one by one).
        "renew": sa.update(w)
        .where(
            w.c.workflow_id.in_(
                sa.select(w.c.workflow_id)
                .join(
                    leases,
                    sa.and_(w.c.workflow_id == leases.c.workflow_id, w.c.epoch == leases.c.epoch),
                )
                .with_for_update(of=w, skip_locked=True)
                .scalar_subquery()
            )
        )
        .values(lease_expires_at=now + sa.cast(_P("lease"), sa.Float)),
    }
    return {k: v.execution_options(binary_binds=True) for k, v in stmts.items()}
