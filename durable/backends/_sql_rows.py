"""Rows to statement parameters and back, for every SQL operation."""

from __future__ import annotations

from typing import Any, TypeVar

from durable._errors import BackendUnavailableError, OwnershipLostError
from durable._records import (
    NewWorkflow,
    Owner,
    StepRow,
    StepStatus,
    WorkflowRow,
    WorkflowStatus,
    built,
    field_names,
    joined,
)

R = TypeVar("R")


def lost(workflow_id: str, epoch: int) -> OwnershipLostError:
    return OwnershipLostError(
        f"workflow {workflow_id!r} was taken over by another executor, or cancelled "
        f"(its fencing epoch is no longer {epoch}); this executor stops writing to it",
        workflow_id=workflow_id,
        epoch=epoch,
    )


def refused(workflow_id: str, position: int) -> BackendUnavailableError:
    """A record the store would not take though nothing stands at its place and it is ours."""
    return BackendUnavailableError(
        f"the store refused step record {position} of workflow {workflow_id!r}, though this "
        "executor still holds the workflow and no record stands at that position: another "
        "of the table's unique keys conflicts. The likeliest cause is durable_steps' id "
        "sequence set behind its rows (a restore that did not restore sequences): set it "
        "past them (PostgreSQL: SELECT setval(pg_get_serial_sequence('durable_steps', 'id'), "
        "(SELECT max(id) FROM durable_steps))), then run the workflow again"
    )


def step_params(
    workflow_id: str, epoch: int, step: StepRow, output: bytes | None = None
) -> dict[str, Any]:
    """A step record's parameters; ``output`` in place of its own (a file's reference)."""
    return {
        "workflow_id": workflow_id,
        "epoch": epoch,
        "position": step.position,
        "name": step.name,
        "status": step.status.value,
        "output": joined(step.output) if output is None else output,
        "attempt": step.attempt,
        # Floats, also from a clock that gives whole numbers: a column's values
        # go in one array when records share a statement.
        "started_at": float(step.started_at),
        "finished_at": float(step.finished_at),
        "kind": step.kind,
        "tx_id": step.tx_id,
        "error_type": step.error_type,
        "error_message": step.error_message,
        "code_hash": step.code_hash,
    }


def start_params(new: NewWorkflow, owner: Owner, lease_seconds: float) -> dict[str, Any]:
    return {
        **new_params(new),
        **owner_params(owner),
        "lease": float(lease_seconds),
        "parent_id": new.parent_id,
    }


def finish_params(
    workflow_id: str,
    epoch: int,
    status: WorkflowStatus,
    result: bytes | None = None,
    error: bytes | None = None,
) -> dict[str, Any]:
    return {
        "workflow_id": workflow_id,
        "epoch": epoch,
        "status": status.value,
        "result": result,
        "error": error,
    }


def new_params(new: NewWorkflow) -> dict[str, Any]:
    return {
        "workflow_id": new.workflow_id,
        "name": new.name,
        "args_fingerprint": new.args_fingerprint,
        "args": new.args,
        "timeout": new.timeout,
        "deadline": new.deadline,
    }


def owner_params(owner: Owner) -> dict[str, Any]:
    return {"owner_host": owner.host, "owner_pid": owner.pid, "owner_started": owner.started}


def row_of(cls: type[R], r: Any, **given: Any) -> R:
    """A row of type ``cls`` from a result row, field by field; ``given`` values win."""
    return built(cls, {n: given[n] if n in given else getattr(r, n) for n in field_names(cls)})


def workflow_row(r: Any) -> WorkflowRow:
    owner = (
        Owner(host=r.owner_host, pid=r.owner_pid, started=r.owner_started or "")
        if r.owner_host is not None
        else None
    )
    return row_of(
        WorkflowRow,
        r,
        status=WorkflowStatus(r.status),
        args=_bytes(r.args),
        result=_bytes(r.result),
        error=_bytes(r.error),
        owner=owner,
        db_now=float(r.db_now),
        event_arrived=bool(getattr(r, "event_arrived", False)),
    )


def started_row(new: NewWorkflow, owner: Owner, r: Any) -> WorkflowRow:
    """The row ``insert_workflow`` made: the call's values, and those the store filled in.

    As :func:`workflow_row` would read it back (``started_values`` and the
    schema's defaults), floats as the columns hold them.
    """
    return built(
        WorkflowRow,
        {
            "workflow_id": new.workflow_id,
            "name": new.name,
            "status": WorkflowStatus.RUNNING,
            "args_fingerprint": new.args_fingerprint,
            "args": new.args,
            "result": None,
            "error": None,
            "attempts": 1,
            "epoch": 1,
            "owner": owner,
            "lease_expires_at": float(r.lease_expires_at),
            "parent_id": new.parent_id,
            "created_at": float(r.created_at),
            "updated_at": float(r.updated_at),
            "finished_at": None,
            "db_now": float(r.db_now),
            "forked_from": None,
            "queue": None,
            "priority": 0,
            "wake_at": None,
            "waiting_for": None,
            "recoveries": 0,
            "event_arrived": False,
            "timeout": None if new.timeout is None else float(new.timeout),
            "deadline": None if new.deadline is None else float(new.deadline),
            "started_at": float(r.started_at),
            "partition_key": None,
            "start_by": None,
        },
    )


def step_row(r: Any) -> StepRow:
    return row_of(StepRow, r, status=StepStatus(r.status), output=_bytes(r.output) or b"")


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)
