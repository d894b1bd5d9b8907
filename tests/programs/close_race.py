"""Threads run workflows on one runtime while it closes.

``close``: the main thread enters ``with rt:``, starts four threads (which
use rt, started inside the block) that run workflows until rt closes, and
closes rt under them. ``nested``: four threads each enter ``with rt:`` and
run workflows; the runtime closes when the last leaves. Prints one line per
thread and exits 1 if any thread saw anything but a clean end.
"""

from __future__ import annotations

import asyncio
import sys
import threading

import durable


@durable.step
def add(a: int, b: int) -> int:
    return a + b


@durable.step
async def aadd(a: int, b: int) -> int:
    return a + b


@durable.durable_workflow
def work(thread: int, i: int) -> int:
    total = 0
    for k in range(3):
        total = add(total, k)
    return total


@durable.durable_workflow
async def awork(thread: int, i: int) -> int:
    total = 0
    for k in range(3):
        total = await aadd(total, k)
    return total


def one(thread: int, i: int) -> None:
    if i % 2:
        assert asyncio.run(awork(thread, i)) == 3
    else:
        assert work(thread, i) == 3


def close_under_threads(url: str) -> list[str]:
    outcomes: list[str] = []
    ran = [threading.Event() for _ in range(4)]

    def loop(thread: int) -> None:
        i = 0
        try:
            while True:
                one(thread, i)
                ran[thread].set()
                i += 1
        except durable.RuntimeClosedError as exc:
            outcomes.append(f"closed: {exc}")
        except BaseException as exc:
            outcomes.append(f"unexpected: {exc!r}")
        finally:
            ran[thread].set()

    with durable.Runtime(url) as rt:
        threads = [threading.Thread(target=loop, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for event in ran:
            event.wait(60)
        rt.close()
        for t in threads:
            t.join(60)
    return outcomes


def nested(url: str) -> list[str]:
    outcomes: list[str] = []
    rt = durable.Runtime(url)
    entered = threading.Barrier(4)

    def block(thread: int) -> None:
        try:
            with rt:
                entered.wait(60)
                for i in range(4):
                    one(thread, i)
            outcomes.append("left")
        except BaseException as exc:
            outcomes.append(f"unexpected: {exc!r}")

    threads = [threading.Thread(target=block, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        with rt:
            pass
        outcomes.append("unexpected: still open after the last block")
    except durable.RuntimeClosedError:
        pass
    return outcomes


if __name__ == "__main__":
    scenario, url = sys.argv[1], sys.argv[2]
    outcomes = close_under_threads(url) if scenario == "close" else nested(url)
    for line in outcomes:
        print(line)
    sys.exit(1 if len(outcomes) != 4 or any(o.startswith("unexpected") for o in outcomes) else 0)
