"""A workflow whose result is a class defined in __main__ (as in a script or notebook)."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass

import durable

RAN = False


@dataclass
class Point:
    x: int
    y: int


@durable.step
async def make_point() -> tuple[Point, object]:
    global RAN
    RAN = True
    return Point(1, 2), (lambda v: v * 2)


@durable.durable_workflow(name="main_classes")
async def wf() -> tuple[Point, object]:
    return await make_point()


if __name__ == "__main__":
    durable.configure(url=os.environ["DURABLE_URL"])
    point, double = asyncio.run(wf())
    print(json.dumps({"point": [point.x, point.y], "doubled": double(3), "ran": RAN}))  # type: ignore[operator]
