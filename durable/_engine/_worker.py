"""Workers: processes that run enqueued workflows, resume due waits and dead owners' work.

Many workers, on many hosts, share one store (PostgreSQL for more than one
host). Each claims enqueued workflows in a short transaction (``FOR UPDATE
SKIP LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), runs them as
their owner (heartbeating the leases, like any workflow call), and resumes
what is due: suspended workflows whose timer fired or whose event arrived,
and workflows whose owner died (a killed worker). It looks for those when an
event to a suspended workflow is notified, when the soonest timer its last
look read fires, and every recovery interval besides.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from durable._aio import drive, require_asyncio
from durable._clock import jumps_ahead, real_time
from durable._durations import duration
from durable._engine._runtime import Runtime
from durable._engine._scheduler import Scheduler
from durable._errors import (
    ConfigurationError,
    DurableError,
    WorkflowQuarantinedError,
)
from durable._owner import current_owner
from durable._queues import Queue, queue_name
from durable._records import WorkflowRow
from durable.backends._limits import DEFAULT_QUEUE, QUEUE_CHARS, check_int, check_text
from durable.backends._notify import DUE_TOPIC, QUEUE_TOPIC, Subscription

log = logging.getLogger("durable")

# How long after a timer's time the look for it comes: the look then finds it
# due by the clock, not a hair early.
_LATE = 0.01


@dataclass
class WorkerReport:
    """What a worker did while it ran."""

    completed: list[str] = field(default_factory=list)
    """Workflows it ran to success."""
    failed: dict[str, str] = field(default_factory=dict)
    """Workflows it ran that raised (id to the error's text)."""
    suspended: list[str] = field(default_factory=list)
    """Workflows that suspended themselves to wait (a worker resumes them when due)."""
    resumed: list[str] = field(default_factory=list)
    """Workflows it took over from a dead owner, or resumed from a due wait."""
    unknown: dict[str, str] = field(default_factory=dict)
    """Workflows whose name no imported module registers (id to name).

    One it claimed from a queue goes back on it, for a worker that has the
    code; one it found to resume (no queue, or a dead owner's) is left alone.
    """
    released: list[str] = field(default_factory=list)
    """Workflows it gave up unfinished at shutdown, for another worker to resume."""


class Worker:
    r"""Runs enqueued workflows from one store until stopped.

    Import the modules that define your workflows before starting it: they
    are found by their registered names. ``durable worker --import myapp``
    is the same from the command line.

    Args:
        url: The store (see :class:`durable.Runtime`), opened by the worker
            and closed when it stops. Without ``url`` and ``runtime``, the
            current runtime (:func:`durable.current_runtime`).
        queues: The queues to claim from (names, or declared :class:`durable.Queue`\ s).
        concurrency: Workflows run at once by this worker (async ones as
            tasks on its event loop, sync ones in threads).
        queue_limits: Most workflows of a queue running at once across all
            workers, e.g. ``{"emails": 4}``. Give every worker the same limits,
            or better, declare them once: :class:`durable.Queue` (limits,
            rate limits, partitions) is kept in the store, and the worker
            puts the queues its imported code declares there when it starts.
        poll_interval: Longest pause between two looks for enqueued work when
            no notification comes (PostgreSQL notifies at once; SQLite polls),
            and shortest between two looks for due work (which read every
            active workflow's row): a storm of events for suspended
            workflows, or of their timers, is coalesced into one look per
            interval.
        recovery_interval: How often to look for due waits and dead owners'
            workflows when nothing says one is due (default: a third of the
            lease, at most 5 s). An event sent to a suspended workflow makes
            the worker look at once, and so does the soonest timer it read.
        shutdown_grace: On :meth:`stop` (or SIGTERM), how long running
            workflows may take to finish before they are released for
            another worker to resume.
        runtime: Use this runtime instead of opening one on ``url``.
        **runtime_options: Further :class:`durable.Runtime` options.

    Example::

        import myapp.workflows               # registers the workflows
        durable.Worker("postgresql://db/app", queues=["default", "emails"],
                       concurrency=16, queue_limits={"emails": 4}).run_sync()
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        queues: Sequence[str | Queue] = (DEFAULT_QUEUE,),
        concurrency: int = 16,
        queue_limits: Mapping[str, int] | None = None,
        poll_interval: float | dt.timedelta = 0.5,
        recovery_interval: float | dt.timedelta | None = None,
        shutdown_grace: float | dt.timedelta = 30.0,
        runtime: Runtime | None = None,
        **runtime_options: Any,
    ) -> None:
        if isinstance(queues, (str, Queue)):
            queues = [queues]
        names: list[str] = [queue_name(queue) for queue in queues]
        if not names:
            raise ConfigurationError(f"queues must be non-empty queue names, not {queues!r}")
        for queue in names:
            check_text(queue, "queue name", QUEUE_CHARS)
        check_int(concurrency, "concurrency", minimum=1)
        limits = dict(queue_limits or {})
        for name, limit in limits.items():
            check_text(name, "queue name", QUEUE_CHARS)
            check_int(limit, f"the limit of queue {name!r}", minimum=1)
        poll_interval = duration(poll_interval, "poll_interval", positive=True)
        shutdown_grace = duration(shutdown_grace, "shutdown_grace")
        if recovery_interval is not None:
            recovery_interval = duration(recovery_interval, "recovery_interval", positive=True)
        if runtime is None and url is None and not runtime_options:
            from durable._engine._runtime import current_runtime

            runtime = current_runtime()  # the active one, like every other call
            self._owns_runtime = False
        else:
            self._owns_runtime = runtime is None
        self.runtime = runtime if runtime is not None else Runtime(url, **runtime_options)
        self.queues = list(dict.fromkeys(names))
        self.concurrency = concurrency
        self.queue_limits = limits
        self.poll_interval = poll_interval
        self.recovery_interval = (
            recovery_interval
            if recovery_interval is not None
            else min(self.runtime.lease_seconds / 3, 5.0)
        )
        self.shutdown_grace = shutdown_grace
        self._batch = max(1, concurrency // 4)
        self.report = WorkerReport()
        self._stopping = threading.Event()
        self._wake: asyncio.Event | None = None
        self._hurry: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._queue_of: dict[str, str | None] = {}  # of each running task's workflow
        self._queues_put = False
        self._launched = 0  # tasks started so far
        self._due: deque[WorkflowRow] = deque()  # found due, no room yet
        self._small_claim_at = 0.0  # time.monotonic() from which less than a batch is claimed
        self._scheduler = Scheduler(self.runtime)
        self._next_schedules = 0.0
        self._soonest_tick: float | None = None
        # time.monotonic() of the next look for due work, and of the last one.
        self._next_look = 0.0
        self._last_look = -float("inf")

    def __repr__(self) -> str:
        return f"<durable.Worker {self.runtime.url} queues={self.queues}>"

    # Running ----------------------------------------------------------------

    def stop(self) -> None:
        """Stop claiming; let running workflows finish (within the grace period). Thread-safe."""
        self._stopping.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)

    def run_sync(
        self,
        *,
        until_idle: bool = False,
        handle_signals: bool = True,
        until: dt.datetime | dt.timedelta | None = None,
    ) -> WorkerReport:
        """Run until :meth:`stop`, SIGTERM or SIGINT (or until idle); see :meth:`run`."""
        return asyncio.run(
            self.run(until_idle=until_idle, handle_signals=handle_signals, until=until)
        )

    async def run(
        self,
        *,
        until_idle: bool = False,
        handle_signals: bool = False,
        until: dt.datetime | dt.timedelta | None = None,
    ) -> WorkerReport:
        """Claim and run workflows, and fire schedules, until stopped; returns what was done.

        Args:
            until_idle: Return once nothing is running, enqueued or due
                (handy in tests and batch jobs). Work a rate limit or
                another worker's running workflows hold back is waited
                for; a paused queue's and a delayed enqueue's are not.
            handle_signals: Stop gracefully on SIGTERM and SIGINT (only in the
                main thread); a second signal releases running work at once.
            until: Return once idle at or after this time of the runtime's
                clock (a timedelta: from now). Under a
                ``durable.testing.VirtualClock`` the worker jumps from one
                schedule's tick to the next, so a month of ticks takes
                milliseconds.
        """
        require_asyncio("Worker.run()")
        end = self._end(until)
        if self.runtime.backend.read_only:
            # Every claim would fail, and a worker retries what fails: refuse now.
            raise ConfigurationError(
                f"worker {self}: the store {self.runtime.url} is open read-only (its URL "
                "says mode=ro, or this process may not write its file or folder); a worker "
                "must write to claim and run workflows. Run it where the store is writable."
            )
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._hurry = asyncio.Event()
        installed = self._install_signals() if handle_signals else []
        log.info("worker %s started (owner pid %d)", self, current_owner().pid)
        try:
            try:
                await self._loop_until_stopped(until_idle, end)
            finally:  # also when the loop failed or this task was cancelled
                await self._drain()
        finally:
            for signum in installed:
                self._loop.remove_signal_handler(signum)
            if self._owns_runtime:
                self.runtime.close()
        return self.report

    def _end(self, until: dt.datetime | dt.timedelta | None) -> float | None:
        if until is None:
            return None
        if isinstance(until, dt.timedelta):
            return self.runtime.clock.time() + duration(until, "until")
        if not isinstance(until, dt.datetime) or until.tzinfo is None:
            raise ConfigurationError(
                f"until must be an aware datetime or a timedelta, not {until!r}"
            )
        return until.timestamp()

    async def _loop_until_stopped(self, until_idle: bool, end: float | None) -> None:
        notifier = self.runtime.backend.notifier
        next_expiry = 0.0
        with notifier.subscribe(QUEUE_TOPIC) as queued, notifier.subscribe(DUE_TOPIC) as due:
            while not self._stopping.is_set():
                started = self._launched  # a task may also finish within this pass
                try:
                    if not self._queues_put:
                        await asyncio.to_thread(self._put_queues)
                    await self._fire_schedules()
                    await self._claim_into_room()
                    if time.monotonic() >= next_expiry:
                        next_expiry = time.monotonic() + self.recovery_interval
                        await self._expire()
                    if time.monotonic() >= self._next_look and self._has_room():
                        await self._start_due()
                    elif self._due and self._has_room():
                        self._start_from_due()  # what the last look found, as room frees
                except DurableError as exc:
                    # The store is down or refusing connections: running
                    # workflows retry on their own; claims resume when it is back.
                    log.warning("worker: cannot reach the store (%s); retrying", exc)
                    await asyncio.sleep(self.poll_interval)
                    continue
                if not self._tasks and self._launched == started:
                    idle = await self._when_idle(until_idle, end)
                    if idle == "end":
                        return
                    if idle == "jumped":  # to the next tick: what is due now, at once
                        next_expiry = self._next_look = 0.0
                        continue
                if self._launched > started and self.concurrency - len(self._tasks) >= self._batch:
                    continue  # there may be more to claim right away
                await self._wait_for_news(queued, due)

    async def _claim_into_room(self) -> None:
        """Claim enqueued workflows into free slots, in batches, off the event loop.

        A claim is a round trip, during which running workflows should move
        on. Room for less than a batch is claimed into too, at most once a
        poll interval: workflows that wait (for days, maybe) may hold the
        other slots for long.
        """
        free = self.concurrency - len(self._tasks)
        now = time.monotonic()
        if free >= self._batch or (free > 0 and (not self._tasks or now >= self._small_claim_at)):
            self._small_claim_at = now + self.poll_interval
            # Counted here, on the loop that changes it, not in the thread.
            here = Counter(q for q in self._queue_of.values() if q is not None)
            for row, hold in await asyncio.to_thread(self._claim, free, here):
                self._start(row, claimed=True, hold=hold)

    def _has_room(self) -> bool:
        return len(self._tasks) < self.concurrency

    async def _wait_for_news(self, queued: Subscription, due: Subscription) -> None:
        """Wait for a workflow enqueued or ended, a wait over, or the next look: a poll at most."""
        assert self._wake is not None
        self._wake.clear()
        timeout = self.poll_interval
        if self._has_room():
            timeout = min(timeout, max(0.0, self._next_look - time.monotonic()))
        waits = [
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(queued.await_(timeout)),
            asyncio.ensure_future(due.await_(timeout)),
        ]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waits:
            waiter.cancel()
        # Only a notification of the topic: on SQLite every commit of the store
        # hints every subscriber, and a look reads every active workflow's row.
        if due.take_notified():
            self._look_soon()

    def _look_soon(self, at: float | None = None) -> None:
        """Look for due work at ``at`` (time.monotonic(); None: now), or later.

        One poll interval after the last look at the soonest: a storm of
        events or of timers coalesces into a look per poll interval.
        """
        at = time.monotonic() if at is None else at
        self._next_look = min(self._next_look, max(at, self._last_look + self.poll_interval))

    def _look_at_wake(self, wake_at: float | None) -> None:
        """Look for due work when a suspended workflow's timer (``wake_at``, the clock's) fires."""
        clock = self.runtime.clock
        if wake_at is not None and real_time(clock):  # a virtual clock's jumps look by themselves
            self._look_soon(time.monotonic() + max(0.0, wake_at - clock.time()) + _LATE)

    def _put_queues(self) -> None:
        """Put the queues declared in the imported code in the store (paused ones stay so)."""
        backend = self.runtime.backend
        for queue in Queue.declared():
            backend.run_sync(backend.put_queue, queue.as_row(), True)
        self._queues_put = True

    async def _expire(self) -> None:
        """Cancel what waited in this worker's queues past its queue timeout."""
        for workflow_id in await asyncio.to_thread(self.runtime.parts.recovery.expire, self.queues):
            log.info("worker: workflow %r waited past its queue timeout", workflow_id)

    async def _fire_schedules(self) -> None:
        """Enqueue the schedules' due ticks: on a real clock now and then, else every pass."""
        clock = self.runtime.clock
        if real_time(clock) and time.monotonic() < self._next_schedules:
            return
        self._soonest_tick = soonest = await asyncio.to_thread(self._scheduler.fire)
        wait = self.recovery_interval
        if soonest is not None:
            wait = min(wait, max(0.0, soonest - clock.time()))
        self._next_schedules = time.monotonic() + wait

    async def _when_idle(self, until_idle: bool, end: float | None) -> str:
        """Nothing runs: ``end`` the run, ``wait`` for work, or ``jumped`` a virtual clock."""
        clock, recovery = self.runtime.clock, self.runtime.parts.recovery
        if end is None:
            if not until_idle:
                return "wait"
            # Idle is when nothing may start: work a flow control holds back
            # (a rate limit's window, room another worker's workflows take) waits.
            unknown = set(self.report.unknown)  # waiting for a worker with their code
            if not await asyncio.to_thread(recovery.held_back, self.queues, unknown):
                return "end"
            if not jumps_ahead(clock):
                return "wait"
            # Only to a rate limit's next window: a delay, a timer or a deadline
            # is not what this run waits for.
            room = await asyncio.to_thread(recovery.next_room, self.queues)
            if room is None:
                return "wait"  # for room that another worker's workflows take
            await clock.asleep(room - clock.time())
            return "jumped"
        if clock.time() >= end:
            return "end"
        if not jumps_ahead(clock):
            return "wait"
        # To the next thing due: a tick, a timer, a delayed start, a deadline, or the end.
        wake = await asyncio.to_thread(recovery.next_wake, self.queues)
        ahead = [t for t in (end, self._soonest_tick, wake) if t is not None]
        await clock.asleep(min(ahead) - clock.time())
        return "jumped"

    def _claim(self, limit: int, here: Mapping[str, int]) -> list[tuple[WorkflowRow, object]]:
        """Claim up to ``limit`` enqueued workflows, each held here for the task that runs it.

        A blocking call, run off the loop. Until the holds are taken, a
        recovery in this process counts the claimed rows' owner alive.
        """
        leases = self.runtime.parts.leases
        with leases.claiming():
            claimed = self._claim_rows(limit, here)
            held = [(row, object()) for row in claimed]
            for row, hold in held:
                leases.try_hold(row.workflow_id, hold)
        return held

    def _claim_rows(self, limit: int, here: Mapping[str, int]) -> list[WorkflowRow]:
        backend, owner, lease = self.runtime.backend, current_owner(), self.runtime.lease_seconds
        # The store's clock, which every host shares (a rate limit counts starts
        # by it); a virtual clock's own time in tests.
        clock = self.runtime.clock
        now = None if real_time(clock) else clock.time()
        return backend.run_sync(
            backend.claim_queued,
            owner,
            lease,
            self.queues,
            limit,
            self.queue_limits or None,
            now,
            here,
        )

    async def _start_due(self) -> None:
        session, recovery = self.runtime.engine.session(sync=True), self.runtime.parts.recovery
        self._last_look = time.monotonic()
        self._next_look = self._last_look + self.recovery_interval
        # Off the event loop: it reads the row of every active workflow, those
        # waiting in this worker too, which for thousands of them takes long
        # enough (seconds) to stall every workflow the loop runs.
        due, soonest = await asyncio.to_thread(lambda: drive(recovery.look(session)))
        self._look_at_wake(soonest)
        self._due.clear()
        if not due:
            return
        backend = self.runtime.backend
        # A paused queue's woken workflows wait for it to resume, as its enqueued ones do.
        rows = await asyncio.to_thread(backend.run_sync, backend.queues)
        paused = {q.name for q in rows if q.paused}
        self._due.extend(
            row for row in due if row.queue in (None, *self.queues) and row.queue not in paused
        )
        self._start_from_due()

    def _start_from_due(self) -> None:
        """Resume what the last look found due, as far as there is room.

        What is left is started as running workflows end, not only at the
        next look (a recovery interval later): a worker whose due waits are
        more than its concurrency would otherwise resume only ``concurrency``
        of them per interval. A row another worker resumed meanwhile is
        skipped by its claim.
        """
        while self._due and len(self._tasks) < self.concurrency:
            row = self._due.popleft()
            if row.workflow_id not in self._tasks:
                self._start(row, claimed=False)

    def _start(self, row: WorkflowRow, claimed: bool, hold: object | None = None) -> None:
        task = asyncio.get_running_loop().create_task(
            self._run_one(row, claimed, hold), name=f"durable-worker:{row.workflow_id}"
        )
        self._tasks[row.workflow_id] = task
        self._queue_of[row.workflow_id] = row.queue
        self._launched += 1
        task.add_done_callback(lambda _: self._done(row.workflow_id))

    def _done(self, workflow_id: str) -> None:
        self._tasks.pop(workflow_id, None)
        self._queue_of.pop(workflow_id, None)
        if self._wake is not None:
            self._wake.set()

    async def _run_one(self, row: WorkflowRow, claimed: bool, hold: object | None) -> None:
        workflow_id, report = row.workflow_id, self.report
        try:
            outcome, error = await self.runtime.parts.recovery.rerun(row, claimed, hold)
        finally:
            if hold is not None:  # the call released it, unless it never got that far
                self.runtime.parts.leases.release(workflow_id, hold)
        if outcome == "done":
            (report.completed if claimed else report.resumed).append(workflow_id)
        elif outcome == "suspended":
            report.suspended.append(workflow_id)
            wake_at = error.details.get("wake_at") if isinstance(error, DurableError) else None
            self._look_at_wake(wake_at if isinstance(wake_at, (int, float)) else None)
        elif outcome == "unknown":
            if workflow_id not in report.unknown:  # once, not at each claim of it
                log.warning(
                    "worker: no imported module registers workflow %r (of %r); it goes back "
                    "on its queue for a worker that has the code (import it with --import)",
                    row.name,
                    workflow_id,
                )
            report.unknown[workflow_id] = row.name
            if claimed:
                await asyncio.to_thread(self._requeue, row)
        elif isinstance(error, WorkflowQuarantinedError):
            log.info("worker: skipping workflow %r: %s", workflow_id, error)
        elif error is not None:  # an unrunnable one is recorded as failed by _rerun
            report.failed[workflow_id] = f"{type(error).__name__}: {error}"

    def _requeue(self, row: WorkflowRow) -> None:
        """Put a workflow this worker has no code for back on its queue, under its flow control.

        Claimable again after a recovery interval (not at once: this worker
        would claim it straight back), by the store's clock, as claims read it.
        """
        backend, clock = self.runtime.backend, self.runtime.clock
        now = backend.run_sync(backend.now) if real_time(clock) else clock.time()
        backend.run_sync(
            backend.requeue_workflow, row.workflow_id, row.epoch, now + self.recovery_interval
        )

    async def _drain(self) -> None:
        """Let running workflows finish within the grace period; release the rest."""
        if not self._tasks:
            return
        log.info(
            "worker: waiting up to %g s for %d workflow(s)", self.shutdown_grace, len(self._tasks)
        )
        assert self._hurry is not None
        hurry = asyncio.ensure_future(self._hurry.wait())
        deadline = time.monotonic() + self.shutdown_grace
        running = [task for task in self._tasks.values() if not task.done()]
        while running and not hurry.done() and time.monotonic() < deadline:
            await asyncio.wait(
                [*running, hurry],
                timeout=deadline - time.monotonic(),
                return_when=asyncio.FIRST_COMPLETED,
            )
            running = [task for task in running if not task.done()]
        hurry.cancel()
        pending = [task for task in self._tasks.values() if not task.done()]
        if not pending:
            return
        # Only this worker's workflows (the runtime may run others for the
        # application), with the epochs they hold now.
        held = {wid: e for wid, e in self.runtime.parts.leases.held.items() if wid in self._tasks}
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=5)
        for workflow_id, epoch in held.items():
            # Another worker may resume it at once (no lease to wait out).
            if self.runtime.backend.run_sync(
                self.runtime.backend.release_workflow, workflow_id, epoch
            ):
                self.report.released.append(workflow_id)
                log.info("worker: released workflow %r unfinished", workflow_id)

    def _install_signals(self) -> list[int]:
        if threading.current_thread() is not threading.main_thread():
            return []
        assert self._loop is not None
        installed: list[int] = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self._loop.add_signal_handler(signum, self._on_signal)
                installed.append(signum)
        return installed

    def _on_signal(self) -> None:
        if self._stopping.is_set() and self._hurry is not None:
            log.info("worker: second signal, releasing running workflows now")
            self._hurry.set()  # _drain stops waiting, cancels and releases
            return
        log.info("worker: stopping (finishing running workflows)")
        self.stop()
