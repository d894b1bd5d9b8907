"""The Backend contract over SQLAlchemy Core, shared by every SQL database.

Dialect differences (how to open the engine, how to start a write
transaction, which ``INSERT ... ON CONFLICT`` construct to use) are left to
subclasses; the queries themselves live here once.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from durable._errors import OwnershipLostError
from durable._owner import Owner
from durable.backends import _schema as s
from durable.backends._base import (
    Backend,
    NewWorkflow,
    StepAttemptRow,
    StepRow,
    StepStatus,
    WorkflowRow,
    WorkflowStatus,
)


class SqlBackend(Backend):
    """A Backend over a SQLAlchemy engine."""

    def __init__(self, engine: sa.Engine, url: str, *, serialize_access: bool = False) -> None:
        self.engine = engine
        self.url = url
        # A single shared connection (an in-memory SQLite database) must not
        # be used by two threads at once; a pool of connections needs no lock.
        self._lock: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if serialize_access else contextlib.nullcontext()
        )
        # Refuse a newer database before anything (even a pragma) touches it.
        with self._read() as conn:
            s.check_version(conn, url)
        self._prepare()
        with self._write() as conn:
            s.ensure_schema(conn, url)

    def _prepare(self) -> None:
        """Database-wide settings, applied once the version is known to be ours."""

    # Transactions -----------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """A transaction that intends to write (takes the write lock up front)."""
        with self._lock, self.engine.connect() as conn:
            conn = conn.execution_options(durable_write=True)
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._lock, self.engine.connect() as conn, conn.begin():
            yield conn

    def _insert(self, table: sa.Table) -> Any:
        """The dialect's INSERT construct that supports ``on_conflict_do_nothing``."""
        raise NotImplementedError

    def now(self) -> float:
        """The time used for timestamps and leases, in seconds since the epoch."""
        return time.time()

    # Workflows --------------------------------------------------------------

    def start_workflow(
        self, new: NewWorkflow, owner: Owner, lease_seconds: float
    ) -> tuple[WorkflowRow, bool]:
        now = self.now()
        with self._write() as conn:
            row = self._get_workflow(conn, new.workflow_id)
            if row is not None:
                return row, False
            conn.execute(
                sa.insert(s.workflows).values(
                    workflow_id=new.workflow_id,
                    name=new.name,
                    status=WorkflowStatus.RUNNING.value,
                    args_fingerprint=new.args_fingerprint,
                    args=new.args,
                    attempts=1,
                    epoch=1,
                    **_owner_values(owner),
                    lease_expires_at=now + lease_seconds,
                    parent_id=new.parent_id,
                    created_at=now,
                    updated_at=now,
                )
            )
            created = self._get_workflow(conn, new.workflow_id)
            assert created is not None
            return created, True

    def claim_workflow(
        self,
        workflow_id: str,
        expected_epoch: int,
        owner: Owner,
        lease_seconds: float,
        *,
        rerun_failed: bool,
    ) -> WorkflowRow | None:
        now = self.now()
        w = s.workflows
        values: dict[str, Any] = {
            "status": WorkflowStatus.RUNNING.value,
            "epoch": w.c.epoch + 1,
            "attempts": w.c.attempts + 1,
            **_owner_values(owner),
            "lease_expires_at": now + lease_seconds,
            "updated_at": now,
            "finished_at": None,
        }
        if rerun_failed:
            values.update(error=None, result=None)
        with self._write() as conn:
            claimed = conn.execute(
                sa.update(w)
                .where(w.c.workflow_id == workflow_id, w.c.epoch == expected_epoch)
                .values(**values)
            ).rowcount
            if not claimed:
                return None
            if rerun_failed:
                conn.execute(
                    sa.update(s.steps)
                    .where(
                        s.steps.c.workflow_id == workflow_id,
                        s.steps.c.status == StepStatus.ERROR.value,
                        s.LIVE_STEP_WHERE,
                    )
                    .values(superseded=True)
                )
            return self._get_workflow(conn, workflow_id)

    def finish_workflow(
        self,
        workflow_id: str,
        epoch: int,
        status: WorkflowStatus,
        *,
        result: bytes | None = None,
        error: bytes | None = None,
    ) -> bool:
        now = self.now()
        w = s.workflows
        with self._write() as conn:
            return bool(
                conn.execute(
                    sa.update(w)
                    .where(w.c.workflow_id == workflow_id, w.c.epoch == epoch)
                    .values(
                        status=status.value,
                        result=result,
                        error=error,
                        lease_expires_at=None,
                        updated_at=now,
                        finished_at=now,
                    )
                ).rowcount
            )

    def get_workflow(self, workflow_id: str) -> WorkflowRow | None:
        with self._read() as conn:
            return self._get_workflow(conn, workflow_id)

    def list_workflows(self, statuses: Sequence[WorkflowStatus]) -> list[WorkflowRow]:
        w = s.workflows
        with self._read() as conn:
            rows = conn.execute(
                sa.select(w)
                .where(w.c.status.in_([st.value for st in statuses]))
                .order_by(w.c.created_at, w.c.workflow_id)
            ).all()
        return [_workflow_row(r) for r in rows]

    def renew_leases(self, owner: Owner, leases: dict[str, int], lease_seconds: float) -> None:
        if not leases:
            return
        w = s.workflows
        expires = self.now() + lease_seconds
        with self._write() as conn:
            for workflow_id, epoch in leases.items():
                conn.execute(
                    sa.update(w)
                    .where(w.c.workflow_id == workflow_id, w.c.epoch == epoch)
                    .values(lease_expires_at=expires)
                )

    def _get_workflow(self, conn: sa.Connection, workflow_id: str) -> WorkflowRow | None:
        row = conn.execute(
            sa.select(s.workflows).where(s.workflows.c.workflow_id == workflow_id)
        ).one_or_none()
        return _workflow_row(row) if row is not None else None

    # Steps ------------------------------------------------------------------

    def load_steps(self, workflow_id: str) -> dict[int, StepRow]:
        st = s.steps
        with self._read() as conn:
            rows = conn.execute(
                sa.select(st).where(st.c.workflow_id == workflow_id, s.LIVE_STEP_WHERE)
            ).all()
        return {r.position: _step_row(r) for r in rows}

    def record_step(self, workflow_id: str, epoch: int, step: StepRow) -> StepRow:
        with self._write() as conn:
            if self._fence(conn, workflow_id, epoch):
                inserted = conn.execute(
                    self._insert(s.steps)
                    .values(
                        workflow_id=workflow_id,
                        position=step.position,
                        name=step.name,
                        status=step.status.value,
                        output=step.output,
                        attempt=step.attempt,
                        started_at=step.started_at,
                        finished_at=step.finished_at,
                        superseded=False,
                    )
                    .on_conflict_do_nothing(
                        index_elements=[s.steps.c.workflow_id, s.steps.c.position],
                        index_where=s.LIVE_STEP_WHERE,
                    )
                ).rowcount
                if inserted:
                    return step
            standing = self._live_step(conn, workflow_id, step.position)
        if standing is not None:
            return standing
        raise OwnershipLostError(
            f"workflow {workflow_id!r} was taken over by another executor (its "
            f"fencing epoch is no longer {epoch}); this executor stops writing to it",
            workflow_id=workflow_id,
            epoch=epoch,
        )

    def record_step_attempt(self, workflow_id: str, epoch: int, attempt: StepAttemptRow) -> None:
        with self._write() as conn:
            if self._fence(conn, workflow_id, epoch):
                conn.execute(
                    sa.insert(s.step_attempts).values(
                        workflow_id=workflow_id,
                        position=attempt.position,
                        name=attempt.name,
                        attempt=attempt.attempt,
                        started_at=attempt.started_at,
                        finished_at=attempt.finished_at,
                        error_type=attempt.error_type,
                        error_message=attempt.error_message,
                    )
                )

    def step_attempts(self, workflow_id: str) -> list[StepAttemptRow]:
        a = s.step_attempts
        with self._read() as conn:
            rows = conn.execute(
                sa.select(a).where(a.c.workflow_id == workflow_id).order_by(a.c.id)
            ).all()
        return [
            StepAttemptRow(
                position=r.position,
                name=r.name,
                attempt=r.attempt,
                started_at=r.started_at,
                finished_at=r.finished_at,
                error_type=r.error_type,
                error_message=r.error_message,
            )
            for r in rows
        ]

    def _fence(self, conn: sa.Connection, workflow_id: str, epoch: int) -> bool:
        """Check the fencing token inside the write.

        Touching the row also keeps ``updated_at`` fresh for observers.
        """
        w = s.workflows
        return bool(
            conn.execute(
                sa.update(w)
                .where(w.c.workflow_id == workflow_id, w.c.epoch == epoch)
                .values(updated_at=self.now())
            ).rowcount
        )

    def _live_step(self, conn: sa.Connection, workflow_id: str, position: int) -> StepRow | None:
        st = s.steps
        row = conn.execute(
            sa.select(st).where(
                st.c.workflow_id == workflow_id, st.c.position == position, s.LIVE_STEP_WHERE
            )
        ).one_or_none()
        return _step_row(row) if row is not None else None

    def close(self) -> None:
        self.engine.dispose()


def _owner_values(owner: Owner) -> dict[str, Any]:
    return {"owner_host": owner.host, "owner_pid": owner.pid, "owner_started": owner.started}


def _workflow_row(r: sa.Row[Any]) -> WorkflowRow:
    owner = (
        Owner(host=r.owner_host, pid=r.owner_pid, started=r.owner_started or "")
        if r.owner_host is not None
        else None
    )
    return WorkflowRow(
        workflow_id=r.workflow_id,
        name=r.name,
        status=WorkflowStatus(r.status),
        args_fingerprint=r.args_fingerprint,
        args=r.args,
        result=r.result,
        error=r.error,
        attempts=r.attempts,
        epoch=r.epoch,
        owner=owner,
        lease_expires_at=r.lease_expires_at,
        parent_id=r.parent_id,
        created_at=r.created_at,
        updated_at=r.updated_at,
        finished_at=r.finished_at,
    )


def _step_row(r: sa.Row[Any]) -> StepRow:
    return StepRow(
        position=r.position,
        name=r.name,
        status=StepStatus(r.status),
        output=r.output,
        attempt=r.attempt,
        started_at=r.started_at,
        finished_at=r.finished_at,
    )
