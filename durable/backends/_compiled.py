"""SQLAlchemy Core statements compiled once per dialect, run by the raw driver.

Both backends define every statement once, in Core, and execute it through
their driver directly (sqlite3, psycopg): compiling and binding through
SQLAlchemy's engine on every call costs more than the database's own work
for a one-row insert (see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa


class Compiled:
    """Compiles statements for one dialect, once each, and binds parameters."""

    def __init__(self, dialect: sa.Dialect) -> None:
        self._dialect = dialect
        self._cache: dict[int, tuple[sa.Executable, Any, tuple[str, ...] | None]] = {}

    def __call__(
        self, stmt: sa.Executable, params: Mapping[str, Any] | None
    ) -> tuple[str, Sequence[Any] | Mapping[str, Any]]:
        """The SQL text of ``stmt`` and its parameters, as the driver wants them."""
        entry = self._cache.get(id(stmt))
        if entry is None or entry[0] is not stmt:
            clause: Any = stmt
            compiled = clause.compile(
                dialect=self._dialect, compile_kwargs={"render_postcompile": True}
            )
            order = tuple(compiled.positiontup) if compiled.positional else None
            entry = (stmt, compiled, order)
            # Statements built on the fly (an IN list) are not worth keeping.
            if not any(getattr(b, "expanding", False) for b in compiled.binds.values()):
                self._cache[id(stmt)] = entry
        _, compiled, order = entry
        values = compiled.construct_params(params or {})
        if order is None:
            return compiled.string, values
        return compiled.string, tuple(values[name] for name in order)


_ROW_TYPES: dict[tuple[str, ...], Any] = {}


def named_row(cursor: Any, row: tuple[Any, ...]) -> Any:
    """A row whose columns read as attributes (``row.workflow_id``), for sqlite3."""
    fields = tuple(d[0] for d in cursor.description)
    row_type = _ROW_TYPES.get(fields)
    if row_type is None:
        row_type = _ROW_TYPES[fields] = collections.namedtuple("Row", fields, rename=True)
    return row_type(*row)
