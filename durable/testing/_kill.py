"""Real crashes: run a workflow in a subprocess and SIGKILL it at a crash point."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

import cloudpickle

from durable._engine._runtime import current_runtime
from durable._errors import ConfigurationError
from durable.testing._crash import CrashPoint


@dataclass(frozen=True)
class KilledRun:
    """A subprocess that was SIGKILLed at a crash point."""

    point: CrashPoint
    workflow_id: str
    url: str
    stderr: str


def kill_at(
    point: CrashPoint | str,
    workflow: Any,
    /,
    *args: Any,
    workflow_id: str,
    url: str | None = None,
    timeout: float = 120.0,
    **kwargs: Any,
) -> KilledRun:
    """Run ``workflow`` in a fresh Python process and SIGKILL it at ``point``.

    The process gets no chance to clean up, exactly as after a power cut of
    that process alone; afterwards, call the workflow here (same
    ``workflow_id``) to resume it. The workflow must be importable by module
    name (defined at the top level of a module, not in ``__main__`` or inside
    a function), and the store must be one both processes reach: a SQLite file
    or PostgreSQL (the current runtime's by default).

    Example::

        durable.testing.kill_at("after_commit:charge", checkout, 7, workflow_id="order-7")
        assert checkout.run_sync(7, workflow_id="order-7") == receipt
    """
    point = CrashPoint.parse(point) if isinstance(point, str) else point
    info = getattr(workflow, "_self_durable", None)
    if info is None:
        raise ConfigurationError(
            f"kill_at takes a function decorated with @durable.durable_workflow, not {workflow!r}"
        )
    module = workflow.__module__
    if module == "__main__" or "<locals>" in workflow.__qualname__:
        raise ConfigurationError(
            f"kill_at runs {workflow.__qualname__} in another process, which must import it "
            "by module name: define it at the top level of an importable module"
        )
    url = url if url is not None else current_runtime().url
    if url.startswith("sqlite") and (":memory:" in url or url in ("sqlite://", "sqlite:///")):
        raise ConfigurationError(
            "kill_at needs a store that outlives the process: an SQLite file or PostgreSQL, "
            f"not {url!r}"
        )
    spec = {
        "url": url,
        "module": module,
        "name": info[0].name,
        "workflow_id": workflow_id,
        "point": str(point),
        "args": args,
        "kwargs": kwargs,
        "sys_path": sys.path,
    }
    with tempfile.NamedTemporaryFile(suffix=".pickle", delete=False) as f:
        f.write(cloudpickle.dumps(spec))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "durable.testing._child", f.name],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            check=False,
        )
    finally:
        os.unlink(f.name)
    if proc.returncode != -signal.SIGKILL:
        raise AssertionError(
            f"the subprocess running {info[0].name} was not killed at {point} "
            f"(exit code {proc.returncode}):\n{proc.stdout}{proc.stderr}"
        )
    return KilledRun(point=point, workflow_id=workflow_id, url=url, stderr=proc.stderr)
