"""Values that reach a column: one check at every public entry point, one error everywhere.

Each bad value gets the same DurableError on SQLite and PostgreSQL (workflow
ids InvalidWorkflowIdError, everything else ConfigurationError: both
ValueErrors), before anything is written. Before this check, SQLite stored a
NUL that PostgreSQL refused with psycopg.DataError, a lone surrogate raised
UnicodeEncodeError, and a huge priority OverflowError or
NumericValueOutOfRange, some after the workflow had started.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

import durable
from durable.backends import _limits, _schema
from tests.conftest import durable_command

cli = durable_command()

TABLES = ("durable_workflows", "durable_steps", "durable_step_attempts", "durable_events")


def rows(url: str) -> dict[str, int]:
    """How many rows each table holds, read behind durable's back."""
    if url.startswith("sqlite"):
        path = url.split("sqlite:///", 1)[1]
        with contextlib.closing(sqlite3.connect(path)) as conn:
            return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    import psycopg

    base, _, query = url.partition("?")
    schema = dict(p.split("=") for p in query.split("&"))["schema"]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        counts = {}
        for t in TABLES:
            row = conn.execute(f"SELECT count(*) FROM {t}").fetchone()
            assert row is not None
            counts[t] = row[0]
        return counts


def execute(url: str, sql: str) -> None:
    if url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(url.split("sqlite:///", 1)[1])) as conn, conn:
            conn.execute(sql)
        return
    import psycopg

    base, _, query = url.partition("?")
    schema = dict(p.split("=") for p in query.split("&"))["schema"]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute(sql)


@durable.durable_workflow(name="limits.plain")
async def plain(x: int) -> int:
    return x


@durable.durable_workflow(name="limits.snapshots")
async def snapshots(label: str) -> str:
    await durable.snapshot(label)
    return label


@durable.durable_workflow(name="limits.waits")
async def waits(key: str) -> Any:
    return await durable.wait_for_event(key, timeout=0)


SURROGATE = "a\udcffb"
NUL = "a\x00b"

# What each text input is, and the longest value it takes.
TEXT_LIMITS = {
    "workflow id": _limits.WORKFLOW_ID_CHARS,
    "queue name": _limits.QUEUE_CHARS,
    "snapshot name": _limits.SNAPSHOT_CHARS,
    "event key": _limits.EVENT_KEY_CHARS,
    "idempotency_key": _limits.EVENT_KEY_CHARS,
    "name": _limits.NAME_COLUMN_CHARS,
}


def bad_texts(what: str) -> dict[str, Any]:
    return {
        "surrogate": SURROGATE,
        "nul": NUL,
        "too-long": "x" * (TEXT_LIMITS[what] + 1),
        "empty": "",
        "not-str": 42,
    }


