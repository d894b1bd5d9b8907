"""Running one pipeline from sync and async code (a leaf: imports nothing of the engine).

The runtime's logic and each storage operation are written once, as
coroutines. Sync callers drive those coroutines with :func:`drive`, which
works because on the sync path they never suspend: every I/O they await
blocks instead.
"""

from __future__ import annotations

import contextvars
import sys
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Generator, Iterator
from typing import Any, TypeVar

from durable._errors import ConfigurationError

T = TypeVar("T")

LONGEST_BLOCK: float = min(threading.TIMEOUT_MAX, 86400.0)
"""The longest a thread blocks in one call: longer waits are cut into such slices.

Windows' thread waits take at most about 49 days (``threading.TIMEOUT_MAX``);
a day keeps every platform well inside what its timers accept.
"""


def block_for(seconds: float) -> float:
    """``seconds`` for one blocking wait: not negative, at most :data:`LONGEST_BLOCK`.

    For waits whose caller looks again when they end (a poll, a heartbeat).
    """
    return min(max(seconds, 0.0), LONGEST_BLOCK)


def loop_running() -> bool:
    """Whether an asyncio event loop runs in this thread; never imports asyncio.

    No loop can run where asyncio was never imported: a sync program does
    not load it (several MiB, its SSL support included) for this look.
    """
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and asyncio._get_running_loop() is not None


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that completes without suspending, in this thread."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    except RuntimeError as exc:
        # PEP 479 turns a StopIteration raised by user code inside the
        # coroutine into a RuntimeError; a sync caller expects it as it was.
        if isinstance(exc.__cause__, StopIteration) and "raised StopIteration" in str(exc):
            raise exc.__cause__ from None
        raise
    coro.close()
    raise RuntimeError(
        "durable internal error: a sync pipeline tried to suspend; an async "
        "object was awaited on the sync path"
    )


def drive_iterator(agen: AsyncGenerator[T, None]) -> Iterator[T]:
    """Iterate, in this thread, an async generator whose steps complete without suspending."""
    try:
        while True:
            try:
                item = drive(agen.__anext__())
            except StopAsyncIteration:
                return
            yield item
    finally:
        drive(agen.aclose())


class _Done(Awaitable[T]):
    """An awaitable that is already complete (the sync path did the work)."""

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value

    def __await__(self) -> Generator[Any, None, T]:
        return self._value
        yield


def here(coro: Coroutine[Any, Any, T], sync: bool) -> Awaitable[T]:
    """Run ``coro`` now on the sync path (an awaitable done already), or hand it back.

    For operations that a workflow awaits when it is async and just calls
    when it is sync (``durable.snapshot``, ``durable.sleep``).
    """
    if sync:
        return _Done(drive(coro))
    return coro


def run_coroutine_sync(
    coro: Coroutine[Any, Any, T], *, in_helper: Callable[[], object] | None = None
) -> T:
    """Run a coroutine to completion from sync code, even inside a running loop.

    With no loop running in this thread it gets a fresh one. Inside a running
    loop (a notebook cell, an async framework) it runs on a fresh loop in a
    helper thread while this thread waits, which avoids "event loop is already
    running"; the context (the active runtime) is carried over, and
    ``in_helper`` runs first in that copied context (to mark it, say).
    """
    import asyncio

    if not loop_running():
        return asyncio.run(coro)
    outcome: list[Any] = []
    context = contextvars.copy_context()
    if in_helper is not None:
        context.run(in_helper)

    def target() -> None:
        try:
            outcome.append((True, context.run(asyncio.run, coro)))
        except BaseException as exc:  # handed over to the waiting thread as is
            outcome.append((False, exc))

    thread = threading.Thread(target=target, name="durable-run-sync", daemon=True)
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value


def require_asyncio(what: str) -> None:
    """Refuse, with a clear error, an async call that no asyncio loop runs.

    durable's async path is built on asyncio (its group commit, notifications
    and timers); under trio (or anyio's trio backend) it would fail deep
    inside with "no running event loop". Checked once per call from user code
    (a workflow, a store method, recovery, a worker), never per step.
    """
    if not loop_running():
        raise ConfigurationError(
            f"{what} was awaited outside an asyncio event loop (under trio, or "
            "anyio's trio backend?). durable's async API runs on asyncio only: run it "
            'with asyncio.run(...) or anyio.run(..., backend="asyncio"), or from trio '
            "call the sync form (wf.run_sync(...), store methods without the a- prefix) "
            "in a worker thread, e.g. await trio.to_thread.run_sync(...)"
        )
