"""The shared vocabulary of the engine and the stores (a leaf: imports nothing of durable).

Statuses, the rows a store answers with, and the identity of an owning
process. Both the engine and ``durable.backends`` import them from here.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

R = TypeVar("R")


@dataclass(frozen=True)
class Owner:
    """The identity of a process that may own workflows."""

    host: str
    pid: int
    started: str


class WorkflowStatus(str, enum.Enum):
    """The life-cycle state of a recorded workflow."""

    ENQUEUED = "enqueued"
    """Recorded by ``enqueue`` and not started yet: a worker will claim it."""
    RUNNING = "running"
    """Started and not finished: running now, or crashed and waiting to resume."""
    WAITING = "waiting"
    """Waiting for a durable timer or an event; suspended if it has no owner."""
    SUCCESS = "success"
    """Finished and returned; its result is recorded."""
    ERROR = "error"
    """Finished by raising; calling it again starts a new attempt."""
    CANCELLED = "cancelled"
    """Cancelled (or timed out): it stopped at its next step boundary, with its children.

    Resumed only by hand (``Store.resume``), from its records."""
    QUARANTINED = "quarantined"
    """Crashed its executor on too many recoveries in a row; resumed only by hand."""

    @property
    def finished(self) -> bool:
        """True for a status that no owner will change any more by itself."""
        return self not in _ACTIVE

    @property
    def active(self) -> bool:
        """True while the workflow has work left: enqueued, running or waiting."""
        return self in _ACTIVE


ROLLED_BACK = "rolled-back:"
"""Prefix of the ``tx_id`` of records kept from a transaction block that rolled
back (so that its compensations resume with the same values after a crash).
A new attempt of the workflow supersedes them, with every compensation record,
so the block and its compensations run again for that attempt's values."""


def rolled_back(tx_id: str) -> str:
    """The ``tx_id`` that marks a record of a rolled-back block of ``tx_id``."""
    return tx_id if tx_id.startswith(ROLLED_BACK) else ROLLED_BACK + tx_id


_ACTIVE = frozenset({WorkflowStatus.ENQUEUED, WorkflowStatus.RUNNING, WorkflowStatus.WAITING})


class StepStatus(str, enum.Enum):
    """The outcome recorded for one step."""

    SUCCESS = "success"
    ERROR = "error"


class StepKind(str, enum.Enum):
    """What a step record holds (stored as the value)."""

    STEP = "step"
    CHILD = "child"
    """A child workflow's outcome, recorded in its parent."""
    EVENT = "event"
    """An awaited event's value, or its timeout."""
    SNAPSHOT = "snapshot"
    SLEEP = "sleep"
    """A durable timer's deadline."""
    COMPENSATION = "compensation"
    """An ``on_rollback`` callback's outcome."""
    PUBLISH = "publish"
    """A value published under a key (the record's name) by ``durable.publish``."""
    STREAM = "stream"
    """A chunk written (or a stream closed) by ``durable.write_stream``."""
    SESSION = "session"
    """A read or write of session state, and its outcome."""

    @property
    def family(self) -> StepKind:
        """What a replay must find at a position: a child or a compensation is called as a step."""
        return StepKind.STEP if self in (StepKind.CHILD, StepKind.COMPENSATION) else self

    @staticmethod
    def same_family(recorded: str, called: str) -> bool:
        """Whether a record of kind ``recorded`` answers a call of kind ``called``."""
        try:
            return StepKind(recorded).family is StepKind(called).family
        except ValueError:  # a kind this version does not know: an edited record
            return False


@dataclass(frozen=True)
class WorkflowRow:
    """One workflow as stored."""

    workflow_id: str
    name: str
    status: WorkflowStatus
    args_fingerprint: str
    args: bytes | None
    result: bytes | None
    error: bytes | None
    attempts: int
    epoch: int
    owner: Owner | None
    lease_expires_at: float | None
    parent_id: str | None
    created_at: float
    updated_at: float
    finished_at: float | None
    db_now: float
    """The store's clock when the row was read: leases are judged against it."""
    forked_from: str | None = None
    queue: str | None = None
    """The queue it was enqueued on, if any."""
    priority: int = 0
    wake_at: float | None = None
    """While waiting: when its timer fires (or its event wait times out)."""
    waiting_for: str | None = None
    """While waiting for an event: the event's key."""
    recoveries: int = 0
    """Resumes after its owner died, in a row; too many quarantine it."""
    event_arrived: bool = False
    """In :meth:`Backend.resumable` rows: the event it waits for has arrived."""
    timeout: float | None = None
    """Seconds it may run, counted from its first start (None: no limit)."""
    deadline: float | None = None
    """When it is timed out: set when it first starts, kept across resumes."""
    started_at: float | None = None
    """When it first began running (an enqueued one: when a worker first claimed it)."""
    partition_key: str | None = None
    """An enqueued one's partition of its queue (e.g. a tenant), if any."""
    start_by: float | None = None
    """An enqueued one is cancelled if no worker starts it by then (its queue timeout)."""