# Every public entry point that takes a text value bound for a column: what
# the value is, and a call that passes it (an existing workflow is "done").
TEXT_APIS: dict[str, tuple[str, Callable[[durable.Runtime, Any], Any]]] = {
    "run(workflow_id=)": ("workflow id", lambda rt, v: plain.run_sync(1, workflow_id=v)),
    "enqueue(workflow_id=)": ("workflow id", lambda rt, v: plain.enqueue_sync(1, workflow_id=v)),
    "enqueue(queue=)": ("queue name", lambda rt, v: plain.enqueue_sync(2, queue=v)),
    "store.get_workflow": ("workflow id", lambda rt, v: rt.store.get_workflow(v)),
    "runtime.get_workflow": ("workflow id", lambda rt, v: rt.get_workflow(v)),
    "runtime.resume": ("workflow id", lambda rt, v: rt.resume_sync(v)),
    "store.history": ("workflow id", lambda rt, v: rt.store.history(v)),
    "store.snapshots": ("workflow id", lambda rt, v: rt.store.snapshots(v)),
    "store.cancel": ("workflow id", lambda rt, v: rt.store.cancel(v)),
    "store.restore(id)": ("workflow id", lambda rt, v: rt.store.restore(v, "s")),
    "store.restore(snapshot)": ("snapshot name", lambda rt, v: rt.store.restore("done", v)),
    "store.fork(snapshot)": ("snapshot name", lambda rt, v: rt.store.fork("done", v, "new")),
    "store.fork(new id)": ("workflow id", lambda rt, v: rt.store.fork("done", "s", v)),
    "durable.restore": ("workflow id", lambda rt, v: durable.restore(v, "s")),
    "durable.fork": ("workflow id", lambda rt, v: durable.fork("done", "s", v)),
    "store.list_workflows(name=)": ("name", lambda rt, v: rt.store.list_workflows(name=v)),
    "send_event(workflow_id)": ("workflow id", lambda rt, v: durable.send_event_sync(v, "k")),
    "send_event(key)": ("event key", lambda rt, v: durable.send_event_sync("done", v)),
    "send_event(idempotency_key=)": (
        "idempotency_key",
        lambda rt, v: durable.send_event_sync("done", "k", idempotency_key=v),
    ),
    "snapshot(name)": ("snapshot name", lambda rt, v: snapshots.run_sync(v, workflow_id="snap")),
    "wait_for_event(key)": ("event key", lambda rt, v: waits.run_sync(v, workflow_id="wait")),
    "Worker(queues=)": ("queue name", lambda rt, v: durable.Worker(runtime=rt, queues=[v])),
    "Worker(queue_limits=)": (
        "queue name",
        lambda rt, v: durable.Worker(runtime=rt, queue_limits={v: 1}),
    ),
}

TEXT_CASES = [
    pytest.param(api, value, id=f"{api}-{kind}")
    for api, (what, _) in TEXT_APIS.items()
    for kind, value in bad_texts(what).items()
]


@pytest.fixture
def store(db_url: str) -> Any:
    """A store holding one finished workflow ("done", with snapshot "s")."""
    with durable.Runtime(db_url) as runtime:
        assert snapshots.run_sync("s", workflow_id="done") == "s"
        yield runtime, db_url


@pytest.mark.parametrize(("api", "value"), TEXT_CASES)
def test_a_bad_text_value_is_refused_alike_before_anything_is_written(
    store: tuple[durable.Runtime, str], api: str, value: Any
) -> None:
    runtime, url = store
    what, call = TEXT_APIS[api]
    before = rows(url)
    expected = (
        durable.InvalidWorkflowIdError if what == "workflow id" else durable.ConfigurationError
    )
    in_body = api in ("snapshot(name)", "wait_for_event(key)")
    with pytest.raises(expected) as info:
        call(runtime, value)
    assert isinstance(info.value, ValueError)
    assert what in str(info.value)
    if in_body:
        # Refused inside a running workflow: the workflow fails with this very
        # error on every backend, and no record of the snapshot or wait is made.
        after = rows(url)
        assert after["durable_steps"] == before["durable_steps"]
        assert after["durable_events"] == before["durable_events"]
    else:
        assert rows(url) == before


BAD_INTS = [
    pytest.param(10**30, id="huge"),
    pytest.param(-(10**30), id="hugely-negative"),
    pytest.param(2**31, id="int32-max+1"),
    pytest.param(-(2**31) - 1, id="int32-min-1"),
    pytest.param(True, id="bool"),
    pytest.param("1", id="str"),
    pytest.param(1.5, id="float"),
]

INT_APIS: dict[str, Callable[[durable.Runtime, Any], Any]] = {
    "enqueue(priority=)": lambda rt, v: plain.enqueue_sync(3, priority=v),
    "Worker(concurrency=)": lambda rt, v: durable.Worker(runtime=rt, concurrency=v),
    "Worker(queue_limits=)": lambda rt, v: durable.Worker(runtime=rt, queue_limits={"q": v}),
}

