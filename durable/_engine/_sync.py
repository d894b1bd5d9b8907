"""Running a workflow's coroutine from sync code, marking a loop it blocks."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from durable import _aio
from durable._engine import _context

T = TypeVar("T")


def run_coroutine_sync(coro: Coroutine[Any, Any, T]) -> T:
    """:func:`durable._aio.run_coroutine_sync`, telling the code it runs that it blocks a loop.

    A workflow run this way from inside a running loop (a notebook cell) must
    not wait for work that loop would do: ``_context.blocking_a_loop`` says so.
    """
    return _aio.run_coroutine_sync(coro, in_helper=lambda: _context.blocking_a_loop.set(True))
