"""The engine's state: what one runtime's parts share, and what a workflow's context is.

A :class:`durable.Runtime` is a facade over one :class:`Engine`, the state
every part needs (the options, the store, the codec, the clock, the
installed hooks, the workflow's entry points), and its parts, each with one
job:

- :mod:`~durable._engine._workflows`: start, claim, own and finish a workflow call;
- :mod:`~durable._engine._steps`: replay or run a step, retry it, commit it;
- :mod:`~durable._engine._waits`: durable sleeps, events and suspension;
- :mod:`~durable._engine._recovery`: resume what is due (owner dead, wait over);
- :mod:`~durable._engine._leases`: who holds what here, owners' liveness, heartbeats.

Each part is given the parts it uses when the runtime makes it (workflows
and waits use steps and leases, recovery uses leases), so no module imports
one above it. Code that holds only a workflow's context reaches the parts
through the entry points they fill in on the engine (``ctx.engine.run_step``).
The parts reach the store through a :class:`~durable._session.Session`,
which runs each operation in place on the sync path or awaited
(group-committed) on the async one: the parts are written once, as
coroutines, for both.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from durable._arguments import args_body, call_fingerprint, named_fingerprint
from durable._clock import Clock
from durable._durations import format_utc
from durable._engine._watch import Watchers
from durable._errors import (
    OwnershipLostError,
    PayloadIntegrityError,
    RuntimeClosedError,
    WorkflowCancelledError,
    WorkflowQuarantinedError,
    WorkflowSuspendedError,
)
from durable._options import Options
from durable._records import Placement, StepRow, StepStatus, WorkflowRow, WorkflowStatus
from durable._serialization import Codec, pickle_value, place, step_columns, step_slot
from durable._session import Session
from durable._specs import StepSpec, WorkflowSpec
from durable.backends._base import Backend
from durable.backends._notify import Subscription

log = logging.getLogger("durable")

CHILD = "child:"
"""``waiting_for`` of a parent suspended because its child suspended."""


class Lost(Exception):
    """This executor lost the workflow it was running to another one."""


class Unknown(Exception):
    """No imported code registers a workflow of this name."""


class Suspended(BaseException):
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


class DeadlinePassed(BaseException):
    """Unwinds a workflow whose deadline passed, up to the call that owns it.

    A BaseException, like :class:`Suspended`: the user's ``except Exception``
    must not swallow it. That call records the workflow as cancelled, with a
    WorkflowTimeoutError as its outcome, and raises the error.
    """

    def __init__(self, workflow_id: str) -> None:
        super().__init__(workflow_id)
        self.workflow_id = workflow_id


class HeldRecords(Protocol):
    """An open ``durable.transaction()`` block, as the engine sees it."""

    tx_id: str

    def hold(self, row: StepRow) -> None:
        """Keep a step record back until the outermost block commits."""
        ...

    def on_rollback(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Run ``fn`` if the block raises."""
        ...


@dataclass(eq=False)
class WorkflowContext:
    """The state of one workflow execution, shared by every task it spawns.

    Positions are handed out when a step is *called*, so the order of
    ``asyncio.gather(step_a(), step_b())`` is the order of the calls, on the
    first run and on every replay alike.
    """

    engine: Engine
    session: Session
    workflow_id: str
    name: str
    epoch: int
    attempt: int
    recorded: dict[int, StepRow]
    next_position: int = field(default=1)
    calls: dict[str, int] = field(default_factory=dict)
    """How many times each step name was called so far (for crash targeting)."""
    nth: dict[int, int] = field(default_factory=dict)
    """For each position, which call of its step name it is (1-based)."""
    ancestors: tuple[str, ...] = ()
    on_code_change: str | None = None
    """The workflow's policy for records written by code that has changed since."""
    """Ids of the workflows this one is a child of, nearest first."""
    code_hashes: dict[int, tuple[object, str]] = field(default_factory=dict)
    """Code fingerprints of the steps called so far (a loop hashes its step once)."""
    snapshots: dict[str, int] = field(default_factory=dict)
    """Snapshot names reached in this execution, with their positions."""
    tx: HeldRecords | None = None
    """The innermost open transaction block, whose records are held back."""
    streams: list[Any] = field(default_factory=list)
    """Generator steps' streams opened in this execution: any the body left
    unfinished are closed (their chunks so far recorded) when it returns."""
    waits: int = 0
    """Durable waits in progress (the workflow shows as waiting while any is)."""
    deadline: float | None = None
    """When the workflow times out (its own timeout's, or an ancestor's if sooner)."""
    timeout: float | None = None
    """Its own timeout in seconds (None: no limit of its own)."""
    stop_hint: Subscription | None = None
    """Woken by a cancel (or a lost lease, or an event) of this workflow: look
    whether it still owns itself before the next step, child or wait."""

    def allocate(self, name: str) -> int:
        position = self.next_position
        self.next_position += 1
        self.calls[name] = self.nth[position] = self.calls.get(name, 0) + 1
        return position


