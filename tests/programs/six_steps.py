"""A 6-step pipeline run in real subprocesses by the crash tests.

Every step appends to a side-effect file, so the tests see what really ran,
independently of what the store records. Environment:

- DURABLE_URL: the store.
- SIDE_EFFECTS: the side-effect file.
- PAUSE_AFTER=n: stop after step n's record committed (write PAUSED_FILE, then
  wait for RELEASE_FILE, or forever), where the test may SIGKILL the process.
- HANG_IN=n: the same, inside step n's body, after it started.
- OFFSET=k: add k to every step's value (tells whose records were kept).
- LEASE_SECONDS: the owner's lease (short in the zombie test).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time

import durable

SIDE_EFFECTS = os.environ.get("SIDE_EFFECTS", os.devnull)


def effect(line: str) -> None:
    with open(SIDE_EFFECTS, "a") as f:
        f.write(line + "\n")


def pause(tag: str) -> None:
    with open(os.environ["PAUSED_FILE"], "w") as f:
        f.write(tag)
    release = os.environ.get("RELEASE_FILE")
    while not (release and os.path.exists(release)):
        time.sleep(0.01)


@durable.step
async def square(i: int, acc: list[int]) -> list[int]:
    effect(f"start {i}")
    if int(os.environ.get("HANG_IN", 0)) == i:
        pause(f"in {i}")
    if os.environ.get("SLOW_STEPS"):
        await asyncio.sleep(0.2)
    effect(f"done {i}")
    return [*acc, i * i + int(os.environ.get("OFFSET", 0))]


@durable.durable_workflow(name="six_steps")
async def six_steps(n: int) -> int:
    acc: list[int] = []
    for i in range(1, n + 1):
        acc = await square(i, acc)
        if int(os.environ.get("PAUSE_AFTER", 0)) == i:
            pause(f"after {i}")
    return sum(acc)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
    durable.configure(
        url=os.environ["DURABLE_URL"],
        poll_interval=0.05,
        lease_seconds=float(os.environ.get("LEASE_SECONDS", 30)),
    )
    if sys.argv[1] == "run":
        print(json.dumps(asyncio.run(six_steps.run(6, workflow_id="six"))))
    elif sys.argv[1] == "abandon":
        # Give up on the workflow (a timeout cancels it) but stay alive.
        async def give_up() -> None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(six_steps.run(6, workflow_id="six"), 0.5)

        os.environ["HANG_IN"] = "0"
        asyncio.run(give_up())
        pause("abandoned")
    elif sys.argv[1] == "recover":
        report = durable.recover_sync()
        print(json.dumps({"resumed": report.resumed, "unknown": report.unknown}))


if __name__ == "__main__":
    main()
