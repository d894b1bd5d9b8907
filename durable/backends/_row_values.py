"""The values of the rows the statements write (a new workflow's, a step record's...).

Shared by the one-row statements (``_statements``) and PostgreSQL's many-row
forms (``_pg_rows``), which bind the same columns from arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from durable._records import WorkflowStatus
from durable.backends import _schema as s
from durable.backends._payload_files import MARKER


def refers_to_file(output: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """Whether a stored payload is a reference to a file (``_payload_files``).

    Its length comes first: SQLite answers it from the row's header, without
    reading a large payload kept inline.
    """
    return sa.and_(
        sa.func.length(output) < 128,
        sa.func.substr(output, 1, len(MARKER)) == sa.literal(MARKER, sa.LargeBinary),
    )


def P(name: str, **kwargs: Any) -> sa.BindParameter[Any]:
    # Prefixed: SQLAlchemy reserves column names as bind names in INSERT/UPDATE.
    return sa.bindparam(f"p_{name}", **kwargs)


def new_values(bind: Callable[[str], Any], now: Any) -> dict[str, Any]:
    """A new workflow's row (started, forked or enqueued), its values from ``bind``."""
    return {
        "workflow_id": bind("workflow_id"),
        "name": bind("name"),
        "status": WorkflowStatus.RUNNING.value,
        "args_fingerprint": bind("args_fingerprint"),
        "args": bind("args"),
        "timeout": bind("timeout"),
        "deadline": bind("deadline"),
        "epoch": 1,
        "created_at": now,
        "updated_at": now,
    }


def started_values(bind: Callable[[str], Any], now: Any) -> dict[str, Any]:
    """A workflow started by the process that runs it."""
    return {
        **new_values(bind, now),
        "attempts": 1,
        "owner_host": bind("owner_host"),
        "owner_pid": bind("owner_pid"),
        "owner_started": bind("owner_started"),
        "lease_expires_at": now + bind("lease"),
        "parent_id": bind("parent_id"),
        "started_at": now,
    }


def finished_values(bind: Callable[[str], Any], now: Any) -> dict[str, Any]:
    return {
        "status": bind("status"),
        "result": bind("result"),
        "error": bind("error"),
        "lease_expires_at": None,
        "updated_at": now,
        "finished_at": now,
    }


# Not the caller's: the store numbers records, and copies the workflow's
# creation time from its row (``from_workflow``).
_NOT_BOUND = ("id", "superseded", s.WORKFLOW_CREATED)


def from_workflow(values: dict[str, Any]) -> dict[str, Any]:
    """A step record's values, with what the statement reads from its workflow's row."""
    return {**values, s.WORKFLOW_CREATED: s.workflows.c.created_at}


def step_values(bind: Callable[[str], Any]) -> dict[str, Any]:
    """A step record, live."""
    values = {c.name: bind(c.name) for c in s.steps.c if c.name not in _NOT_BOUND}
    values["superseded"] = sa.false()
    return values