SiteKind = Literal["workflow_start", "before_step", "after_step", "after_commit"]


@dataclass(frozen=True)
class Site:
    """A point in a workflow's execution where a crash can be injected.

    ``workflow_start``: the workflow's row is committed (created, resumed or
    retried), its body has not started. ``before_step``: a step is about to
    run (it was not replayed). ``after_step``: its body returned or raised,
    its record is not committed. ``after_commit``: its record is committed.
    """

    kind: SiteKind
    workflow_id: str
    workflow_name: str
    position: int | None = None
    step: str | None = None
    nth: int | None = None


@dataclass(frozen=True, eq=False)
class InStep:
    """Marks code running inside a step body, where steps are plain calls."""

    workflow: WorkflowContext
    position: int


@dataclass(frozen=True)
class Invocation:
    """One call of a workflow, as the decorator hands it to the runtime."""

    spec: WorkflowSpec
    call: Callable[[], Any]
    args_fingerprint: str
    args_body: bytes
    """The arguments, pickled (sealed once the workflow id is known)."""
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    requested_id: str | None
    parent: WorkflowContext | None
    position: int | None
    never_wait: bool = False
    """Never wait for another live owner (see ``_context.CallOptions``)."""
    preclaimed: WorkflowRow | None = None
    """Claimed already by a worker (see ``_context.CallOptions``)."""
    hold: object | None = None
    """The worker's in-process hold on it (see ``_context.CallOptions``)."""
    timeout: float | None = None
    """Seconds it may run from its first start: the call's, else the decorator's."""

    @classmethod
    def queued(
        cls,
        workflow: Any,
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        requested_id: str | None,
        timeout: float | None,
    ) -> Invocation:
        """A call of a decorated ``workflow`` to enqueue (``instance``: a method's, or None)."""
        spec, signature = workflow._self_durable
        return cls(
            spec=spec,
            call=lambda: None,
            args_body=args_body(spec, signature, instance, args, kwargs),
            args_fingerprint=call_fingerprint(signature, instance, args, kwargs),
            args=args,
            kwargs=kwargs,
            requested_id=requested_id,
            parent=None,
            position=None,
            timeout=timeout if timeout is not None else spec.timeout,
        )

    @classmethod
    def by_name(
        cls,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        requested_id: str | None,
        timeout: float | None,
    ) -> Invocation:
        """A call of the workflow registered as ``name``, to enqueue without its code."""
        spec = WorkflowSpec(name=name, is_async=True, on_running="wait", timeout=timeout)
        return cls(
            spec=spec,
            call=lambda: None,
            args_body=pickle_value((None, args, kwargs), what=f"arguments of workflow {name!r}"),
            args_fingerprint=named_fingerprint(args, kwargs),
            args=args,
            kwargs=kwargs,
            requested_id=requested_id,
            parent=None,
            position=None,
            timeout=timeout,
        )


class Part:
    """One part of an engine (workflows, steps, waits...), over the state the parts share."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.fill(engine)

    def fill(self, engine: Engine) -> None:
        """Fill in the engine's entry points that this part owns (none by default)."""


Co = Coroutine[Any, Any, Any]