INT64_APIS: dict[str, Callable[[durable.Runtime, Any], Any]] = {
    "store.list_workflows(limit=)": lambda rt, v: rt.store.list_workflows(limit=v),
    "store.prune(keep_snapshots=)": lambda rt, v: rt.store.prune(keep_snapshots=v),
}


@pytest.mark.parametrize("value", BAD_INTS)
@pytest.mark.parametrize("api", sorted(INT_APIS) + sorted(INT64_APIS))
def test_a_bad_integer_is_refused_alike_before_anything_is_written(
    store: tuple[durable.Runtime, str], api: str, value: Any
) -> None:
    runtime, url = store
    call = INT_APIS.get(api) or INT64_APIS[api]
    if api in INT64_APIS and isinstance(value, int) and abs(value) < 2**63:
        value = 2**63 if value > 0 else -(2**63) - 1
    before = rows(url)
    with pytest.raises(durable.ConfigurationError, match="must be an int"):
        call(runtime, value)
    assert rows(url) == before


@pytest.mark.parametrize(
    "value",
    [10**400, float("nan"), float("inf"), -float("inf")],
    ids=["huge", "nan", "inf", "-inf"],
)
@pytest.mark.parametrize("bound", ["since", "until"])
def test_a_time_filter_must_be_finite(
    store: tuple[durable.Runtime, str], bound: str, value: float
) -> None:
    runtime, _ = store
    with pytest.raises(
        durable.ConfigurationError, match=f"{bound}=.* is not a Unix timestamp durable can store"
    ):
        runtime.store.list_workflows(**{bound: value})


def test_the_extremes_that_fit_are_stored(store: tuple[durable.Runtime, str]) -> None:
    runtime, _ = store
    low, high = _limits.INT32
    plain.enqueue_sync(4, workflow_id="high", priority=high)
    plain.enqueue_sync(5, workflow_id="low", priority=low)
    assert [i.priority for i in runtime.store.list_workflows(status="enqueued")] == [low, high]
    long_id = "é" * _limits.WORKFLOW_ID_CHARS
    assert plain.run_sync(6, workflow_id=long_id) == 6
    assert runtime.get_workflow(long_id) is not None
    assert len(runtime.store.list_workflows(limit=2**63 - 1)) == 4


@pytest.mark.parametrize(
    ("decorate", "what"),
    [
        (lambda v: durable.step(name=v)(lambda: None), "name"),
        (lambda v: durable.durable_workflow(name=v)(lambda: None), "name"),
    ],
)
@pytest.mark.parametrize("value", [SURROGATE, NUL, "x" * (_limits.NAME_CHARS + 1), "", "  "])
def test_bad_step_and_workflow_names_are_refused_at_decoration(
    decorate: Callable[[Any], Any], what: str, value: str
) -> None:
    with pytest.raises(durable.ConfigurationError, match=f"{what} .*must"):
        decorate(value)


