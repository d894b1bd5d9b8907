"""The SQLite statements compiled ahead (``_precompiled``, ``_sqlite_sql``, ``_precompile``)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from durable.backends import _precompile
from durable.backends._precompiled import Precompiled


def test_the_generated_statements_are_those_sqlalchemy_compiles() -> None:
    # Any change to a statement or the schema changes its text: the check
    # names the command that writes the module again.
    assert _precompile.TARGET.read_text() == _precompile.source(), (
        f"durable/backends/_sqlite_sql.py is out of date: run `{_precompile.COMMAND}`"
    )


def _paths(texts: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, value in texts.items():
        if isinstance(value, dict):
            yield from _paths(value, (*prefix, name))
        elif not isinstance(value, list):
            yield (*prefix, name)


def _at(obj: object, path: tuple[str, ...]) -> Any:
    for part in path:
        obj = getattr(obj, part)
    return obj


def test_every_entry_binds_as_the_statement_it_was_compiled_from() -> None:
    # What the generated module holds (the test above checks it is this).
    texts, real, compiled = _precompile.compiled_now()
    ahead = Precompiled(texts, lambda: real)
    paths = list(_paths(texts))
    assert len(paths) > 70
    for path in paths:
        entry = _at(ahead, path)
        params = {key: f"value of {key}" for key, *_ in entry.slots if not key.startswith("\x00")}
        assert compiled(entry, params) == compiled(_at(real, path), params), path


def test_what_was_not_compiled_ahead_comes_from_the_statements() -> None:
    texts, real, _ = _precompile.compiled_now()
    ahead = Precompiled(texts, lambda: real)
    assert ahead.per_call is real.per_call  # built per call, from a query's terms
    assert ahead.queues.plain.__func__ is real.queues.plain.__func__  # an IN list
    assert ahead.rows == real.rows == {}


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


WORKFLOW = """
import sys, durable

@durable.step
def add(a, b):
    return a + b

@durable.durable_workflow
def total(n):
    t = 0
    for i in range(n):
        t = add(t, i)
    return t

with durable.Runtime({url!r}):
    print(total({n}))
print([m for m in sys.modules if m.startswith("sqlalchemy")][:3])
"""


def test_a_store_at_this_version_runs_workflows_without_sqlalchemy(tmp_path: Path) -> None:
    # SQLAlchemy's import is most of a short script's start and memory: it is
    # needed to make or migrate a schema, and for statements built per call.
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    first = _python(WORKFLOW.format(url=url, n=4)).splitlines()
    assert first == ["6", "[]"]  # the schema was made from its compiled statements too
    again = _python(WORKFLOW.format(url=url, n=5)).splitlines()
    assert again == ["10", "[]"]
    listed = _python(f"import durable\nprint(len(durable.Store.open({url!r}).list_workflows()))")
    assert listed == "2"


def test_a_workflows_history_and_cleanup_read_the_step_indexes(tmp_path: Path) -> None:
    """Neither reads every step row of the store: live and superseded records are read
    apart, each through its partial index (schema 9). One condition on the workflow alone
    matches neither index: SQLite, as PostgreSQL, then scans the whole table."""
    import sqlite3

    import durable
    from durable import WorkflowStatus

    path = tmp_path / "jobs.db"
    with durable.Runtime(f"sqlite:///{path}"):
        pass
    _, real, compiled = _precompile.compiled_now()
    per_call = real.per_call
    doomed = per_call.finished_before(per_call.doomed(0.0, list(WorkflowStatus), None, None))
    counts, deletes, files = per_call.removal(doomed, None)
    assert counts[1] is not None
    history = compiled(real.history, {"workflow_id": "w"})
    statements = [history, *(compiled(s, None) for s in (counts[1], *deletes, files))]
    used = set()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        for sql, params in statements:
            if "FROM durable_steps" not in sql:  # the deletes of the workflows' other rows
                continue
            plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
            assert not [step for step in plan if step.startswith("SCAN durable_steps")], plan
            reads = [s for s in plan if s.startswith("SEARCH durable_steps USING INDEX")]
            assert reads, plan
            used |= {step.split()[4] for step in reads}
    assert used == {"ux_durable_steps_live", "ix_durable_steps_superseded"}
