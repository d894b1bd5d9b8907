"""Rows to statement parameters and back, for every SQL operation."""

from __future__ import annotations

from typing import Any

from durable._errors import OwnershipLostError
from durable._records import (
    NewWorkflow,
    Owner,
    StepRow,
    StepStatus,
    WorkflowRow,
    WorkflowStatus,
)


def lost(workflow_id: str, epoch: int) -> OwnershipLostError:
    return OwnershipLostError(
        f"workflow {workflow_id!r} was taken over by another executor, or cancelled "
        f"(its fencing epoch is no longer {epoch}); this executor stops writing to it",
        workflow_id=workflow_id,
        epoch=epoch,
    )


def step_params(workflow_id: str, epoch: int, step: StepRow) -> dict[str, Any]:
    return {
        "workflow_id": workflow_id,
        "epoch": epoch,
        "position": step.position,
        "name": step.name,
        "status": step.status.value,
        "output": step.output,
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
    }


def owner_params(owner: Owner) -> dict[str, Any]:
    return {"owner_host": owner.host, "owner_pid": owner.pid, "owner_started": owner.started}


def workflow_row(r: Any) -> WorkflowRow:
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
        args=_bytes(r.args),
        result=_bytes(r.result),
        error=_bytes(r.error),
        attempts=r.attempts,
        epoch=r.epoch,
        owner=owner,
        lease_expires_at=r.lease_expires_at,
        parent_id=r.parent_id,
        created_at=r.created_at,
        updated_at=r.updated_at,
        finished_at=r.finished_at,
        db_now=float(r.db_now),
        forked_from=r.forked_from,
        queue=r.queue,
        priority=r.priority,
        wake_at=r.wake_at,
        waiting_for=r.waiting_for,
        recoveries=r.recoveries,
        event_arrived=bool(getattr(r, "event_arrived", False)),
    )


def step_row(r: Any) -> StepRow:
    return StepRow(
        position=r.position,
        name=r.name,
        status=StepStatus(r.status),
        output=_bytes(r.output) or b"",
        attempt=r.attempt,
        started_at=r.started_at,
        finished_at=r.finished_at,
        kind=r.kind,
        tx_id=r.tx_id,
        error_type=r.error_type,
        error_message=r.error_message,
        code_hash=r.code_hash,
    )


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)
