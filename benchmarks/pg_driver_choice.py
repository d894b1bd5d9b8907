"""Why durable runs PostgreSQL statements through psycopg rather than SQLAlchemy's engine.

Times one single-row ``INSERT ... ON CONFLICT DO NOTHING`` per call, four
ways, against the same server in one run: raw psycopg (async, autocommit),
SQLAlchemy's async engine (autocommit, and with an explicit transaction per
insert), and SQLAlchemy's sync engine (autocommit). Median of 3 runs.

Run: ``python benchmarks/pg_driver_choice.py [postgresql://user@host:5432/db]``
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import create_async_engine

N = 2000
URL = sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA = f"driver_choice_{uuid.uuid4().hex[:8]}"
ENGINE_URL = URL.replace("postgresql://", "postgresql+psycopg://")
PAYLOAD = b"x" * 20

table = sa.Table(
    "t",
    sa.MetaData(schema=SCHEMA),
    sa.Column("wid", sa.String, primary_key=True),
    sa.Column("pos", sa.Integer, primary_key=True),
    sa.Column("out", sa.LargeBinary),
)


async def raw_psycopg(run: str) -> float:
    async with await psycopg.AsyncConnection.connect(URL, autocommit=True) as conn:
        started = time.perf_counter()
        for i in range(N):
            await conn.execute(
                f"INSERT INTO {SCHEMA}.t VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (run, i, PAYLOAD),
            )
        return (time.perf_counter() - started) / N * 1e6


async def sqlalchemy_async(run: str, explicit_transaction: bool) -> float:
    engine = create_async_engine(
        ENGINE_URL, **({} if explicit_transaction else {"isolation_level": "AUTOCOMMIT"})
    )
    stmt = insert(table).on_conflict_do_nothing()
    started = time.perf_counter()
    for i in range(N):
        context = engine.begin() if explicit_transaction else engine.connect()
        async with context as conn:
            await conn.execute(stmt, {"wid": run, "pos": i, "out": PAYLOAD})
    elapsed = (time.perf_counter() - started) / N * 1e6
    await engine.dispose()
    return elapsed


def sqlalchemy_sync(run: str) -> float:
    engine = sa.create_engine(ENGINE_URL, isolation_level="AUTOCOMMIT")
    stmt = insert(table).on_conflict_do_nothing()
    started = time.perf_counter()
    for i in range(N):
        with engine.connect() as conn:
            conn.execute(stmt, {"wid": run, "pos": i, "out": PAYLOAD})
    elapsed = (time.perf_counter() - started) / N * 1e6
    engine.dispose()
    return elapsed


def median_of(runs: int, measure: Callable[[str], Awaitable[float] | float]) -> float:
    results = []
    for _ in range(runs):
        outcome = measure(uuid.uuid4().hex)
        results.append(asyncio.run(outcome) if asyncio.iscoroutine(outcome) else outcome)
    return statistics.median(results)  # type: ignore[type-var]


def main() -> None:
    with psycopg.connect(URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {SCHEMA}")
        conn.execute(
            f"CREATE TABLE {SCHEMA}.t (wid text, pos int, out bytea, PRIMARY KEY (wid, pos))"
        )
    try:
        rows = {
            "raw psycopg, async, autocommit": median_of(3, raw_psycopg),
            "SQLAlchemy async engine, autocommit": median_of(
                3, lambda r: sqlalchemy_async(r, False)
            ),
            "SQLAlchemy async engine, BEGIN/COMMIT": median_of(
                3, lambda r: sqlalchemy_async(r, True)
            ),
            "SQLAlchemy sync engine, autocommit": median_of(3, sqlalchemy_sync),
        }
    finally:
        with psycopg.connect(URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
    base = rows["raw psycopg, async, autocommit"]
    print(f"| way ({N} inserts, median of 3) | µs/insert | vs raw psycopg |")
    print("|---|--:|--:|")
    for name, micros in rows.items():
        print(f"| {name} | {micros:.0f} | {micros / base:.2f}x |")


if __name__ == "__main__":
    main()
