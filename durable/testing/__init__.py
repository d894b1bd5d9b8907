"""Test helpers for durable workflows: crash them anywhere, prove they resume.

Public and stable; the pytest plugin (``durable.plugins.pytest``) is a thin
layer of fixtures over it, and everything here works without pytest.

- :class:`CrashInjector` crashes a workflow at a :class:`CrashPoint`, in
  process (:class:`SimulatedCrash`, which ``except Exception`` cannot catch)
  or by SIGKILL of the process.
- :func:`kill_at` runs a workflow in a subprocess and SIGKILLs it at a point.
- :func:`crash_sweep` crashes at every point in turn, resumes, and checks
  the outcome against a crash-free run: one line proves a pipeline survives
  any crash.
- :class:`VirtualClock` makes retry backoffs and waits instant.

Example::

    from durable.testing import crash_sweep

    def test_pipeline_survives_any_crash():
        crash_sweep(pipeline, "input.csv").assert_ok()
"""

import contextlib
from collections.abc import Iterator
from typing import Any

from durable import _registry
from durable._engine._context import Site
from durable.testing._clock import VirtualClock
from durable.testing._crash import CrashInjector, CrashPoint, SimulatedCrash
from durable.testing._kill import KilledRun, kill_at
from durable.testing._sweep import (
    PointOutcome,
    SweepFailed,
    SweepReport,
    crash_sweep,
    crash_sweep_async,
)


@contextlib.contextmanager
def unregistered(name: str) -> Iterator[None]:
    """Hide the workflow registered as ``name`` for the block.

    As in a process that never imported its module: recovery reports it as
    unknown, a worker releases it, ``Runtime.resume`` asks for the import.

    Example::

        with durable.testing.unregistered("billing.invoice"):
            report = durable.recover_sync()
        assert report.unknown
    """
    with _registry.hidden(name):
        yield


def registered(name: str) -> Any | None:
    """The workflow this process runs for ``name`` (what recovery and workers call), or None."""
    return _registry.lookup(name)


__all__ = [
    "CrashInjector",
    "CrashPoint",
    "KilledRun",
    "PointOutcome",
    "SimulatedCrash",
    "Site",
    "SweepFailed",
    "SweepReport",
    "VirtualClock",
    "crash_sweep",
    "crash_sweep_async",
    "registered",
    "unregistered",
    "kill_at",
]
