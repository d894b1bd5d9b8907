"""Group commit: concurrent workflows of one event loop share commits, never early.

On SQLite the statements are counted with sqlite3's trace callback on the
store's own connection: concurrent writes must share transactions, a lone
workflow's must not pay for grouping, and a write that fails (fenced off by a
cancel) must fail alone. On PostgreSQL they are recorded as the store sends
them: a group's small step records share one statement.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import durable
from durable.backends._group_commit import SHARED_RECORD_BYTES
from durable.backends._sqlite import SqliteBackend


@contextmanager
def traced(runtime: durable.Runtime) -> Iterator[list[str]]:
    """The SQL statements the store runs on this thread, in order."""
    backend = runtime.backend
    assert isinstance(backend, SqliteBackend)
    conn: sqlite3.Connection = backend._connection()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        yield statements
    finally:
        conn.set_trace_callback(None)


def _count(statements: list[str], prefix: str) -> int:
    return sum(1 for sql in statements if sql.lstrip().upper().startswith(prefix))


def _commits(statements: list[str]) -> int:
    """Commits made: explicit ones, and each write run outside a transaction."""
    commits, in_tx = 0, False
    for sql in statements:
        verb = sql.lstrip().split(None, 1)[0].upper()
        if verb == "BEGIN":
            in_tx = True
        elif verb in ("COMMIT", "ROLLBACK"):
            commits += verb == "COMMIT"
            in_tx = False
        elif verb in ("INSERT", "UPDATE", "DELETE") and not in_tx:
            commits += 1
    return commits


@durable.step(name="gc.add")
async def add(w: int, i: int) -> int:
    return w * 100 + i


@durable.durable_workflow(name="gc.chain")
async def chain(w: int, steps: int) -> int:
    return sum([await add(w, i) for i in range(steps)])


async def test_concurrent_workflows_share_commits_on_sqlite(durable_sqlite: str) -> None:
    with durable.Runtime(durable_sqlite) as runtime, traced(runtime) as statements:
        results = await asyncio.gather(*(chain.run(w, 5, workflow_id=f"gc-{w}") for w in range(40)))
        assert results == [w * 500 + 10 for w in range(40)]
        assert _count(statements, "INSERT INTO DURABLE_STEPS") == 200
        # 40 starts, 200 steps and 40 finishes: each commit must carry many.
        commits = _commits(statements)
        assert 0 < commits <= 280 // 10, (commits, statements[:20])
        assert runtime.store.metrics().steps == 200
        for w in (0, 17, 39):
            assert [s.position for s in runtime.list_steps(f"gc-{w}")] == [1, 2, 3, 4, 5]


async def test_a_lone_workflow_commits_each_write_by_itself(durable_sqlite: str) -> None:
    """No transaction around a single write: grouping costs a sequential run nothing."""
    with durable.Runtime(durable_sqlite) as runtime, traced(runtime) as statements:
        assert await chain.run(1, 100, workflow_id="lone") == sum(100 + i for i in range(100))
        assert _count(statements, "INSERT INTO DURABLE_STEPS") == 100
        assert _count(statements, "BEGIN") == 0
        assert _commits(statements) == 102  # the start, 100 steps, the finish


async def test_a_fenced_write_fails_alone_in_its_group(runtime: durable.Runtime) -> None:
    """A workflow cancelled mid-step loses its write; the writes committed with it stand."""

    @durable.step(name="gc.maybe_cancel")
    async def maybe_cancel(w: int, i: int) -> int:
        if w == 3 and i == 2:
            assert runtime.store.cancel("victim-3")
        return w * 100 + i

    @durable.durable_workflow(name="gc.victim")
    async def victim(w: int) -> int:
        return sum([await maybe_cancel(w, i) for i in range(4)])

    outcomes = await asyncio.gather(
        *(victim.run(w, workflow_id=f"victim-{w}") for w in range(8)), return_exceptions=True
    )
    assert isinstance(outcomes[3], durable.WorkflowCancelledError), outcomes[3]
    assert [o for w, o in enumerate(outcomes) if w != 3] == [
        w * 400 + 6 for w in range(8) if w != 3
    ]
    # The cancelled workflow kept what it committed before the cancel, and no more.
    assert [s.position for s in runtime.list_steps("victim-3")] == [1, 2]
    for w in (0, 7):
        assert [s.position for s in runtime.list_steps(f"victim-{w}")] == [1, 2, 3, 4]


async def test_each_step_is_committed_before_it_returns_under_gather(db_url: str) -> None:
    """Grouping never acknowledges early: when a step returns to its workflow, another
    connection already sees its record."""
    seen: dict[str, list[int]] = {}

    with durable.Runtime(db_url), durable.Store.open(db_url) as other:

        @durable.durable_workflow(name="gc.watched")
        async def watched(w: int) -> None:
            workflow_id = durable.current_workflow_id()
            for i in range(4):
                await add(w, i)
                seen.setdefault(workflow_id, []).append(
                    max(e.position for e in await other.ahistory(workflow_id))
                )

        await asyncio.gather(*(watched.run(w, workflow_id=f"watched-{w}") for w in range(30)))
    assert seen == {f"watched-{w}": [1, 2, 3, 4] for w in range(30)}


async def test_a_database_error_in_a_group_loses_none_of_the_other_writes(
    postgres_url: str,
) -> None:
    """PostgreSQL aborts a transaction at its first error and then turns COMMIT into a
    rollback: a write that fails in the server must not take the group's other,
    acknowledged writes with it. One connection (pool_max=1) makes every write queue;
    a trigger makes the server refuse one record."""
    import psycopg

    schema = postgres_url.split("schema=", 1)[1].split("&", 1)[0]
    url = f"{postgres_url}&pool_max=1"
    with durable.Runtime(url):
        pass  # the tables, before the trigger goes on one
    with psycopg.connect(postgres_url.split("?", 1)[0], autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON durable_steps FOR EACH ROW"
            " WHEN (NEW.workflow_id = 'mixed-4' AND NEW.position = 2) EXECUTE FUNCTION refuse()"
        )

    @durable.durable_workflow(name="gc.mixed")
    async def mixed(w: int) -> int:
        return await add(w, 0) + await add(w, 1)

    with durable.Runtime(url):
        outcomes = await asyncio.gather(
            *(mixed.run(w, workflow_id=f"mixed-{w}") for w in range(10)), return_exceptions=True
        )
    assert "refused by the test" in str(outcomes[4])
    assert [o for w, o in enumerate(outcomes) if w != 4] == [
        2 * w * 100 + 1 for w in range(10) if w != 4
    ]
    with durable.Store.open(postgres_url) as store:
        for w in range(10):
            if w != 4:
                assert [e.position for e in store.history(f"mixed-{w}")] == [1, 2]
                assert store.get_workflow(f"mixed-{w}").status == "success"  # type: ignore[union-attr]
        assert [e.position for e in store.history("mixed-4")] == [1]


@contextmanager
def traced_postgres(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The SQL statements the PostgreSQL store sends on its async path, in order."""
    from durable.backends import _postgres

    statements: list[str] = []
    execute = _postgres._AsyncTx.execute

    async def recording(self: Any, stmt: Any, params: Any = None) -> Any:
        statements.append(self._compiled(stmt, params)[0])
        return await execute(self, stmt, params)

    monkeypatch.setattr(_postgres._AsyncTx, "execute", recording)
    yield statements


