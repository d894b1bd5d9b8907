"""Waits: durable timers, events, and suspending a workflow until either comes."""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from durable._clock import jumps_ahead, real_time
from durable._durations import (
    as_seconds,
    deadline_after,
    duration,
    is_beyond_reach,
    replayed_deadline,
)
from durable._engine import _context
from durable._engine._core import (
    Engine,
    Suspended,
    check_deadline,
)
from durable._engine._steps import OverSteps, cancel_hinted, replayable
from durable._errors import (
    ConfigurationError,
    EventTimeoutError,
    OwnershipLostError,
)
from durable._records import (
    EventGone,
    EventRow,
    StepKind,
    StepRow,
    StepStatus,
)
from durable._serialization import (
    event_slot,
    place,
    step_columns,
    step_slot,
)
from durable._session import Session
from durable.backends._notify import Subscription, event_topic

# Sleeps from this length show the workflow as waiting (two writes).
_SHOW_WAITS_FROM = 1.0
# The longest a held wait goes without looking at the store: how often a long
# sleep looks whether it still owns its workflow, and what an event wait's
# fallback poll backs off to while nothing comes. Notifications wake them at
# once (an event sent or a cancel, in this process, through PostgreSQL's
# NOTIFY or SQLite's file watcher; a lease the heartbeat could not renew), so
# this bounds only what a lost notification costs (and never exceeds a third
# of the lease, the heartbeat's period).
_LONGEST_POLL = 5.0


