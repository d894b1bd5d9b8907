"""The workflows of ``waiting.py``, and the processes it starts (a worker, a probe).

Imported by the benchmark (to enqueue and to send events) and by the processes
it starts, so that all register the same workflows under the same names. A
process is started as::

    python -c "import sys, _waiting_app; sys.exit(_waiting_app.main(sys.argv[1:]))" ROLE ...

with this directory on ``PYTHONPATH``. Roles:

- ``worker URL CONCURRENCY QUEUE``: one :class:`durable.Worker` on the store
  at URL serving QUEUE. It prints ``ready`` once its imports are done, waits
  for a line, opens the store, prints ``up``, and runs; meanwhile it answers
  lines on stdin: ``mark`` (from here on, step saves count as "under load";
  it answers ``marked``) and ``report`` (one line of JSON: the step saves it
  timed before and after the mark, and what it ran), then it exits at once
  (the store is thrown away, so nothing is drained).
- ``probe URL N``: a client of the same store, in a process of its own, which
  until a line comes on stdin, over and over: runs a sync workflow of
  :data:`PROBE_STEPS` tiny steps (its step saves are timed by its runtime:
  :meth:`durable.Store.metrics`), reads the full history of a random one of
  the N waiting workflows (:meth:`durable.Store.history`), and the live step
  records a resume replays (the backend's ``load_steps``, what a workflow
  reads when it starts or resumes). It prints ``up`` once the store is open,
  and one line of JSON at the end.
"""

from __future__ import annotations

import gc
import json
import math
import random
import sys
import threading
import time
from typing import Any

from _preimport import preimport

import durable

KEY = "go"
"""The event the event waiters wait for."""
LONG_SLEEP = 7 * 24 * 3600.0
"""The sleepers' sleep: a week, so that none wakes during a run."""
WAITER = "bench.waiter"
"""The waiting workflow's registered name."""
PROBE_STEPS = 5
EVENT, SLEEP = "event", "sleep"


@durable.step(name="bench.wait_before")
async def before(i: int) -> int:
    return i


@durable.step(name="bench.wait_after")
async def after(i: int) -> tuple[int, float]:
    """The step after the wait: when its body began (this host's clock)."""
    return i, time.time()


@durable.durable_workflow(name=WAITER)
async def waiter(i: int, on: str, suspend: bool) -> tuple[int, float]:
    """A step, a wait (for the event ``go``, or a week's sleep), then a step that says when."""
    await before(i)
    if on == EVENT:
        await durable.wait_for_event(KEY, suspend=suspend)
    else:
        await durable.sleep(LONG_SLEEP, suspend=suspend)
    return await after(i)


@durable.step(name="bench.probe_inc")
def probe_inc(x: int) -> int:
    return x + 1


@durable.durable_workflow(name="bench.probe")
def probe_chain(x: int) -> int:
    for _ in range(PROBE_STEPS):
        x = probe_inc(x)
    return x


def waiter_id(i: int) -> str:
    return f"w-{i}"


def _quantiles(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}

    def q(p: float) -> float:  # nearest rank
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)]

    return {"n": len(ordered), "p50": q(0.5), "p99": q(0.99), "max": ordered[-1]}


def _worker(url: str, concurrency: int, queue: str) -> int:
    preimport(url)
    print("ready", flush=True)
    sys.stdin.readline()
    worker = durable.Worker(url, queues=[queue], concurrency=concurrency, shutdown_grace=0.0)
    print("up", flush=True)
    saves = worker.runtime.engine.checkpoint_seconds
    mark = [0]

    def commands() -> None:
        for line in sys.stdin:
            command = line.strip()
            if command == "mark":
                mark[0] = len(saves)
                print("marked", flush=True)
            elif command == "gc":
                gc.collect()
                print("collected", flush=True)
            elif command == "report":
                times = list(saves)
                report = worker.report
                done = {
                    "setup_saves": _quantiles(times[: mark[0]]),
                    "load_saves": _quantiles(times[mark[0] :]),
                    "completed": len(report.completed),
                    "resumed": len(report.resumed),
                    "suspended": len(report.suspended),
                    "failed": len(report.failed),
                    "errors": sorted(set(report.failed.values()))[:3],
                }
                print(json.dumps(done), flush=True)
                break
        worker.stop()

    threading.Thread(target=commands, name="bench-commands", daemon=True).start()
    worker.run_sync(handle_signals=False)
    return 0


def _probe(url: str, n: int) -> int:
    preimport(url)
    stop = threading.Event()

    def wait_stop() -> None:
        sys.stdin.readline()
        stop.set()

    histories: list[float] = []
    loads: list[float] = []
    rounds = 0
    rng = random.Random(7)
    with durable.Runtime(url) as runtime:
        store, backend = runtime.store, runtime.backend
        probe_chain.run(0, workflow_id="probe-warm")
        before_saves = store.metrics().checkpoints_measured
        print("up", flush=True)
        threading.Thread(target=wait_stop, name="bench-stop", daemon=True).start()
        while not stop.is_set():
            probe_chain.run(rounds, workflow_id=f"probe-{rounds}")
            wid = waiter_id(rng.randrange(n))
            started = time.perf_counter()
            store.history(wid)
            histories.append(time.perf_counter() - started)
            started = time.perf_counter()
            backend.run_sync(backend.load_steps, wid)
            loads.append(time.perf_counter() - started)
            rounds += 1
        metrics = store.metrics()
    saves = list(runtime.engine.checkpoint_seconds)[before_saves:]
    print(
        json.dumps(
            {
                "rounds": rounds,
                "saves": _quantiles(saves),
                "history": _quantiles(histories),
                "load_steps": _quantiles(loads),
                "checkpoint_ms_p99_all": metrics.checkpoint_ms_p99,
            }
        ),
        flush=True,
    )
    return 0


def main(argv: list[str]) -> int:
    role, url = argv[0], argv[1]
    if role == "worker":
        return _worker(url, int(argv[2]), argv[3])
    if role == "probe":
        return _probe(url, int(argv[2]))
    print(f"unknown role {role!r}", file=sys.stderr)
    return 2
