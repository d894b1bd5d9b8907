"""Operations on session state: read, write (over a version, with a step record), list, clean up."""

from __future__ import annotations

from typing import Any

from durable._records import SessionEntry, SessionSummary, StepRow
from durable.backends._base import atomic
from durable.backends._sql_ops import SqlOps
from durable.backends._sql_rows import lost, row_of
from durable.backends._tx import Tx


class SessionOps(SqlOps):
    """Operations on the state of sessions."""

    async def session_read(
        self, tx: Tx, session_id: str, key: str | None = None
    ) -> list[SessionEntry]:
        if key is None:
            result = await tx.execute(self.q.sessions.read_all, {"session_id": session_id})
        else:
            result = await tx.execute(
                self.q.sessions.read_key, {"session_id": session_id, "key": key}
            )
        return [row_of(SessionEntry, r, value=bytes(r.value)) for r in result.rows]

    @atomic
    async def session_write(
        self,
        tx: Tx,
        session_id: str,
        key: str,
        value: bytes,
        expected_version: int | None,
        record: tuple[str, int, StepRow] | None = None,
    ) -> tuple[bool, StepRow | None]:
        if record is not None:
            workflow_id, _, step = record
            standing = await tx.execute(
                self.q.live_step, {"workflow_id": workflow_id, "position": step.position}
            )
            if standing.rows:
                return False, self._step_row(standing.rows[0])  # written already: not again
        params: dict[str, Any] = {"session_id": session_id, "key": key, "value": value}
        if expected_version is None:
            written = await tx.execute(self.q.sessions.upsert, params)
        elif expected_version == 0:
            written = await tx.execute(self.q.sessions.insert, params)
        else:
            written = await tx.execute(
                self.q.sessions.update, {**params, "version": expected_version}
            )
        if written.rowcount != 1:
            return False, None
        if record is None:
            return True, None
        workflow_id, epoch, step = record
        step_values = self._step_params(workflow_id, epoch, step)
        inserted = await tx.execute(self.q.record_step, step_values)
        if inserted.rowcount != 1:
            self._unwritten(step_values)
            raise lost(workflow_id, epoch)  # rolls the write back with it
        return True, step

    async def sessions(self, tx: Tx) -> list[SessionSummary]:
        result = await tx.execute(self.q.sessions.list)
        return [SessionSummary(r.session_id, int(r.keys), float(r.updated_at)) for r in result.rows]

    @atomic
    async def cleanup_sessions(
        self, tx: Tx, cutoff: float, session_id: str | None, dry_run: bool
    ) -> int:
        params: dict[str, Any] = {"cutoff": cutoff}
        count, delete = self.q.sessions.count, self.q.sessions.delete
        if session_id is not None:
            params["session_id"] = session_id
            count, delete = self.q.sessions.count_one, self.q.sessions.delete_one
        found = int((await tx.execute(count, params)).rows[0][0])
        if not dry_run and found:
            await tx.execute(delete, params)
        return found
