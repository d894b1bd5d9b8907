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
import inspect
import os
import sys
import sysconfig
import types
from typing import Any

from durable._digests import sha256

_Inputs = tuple[list[tuple[Any, types.CodeType]], list[tuple[dict[str, Any], str, Any]]]
"""What a fingerprint was computed from: each function hashed with its code,
and each global name looked up with what it held."""

_CODE_HASHES: dict[int, tuple[types.CodeType, bytes]] = {}
_FINGERPRINTS: dict[int, tuple[Any, str, _Inputs]] = {}


def fingerprint(fn: Any) -> str:
    """The fingerprint of a function's code and of the project code it calls."""
    # Every step of every workflow asks, and walking the calls costs more
    # than the rest of the step's bookkeeping: the last answer stands while
    # what it was computed from does (a cell run again, autoreload's new
    # __code__ or a rebound helper computes it afresh).
    cached = _FINGERPRINTS.get(id(fn))
    if cached is not None and cached[0] is fn and _unchanged(cached[2]):
        return cached[1]
    digest = sha256()
    inputs: _Inputs = ([], [])
    _feed_function(digest, _unwrap(fn), set(), inputs)
    value = digest.hexdigest()[:32]
    _FINGERPRINTS[id(fn)] = (fn, value, inputs)  # keeps fn alive: its id stays its own
    return value


def _unchanged(inputs: _Inputs) -> bool:
    functions, names = inputs
    for fn, code in functions:
        if fn.__code__ is not code:
            return False
    return all(namespace.get(name) is value for namespace, name, value in names)


def _unwrap(fn: Any) -> Any:
    fn = getattr(fn, "__func__", fn)
    return inspect.unwrap(fn) if callable(fn) else fn


def _feed_function(digest: Any, fn: Any, seen: set[int], inputs: _Inputs) -> None:
    code = getattr(fn, "__code__", None)
    if not isinstance(code, types.CodeType) or id(code) in seen:
        return
    seen.add(id(code))
    inputs[0].append((fn, code))
    digest.update(_code_hash(code))
    module_globals = getattr(fn, "__globals__", {})
    for name in _names(code):
        callee = module_globals.get(name)
        if isinstance(module_globals, dict):
            inputs[1].append((module_globals, name, callee))
        if callee is None:
            continue
        callee = _unwrap(callee)
        if inspect.isfunction(callee) and _is_project_code(callee):
            _feed_function(digest, callee, seen, inputs)


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
    digest = sha256()
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
    """Whether ``fn`` is your code (fingerprinted) rather than a library's.

    Judged by the file the function's own module was loaded from, never by
    what ``sys.modules`` holds under its module's name: under a runner
    (``python -m cProfile script.py``) ``sys.modules["__main__"]`` is the
    runner, a file of the standard library, and the script's helpers would
    drop out of every fingerprint.
    """
    module = sys.modules.get(fn.__module__)
    if module is not None and vars(module) is fn.__globals__:
        path = getattr(module, "__file__", None)
    else:
        path = fn.__globals__.get("__file__") or fn.__code__.co_filename
    return _is_project_file(path if isinstance(path, str) else None)


@functools.lru_cache(maxsize=1024)
def _is_project_file(path: str | None) -> bool:
    if path is None or path.startswith("<"):
        # Typed in (a notebook, a REPL, <string>), unless frozen into Python.
        return path is None or not path.startswith("<frozen")
    return not os.path.realpath(path).startswith(_library_roots())


@functools.cache
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    roots |= {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return tuple(os.path.realpath(root) for root in roots if root)
