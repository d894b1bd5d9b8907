"""The engine: the state one runtime's parts share, and the parts that run workflows.

A :class:`durable.Runtime` is a facade over one :class:`Engine`. The engine
holds what every part needs (the options, the store, the codec, the clock,
the installed hooks) and the parts, each with one job:

- :mod:`~durable._engine._workflows`: start, claim, own and finish a workflow call;
- :mod:`~durable._engine._steps`: replay or run a step, retry it, commit it;
- :mod:`~durable._engine._waits`: durable sleeps, events and suspension;
- :mod:`~durable._engine._recovery`: resume what is due (owner dead, wait over);
- :mod:`~durable._engine._leases`: who holds what here, owners' liveness, heartbeats.

The parts reach each other through the engine (``engine.steps.commit(...)``)
and the store through a :class:`~durable._session.Session`, which runs each
operation in place on the sync path or awaited (group-committed) on the
async one: the parts are written once, as coroutines, for both.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from durable._clock import Clock
from durable._durations import format_utc
from durable._engine import _context
from durable._errors import (
    OwnershipLostError,
    PayloadIntegrityError,
    RuntimeClosedError,
    WorkflowQuarantinedError,
    WorkflowSuspendedError,
)
from durable._options import Options
from durable._records import StepRow, StepStatus, WorkflowRow, WorkflowStatus
from durable._serialization import Codec, place, step_columns, step_slot
from durable._session import Session
from durable.backends._base import Backend

if TYPE_CHECKING:
    from durable._engine._leases import Leases
    from durable._engine._recovery import Recovery
    from durable._engine._runtime import Runtime
    from durable._engine._steps import Steps
    from durable._engine._waits import Waits
    from durable._engine._workflows import Workflows

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


class Part:
    """One part of an engine (workflows, steps, waits...): it reaches the others through it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine


class Engine:
    """What one runtime's parts share, and the parts themselves.

    Built by :class:`durable.Runtime`, which wires the parts in and stays
    their public face (``engine.runtime``).
    """

    leases: Leases
    steps: Steps
    waits: Waits
    workflows: Workflows
    recovery: Recovery

    def __init__(
        self, runtime: Runtime, options: Options, codec: Codec, backend: Backend, clock: Clock
    ) -> None:
        self.runtime = runtime
        self.options = options
        self.codec = codec
        self.backend = backend
        self.hooks: list[Callable[[_context.Site], None]] = []
        """Called at every crash site (``durable.testing``'s injector and sweep)."""
        self.checkpoint_seconds: collections.deque[float] = collections.deque(maxlen=100_000)
        """How long recent step commits took (``Store.metrics``)."""
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
        self, ctx: _context.WorkflowContext, session: Session, doing: str = "while it waited"
    ) -> None:
        """Stop a workflow that was cancelled or taken over meanwhile."""
        if not await session.run(session.backend.owns, ctx.workflow_id, ctx.epoch):
            raise OwnershipLostError(
                f"workflow {ctx.workflow_id!r} was cancelled or taken over {doing}",
                workflow_id=ctx.workflow_id,
                epoch=ctx.epoch,
            )

    async def stop_if_cancelled(
        self, ctx: _context.WorkflowContext, session: Session, before: str
    ) -> None:
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
        if row.status is StepStatus.SUCCESS:
            return self.codec.loads(row.output, slot, what=what, bound=bound)
        raise self.codec.loads_error(row.output, slot, what=what, bound=bound)

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
                row.output,
                place(workflow_id, step_slot(row.position)),
                what=f"record of step {row.name!r} (position {row.position} "
                f"of workflow {workflow_id!r})",
                bound=step_bound(row),
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
        kind: _context.SiteKind,
        ctx: _context.WorkflowContext,
        position: int | None = None,
        step: str | None = None,
    ) -> None:
        """Tell the installed hook (a crash injector, a sweep) where we are."""
        if self.hooks:
            nth = ctx.nth.get(position) if position is not None else None
            site = _context.Site(kind, ctx.workflow_id, ctx.name, position, step, nth)
            for hook in list(self.hooks):
                hook(site)


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