class Engine:
    """What one runtime's parts share, and the entry points a workflow's code calls.

    Built by :class:`durable.Runtime`, which makes the parts (each given the
    parts it uses) and stays their public face (``engine.runtime``). The
    entry points are filled in by the parts that own them, so that code
    holding only a workflow's context reaches them without knowing the parts.
    """

    run_step: Callable[[WorkflowContext, Session, StepSpec, int, Callable[[], Any]], Co]
    """Replay or run a step (``Steps.run``)."""
    snapshot: Callable[[WorkflowContext, Session, int, str], Co]
    """Record a snapshot (``Steps.snapshot``)."""
    publish: Callable[[WorkflowContext, Session, int, str, Any], Co]
    """Publish a value under a key (``Steps.publish``)."""
    sleep: Callable[[WorkflowContext, Session, int, str, Callable[[float], float], bool], Co]
    """A durable timer (``Waits.sleep``)."""
    wait_for_event: Callable[
        [WorkflowContext, Session, int, str, float | dt.timedelta | None, bool], Co
    ]
    """A durable event wait (``Waits.wait_for_event``)."""
    first_of: Callable[
        [WorkflowContext, Session, int, dict[int, Awaitable[Any]], bool],
        Coroutine[Any, Any, tuple[int, Any]],
    ]
    """The first of several to finish, recorded (``Waits.first_of``)."""
    stream_step: Callable[
        [WorkflowContext, Session, StepSpec, int, Callable[[], Any], str], AsyncGenerator[Any, None]
    ]
    """Replay or run a generator step, its chunks streamed (``Streams.stream_step``)."""
    write_stream: Callable[[WorkflowContext, Session, int, str, Any, bool], Co]
    """Append to (or close) a stream, once (``Streams.write_stream``)."""
    session_state: Callable[[WorkflowContext, Session, int, str, str, str, tuple[Any, ...]], Co]
    """Read or write session state, recorded (``SessionStates.session_state``)."""
    run_workflow: Callable[[Invocation, Session], Co]
    """Run one workflow call (``Workflows.run``)."""
    enqueue: Callable[[Invocation, Session, Placement], Coroutine[Any, Any, str]]
    """Enqueue one workflow call; its id (``Workflows.enqueue``)."""

    def __init__(
        self,
        runtime: object,
        activate: Callable[[], AbstractContextManager[object]],
        options: Options,
        codec: Codec,
        backend: Backend,
        clock: Clock,
    ) -> None:
        self.runtime = runtime
        """The :class:`durable.Runtime` this engine runs (``_runtime.runtime_of`` types it)."""
        self.activate = activate
        """Make that runtime the one in effect for a block (``Runtime.activated``)."""
        self.options = options
        self.codec = codec
        self.backend = backend
        self.hooks: list[Callable[[Site], None]] = []
        """Called at every crash site (``durable.testing``'s injector and sweep)."""
        self.checkpoint_seconds: collections.deque[float] = collections.deque(maxlen=100_000)
        """How long recent step commits took (``Store.metrics``)."""
        self.watchers = Watchers()
        """Live views of the steps as they run (a notebook's, a terminal's)."""
        self.closed = False
        self.clock = clock

    @property
    def clock(self) -> Clock:
        return self._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self._clock = clock
        self._sessions = (
            Session(self.backend, clock, sync=False),
            Session(self.backend, clock, sync=True),
        )

    def session(self, sync: bool) -> Session:
        """How the sync or the async path reaches the store; refused once closed."""
        if self.closed:
            raise RuntimeClosedError(
                f"{self.runtime!r} is closed; open a new Runtime (or leave `with runtime:` later)",
                url=self.backend.url,
            )
        return self._sessions[sync]

    async def check_still_owned(
        self, ctx: WorkflowContext, session: Session, doing: str = "while it waited"
    ) -> None:
        """Stop a workflow that was cancelled or taken over meanwhile."""
        if not await session.run(session.backend.owns, ctx.workflow_id, ctx.epoch):
            raise OwnershipLostError(
                f"workflow {ctx.workflow_id!r} was cancelled or taken over {doing}",
                workflow_id=ctx.workflow_id,
                epoch=ctx.epoch,
            )

    async def stop_if_cancelled(self, ctx: WorkflowContext, session: Session, before: str) -> None:
        """Before a step's body, a child, a sleep or a wait: stop if cancelled.

        Called once :func:`~durable._engine._steps.cancel_hinted` saw a hint (a
        cancel in this process, a PostgreSQL NOTIFY, another process's commit
        to the SQLite file, a lease the heartbeat could not renew, an event
        sent to the workflow): only then is the workflow's row read.
        """
        await self.check_still_owned(ctx, session, f"before {before} started")

    def decode_step(self, row: StepRow, workflow_id: str) -> Any:
        """A recorded step's value, or its recorded exception raised."""
        what = f"outcome of step {row.name!r} (position {row.position} of workflow {workflow_id!r})"
        slot = place(workflow_id, step_slot(row.position))
        bound = step_bound(row)
        # No local holds the output: a view of a mapped file would live as long
        # as the traceback of the error raised here.
        if row.status is StepStatus.SUCCESS:
            return self.codec.loads(
                self.backend.step_output(row.output), slot, what=what, bound=bound
            )
        error = self.codec.loads_error(
            self.backend.step_output(row.output), slot, what=what, bound=bound
        )
        raise error

    def verify_failed(self, row: WorkflowRow) -> None:
        """Before a new attempt: the workflow really failed (its status was not edited).

        A failed workflow always has its error recorded, signed; a finished
        one whose status was changed to error has none, and running it again
        would redo work its record says is done.
        """
        if self.codec.signing:
            wid = row.workflow_id
            if not row.error:
                raise PayloadIntegrityError(
                    f"workflow {wid!r} has status {row.status.value!r} but no signed error "
                    "is recorded (was its status edited?); refusing to run it again. "
                    "Check the store's integrity, or run the call under a new workflow_id.",
                    what=f"error of workflow {wid!r}",
                )
            self.codec.open(row.error, place(wid, "error"), what=f"error of workflow {wid!r}")

    def verify_steps(self, workflow_id: str, rows: Sequence[StepRow]) -> None:
        """Raise PayloadIntegrityError unless every record is signed as it stands.

        For records about to be acted on without being replayed (superseded by
        a new attempt, run again for changed code, refused as the wrong step):
        an edited status, kind, name or code fingerprint must not decide that.
        Does nothing without a secret key.
        """
        if not self.codec.signing:
            return
        for row in rows:
            self.codec.open(
                self.backend.step_output(row.output),
                place(workflow_id, step_slot(row.position)),
                what=f"record of step {row.name!r} (position {row.position} "
                f"of workflow {workflow_id!r})",
                bound=step_bound(row),
            )

    def cancelled(self, row: WorkflowRow) -> BaseException:
        """What a call of a cancelled workflow raises: its recorded error, or a cancel."""
        wid = row.workflow_id
        if row.error:
            return self.codec.loads_error(
                row.error, place(wid, "error"), what=f"error of workflow {wid!r}"
            )
        return WorkflowCancelledError(
            f"workflow {wid!r} was cancelled. Resume it from its records with "
            f"store.resume({wid!r}) (durable resume {wid}), or run the call under a new "
            "workflow_id to start afresh.",
            workflow_id=wid,
        )

    def outcome(self, row: WorkflowRow) -> Any:
        """A finished workflow's recorded result, or its recorded error raised."""
        wid = row.workflow_id
        if row.status is WorkflowStatus.SUCCESS:
            return self.codec.loads(
                row.result or b"", place(wid, "result"), what=f"result of workflow {wid!r}"
            )
        raise self.codec.loads_error(
            row.error or b"", place(wid, "error"), what=f"error of workflow {wid!r}"
        )

    def site(
        self,
        kind: SiteKind,
        ctx: WorkflowContext,
        position: int | None = None,
        step: str | None = None,
    ) -> None:
        """Tell the installed hook (a crash injector, a sweep) where we are."""
        if self.hooks:
            nth = ctx.nth.get(position) if position is not None else None
            site = Site(kind, ctx.workflow_id, ctx.name, position, step, nth)
            for hook in list(self.hooks):
                hook(site)


def check_deadline(ctx: WorkflowContext) -> None:
    """Unwind the workflow (:class:`DeadlinePassed`) once its deadline has passed."""
    if ctx.deadline is not None and ctx.engine.clock.time() >= ctx.deadline:
        raise DeadlinePassed(ctx.workflow_id)


def log_extra(workflow_id: str, step: str | None = None, position: int | None = None) -> Any:
    """Fields every durable log record carries (``%(workflow_id)s`` in a format)."""
    return {"workflow_id": workflow_id, "step": step, "position": position}


def step_bound(row: StepRow) -> bytes:
    """The columns of a step record its payload's signature covers."""
    return step_columns(row.kind, row.name, row.status.value, row.attempt, row.code_hash)


def quarantined(row: WorkflowRow) -> WorkflowQuarantinedError:
    return WorkflowQuarantinedError(
        f"workflow {row.workflow_id!r} is quarantined: its executor died on each of its "
        f"last {row.recoveries} recoveries, so it is no longer resumed by itself. Find "
        f"out why (durable show {row.workflow_id}), fix it, then resume it by hand "
        "(Runtime.resume or durable resume).",
        workflow_id=row.workflow_id,
    )
