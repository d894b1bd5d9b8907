"""The statements of streams, session state and schedules (built once per dialect)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from durable.backends import _schema as s
from durable.backends._row_values import P


class StreamStatements:
    """Streams: entries appended (fenced by the workflow's epoch) and read in order."""

    def __init__(self, insert: Callable[[sa.Table], Any], now: Any, fence: sa.Exists) -> None:
        sm = s.streams
        values = {
            "workflow_id": P("workflow_id", type_=sm.c.workflow_id.type),
            "key": P("key", type_=sm.c.key.type),
            "kind": P("kind", type_=sm.c.kind.type),
            "value": P("value", type_=sm.c.value.type),
            "written_at": now,
        }
        self.append = sa.insert(sm).from_select(
            list(values), sa.select(*values.values()).where(fence)
        )
        counted = [
            sa.func.sum(sa.case((sm.c.kind == kind, 1), else_=0)).label(label)
            for kind, label in (("chunk", "chunks"), ("start", "starts"), ("end", "ends"))
        ]
        self.summary = (
            sa.select(sm.c.key, *counted, sa.func.max(sm.c.written_at).label("updated_at"))
            .where(sm.c.workflow_id == P("workflow_id"))
            .group_by(sm.c.key)
            .order_by(sm.c.key)
        )
        self.read = (
            sa.select(sm.c.id, sm.c.kind, sm.c.value, sm.c.written_at)
            .where(
                sm.c.workflow_id == P("workflow_id"),
                sm.c.key == P("key"),
                sm.c.id > P("after"),
            )
            .order_by(sm.c.id)
        )


class SessionStatements:
    """Session state: read, written (unconditionally, if absent, or over a version), cleaned up."""

    def __init__(self, insert: Callable[[sa.Table], Any], now: Any) -> None:
        se = s.sessions
        this = sa.and_(se.c.session_id == P("session_id"), se.c.key == P("key"))
        self.read_all = (
            sa.select(se.c.key, se.c.value, se.c.version, se.c.updated_at)
            .where(se.c.session_id == P("session_id"))
            .order_by(se.c.key)
        )
        self.read_key = sa.select(se.c.key, se.c.value, se.c.version, se.c.updated_at).where(this)
        new = {
            "session_id": P("session_id"),
            "key": P("key"),
            "value": P("value"),
            "version": 1,
            "updated_at": now,
        }
        self.insert = insert(se).values(new).on_conflict_do_nothing()
        upsert = insert(se).values(new)
        self.upsert = upsert.on_conflict_do_update(
            index_elements=[se.c.session_id, se.c.key],
            set_={"value": upsert.excluded.value, "version": se.c.version + 1, "updated_at": now},
        )
        self.update = (
            sa.update(se)
            .where(this, se.c.version == P("version"))
            .values(value=P("value"), version=se.c.version + 1, updated_at=now)
        )
        last = sa.func.max(se.c.updated_at)
        self.list = (
            sa.select(se.c.session_id, sa.func.count().label("keys"), last.label("updated_at"))
            .group_by(se.c.session_id)
            .order_by(last.desc(), se.c.session_id)
        )
        stale = sa.select(se.c.session_id).group_by(se.c.session_id).having(last < P("cutoff"))
        self.count = sa.select(sa.func.count()).where(se.c.session_id.in_(stale))
        self.delete = sa.delete(se).where(se.c.session_id.in_(stale))
        one = se.c.session_id == P("session_id")
        self.count_one = sa.select(sa.func.count()).where(se.c.session_id.in_(stale), one)
        self.delete_one = sa.delete(se).where(se.c.session_id.in_(stale), one)


_DEFINITION = ("workflow", "cron", "every", "timezone", "args", "queue", "priority", "catch_up")
_STATE = ("paused", "created_at", "last_tick", "backfill_from", "backfill_to")


class ScheduleStatements:
    """Schedules: put (keeping their state or not), listed, paused, advanced, backfilled."""

    def __init__(self, insert: Callable[[sa.Table], Any]) -> None:
        sc = s.schedules
        new = insert(sc).values({c.name: P(c.name, type_=c.type) for c in sc.columns})
        self.insert = new.on_conflict_do_nothing()
        self.redefine = (
            sa.update(sc)
            .where(sc.c.name == P("name"))
            .values({column: P(column, type_=sc.c[column].type) for column in _DEFINITION})
        )
        self.replace = (
            sa.update(sc)
            .where(sc.c.name == P("name"))
            .values({column: P(column, type_=sc.c[column].type) for column in _DEFINITION + _STATE})
        )
        self.list = sa.select(sc).order_by(sc.c.name)
        self.one = sa.select(sc).where(sc.c.name == P("name"))
        self.pause = sa.update(sc).where(sc.c.name == P("name")).values(paused=P("paused"))
        self.delete = sa.delete(sc).where(sc.c.name == P("name"))
        self.advance = (
            sa.update(sc)
            .where(sc.c.name == P("name"), sc.c.last_tick < P("last_tick"))
            .values(last_tick=P("last_tick"))
        )
        # Only the backfill read moves on (a compare-and-set): once done, cleared.
        finished = P("done", type_=sa.Float) >= sc.c.backfill_to
        self.advance_backfill = (
            sa.update(sc)
            .where(
                sc.c.name == P("name"),
                sc.c.backfill_from == P("start", type_=sa.Float),
                sc.c.backfill_to == P("end", type_=sa.Float),
            )
            .values(
                backfill_from=sa.case((finished, sa.null()), else_=P("done", type_=sa.Float)),
                backfill_to=sa.case((finished, sa.null()), else_=sc.c.backfill_to),
            )
        )
        # One backfill at a time: a second one waits until the first is done.
        self.backfill = (
            sa.update(sc)
            .where(sc.c.name == P("name"), sc.c.backfill_from.is_(None))
            .values(backfill_from=P("start"), backfill_to=P("end"))
        )
