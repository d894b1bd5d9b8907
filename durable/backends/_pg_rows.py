"""PostgreSQL's many-row forms of the writes a group commit shares (``Statements.rows``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from durable.backends import _schema as s
from durable.backends._row_values import (
    P,
    finished_values,
    from_workflow,
    started_values,
    step_values,
)


def rows_at_once(insert: Callable[[sa.Table], Any], now: Any) -> dict[str, sa.Executable]:
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
            sa.func.unnest(*(sa.cast(P(n), ARRAY(t)) for n, t in types.items()))
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
            **{c: w.c[c].type for c in ("parent_id", "timeout", "deadline")},
        }
    )
    started = started_values(lambda name: new.c[name], now)
    bound = [name for name in step_values(str) if name != "superseded"]  # the caller's
    step = unnest({**{name: st.c[name].type for name in bound}, "epoch": sa.Integer()})
    finished = unnest(
        {c: w.c[c].type for c in ("workflow_id", "epoch", "status", "result", "error")}
    )
    leases = unnest({c: w.c[c].type for c in ("workflow_id", "epoch")})
    recorded = from_workflow(step_values(lambda name: step.c[name]))
    stmts: dict[str, Any] = {
        "start_workflow": insert(w)
        .from_select(list(started), select(started, w))
        .on_conflict_do_nothing(index_elements=[w.c.workflow_id])
        .returning(*w.c, now.label("db_now")),
        "record_step": insert(st)
        .from_select(
            list(recorded),
            select(recorded, st)
            .select_from(step)
            .join(w, sa.and_(w.c.workflow_id == step.c.workflow_id, w.c.epoch == step.c.epoch)),
        )
        .on_conflict_do_nothing()
        .returning(st.c.workflow_id, st.c.position),
        "finish": sa.update(w)
        .where(w.c.workflow_id == finished.c.workflow_id, w.c.epoch == finished.c.epoch)
        .values(finished_values(lambda name: finished.c[name], now))
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
        .values(lease_expires_at=now + sa.cast(P("lease"), sa.Float)),
    }
    return {k: v.execution_options(binary_binds=True) for k, v in stmts.items()}
