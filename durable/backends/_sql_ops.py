"""The base of the SQL operations: what the operations of every area share."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from durable._records import Parts, StepRow, WorkflowRow, joined
from durable.backends._base import Backend
from durable.backends._payload_files import EXTERNAL_BYTES, MARKER, PayloadFiles, stored_size
from durable.backends._sql_rows import step_params, step_row, workflow_row
from durable.backends._tx import Tx

if TYPE_CHECKING:
    from durable.backends._statements import Statements
    from durable.backends._tx import Statement


class SqlOps(Backend):
    """What every SQL operation shares: the statements, notifications, fencing."""

    q: Statements
    payloads: PayloadFiles | None = None
    """Where large payloads go instead of the database (a SQLite file's folder), if anywhere."""

    async def _lock_queue(self, tx: Tx, queue: str) -> None:
        """Serialise claims from one limited queue (inside the claiming transaction).

        SQLite needs nothing: its write transactions are serial already.
        """

    async def _notify(self, tx: Tx, topic: str) -> None:
        """Wake waiters of ``topic`` once ``tx`` commits (PostgreSQL also tells other processes)."""
        tx.topics.append(topic)

    async def _update_fenced(
        self, tx: Tx, stmt: Statement, workflow_id: str, epoch: int, **more: Any
    ) -> bool:
        updated = await tx.execute(stmt, {"workflow_id": workflow_id, "epoch": epoch, **more})
        return updated.rowcount == 1

    def _step_params(self, workflow_id: str, epoch: int, step: StepRow) -> dict[str, Any]:
        """A step record's parameters, its output written to a file first if large."""
        if self.payloads is not None and len(step.output) >= EXTERNAL_BYTES:
            # Its parts go to the file as they are (never joined: see Parts).
            return step_params(workflow_id, epoch, step, self.payloads.store(step.output))
        return step_params(workflow_id, epoch, step)

    def _unwritten(self, params: dict[str, Any]) -> None:
        """A record these parameters were for was not written: its file goes at once."""
        if self.payloads is not None:
            self.payloads.discard(params["output"])

    def _step_row(self, r: Any, *, read_file: bool = True) -> StepRow:
        """A step record from a result row, its output read from its file if it has one.

        ``read_file`` False leaves a file's reference in its place (``load_steps``).
        """
        row = step_row(r)
        if read_file and self.payloads is not None:
            stored = joined(row.output)  # a row read back holds bytes: the same object
            if stored.startswith(MARKER):
                row = dataclasses.replace(row, output=self.payloads.load(stored))
        return row

    def step_output(self, stored: bytes | Parts) -> bytes | Parts | memoryview:
        if self.payloads is not None and type(stored) is bytes and stored.startswith(MARKER):
            return self.payloads.view(stored)
        return stored

    def check_output(self, stored: bytes | Parts) -> None:
        if self.payloads is not None and type(stored) is bytes and stored.startswith(MARKER):
            self.payloads.ensure(stored)

    def output_size(self, stored: bytes | Parts) -> int:
        if type(stored) is bytes and stored.startswith(MARKER):
            return stored_size(stored, len(stored))
        return len(stored)

    async def get_workflow(self, tx: Tx, workflow_id: str) -> WorkflowRow | None:
        result = await tx.execute(self.q.get_workflow, {"workflow_id": workflow_id})
        return workflow_row(result.rows[0]) if result.rows else None
