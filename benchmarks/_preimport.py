"""What opening a store imports lazily, imported ahead by the benchmarks' child processes.

So that it is not timed: DBOS imports all of it with ``from dbos import DBOS``,
before it reports ready.
"""

from __future__ import annotations

import contextlib
import importlib


def preimport(url: str) -> None:
    """Import the driver and backend modules a store at ``url`` opens with."""
    names = ["sqlalchemy"]
    if url.startswith("sqlite"):
        names.append("durable.backends._sqlite")
    else:
        names += ["psycopg", "psycopg_pool", "durable.backends._postgres"]
    for name in names:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
