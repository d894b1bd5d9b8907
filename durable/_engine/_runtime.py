"""``durable.Runtime``: the public face of one engine, and the runtime in effect here.

A runtime opens a store and runs workflows on it through its
:class:`~durable._engine._core.Engine`. Module-level calls use the runtime
in effect (:func:`current_runtime`): the one a ``with runtime:`` block made
active, else the default runtime (:func:`configure`).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any, Generic, NamedTuple, TypeVar, cast, overload

from durable._aio import require_asyncio
from durable._clock import Clock, SystemClock
from durable._config import resolve_url
from durable._engine import _context
from durable._engine._core import Engine
from durable._engine._leases import Leases
from durable._engine._recovery import Recovery
from durable._engine._sessions import SessionStates
from durable._engine._steps import Steps
from durable._engine._streams import Streams
from durable._engine._sync import run_coroutine_sync
from durable._engine._waits import Waits
from durable._engine._workflows import Workflows
from durable._errors import ConfigurationError, DurableError, NotInWorkflowError
from durable._identity import validate_workflow_id
from durable._infos import WorkflowInfo
from durable._options import Options
from durable._reports import HealthReport, RecoveryReport, StepInfo
from durable._serialization import Codec
from durable._settings import UNSET
from durable._settings import resolve as resolve_options
from durable._store import Store, opens_with
from durable.backends._base import Backend
from durable.backends._open import open_backend
from durable.backends._url import parse_url

log = logging.getLogger("durable")


V = TypeVar("V")


class Parts(NamedTuple):
    """The parts of one runtime's engine, each with one job (see ``_core``)."""

    leases: Leases
    steps: Steps
    waits: Waits
    workflows: Workflows
    recovery: Recovery
    streams: Streams
    sessions: SessionStates


def runtime_of(engine: Engine) -> Runtime:
    """The runtime an engine runs (the engine holds it untyped: it sits below the runtime)."""
    return cast(Runtime, engine.runtime)


active_runtime: ContextVar[Runtime | None] = ContextVar("durable_active_runtime", default=None)
"""The runtime a ``with runtime:`` block (or ``activated()``) made the one in effect."""


