"""The base of the SQL operations: what the operations of every area share."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from durable._records import (
    WorkflowRow,
)
from durable.backends._base import Backend
from durable.backends._sql_rows import (
    workflow_row,
)
from durable.backends._statements import Statements, Tx


class SqlOps(Backend):
    """What every SQL operation shares: the statements, notifications, fencing."""

    q: Statements

    async def _lock_queue(self, tx: Tx, queue: str) -> None:
        """Serialise claims from one limited queue (inside the claiming transaction).

        SQLite needs nothing: its write transactions are serial already.
        """

    async def _notify(self, tx: Tx, topic: str) -> None:
        """Wake waiters of ``topic`` once ``tx`` commits (PostgreSQL also tells other processes)."""
        tx.topics.append(topic)

    async def _update_fenced(
        self, tx: Tx, stmt: sa.Executable, workflow_id: str, epoch: int, **more: Any
    ) -> bool:
        updated = await tx.execute(stmt, {"workflow_id": workflow_id, "epoch": epoch, **more})
        return updated.rowcount == 1

    async def get_workflow(self, tx: Tx, workflow_id: str) -> WorkflowRow | None:
        result = await tx.execute(self.q.get_workflow, {"workflow_id": workflow_id})
        return workflow_row(result.rows[0]) if result.rows else None