@dataclass(frozen=True)
class Placement:
    """Where an enqueued workflow waits, and on what terms."""

    queue: str
    priority: int = 0
    not_before: float | None = None
    """No claim takes it before this time (a delayed enqueue)."""
    dedup_id: str | None = None
    """Enqueued once while a workflow of the queue with this id has work left."""
    partition: str | None = None
    """Its partition of the queue: a partitioned queue limits each one apart."""
    start_by: float | None = None
    """Cancelled, with a queue timeout as its outcome, if not started by then."""


@dataclass(frozen=True)
class QueueRow:
    """A queue's flow control as stored (a queue with no row has none)."""

    name: str
    concurrency: int | None = None
    """Most of its workflows running at once, across all workers."""
    worker_concurrency: int | None = None
    """Most of its workflows running at once in one worker."""
    rate_limit: int | None = None
    """Most starts per ``rate_period`` seconds, across all workers."""
    rate_period: float | None = None
    partition_concurrency: int | None = None
    """Most workflows of one partition key running at once."""
    paused: bool = False
    """A paused queue is claimed from by nobody (what runs goes on)."""
    updated_at: float = 0.0


@dataclass(frozen=True)
class QueueCounts:
    """What a queue holds now."""

    enqueued: int = 0
    ready: int = 0
    """Of the enqueued, those whose not-before time (a delayed enqueue's) has come."""
    running: int = 0
    """Workflows an owner runs or waits in (the ones its concurrency counts)."""
    started: int = 0
    """Starts within the rate window asked for (0 if none was)."""
    first_started: float | None = None
    """The earliest of those starts: the window frees a start at it plus the period."""


@dataclass(frozen=True)
class StreamRow:
    """One entry of a stream: a chunk, or a marker (``start``, ``end``)."""

    id: int
    kind: str
    """``chunk``, ``start`` (a run of a generator step begins) or ``end``."""
    value: bytes | None
    written_at: float


@dataclass(frozen=True)
class ScheduleRow:
    """A schedule as stored: what it starts, when, and how far it has fired."""

    name: str
    workflow: str
    """The registered name of the workflow each tick enqueues."""
    cron: str | None
    every: float | None
    """Seconds between ticks of an interval schedule (``cron`` is None then)."""
    timezone: str
    args: bytes | None
    """The sealed ``(args, kwargs)`` each tick passes after the tick's time."""
    queue: str
    priority: int
    catch_up: str
    paused: bool
    created_at: float
    last_tick: float
    """Ticks after this time are still to fire (at first, the time it was created)."""
    backfill_from: float | None = None
    """A backfill still to fire: the ticks from this time up to ``backfill_to`` (excluded)."""
    backfill_to: float | None = None


@dataclass(frozen=True)
class SessionEntry:
    """One key of a session's state."""

    key: str
    value: bytes
    version: int
    """1 when first written, one more with each write."""
    updated_at: float


@dataclass(frozen=True)
class SessionSummary:
    """A session as listed: its keys and its last write."""

    session_id: str
    keys: int
    updated_at: float


@dataclass(frozen=True)
class StreamSummary:
    """A stream of a workflow as listed: its key, chunks, restarts and whether it ended."""

    key: str
    chunks: int
    """Chunks written, in every run (a restarted generator's first run's too)."""
    restarts: int
    """Runs of its generator step begun again after one was cut short."""
    ended: bool
    updated_at: float


class EventGone(Exception):
    """The event to consume was consumed meanwhile (by another wait of the workflow)."""


@dataclass(frozen=True)
class EventRow:
    """An event sent to a workflow and not yet consumed by it."""

    event_id: int
    workflow_id: str
    key: str
    value: bytes
    sent_at: float


