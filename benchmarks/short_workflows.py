"""500 short workflows (3 tiny steps each) on a fresh SQLite file, as one whole process.

Meant to be timed from outside, start-up included, against another checkout:
``farm-bench --vs "env PYTHONPATH=<other checkout> python benchmarks/short_workflows.py"
-- env PYTHONPATH=. python benchmarks/short_workflows.py``. Prints its own
workflows/s on stderr. Nothing here asserts on timings.
"""

from __future__ import annotations

import sys
import tempfile
import time

import durable


@durable.step
def add_one(x: int) -> int:
    return x + 1


@durable.step
def double(x: int) -> int:
    return x * 2


@durable.step
def less_three(x: int) -> int:
    return x - 3


@durable.durable_workflow(name="bench.three")
def three(i: int) -> int:
    return less_three(double(add_one(i)))


def rate(count: int = 500) -> float:
    """Workflows/s of ``count`` workflows on a fresh SQLite file (opening it not timed)."""
    with (
        tempfile.TemporaryDirectory() as folder,
        durable.Runtime(f"sqlite:///{folder}/b.db") as runtime,
        runtime.activated(),
    ):
        started = time.perf_counter()
        for i in range(count):
            three(i)
        return count / (time.perf_counter() - started)


def main(count: int = 500) -> None:
    print(f"{rate(count):.0f} workflows/s", file=sys.stderr)


if __name__ == "__main__":
    main()
