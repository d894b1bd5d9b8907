"""Group commit: concurrent writes of one event loop share a transaction.

While ``max_in_flight`` writes are in flight (each on a connection of its
own), writes from other tasks of the same event loop queue up, and the next
free slot commits all of them in one transaction: one disk flush for all,
and on PostgreSQL, where each statement is a round trip, one statement for
each kind of write in the group (``Backend.run_batch``). Each caller is
answered only after the commit that holds its write, so nothing is
acknowledged early. A write alone costs what it did without grouping: it
runs by itself, with no transaction around it.

An embedded database's writes never suspend, so nothing would ever queue
behind them. There the write that finds no write in flight first gives the
loop's other ready tasks one turn, so that those reaching a write in that
turn commit with it. A turn that gathers nobody means the writes are
sequential: the next ``_PROBE_EVERY`` writes then go straight through, so a
lone workflow does not pay a turn per step.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from durable._errors import BackendUnavailableError
from durable.backends._base import Backend, Write

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger("durable")

T = TypeVar("T")


SHARED_RECORD_BYTES = 16 * 1024
"""Writes carrying up to this many payload bytes share a statement in a group (PostgreSQL)."""

_PROBE_EVERY = 32
"""Writes that skip the gathering turn after a turn gathered nobody."""

Queued = tuple[Write, "asyncio.Future[Any]"]


class _Group:
    """The writes of one event loop waiting for the one in flight to commit."""

    def __init__(self, backend: Backend, loop: asyncio.AbstractEventLoop) -> None:
        self.backend = backend
        self.loop = loop
        self.in_flight = 0
        self.pending: list[Queued] = []
        self.gather = not backend.writes_suspend
        self.skip = 0

    def gathers(self) -> bool:
        """Whether this write should first give other tasks a turn to join it."""
        if not self.gather:
            return False
        if self.skip:
            self.skip -= 1
            return False
        return True

    @property
    def full(self) -> bool:
        return self.in_flight >= self.backend.max_in_flight

    def next_batch(self) -> None:
        """A write (or batch) committed: its slot goes to all that queued meanwhile."""
        if not self.pending:
            self.in_flight -= 1
            return
        batch, self.pending = self.pending, []
        self.loop.create_task(self._commit(batch))

    async def _commit(self, batch: list[Queued]) -> None:
        try:
            await self.settle(batch)
        finally:
            self.next_batch()

    async def _outcomes(self, batch: list[Queued]) -> list[tuple[bool, Any]]:
        if len(batch) > 1:
            try:
                writes = [write for write, _ in batch]
                return await self.backend.run_async(self.backend.run_batch, writes)
            except BackendUnavailableError as exc:
                # Retried already: each write alone would wait as long again.
                return [(False, exc)] * len(batch)
            except Exception:  # the shared transaction failed as a whole: see below
                log.debug(
                    "a group of %d writes failed; each commits alone", len(batch), exc_info=True
                )
        # Alone, or after a shared transaction failed: each write commits on
        # its own, so one bad write cannot take the others down (and a lone
        # write pays for no BEGIN and COMMIT around it).
        outcomes: list[tuple[bool, Any]] = []
        for (op, args, kwargs), _ in batch:
            try:
                outcomes.append((True, await self.backend.run_async(op, *args, **kwargs)))
            except Exception as exc:
                outcomes.append((False, exc))
        return outcomes

    async def settle(self, batch: list[Queued]) -> None:
        """Commit ``batch`` in one transaction and answer each of its callers."""
        try:
            outcomes = await self._outcomes(batch)
            for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():  # its caller was cancelled: a crash after commit
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            raise


_GROUPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, _Group]] = (
    weakref.WeakKeyDictionary()
)


def group_for(backend: Backend) -> _Group:
    import asyncio

    loop = asyncio.get_running_loop()
    groups = _GROUPS.get(loop)
    if groups is None:
        groups = _GROUPS[loop] = {}
    group: _Group | None = groups.get(id(backend))
    if group is None or group.backend is not backend:
        group = groups[id(backend)] = _Group(backend, loop)
    return group


async def grouped(
    backend: Backend, op: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any
) -> T:
    """Run ``op`` as a write, grouped with concurrent ones; its own outcome."""
    import asyncio

    group = group_for(backend)
    if group.full:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        group.pending.append((Write(op, args, kwargs), future))
        return await future  # type: ignore[no-any-return]
    group.in_flight += 1
    try:
        if group.gathers():
            await asyncio.sleep(0)
            if group.pending:
                own: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                batch, group.pending = [(Write(op, args, kwargs), own), *group.pending], []
                try:
                    await group.settle(batch)
                except BaseException:
                    own.exception()  # reported by this raise, not again when collected
                    raise
                return own.result()  # type: ignore[no-any-return]
            group.skip = _PROBE_EVERY
        return await backend.run_async(op, *args, **kwargs)
    finally:
        group.next_batch()