async def test_small_step_records_of_a_group_share_one_statement_on_postgres(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where each statement is a round trip, a group's step records go in one
    ``INSERT ... SELECT FROM unnest(...)``: one connection (pool_max=1) makes
    every write queue behind the one in flight."""
    with (
        durable.Runtime(f"{postgres_url}&pool_max=1") as runtime,
        traced_postgres(monkeypatch) as statements,
    ):
        results = await asyncio.gather(*(chain.run(w, 5, workflow_id=f"pg-{w}") for w in range(40)))
        assert results == [w * 500 + 10 for w in range(40)]
        step_inserts = [sql for sql in statements if sql.startswith("INSERT INTO durable_steps")]
        shared = [sql for sql in step_inserts if "unnest(" in sql]
        assert shared, step_inserts[:3]
        # 200 records: the first write of each wave goes alone, the rest share.
        assert len(step_inserts) <= 200 // 5, len(step_inserts)
        assert runtime.store.metrics().steps == 200
        for w in range(40):
            records = runtime.backend.run_sync(runtime.backend.load_steps, f"pg-{w}")
            assert sorted(records) == [1, 2, 3, 4, 5]
            replayed = [runtime.engine.decode_step(records[p], f"pg-{w}") for p in sorted(records)]
            assert replayed == [w * 100 + i for i in range(5)]


async def test_a_shared_statement_writes_only_what_a_lone_one_would(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One batch on PostgreSQL, straight at the store: new records are written; a
    record standing at a position is adopted, not overwritten; a stale epoch is
    refused; a large record takes its own statement, byte for byte."""
    from durable.backends import NewWorkflow, Owner, StepRow, StepStatus, Write

    def row(position: int, output: bytes) -> StepRow:
        return StepRow(position, "gc.direct", StepStatus.SUCCESS, output, 1, 1.0, 2.0)

    with durable.Runtime(postgres_url) as runtime:
        backend = runtime.backend
        owner = Owner(host="test-host", pid=1, started="0")
        for wid in ("direct-a", "direct-b"):
            new = NewWorkflow(wid, "gc.direct", "fp", None, None)
            backend.run_sync(backend.start_workflow, new, owner, 60)
        standing = row(2, b"first")
        backend.run_sync(backend.record_step, "direct-a", 1, standing)
        large = b"\x00\xff" * SHARED_RECORD_BYTES
        writes = [
            ("direct-a", 1, row(1, b"one")),
            ("direct-a", 1, row(2, b"second")),  # a record stands there
            ("direct-b", 1, row(1, b"b-one")),
            ("direct-b", 7, row(2, b"stale")),  # not the epoch that owns it
            ("direct-b", 1, row(3, large)),
            ("direct-b", 1, row(4, b"b-four")),
            # Whole seconds from a clock that gives ints: the arrays still go as floats.
            ("direct-b", 1, StepRow(5, "gc.direct", StepStatus.SUCCESS, b"b-five", 1, 3, 4)),
        ]
        batch = [Write(backend.record_step, w, {}) for w in writes]
        with traced_postgres(monkeypatch) as statements:
            outcomes = await backend.run_async(backend.run_batch, batch)
        inserts = [sql for sql in statements if sql.startswith("INSERT INTO durable_steps")]
        # One shared statement, then one each for the three it could not or would not write.
        assert ["unnest(" in sql for sql in inserts] == [True, False, False, False]
        assert [ok for ok, _ in outcomes] == [True, True, True, False, True, True, True]
        assert outcomes[1][1].output == b"first"
        assert isinstance(outcomes[3][1], durable.OwnershipLostError)
        a = backend.run_sync(backend.load_steps, "direct-a")
        b = backend.run_sync(backend.load_steps, "direct-b")
        assert {p: r.output for p, r in a.items()} == {1: b"one", 2: b"first"}
        assert {p: r.output for p, r in b.items()} == {
            1: b"b-one",
            3: large,
            4: b"b-four",
            5: b"b-five",
        }
        assert (b[5].started_at, b[5].finished_at) == (3.0, 4.0)


async def test_shared_starts_and_finishes_do_only_what_lone_ones_would(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starts share an ``INSERT``, finishes an ``UPDATE``: a workflow that was there
    already is read back as it stands, a finish from a stale epoch changes nothing,
    and a start with large arguments takes its own statement."""
    from durable.backends import NewWorkflow, Owner, Write

    def new(workflow_id: str, args: bytes | None = None) -> NewWorkflow:
        return NewWorkflow(workflow_id, "gc.shared", f"fp-{workflow_id}", args, None)

    with durable.Runtime(postgres_url) as runtime:
        backend = runtime.backend
        owner = Owner(host="test-host", pid=1, started="0")
        for wid in ("e1", "e2"):
            backend.run_sync(backend.start_workflow, new(wid), owner, 60)
        large = b"\x01" * (SHARED_RECORD_BYTES + 1)
        ok = durable.WorkflowStatus.SUCCESS
        writes: list[tuple[Any, tuple[Any, ...]]] = [
            (backend.start_workflow, (new("n1", b"args-1"), owner, 60)),
            (backend.start_workflow, (new("n1", b"args-1"), owner, 60)),  # the same, again
            (backend.start_workflow, (new("n2"), owner, 60)),
            (backend.start_workflow, (new("e1", b"other"), owner, 60)),  # there already
            (backend.start_workflow, (new("n3", large), owner, 60)),
            (backend.finish_workflow, ("e2", 1, ok, b"done", None)),
            (backend.finish_workflow, ("e1", 5, ok, b"stale", None)),  # not its epoch
        ]
        batch = [Write(op, args, {}) for op, args in writes]
        with traced_postgres(monkeypatch) as statements:
            outcomes = await backend.run_async(backend.run_batch, batch)
        insert = (False, ["INSERT", "INTO", "durable_workflows"])
        read = (False, ["SELECT", "durable_workflows.workflow_id,", "durable_workflows.name,"])
        assert [("unnest(" in sql, sql.split(None, 3)[:3]) for sql in statements] == [
            (True, ["INSERT", "INTO", "durable_workflows"]),
            (True, ["UPDATE", "durable_workflows", "SET"]),
            *(insert, read),  # n1 again: the row the shared statement wrote
            *(insert, read),  # e1: there already
            insert,  # n3: large
            (False, ["UPDATE", "durable_workflows", "SET"]),  # e1's stale finish
        ]
        assert all(ok for ok, _ in outcomes)
        started = [value for _, value in outcomes[:5]]
        assert [(row.workflow_id, created) for row, created in started] == [
            ("n1", True),
            ("n1", False),
            ("n2", True),
            ("e1", False),
            ("n3", True),
        ]
        assert [row.args for row, _ in started] == [b"args-1", b"args-1", None, None, large]
        for row, _ in started:
            assert (row.owner, row.epoch, row.status) == (owner, 1, durable.WorkflowStatus.RUNNING)
            assert row.lease_expires_at is not None
        assert started[3][0].args_fingerprint == "fp-e1"  # the row as it stood
        assert [value for _, value in outcomes[5:]] == [True, False]
        e1 = backend.run_sync(backend.get_workflow, "e1")
        e2 = backend.run_sync(backend.get_workflow, "e2")
        assert e1 is not None
        assert e1.status == durable.WorkflowStatus.RUNNING
        assert e2 is not None
        assert (e2.status, e2.result, e2.lease_expires_at) == (ok, b"done", None)