class Parts:
    """A stored payload in pieces, in order: a large step result on its way to a store.

    The codec hands a large sealed payload over as its pieces (its header, the
    pickle's frames, the result's own buffer) so that a store that keeps it in
    a file writes them there one after the other (``os.writev``) instead of
    first copying them into one buffer: that copy was a third of the time of a
    16 MiB step. A store that needs one buffer (a database column) joins them:
    ``bytes(parts)``, or :func:`joined` for a value that may be either.
    Records read back from a store always hold ``bytes``.
    """

    __slots__ = ("pieces", "size")

    def __init__(self, pieces: Sequence[bytes]) -> None:
        self.pieces: tuple[bytes, ...] = tuple(pieces)
        self.size = sum(map(len, self.pieces))

    def __len__(self) -> int:
        return self.size

    def __bytes__(self) -> bytes:
        return b"".join(self.pieces)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Parts, bytes)):
            return len(self) == len(other) and bytes(self) == bytes(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to bytes, which hash: never hashed

    def __repr__(self) -> str:
        return f"Parts({len(self.pieces)} pieces, {self.size} bytes)"


def joined(payload: bytes | Parts) -> bytes:
    """A payload as one buffer: itself, or its parts joined."""
    return payload if type(payload) is bytes else bytes(payload)


@dataclass(frozen=True)
class StepRow:
    """One committed step record (the result or error of a step, or a child workflow)."""

    position: int
    name: str
    status: StepStatus
    output: bytes | Parts
    """The sealed payload; on its way to a store, a large one may come in :class:`Parts`."""
    attempt: int
    started_at: float
    finished_at: float
    kind: str = "step"
    """``step``, ``child`` (a child workflow's outcome), ``snapshot`` or ``compensation``."""
    tx_id: str | None = None
    """The transaction that committed it, if any (see :data:`ROLLED_BACK`)."""
    error_type: str | None = None
    error_message: str | None = None
    code_hash: str | None = None
    """Fingerprint of the code that produced it (None for records without code)."""


CheckSteps = Callable[[Sequence[StepRow]], None]
"""Checks step records before a transaction that acts on them commits (raising stops it)."""


@dataclass(frozen=True)
class StepHistoryRow:
    """A step record as the history shows it: superseded ones too, payload by size."""

    position: int
    name: str
    kind: str
    status: StepStatus
    attempt: int
    started_at: float
    finished_at: float
    payload_bytes: int
    superseded: bool
    tx_id: str | None
    error_type: str | None
    error_message: str | None


@dataclass(frozen=True)
class WorkflowQuery:
    """Filters of a workflow listing; None means any."""

    statuses: tuple[WorkflowStatus, ...] | None = None
    name: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int | None = None
    queue: str | None = None
    id_prefix: str | None = None
    """Only workflows whose id starts with this text."""
    parent_id: str | None = None
    """Only the child workflows of this workflow."""


@dataclass(frozen=True)
class Counts:
    """Rows counted (and deleted, unless it was a dry run) by a clean-up."""

    workflows: int = 0
    steps: int = 0
    attempts: int = 0


@dataclass(frozen=True)
class StepAttemptRow:
    """A failed attempt of a step that was retried."""

    position: int
    name: str
    attempt: int
    started_at: float
    finished_at: float
    error_type: str
    error_message: str


@dataclass(frozen=True)
class NewWorkflow:
    """What is known of a workflow when it is first started."""

    workflow_id: str
    name: str
    args_fingerprint: str
    args: bytes | None
    parent_id: str | None
    timeout: float | None = None
    """Seconds it may run once started (None: no limit)."""
    deadline: float | None = None
    """When it is timed out, if known already (a started call's, or its parent's)."""


def built(cls: type[R], fields: dict[str, Any]) -> R:
    """An instance of a frozen dataclass (a row here), from every one of its fields.

    What ``cls(**fields)`` makes, without its ``__init__``, which sets each
    field through ``object.__setattr__``: for the rows made on every step and
    every workflow start, that costs several times the rest of making them.
    ``fields`` must name each field once, defaulted ones included; ``cls``
    has no ``__post_init__`` and no ``__slots__``.
    """
    row: R = object.__new__(cls)
    row.__dict__.update(fields)
    return row


def field_names(cls: type) -> tuple[str, ...]:
    """The names of a row type's fields, in order (what :func:`built` needs)."""
    found = _FIELD_NAMES.get(cls)
    if found is None:
        found = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return found


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
