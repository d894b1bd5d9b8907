"""The storage contract: what a backend provides, and what each operation means.

A backend provides transactions and the operations below. Each operation is
one coroutine ``async def op(self, tx, ...)`` over a transaction ``tx`` of
the backend's own making: the engine never opens a transaction itself, it
asks the backend to run an operation, synchronously (:meth:`Backend.run_sync`,
which drives the coroutine in place: on a sync transaction it never
suspends) or asynchronously (:meth:`Backend.run_async`). So each operation is
written once and serves both the sync and the async paths.

Operations marked :func:`atomic` must run in one transaction (all their
writes or none); the others may run each statement in autocommit. Every
write that belongs to a workflow is fenced by its ``epoch``: a write from an
owner that lost the workflow changes nothing.

The contract is checked by :mod:`durable.testing.contract`, which a third
party runs against their own backend; both built-in backends pass it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, Concatenate, NamedTuple, ParamSpec, TypeAlias, TypeVar

from durable._errors import DurableError
from durable._records import (
    CheckSteps,
    EventRow,
    NewWorkflow,
    Owner,
    Parts,
    Placement,
    SessionEntry,
    SessionSummary,
    StepAttemptRow,
    StepHistoryRow,
    StepRow,
    StreamRow,
    StreamSummary,
    WorkflowQuery,
    WorkflowRow,
    WorkflowStatus,
)
from durable.backends._contract_control import ControlContract
from durable.backends._notify import Notifier

P = ParamSpec("P")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


Operation: TypeAlias = Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]
"""An operation of the contract, bound to its backend: ``op(tx, *args, **kwargs)``."""


class Write(NamedTuple):
    """A write waiting for a group commit: the operation and its arguments (after ``tx``)."""

    op: Callable[..., Coroutine[Any, Any, Any]]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


def atomic(op: F) -> F:
    """Mark an operation whose writes must commit together (one transaction).

    Example::

        class MyBackend(Backend):
            @atomic
            async def cancel(self, tx, workflow_id): ...
    """
    op.atomic = True  # type: ignore[attr-defined]
    return op


def is_atomic(op: Callable[..., Any]) -> bool:
    """Whether ``op`` (a function or a bound method) was marked :func:`atomic`."""
    try:
        # A bound method reads its function's __dict__: a getattr that misses
        # costs several times as much, and every operation asks.
        return op.__dict__.get("atomic", False)  # type: ignore[no-any-return]
    except AttributeError:
        return getattr(op, "atomic", False)


class Backend(ControlContract, ABC):
    """A durable store of workflows and their steps.

    Subclass it, supply the two runners (:meth:`run_sync`; :meth:`run_async`
    defaults to running the sync form in place, right for an embedded
    database whose calls take microseconds) and implement the operations.
    """

    url: str
    """The URL this backend was opened from, with any password masked."""
    identity: str
    """Names the store itself: two backends with one identity share their data."""
    notifier: Notifier
    """Wakes waiters when an event or a queued workflow arrives, or a workflow is cancelled."""
    read_only: bool = False
    """Whether the store was opened read-only (listed and shown, never written)."""
    max_in_flight: int = 1
    """How many grouped writes of one event loop may be in flight at once (group commit)."""
    schema_before: int | None = None
    """The schema version the store had when this backend opened it (0: a new store,
    migrated to :data:`SCHEMA_VERSION` since); None where a backend cannot tell."""
    writes_suspend: bool = True
    """Whether an async write awaits I/O (False for an embedded database)."""

    # Running operations -----------------------------------------------------

    @abstractmethod
    def run_sync(self, op: Operation[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``op(tx, *args, **kwargs)`` in a sync transaction and return its result.

        Atomic if :func:`is_atomic` says so. Translates the database's own
        failures into :class:`durable.BackendUnavailableError` (after any
        retries the backend makes) and notifies the topics the operation
        named (:meth:`notify`) once its writes are committed.
        """

    async def run_async(self, op: Operation[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Async form of :meth:`run_sync`; the default runs it in place."""
        return self.run_sync(op, *args, **kwargs)

    async def run_in_place(self, op: Operation[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """:meth:`run_sync` (its outcome, errors and notifications), awaited on the sync path.

        A backend whose statements never suspend may await ``op`` here: the
        pipeline's own ``_aio.drive`` runs it, none is driven per statement.
        """
        return self.run_sync(op, *args, **kwargs)

    async def run_batch(self, tx: Any, batch: Sequence[Write]) -> list[tuple[bool, Any]]:
        """Run several writes in one transaction (group commit): each one's outcome.

        An outcome is ``(True, result)`` or ``(False, exception)`` for a
        :class:`durable.DurableError` of that write alone (fenced off, say); a
        database error propagates, and the writes are then run one by one.
        """
        outcomes: list[tuple[bool, Any]] = []
        for op, args, kwargs in batch:
            outcomes.append(await outcome(op(tx, *args, **kwargs)))
        return outcomes

    @abstractmethod
    def health(self) -> dict[str, object]:
        """Check the store answers: its kind, server version, schema version, latency."""

    @abstractmethod
    def close(self) -> None:
        """Release connections. The backend must not be used afterwards."""

    # Workflows ----------------------------------------------------------------

    @abstractmethod
    async def start_workflow(
        self, tx: Any, new: NewWorkflow, owner: Owner, lease_seconds: float
    ) -> tuple[WorkflowRow, bool]:
        """Insert ``new`` owned by ``owner``, or return the row already there.

        Returns the row and whether this call created it.
        """

    @abstractmethod
    async def claim_workflow(
        self,
        tx: Any,
        workflow_id: str,
        expected_epoch: int,
        expected_status: WorkflowStatus,
        owner: Owner,
        lease_seconds: float,
        *,
        rerun_failed: bool,
        recovery: bool = False,
        check_superseded: CheckSteps | None = None,
    ) -> WorkflowRow | None:
        """Take over a workflow if its epoch and status are still as read (atomic).

        The status matters too: a workflow finished by its owner keeps its
        epoch, and must not be claimed from a read taken before it finished.

        On success the epoch and the attempt counter are incremented, the
        status set to running and the row returned; ``None`` means someone
        else claimed it first. With ``rerun_failed`` (a failed workflow run
        again), its recorded error and its steps' recorded errors are
        superseded, so that the failed steps run again; ``check_superseded``
        is called with those step records inside the claim's transaction, and
        an exception it raises rolls the whole claim back (nothing changes) and
        propagates. ``recovery`` (its owner died holding it) counts one more
        recovery in a row; any other claim resets the count.
        """

    @abstractmethod
    async def get_workflow(self, tx: Any, workflow_id: str) -> WorkflowRow | None:
        """The stored row of a workflow, or None."""

    @abstractmethod
    async def finish_workflow(
        self,
        tx: Any,
        workflow_id: str,
        epoch: int,
        status: WorkflowStatus,
        result: bytes | None = None,
        error: bytes | None = None,
    ) -> bool:
        """Record a workflow's outcome; False if the epoch no longer matches."""

    @abstractmethod
    async def query_workflows(self, tx: Any, query: WorkflowQuery) -> list[WorkflowRow]:
        """Workflows matching ``query``, newest first, without their payloads."""

    @abstractmethod
    async def renew_leases(
        self, tx: Any, leases: Mapping[str, int], lease_seconds: float
    ) -> list[str]:
        """Extend the leases of the workflows held under these epochs (id to epoch; atomic).

        Returns the ids whose lease may not have been renewed (cancelled or
        taken over, or skipped because another transaction held the row): a
        hint for their owner to look, never a verdict.
        """

    @abstractmethod
    async def set_waiting(
        self,
        tx: Any,
        workflow_id: str,
        epoch: int,
        wake_at: float | None,
        waiting_for: str | None,
        suspend: bool,
    ) -> bool:
        """Mark a workflow waiting (fenced); ``suspend`` also gives up its ownership.

        A suspended workflow has no owner and a new epoch, so that whoever
        resumes it claims it afresh. False if the epoch no longer matches.
        """

    @abstractmethod
    async def set_deadline(
        self, tx: Any, workflow_id: str, epoch: int, deadline: float | None
    ) -> bool:
        """Record when a workflow times out (None: never); False if the epoch no longer matches."""

    @abstractmethod
    async def set_running(self, tx: Any, workflow_id: str, epoch: int) -> bool:
        """Mark a waiting workflow running again (fenced)."""

    @abstractmethod
    async def release_workflow(self, tx: Any, workflow_id: str, epoch: int) -> bool:
        """Give up a running workflow (fenced): no owner, new epoch, anyone may resume it."""

    @abstractmethod
    async def owns(self, tx: Any, workflow_id: str, epoch: int) -> bool:
        """Whether ``epoch`` is still the workflow's (nobody cancelled or took it over)."""

    @abstractmethod
    async def quarantine(self, tx: Any, workflow_id: str, epoch: int) -> bool:
        """Stop resuming a workflow that keeps crashing its executors (fenced)."""

    @abstractmethod
    async def reopen(self, tx: Any, workflow_id: str) -> WorkflowRow | None:
        """Make a quarantined or cancelled workflow resumable again, with its tree (atomic).

        It becomes running with no owner (so the next call, a recovery or a
        worker resumes it from its records) under a new epoch; its recorded
        error (a timeout's), deadline, waits and recoveries in a row are
        cleared. Its cancelled descendants are reopened alike, so that it
        finds its children resumable. None if it was neither quarantined nor
        cancelled.
        """

    @abstractmethod
    async def resumable(self, tx: Any) -> list[WorkflowRow]:
        """Candidates for recovery, without their payloads.

        Running or waiting workflows with an owner (alive or not: the caller
        judges), and waiting ones without an owner whose timer is due or whose
        awaited event has arrived.
        """

    @abstractmethod
    async def cancel(self, tx: Any, workflow_id: str) -> WorkflowRow | None:
        """Mark an active workflow cancelled, fencing out its owner; the row after (atomic).

        Its active descendants (children, theirs...) are cancelled with it.
        Wakes the waiters of each once committed, so that a waiting owner
        looks at once.
        """

    # Steps --------------------------------------------------------------------

    @abstractmethod
    async def load_steps(self, tx: Any, workflow_id: str) -> dict[int, StepRow]:
        """Every live (not superseded) step record of a workflow, by position.

        An output kept outside its row (a SQLite store's payload files) may be
        left as its reference: :meth:`step_output` reads it when it is needed,
        so that a resume holds one large output at a time, not all of them.
        """

    def step_output(self, stored: bytes | Parts) -> bytes | Parts | memoryview:
        """The payload a record's output stands for (itself unless it is a reference).

        A read-only view, of a file mapped into memory say, is read once and let go.
        """
        return stored

    def check_output(self, stored: bytes | Parts) -> None:
        """Raise if the payload a record's output stands for is missing or cut short.

        Reads no more than a file's size. A resume checks its records so before
        the workflow's body runs: damage stops it there, the workflow left to
        resume once the store is restored, not at a step call the body may catch.
        """

    def output_size(self, stored: bytes | Parts) -> int:
        """The size of the payload a record's output stands for, without reading it."""
        return len(stored)

    @abstractmethod
    async def record_step(self, tx: Any, workflow_id: str, epoch: int, step: StepRow) -> StepRow:
        """Commit a step record unless one already stands at its position.

        Returns the record that stands after the call: ``step`` itself, or the
        one another executor committed first. Raises OwnershipLostError when
        the epoch no longer matches and no record stands at the position.
        """

    @abstractmethod
    async def record_steps(
        self, tx: Any, workflow_id: str, epoch: int, steps: Sequence[StepRow]
    ) -> None:
        """Commit several step records in one transaction (all or none; atomic).

        Raises OwnershipLostError when the epoch no longer matches or a record
        already stands at one of the positions.
        """

    @abstractmethod
    async def record_step_attempt(
        self, tx: Any, workflow_id: str, epoch: int, attempt: StepAttemptRow
    ) -> None:
        """Record a failed attempt of a step that will be retried."""

    @abstractmethod
    async def publish(self, tx: Any, workflow_id: str, epoch: int, step: StepRow) -> StepRow:
        """Commit a published value: a step record of kind ``publish`` named by its key (atomic).

        As :meth:`record_step` (first commit wins, fenced by ``epoch``), and
        wakes the readers of the workflow's published state once committed
        (topic ``published:<workflow id>``).
        """

    @abstractmethod
    async def published(self, tx: Any, workflow_id: str, key: str | None = None) -> list[StepRow]:
        """The latest live ``publish`` record of each key of a workflow, by position.

        With ``key``, that key's alone (an empty list if it was never
        published, or only by records superseded since).
        """

    @abstractmethod
    async def step_attempts(self, tx: Any, workflow_id: str) -> list[StepAttemptRow]:
        """The failed, retried attempts of a workflow's steps, oldest first."""

    @abstractmethod
    async def step_history(self, tx: Any, workflow_id: str) -> list[StepHistoryRow]:
        """Every step record of a workflow, superseded ones included, by position."""

    @abstractmethod
    async def steps_up_to(self, tx: Any, workflow_id: str, position: int) -> list[StepRow]:
        """The live step records at or before ``position``, with their payloads."""

    @abstractmethod
    async def supersede_from(self, tx: Any, workflow_id: str, epoch: int, position: int) -> None:
        """Supersede the live records at and after ``position`` (fenced by ``epoch``; atomic)."""

    @abstractmethod
    async def rewind(self, tx: Any, workflow_id: str, expected_epoch: int, position: int) -> bool:
        """Supersede live records after ``position`` and make the workflow resumable (atomic).

        The workflow becomes running with no owner (so the next call resumes
        it) under a new epoch (so its previous owner can write nothing more).
        False if the epoch changed meanwhile.
        """

    @abstractmethod
    async def create_fork(
        self, tx: Any, new: NewWorkflow, forked_from: str, steps: Sequence[StepRow]
    ) -> bool:
        """Create a workflow holding copies of ``steps``; False if the id is taken (atomic)."""

    # Queues -------------------------------------------------------------------

    @abstractmethod
    async def enqueue_workflow(
        self, tx: Any, new: NewWorkflow, placement: Placement
    ) -> tuple[WorkflowRow, bool]:
        """Record ``new`` as enqueued (owned by nobody) as ``placement`` says; the row standing.

        The row standing is the one of ``new``'s id, or, when the placement
        has a ``dedup_id`` that a workflow of its queue with work left has,
        that one. ``not_before`` is kept as the row's ``wake_at``, and
        ``partition`` as its ``partition_key``. Wakes the queue's waiters
        once committed. Atomic.
        """

    @abstractmethod
    async def claim_queued(
        self,
        tx: Any,
        owner: Owner,
        lease_seconds: float,
        queues: Sequence[str],
        limit: int,
        queue_limits: Mapping[str, int] | None = None,
        now: float | None = None,
        running_here: Mapping[str, int] | None = None,
    ) -> list[WorkflowRow]:
        """Claim up to ``limit`` enqueued workflows of ``queues`` for ``owner`` (atomic).

        Highest priority first, then oldest, by queue. A row waits while its
        ``wake_at`` is later than ``now`` (the claimer's clock; default the
        store's), and is never claimed once its ``start_by`` is not later.
        A paused queue (:meth:`put_queue`) gives nothing. A queue with flow
        control never has, counted across every process that claims from
        the store: more running workflows than its ``concurrency`` (or
        ``queue_limits[queue]``, the lower of the two), more starts within
        any ``rate_period`` than its ``rate_limit`` (starts are the claimed
        rows' first ``started_at``: ``now`` if given, else the store's clock
        as each row is claimed), or more running
        workflows of one ``partition_key`` than its ``partition_concurrency``.
        Claims from a queue with flow control take turns under its lock
        (:meth:`put_queue` and :meth:`set_queue_paused` take it too), and
        read its terms and the store's clock once they hold it, so a change
        or a pause committed before counts, and started times never go back.
        ``running_here``: what this claimer runs of each queue already, held
        to the queue's ``worker_concurrency``. Claimed rows are running, owned
        by ``owner``, under a new epoch.
        """

    @abstractmethod
    async def requeue_workflow(
        self, tx: Any, workflow_id: str, epoch: int, not_before: float | None = None
    ) -> bool:
        """Put a claimed workflow back on its queue, unclaimed (fenced); whether it was.

        The claim's attempt is given back; no claim takes it before
        ``not_before`` (its ``wake_at``), if given.
        """

    # Events -------------------------------------------------------------------

    @abstractmethod
    async def send_event(
        self, tx: Any, workflow_id: str, key: str, value: bytes, idempotency_key: str | None
    ) -> bool:
        """Store an event for a workflow; False if ``idempotency_key`` was sent already.

        Raises WorkflowNotFoundError for an unknown workflow. Wakes the
        workflow's waiters once committed. Atomic.
        """

    @abstractmethod
    async def next_event(self, tx: Any, workflow_id: str, key: str) -> EventRow | None:
        """The oldest event of ``key`` the workflow has not consumed, or None."""

    @abstractmethod
    async def take_event(
        self, tx: Any, workflow_id: str, epoch: int, event_id: int, step: StepRow
    ) -> StepRow:
        """Consume an event and commit the step record holding it, in one transaction.

        Like :meth:`record_step`: returns the record that stands at the
        position (adopting another executor's, in which case the event is left
        unconsumed) and raises OwnershipLostError when fenced off. Raises
        EventGone, committing nothing, when the event was consumed meanwhile.
        """

    # Streams ------------------------------------------------------------------

    @abstractmethod
    async def append_stream(
        self,
        tx: Any,
        workflow_id: str,
        epoch: int,
        key: str,
        kind: str,
        value: bytes | None,
        step: StepRow | None = None,
    ) -> StepRow | None:
        """Append an entry (``chunk``, ``start`` or ``end``) to a stream of a workflow (atomic).

        Fenced by ``epoch`` (OwnershipLostError). With ``step``, that record is
        committed in the same transaction, as :meth:`record_step` does: when
        a record already stands at its position nothing is appended and the
        standing record is returned. Wakes the stream's readers once
        committed (topic ``stream:<workflow id>``).
        """

    @abstractmethod
    async def read_stream(
        self, tx: Any, workflow_id: str, key: str, after: int = 0
    ) -> list[StreamRow]:
        """The entries of a stream with an ``id`` above ``after``, in the order written."""

    @abstractmethod
    async def streams_of(self, tx: Any, workflow_id: str) -> list[StreamSummary]:
        """The streams of a workflow, by key: chunks, restarts, whether each ended."""

    # Sessions -------------------------------------------------------------------

    @abstractmethod
    async def session_read(
        self, tx: Any, session_id: str, key: str | None = None
    ) -> list[SessionEntry]:
        """The entries of a session (or its entry ``key`` alone), by key."""

    @abstractmethod
    async def session_write(
        self,
        tx: Any,
        session_id: str,
        key: str,
        value: bytes,
        expected_version: int | None,
        record: tuple[str, int, StepRow] | None = None,
    ) -> tuple[bool, StepRow | None]:
        """Write a session's key unless it changed since it was read (atomic).

        ``expected_version``: None writes whatever is there; 0 writes only if
        the key is absent; n only over version n. With ``record`` (workflow id,
        epoch, step record), the record is committed with the write: when a
        record already stands at its position nothing is written and it is
        returned; when the write does not happen, neither does the record.
        Returns whether it wrote, and the record that stands (or None).
        """

    @abstractmethod
    async def sessions(self, tx: Any) -> list[SessionSummary]:
        """Every session: its number of keys and last write, most recent first."""

    @abstractmethod
    async def cleanup_sessions(
        self, tx: Any, cutoff: float, session_id: str | None, dry_run: bool
    ) -> int:
        """Delete sessions last written before ``cutoff`` (or that one, if given); keys counted."""


OPERATIONS = tuple(
    name
    for part in (Backend, ControlContract)
    for name, member in vars(part).items()
    if getattr(member, "__isabstractmethod__", False)
    and name not in ("run_sync", "health", "close")
)
"""The names of the contract's operations, in the order they are documented."""


async def outcome(result: Awaitable[T]) -> tuple[bool, Any]:
    """A write's outcome in a batch: its result, or the DurableError it raised."""
    try:
        return True, await result
    except DurableError as exc:  # this write's own outcome (e.g. fenced off)
        return False, exc
