"""Group commit: concurrent workflows of one event loop share commits, never early.

On SQLite the statements are counted with sqlite3's trace callback on the
store's own connection: concurrent writes must share transactions, a lone
workflow's must not pay for grouping, and a write that fails (fenced off by a
cancel) must fail alone.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import durable
from durable.backends._sqlite import SqliteBackend


@contextmanager
def traced(runtime: durable.Runtime) -> Iterator[list[str]]:
    """The SQL statements the store runs on this thread, in order."""
    backend = runtime._backend
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
