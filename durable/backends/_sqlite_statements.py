"""The SQLite statements in SQLAlchemy Core, and the dialect that compiles them.

Imported when a statement is needed that was not compiled ahead
(``_sqlite_sql``, made from these by ``_precompile``), or a schema is made
or migrated.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

from durable.backends._statements import Statements, statements_for

# The host's clock (SQLite's own, julianday('now'), has only milliseconds;
# the database and this process share the host anyway).
_NOW = sa.literal_column("durable_now()", sa.Float)


def statements() -> Statements:
    """Every statement of the SQLite backend, built once per process."""
    return statements_for("sqlite", sqlite_insert, _NOW)


def dialect() -> sa.Dialect:
    """The dialect the SQLite statements are compiled for."""
    return SQLiteDialect_pysqlite()
