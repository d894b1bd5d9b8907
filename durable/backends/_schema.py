"""The schema, defined once for every SQL backend, and its migrations.

The schema version is stored in ``durable_meta``. Opening a database creates
the schema if it is new, migrates it step by step if it is older, and refuses
it, changing nothing, if a newer durable-sdk wrote it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.schema import CreateColumn, CreateIndex, CreateTable

from durable._errors import ConfigurationError, SchemaVersionError
from durable._records import WorkflowStatus
from durable.backends._limits import (
    EVENT_KEY_CHARS,
    NAME_COLUMN_CHARS,
    QUEUE_CHARS,
    SCHEMA_VERSION,
    WAITING_FOR_CHARS,
    WORKFLOW_ID_CHARS,
)

log = logging.getLogger("durable")

WORKFLOW_CREATED = "workflow_created_at"
"""The step records' copy of their workflow's ``created_at`` (version 10)."""

metadata = sa.MetaData()

meta = sa.Table(
    "durable_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
)

workflows = sa.Table(
    "durable_workflows",
    metadata,
    sa.Column("workflow_id", sa.String(WORKFLOW_ID_CHARS), primary_key=True),
    sa.Column("name", sa.String(NAME_COLUMN_CHARS), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("args_fingerprint", sa.String(64), nullable=False),
    sa.Column("args", sa.LargeBinary, nullable=True),
    sa.Column("result", sa.LargeBinary, nullable=True),
    sa.Column("error", sa.LargeBinary, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    # The fencing token: bumped by every claim; every write by an owner is
    # conditional on it, so an owner that lost the workflow writes nothing.
    sa.Column("epoch", sa.Integer, nullable=False),
    sa.Column("owner_host", sa.String(255), nullable=True),
    sa.Column("owner_pid", sa.Integer, nullable=True),
    sa.Column("owner_started", sa.String(32), nullable=True),
    sa.Column("lease_expires_at", sa.Float, nullable=True),
    sa.Column("parent_id", sa.String(WORKFLOW_ID_CHARS), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=True),
    # "<workflow id>@<snapshot>" for a workflow made by fork() (version 2).
    sa.Column("forked_from", sa.String(512), nullable=True),
    # Version 4: queues (a worker claims the highest priority, then the
    # oldest), durable waits (when the timer fires, which event is awaited)
    # and crash loops (recoveries in a row after the owner died).
    sa.Column("queue", sa.String(QUEUE_CHARS), nullable=True),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("wake_at", sa.Float, nullable=True),
    # Version 5: 512 (was 255), to hold "child:" and a workflow id of 255.
    sa.Column("waiting_for", sa.String(WAITING_FOR_CHARS), nullable=True),
    sa.Column("recoveries", sa.Integer, nullable=False, server_default="0"),
    # Version 6: the workflow's timeout (seconds, as the call gave it) and
    # its deadline (set when it first starts, kept across resumes).
    sa.Column("timeout", sa.Float, nullable=True),
    sa.Column("deadline", sa.Float, nullable=True),
    # Version 7: an enqueue's deduplication id, unique among the queue's
    # workflows with work left (a partial index: finished ones drop out).
    sa.Column("dedup_id", sa.String(EVENT_KEY_CHARS), nullable=True),
    # Version 7 too: when it first began running (a queued one: when first claimed).
    sa.Column("started_at", sa.Float, nullable=True),
    # Version 8: an enqueued one's partition of its queue, and when it must
    # have started by (its queue timeout).
    sa.Column("partition_key", sa.String(EVENT_KEY_CHARS), nullable=True),
    sa.Column("start_by", sa.Float, nullable=True),
    # Also what a search by status alone reads (recovery's running and waiting
    # workflows, a listing or a cleanup by status): its first column. Version
    # 10 dropped the index of status alone, which this one's prefix makes
    # redundant, and which cost each workflow 3 of its 18.7 pages written
    # (_v9_to_v10).
    sa.Index("ix_durable_workflows_queue", "status", "queue", "priority", "created_at"),
    sa.Index("ix_durable_workflows_name_created", "name", "created_at"),
    # Version 9: listing the newest workflows (a dashboard's first page, the
    # next page from a cursor, a time range) reads the index, not every row.
    sa.Index("ix_durable_workflows_created", "created_at"),
)

_PARTIAL: list[tuple[sa.Index, sa.ColumnElement[bool]]] = []


def _partial(
    name: str, *columns: sa.Column[Any], where: sa.ColumnElement[bool], unique: bool = False
) -> sa.Index:
    """An index of only the rows ``where`` holds (a partial index, on both databases).

    The condition is handed to the dialect in use when a schema is made
    (:func:`use_partial`): naming both dialects' options here would import
    PostgreSQL's dialect, and its drivers' modules, into every SQLite process.
    """
    index = sa.Index(name, *columns, unique=unique)
    _PARTIAL.append((index, where))
    return index


def use_partial(dialect: str) -> None:
    for index, where in _PARTIAL:
        index.dialect_kwargs[f"{dialect}_where"] = where


_PENDING = sa.and_(
    workflows.c.dedup_id.is_not(None),
    sa.or_(*(workflows.c.status == status.value for status in WorkflowStatus if status.active)),
)
_partial(
    "ix_durable_workflows_dedup",
    workflows.c.queue,
    workflows.c.dedup_id,
    unique=True,
    where=_PENDING,
)

# Version 8: a rate limit counts a queue's recent starts; a queue timeout
# looks for enqueued workflows past their start_by. Only queued rows are
# indexed: a direct call's start costs no index entry.
_partial(
    "ix_durable_workflows_queue_started",
    workflows.c.queue,
    workflows.c.started_at,
    where=workflows.c.queue.is_not(None),
)
_partial(
    "ix_durable_workflows_start_by",
    workflows.c.start_by,
    where=workflows.c.start_by.is_not(None),
)

# Version 6: a workflow's children, for cancelling and resuming a tree. Only
# children are indexed: a top-level workflow's start costs no index entry.
_partial(
    "ix_durable_workflows_parent",
    workflows.c.parent_id,
    where=workflows.c.parent_id.is_not(None),
)

steps = sa.Table(
    "durable_steps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("workflow_id", sa.String(WORKFLOW_ID_CHARS), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("name", sa.String(NAME_COLUMN_CHARS), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("output", sa.LargeBinary, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=False),
    # Superseded records are kept for audit but never replayed; at most one
    # live record stands at a position, which makes "first commit wins" a
    # property of the index rather than of the code.
    sa.Column("superseded", sa.Boolean, nullable=False, default=False),
    # Version 2: what the record is (step, child, snapshot, compensation), the
    # transaction that committed it, and its error in words (so a history
    # never has to unpickle anything).
    sa.Column("kind", sa.String(16), nullable=False, server_default="step"),
    sa.Column("tx_id", sa.String(64), nullable=True),
    sa.Column("error_type", sa.String(512), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    # Version 3: a fingerprint of the code that produced the record (its
    # bytecode and constants, and those of project-local functions it calls).
    sa.Column("code_hash", sa.String(64), nullable=True),
    # Version 10: its workflow's created_at, copied from the workflow's row by
    # the statement that writes the record. It is what a PostgreSQL store whose
    # step records are partitioned by month partitions them by
    # (``_partitions``): a month's records all belong to the workflows
    # created in that month, so retention can drop the month whole. Records
    # written before version 10 have none, and need none unpartitioned.
    sa.Column(WORKFLOW_CREATED, sa.Float, nullable=True),
)

LIVE_STEP_WHERE = steps.c.superseded == sa.false()

_partial(
    "ux_durable_steps_live",
    steps.c.workflow_id,
    steps.c.position,
    unique=True,
    where=LIVE_STEP_WHERE,
)

# Version 9: a workflow's superseded records, so that what reads all of a
# workflow's records (its history, a cleanup) reads two indexes, each of one
# kind, and not every step row of the store. Rows enter it only when they are
# superseded: a step's commit writes no more index entries than before.
SUPERSEDED_STEP_WHERE = steps.c.superseded == sa.true()

_partial(
    "ix_durable_steps_superseded",
    steps.c.workflow_id,
    steps.c.position,
    where=SUPERSEDED_STEP_WHERE,
)
# All of a workflow's records, as two conditions, each served by its index.
LIVE_AND_SUPERSEDED = (LIVE_STEP_WHERE, SUPERSEDED_STEP_WHERE)

step_attempts = sa.Table(
    "durable_step_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("workflow_id", sa.String(WORKFLOW_ID_CHARS), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("name", sa.String(NAME_COLUMN_CHARS), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=False),
    sa.Column("error_type", sa.String(512), nullable=False),
    sa.Column("error_message", sa.Text, nullable=False),
    sa.Index("ix_durable_step_attempts_workflow", "workflow_id", "position"),
)

# Version 4: events sent to workflows. An event stays until the workflow
# consumes it, in the same transaction that records the step holding its
# value (so it is delivered exactly once, and never lost if sent early).
events = sa.Table(
    "durable_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("workflow_id", sa.String(WORKFLOW_ID_CHARS), nullable=False),
    sa.Column("key", sa.String(EVENT_KEY_CHARS), nullable=False),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("sent_at", sa.Float, nullable=False),
    sa.Column("idempotency_key", sa.String(EVENT_KEY_CHARS), nullable=True),
    sa.Column("consumed_at", sa.Float, nullable=True),
    sa.Index("ix_durable_events_pending", "workflow_id", "key", "consumed_at", "id"),
    # Per workflow: one request id may well be sent to several workflows.
    sa.Index("ux_durable_events_idempotency", "workflow_id", "idempotency_key", unique=True),
)

# Version 6: streams. What a generator step yields, and what a workflow writes
# with durable.write_stream, as it comes, for readers outside the workflow.
# "start" opens a run of a generator step (a second one before "end" tells
# readers it started again after a crash), "end" closes the stream.
streams = sa.Table(
    "durable_streams",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("workflow_id", sa.String(WORKFLOW_ID_CHARS), nullable=False),
    sa.Column("key", sa.String(EVENT_KEY_CHARS), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("value", sa.LargeBinary, nullable=True),
    sa.Column("written_at", sa.Float, nullable=False),
    sa.Index("ix_durable_streams_key", "workflow_id", "key", "id"),
)

# Version 6: session state, shared by the workflows of one session. Each
# write bumps the key's version; a compare-and-set writes only over the
# version it read.
sessions = sa.Table(
    "durable_sessions",
    metadata,
    sa.Column("session_id", sa.String(EVENT_KEY_CHARS), primary_key=True),
    sa.Column("key", sa.String(EVENT_KEY_CHARS), primary_key=True),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_durable_sessions_updated", "updated_at"),
)

# Version 7: schedules. A tick fires by enqueueing the workflow under an id
# that names the tick, so however many workers fire it, one row is inserted;
# last_tick only spares them recomputing what was fired.
schedules = sa.Table(
    "durable_schedules",
    metadata,
    sa.Column("name", sa.String(NAME_COLUMN_CHARS), primary_key=True),
    sa.Column("workflow", sa.String(NAME_COLUMN_CHARS), nullable=False),
    sa.Column("cron", sa.String(256), nullable=True),
    sa.Column("every", sa.Float, nullable=True),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("args", sa.LargeBinary, nullable=True),
    sa.Column("queue", sa.String(QUEUE_CHARS), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("catch_up", sa.String(16), nullable=False),
    sa.Column("paused", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_tick", sa.Float, nullable=False),
    sa.Column("backfill_from", sa.Float, nullable=True),
    sa.Column("backfill_to", sa.Float, nullable=True),
)

# Version 8: queues' flow control, declared in code or set at run time. A
# queue with no row has none (every queue works without one).
queues = sa.Table(
    "durable_queues",
    metadata,
    sa.Column("name", sa.String(QUEUE_CHARS), primary_key=True),
    sa.Column("concurrency", sa.Integer, nullable=True),
    sa.Column("worker_concurrency", sa.Integer, nullable=True),
    sa.Column("rate_limit", sa.Integer, nullable=True),
    sa.Column("rate_period", sa.Float, nullable=True),
    sa.Column("partition_concurrency", sa.Integer, nullable=True),
    sa.Column("paused", sa.Boolean, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

Migration = Callable[[sa.Connection], None]


def _v1_to_v2(conn: sa.Connection) -> None:
    for statement in (
        "ALTER TABLE durable_steps ADD COLUMN kind VARCHAR(16) NOT NULL DEFAULT 'step'",
        "ALTER TABLE durable_steps ADD COLUMN tx_id VARCHAR(64)",
        "ALTER TABLE durable_steps ADD COLUMN error_type VARCHAR(512)",
        "ALTER TABLE durable_steps ADD COLUMN error_message TEXT",
        "ALTER TABLE durable_workflows ADD COLUMN forked_from VARCHAR(512)",
    ):
        conn.exec_driver_sql(statement)


# MIGRATIONS[n] brings a database from version n to n + 1, inside the
# transaction that opens it: all of it happens, or none.
def _v2_to_v3(conn: sa.Connection) -> None:
    conn.exec_driver_sql("ALTER TABLE durable_steps ADD COLUMN code_hash VARCHAR(64)")


def _v3_to_v4(conn: sa.Connection) -> None:
    for column in ("queue", "priority", "wake_at", "waiting_for", "recoveries"):
        ddl = CreateColumn(workflows.c[column]).compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE durable_workflows ADD COLUMN {ddl}")
    index = next(i for i in workflows.indexes if i.name == "ix_durable_workflows_queue")
    conn.exec_driver_sql(str(CreateIndex(index).compile(dialect=conn.dialect)))
    conn.exec_driver_sql(str(CreateTable(events).compile(dialect=conn.dialect)))
    for index in events.indexes:
        conn.exec_driver_sql(str(CreateIndex(index).compile(dialect=conn.dialect)))


def _v4_to_v5(conn: sa.Connection) -> None:
    # PostgreSQL: widening a VARCHAR changes the catalog only, no row is
    # rewritten. SQLite does not enforce the length: nothing to do.
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "ALTER TABLE durable_workflows ALTER COLUMN waiting_for "
            f"TYPE VARCHAR({WAITING_FOR_CHARS})"
        )


def _v5_to_v6(conn: sa.Connection) -> None:
    for column in ("timeout", "deadline"):
        ddl = CreateColumn(workflows.c[column]).compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE durable_workflows ADD COLUMN {ddl}")
    index = next(i for i in workflows.indexes if i.name == "ix_durable_workflows_parent")
    conn.exec_driver_sql(str(CreateIndex(index).compile(dialect=conn.dialect)))
    for table in (streams, sessions):
        conn.exec_driver_sql(str(CreateTable(table).compile(dialect=conn.dialect)))
        for index in table.indexes:
            conn.exec_driver_sql(str(CreateIndex(index).compile(dialect=conn.dialect)))
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(_set_storage_external(table.name, "value"))


def _v6_to_v7(conn: sa.Connection) -> None:
    conn.exec_driver_sql(str(CreateTable(schedules).compile(dialect=conn.dialect)))
    for column in ("dedup_id", "started_at"):
        ddl = CreateColumn(workflows.c[column]).compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE durable_workflows ADD COLUMN {ddl}")
    index = next(i for i in workflows.indexes if i.name == "ix_durable_workflows_dedup")
    conn.exec_driver_sql(str(CreateIndex(index).compile(dialect=conn.dialect)))
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_set_storage_external(schedules.name, "args"))


def _v7_to_v8(conn: sa.Connection) -> None:
    conn.exec_driver_sql(str(CreateTable(queues).compile(dialect=conn.dialect)))
    for column in ("partition_key", "start_by"):
        ddl = CreateColumn(workflows.c[column]).compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE durable_workflows ADD COLUMN {ddl}")
    for name in ("ix_durable_workflows_queue_started", "ix_durable_workflows_start_by"):
        index = next(i for i in workflows.indexes if i.name == name)
        conn.exec_driver_sql(str(CreateIndex(index).compile(dialect=conn.dialect)))


def _v8_to_v9(conn: sa.Connection) -> None:
    index = next(i for i in workflows.indexes if i.name == "ix_durable_workflows_created")
    conn.exec_driver_sql(str(CreateIndex(index).compile(dialect=conn.dialect)))
    index = next(i for i in steps.indexes if i.name == "ix_durable_steps_superseded")
    conn.exec_driver_sql(str(CreateIndex(index).compile(dialect=conn.dialect)))


def _v9_to_v10(conn: sa.Connection) -> None:
    # A nullable column without a default: no row is rewritten on either database.
    ddl = CreateColumn(steps.c[WORKFLOW_CREATED]).compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE durable_steps ADD COLUMN {ddl}")
    # The index of status alone: every search by status is served as well by
    # the prefix of ix_durable_workflows_queue (same plans, on SQLite and
    # PostgreSQL), and each start and each finish wrote it: about 3 of the 18.7
    # pages a short workflow writes to SQLite's log (benchmarks/RESULTS.md,
    # "Issue 21, fourth round"). Dropping an index rewrites no row.
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_durable_workflows_status")


MIGRATIONS: dict[int, Migration] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
    4: _v4_to_v5,
    5: _v5_to_v6,
    6: _v6_to_v7,
    7: _v7_to_v8,
    8: _v8_to_v9,
    9: _v9_to_v10,
}


def ensure_schema(conn: sa.Connection, where: str, schema: str | None = None) -> int:
    """Create or migrate the schema inside the caller's transaction.

    Returns the version the database had before (0 for a new one).
    """
    use_partial(conn.dialect.name)
    found = check_version(conn, where, schema)
    if found == 0:
        # No half-made schema can exist (DDL is transactional on both
        # databases), and checking would look in the wrong schema. The DDL
        # is compiled once per dialect: test suites open many fresh stores.
        for statement in creation(conn.dialect):
            conn.exec_driver_sql(statement)
        return 0
    for version in range(found, SCHEMA_VERSION):
        MIGRATIONS[version](conn)
    if found != SCHEMA_VERSION:
        conn.execute(
            sa.update(meta).where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION))
        )
    if conn.dialect.name == "postgresql":
        _store_payloads_as_they_are(conn)
    return found


def refuse_foreign_tables(
    conn: sa.Connection, where: str, schema: str | None = None, shared: bool = False
) -> None:
    """Refuse, before anything is written, a database of other tables and no durable store.

    Opening a store creates durable's tables in a new database; in one that
    holds an application's tables it would add them beside those (and switch
    a SQLite file to WAL), which nobody asked for unless the URL says
    ``shared=true``. Called only when no durable schema version is stored.
    """
    if shared:
        return
    # durable's own tables are not "other" ones: another process may have
    # created the store between the version check and this look (SQLite reads
    # each statement in its own snapshot); creating it again finds its version.
    ours = {table.name for table in metadata.sorted_tables}
    others = sorted(t for t in sa.inspect(conn).get_table_names(schema=schema) if t not in ours)
    if not others:
        return
    place = f"schema {schema!r} of the database" if schema else "database"
    shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
    raise ConfigurationError(
        f"the {place} at {where} holds other tables ({shown}) and no durable store; it was "
        f"left untouched. Give durable a {'schema' if schema else 'file'} of its own, or "
        f"add shared=true to the URL's options to keep durable's tables beside these",
        url=where,
    )


def _payload_columns() -> list[tuple[str, str]]:
    return [
        (table.name, column.name)
        for table in metadata.sorted_tables
        for column in table.c
        if isinstance(column.type, sa.LargeBinary)
    ]


def _set_storage_external(table: str, column: str) -> str:
    return f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE EXTERNAL"


def _store_payloads_as_they_are(conn: sa.Connection) -> None:
    """PostgreSQL: no pglz compression of payload columns (``STORAGE EXTERNAL``).

    durable compresses payloads itself, when a sample says it pays (Codec).
    pglz would try again on every value over 2 kB, and on one whose start
    compresses (a pickled dict of some text and an image) it goes through the
    whole value before finding it does not: about 13 ms per MiB of random
    bytes, against 2 ms to store them (benchmarks/RESULTS.md). New databases
    get this in their DDL; older ones here, once (it changes no stored row).
    """
    wanted = _payload_columns()
    found = conn.execute(
        sa.text(
            "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " WHERE c.oid = ANY(CAST(:tables AS regclass[])) AND a.attname = ANY(:columns)"
            " AND a.attstorage <> 'e'"
        ),
        {"tables": sorted({t for t, _ in wanted}), "columns": sorted({c for _, c in wanted})},
    )
    missing = [(table, column) for table, column in found if (table, column) in wanted]
    if not missing:
        return
    # Only the tables' owner may do this, and it locks each table briefly:
    # a store opened by a role that may only read and write rows, or while a
    # long transaction holds a table, opens as before and says why.
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("SET LOCAL lock_timeout = '1s'")
            for table, column in missing:
                conn.exec_driver_sql(_set_storage_external(table, column))
            conn.exec_driver_sql("SET LOCAL lock_timeout = DEFAULT")
    except sa.exc.DBAPIError as exc:
        log.warning(
            "payload columns keep PostgreSQL's own compression, which costs time on large "
            "payloads: %s (the tables' owner can open the store once to change this)",
            str(exc.orig).strip(),
        )


_DDL: dict[str, list[str]] = {}


def creation(dialect: sa.Dialect) -> list[str]:
    """The statements that make a new store: its tables, indexes and version.

    Compiled once per dialect: test suites open many fresh stores.
    """
    statements = _DDL.get(dialect.name)
    if statements is None:
        use_partial(dialect.name)
        statements = []
        for table in metadata.sorted_tables:
            statements.append(str(CreateTable(table).compile(dialect=dialect)).strip())
            statements += [
                str(CreateIndex(index).compile(dialect=dialect)).strip()
                for index in sorted(table.indexes, key=lambda i: str(i.name))
            ]
        if dialect.name == "postgresql":
            statements += [_set_storage_external(t, c) for t, c in _payload_columns()]
        version = sa.insert(meta).values(key="schema_version", value=str(SCHEMA_VERSION))
        statements.append(
            str(version.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        )
        _DDL[dialect.name] = statements
    return statements


def check_version(conn: sa.Connection, where: str, schema: str | None = None) -> int:
    """The stored schema version; SchemaVersionError if it is newer than ours."""
    try:
        found = stored_version(conn, schema)
    except ValueError as exc:
        raise SchemaVersionError(
            f"the database at {where} has a damaged durable schema version ({exc}); it "
            "was left untouched. If it is a durable store, put the version back in "
            "durable_meta (key 'schema_version'); if not, point durable at another database.",
            found=None,
            supported=SCHEMA_VERSION,
        ) from None
    if found > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the database at {where} has durable schema version {found}, newer "
            f"than this durable-sdk understands ({SCHEMA_VERSION}); it was left "
            "untouched. Upgrade durable-sdk to use it.",
            found=found,
            supported=SCHEMA_VERSION,
        )
    return found


def stored_version(conn: sa.Connection, schema: str | None = None) -> int:
    """The schema version recorded in the database (0 if it has none)."""
    if not sa.inspect(conn).has_table(meta.name, schema=schema):
        return 0
    value = conn.execute(
        sa.select(meta.c.value).where(meta.c.key == "schema_version")
    ).scalar_one_or_none()
    if value is None:
        return 0
    if not value.isascii() or not value.isdigit():
        raise ValueError(f"{value!r} is not a version number")
    return int(value)
