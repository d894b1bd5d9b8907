"""``durable.wait_first`` and ``durable.as_completed``: racing steps, recorded.

Which of several steps (or child workflows, or enqueued workflows' handles)
finishes first depends on timing, so a resumed workflow could take another
branch than the first run did. Here the winner is recorded, at a position of
its own, and a replay takes the same one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterable
from typing import Any, TypeVar

from durable._engine import _context
from durable._errors import ConfigurationError
from durable._handle import WorkflowHandle

T = TypeVar("T")


async def wait_first(awaitables: Iterable[Awaitable[T] | WorkflowHandle[T]]) -> tuple[int, T]:
    """Wait for the first of several to finish; its index and its result.

    Give it step calls, child workflow calls or :class:`durable.WorkflowHandle`
    objects (made, not awaited yet). The first to finish wins (the lowest
    index when several finish at once), the others are cancelled (a step
    cut off this way records nothing). The winner's index is recorded, so a
    resumed workflow takes the same one and starts none of the others. An
    error of the winner is raised here.

    Outside a workflow it is a plain race, recorded nowhere.

    Example::

        index, answer = await durable.wait_first([ask_model_a(q), ask_model_b(q)])
    """
    pending = _pending(awaitables, "wait_first")
    ctx = _workflow(pending, "wait_first")
    if ctx is None:
        return await _race(pending, cancel_rest=True)
    position = ctx.allocate("wait_first")
    index, value = await ctx.engine.first_of(ctx, ctx.session, position, pending, True)
    return index, value


async def as_completed(
    awaitables: Iterable[Awaitable[T] | WorkflowHandle[T]],
) -> AsyncIterator[tuple[int, T]]:
    """Each of several, as it finishes: its index and its result, in a recorded order.

    Like :func:`asyncio.as_completed`, but the order of completion is
    recorded (one position per item), so a resumed workflow goes through
    them in the same order. An item's error is raised when its turn comes;
    leaving the loop early cancels those not finished.

    Example::

        async for index, page in durable.as_completed([fetch(u) for u in urls]):
            await store(urls[index], page)
    """
    import asyncio

    pending = _pending(awaitables, "as_completed")
    ctx = _workflow(pending, "as_completed")
    try:
        while pending:
            if ctx is None:
                yield await _race(pending, cancel_rest=False)
                continue
            position = ctx.allocate("wait_first")
            yield await ctx.engine.first_of(ctx, ctx.session, position, pending, False)
    finally:
        for aw in pending.values():
            if isinstance(aw, asyncio.Future):
                aw.cancel()
            elif asyncio.iscoroutine(aw):
                aw.close()


def _pending(awaitables: Iterable[Any], api: str) -> dict[int, Awaitable[Any]]:
    items = list(awaitables)
    if not items:
        raise ConfigurationError(f"durable.{api}() needs at least one awaitable")
    pending: dict[int, Awaitable[Any]] = {}
    for index, item in enumerate(items):
        if isinstance(item, WorkflowHandle):
            item = item.result()
        elif not isinstance(item, Awaitable):
            raise ConfigurationError(
                f"durable.{api}() takes awaitables (step or workflow calls not awaited yet) "
                f"and WorkflowHandles; item {index} is {type(item).__name__} {item!r}"
            )
        pending[index] = item
    return pending


def _workflow(pending: dict[int, Awaitable[Any]], api: str) -> _context.WorkflowContext | None:
    import asyncio

    ctx = _context.current.get()
    if isinstance(ctx, _context.InStep):
        ctx = None  # inside a step: a plain race, the step's result is what is recorded
    if isinstance(ctx, _context.WorkflowContext) and ctx.session.sync:
        for aw in pending.values():
            if asyncio.iscoroutine(aw):
                aw.close()
        raise ConfigurationError(
            f"durable.{api}() races awaitables, which a sync workflow ({ctx.name!r}) cannot "
            "await; make the workflow `async def`"
        )
    return ctx if isinstance(ctx, _context.WorkflowContext) else None


async def _race(pending: dict[int, Awaitable[Any]], cancel_rest: bool) -> tuple[int, Any]:
    import asyncio

    tasks = {i: asyncio.ensure_future(aw) for i, aw in pending.items()}
    pending.update(tasks)
    await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_COMPLETED)
    index = min(i for i, task in tasks.items() if task.done())
    winner = pending.pop(index)
    if cancel_rest:
        for task in pending.values():
            if isinstance(task, asyncio.Future):
                task.cancel()
    return index, await winner