class Waits(OverSteps):
    """Durable sleeps and event waits of a running workflow."""

    def fill(self, engine: Engine) -> None:
        engine.sleep, engine.wait_for_event = self.sleep, self.wait_for_event
        engine.first_of = self.first_of

    async def first_of(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        position: int,
        pending: dict[int, Awaitable[Any]],
        cancel_rest: bool,
    ) -> tuple[int, Any]:
        """The first of ``pending`` to finish: its index (recorded at ``position``) and outcome.

        The winner is removed from ``pending``; with ``cancel_rest`` the
        others are cancelled, else they are left running as tasks. A replay
        takes the recorded winner and starts none of the others.
        """
        import asyncio

        name = "wait_first"
        recorded = replayable(ctx, position, name)
        if recorded is not None:
            index = int(self.engine.decode_step(recorded, ctx.workflow_id))
            if cancel_rest:
                _discard(v for i, v in pending.items() if i != index)
            return index, await pending.pop(index)
        check_deadline(ctx)
        started = self.engine.clock.time()
        tasks = {i: asyncio.ensure_future(aw) for i, aw in pending.items()}
        pending.update(tasks)
        try:
            await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_COMPLETED)
            done = [i for i, task in tasks.items() if task.done()]
            for i in done:
                # A crash, a suspension or a deadline in one of them is the
                # workflow's, not an outcome of the race: nothing is recorded.
                failed = None if tasks[i].cancelled() else tasks[i].exception()
                if failed is not None and not isinstance(failed, Exception):
                    raise failed
            # The lowest index among those done at once: the same on every run.
            first = min(done)
            index = int(
                await self.steps.commit(ctx, session, position, name, started, 1, value=first)
            )
        except BaseException:
            _discard(tasks.values())
            raise
        winner = pending.pop(index)  # another executor's record may name another
        if cancel_rest:
            _discard(pending.values())
        return index, await winner

    async def sleep(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        position: int,
        name: str,
        deadline_from: Callable[[float], float],
        suspend: bool = False,
    ) -> None:
        """A durable timer: its deadline is recorded first, then waited for."""
        if cancel_hinted(ctx):
            await self.engine.stop_if_cancelled(ctx, session, name)
        recorded = replayable(ctx, position, name, StepKind.SLEEP)
        if recorded is None:
            deadline = float(deadline_from(self.engine.clock.time()))
            deadline = await self.steps.commit(
                ctx,
                session,
                position,
                name,
                self.engine.clock.time(),
                1,
                value=deadline,
                kind=StepKind.SLEEP,
            )
        else:
            stored = float(self.engine.decode_step(recorded, ctx.workflow_id))
            deadline = replayed_deadline(stored)
            # A deadline no process can wait for (recorded by an older version)
            # suspends the workflow: it shows as waiting, recover() passes it
            # by, and cancelling it is the way out.
            suspend = suspend or is_beyond_reach(stored)
        # The workflow's own deadline ends the sleep sooner, and the workflow.
        times_out = ctx.deadline is not None and ctx.deadline < deadline
        if times_out:
            assert ctx.deadline is not None
            deadline = ctx.deadline
        remaining = deadline - self.engine.clock.time()
        if remaining <= 0:
            check_deadline(ctx)
            return
        # A short sleep is not worth two writes to show it in the status.
        if not suspend and remaining < _SHOW_WAITS_FROM:
            await session.sleep(remaining)
            if times_out:
                check_deadline(ctx)
            return
        await self._enter_wait(ctx, session, deadline, None, suspend)
        # A long sleep listens, like an event wait, for a cancel (which
        # notifies) and looks now and then whether it still owns the workflow.
        if not real_time(self.engine.clock):
            await session.sleep(remaining)  # a test's clock: instant, or moved by the test
        else:
            topic = event_topic(ctx.workflow_id)
            with self.engine.backend.notifier.subscribe(topic) as subscription:
                while self.engine.clock.time() < deadline:
                    await self._pause(session, subscription, deadline, self._longest_poll())
                    await self.engine.check_still_owned(ctx, session)
        await self._leave_wait(ctx, session)
        if times_out:
            check_deadline(ctx)

    async def wait_for_event(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        position: int,
        key: str,
        timeout: float | dt.timedelta | None,
        suspend: bool,
    ) -> Any:
        """Wait for an event; record its value (consuming it) or the timeout.

        Two positions: ``position`` holds the deadline (when there is a
        timeout), ``position + 1`` the outcome.
        """
        workflow_id = ctx.workflow_id
        name = f"wait_for_event({key!r})"
        at = position + 1
        recorded = replayable(ctx, at, name, StepKind.EVENT)
        if recorded is not None:
            return self.engine.decode_step(recorded, workflow_id)
        if cancel_hinted(ctx):
            await self.engine.stop_if_cancelled(ctx, session, name)
        deadline = await self._event_deadline(ctx, session, position, name, timeout)
        self.engine.site("before_step", ctx, at, name)
        started = self.engine.clock.time()
        where = f"{name} (position {at} of workflow {workflow_id!r})"
        # The workflow's own deadline ends the wait sooner, and the workflow.
        until = deadline
        if ctx.deadline is not None and (until is None or ctx.deadline < until):
            until = ctx.deadline
        while True:
            event = await self._event_or_deadline(ctx, session, key, until, suspend)
            if event is None:
                if until is not deadline:
                    check_deadline(ctx)
                assert timeout is not None
                seconds = as_seconds(timeout, "timeout")
                timed_out = EventTimeoutError(
                    f"workflow {workflow_id!r}: no event {key!r} arrived within {seconds:g} s "
                    f"(position {at}); the timeout is recorded, so a resumed run raises it too",
                    workflow_id=workflow_id,
                    key=key,
                    timeout=seconds,
                )
                return await self.steps.commit(
                    ctx, session, at, name, started, 1, error=timed_out, kind=StepKind.EVENT
                )
            value = self.engine.codec.loads(
                event.value, place(workflow_id, event_slot(key)), what=f"event for {where}"
            )
            row = StepRow(
                position=at,
                name=name,
                status=StepStatus.SUCCESS,
                output=self.engine.codec.dumps(
                    value,
                    place(workflow_id, step_slot(at)),
                    what=f"event for {where}",
                    bound=step_columns("event", name, StepStatus.SUCCESS.value, 1, None),
                ),
                attempt=1,
                started_at=started,
                finished_at=self.engine.clock.time(),
                kind=StepKind.EVENT.value,
            )
            self.engine.site("after_step", ctx, at, name)
            try:
                standing = await session.run(
                    session.backend.take_event, workflow_id, ctx.epoch, event.event_id, row
                )
            except EventGone:
                continue  # another wait of this workflow took that event first
            self.engine.site("after_commit", ctx, at, name)
            return value if standing is row else self.engine.decode_step(standing, workflow_id)

    async def _event_deadline(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        position: int,
        name: str,
        timeout: float | dt.timedelta | None,
    ) -> float | None:
        """An event wait's deadline: recorded at ``position`` when the wait starts."""
        if timeout is None:
            return None
        timer_name = f"{name} timeout"
        timer = replayable(ctx, position, timer_name, StepKind.SLEEP)
        if timer is not None:
            return replayed_deadline(float(self.engine.decode_step(timer, ctx.workflow_id)))
        now = self.engine.clock.time()
        deadline = deadline_after(now, duration(timeout, "timeout"), "timeout", given=timeout)
        recorded: float = await self.steps.commit(
            ctx, session, position, timer_name, now, 1, value=deadline, kind=StepKind.SLEEP
        )
        return recorded

    async def _event_or_deadline(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        key: str,
        deadline: float | None,
        suspend: bool,
    ) -> EventRow | None:
        """The oldest unconsumed event of ``key``, waited for; None at the deadline.

        Between looks it waits for a notification, or for its fallback poll,
        which starts at ``event_poll_interval`` and doubles each time nothing
        came (up to :data:`_LONGEST_POLL`), back to the start when notified:
        thousands of waits held for hours would otherwise keep the store and
        their worker busy answering polls.
        """
        waiting = False
        first = interval = self.engine.options.event_poll_interval
        with self.engine.backend.notifier.subscribe(event_topic(ctx.workflow_id)) as subscription:
            while True:
                event = await session.run(session.backend.next_event, ctx.workflow_id, key)
                if event is not None or (
                    deadline is not None and self.engine.clock.time() >= deadline
                ):
                    break
                if not waiting:
                    await self._enter_wait(ctx, session, deadline, key, suspend)
                    waiting = True
                await self._pause(session, subscription, deadline, interval)
                # A hint (SQLite: some commit) is looked at but is no reason to poll more.
                notified = subscription.take_notified()
                interval = first if notified else min(2 * interval, self._longest_poll())
                await self.engine.check_still_owned(ctx, session)
        if waiting:
            await self._leave_wait(ctx, session)
        return event

    def _longest_poll(self) -> float:
        options = self.engine.options
        return max(options.event_poll_interval, min(_LONGEST_POLL, options.lease_seconds / 3))

    async def _enter_wait(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        wake_at: float | None,
        key: str | None,
        suspend: bool,
    ) -> None:
        """Show the workflow as waiting; when suspending, give it up and unwind."""
        if suspend and ctx.tx is not None:
            raise ConfigurationError(
                "a workflow cannot suspend inside durable.transaction(): the block's "
                "records would be lost; wait outside the block"
            )
        if ctx.waits == 0 or suspend:
            if not await session.run(
                session.backend.set_waiting, ctx.workflow_id, ctx.epoch, wake_at, key, suspend
            ):
                raise OwnershipLostError(
                    f"workflow {ctx.workflow_id!r} was taken over while it started to wait",
                    workflow_id=ctx.workflow_id,
                    epoch=ctx.epoch,
                )
            if suspend:
                self.leases.drop(ctx.workflow_id)
                raise Suspended(ctx.workflow_id, wake_at, key)
        ctx.waits += 1

    async def _leave_wait(self, ctx: _context.WorkflowContext, session: Session) -> None:
        ctx.waits -= 1
        if ctx.waits == 0:
            await session.run(session.backend.set_running, ctx.workflow_id, ctx.epoch)

    async def _pause(
        self, session: Session, subscription: Subscription, deadline: float | None, interval: float
    ) -> None:
        """Wait for a notification, at most ``interval`` or until the deadline."""
        clock = self.engine.clock
        if deadline is not None and real_time(clock):
            interval = min(interval, deadline - clock.time())
        woken = await session.wait_for(subscription, interval)
        # A virtual clock that advances by itself jumps to the deadline once a
        # real poll interval brought nothing: timeouts cost no time in tests.
        if not woken and deadline is not None and jumps_ahead(clock):
            await session.sleep(deadline - clock.time())


def _discard(awaitables: Iterable[Awaitable[Any]]) -> None:
    """Cancel tasks, and close coroutines never started (no "never awaited" warning)."""
    import asyncio

    for aw in awaitables:
        if isinstance(aw, asyncio.Future):
            aw.cancel()
        elif inspect.iscoroutine(aw):
            aw.close()
