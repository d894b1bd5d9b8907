"""The subprocess side of :func:`durable.testing.kill_at`."""

from __future__ import annotations

import importlib
import inspect
import sys

import cloudpickle

import durable
from durable import _registry
from durable.testing._crash import CrashInjector, CrashPoint


def main(spec_path: str) -> int:
    with open(spec_path, "rb") as f:
        spec = cloudpickle.loads(f.read())
    sys.path[:] = spec["sys_path"]
    importlib.import_module(spec["module"])
    workflow = _registry.lookup(spec["name"])
    if workflow is None:
        print(f"no workflow named {spec['name']!r} in {spec['module']}", file=sys.stderr)
        return 2
    runtime = durable.configure(url=spec["url"])
    CrashInjector(runtime).arm(CrashPoint.parse(spec["point"]), mode="kill")
    outcome = workflow.run(*spec["args"], workflow_id=spec["workflow_id"], **spec["kwargs"])
    if inspect.iscoroutine(outcome):
        import asyncio

        asyncio.run(outcome)
    print(f"the run ended without reaching crash point {spec['point']}", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
