"""The workflows of ``queues.py``, and the worker processes it starts.

Imported by the benchmark (to enqueue) and by every worker process (to run
what was enqueued), so that both register the same workflows under the same
names. A worker process is started as::

    python -c "import sys, _queue_app; sys.exit(_queue_app.main(sys.argv[1:]))" ROLE ...

with this directory on ``PYTHONPATH``. Roles:

- ``durable URL CONCURRENCY``: a :class:`durable.Worker` on the store at URL.
- ``dbos URL EXECUTOR_ID``: a DBOS process on the system database at URL,
  dequeuing from the benchmark's queue (whose ``worker_concurrency`` the
  enqueuing process registered).

Each prints ``ready`` once its imports are done (for durable, also what
opening a store imports lazily: SQLAlchemy, the backend), waits for a line on
stdin, then opens its store (or launches DBOS) and starts work. The durable
worker exits on its own once nothing is left (``run_sync(until_idle=True)``);
the DBOS one runs until a second line (or the end of stdin), then shuts DBOS
down. Both print one
line of JSON before they exit (with the seconds taken to open the store or
launch DBOS).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import durable

STEPS = 5
"""Steps per workflow."""
DBOS_APP = "durable-bench-queues"
DBOS_QUEUE = "bench"
DBOS_VERSION = "bench"
"""Set on every DBOS process (enqueuer and workers): a DBOS worker only dequeues
workflows of its own application version."""


@durable.step(name="bench.queue_inc")
async def inc(x: int) -> int:
    return x + 1


@durable.durable_workflow(name="bench.queue_chain")
async def chain(x: int) -> int:
    for _ in range(STEPS):
        x = await inc(x)
    return x


@functools.cache
def dbos_chain() -> Callable[[int], Coroutine[Any, Any, int]]:
    """The same workflow for DBOS, decorated once per process (DBOS's registry is global)."""
    from dbos import DBOS

    @DBOS.step(name="bench.queue_inc")
    async def dbos_inc(x: int) -> int:
        return x + 1

    @DBOS.workflow(name="bench.queue_chain")
    async def dbos_chain_wf(x: int) -> int:
        for _ in range(STEPS):
            x = await dbos_inc(x)
        return x

    return dbos_chain_wf


def dbos_config(url: str, executor_id: str) -> Any:
    """DBOS's configuration: the system database, a fixed version, its own executor id.

    Each process needs an executor id of its own: at launch DBOS resumes the
    pending workflows of its executor id, which would otherwise be the ones
    the other workers are running (they all default to ``local``).
    """
    from dbos import DBOSConfig

    config: DBOSConfig = {
        "name": DBOS_APP,
        "system_database_url": url,
        "log_level": "WARNING",
        "application_version": DBOS_VERSION,
        "executor_id": executor_id,
    }
    return config


def _preimport(url: str) -> None:
    """Import what opening a store imports (durable loads it lazily), so that it is not timed.

    DBOS imports all of it with ``from dbos import DBOS``, before it reports ready.
    """
    names = ["sqlalchemy"]
    if url.startswith("sqlite"):
        names.append("durable.backends._sqlite")
    else:
        names += ["psycopg", "psycopg_pool", "durable.backends._postgres"]
    for name in names:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def _wait_for_go() -> None:
    print("ready", flush=True)
    sys.stdin.readline()


def _durable_worker(url: str, concurrency: int) -> int:
    _preimport(url)
    _wait_for_go()
    started = time.perf_counter()
    worker = durable.Worker(url, concurrency=concurrency)
    opened = time.perf_counter() - started
    report = worker.run_sync(until_idle=True, handle_signals=False)
    done = {
        "open_seconds": opened,
        "completed": len(report.completed),
        "failed": len(report.failed),
        "resumed": len(report.resumed),
        "errors": sorted(set(report.failed.values()))[:3],
    }
    print(json.dumps(done), flush=True)
    return 0


def _dbos_worker(url: str, executor_id: str) -> int:
    from dbos import DBOS

    dbos_chain()
    _wait_for_go()
    started = time.perf_counter()
    DBOS(config=dbos_config(url, executor_id))
    DBOS.listen_queues([DBOS_QUEUE])
    DBOS.launch()
    opened = time.perf_counter() - started
    try:
        sys.stdin.readline()
    finally:
        DBOS.destroy()
    print(json.dumps({"open_seconds": opened}), flush=True)
    return 0


def main(argv: list[str]) -> int:
    role, url = argv[0], argv[1]
    if role == "durable":
        return _durable_worker(url, int(argv[2]))
    if role == "dbos":
        return _dbos_worker(url, argv[2])
    print(f"unknown role {role!r}", file=sys.stderr)
    return 2
