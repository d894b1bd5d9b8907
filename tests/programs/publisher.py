"""A workflow that publishes its progress, run in real subprocesses by the published-state tests.

``python publisher.py run N`` runs ``publisher.job(N)`` under the id ``job-N``:
it publishes ``progress`` after each of N steps, then ``ready``, waits for the
event ``go``, publishes ``stage`` and returns. Environment: DURABLE_URL (the
store) and SIDE_EFFECTS (a file each step body appends to).
"""

from __future__ import annotations

import os
import sys

import durable


@durable.step
def work(i: int) -> int:
    with open(os.environ.get("SIDE_EFFECTS", os.devnull), "a") as f:
        f.write(f"step {i}\n")
    return i


@durable.durable_workflow(name="publisher.job", timeout=3600)
def job(n: int) -> str:
    for i in range(1, n + 1):
        work(i)
        durable.publish_sync("progress", i / n * 100)
    durable.publish_sync("ready", True)
    go = durable.wait_for_event_sync("go")
    durable.publish_sync("stage", f"finished after {go}")
    return "done"


if __name__ == "__main__":
    n = int(sys.argv[2])
    print(job.run_sync(n, workflow_id=f"job-{n}"))
