"""The store as one pipeline sees it: awaited on the async path, blocking on the sync one.

A workflow runs either as a coroutine on an event loop or driven in place on
the caller's thread (``_aio.drive``). Its code is written once, as
coroutines; the :class:`Session` is the one place that decides how a storage
operation runs for it: in place on the sync path, awaited on the async path,
and for the writes of a step's pipeline, committed together with the
concurrent writes of other tasks (group commit).
"""

from __future__ import annotations

from typing import ParamSpec, TypeVar

from durable._clock import Clock
from durable.backends._base import Backend, Operation
from durable.backends._group_commit import grouped
from durable.backends._notify import Subscription

P = ParamSpec("P")
T = TypeVar("T")


class Session:
    """Runs storage operations for one path (sync or async) of the engine.

    Example (inside the engine)::

        row = await session.run(session.backend.get_workflow, workflow_id)
    """

    __slots__ = ("backend", "clock", "sync")

    def __init__(self, backend: Backend, clock: Clock, *, sync: bool) -> None:
        self.backend = backend
        self.clock = clock
        self.sync = sync

    async def run(self, op: Operation[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``op`` in a transaction of its own (atomic if the operation is)."""
        if self.sync:
            return await self.backend.run_in_place(op, *args, **kwargs)
        return await self.backend.run_async(op, *args, **kwargs)

    async def write(self, op: Operation[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a write of a workflow's own; on the async path, group-committed."""
        if self.sync:
            return await self.backend.run_in_place(op, *args, **kwargs)
        return await grouped(self.backend, op, *args, **kwargs)

    async def wait_for(self, subscription: Subscription, seconds: float) -> bool:
        """Wait up to ``seconds`` (real time) for a notification; True if one came."""
        if self.sync:
            return subscription.wait(seconds)
        return await subscription.await_(seconds)

    async def sleep(self, seconds: float) -> None:
        """Sleep on the engine's clock, blocking or awaited."""
        if self.sync:
            self.clock.sleep(seconds)
        else:
            await self.clock.asleep(seconds)
