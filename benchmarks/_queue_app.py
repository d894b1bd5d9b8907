"""The workflows and queues of ``queues.py``, and the worker processes it starts.

Imported by the benchmark (to enqueue) and by every worker process (to run
what was enqueued), so that both register the same workflows under the same
names. A worker process is started as::

    python -c "import sys, _queue_app; sys.exit(_queue_app.main(sys.argv[1:]))" ROLE ...

with this directory on ``PYTHONPATH``. Roles:

- ``durable URL CONCURRENCY QUEUE TERMS``: a :class:`durable.Worker` on the
  store at URL serving QUEUE. TERMS is a JSON object of the queue's flow
  control (``{"rate_limit": [200, 1.0]}``, ``{"partition_concurrency": 1}``,
  or ``{}``); if it has any, the queue is declared here with
  :class:`durable.Queue` before the worker starts, so the worker puts those
  terms in the store as it starts, as a worker whose code declares a queue
  does.
- ``dbos URL EXECUTOR_ID QUEUE POOL``: a DBOS process on the system database
  at URL, dequeuing from QUEUE (which the benchmark registered, with its
  ``worker_concurrency``, limiter or partitions), with at most POOL
  connections.

Each prints ``ready`` once its imports are done (for durable, also what
opening a store imports lazily: SQLAlchemy, the backend), waits for a line on
stdin, opens its store (or launches DBOS), prints ``up`` and works until a
second line (or the end of stdin); then it stops (durable: lets what runs
finish; DBOS: ``DBOS.destroy()``) and prints one line of JSON (with the
seconds taken to open the store or launch DBOS).
"""

from __future__ import annotations

import functools
import json
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from _preimport import preimport

import durable

STEPS = 5
"""Steps per workflow."""
CHAIN = "bench.queue_chain"
"""The workflow's registered name (the same for durable and DBOS)."""
DBOS_APP = "durable-bench-queues"
DBOS_VERSION = "bench"
"""Set on every DBOS process (enqueuer and workers): a DBOS worker only dequeues
workflows of its own application version."""


@durable.step(name="bench.queue_inc")
async def inc(x: int) -> int:
    return x + 1


@durable.durable_workflow(name=CHAIN)
async def chain(x: int) -> tuple[int, float]:
    """x + STEPS, one step at a time, and when the body began (this host's clock).

    The time is the benchmark's measure of when the workflow started; it is
    returned (and so recorded with the result), never used otherwise.
    """
    began = time.time()
    for _ in range(STEPS):
        x = await inc(x)
    return x, began


@functools.cache
def dbos_chain() -> Callable[[int], Coroutine[Any, Any, tuple[int, float]]]:
    """The same workflow for DBOS, decorated once per process (DBOS's registry is global)."""
    from dbos import DBOS

    @DBOS.step(name="bench.queue_inc")
    async def dbos_inc(x: int) -> int:
        return x + 1

    @DBOS.workflow(name=CHAIN)
    async def dbos_chain_wf(x: int) -> tuple[int, float]:
        began = time.time()
        for _ in range(STEPS):
            x = await dbos_inc(x)
        return x, began

    return dbos_chain_wf


def dbos_config(url: str, executor_id: str, pool: int | None = None) -> Any:
    """DBOS's configuration: the system database, a fixed version, its own executor id.

    Each process needs an executor id of its own: at launch DBOS resumes the
    pending workflows of its executor id, which would otherwise be the ones
    the other workers are running (they all default to ``local``). ``pool``
    caps its system database's connections (DBOS's default is 20).
    """
    from dbos import DBOSConfig

    config: DBOSConfig = {
        "name": DBOS_APP,
        "system_database_url": url,
        "log_level": "WARNING",
        "application_version": DBOS_VERSION,
        "executor_id": executor_id,
    }
    if pool is not None:
        config["sys_db_pool_size"] = pool
    return config


def declare_queue(name: str, terms: dict[str, Any]) -> durable.Queue | None:
    """Declare a durable queue with flow control (``terms`` as :class:`durable.Queue` takes them).

    A worker puts the queues declared in the code it imports in the store
    when it starts; a queue without terms needs no declaration.
    """
    if not terms:
        return None
    rate = terms.get("rate_limit")
    return durable.Queue(
        name,
        rate_limit=None if rate is None else (int(rate[0]), float(rate[1])),
        partition_concurrency=terms.get("partition_concurrency"),
    )


def _wait_for_go() -> None:
    print("ready", flush=True)
    sys.stdin.readline()


def _on_stop(stop: Callable[[], None]) -> None:
    """Call ``stop`` once a line (or the end of stdin) comes, from a thread of its own."""

    def wait() -> None:
        sys.stdin.readline()
        stop()

    threading.Thread(target=wait, name="bench-stop", daemon=True).start()


def _durable_worker(url: str, concurrency: int, queue: str, terms: dict[str, Any]) -> int:
    preimport(url)
    declare_queue(queue, terms)
    _wait_for_go()
    started = time.perf_counter()
    worker = durable.Worker(url, queues=[queue], concurrency=concurrency)
    opened = time.perf_counter() - started
    print("up", flush=True)
    _on_stop(worker.stop)
    report = worker.run_sync(handle_signals=False)
    done = {
        "open_seconds": opened,
        "completed": len(report.completed),
        "failed": len(report.failed),
        "resumed": len(report.resumed),
        "errors": sorted(set(report.failed.values()))[:3],
    }
    print(json.dumps(done), flush=True)
    return 0


def _dbos_worker(url: str, executor_id: str, queue: str, pool: int) -> int:
    from dbos import DBOS

    dbos_chain()
    _wait_for_go()
    started = time.perf_counter()
    DBOS(config=dbos_config(url, executor_id, pool))
    DBOS.listen_queues([queue])
    DBOS.launch()
    opened = time.perf_counter() - started
    print("up", flush=True)
    try:
        sys.stdin.readline()
    finally:
        DBOS.destroy()
    print(json.dumps({"open_seconds": opened}), flush=True)
    return 0


def main(argv: list[str]) -> int:
    role, url = argv[0], argv[1]
    if role == "durable":
        return _durable_worker(url, int(argv[2]), argv[3], json.loads(argv[4]))
    if role == "dbos":
        return _dbos_worker(url, argv[2], argv[3], int(argv[4]))
    print(f"unknown role {role!r}", file=sys.stderr)
    return 2
