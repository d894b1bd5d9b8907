"""The registry of decorated workflows, by name, for recover() and workers."""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_workflows: dict[str, Any] = {}


def register(name: str, workflow: Any) -> None:
    """Register (or, as when a notebook cell is re-run, replace) a workflow."""
    with _lock:
        _workflows[name] = workflow


def lookup(name: str) -> Any | None:
    """The decorated workflow registered under ``name``, if any."""
    with _lock:
        return _workflows.get(name)
