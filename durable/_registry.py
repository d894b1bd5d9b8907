"""The registry of decorated workflows, by name, and of the scripts that define them.

A script's functions and classes belong to no importable module (``__main__``,
a notebook, ``runpy.run_path``), so a pickle cannot name them by reference the
usual way; it names them by module and qualified name, and :func:`find` looks
them up in the namespaces where decorated code of that module was defined.
That holds however the script was started (``python -m cProfile`` leaves the
profiler in ``sys.modules["__main__"]``, not the script).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

_lock = threading.Lock()
_workflows: dict[str, Any] = {}
_namespaces: dict[str, list[dict[str, Any]]] = {}

SCRIPT_MODULES = frozenset({"__main__", "<run_path>", "__mp_main__"})
"""Module names a script runs under: ``python script.py``, runners, runpy, notebooks."""


def register(name: str, workflow: Any) -> None:
    """Register (or, as when a notebook cell is re-run, replace) a workflow."""
    with _lock:
        _workflows[name] = workflow


def lookup(name: str) -> Any | None:
    """The decorated workflow registered under ``name``, if any."""
    with _lock:
        return _workflows.get(name)


@contextlib.contextmanager
def hidden(name: str) -> Iterator[None]:
    """Make ``name`` unknown for the block, as in a process that never imported it."""
    with _lock:
        workflow = _workflows.pop(name, None)
    try:
        yield
    finally:
        if workflow is not None:
            register(name, workflow)


def note_namespace(module: str, namespace: dict[str, Any]) -> None:
    """Remember the globals of a script that defines decorated code (see :func:`find`)."""
    if module not in SCRIPT_MODULES:
        return
    with _lock:
        known = _namespaces.setdefault(module, [])
        if not any(ns is namespace for ns in known):
            known.append(namespace)


def find(module: str, qualname: str) -> Any | None:
    """The live class or function ``module.qualname`` of a script, if this process has it.

    The script's own namespaces come first: under a runner, the module in
    ``sys.modules["__main__"]`` is the runner, whose names must not be taken
    for the script's.
    """
    return find_in_file(module, qualname)[0]


def find_in_file(module: str, qualname: str) -> tuple[Any | None, str | None]:
    """Like :func:`find`, with the file of the script that defines it (None in a notebook).

    Newest namespaces first: a script run again (``runpy.run_path`` in one
    process) defines its classes anew.
    """
    parts = qualname.split(".")
    if any(not part.isidentifier() for part in parts):  # <locals>, <lambda>
        return None, None
    with _lock:
        namespaces = list(reversed(_namespaces.get(module, ())))
    live = sys.modules.get(module)
    if live is not None:
        namespaces.append(vars(live))
    for namespace in namespaces:
        found = _resolve(namespace, parts)
        if found is not None:
            where = namespace.get("__file__")
            return found, where if isinstance(where, str) else None
    return None, None


def classmethod_owner(wrapper: Any) -> type | None:
    """The class that holds ``wrapper`` under a ``classmethod``, if it is found.

    From Python 3.13 ``classmethod`` no longer binds what it wraps, so with
    ``@classmethod`` above a decorator, ``Cls.method.attr`` reaches the
    decorator's object unbound: only the class's own namespace tells.
    """
    qualname = getattr(wrapper, "__qualname__", "")
    owner_name, _, name = qualname.rpartition(".")
    if not owner_name:
        return None
    owner = find(getattr(wrapper, "__module__", ""), owner_name)
    if not isinstance(owner, type):
        return None
    held = vars(owner).get(name)
    if isinstance(held, classmethod) and held.__func__ is wrapper:
        return owner
    return None


def same_file(a: str | None, b: str | None) -> bool:
    """Whether two scripts' files are one (unknown, as in a notebook, counts as the same)."""
    if a is None or b is None:
        return True
    return os.path.realpath(a) == os.path.realpath(b)


def _resolve(namespace: dict[str, Any], parts: list[str]) -> Any | None:
    found = namespace.get(parts[0])
    for part in parts[1:]:
        if not isinstance(found, type):
            return None
        # The class's own attribute, not what binding it gives (a bound
        # wrapper, a new object each time).
        found = vars(found).get(part)
        if isinstance(found, (staticmethod, classmethod)):
            found = found.__func__
    return found
