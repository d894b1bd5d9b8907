"""Classes defined in __main__ whose methods are workflows (issue 14, item 3).

Commands: ``enqueue`` records ``Shop(7).price(1)`` and ``Till.tally(3)`` for a
worker; ``crash`` runs ``Shop.total(2)`` and SIGKILLs this process inside its
step; ``recover`` runs a worker until idle and ``recover_sync()``, then prints
what the store and the live classes say. ``same`` does it all in one process
(a notebook): enqueue, a worker, then a direct call.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

import durable


@durable.step
def note(what: str) -> str:
    with open(os.environ["EFFECTS"], "a") as f:
        f.write(what + "\n")
    if os.environ.get("CRASH_IN") == what:
        os.kill(os.getpid(), signal.SIGKILL)
    return what


class Shop:
    """The classmethod below the decorator: the class pickles by value."""

    def __init__(self, rate: int) -> None:
        self.rate = rate

    @durable.durable_workflow
    def price(self, n: int) -> int:
        note(f"price {self.rate} {n}")
        return self.rate * n

    @classmethod
    @durable.durable_workflow
    def total(cls, n: int) -> int:
        note(f"total {cls.__name__} {n}")
        return 10 * n


class Till:
    """The decorator over the classmethod: a wrapper cloudpickle cannot copy."""

    @durable.durable_workflow
    @classmethod
    def tally(cls, n: int) -> int:
        note(f"tally {cls.__name__} {n}")
        return 100 * n


def state(*workflow_ids: str) -> dict[str, Any]:
    store = durable.current_runtime().store
    outcome: dict[str, Any] = {}
    for workflow_id in workflow_ids:
        info = store.get_workflow(workflow_id)
        outcome[workflow_id] = None if info is None else info.status.value
    outcome["wrappers"] = [
        hasattr(Shop.__dict__["price"], "run"),
        hasattr(Shop.__dict__["total"].__func__, "run"),
        hasattr(Till.__dict__["tally"], "run"),
    ]
    return outcome


def work() -> dict[str, Any]:
    worker = durable.Worker(runtime=durable.current_runtime())
    worker.run_sync(until_idle=True, handle_signals=False)
    report = durable.recover_sync()
    return {
        "worker_failed": worker.report.failed,
        "recover_failed": {k: str(v) for k, v in report.failed.items()},
    }


if __name__ == "__main__":
    durable.configure(url=os.environ["DURABLE_URL"])
    command = sys.argv[1]
    if command == "enqueue":
        Shop(7).price.enqueue(1, workflow_id="price-1")
        Till.tally.enqueue(3, workflow_id="tally-3")
    elif command == "crash":
        Shop.total.run(2, workflow_id="total-2")
    elif command == "recover":
        out = work()
        out.update(state("price-1", "tally-3", "total-2"))
        out["results"] = [
            durable.WorkflowHandle(w).result_sync(timeout=30)  # type: ignore[var-annotated]
            for w in ("price-1", "tally-3", "total-2")
        ]
        print(json.dumps(out))
    elif command == "same":
        Shop(5).price.enqueue(2, workflow_id="price-same")
        out = work()
        out.update(state("price-same"))
        out["after"] = Shop(7).price.run(3, workflow_id="after")
        out.update(state("after"))
        print(json.dumps(out))
