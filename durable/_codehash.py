"""Fingerprints of code: has a step changed since its record was written?

A step's fingerprint covers its bytecode, constants and the names it uses,
and, recursively, those of the project-local functions it calls (functions
of your own code, as opposed to the standard library or installed packages).
Line numbers are left out, so moving a function or adding blank lines above
it changes nothing; renaming a variable, changing a constant or a called
helper of yours does.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
import sys
import sysconfig
import types
from typing import Any

_CODE_HASHES: dict[int, tuple[types.CodeType, bytes]] = {}


def fingerprint(fn: Any) -> str:
    """The fingerprint of a function's code and of the project code it calls."""
    digest = hashlib.sha256()
    _feed_function(digest, _unwrap(fn), set())
    return digest.hexdigest()[:32]


def _unwrap(fn: Any) -> Any:
    fn = getattr(fn, "__func__", fn)
    return inspect.unwrap(fn) if callable(fn) else fn


def _feed_function(digest: Any, fn: Any, seen: set[int]) -> None:
    code = getattr(fn, "__code__", None)
    if not isinstance(code, types.CodeType) or id(code) in seen:
        return
    seen.add(id(code))
    digest.update(_code_hash(code))
    module_globals = getattr(fn, "__globals__", {})
    for name in _names(code):
        callee = module_globals.get(name)
        if callee is None:
            continue
        callee = _unwrap(callee)
        if inspect.isfunction(callee) and _is_project_code(callee):
            _feed_function(digest, callee, seen)


def _names(code: types.CodeType) -> list[str]:
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names += _names(const)
    return names


def _code_hash(code: types.CodeType) -> bytes:
    cached = _CODE_HASHES.get(id(code))
    if cached is not None and cached[0] is code:
        return cached[1]
    digest = hashlib.sha256()
    _feed_code(digest, code)
    value = digest.digest()
    _CODE_HASHES[id(code)] = (code, value)  # keeps the code alive: its id stays its own
    return value


def _feed_code(digest: Any, code: types.CodeType) -> None:
    digest.update(code.co_code)
    digest.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _feed_code(digest, const)
        else:
            digest.update(repr(const).encode(errors="backslashreplace"))


def _is_project_code(fn: types.FunctionType) -> bool:
    module = sys.modules.get(fn.__module__)
    path = getattr(module, "__file__", None)
    if path is None:
        return fn.__module__ == "__main__" or fn.__module__.startswith("__")  # scripts, notebooks
    return not os.path.realpath(path).startswith(_library_roots())


@functools.cache
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    roots |= {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return tuple(os.path.realpath(root) for root in roots if root)