class _Setting(Generic[V]):
    """A runtime attribute that reads one of its options, and changes it (validated again)."""

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, runtime: None, owner: type) -> _Setting[V]: ...
    @overload
    def __get__(self, runtime: Runtime, owner: type) -> V: ...
    def __get__(self, runtime: Runtime | None, owner: type) -> V | _Setting[V]:
        if runtime is None:
            return self
        return getattr(runtime.options, self.name)  # type: ignore[no-any-return]

    def __set__(self, runtime: Runtime, value: V) -> None:
        runtime.engine.options = runtime.options.replace(**{self.name: value})


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
        event_poll_interval: How soon a workflow waiting for an event first
            looks for it when no notification comes (notifications wake it at
            once; this is the fallback). The wait doubles it each time
            nothing came, up to 5 s (at most a third of ``lease_seconds``).
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
        lease_seconds: float | dt.timedelta = UNSET,
        poll_interval: float | dt.timedelta = UNSET,
        clock: Clock | None = None,
        secret_key: str | bytes | None = UNSET,
        old_secret_keys: Sequence[str | bytes] | None = UNSET,
        compress_threshold: int | None = UNSET,
        max_payload_bytes: int | None = UNSET,
        durability: str = UNSET,
        event_poll_interval: float | dt.timedelta = UNSET,
        max_recoveries: int = UNSET,
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
            # Each argument not given: the environment, pyproject.toml, else the default.
            options = resolve_options(given)
        elif changed := sorted(k for k, v in given.items() if v is not UNSET):
            raise ConfigurationError(
                f"give the options either in options= or as arguments, not both "
                f"({', '.join(changed)} given beside options=); "
                "use options.replace(...) to change some"
            )
        resolved = resolve_url(url)
        parse_url(resolved)
        codec = Codec(  # before the store opens: a bad key changes nothing there
            secret_key=options.secret_key,
            old_secret_keys=options.old_secret_keys,
            compress_threshold=options.compress_threshold,
            max_payload_bytes=options.max_payload_bytes,
        )
        self._engine = engine = Engine(
            self,
            self.activated,
            options,
            codec,
            open_backend(resolved, options.durability),
            clock if clock is not None else SystemClock(),
        )
        leases, steps = Leases(engine), Steps(engine)
        self._parts = Parts(
            leases=leases,
            steps=steps,
            waits=Waits(engine, steps, leases),
            workflows=Workflows(engine, steps, leases),
            recovery=Recovery(engine, leases),
            streams=Streams(engine, steps, leases),
            sessions=SessionStates(engine, steps, leases),
        )
        self._tokens = threading.local()  # each thread's `with runtime:` blocks
        self._entered = 0
        self._store = Store(self)

    @property
    def options(self) -> Options:
        """The settings this runtime runs with (validated once; see :class:`durable.Options`)."""
        return self._engine.options

    lease_seconds = _Setting[float]("How long an owner is trusted without a heartbeat.")
    poll_interval = _Setting[float]("The longest pause between looks at a workflow run elsewhere.")
    event_poll_interval = _Setting[float]("How often an event wait looks when nothing notifies.")
    max_recoveries = _Setting[int]("Resumes in a row after its owner died before quarantine.")

    @property
    def url(self) -> str:
        """The store's URL, with any password masked."""
        return self._engine.backend.url

    @property
    def backend(self) -> Backend:
        """The storage backend this runtime runs on (see :mod:`durable.backends`).

        For tools and tests that speak the storage contract directly::

            row = runtime.backend.run_sync(runtime.backend.get_workflow, "report-1")
        """
        return self._engine.backend

    @property
    def engine(self) -> Engine:
        """The machinery behind this runtime: durable's own modules and testing tools use it.

        Not a stable API: use the runtime's own methods, :attr:`store` and
        :attr:`backend` instead.
        """
        return self._engine

    @property
    def parts(self) -> Parts:
        """The engine's parts (workers, the store and testing tools use them); not a stable API."""
        return self._parts

    def __repr__(self) -> str:
        return f"<durable.Runtime {self.url}>"

    @property
    def clock(self) -> Clock:
        """Where this runtime's time comes from (settable, e.g. to a virtual clock)."""
        return self._engine.clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self._engine.clock = clock

    # Life cycle -------------------------------------------------------------

    @contextlib.contextmanager
    def activated(self) -> Iterator[Runtime]:
        """Make this the runtime in effect for the block, without closing it after.

        For a runtime that outlives the block (an application's, used in one
        request or task); ``with runtime:`` closes it when the block ends.

        Example::

            with app_runtime.activated():
                report.run_sync("2026-11")
        """
        token = active_runtime.set(self)
        try:
            yield self
        finally:
            active_runtime.reset(token)

    def __enter__(self) -> Runtime:
        """Make this the runtime of the block, and of threads that have none.

        Entered in several threads (or nested), it closes when the last
        block is left.
        """
        if self._engine.closed:
            self._engine.session(sync=True)  # raises RuntimeClosedError
        stack: list[Any] = self._tokens.__dict__.setdefault("stack", [])
        stack.append(active_runtime.set(self))
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
                active_runtime.reset(token)
            except ValueError:  # left in another context (an asyncio task) than entered
                previous = token.old_value
                active_runtime.set(None if previous is token.MISSING else previous)
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
        self._engine.closed = True
        self._parts.leases.stop()
        self._engine.backend.close()

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
        for attempt in self._engine.backend.run_sync(
            self._engine.backend.step_attempts, workflow_id
        ):
            failures.setdefault(attempt.position, []).append(
                f"{attempt.error_type}: {attempt.error_message}"
            )
        steps = self._engine.backend.run_sync(self._engine.backend.load_steps, workflow_id)
        return [
            StepInfo(
                position=row.position,
                name=row.name,
                status=row.status,
                tries=row.attempt,
                started_at=row.started_at,
                finished_at=row.finished_at,
                payload_bytes=self._engine.backend.output_size(row.output),
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

        try:
            info = self._engine.backend.health()
        except DurableError as exc:
            return HealthReport.unavailable(self.url, exc)
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
        return await self._parts.recovery.recover()

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
        return await self._parts.recovery.resume(validate_workflow_id(workflow_id))

    def resume_sync(self, workflow_id: str) -> Any:
        """Blocking form of :meth:`resume`."""
        return run_coroutine_sync(self.resume(workflow_id))

    def recover_sync(self) -> RecoveryReport:
        """Blocking form of :meth:`recover`."""
        return run_coroutine_sync(self.recover())


opens_with(Runtime)  # Store.open opens one of these

_default: Runtime | None = None
_default_lock = threading.Lock()


# Runtimes inside a `with runtime:` block in some thread, in the order entered:
# a thread the user starts there (which has no active runtime) uses it too.
_ENTERED: list[Runtime] = []
_entered_lock = threading.Lock()
_default_pid = 0


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
    active = active_runtime.get()
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
