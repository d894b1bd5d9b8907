"""Operations on schedules: put, list, pause, delete, advance and backfill."""

from __future__ import annotations

import dataclasses

from durable._records import ScheduleRow
from durable.backends._base import atomic
from durable.backends._sql_ops import SqlOps
from durable.backends._sql_rows import row_of
from durable.backends._tx import Tx


class ScheduleOps(SqlOps):
    """Operations on schedules (firing them is the engine's: an enqueue per tick)."""

    @atomic
    async def put_schedule(self, tx: Tx, row: ScheduleRow, keep_state: bool) -> bool:
        params = dataclasses.asdict(row)
        inserted = await tx.execute(self.q.schedules.insert, params)
        if inserted.rowcount == 1:
            return True
        await tx.execute(
            self.q.schedules.redefine if keep_state else self.q.schedules.replace, params
        )
        return False

    async def schedules(self, tx: Tx, name: str | None = None) -> list[ScheduleRow]:
        if name is None:
            found = await tx.execute(self.q.schedules.list)
        else:
            found = await tx.execute(self.q.schedules.one, {"name": name})
        return [
            row_of(
                ScheduleRow,
                r,
                args=None if r.args is None else bytes(r.args),
                paused=bool(r.paused),
            )
            for r in found.rows
        ]

    @atomic
    async def set_schedule_paused(self, tx: Tx, name: str, paused: bool) -> bool:
        done = await tx.execute(self.q.schedules.pause, {"name": name, "paused": paused})
        return done.rowcount == 1

    @atomic
    async def delete_schedule(self, tx: Tx, name: str) -> bool:
        return (await tx.execute(self.q.schedules.delete, {"name": name})).rowcount == 1

    @atomic
    async def advance_schedule(
        self,
        tx: Tx,
        name: str,
        last_tick: float | None,
        backfilled: tuple[float, float, float] | None,
    ) -> None:
        if last_tick is not None:
            await tx.execute(self.q.schedules.advance, {"name": name, "last_tick": last_tick})
        if backfilled is not None:
            start, end, done = backfilled
            params = {"name": name, "start": start, "end": end, "done": done}
            await tx.execute(self.q.schedules.advance_backfill, params)

    @atomic
    async def backfill_schedule(self, tx: Tx, name: str, start: float, end: float) -> bool:
        done = await tx.execute(
            self.q.schedules.backfill, {"name": name, "start": start, "end": end}
        )
        return done.rowcount == 1
