"""PostgreSQL: step records partitioned by the month their workflow was created in.

Opt-in, per store (``Store.partition_by_month``). ``durable_steps`` becomes a
table partitioned by range of ``workflow_created_at`` (schema version 10: each
record's copy of its workflow's ``created_at``), with one partition per
calendar month (UTC) and a default partition for anything outside them. A
month's records all belong to the workflows created that month, so a cleanup
that removes every workflow of a past month drops its partition, instead of
deleting its records row by row (``StoreOps.cleanup``).

``durable_workflows`` stays one table: ``workflow_id`` is unique across the
store (a second call with an id resumes the first), and PostgreSQL enforces a
unique key on a partitioned table only within each partition. Its rows are
a tenth of the records, and narrow.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import re
from typing import TYPE_CHECKING, Any, NamedTuple

from durable.backends import _schema as s

if TYPE_CHECKING:
    from durable.backends._tx import Tx

log = logging.getLogger("durable")

AHEAD = 2
"""Months made ready beyond the current one, whenever the store is opened or cleaned up.

A process that writes on past them (open for months, never cleaning up)
writes into the default partition: correct, only not dropped whole.
"""

LOCK_WAIT = "2s"
"""How long creating or dropping a partition waits for the table's lock before giving up.

Meanwhile every read and write of step records waits behind it.
"""

TABLE = s.steps.name
DEFAULT = f"{TABLE}_default"
_OWNER = f"SELECT relowner::regrole::text FROM pg_class WHERE oid = to_regclass('{TABLE}')"
_NAME = re.compile(rf"^{TABLE}_(\d{{4}})_(\d{{2}})$")


class Month(NamedTuple):
    """A calendar month (UTC), and the partition that holds its workflows' records."""

    year: int
    month: int

    @property
    def name(self) -> str:
        return f"{TABLE}_{self.year:04d}_{self.month:02d}"

    @property
    def start(self) -> float:
        return float(calendar.timegm((self.year, self.month, 1, 0, 0, 0)))

    @property
    def end(self) -> float:
        return self.after(1).start

    def after(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    @classmethod
    def of(cls, when: float) -> Month:
        day = dt.datetime.fromtimestamp(when, dt.timezone.utc)
        return cls(day.year, day.month)

    @classmethod
    def named(cls, name: str) -> Month | None:
        found = _NAME.match(name)
        return cls(int(found[1]), int(found[2])) if found else None


def months_between(first: Month, last: Month) -> list[Month]:
    """``first`` to ``last``, both included."""
    months = [first]
    while months[-1] < last:
        months.append(months[-1].after(1))
    return months


async def _text(tx: Tx, sql: str, **params: Any) -> list[Any]:
    import sqlalchemy as sa

    return list((await tx.execute(sa.text(sql), params)).rows)


async def partitioned(tx: Tx) -> bool:
    """Whether this store's step records are partitioned."""
    return bool(
        await _text(
            tx, f"SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass('{TABLE}')"
        )
    )


async def months(tx: Tx) -> list[Month]:
    """The months that have a partition of their own, oldest first."""
    rows = await _text(
        tx,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        f"WHERE i.inhparent = to_regclass('{TABLE}')",
    )
    return sorted(m for (name,) in rows if (m := Month.named(name)) is not None)


async def prepare(tx: Tx, now: float) -> list[Month]:
    """Make partitions for this month and the next ``AHEAD``; the months made.

    Takes no lock when none is missing (every open of the store asks). A
    month whose records already went to the default partition (a process
    that wrote past the months made ready) gets none: its records stay there;
    nor does one whose partition cannot be made now (another transaction
    holds the table, a record of that month is on its way to the default
    partition, the role may not create tables): the next open tries again.
    """
    this = Month.of(now)
    wanted = months_between(this, this.after(AHEAD))
    if set(wanted) <= set(await months(tx)):
        return []
    # One maker at a time: two would both find a month missing.
    await _text(tx, f"SELECT pg_advisory_xact_lock(hashtext('{DEFAULT} ' || current_schema()))")
    have = set(await months(tx))
    # The table's owner owns its partitions, so that its cleanup may drop them.
    owner = (await _text(tx, _OWNER))[0][0]
    made = []
    for month in wanted:
        if month in have:
            continue
        if await _text(
            tx,
            f"SELECT 1 FROM {DEFAULT} WHERE {s.WORKFLOW_CREATED} >= {month.start!r} "
            f"AND {s.WORKFLOW_CREATED} < {month.end!r} LIMIT 1",
        ):
            log.warning(
                "step records of workflows created in %04d-%02d are in the default partition "
                "(%s); that month gets no partition of its own, and its records are removed "
                "row by row",
                month.year,
                month.month,
                DEFAULT,
            )
            continue
        failed = await _attempt(
            tx, _partition_of(month), f"ALTER TABLE {month.name} OWNER TO {owner}"
        ) and await _attempt(tx, _partition_of(month))  # made, if not given to the owner
        if failed is None:
            made.append(month)
        else:
            log.warning("the partition %s was not made: %s", month.name, failed)
    return made


async def _attempt(tx: Tx, *statements: str) -> str | None:
    """Run statements of partition upkeep, all or none, giving up soon if they must wait.

    Creating or dropping a partition takes the whole table's lock: waiting
    for it would hold up every step's read and write behind it. Returns why
    it failed (the transaction goes on without it), or None.
    """
    import psycopg

    await _text(tx, "SAVEPOINT durable_partitions")
    try:
        await _text(tx, f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
        for sql in statements:
            await _text(tx, sql)
    except (
        psycopg.errors.LockNotAvailable,  # the lock was not had within LOCK_WAIT
        psycopg.errors.InsufficientPrivilege,  # only the tables' owner may
        psycopg.errors.CheckViolation,  # a record of that month is on its way to the default
    ) as exc:
        await _text(tx, "ROLLBACK TO SAVEPOINT durable_partitions")
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    await _text(tx, "RELEASE SAVEPOINT durable_partitions")
    await _text(tx, "SET LOCAL lock_timeout = DEFAULT")
    return None


def _partition_of(month: Month) -> str:
    return (
        f"CREATE TABLE {month.name} PARTITION OF {TABLE} "
        f"FOR VALUES FROM ({month.start!r}) TO ({month.end!r})"
    )


async def convert(tx: Tx, now: float) -> int | None:
    """Partition an unpartitioned store's step records by month; how many were moved.

    None if they are partitioned already. Runs in the caller's transaction,
    which holds both tables for its length: every other reader and writer of
    the store waits until it commits.
    """
    import sqlalchemy as sa
    from sqlalchemy.dialects.postgresql import dialect
    from sqlalchemy.schema import CreateIndex

    if await partitioned(tx):
        return None
    # The lock that serialises schema migrations, then the tables themselves.
    await _text(tx, "SELECT pg_advisory_xact_lock(hashtext('durable-schema:' || current_schema()))")
    if await partitioned(tx):  # by another call, while this one waited
        return None
    await _text(tx, f"LOCK TABLE {s.workflows.name}, {TABLE} IN ACCESS EXCLUSIVE MODE")
    # Who owns the table and who may use it: a copy made by LIKE has neither.
    owner = (await _text(tx, _OWNER))[0][0]
    grants = await _text(
        tx,
        "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END, "
        "a.privilege_type, a.is_grantable FROM pg_class c, aclexplode(c.relacl) a "
        f"WHERE c.oid = to_regclass('{TABLE}') AND a.grantee <> c.relowner",
    )
    old = f"{TABLE}_unpartitioned"
    sequence = (await _text(tx, f"SELECT pg_get_serial_sequence('{TABLE}', 'id')"))[0][0]
    await _text(tx, f"ALTER TABLE {TABLE} RENAME TO {old}")
    for (name,) in await _text(
        tx,
        f"SELECT indexname FROM pg_indexes WHERE tablename = '{old}' "
        "AND schemaname = current_schema()",
    ):
        await _text(tx, f"ALTER INDEX {name} RENAME TO {name}_unpartitioned")
    # Columns, defaults (the id's sequence) and storage (payloads as they are) as they were.
    await _text(
        tx,
        f"CREATE TABLE {TABLE} (LIKE {old} INCLUDING DEFAULTS INCLUDING STORAGE) "
        f"PARTITION BY RANGE ({s.WORKFLOW_CREATED})",
    )
    first = (await _text(tx, f"SELECT min(created_at) FROM {s.workflows.name}"))[0][0]
    this = Month.of(now)
    for month in months_between(Month.of(first) if first is not None else this, this.after(AHEAD)):
        await _text(tx, _partition_of(month))
    await _text(tx, f"CREATE TABLE {DEFAULT} PARTITION OF {TABLE} DEFAULT")
    # Each record takes its workflow's creation time; one whose workflow is
    # gone (none should be) goes to the default partition.
    columns = [c.name for c in s.steps.c if c.name != s.WORKFLOW_CREATED]
    moved = await tx.execute(
        sa.text(
            f"INSERT INTO {TABLE} ({', '.join(columns)}, {s.WORKFLOW_CREATED}) "
            f"SELECT {', '.join('r.' + c for c in columns)}, "
            f"COALESCE(w.created_at, r.{s.WORKFLOW_CREATED}, 0) FROM {old} r "
            f"LEFT JOIN {s.workflows.name} w ON w.workflow_id = r.workflow_id"
        )
    )
    # A partitioned table's unique keys must hold its partition key: a
    # workflow's records all have the same one, so "one live record per
    # position" means what it meant.
    await _text(tx, f"ALTER TABLE {TABLE} ADD PRIMARY KEY (id, {s.WORKFLOW_CREATED})")
    pg = dialect()  # type: ignore[no-untyped-call]
    s.use_partial(pg.name)
    copy = s.steps.to_metadata(sa.MetaData())
    for index in s.steps.indexes:
        columns_of = [copy.c[c.name] for c in index.columns]
        if index.unique:
            columns_of.append(copy.c[s.WORKFLOW_CREATED])
        wider = sa.Index(index.name, *columns_of, unique=index.unique, **index.dialect_kwargs)
        await _text(tx, str(CreateIndex(wider).compile(dialect=pg)))
    for name in [TABLE, DEFAULT, *(m.name for m in await months(tx))]:
        await _text(tx, f"ALTER TABLE {name} OWNER TO {owner}")
    for grantee, privilege, grantable in grants:
        option = " WITH GRANT OPTION" if grantable else ""
        await _text(tx, f"GRANT {privilege} ON {TABLE} TO {grantee}{option}")
    await _text(tx, f"ALTER SEQUENCE {sequence} OWNED BY {TABLE}.id")
    await _text(tx, f"DROP TABLE {old}")
    await _text(tx, f"ANALYZE {TABLE}")
    return moved.rowcount


async def whole(tx: Tx, now: float, doomed: Any) -> list[Month]:
    """The past months whose every workflow a cleanup removes (``doomed``, a condition).

    Their records go by dropping their partitions. The current month never
    qualifies: a workflow may yet be created in it.
    """
    import sqlalchemy as sa

    w = s.workflows
    found = []
    this = Month.of(now)
    for month in await months(tx):
        if month >= this:
            break
        kept = sa.select(sa.literal(1)).where(
            w.c.created_at >= month.start, w.c.created_at < month.end, doomed.is_not(sa.true())
        )
        if not (await tx.execute(kept.limit(1))).rows:
            found.append(month)
    return found


async def drop(tx: Tx, months: list[Month]) -> None:
    """Drop these months' partitions, once their workflows' rows are deleted.

    A partition that cannot be dropped at once (a transaction on the table
    holds it past ``LOCK_WAIT``, or the role does not own it) is emptied row
    by row instead. So is one whose month still has a workflow (the cleanup
    holds the rows of what it removes, so none should): only the records of
    deleted workflows go.
    """
    w = s.workflows
    for month in months:
        standing = await _text(
            tx,
            f"SELECT 1 FROM {w.name} WHERE created_at >= {month.start!r} "
            f"AND created_at < {month.end!r} LIMIT 1",
        )
        if not standing:
            failed = await _attempt(tx, f"DROP TABLE {month.name}")
            if failed is None:
                continue
            log.warning("the partition %s was emptied row by row: %s", month.name, failed)
        # Through the table, not the partition: a role may use the one, not the other.
        await _text(
            tx,
            f"DELETE FROM {TABLE} r WHERE r.{s.WORKFLOW_CREATED} >= {month.start!r} "
            f"AND r.{s.WORKFLOW_CREATED} < {month.end!r} AND NOT EXISTS "
            f"(SELECT 1 FROM {w.name} w WHERE w.workflow_id = r.workflow_id)",
        )