def test_an_event_key_must_fit_the_step_name_that_records_it() -> None:
    key = "\x01" * _limits.EVENT_KEY_CHARS  # 255 characters, four each once quoted
    with pytest.raises(durable.ConfigurationError, match="too long once quoted"):
        durable.send_event_sync("done", key)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # A byte that is not UTF-8 on the command line arrives as a lone surrogate.
        (["show", SURROGATE], "workflow id 'a\\udcffb' contains an unpaired surrogate"),
        (["history", SURROGATE], "unpaired surrogate"),
        (["cancel", SURROGATE], "unpaired surrogate"),
        (["restore", "done", SURROGATE], "snapshot name"),
        (["fork", "done", "s", SURROGATE], "workflow id"),
        (["send-event", "done", SURROGATE], "event key"),
        (["send-event", SURROGATE, "k"], "workflow id"),
        (["list", "--name", SURROGATE], "name"),
        (["list", "--limit", str(10**30)], "limit must be an int"),
    ],
)
def test_the_cli_reports_bad_values_in_one_line(
    store: tuple[durable.Runtime, str],
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, url = store
    before = rows(url)
    assert cli(["--url", url, *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert message in err
    assert rows(url) == before


def test_a_damaged_schema_version_is_a_clear_error(db_url: str) -> None:
    with durable.Runtime(db_url):
        pass
    execute(db_url, "UPDATE durable_meta SET value = 'four' WHERE key = 'schema_version'")
    with pytest.raises(durable.SchemaVersionError, match="damaged durable schema version"):
        durable.Runtime(db_url)
    execute(db_url, f"UPDATE durable_meta SET value = '{_schema.SCHEMA_VERSION}'")
    with durable.Runtime(db_url) as runtime:
        assert runtime.store.list_workflows() == []


def test_the_limits_are_the_columns() -> None:
    """The checks and the schema share their sizes: neither can drift."""

    def size(table: sa.Table, column: str) -> int:
        length = table.c[column].type.length  # type: ignore[attr-defined]
        assert isinstance(length, int)
        return length

    w, st, ev = _schema.workflows, _schema.steps, _schema.events
    assert size(w, "workflow_id") == size(st, "workflow_id") == _limits.WORKFLOW_ID_CHARS
    assert size(ev, "workflow_id") == size(w, "parent_id") == _limits.WORKFLOW_ID_CHARS
    assert size(w, "name") == size(st, "name") == _limits.NAME_COLUMN_CHARS
    assert _limits.NAME_CHARS <= _limits.NAME_COLUMN_CHARS
    assert size(w, "queue") == _limits.QUEUE_CHARS
    assert size(ev, "key") == size(ev, "idempotency_key") == _limits.EVENT_KEY_CHARS
    assert size(w, "waiting_for") >= len("child:") + _limits.WORKFLOW_ID_CHARS
    assert size(w, "forked_from") >= _limits.WORKFLOW_ID_CHARS + 1 + _limits.SNAPSHOT_CHARS
    assert isinstance(w.c.priority.type, sa.Integer)


@durable.durable_workflow(name="limits.sleeper")
async def sleeper() -> None:
    await durable.sleep(3600, suspend=True)


@durable.durable_workflow(name="limits.parent")
async def parent() -> None:
    await sleeper.run(workflow_id="c" * _limits.WORKFLOW_ID_CHARS)


def test_a_parent_waits_for_a_child_of_the_longest_id(db_url: str) -> None:
    """``waiting_for`` holds "child:" and the child's id: wider than an id (schema 5)."""
    with durable.Runtime(db_url) as runtime:
        with pytest.raises(durable.WorkflowSuspendedError):
            parent.run_sync(workflow_id="p")
        info = runtime.get_workflow("p")
        assert info is not None
        assert info.waiting_for == "child:" + "c" * _limits.WORKFLOW_ID_CHARS


def test_a_version_4_store_is_migrated_to_the_current_version(db_url: str) -> None:
    with durable.Runtime(db_url):
        pass
    # Make it what durable-sdk wrote with schema version 4 (nor 6's deadlines,
    # streams and sessions, nor 7's schedules, nor 8's queues, nor 9's indexes,
    # nor 10's copy of the workflow's creation time in its step records).
    execute(db_url, "ALTER TABLE durable_steps DROP COLUMN workflow_created_at")
    execute(db_url, "DROP INDEX ix_durable_steps_superseded")
    execute(db_url, "DROP INDEX ix_durable_workflows_created")
    execute(db_url, "DROP TABLE durable_queues")
    execute(db_url, "DROP INDEX ix_durable_workflows_queue_started")
    execute(db_url, "DROP INDEX ix_durable_workflows_start_by")
    for column in ("partition_key", "start_by"):
        execute(db_url, f"ALTER TABLE durable_workflows DROP COLUMN {column}")
    execute(db_url, "DROP TABLE durable_schedules")
    execute(db_url, "DROP INDEX ix_durable_workflows_dedup")
    execute(db_url, "ALTER TABLE durable_workflows DROP COLUMN dedup_id")
    execute(db_url, "ALTER TABLE durable_workflows DROP COLUMN started_at")
    execute(db_url, "DROP INDEX ix_durable_workflows_parent")
    execute(db_url, "DROP TABLE durable_streams")
    execute(db_url, "DROP TABLE durable_sessions")
    for column in ("timeout", "deadline"):
        execute(db_url, f"ALTER TABLE durable_workflows DROP COLUMN {column}")
    if not db_url.startswith("sqlite"):
        execute(db_url, "ALTER TABLE durable_workflows ALTER COLUMN waiting_for TYPE VARCHAR(255)")
    execute(db_url, "UPDATE durable_meta SET value = '4' WHERE key = 'schema_version'")
    with durable.Runtime(db_url) as runtime:
        with pytest.raises(durable.WorkflowSuspendedError):
            parent.run_sync(workflow_id="p")
        info = runtime.get_workflow("p")
        assert info is not None
        assert info.waiting_for is not None
        assert len(info.waiting_for) == len("child:") + _limits.WORKFLOW_ID_CHARS
        assert info.deadline is None
    with durable.Store.open(db_url) as store:
        assert store.schedules() == []  # version 7's table is there
        assert store.queues() == []  # and version 8's
        store.set_queue("mail", concurrency=2, partition_concurrency=1)
        assert store.get_queue("mail").concurrency == 2
    assert version(db_url) == str(_schema.SCHEMA_VERSION) == "10"
    assert "ix_durable_workflows_created" in indexes(db_url)
    assert "ix_durable_steps_superseded" in indexes(db_url, "durable_steps")
    assert "ix_durable_workflows_status" not in indexes(db_url)


def test_a_version_9_store_loses_its_status_index_and_keeps_its_workflows(db_url: str) -> None:
    """Version 10 drops the index of status alone; searches by status read the queue index."""
    with durable.Runtime(db_url) as runtime:
        assert plain.run_sync(1, workflow_id="done") == 1
        with pytest.raises(durable.WorkflowSuspendedError):
            parent.run_sync(workflow_id="p")
    # Make it what durable-sdk wrote with schema version 9: this index more, a column less.
    execute(db_url, "CREATE INDEX ix_durable_workflows_status ON durable_workflows (status)")
    execute(db_url, "ALTER TABLE durable_steps DROP COLUMN workflow_created_at")
    execute(db_url, "UPDATE durable_meta SET value = '9' WHERE key = 'schema_version'")
    before = indexes(db_url)
    with durable.Runtime(db_url) as runtime:
        assert version(db_url) == "10"
        assert before - indexes(db_url) == {"ix_durable_workflows_status"}
        assert indexes(db_url) - before == set()
        waiting = [durable.WorkflowStatus.WAITING]
        found = {w.workflow_id for w in runtime.store.list_workflows(status=waiting)}
        assert found == {"p", "c" * _limits.WORKFLOW_ID_CHARS}
        assert runtime.store.metrics().by_status == {"success": 1, "waiting": 2}
        assert plain.run_sync(1, workflow_id="done") == 1  # the recorded result
        assert plain.run_sync(2, workflow_id="new") == 2
    # Opening it again changes nothing more.
    with durable.Runtime(db_url):
        assert version(db_url) == "10"


_half_done: list[str] = []


@durable.step(name="limits.v9_step")
def _v9_step(n: int) -> int:
    _half_done.append(f"step {n}")
    return n


@durable.durable_workflow(name="limits.v9_run")
def _v9_run() -> list[int]:
    first = _v9_step(1)
    if "step 2" not in _half_done and not _half_done[-1:] == ["resume"]:
        raise RuntimeError("crashed half way")
    return [first, _v9_step(2)]


def test_a_run_half_done_under_version_9_resumes_after_the_migration_to_10(
    db_url: str,
) -> None:
    _half_done.clear()
    with durable.Runtime(db_url), pytest.raises(RuntimeError):
        _v9_run.run_sync(workflow_id="half")
    # What version 9 wrote: records without their workflow's creation time.
    execute(db_url, "ALTER TABLE durable_steps DROP COLUMN workflow_created_at")
    execute(db_url, "UPDATE durable_meta SET value = '9' WHERE key = 'schema_version'")
    _half_done.append("resume")
    with durable.Runtime(db_url):
        assert _v9_run.run_sync(workflow_id="half") == [1, 2]
        assert _v9_run.run_sync(workflow_id="half") == [1, 2]
    assert _half_done == ["step 1", "resume", "step 2"]  # step 1 replayed from version 9's record
    assert version(db_url) == "10"
    copied = select(
        db_url,
        "SELECT s.position, s.workflow_created_at = w.created_at FROM durable_steps s"
        " JOIN durable_workflows w ON w.workflow_id = s.workflow_id ORDER BY s.position",
    )
    # The old record has none (an unpartitioned store needs none); the new one its workflow's.
    assert [(p, None if same is None else bool(same)) for p, same in copied] == [
        (1, None),
        (2, True),
    ]


def select(url: str, sql: str) -> list[tuple[Any, ...]]:
    if url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(url.split("sqlite:///", 1)[1])) as conn:
            return [tuple(r) for r in conn.execute(sql)]
    import psycopg

    base, _, query = url.partition("?")
    schema = dict(p.split("=") for p in query.split("&"))["schema"]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        return [tuple(r) for r in conn.execute(sql).fetchall()]


def indexes(url: str, table: str = "durable_workflows") -> set[str]:
    """The names of the indexes of ``table``."""
    if url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(url.split("sqlite:///", 1)[1])) as conn:
            sql = "SELECT name FROM sqlite_master WHERE tbl_name = ?"
            return {row[0] for row in conn.execute(sql, (table,))}
    import psycopg

    base, _, query = url.partition("?")
    schema = dict(p.split("=") for p in query.split("&"))["schema"]
    with psycopg.connect(base, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
            (schema, table),
        ).fetchall()
        return {row[0] for row in rows}


def version(url: str) -> str:
    if url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(url.split("sqlite:///", 1)[1])) as conn:
            return str(conn.execute("SELECT value FROM durable_meta").fetchone()[0])
    import psycopg

    base, _, query = url.partition("?")
    schema = dict(p.split("=") for p in query.split("&"))["schema"]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        row = conn.execute("SELECT value FROM durable_meta").fetchone()
        assert row is not None
        return str(row[0])


@pytest.mark.parametrize("length", [234, 300, 500])
def test_a_workflow_with_a_long_name_can_be_called_without_an_id(
    runtime: durable.Runtime, length: int
) -> None:
    # Names may be up to 500 characters, ids 255: "<name>:<fingerprint>" of a
    # name over 234 characters used to be refused as too long an id.
    runs: list[int] = []

    def body(x: int) -> int:
        runs.append(x)
        return x * 2

    prefix = "limits.long_name_"
    first = durable.durable_workflow(name=prefix + "a" * (length - len(prefix)))(body)
    twin = durable.durable_workflow(name=prefix + "a" * (length - len(prefix) - 1) + "b")(body)
    assert first.run_sync(4) == 8
    assert first.run_sync(4) == 8  # the same derived id: replayed, not run again
    assert twin.run_sync(4) == 8  # same first 150 characters, another workflow
    assert runs == [4, 4]
    ids = {first.id_for(4), twin.id_for(4)}
    assert len(ids) == 2
    assert all(len(i) <= _limits.WORKFLOW_ID_CHARS for i in ids)
    assert all(runtime.store.get_workflow(i) is not None for i in ids)
