"""Steps of 1 MiB each, for the background-checkpoint crash test.

Environment: DURABLE_URL (the store), SIDE_EFFECTS (a line per step body
run), STEPS (how many). Prints the sha256 of every step's result once the
workflow returns.
"""

from __future__ import annotations

import hashlib
import os

import durable

SIDE_EFFECTS = os.environ["SIDE_EFFECTS"]


def payload(i: int) -> bytes:
    return hashlib.sha256(str(i).encode()).digest() * 32_768  # 1 MiB


@durable.step(name="big.chunk")
def chunk(i: int) -> bytes:
    with open(SIDE_EFFECTS, "a") as f:
        f.write(f"{i}\n")
    return payload(i)


@durable.durable_workflow(name="big.pipeline")
def pipeline(steps: int) -> list[str]:
    return [hashlib.sha256(chunk(i)).hexdigest() for i in range(steps)]


if __name__ == "__main__":
    durable.configure(os.environ["DURABLE_URL"])
    for digest in pipeline.run_sync(int(os.environ["STEPS"]), workflow_id="big"):
        print(digest)
