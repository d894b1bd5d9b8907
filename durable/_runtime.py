"""The runtime: one object that runs workflows and steps against a backend.

Everything here is written once, as coroutines, for sync and async callers
alike (see ``_sync.drive``); the ``Session`` decides whether a backend call
blocks or is awaited.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import datetime as dt
import functools
import hashlib
import inspect
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Literal

from durable import _context, _registry, _tracing
from durable._aio import block_for, require_asyncio
from durable._caller import warn
from durable._clock import Clock, SystemClock
from durable._codehash import fingerprint
from durable._config import resolve_url
from durable._durations import (
    as_seconds,
    deadline_after,
    duration,
    format_utc,
    is_beyond_reach,
    replayed_deadline,
)
from durable._errors import (
    CodeChangedError,
    CodeChangedWarning,
    ConfigurationError,
    DurableError,
    EventTimeoutError,
    NonDeterminismError,
    NotInWorkflowError,
    OwnershipLostError,
    PayloadIntegrityError,
    PayloadTooLargeError,
    RuntimeClosedError,
    SerializationError,
    WorkflowAlreadyRunningError,
    WorkflowCancelledError,
    WorkflowConflictError,
    WorkflowNotFoundError,
    WorkflowQuarantinedError,
    WorkflowSuspendedError,
)
from durable._handle import WorkflowHandle
from durable._identity import MAX_WORKFLOW_ID_LENGTH, derive_workflow_id, validate_workflow_id
from durable._options import OPTION_DEFAULTS as _DEFAULTS
from durable._options import Options
from durable._owner import current_owner, is_alive_locally, is_local
from durable._records import (
    EventGone,
    EventRow,
    NewWorkflow,
    StepAttemptRow,
    StepRow,
    StepStatus,
    WorkflowRow,
    WorkflowStatus,
)
from durable._reports import HealthReport, RecoveryReport, StepInfo
from durable._serialization import (
    DEFAULT_COMPRESS_THRESHOLD,
    DEFAULT_MAX_PAYLOAD_BYTES,
    Codec,
    call_columns,
    event_slot,
    place,
    step_columns,
    step_slot,
)
from durable._session import Session
from durable._specs import Invocation, MissingInstance, OnCodeChange, StepSpec, WorkflowSpec
from durable._store import Store, WorkflowInfo
from durable._sync import run_coroutine_sync
from durable.backends._base import Backend
from durable.backends._notify import Subscription, event_topic
from durable.backends._url import open_backend, parse_url

log = logging.getLogger("durable")


class _Lost(Exception):
    """This executor lost the workflow it was running to another one."""


RerunOutcome = Literal["done", "suspended", "skipped", "failed", "unknown", "unrunnable"]
"""What came of calling a stored workflow again (see ``Runtime._rerun``)."""


class _Unknown(Exception):
    """No imported code registers a workflow of this name."""


class _Suspended(BaseException):
    """Unwinds a workflow (and its parents) that suspended itself to wait.

    A BaseException, like a crash: the user's ``except Exception`` must not
    swallow it. The outermost call turns it into WorkflowSuspendedError.
    """

    def __init__(self, workflow_id: str, wake_at: float | None, waiting_for: str | None) -> None:
        super().__init__(workflow_id)
        self.workflow_id, self.wake_at, self.waiting_for = workflow_id, wake_at, waiting_for
        self.current = workflow_id
        """The workflow unwinding now (a parent, once its child has unwound)."""

    def error(self, called: str) -> WorkflowSuspendedError:
        until = []
        if self.waiting_for is not None:
            until.append(f"event {self.waiting_for!r} arrives")
        if self.wake_at is not None:
            until.append(format_utc(self.wake_at))
        inner = "" if called == self.workflow_id else f" (its child {self.workflow_id!r} waits)"
        return WorkflowSuspendedError(
            f"workflow {called!r} suspended until {' or '.join(until)}{inner}; this "
            "process may exit. durable.recover() or a durable worker resumes it then "
            "(calling it again resumes it now).",
            workflow_id=called,
            wake_at=self.wake_at,
            waiting_for=self.waiting_for,
        )


def _quarantined(row: WorkflowRow) -> WorkflowQuarantinedError:
    return WorkflowQuarantinedError(
        f"workflow {row.workflow_id!r} is quarantined: its executor died on each of its "
        f"last {row.recoveries} recoveries, so it is no longer resumed by itself. Find "
        f"out why (durable show {row.workflow_id}), fix it, then resume it by hand "
        "(Runtime.resume or durable resume).",
        workflow_id=row.workflow_id,
    )


class Runtime:
    """Runs durable workflows against one store.

    Module-level calls (``await my_workflow(...)``, :func:`durable.recover`)
    use the default runtime, configured by :func:`durable.configure` or the
    ``DURABLE_URL`` environment variable. Create your own to work with another
    store side by side, for instance in a test; ``with runtime:`` makes it the
    active one in that block (and in tasks started from it) and closes it at
    the end.

    Args:
        url: The store: ``sqlite:///path/to/file.db`` or ``sqlite:///:memory:``.
            Defaults to ``$DURABLE_URL``, else ``.durable/durable.db`` in the
            working directory.
        lease_seconds: How long a workflow's owner is trusted without a
            heartbeat by processes on other hosts. Owners on the same host are
            checked directly, so a crash there is seen at once.
        poll_interval: The longest pause between two looks at a workflow that
            another live process is running, while waiting for its result.
        clock: Where time comes from; :class:`durable.testing.VirtualClock`
            makes retry backoffs and waits instant in tests.
        secret_key: Sign every stored payload (HMAC-SHA256) and refuse
            unsigned or tampered ones, never unpickling them. Default
            ``$DURABLE_SECRET_KEY``; none, no signing. At least 16 bytes:
            an empty or shorter key (argument or environment) raises
            ConfigurationError rather than turning signing off.
        old_secret_keys: Former keys still accepted for reading (rotation).
            Default ``$DURABLE_OLD_SECRET_KEYS``, comma-separated.
        compress_threshold: Payloads from this size (bytes) are compressed
            when they compress well (zstd if installed, else zlib). ``None``
            turns compression off.
        max_payload_bytes: Refuse to store larger payloads
            (PayloadTooLargeError, before anything is written).
        durability: ``"normal"`` (default): a step is acknowledged once its
            record is committed, surviving a crash of the process (SQLite
            WAL with ``synchronous=NORMAL``; PostgreSQL ``synchronous_commit``
            on). ``"full"``: every commit also synced to disk on SQLite
            (``synchronous=FULL``), surviving a power loss. ``"batched"``: the
            store may acknowledge commits before they reach the disk; a crash
            of the machine or database server (not of the process) can lose
            the last ones, which then simply run again (SQLite
            ``synchronous=OFF``; PostgreSQL ``synchronous_commit=off``, a
            window of about 600 ms).
        event_poll_interval: How often a workflow waiting for an event looks
            for it when no notification comes (SQLite has none; PostgreSQL
            notifies, and this is the fallback).
        max_recoveries: Resumes in a row after the owner died before the
            workflow is quarantined (status ``quarantined``, never resumed
            again by itself): a workflow that crashes its process every time
            stops there instead of looping. Resume it by hand with
            :meth:`resume` once fixed.
        options: All of the settings above as one :class:`durable.Options`
            (then give none of them as arguments).

    Example::

        with durable.Runtime("sqlite:///:memory:") as runtime:
            print(pipeline.run_sync("input"))
            print(runtime.get_workflow(pipeline_id).status)
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        lease_seconds: float | dt.timedelta = 30.0,
        poll_interval: float | dt.timedelta = 0.5,
        clock: Clock | None = None,
        secret_key: str | bytes | None = None,
        old_secret_keys: Sequence[str | bytes] | None = None,
        compress_threshold: int | None = DEFAULT_COMPRESS_THRESHOLD,
        max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
        durability: str = "normal",
        event_poll_interval: float | dt.timedelta = 0.1,
        max_recoveries: int = 10,
        options: Options | None = None,
    ) -> None:
        given = {
            "lease_seconds": lease_seconds,
            "poll_interval": poll_interval,
            "secret_key": secret_key,
            "old_secret_keys": old_secret_keys,
            "compress_threshold": compress_threshold,
            "max_payload_bytes": max_payload_bytes,
            "durability": durability,
            "event_poll_interval": event_poll_interval,
            "max_recoveries": max_recoveries,
        }
        if options is None:
            options = Options(**given)  # type: ignore[arg-type]
        elif changed := {k: v for k, v in given.items() if v != _DEFAULTS[k]}:
            raise ConfigurationError(
                f"give the options either in options= or as arguments, not both "
                f"({', '.join(sorted(changed))} given beside options=); "
                "use options.replace(...) to change some"
            )
        self.options = options
        """The settings this runtime was opened with (validated once)."""
        resolved = resolve_url(url)
        parse_url(resolved)
        self._codec = Codec(
            secret_key=options.secret_key,
            old_secret_keys=options.old_secret_keys,
            compress_threshold=options.compress_threshold,
            max_payload_bytes=options.max_payload_bytes,
        )
        self.lease_seconds = options.lease_seconds
        self.poll_interval = options.poll_interval
        self.event_poll_interval = options.event_poll_interval
        self.max_recoveries = options.max_recoveries
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._hooks: list[Callable[[_context.Site], None]] = []
        self._backend: Backend = open_backend(resolved, options.durability)
        self._leases: dict[str, int] = {}
        self._closed = False
        self._heartbeat: threading.Thread | None = None
        self._closing = threading.Event()
        self._tokens = threading.local()  # each thread's `with runtime:` blocks
        self._entered = 0
        self._sessions = (
            Session(self._backend, self._clock, sync=False),
            Session(self._backend, self._clock, sync=True),
        )
        self._store = Store(self)
        self._checkpoint_seconds: collections.deque[float] = collections.deque(maxlen=100_000)

    @property
    def url(self) -> str:
        """The store's URL, with any password masked."""
        return self._backend.url

    @property
    def backend(self) -> Backend:
        """The storage backend this runtime runs on (see :mod:`durable.backends`).

        For tools and tests that speak the storage contract directly::

            row = runtime.backend.run_sync(runtime.backend.get_workflow, "report-1")
        """
        return self._backend

    def __repr__(self) -> str:
        return f"<durable.Runtime {self.url}>"

    def _session_for(self, sync: bool) -> Session:
        if self._closed:
            raise RuntimeClosedError(
                f"{self!r} is closed; open a new Runtime (or leave `with runtime:` later)",
                url=self.url,
            )
        return self._sessions[sync]

    @property
    def clock(self) -> Clock:
        """Where this runtime's time comes from (settable, e.g. to a virtual clock)."""
        return self._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self._clock = clock
        self._sessions = (
            Session(self._backend, clock, sync=False),
            Session(self._backend, clock, sync=True),
        )

    def _site(
        self,
        kind: _context.SiteKind,
        ctx: _context.WorkflowContext,
        position: int | None = None,
        step: str | None = None,
    ) -> None:
        """Tell the installed hook (a crash injector, a sweep) where we are."""
        if self._hooks:
            nth = ctx.nth.get(position) if position is not None else None
            site = _context.Site(kind, ctx.workflow_id, ctx.name, position, step, nth)
            for hook in list(self._hooks):
                hook(site)

    # Life cycle -------------------------------------------------------------

    def __enter__(self) -> Runtime:
        """Make this the runtime of the block, and of threads that have none.

        Entered in several threads (or nested), it closes when the last
        block is left.
        """
        if self._closed:
            self._session_for(sync=True)  # raises RuntimeClosedError
        stack: list[Any] = self._tokens.__dict__.setdefault("stack", [])
        stack.append(_context.active_runtime.set(self))
        with _entered_lock:
            self._entered += 1
            if self._entered == 1:
                _ENTERED.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        stack: list[Any] = self._tokens.__dict__.get("stack", [])
        if stack:
            token = stack.pop()
            try:
                _context.active_runtime.reset(token)
            except ValueError:  # left in another context (an asyncio task) than entered
                previous = token.old_value
                _context.active_runtime.set(None if previous is token.MISSING else previous)
        with _entered_lock:
            self._entered -= 1
            last = self._entered == 0
            if last:
                _ENTERED.remove(self)
        if last:
            self.close()

    def close(self) -> None:
        """Stop heartbeats and release the store's connections.

        Workflows that other threads run on this runtime meanwhile get
        :class:`RuntimeClosedError` at their next use of the store; the
        connections are released once the operations in progress are done
        (waiting a few seconds for them at most). Closing twice is harmless.
        """
        # Still the runtime of the threads started in its `with` block, if
        # that is open: they get RuntimeClosedError, not another store.
        self._closed = True
        self._closing.set()
        heartbeat = self._heartbeat
        if heartbeat is not None and heartbeat is not threading.current_thread():
            # Its renewal in progress, if any, is among the operations that
            # the backend's close waits for (a few seconds at most).
            heartbeat.join(timeout=0.5)
        self._backend.close()

    # Inspection -------------------------------------------------------------

    @property
    def store(self) -> Store:
        """Queries and maintenance of this runtime's store (history, restore, cleanup...)."""
        return self._store

    def get_workflow(self, workflow_id: str) -> WorkflowInfo | None:
        """What the store holds about a workflow, or None if it has no record."""
        return self._store.get_workflow(workflow_id)

    def list_steps(self, workflow_id: str) -> list[StepInfo]:
        """The committed (replayable) step records of a workflow, by position."""
        workflow_id = validate_workflow_id(workflow_id)
        failures: dict[int, list[str]] = {}
        for attempt in self._backend.run_sync(self._backend.step_attempts, workflow_id):
            failures.setdefault(attempt.position, []).append(
                f"{attempt.error_type}: {attempt.error_message}"
            )
        steps = self._backend.run_sync(self._backend.load_steps, workflow_id)
        return [
            StepInfo(
                position=row.position,
                name=row.name,
                status=row.status,
                tries=row.attempt,
                started_at=row.started_at,
                finished_at=row.finished_at,
                payload_bytes=len(row.output),
                failed_attempts=tuple(failures.get(row.position, ())),
            )
            for row in sorted(steps.values(), key=lambda r: r.position)
        ]

    def health_check(self) -> HealthReport:
        """Check that the store answers, and how fast; never raises for a down store.

        Example::

            report = durable.current_runtime().health_check()
            assert report.ok, report.error
        """
        from durable.backends import SCHEMA_VERSION

        backend = self.url.split(":", 1)[0].split("+", 1)[0]
        try:
            info = self._backend.health()
        except DurableError as exc:
            return HealthReport(
                ok=False,
                backend=backend,
                url=self.url,
                server_version=None,
                schema_version=SCHEMA_VERSION,
                latency_ms=None,
                error=str(exc),
            )
        return HealthReport(
            ok=True,
            backend=str(info["backend"]),
            url=self.url,
            server_version=str(info["server_version"]),
            schema_version=SCHEMA_VERSION,
            latency_ms=float(info["latency_ms"]),  # type: ignore[arg-type]
        )

    # Recovery ---------------------------------------------------------------

    async def recover(self) -> RecoveryReport:
        """Resume every incomplete workflow whose owner is dead, and every due wait.

        That is: running workflows whose owner died, and suspended ones whose
        timer fired or whose awaited event arrived (a workflow suspended
        inside a child resumes from its root). Workflows are looked up by name
        among the decorated functions of the code imported so far; a name
        nobody registers is reported in ``unknown``, not raised. A resumed
        workflow that fails is reported in ``failed``, one that suspends
        again in ``suspended``. Enqueued workflows are left to workers.
        """
        require_asyncio("Runtime.recover()")
        report = RecoveryReport()
        for row in await self._due(self._sessions[True]):
            await self._resume_row(row, report)
        return report

    async def _due(self, session: Session) -> list[WorkflowRow]:
        """Roots of the workflows to resume now: owner dead, or wait over."""
        candidates = self._backend.run_sync(
            self._backend.resumable,
        )
        by_id = {row.workflow_id: row for row in candidates}
        roots: dict[str, WorkflowRow] = {}
        for row in candidates:
            if row.owner is not None and self._owner_alive(row):
                continue
            suspended = row.owner is None and row.status is WorkflowStatus.WAITING
            if suspended and not await self._wait_over(session, row):
                continue
            # A child resumes through its parent, which replays down to it.
            root = row
            while root.parent_id is not None:
                parent = by_id.get(root.parent_id) or await session.run(
                    session.backend.get_workflow, root.parent_id
                )
                if parent is None or not parent.status.active:
                    break
                root = parent
            if root.owner is not None and self._owner_alive(root):
                continue
            roots.setdefault(root.workflow_id, root)
        return list(roots.values())

    async def _wait_over(self, session: Session, row: WorkflowRow) -> bool:
        """Whether a suspended workflow's wait is over (its timer, by this runtime's clock)."""
        if row.event_arrived or (row.wake_at is not None and row.wake_at <= self._clock.time()):
            return True
        if row.waiting_for is not None and row.waiting_for.startswith(_CHILD):
            # Suspended because a child did: over once that child is no longer
            # active (cancelled, or finished by a direct call).
            child = await session.run(session.backend.get_workflow, row.waiting_for[len(_CHILD) :])
            return child is None or not child.status.active
        return False

    async def _resume_row(self, row: WorkflowRow, report: RecoveryReport) -> None:
        """Resume one workflow for :meth:`recover`, and say what came of it in ``report``."""
        outcome, error = await self._rerun(row)
        if outcome == "done":
            report.resumed.append(row.workflow_id)
        elif outcome == "suspended":
            report.suspended.append(row.workflow_id)
        elif outcome == "unknown":
            report.unknown[row.workflow_id] = row.name
            log.warning(
                "cannot resume workflow %r: no imported code registers a workflow named %r",
                row.workflow_id,
                row.name,
                extra=_extra(row.workflow_id),
            )
        elif error is not None:  # failed, or its call could not be rebuilt
            report.failed[row.workflow_id] = error

    async def _rerun(
        self, row: WorkflowRow, claimed: bool = False
    ) -> tuple[RerunOutcome, Exception | None]:
        """Call a stored workflow again, by its registered name and stored arguments.

        Never waits for another live owner (``skipped``: someone else runs it).
        A workflow the caller ``claimed`` from its queue is run as claimed,
        without claiming it again. A sync workflow runs in a thread, so that
        the event loop (a worker's other workflows) goes on meanwhile.
        """
        try:
            workflow, row = self._stored_call(row)
        except _Unknown:
            return "unknown", None
        except Exception as exc:  # the store: the next recovery tries again
            return "failed", exc
        try:
            target, args, kwargs = self._bind_call(workflow, row)
        except Exception as exc:
            error = self._unrunnable(row, exc)
            await self._fail_unrunnable(row, error, claimed)
            return "unrunnable", error
        tokens = (
            _context.active_runtime.set(self),
            _context.never_wait.set(True),
            _context.preclaimed.set(row if claimed else None),
        )
        try:
            if inspect.iscoroutinefunction(target):
                await target.run(*args, workflow_id=row.workflow_id, **kwargs)
            else:  # the context goes along into the thread
                await asyncio.to_thread(target.run, *args, workflow_id=row.workflow_id, **kwargs)
        except WorkflowSuspendedError:
            return "suspended", None
        except WorkflowAlreadyRunningError:
            return "skipped", None
        except Exception as exc:
            if self._never_started(row):
                # The call was refused before the workflow ran (its recorded
                # arguments no longer fit the code): unrunnable, not failed.
                error = self._unrunnable(row, exc)
                await self._fail_unrunnable(row, error, claimed)
                return "unrunnable", error
            return "failed", exc
        finally:
            _context.preclaimed.reset(tokens[2])
            _context.never_wait.reset(tokens[1])
            _context.active_runtime.reset(tokens[0])
        return "done", None

    def _stored_call(self, row: WorkflowRow) -> tuple[Any, WorkflowRow]:
        """The registered workflow of a stored row, and the row with its arguments."""
        workflow = _registry.lookup(row.name)
        if workflow is None:
            raise _Unknown(row.name)
        if row.args is None:  # a light row: fetch the arguments
            full = self._backend.run_sync(self._backend.get_workflow, row.workflow_id)
            row = full if full is not None else row
        return workflow, row

    def _bind_call(
        self, workflow: Any, row: WorkflowRow
    ) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
        """The call a stored row records: the workflow (bound to its instance) and arguments.

        A method is bound from the registered workflow itself, not looked up
        on the instance by name: what stands at that name may be something
        else by now, and the registered workflow is the one the row names.
        """
        instance, args, kwargs = self._codec.loads(
            row.args or b"",
            place(row.workflow_id, "args"),
            what=f"arguments of workflow {row.workflow_id!r}",
            bound=call_columns(row.name, row.args_fingerprint),
        )
        if isinstance(instance, MissingInstance):
            raise DurableError(
                f"cannot resume workflow {row.workflow_id!r}: it is a method, and "
                f"its instance (a {instance.type_name}) could not be pickled; call "
                "it again on a live instance with the same workflow_id",
                workflow_id=row.workflow_id,
            )
        if instance is None:
            return workflow, args, kwargs
        if isinstance(workflow.__wrapped__, classmethod):
            return workflow.__get__(None, instance), args, kwargs
        return workflow.__get__(instance, type(instance)), args, kwargs

    def _never_started(self, row: WorkflowRow) -> bool:
        """Whether a stored workflow whose call raised is still as it was before the call.

        Then the workflow never ran (it would have recorded its error, or been
        claimed under a new epoch), and nothing else will record its end.
        """
        try:
            now = self._backend.run_sync(self._backend.get_workflow, row.workflow_id)
        except DurableError:
            return False  # the store is down: the next recovery looks again
        return now is not None and now.epoch == row.epoch and now.status is row.status

    def _unrunnable(self, row: WorkflowRow, exc: Exception) -> DurableError:
        """The error recorded for a stored call that cannot be rebuilt."""
        if isinstance(exc, DurableError) and exc.details.get("workflow_id") == row.workflow_id:
            return exc  # says it all already
        error = DurableError(
            f"cannot resume workflow {row.workflow_id!r} ({row.name}): its recorded call "
            f"could not be rebuilt ({type(exc).__name__}: {exc}). Recorded as failed; "
            "call it again with the same workflow_id once the cause is fixed (its "
            "recorded steps are reused).",
            workflow_id=row.workflow_id,
        )
        error.__cause__ = exc
        return error

    async def _fail_unrunnable(self, row: WorkflowRow, exc: Exception, claimed: bool) -> None:
        """Record as failed a workflow whose call cannot be rebuilt.

        Left as it is, it would stay running (or enqueued) for ever, every
        recovery failing on it again and its handle waiting to its timeout.
        A row this runtime did not claim is claimed first (fenced), so that a
        live owner elsewhere is never overruled.
        """
        if not claimed:
            if row.status not in (WorkflowStatus.RUNNING, WorkflowStatus.WAITING):
                return
            taken = self._backend.run_sync(
                self._backend.claim_workflow,
                row.workflow_id,
                row.epoch,
                row.status,
                current_owner(),
                self.lease_seconds,
                rerun_failed=False,
                recovery=row.owner is not None,
            )
            if taken is None:
                return  # someone else took it meanwhile
            row = taken
        error = self._codec.dumps_error(
            exc, place(row.workflow_id, "error"), what=f"error of workflow {row.workflow_id!r}"
        )
        self._backend.run_sync(
            self._backend.finish_workflow,
            row.workflow_id,
            row.epoch,
            WorkflowStatus.ERROR,
            error=error,
        )
        log.error(
            "workflow %r recorded as failed: %s",
            row.workflow_id,
            exc,
            extra=_extra(row.workflow_id),
        )

    async def resume(self, workflow_id: str) -> Any:
        """Run a stored workflow again by its id and return its result.

        For the workflow's code, the modules that define it must be imported.
        A quarantined workflow is released from quarantine first: this is how
        to resume one by hand once the cause is fixed. A finished workflow
        returns its recorded result; a running one with a live owner is
        waited for.

        Example::

            import myapp.workflows
            result = await runtime.resume("order-7")
        """
        workflow_id = validate_workflow_id(workflow_id)
        row = self._backend.run_sync(self._backend.get_workflow, workflow_id)
        if row is None:
            raise WorkflowNotFoundError(
                f"no workflow {workflow_id!r} in {self.url}", workflow_id=workflow_id
            )
        try:
            workflow, row = self._stored_call(row)
        except _Unknown:
            raise WorkflowNotFoundError(
                f"workflow {workflow_id!r} is a {row.name!r}, and no imported code registers "
                "a workflow of that name; import the module that defines it first",
                workflow_id=workflow_id,
            ) from None
        target, args, kwargs = self._bind_call(workflow, row)
        if row.status is WorkflowStatus.QUARANTINED:
            # Only now that it can run: a failed resume leaves it quarantined.
            self._backend.run_sync(self._backend.unquarantine, workflow_id)
        token = _context.active_runtime.set(self)
        try:
            outcome = target.run(*args, workflow_id=workflow_id, **kwargs)
            return await outcome if isinstance(outcome, Coroutine) else outcome
        finally:
            _context.active_runtime.reset(token)

    def resume_sync(self, workflow_id: str) -> Any:
        """Blocking form of :meth:`resume`."""
        return run_coroutine_sync(self.resume(workflow_id))

    def recover_sync(self) -> RecoveryReport:
        """Blocking form of :meth:`recover`."""
        return run_coroutine_sync(self.recover())

    # Workflows --------------------------------------------------------------

    async def _run_workflow(self, inv: Invocation, session: Session) -> Any:
        """Run (or resume, or return the recorded outcome of) one workflow call."""
        if inv.parent is None:
            if not session.sync:
                require_asyncio(f"workflow {inv.spec.name!r}")
            workflow_id = inv.requested_id or validate_workflow_id(
                derive_workflow_id(inv.spec.name, inv.args_fingerprint)
            )
            try:
                return await self._execute(inv, session, workflow_id, parent_id=None)
            except _Suspended as suspended:
                raise suspended.error(workflow_id) from None
        parent, position = inv.parent, inv.position
        assert position is not None
        recorded = _replayable(parent, position, inv.spec.name, "child")
        if recorded is not None:
            return self._decode_step(recorded, parent.workflow_id)
        workflow_id = inv.requested_id or _child_id(parent.workflow_id, position)
        if workflow_id in (parent.workflow_id, *parent.ancestors):
            raise ConfigurationError(
                f"workflow {workflow_id!r} calls itself as its own descendant, which would "
                "wait for itself forever; give the child another workflow_id",
                workflow_id=workflow_id,
            )
        self._site("before_step", parent, position, inv.spec.name)
        if _cancel_hinted(parent):
            await self._stop_if_cancelled(parent, session, f"child workflow {workflow_id!r}")
        started = self._clock.time()
        try:
            value = await self._execute(inv, session, workflow_id, parent_id=parent.workflow_id)
        except Exception as exc:
            return await self._commit(
                parent, session, position, inv.spec.name, started, 1, error=exc, kind="child"
            )
        return await self._commit(
            parent, session, position, inv.spec.name, started, 1, value=value, kind="child"
        )

    async def _enqueue(
        self, inv: Invocation, session: Session, queue: str, priority: int
    ) -> WorkflowHandle[Any]:
        """Record a workflow call as enqueued, for a worker (idempotent per id)."""
        workflow_id = inv.requested_id or validate_workflow_id(
            derive_workflow_id(inv.spec.name, inv.args_fingerprint)
        )
        new = self._new_workflow(inv, workflow_id, parent_id=None)
        row, created = await session.run(session.backend.enqueue_workflow, new, queue, priority)
        if not created:
            self._check_same_call(row, inv)
        return WorkflowHandle(workflow_id, self)

    def _new_workflow(
        self, inv: Invocation, workflow_id: str, parent_id: str | None
    ) -> NewWorkflow:
        """The row of a new workflow for this call, its arguments sealed for their place."""
        return NewWorkflow(
            workflow_id=workflow_id,
            name=inv.spec.name,
            args_fingerprint=inv.args_fingerprint,
            args=self._codec.seal(
                inv.args_body,
                place(workflow_id, "args"),
                what=f"arguments of workflow {workflow_id!r}",
                bound=(
                    call_columns(inv.spec.name, inv.args_fingerprint)
                    if self._codec.signing
                    else b""
                ),
            ),
            parent_id=parent_id,
        )

    async def _execute(
        self, inv: Invocation, session: Session, workflow_id: str, parent_id: str | None
    ) -> Any:
        new = self._new_workflow(inv, workflow_id, parent_id)
        token = object()
        delay = 0.005
        waited = False
        while not self._try_hold(workflow_id, token):
            # Another call in this process runs it: never race it for ownership.
            if inv.spec.on_running == "raise" or _context.blocking_a_loop.get():
                raise WorkflowAlreadyRunningError(
                    f"workflow {workflow_id!r} is running in this process; not waiting "
                    "for it ("
                    + (
                        "on_running='raise'"
                        if inv.spec.on_running == "raise"
                        else "run_sync() blocks the event loop that runs it: await it instead"
                    )
                    + "). Call it again later to get its result.",
                    workflow_id=workflow_id,
                )
            await session.sleep(delay)
            delay = min(delay * 1.5, self.poll_interval)
            waited = True
        try:
            return await self._execute_held(inv, session, new, waited)
        finally:
            self._release(workflow_id, token)

    async def _execute_held(
        self, inv: Invocation, session: Session, new: NewWorkflow, waited: bool
    ) -> Any:
        """Run, resume or wait for a workflow that no other call here runs."""
        # Listening from before the claim, so no cancel slips in unseen.
        with self._backend.notifier.subscribe(event_topic(new.workflow_id)) as stop_hint:
            return await self._execute_listening(inv, session, new, waited, stop_hint)

    async def _execute_listening(
        self,
        inv: Invocation,
        session: Session,
        new: NewWorkflow,
        waited: bool,
        stop_hint: Subscription,
    ) -> Any:
        workflow_id = new.workflow_id
        claimed_for_us = _context.preclaimed.get()
        if claimed_for_us is not None and claimed_for_us.workflow_id == workflow_id:
            _context.preclaimed.set(None)
            row, owned = claimed_for_us, True
        else:
            row, owned = await session.write(
                session.backend.start_workflow, new, current_owner(), self.lease_seconds
            )
        while True:
            if not owned:
                self._check_same_call(row, inv)
                if row.status is WorkflowStatus.CANCELLED:
                    raise WorkflowCancelledError(
                        f"workflow {workflow_id!r} was cancelled; a cancelled workflow is "
                        "never resumed. Run it under a new workflow_id to start afresh.",
                        workflow_id=workflow_id,
                    )
                if row.status is WorkflowStatus.QUARANTINED:
                    raise _quarantined(row)
                if row.status is WorkflowStatus.SUCCESS or (
                    waited and row.status is WorkflowStatus.ERROR
                ):
                    return self._outcome(row)
                started = row.status in (WorkflowStatus.RUNNING, WorkflowStatus.WAITING)
                if started and self._owner_alive(row, holding=True):
                    if _context.never_wait.get():
                        raise WorkflowAlreadyRunningError(
                            f"workflow {workflow_id!r} is running under another live owner",
                            workflow_id=workflow_id,
                        )
                    row = await self._wait(session, row, inv.spec)
                    waited = True
                    continue
                # Its owner process died holding it: one more recovery in a
                # row. Not so for a suspended or released workflow (no owner),
                # nor one this process dropped (an interrupt in a notebook).
                recovery = started and row.owner is not None and row.owner != current_owner()
                if recovery and row.recoveries >= self.max_recoveries:
                    if await session.run(session.backend.quarantine, workflow_id, row.epoch):
                        log.error(
                            "workflow %r: quarantined after %d recoveries in a row",
                            workflow_id,
                            row.recoveries,
                            extra=_extra(workflow_id),
                        )
                        raise _quarantined(row)
                    row = await self._reload(session, workflow_id)
                    continue
                rerun_failed = row.status is WorkflowStatus.ERROR
                if rerun_failed:
                    self._verify_failed(row)
                claimed = await session.run(
                    session.backend.claim_workflow,
                    workflow_id,
                    row.epoch,
                    row.status,
                    current_owner(),
                    self.lease_seconds,
                    rerun_failed=rerun_failed,
                    recovery=recovery,
                    check_superseded=(
                        functools.partial(self._verify_steps, workflow_id)
                        if rerun_failed and self._codec.signing
                        else None
                    ),
                )
                if claimed is None:
                    row = await self._reload(session, workflow_id)
                    continue
                log.info(
                    "workflow %r: %s",
                    workflow_id,
                    {
                        WorkflowStatus.ERROR: f"new attempt {claimed.attempts}",
                        WorkflowStatus.ENQUEUED: "starting from its queue",
                    }.get(
                        row.status,
                        "resuming after its owner died" if recovery else "resuming",
                    ),
                    extra=_extra(workflow_id),
                )
                owned, row = row.status is WorkflowStatus.ENQUEUED, claimed
            try:
                return await self._own(inv, session, row, owned, stop_hint)
            except _Lost:
                log.warning(
                    "workflow %r: taken over by another executor",
                    workflow_id,
                    extra=_extra(workflow_id),
                )
                row, owned, waited = await self._reload(session, workflow_id), False, True

    async def _own(
        self,
        inv: Invocation,
        session: Session,
        row: WorkflowRow,
        fresh: bool,
        stop_hint: Subscription,
    ) -> Any:
        """Run the workflow body as its owner, replaying what is recorded."""
        workflow_id, epoch = row.workflow_id, row.epoch
        recorded = {} if fresh else await session.run(session.backend.load_steps, workflow_id)
        ctx = _context.WorkflowContext(
            runtime=self,
            session=session,
            workflow_id=workflow_id,
            name=row.name,
            epoch=epoch,
            attempt=row.attempts,
            recorded=recorded,
            ancestors=(inv.parent.workflow_id, *inv.parent.ancestors) if inv.parent else (),
            on_code_change=inv.spec.on_code_change,
            stop_hint=stop_hint,
        )
        self._hold_lease(workflow_id, epoch)
        token = _context.current.set(ctx)
        with _tracing.span(
            f"workflow {row.name}",
            lambda: {
                "durable.workflow.id": workflow_id,
                "durable.workflow.name": row.name,
                "durable.workflow.attempt": row.attempts,
                "durable.workflow.resumed": not fresh,
            },
        ):
            return await self._own_body(inv, session, ctx, token)

    async def _own_body(
        self, inv: Invocation, session: Session, ctx: _context.WorkflowContext, token: Any
    ) -> Any:
        workflow_id, epoch = ctx.workflow_id, ctx.epoch
        try:
            self._site("workflow_start", ctx)
            try:
                value = inv.call()
                if inv.spec.is_async:
                    value = await value
            except OwnershipLostError:
                raise _Lost() from None
            except _Suspended as suspended:
                if suspended.current != workflow_id:
                    # A child suspended: so does this parent, which replays
                    # down to it when resumed.
                    await session.run(
                        session.backend.set_waiting,
                        workflow_id,
                        epoch,
                        suspended.wake_at,
                        f"{_CHILD}{suspended.current}",
                        suspend=True,
                    )
                    suspended.current = workflow_id
                raise
            except Exception as exc:
                error = self._codec.dumps_error(
                    exc, place(workflow_id, "error"), what=f"error of workflow {workflow_id!r}"
                )
                if not await session.write(
                    session.backend.finish_workflow,
                    workflow_id,
                    epoch,
                    WorkflowStatus.ERROR,
                    error=error,
                ):
                    raise _Lost() from None
                raise
            try:
                payload = self._codec.dumps(
                    value, place(workflow_id, "result"), what=f"result of workflow {workflow_id!r}"
                )
            except (SerializationError, PayloadTooLargeError) as exc:
                error = self._codec.dumps_error(
                    exc, place(workflow_id, "error"), what=f"error of workflow {workflow_id!r}"
                )
                await session.write(
                    session.backend.finish_workflow,
                    workflow_id,
                    epoch,
                    WorkflowStatus.ERROR,
                    error=error,
                )
                raise
            if not await session.write(
                session.backend.finish_workflow,
                workflow_id,
                epoch,
                WorkflowStatus.SUCCESS,
                result=payload,
            ):
                raise _Lost()
            return value
        finally:
            _context.current.reset(token)
            self._leases.pop(workflow_id, None)

    def _decode_step(self, row: StepRow, workflow_id: str) -> Any:
        """A recorded step's value, or its recorded exception raised."""
        what = f"outcome of step {row.name!r} (position {row.position} of workflow {workflow_id!r})"
        slot = place(workflow_id, step_slot(row.position))
        bound = _bound(row)
        if row.status is StepStatus.SUCCESS:
            return self._codec.loads(row.output, slot, what=what, bound=bound)
        raise self._codec.loads_error(row.output, slot, what=what, bound=bound)

    def _verify_failed(self, row: WorkflowRow) -> None:
        """Before a new attempt: the workflow really failed (its status was not edited).

        A failed workflow always has its error recorded, signed; a finished
        one whose status was changed to error has none, and running it again
        would redo work its record says is done.
        """
        if self._codec.signing:
            wid = row.workflow_id
            if not row.error:
                raise PayloadIntegrityError(
                    f"workflow {wid!r} has status {row.status.value!r} but no signed error "
                    "is recorded (was its status edited?); refusing to run it again. "
                    "Check the store's integrity, or run the call under a new workflow_id.",
                    what=f"error of workflow {wid!r}",
                )
            self._codec.open(row.error, place(wid, "error"), what=f"error of workflow {wid!r}")

    def _verify_steps(self, workflow_id: str, rows: Sequence[StepRow]) -> None:
        """Raise PayloadIntegrityError unless every record is signed as it stands.

        For records about to be acted on without being replayed (superseded by
        a new attempt, run again for changed code, refused as the wrong step):
        an edited status, kind, name or code fingerprint must not decide that.
        Does nothing without a secret key.
        """
        if not self._codec.signing:
            return
        for row in rows:
            self._codec.open(
                row.output,
                place(workflow_id, step_slot(row.position)),
                what=f"record of step {row.name!r} (position {row.position} "
                f"of workflow {workflow_id!r})",
                bound=_bound(row),
            )

    def _outcome(self, row: WorkflowRow) -> Any:
        """A finished workflow's recorded result, or its recorded error raised."""
        wid = row.workflow_id
        if row.status is WorkflowStatus.SUCCESS:
            return self._codec.loads(
                row.result or b"", place(wid, "result"), what=f"result of workflow {wid!r}"
            )
        raise self._codec.loads_error(
            row.error or b"", place(wid, "error"), what=f"error of workflow {wid!r}"
        )

    async def _reload(self, session: Session, workflow_id: str) -> WorkflowRow:
        row = await session.run(session.backend.get_workflow, workflow_id)
        if row is None:
            raise DurableError(
                f"workflow {workflow_id!r} disappeared from the store while it was "
                "being run (was it deleted by a cleanup?)",
                workflow_id=workflow_id,
            )
        return row

    def _check_same_call(self, row: WorkflowRow, inv: Invocation) -> None:
        if row.name == inv.spec.name and row.args_fingerprint == inv.args_fingerprint:
            return
        try:
            _, args, kwargs = self._codec.loads(
                row.args or b"",
                place(row.workflow_id, "args"),
                what=f"recorded arguments of workflow {row.workflow_id!r}",
                bound=call_columns(row.name, row.args_fingerprint),
            )
            stored = _args_repr(args, kwargs)
        except PayloadIntegrityError:
            raise  # its name or fingerprint was edited: no conflict to report
        except Exception:
            stored = "<arguments that can no longer be unpickled>"
        called = _args_repr(inv.args, inv.kwargs)
        raise WorkflowConflictError(
            f"workflow id {row.workflow_id!r} is already recorded for "
            f"{row.name}{stored}, but was now called as {inv.spec.name}{called}. "
            "A workflow id names one call: pass another workflow_id for a "
            "different call, or the same arguments to resume or fetch this one.",
            workflow_id=row.workflow_id,
            recorded=f"{row.name}{stored}",
            called=f"{inv.spec.name}{called}",
        )

    def _try_hold(self, workflow_id: str, token: object) -> bool:
        key = (self._backend.identity, workflow_id)
        with _HELD_LOCK:
            if key in _HELD:
                return False
            _HELD[key] = token
            return True

    def _release(self, workflow_id: str, token: object) -> None:
        key = (self._backend.identity, workflow_id)
        with _HELD_LOCK:
            if _HELD.get(key) is token:
                del _HELD[key]

    def _held_here(self, workflow_id: str) -> bool:
        with _HELD_LOCK:
            return (self._backend.identity, workflow_id) in _HELD

    def _owner_alive(self, row: WorkflowRow, holding: bool = False) -> bool:
        owner = row.owner
        if owner is None:
            return False
        if owner == current_owner():
            # This very process (whichever runtime of it): alive only if a
            # call here runs it now; an in-process crash leaves the row owned
            # by a live process.
            return not holding and self._held_here(row.workflow_id)
        leased = row.lease_expires_at is not None and row.lease_expires_at > row.db_now
        if is_local(owner):
            # A live process that abandoned the workflow (a cancelled task)
            # stops renewing its lease: then it counts as dead too.
            return leased and is_alive_locally(owner)
        return leased

    async def _wait(self, session: Session, row: WorkflowRow, spec: WorkflowSpec) -> WorkflowRow:
        """Wait until a live owner finishes the workflow, or dies."""
        owner = row.owner
        if spec.on_running == "raise":
            raise WorkflowAlreadyRunningError(
                f"workflow {row.workflow_id!r} is running in process {owner.pid if owner else '?'}"
                f" on {owner.host.split('/')[0] if owner else '?'}; not waiting for it "
                "(on_running='raise'). Call it again later to get its result.",
                workflow_id=row.workflow_id,
            )
        log.info(
            "workflow %r is running elsewhere; waiting for its result",
            row.workflow_id,
            extra=_extra(row.workflow_id),
        )
        delay = 0.01
        while True:
            await session.sleep(delay)
            delay = min(delay * 1.5, self.poll_interval)
            row = await self._reload(session, row.workflow_id)
            started = row.status in (WorkflowStatus.RUNNING, WorkflowStatus.WAITING)
            if not started or not self._owner_alive(row, True):
                return row

    # Steps ------------------------------------------------------------------

    async def _run_step(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        spec: StepSpec,
        position: int,
        call: Callable[[], Any],
    ) -> Any:
        """Replay a step's record, or run it (with retries) and record it."""
        recorded = _replayable(ctx, position, spec.name, spec.kind)
        with _tracing.span(
            f"step {spec.name}",
            lambda: {
                "durable.workflow.id": ctx.workflow_id,
                "durable.step.name": spec.name,
                "durable.step.kind": spec.kind,
                "durable.step.position": position,
                "durable.step.replayed": recorded is not None,
            },
            inner=True,
        ):
            if _code_differs(ctx, recorded, spec):
                assert recorded is not None
                recorded = await self._code_changed(ctx, session, spec, position, recorded)
            if recorded is not None:
                _tracing.annotate(payload_bytes=len(recorded.output))
                return self._decode_step(recorded, ctx.workflow_id)
            return await self._execute_step(ctx, session, spec, position, call)

    async def _code_changed(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        spec: StepSpec,
        position: int,
        recorded: StepRow,
    ) -> StepRow | None:
        """Apply the code-change policy to a record written by other code.

        Returns the record to replay, or None when the step must run again.
        """
        # An edited fingerprint must not make a committed step run again.
        self._verify_steps(ctx.workflow_id, [recorded])
        policy = spec.on_code_change or ctx.on_code_change or _default_code_policy()
        where = f"step {spec.name!r} (position {position} of workflow {ctx.workflow_id!r})"
        if policy == "error":
            raise CodeChangedError(
                f"the code of {where} changed since its record was written; refusing to "
                "replay it (on_code_change='error'). Restore the old code, or use "
                "on_code_change='rerun' to run changed steps again.",
                workflow_id=ctx.workflow_id,
                position=position,
                step=spec.name,
            )
        if policy == "rerun":
            # This step and everything after it run again on the new code.
            log.info(
                "%s: code changed, running it and what follows again",
                where,
                extra=_extra(ctx.workflow_id, spec.name, position),
            )
            await session.run(session.backend.supersede_from, ctx.workflow_id, ctx.epoch, position)
            ctx.recorded = {p: r for p, r in ctx.recorded.items() if p < position}
            return None
        warn(
            CodeChangedWarning(
                f"the code of {where} changed since its record was written; replaying the "
                "recorded result (on_code_change='reuse'). Use on_code_change='rerun' to run "
                "changed steps again, or 'error' to refuse."
            )
        )
        return recorded

    async def _execute_step(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        spec: StepSpec,
        position: int,
        call: Callable[[], Any],
    ) -> Any:
        """Run a step that has no record (with its retries) and record it."""
        self._site("before_step", ctx, position, spec.name)
        retries = 0
        while True:
            if _cancel_hinted(ctx):  # a cheap look first: this runs before every step
                await self._stop_if_cancelled(ctx, session, f"step {spec.name!r}")
            started = self._clock.time()
            token = _context.current.set(_context.InStep(ctx, position))
            try:
                value = call()
                if spec.is_async:
                    value = await value
            except Exception as exc:
                if not spec.retry.should_retry(exc, retries):
                    outcome: dict[str, Any] = {"error": exc}
                    break
                retries += 1
                await session.run(
                    session.backend.record_step_attempt,
                    ctx.workflow_id,
                    ctx.epoch,
                    StepAttemptRow(
                        position=position,
                        name=spec.name,
                        attempt=retries,
                        started_at=started,
                        finished_at=self._clock.time(),
                        error_type=_qualname(type(exc)),
                        error_message=_text(str(exc)),
                    ),
                )
                log.info(
                    "workflow %r step %r (position %d) failed with %r; retry %d of %d",
                    ctx.workflow_id,
                    spec.name,
                    position,
                    exc,
                    retries,
                    spec.retry.retries,
                    extra=_extra(ctx.workflow_id, spec.name, position),
                )
                await session.sleep(spec.retry.delay(retries))
                continue
            finally:
                _context.current.reset(token)
            outcome = {"value": value}
            break
        return await self._commit(
            ctx,
            session,
            position,
            spec.name,
            started,
            retries + 1,
            kind=spec.kind,
            code_hash=_code_hash(ctx, spec),
            **outcome,
        )

    async def _commit(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        position: int,
        name: str,
        started: float,
        tries: int,
        *,
        value: Any = None,
        error: Exception | None = None,
        kind: str = "step",
        code_hash: str | None = None,
    ) -> Any:
        """Record a step's outcome; hand back the outcome that stands.

        That is this one, unless another executor committed first, in which
        case its record is adopted (and this outcome dropped). Inside a
        transaction the record is held back until the transaction commits.
        """
        where = f"step {name!r} (position {position} of workflow {ctx.workflow_id!r})"
        slot = place(ctx.workflow_id, step_slot(position))
        status = StepStatus.SUCCESS if error is None else StepStatus.ERROR
        bound = (
            step_columns(kind, name, status.value, tries, code_hash) if self._codec.signing else b""
        )
        output = (
            self._codec.dumps(value, slot, what=f"result of {where}", bound=bound)
            if error is None
            else self._codec.dumps_error(error, slot, what=f"error of {where}", bound=bound)
        )
        row = StepRow(
            position=position,
            name=name,
            status=status,
            output=output,
            attempt=tries,
            started_at=started,
            finished_at=self._clock.time(),
            kind=kind,
            tx_id=ctx.tx.tx_id if ctx.tx is not None else None,
            error_type=_qualname(type(error)) if error is not None else None,
            error_message=_text(str(error)) if error is not None else None,
            code_hash=code_hash,
        )
        _tracing.annotate(payload_bytes=len(output), attempt=tries)
        if kind != "snapshot":
            self._site("after_step", ctx, position, name)
        if ctx.tx is not None:
            ctx.tx.hold(row)
            if error is not None:
                raise error
            return value
        write_started = time.perf_counter()
        standing = await session.write(session.backend.record_step, ctx.workflow_id, ctx.epoch, row)
        self._checkpoint_seconds.append(time.perf_counter() - write_started)
        if kind != "snapshot":
            self._site("after_commit", ctx, position, name)
        if standing is not row:
            return self._decode_step(standing, ctx.workflow_id)
        if error is not None:
            raise error
        return value

    async def _snapshot(
        self, ctx: _context.WorkflowContext, session: Session, position: int, name: str
    ) -> None:
        """Record a snapshot at ``position``, unless it is recorded already."""
        if _replayable(ctx, position, name, "snapshot") is None:
            started = self._clock.time()
            await self._commit(ctx, session, position, name, started, 1, kind="snapshot")

    async def _sleep(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        position: int,
        name: str,
        deadline_from: Callable[[float], float],
        suspend: bool = False,
    ) -> None:
        """A durable timer: its deadline is recorded first, then waited for."""
        if _cancel_hinted(ctx):
            await self._stop_if_cancelled(ctx, session, name)
        recorded = _replayable(ctx, position, name, "sleep")
        if recorded is None:
            deadline = float(deadline_from(self._clock.time()))
            deadline = await self._commit(
                ctx, session, position, name, self._clock.time(), 1, value=deadline, kind="sleep"
            )
        else:
            stored = float(self._decode_step(recorded, ctx.workflow_id))
            deadline = replayed_deadline(stored)
            # A deadline no process can wait for (recorded by an older version)
            # suspends the workflow: it shows as waiting, recover() passes it
            # by, and cancelling it is the way out.
            suspend = suspend or is_beyond_reach(stored)
        remaining = deadline - self._clock.time()
        if remaining <= 0:
            return
        # A short sleep is not worth two writes to show it in the status.
        if not suspend and remaining < _SHOW_WAITS_FROM:
            await session.sleep(remaining)
            return
        await self._enter_wait(ctx, session, deadline, None, suspend)
        # A long sleep listens, like an event wait, for a cancel (which
        # notifies) and looks now and then whether it still owns the workflow.
        if not isinstance(self._clock, SystemClock):
            await session.sleep(remaining)  # a test's clock: instant, or moved by the test
        else:
            topic = event_topic(ctx.workflow_id)
            with self._backend.notifier.subscribe(topic) as subscription:
                while self._clock.time() < deadline:
                    await self._pause(session, subscription, deadline, _SLEEP_CHECK_INTERVAL)
                    await self._check_still_owned(ctx, session)
        await self._leave_wait(ctx, session)

    async def _wait_for_event(
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
        recorded = _replayable(ctx, at, name, "event")
        if recorded is not None:
            return self._decode_step(recorded, workflow_id)
        if _cancel_hinted(ctx):
            await self._stop_if_cancelled(ctx, session, name)
        deadline: float | None = None
        if timeout is not None:
            timer_name = f"{name} timeout"
            timer = _replayable(ctx, position, timer_name, "sleep")
            if timer is None:
                now = self._clock.time()
                seconds = duration(timeout, "timeout")
                deadline = deadline_after(now, seconds, "timeout", given=timeout)
                deadline = await self._commit(
                    ctx, session, position, timer_name, now, 1, value=deadline, kind="sleep"
                )
            else:
                deadline = replayed_deadline(float(self._decode_step(timer, workflow_id)))
        self._site("before_step", ctx, at, name)
        started = self._clock.time()
        where = f"{name} (position {at} of workflow {workflow_id!r})"
        while True:
            event = await self._event_or_deadline(ctx, session, key, deadline, suspend)
            if event is None:
                assert timeout is not None
                seconds = as_seconds(timeout, "timeout")
                timed_out = EventTimeoutError(
                    f"workflow {workflow_id!r}: no event {key!r} arrived within {seconds:g} s "
                    f"(position {at}); the timeout is recorded, so a resumed run raises it too",
                    workflow_id=workflow_id,
                    key=key,
                    timeout=seconds,
                )
                return await self._commit(
                    ctx, session, at, name, started, 1, error=timed_out, kind="event"
                )
            value = self._codec.loads(
                event.value, place(workflow_id, event_slot(key)), what=f"event for {where}"
            )
            row = StepRow(
                position=at,
                name=name,
                status=StepStatus.SUCCESS,
                output=self._codec.dumps(
                    value,
                    place(workflow_id, step_slot(at)),
                    what=f"event for {where}",
                    bound=step_columns("event", name, StepStatus.SUCCESS.value, 1, None),
                ),
                attempt=1,
                started_at=started,
                finished_at=self._clock.time(),
                kind="event",
            )
            self._site("after_step", ctx, at, name)
            try:
                standing = await session.run(
                    session.backend.take_event, workflow_id, ctx.epoch, event.event_id, row
                )
            except EventGone:
                continue  # another wait of this workflow took that event first
            self._site("after_commit", ctx, at, name)
            return value if standing is row else self._decode_step(standing, workflow_id)

    async def _event_or_deadline(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        key: str,
        deadline: float | None,
        suspend: bool,
    ) -> EventRow | None:
        """The oldest unconsumed event of ``key``, waited for; None at the deadline."""
        waiting = False
        with self._backend.notifier.subscribe(event_topic(ctx.workflow_id)) as subscription:
            while True:
                event = await session.run(session.backend.next_event, ctx.workflow_id, key)
                if event is not None or (deadline is not None and self._clock.time() >= deadline):
                    break
                if not waiting:
                    await self._enter_wait(ctx, session, deadline, key, suspend)
                    waiting = True
                await self._pause(session, subscription, deadline, self.event_poll_interval)
                await self._check_still_owned(ctx, session)
        if waiting:
            await self._leave_wait(ctx, session)
        return event

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
                self._leases.pop(ctx.workflow_id, None)
                raise _Suspended(ctx.workflow_id, wake_at, key)
        ctx.waits += 1

    async def _check_still_owned(
        self, ctx: _context.WorkflowContext, session: Session, doing: str = "while it waited"
    ) -> None:
        """Stop waiting for a workflow that was cancelled or taken over meanwhile."""
        if not await session.run(session.backend.owns, ctx.workflow_id, ctx.epoch):
            raise OwnershipLostError(
                f"workflow {ctx.workflow_id!r} was cancelled or taken over {doing}",
                workflow_id=ctx.workflow_id,
                epoch=ctx.epoch,
            )

    async def _stop_if_cancelled(
        self, ctx: _context.WorkflowContext, session: Session, before: str
    ) -> None:
        """Before a step's body, a child, a sleep or a wait: stop if cancelled.

        Called once :func:`_cancel_hinted` saw a hint (a cancel in this
        process, a PostgreSQL NOTIFY, another process's commit to the SQLite
        file, a lease the heartbeat could not renew, an event sent to the
        workflow): only then is the workflow's row read.
        """
        await self._check_still_owned(ctx, session, f"before {before} started")

    async def _leave_wait(self, ctx: _context.WorkflowContext, session: Session) -> None:
        ctx.waits -= 1
        if ctx.waits == 0:
            await session.run(session.backend.set_running, ctx.workflow_id, ctx.epoch)

    async def _pause(
        self, session: Session, subscription: Subscription, deadline: float | None, interval: float
    ) -> None:
        """Wait for a notification, at most ``interval`` or until the deadline."""
        clock = self._clock
        if deadline is not None and isinstance(clock, SystemClock):
            interval = min(interval, deadline - clock.time())
        woken = await session.wait_for(subscription, interval)
        # A virtual clock that advances by itself jumps to the deadline once a
        # real poll interval brought nothing: timeouts cost no time in tests.
        if not woken and deadline is not None and getattr(clock, "auto_advance", False):
            await session.sleep(deadline - clock.time())

    # Leases -----------------------------------------------------------------

    def _hold_lease(self, workflow_id: str, epoch: int) -> None:
        self._leases[workflow_id] = epoch
        if self._heartbeat is None and not self._closing.is_set():
            self._heartbeat = threading.Thread(
                target=self._renew_leases, name="durable-heartbeat", daemon=True
            )
            self._heartbeat.start()

    def _renew_leases(self) -> None:
        while not self._closing.wait(block_for(self.lease_seconds / 3)):
            leases = dict(self._leases)
            if not leases:
                continue
            try:
                missed = self._backend.run_sync(
                    self._backend.renew_leases, leases, self.lease_seconds
                )
            except Exception:  # the next beat tries again; the lease has slack for it
                log.warning("could not renew workflow leases", exc_info=True)
                continue
            for workflow_id in missed:
                # Cancelled (or taken over) from another process, which SQLite
                # cannot notify: its owner looks before its next step.
                self._backend.notifier.notify(event_topic(workflow_id))
                log.debug(
                    "workflow %r: its lease was not renewed (cancelled or taken over?); "
                    "it looks before its next step",
                    workflow_id,
                    extra=_extra(workflow_id),
                )


# ``waiting_for`` of a parent suspended because its child suspended.
_CHILD = "child:"

# Sleeps from this length show the workflow as waiting (two writes).
_SHOW_WAITS_FROM = 1.0
# How often a long sleep looks whether it still owns its workflow (a cancel
# in this process, or on PostgreSQL, wakes it at once).
_SLEEP_CHECK_INTERVAL = 5.0

_SAME_KIND = {
    "event": "event",
    "step": "step",
    "child": "step",
    "snapshot": "snapshot",
    "compensation": "step",
    "sleep": "sleep",
}


def _cancel_hinted(ctx: _context.WorkflowContext) -> bool:
    """Whether the workflow was woken since it last looked (then it reads its row)."""
    hint = ctx.stop_hint
    return hint is not None and hint.take()


def _replayable(
    ctx: _context.WorkflowContext, position: int, name: str, kind: str = "step"
) -> StepRow | None:
    recorded = ctx.recorded.get(position)
    if recorded is None:
        return None
    if recorded.name != name or _SAME_KIND.get(recorded.kind) != _SAME_KIND.get(kind):
        # An edited name or kind is tampering, not changed code.
        ctx.runtime._verify_steps(ctx.workflow_id, [recorded])
        what = recorded.kind if recorded.kind in ("snapshot", "sleep", "event") else "step"
        now = kind if kind in ("snapshot", "sleep", "event") else "step"
        raise NonDeterminismError(
            f"workflow {ctx.workflow_id!r} position {position}: the record there is of "
            f"{what} {recorded.name!r}, but the code now calls {now} {name!r}. The workflow's "
            "code changed the order of its steps since this run was recorded; "
            "restore the old order to resume it, or start it under a new workflow_id.",
            workflow_id=ctx.workflow_id,
            position=position,
            expected=recorded.name,
            found=name,
        )
    return recorded


def _bound(row: StepRow) -> bytes:
    """The columns of a step record its payload's signature covers."""
    return step_columns(row.kind, row.name, row.status.value, row.attempt, row.code_hash)


def _code_differs(ctx: _context.WorkflowContext, recorded: StepRow | None, spec: StepSpec) -> bool:
    return bool(
        recorded is not None
        and recorded.code_hash
        and spec.function is not None
        and recorded.code_hash != _code_hash(ctx, spec)
    )


def _code_hash(ctx: _context.WorkflowContext, spec: StepSpec) -> str | None:
    """A step's code fingerprint, computed once per execution of its workflow."""
    function = spec.function
    if function is None:
        return None
    found = ctx.code_hashes.get(id(function))
    if found is None or found[0] is not function:
        found = ctx.code_hashes[id(function)] = (function, fingerprint(function))
    return found[1]


def _default_code_policy() -> OnCodeChange:
    """``rerun`` in a notebook (fix a cell, re-run: changed steps run again), else ``reuse``."""
    return "rerun" if _in_a_kernel() else "reuse"


def _in_a_kernel() -> bool:
    """Whether this process is a running IPython kernel (a notebook's), not one that imported it.

    Tools that drive notebooks (nbclient, a test suite) import ipykernel
    without being one; only a kernel's shell has a ``kernel``.
    """
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    return getattr(shell, "kernel", None) is not None


def _extra(workflow_id: str, step: str | None = None, position: int | None = None) -> Any:
    """Fields every durable log record carries (``%(workflow_id)s`` in a format)."""
    return {"workflow_id": workflow_id, "step": step, "position": position}


def _text(message: str) -> str:
    """An error message as a column can hold it: no NUL, UTF-8, bounded length."""
    message = message.replace("\x00", "\\x00")
    try:
        message.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate (bytes decoded with surrogateescape)
        message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return message if len(message) <= 4000 else message[:3997] + "..."


def _child_id(parent_id: str, position: int) -> str:
    """A child's derived id: the parent's and its position, hashed if too long."""
    child = f"{parent_id}/{position}"
    if len(child) > MAX_WORKFLOW_ID_LENGTH:
        digest = hashlib.sha256(parent_id.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        child = f"{parent_id[:150]}~{digest}/{position}"
    return child


def _args_repr(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    text = f"({', '.join(parts)})"
    return text if len(text) <= 200 else text[:197] + "...)"


def _qualname(cls: type) -> str:
    """An error's type as the records keep it (a column of 512 characters)."""
    name = cls.__qualname__
    if cls.__module__ != "builtins":
        name = f"{cls.__module__}.{cls.__qualname__}"
    return name if len(name) <= 512 else name[:509] + "..."


def current_workflow_id() -> str:
    """The id of the workflow running here, inside its body and its steps.

    Handy as an idempotency key for external calls made by a step: a retried
    or re-executed step sends the same key.

    Raises:
        NotInWorkflowError: When called outside any workflow.

    Example::

        @durable.step
        async def charge(amount: int) -> str:
            return await payments.charge(amount, idempotency_key=durable.current_workflow_id())
    """
    ctx = _context.current.get()
    if isinstance(ctx, _context.InStep):
        return ctx.workflow.workflow_id
    if ctx is None:
        raise NotInWorkflowError(
            "current_workflow_id() was called outside a workflow; call it from a "
            "function decorated with @durable.durable_workflow or from a step it runs"
        )
    return ctx.workflow_id


# Which workflows a call in this process runs right now, by store and id:
# process-wide, so that two runtimes on one store never take a workflow from
# each other.
_HELD: dict[tuple[str, str], object] = {}
_HELD_LOCK = threading.Lock()

_default: Runtime | None = None
_default_lock = threading.Lock()


# Runtimes inside a `with runtime:` block in some thread, in the order entered:
# a thread the user starts there (which has no active runtime) uses it too.
_ENTERED: list[Runtime] = []
_entered_lock = threading.Lock()
_default_pid = 0


def current_runtime() -> Runtime:
    """The runtime in effect here.

    That is the active one (``with runtime:`` in this thread or task), else
    the one a ``with runtime:`` block in another thread of the process has
    open (so threads started inside the block use it too), else the default.

    The default runtime is created on first use from ``$DURABLE_URL`` or the
    embedded SQLite file ``.durable/durable.db``, and closed at interpreter
    exit.

    Raises:
        ConfigurationError: this thread has no active runtime and several
            ``with runtime:`` blocks of different runtimes are open in other
            threads, so which one it means is ambiguous.
    """
    active = _context.active_runtime.get()
    if active is not None:
        return active
    with _entered_lock:
        entered = list(_ENTERED)
    if len(entered) == 1:
        return entered[0]
    if entered:
        raise ConfigurationError(
            f"this thread has no runtime of its own, and {len(entered)} runtimes are open in "
            f"`with runtime:` blocks of other threads ({', '.join(r.url for r in entered)}); "
            "enter `with runtime:` in this thread to say which one it uses"
        )
    return _default_runtime(None)


def _default_runtime(replacement: Runtime | None) -> Runtime:
    """The default runtime (created on first use), or install ``replacement`` as it."""
    global _default, _default_pid
    with _default_lock:
        previous = _default
        if replacement is None and _default is not None:
            return _default
        if _default_pid == 0:
            atexit.register(_close_default_at_exit)
        _default = current = replacement if replacement is not None else Runtime()
        _default_pid = os.getpid()
    if replacement is not None and previous is not None:
        with contextlib.suppress(Exception):
            previous.close()
    return current


def _close_default_at_exit() -> None:
    """Close the default runtime, so that SQLite checkpoints its log into the file.

    Not in a forked child that exits normally: the store's connections are
    its parent's.
    """
    with _default_lock:
        runtime = _default if _default_pid == os.getpid() else None
    if runtime is not None:
        try:
            runtime.close()
        except Exception:  # at exit, a failed close only leaves the -wal file behind
            log.warning("could not close the default runtime at exit", exc_info=True)


def configure(url: str | None = None, **options: Any) -> Runtime:
    """Set up the default runtime, used by every workflow outside ``with runtime:``.

    Args:
        url: The store URL (see :class:`Runtime`); ``None`` reads ``$DURABLE_URL``
            and falls back to ``.durable/durable.db`` in the working directory.
        **options: Further :class:`Runtime` options (``lease_seconds``,
            ``poll_interval``).

    Returns:
        The new default runtime. The previous one, if any, is closed.

    Example::

        durable.configure(url="sqlite:///pipeline.db")
    """
    return _default_runtime(Runtime(url, **options))
