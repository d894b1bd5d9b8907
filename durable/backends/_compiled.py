"""SQLAlchemy Core statements compiled once per dialect, run by the raw driver.

Both backends define every statement once, in Core, and execute it through
their driver directly (sqlite3, psycopg): compiling and binding through
SQLAlchemy's engine on every call costs more than the database's own work
for a one-row insert (see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import collections
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa

_REQUIRED: Any = object()
_CACHE_LIMIT = 512
_PYFORMAT_BIND = re.compile(r"(?<!%)%\((\w+)\)s")


class Compiled:
    """Compiles statements for one dialect, once each, and binds parameters.

    Parameters are given by name, without the ``p_`` prefix the statements'
    bind parameters carry (``_statements._P``). Binding reads them straight
    into the driver's positional tuple or dict, in the compiled order: SQLAlchemy's
    ``construct_params`` costs more than the rest of a one-row insert's Python.
    """

    def __init__(self, dialect: Callable[[], sa.Dialect]) -> None:
        self._make_dialect = dialect  # made on the first compile: it imports SQLAlchemy
        self._dialect: sa.Dialect | None = None
        self._cache: dict[int, Entry] = {}

    def __call__(
        self, stmt: sa.Executable | Entry, params: Mapping[str, Any] | None
    ) -> tuple[str, Sequence[Any] | Mapping[str, Any]]:
        """The SQL text of ``stmt`` and its parameters, as the driver wants them."""
        if isinstance(stmt, Entry):  # compiled ahead (_precompiled)
            entry = stmt
        else:
            cached = self._cache.get(id(stmt))
            entry = cached if cached is not None and cached.stmt is stmt else self._compile(stmt)
        given = params or {}
        if entry.slots is None:  # an IN list, expanded into one parameter per item
            return entry.sql, entry.expanded(given)
        try:
            if entry.pick is not None:  # every parameter is given by the caller
                values: Sequence[Any] = entry.pick(given)
            else:
                values = [
                    given[key] if default is _REQUIRED else given.get(key, default)
                    for key, default in entry.slots
                ]
        except KeyError as exc:
            raise TypeError(f"no value for parameter {exc} of {entry.sql!r}") from None
        if entry.positional:
            return entry.sql, tuple(values)
        return entry.sql, dict(zip(entry.names, values, strict=True))

    def entry(self, stmt: sa.Executable) -> Entry:
        """``stmt`` compiled (not cached): its text, and where its parameters come from."""
        return self._compile(stmt, keep=False)

    def _compile(self, stmt: sa.Executable, keep: bool = True) -> Entry:
        if self._dialect is None:
            self._dialect = self._make_dialect()
        clause: Any = stmt
        compiled = clause.compile(
            dialect=self._dialect, compile_kwargs={"render_postcompile": True}
        )
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        names = tuple(compiled.positiontup) if compiled.positional else tuple(binds)
        if any(getattr(b, "expanding", False) for b in binds.values()):
            # Built on the fly (an IN list): bound by SQLAlchemy, and not kept.
            return Entry(stmt, compiled.string, bool(compiled.positional), names, None, compiled)
        slots = tuple(_slot(name, binds[name]) for name in names)
        sql = compiled.string
        if clause.get_execution_options().get("binary_binds"):
            # psycopg: %(name)b sends the value in binary (arrays without quoting).
            sql = _PYFORMAT_BIND.sub(r"%(\1)b", sql)
        entry = Entry(stmt, sql, bool(compiled.positional), names, slots)
        if not keep:
            return entry
        if len(self._cache) >= _CACHE_LIMIT:
            # Statements built per call (a query's filters) would pile up
            # forever; the fixed ones are compiled again once, after this.
            self._cache.clear()
        self._cache[id(stmt)] = entry
        return entry


class Entry:
    """A statement's SQL text, and where each of its parameters' values comes from."""

    __slots__ = ("compiled", "keys", "names", "pick", "positional", "slots", "sql", "stmt")

    def __init__(
        self,
        stmt: sa.Executable | None,
        sql: str,
        positional: bool,
        names: tuple[str, ...],
        slots: tuple[tuple[str, Any], ...] | None,
        compiled: Any = None,
    ) -> None:
        self.stmt, self.sql, self.positional, self.names = stmt, sql, positional, names
        self.slots, self.compiled = slots, compiled
        self.keys = (
            tuple(key for key, _ in slots)
            if slots is not None and all(default is _REQUIRED for _, default in slots)
            else None
        )
        # The values of those keys, as a tuple, in one call (every write binds here).
        self.pick: Callable[[Mapping[str, Any]], Sequence[Any]] | None = None
        if self.keys:
            getter = operator.itemgetter(*self.keys)
            self.pick = getter if len(self.keys) > 1 else lambda given: (getter(given),)

    def text(self) -> tuple[str, bool, tuple[str, ...], tuple[tuple[Any, ...], ...]] | None:
        """This entry as literals (a required parameter's slot has no default), or None.

        None for a statement with an IN list, whose text depends on the list.
        """
        if self.slots is None:
            return None
        slots = tuple(
            (key,) if default is _REQUIRED else (key, default) for key, default in self.slots
        )
        return self.sql, self.positional, self.names, slots

    def expanded(self, given: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        values = self.compiled.construct_params({f"p_{k}": v for k, v in given.items()})
        if self.positional:
            return tuple(values[name] for name in self.names)
        return values  # type: ignore[no-any-return]


def precompiled(
    sql: str, positional: bool, names: tuple[str, ...], slots: tuple[tuple[Any, ...], ...]
) -> Entry:
    """An entry from its text, as ``Entry.text`` gives it (``_precompiled``)."""
    return Entry(
        None,
        sql,
        positional,
        names,
        tuple((s[0], s[1] if len(s) > 1 else _REQUIRED) for s in slots),
    )


def _slot(name: str, bind: Any) -> tuple[str, Any]:
    """Where a bind parameter's value comes from: the caller's key, else its own value.

    A value written into the statement (``.values(status="running")`` binds it
    under the column's name) is never taken from the caller, whose parameters
    may use the same name for something else.
    """
    if name.startswith("p_"):
        return name[2:], _REQUIRED if bind.required else bind.effective_value
    if bind.required:  # a named parameter of a text() statement
        return name, _REQUIRED
    return f"\x00{name}", bind.effective_value


_ROW_TYPES: dict[tuple[str, ...], Any] = {}


def named_row(cursor: Any, row: tuple[Any, ...]) -> Any:
    """A row whose columns read as attributes (``row.workflow_id``), for sqlite3."""
    fields = tuple(d[0] for d in cursor.description)
    row_type = _ROW_TYPES.get(fields)
    if row_type is None:
        row_type = _ROW_TYPES[fields] = collections.namedtuple("Row", fields, rename=True)
    return row_type(*row)
