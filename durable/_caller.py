"""Where the user's code is on the stack: for warnings, and for calling mistakes.

A warning durable emits points at the user's line (not at durable's own
modules), and a sync workflow or step that the user's line is about to
``await`` is refused before it runs.
"""

from __future__ import annotations

import dis
import os
import sys
import types
import warnings
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import wrapt

_OWN_DIRS = tuple(
    os.path.dirname(os.path.abspath(path)) + os.sep for path in (__file__, wrapt.__file__)
)
T = TypeVar("T")

_AWAITED: dict[tuple[types.CodeType, int], bool] = {}


def user_frame() -> tuple[types.FrameType | None, int]:
    """The innermost frame outside durable (and wrapt), and its ``stacklevel`` from here."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_OWN_DIRS):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return frame, level


def warn(warning: Warning) -> None:
    """Emit ``warning`` at the user's line that led to it: one rule for every warning."""
    _, level = user_frame()
    warnings.warn(warning, stacklevel=level)


def awaited_by_caller() -> bool:
    """Whether the user's line calling into durable awaits what the call returns.

    Read from the caller's bytecode: the instruction after the call running
    now is ``GET_AWAITABLE``. Asked only when an event loop runs in this
    thread, so plain sync code never pays for it.
    """
    frame, _ = user_frame()
    if frame is None:
        return False
    key = (frame.f_code, frame.f_lasti)
    found = _AWAITED.get(key)
    if found is None:
        found = _AWAITED[key] = _next_is_await(frame.f_code, frame.f_lasti)
    return found


def _next_is_await(code: types.CodeType, offset: int) -> bool:
    # The offset may point into the call's inline caches (3.11+), which
    # get_instructions hides: the next instruction is the first one past it.
    for instruction in dis.get_instructions(code):
        if instruction.offset > offset:
            return instruction.opname == "GET_AWAITABLE"
    return False


def named(
    coro: Coroutine[Any, Any, T], fn: Callable[..., Any], suffix: str = ""
) -> Coroutine[Any, Any, T]:
    """``coro`` under the name of the user's function ``fn``.

    A forgotten ``await`` then warns "coroutine 'fetch' was never awaited",
    naming the workflow or step, not durable's ``Runtime._run_step``.
    """
    if isinstance(coro, types.CoroutineType):
        coro.__name__ = fn.__name__ + suffix
        coro.__qualname__ = fn.__qualname__ + suffix
    return coro


def called(coro: Coroutine[Any, Any, T], api: str) -> Coroutine[Any, Any, T]:
    """``coro`` under the name of the public call that made it (``durable.sleep``).

    So a forgotten ``await durable.sleep(...)`` names what the user wrote.
    """
    if isinstance(coro, types.CoroutineType):
        coro.__name__ = coro.__qualname__ = api
    return coro
