"""Statements compiled once per dialect, bound by durable itself (backends/_compiled.py)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

from durable.backends import _compiled

t = sa.table("t", sa.column("id"), sa.column("status"), sa.column("n"))
claim = (
    sa.update(t)
    .where(t.c.id == sa.bindparam("p_id"), t.c.status == sa.bindparam("p_status"))
    .values(status="running", n=sa.bindparam("p_n", value=7))
)


def test_positional_binding_follows_the_compiled_order() -> None:
    compiled = _compiled.Compiled(SQLiteDialect_pysqlite)
    sql, values = compiled(claim, {"id": "w1", "status": "enqueued"})
    assert sql.startswith("UPDATE t SET status=?, n=? WHERE t.id = ? AND t.status = ?")
    # The value written into the statement is its own, though the caller's
    # parameters have a "status" too; an optional parameter keeps its default.
    assert values == ("running", 7, "w1", "enqueued")
    assert compiled(claim, {"id": "w1", "status": "enqueued", "n": 8})[1] == (
        "running",
        8,
        "w1",
        "enqueued",
    )


def test_named_binding_for_psycopg() -> None:
    compiled = _compiled.Compiled(PGDialect_psycopg)
    sql, values = compiled(claim, {"id": "w1", "status": "enqueued"})
    assert "%(p_id)s" in sql
    assert values == {"status": "running", "p_n": 7, "p_id": "w1", "p_status": "enqueued"}


def test_an_in_list_is_expanded_and_not_kept() -> None:
    compiled = _compiled.Compiled(SQLiteDialect_pysqlite)
    stmt = sa.select(t.c.id).where(t.c.status.in_(["a", "b", "c"]))
    sql, values = compiled(stmt, None)
    assert sql.count("?") == 3
    assert values == ("a", "b", "c")
    assert not compiled._cache


def test_a_missing_parameter_is_named() -> None:
    compiled = _compiled.Compiled(SQLiteDialect_pysqlite)
    with pytest.raises(TypeError, match="no value for parameter 'status'"):
        compiled(claim, {"id": "w1"})


def test_statements_built_per_call_do_not_pile_up() -> None:
    compiled = _compiled.Compiled(SQLiteDialect_pysqlite)
    for i in range(3 * _compiled._CACHE_LIMIT):
        compiled(sa.select(t.c.id).where(t.c.n == i), None)
    assert len(compiled._cache) <= _compiled._CACHE_LIMIT
